"""Small, vectorised sample-level helpers shared by the engines, the fitter and the verifier.

All audio inside the pipeline is mono float32 in [-1, 1]; it becomes 16-bit PCM only when written.
"""

from __future__ import annotations

from math import gcd

import numpy as np

#: Below this level a 50 ms frame counts as silence (dead air on a loudspeaker).
SILENCE_DBFS = -55.0
FRAME_S = 0.05
#: A clip's edges are trimmed where the level stays under this (engines pad their output).
TRIM_DBFS = -50.0


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def frame_rms_db(samples: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """RMS level of consecutive frames in dBFS (the last partial frame is dropped)."""
    n = max(1, int(rate * frame_s))
    usable = len(samples) - len(samples) % n
    if usable == 0:
        return np.zeros(0, dtype=np.float32)
    frames = samples[:usable].reshape(-1, n).astype(np.float32)
    power = np.mean(frames * frames, axis=1)
    return (10.0 * np.log10(np.maximum(power, 1e-12))).astype(np.float32)


def trim_silence(samples: np.ndarray, rate: int, threshold_dbfs: float = TRIM_DBFS) -> np.ndarray:
    """Cut leading and trailing near-silence, keeping 20 ms so consonants are not clipped."""
    level = frame_rms_db(samples, rate, 0.01)
    loud = np.flatnonzero(level > threshold_dbfs)
    if loud.size == 0:
        return samples[:0]
    step = int(rate * 0.01)
    keep = int(rate * 0.02)
    start = max(0, loud[0] * step - keep)
    end = min(len(samples), (loud[-1] + 1) * step + keep)
    return samples[start:end]


def longest_silence_s(samples: np.ndarray, rate: int, threshold_dbfs: float = SILENCE_DBFS) -> float:
    """The longest run of silent 50 ms frames, in seconds."""
    quiet = frame_rms_db(samples, rate) <= threshold_dbfs
    if not quiet.any():
        return 0.0
    # Run lengths of True values via the positions where the boolean array changes.
    padded = np.concatenate(([False], quiet, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    runs = edges[1::2] - edges[::2]
    return float(runs.max() * FRAME_S)


def active_s(samples: np.ndarray, rate: int, threshold_dbfs: float = SILENCE_DBFS) -> float:
    """How many seconds of the clip are above the silence threshold."""
    return float(np.count_nonzero(frame_rms_db(samples, rate) > threshold_dbfs) * FRAME_S)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    # Imported here: scipy.signal costs ~80 MB and most of a second on a Pi, and the fitter and the
    # engines import this module for estimates too (`playout check` never resamples).
    from scipy.signal import resample_poly

    g = gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // g, from_rate // g).astype(np.float32)


def to_pcm16(samples: np.ndarray, *, dither_seed: int | None = None, chunk: int = 1 << 16) -> np.ndarray:
    """16-bit PCM, optionally with TPDF dither (one LSB peak) so quiet fades do not turn into grit.

    Chunked so a 3-minute bulletin never needs float copies of itself on a small Pi; a fixed seed keeps
    the output identical for identical input (the render cache and the tests rely on that).
    """
    out = np.empty(len(samples), dtype="<i2")
    rng = np.random.default_rng(dither_seed) if dither_seed is not None else None
    for start in range(0, len(samples), chunk):
        x = samples[start : start + chunk] * np.float32(32768.0)
        if rng is not None:
            x += rng.random(len(x), dtype=np.float32) - rng.random(len(x), dtype=np.float32)
        out[start : start + chunk] = np.clip(np.round(x), -32768, 32767)
    return out


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0
