"""What fills a bulletin after the outro: a music bed, or the station's own soft pad.

Dead air on a loudspeaker sounds like a fault, so the time left after the speech is never silent.  A
station can configure its own music bed (any format ffmpeg reads); without one the station generates a
quiet, slowly moving chord pad, the same every time so a listener learns it as "the segment is ending".
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydub import AudioSegment  # ffmpeg-backed: reads mp3, ogg, m4a, wav, flac

from playout.errors import RenderError
from tts.audio import resample

logger = logging.getLogger(__name__)

# A calm I–vi–IV–V progression in C major (Hz of each chord's notes), four seconds a chord.
_CHORDS = (
    (130.81, 164.81, 196.00, 261.63),
    (110.00, 130.81, 164.81, 220.00),
    (87.31, 110.00, 130.81, 174.61),
    (98.00, 123.47, 146.83, 196.00),
)
_CHORD_S = 4.0


@lru_cache(maxsize=4)
def _chord_templates(rate: int) -> tuple[np.ndarray, ...]:
    """Each chord once: two chord-lengths long, swelling in and out with a raised-cosine envelope.

    A chord's phase starts at its own beginning, so overlap-adding the templates every four seconds
    gives the same pad each time at the cost of four short syntheses per process.
    """
    m = int(round(2 * _CHORD_S * rate))
    t = np.arange(m, dtype=np.float64) / rate
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * t / (2 * _CHORD_S))
    templates = []
    for notes in _CHORDS:
        tone = sum(np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2.002 * f * t) for f in notes)
        templates.append((tone * envelope).astype(np.float32))
    return tuple(templates)


def generated_bed(duration_s: float, rate: int) -> np.ndarray:
    """A soft chord pad of ``duration_s`` seconds, unit RMS."""
    n = int(round(duration_s * rate))
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    templates = _chord_templates(rate)
    hop = int(round(_CHORD_S * rate))
    width = len(templates[0])
    # Start half a template early so the pad is already full at sample 0.
    out = np.zeros(n + 2 * width, dtype=np.float32)
    for k, pos in enumerate(range(0, n + width, hop)):
        out[pos : pos + width] += templates[k % len(templates)]
    out = out[hop : hop + n]
    rms = float(np.sqrt(np.mean(out.astype(np.float64) ** 2))) or 1.0
    return out / np.float32(rms)


@lru_cache(maxsize=2)
def _load_music(path: str, mtime: float, rate: int) -> np.ndarray:
    try:
        seg = AudioSegment.from_file(path).set_channels(1)
    except Exception as exc:  # pydub raises bare exceptions for ffmpeg failures
        raise RenderError(
            f"Không đọc được tệp nhạc nền {path}", code="MUSIC_BED_UNREADABLE", detail=str(exc)
        ) from None
    samples = np.array(seg.get_array_of_samples(), dtype=np.float32) / float(1 << (8 * seg.sample_width - 1))
    samples = resample(samples, seg.frame_rate, rate)
    if len(samples) < rate:
        raise RenderError(f"Tệp nhạc nền {path} quá ngắn (dưới 1 giây)", code="MUSIC_BED_UNREADABLE")
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) or 1.0
    return (samples / rms).astype(np.float32)


def music_bed(path: Path, duration_s: float, rate: int) -> np.ndarray:
    """The configured music, looped with a short cross-fade to ``duration_s``, unit RMS."""
    if not path.is_file():
        raise RenderError(f"Không tìm thấy tệp nhạc nền {path}", code="MUSIC_BED_UNREADABLE")
    music = _load_music(str(path), path.stat().st_mtime, rate)
    n = int(round(duration_s * rate))
    fade = min(int(0.5 * rate), len(music) // 4)
    out = np.zeros(n, dtype=np.float32)
    pos = 0
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    while pos < n:
        overlap = fade if pos > 0 else 0
        pos -= overlap  # overlap the loop point so the join is a cross-fade, not a click
        piece = music[: n - pos].copy()
        k = min(overlap, len(piece))
        if k:
            out[pos : pos + k] *= 1.0 - ramp[:k]
            piece[:k] *= ramp[:k]
        out[pos : pos + len(piece)] += piece
        pos += len(piece)
    return out


def make_bed(duration_s: float, rate: int, path: Path | None) -> np.ndarray:
    return music_bed(path, duration_s, rate) if path else generated_bed(duration_s, rate)
