"""The last gate before a bulletin is called air-ready.

Every check is measured on the final 16-bit samples, exactly as they will be written: an engine that
returned silence, a stream cut short, a loudness or peak out of range, or dead air must never produce a
file the station would put on a loudspeaker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from playout.config import BulletinSettings
from playout.errors import RenderError
from tts.audio import FRAME_S, SILENCE_DBFS, active_s, as_float32, frame_rms_db
from tts.loudness import integrated_lufs, true_peak_dbtp

#: A sentence must sound for at least this share of the time its syllables need at the fastest rate.
MIN_SPEECH_SHARE = 0.35
#: Even a very fast voice needs this long per syllable.
MIN_SYLLABLE_S = 0.11


@dataclass(frozen=True)
class Measurements:
    frames: int
    duration_s: float
    lufs: float
    true_peak_dbtp: float
    longest_silence_s: float
    speech_active_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _frame_levels(samples: np.ndarray, rate: int, stop: int, chunk: int = 1 << 16) -> np.ndarray:
    """``frame_rms_db(samples[:stop])``, whole frames a chunk at a time: the same values, without the
    two float32 copies of the bulletin that levelling it in one go costs (the render's memory peak)."""
    frame = max(1, int(rate * FRAME_S))
    step = max(1, chunk // frame) * frame
    parts = [frame_rms_db(as_float32(samples[s : min(stop, s + step)]), rate) for s in range(0, stop, step)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _longest_run_s(quiet: np.ndarray) -> float:
    """The longest run of True frames, in seconds (as ``tts.audio.longest_silence_s`` counts it)."""
    if not quiet.any():
        return 0.0
    padded = np.concatenate(([False], quiet, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return float((edges[1::2] - edges[::2]).max() * FRAME_S)


def measure(samples: np.ndarray, rate: int, settings: BulletinSettings, speech_end: int) -> Measurements:
    """The verifier's figures for ``samples``: float32, or the 16-bit PCM that will be written (read a
    chunk at a time as ``from_pcm16`` reads it, so measuring costs no float copy of the bulletin)."""
    # Each check looks at a prefix, so one pass of frame levels serves both: a prefix's frames are the
    # first whole frames of the longer one.
    before_fade = max(0, len(samples) - int(round(settings.fade_s * rate)))
    speech = min(len(samples), max(0, speech_end))
    frame = max(1, int(rate * FRAME_S))
    levels = _frame_levels(samples, rate, max(before_fade, speech))
    return Measurements(
        frames=len(samples),
        duration_s=len(samples) / rate,
        lufs=integrated_lufs(samples, rate),
        true_peak_dbtp=true_peak_dbtp(samples),
        longest_silence_s=_longest_run_s(levels[: before_fade // frame] <= SILENCE_DBFS),
        speech_active_s=float(np.count_nonzero(levels[: speech // frame] > SILENCE_DBFS) * FRAME_S),
    )


def verify(
    samples: np.ndarray,
    rate: int,
    settings: BulletinSettings,
    *,
    spans: Sequence[tuple[int, int]],
    syllables: Sequence[int],
    measured: Measurements | None = None,
) -> Measurements:
    """Raise RenderError (code RENDER_VERIFY_FAILED) listing every check that failed.

    ``samples`` may be float32 or the 16-bit PCM to be written (see ``measure``)."""
    m = measured or measure(samples, rate, settings, spans[-1][1] if spans else 0)
    problems: list[str] = []
    expected_frames = int(round(settings.length_s * rate))
    if m.frames != expected_frames:
        problems.append(f"độ dài {m.frames} mẫu, cần đúng {expected_frames}")
    if not abs(m.lufs - settings.loudness_lufs) <= settings.loudness_tolerance_lu:
        problems.append(
            f"độ lớn {m.lufs:.2f} LUFS, cần {settings.loudness_lufs} ± {settings.loudness_tolerance_lu}"
        )
    if not m.true_peak_dbtp <= settings.true_peak_dbtp:
        problems.append(f"đỉnh thực {m.true_peak_dbtp:.2f} dBTP, tối đa {settings.true_peak_dbtp}")
    if m.longest_silence_s > settings.max_silence_s:
        problems.append(f"có {m.longest_silence_s:.1f} giây im lặng liền, tối đa {settings.max_silence_s}")
    if len(spans) != len(syllables):
        problems.append(f"có {len(spans)} câu âm thanh cho {len(syllables)} câu văn bản")
    fastest = 1 + settings.rate_max_pct / 100
    for i, ((start, end), count) in enumerate(zip(spans, syllables, strict=False), 1):
        needed = count * MIN_SYLLABLE_S / fastest * MIN_SPEECH_SHARE
        heard = active_s(as_float32(samples[start:end]), rate)
        if heard < needed:
            problems.append(f"câu {i} gần như không có tiếng ({heard:.2f} giây cho {count} tiếng)")
    if problems:
        raise RenderError(
            "Bản tin không đạt kiểm tra chất lượng: " + "; ".join(problems),
            code="RENDER_VERIFY_FAILED",
            detail=repr(m),
            problems=problems,
        )
    return m
