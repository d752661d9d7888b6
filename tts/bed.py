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


#: Samples per block when synthesizing a sine by angle addition.
_SINE_BLOCK = 1024


def _sine(freq: float, m: int, rate: int) -> np.ndarray:
    """``sin(2 pi freq n / rate)`` for ``n < m``, in float64.

    By angle addition: n = K j + k, so sin(w n) = sin(w K j) cos(w k) + cos(w K j) sin(w k), two outer
    products of short tables.  numpy's float64 sine is not vectorised (12 ns a sample here, far more on
    a Pi); this is a few multiply-adds a sample, and the two agree to about 1e-12.
    """
    w = 2 * np.pi * freq / rate
    k = np.arange(_SINE_BLOCK) * w
    j = np.arange(-(-m // _SINE_BLOCK)) * (w * _SINE_BLOCK)
    out = np.multiply.outer(np.sin(j), np.cos(k))
    out += np.multiply.outer(np.cos(j), np.sin(k))
    return out.ravel()[:m]


@lru_cache(maxsize=4)
def _chord_templates(rate: int) -> tuple[np.ndarray, ...]:
    """Each chord once: two chord-lengths long, swelling in and out with a raised-cosine envelope.

    A chord's phase starts at its own beginning, so overlap-adding the templates every four seconds
    gives the same pad each time at the cost of four short syntheses per process.
    """
    m = int(round(2 * _CHORD_S * rate))
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(m, dtype=np.float64) / rate) / (2 * _CHORD_S))
    templates = []
    for notes in _CHORDS:
        tone = sum(_sine(f, m, rate) + 0.3 * _sine(2.002 * f, m, rate) for f in notes)
        templates.append((tone * envelope).astype(np.float32))
    return tuple(templates)


class Bed:
    """A bed of ``len(bed)`` samples at unit RMS, computed a block at a time.

    The render lays it under a bulletin a chunk at a time (``tts.fit.Mix``), so a long fill never needs
    a whole-length array; ``bed.block(0, len(bed))`` is the whole of it.
    """

    def __len__(self) -> int:
        return self.n

    def block(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` (a new float32 array the caller may change)."""
        raise NotImplementedError


class GeneratedBed(Bed):
    """The station's chord pad: the chord templates overlap-added every four seconds, at unit RMS.

    A sample is the sum of the (at most two) templates over it, whichever block it is computed in, so
    blocks are the same values as the pad made in one piece; the RMS is summed a block at a time.
    """

    def __init__(self, duration_s: float, rate: int, chunk: int = 1 << 16):
        self.n = max(0, int(round(duration_s * rate)))
        self.templates = _chord_templates(rate)
        self.hop = int(round(_CHORD_S * rate))
        energy = 0.0
        for start in range(0, self.n, chunk):
            raw = self._raw(start, min(self.n, start + chunk))
            energy += float(np.square(raw, dtype=np.float64).sum())
        self.scale = np.float32(np.sqrt(energy / self.n) if self.n else 0.0) or np.float32(1.0)

    def _raw(self, start: int, stop: int) -> np.ndarray:
        # Template k starts at k * hop on a timeline that begins half a template early (one hop), so the
        # pad is already full at sample 0.
        width = len(self.templates[0])
        lo, hi = start + self.hop, stop + self.hop
        out = np.zeros(stop - start, dtype=np.float32)
        for k in range(max(0, (lo - width) // self.hop + 1), (hi - 1) // self.hop + 1):
            pos = k * self.hop
            a, b = max(lo, pos), min(hi, pos + width)
            out[a - lo : b - lo] += self.templates[k % len(self.templates)][a - pos : b - pos]
        return out

    def block(self, start: int, stop: int) -> np.ndarray:
        out = self._raw(start, stop)
        out /= self.scale
        return out


class MusicBed(Bed):
    """The configured music looped to length: each loop fades in over the last ``fade`` samples of the
    one before (the loop point is a cross-fade, not a click)."""

    def __init__(self, music: np.ndarray, duration_s: float, rate: int):
        self.music = music
        self.n = max(0, int(round(duration_s * rate)))
        self.fade = min(int(0.5 * rate), len(music) // 4)
        self.ramp = np.linspace(0.0, 1.0, self.fade, dtype=np.float32)
        self.period = len(music) - self.fade  # loop j starts at j * period

    def block(self, start: int, stop: int) -> np.ndarray:
        i = np.arange(start, stop)
        loop, offset = np.divmod(i, self.period)
        out = self.music[offset]
        # The first ``fade`` samples of a loop overlap the end of the loop before.  A loop exists only
        # if the one before it ended short of the bed's end; otherwise they are that loop's last samples.
        overlap = np.flatnonzero((loop > 0) & (offset < self.fade))
        if overlap.size:
            at = offset[overlap]
            before = self.music[at + self.period]
            fresh = (loop[overlap] - 1) * self.period + len(self.music) < self.n
            r = self.ramp[at]
            out[overlap] = np.where(fresh, before * (1.0 - r) + self.music[at] * r, before)
        return out


def generated_bed(duration_s: float, rate: int) -> np.ndarray:
    """A soft chord pad of ``duration_s`` seconds, unit RMS."""
    bed = GeneratedBed(duration_s, rate)
    return bed.block(0, len(bed))


@lru_cache(maxsize=2)
def _load_music(path: str, mtime: float, rate: int) -> np.ndarray:
    # Imported here: only a station with a music bed needs pydub (and its audioop warning).
    from pydub import AudioSegment  # ffmpeg-backed: reads mp3, ogg, m4a, wav, flac

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


def music_source(path: Path, duration_s: float, rate: int) -> MusicBed:
    """The configured music as a ``Bed`` of ``duration_s`` seconds (unit RMS)."""
    if not path.is_file():
        raise RenderError(f"Không tìm thấy tệp nhạc nền {path}", code="MUSIC_BED_UNREADABLE")
    return MusicBed(_load_music(str(path), path.stat().st_mtime, rate), duration_s, rate)


def music_bed(path: Path, duration_s: float, rate: int) -> np.ndarray:
    """The configured music, looped with a short cross-fade to ``duration_s``, unit RMS."""
    bed = music_source(path, duration_s, rate)
    return bed.block(0, len(bed))


def bed_source(duration_s: float, rate: int, path: Path | None) -> Bed:
    """The bulletin's bed, to be computed a block at a time: the configured music, else the pad."""
    return music_source(path, duration_s, rate) if path else GeneratedBed(duration_s, rate)


def make_bed(duration_s: float, rate: int, path: Path | None) -> np.ndarray:
    bed = bed_source(duration_s, rate, path)
    return bed.block(0, len(bed))
