"""Loudness to EBU R128 / ITU-R BS.1770: even levels from one bulletin to the next.

Uneven loudness between items is the top complaint about automated radio, and outdoor horns make it
worse, so every bulletin leaves here at the same integrated loudness (pyloudnorm's BS.1770 meter) with
its true peak under the ceiling.  Speech engines peak hot (espeak-ng's raw output sits above 0 dBTP at
about -19.5 LUFS), so raising it to -16 LUFS needs a peak limiter; the limiter costs loudness, so gain
and limiting are iterated until the meter agrees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import lfilter, lfilter_zi, resample_poly

from tts.audio import db_to_gain

logger = logging.getLogger(__name__)

#: The limiter aims this far under the true-peak ceiling: 4x oversampling can still find overs.
LIMITER_MARGIN_DB = 0.6
MAX_PASSES = 5


def integrated_lufs(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS, gated) by pyloudnorm; -inf for silence or clips under 0.4 s."""
    if len(samples) < int(0.4 * rate):
        return float("-inf")
    # float32 in: the meter copies its input, and a float64 copy of 3 minutes costs 35 MB more on a Pi.
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float32, copy=False)))


def true_peak_dbtp(samples: np.ndarray, chunk: int = 1 << 18) -> float:
    """True peak per BS.1770-4 Annex 2: the peak of the signal oversampled four times.

    Done in overlapping chunks so a 3-minute bulletin never needs a 4x copy of itself in memory.
    """
    if len(samples) == 0:
        return float("-inf")
    overlap = 64
    peak = 0.0
    for start in range(0, len(samples), chunk):
        lo = max(0, start - overlap)
        block = samples[lo : start + chunk + overlap].astype(np.float64)
        up = resample_poly(block, 4, 1)
        # Ignore the filter's edge ringing; the overlap makes sure those samples are covered elsewhere.
        inner = up[4 * (start - lo) : 4 * (start - lo + chunk)] if len(up) > 8 * overlap else up
        peak = max(peak, float(np.max(np.abs(inner))) if len(inner) else 0.0)
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def _limiter_gain(samples: np.ndarray, rate: int, ceiling: float) -> np.ndarray | None:
    """Gain per 1 ms block (None when nothing is over the ceiling)."""
    n = len(samples)
    block = max(1, rate // 1000)
    usable = n - n % block
    peaks = np.abs(samples[:usable]).reshape(-1, block).max(axis=1)
    if usable < n:
        peaks = np.append(peaks, np.abs(samples[usable:]).max())
    if peaks.max(initial=0.0) <= ceiling:
        return None
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-9)).astype(np.float32)
    held = minimum_filter1d(need, size=31, mode="nearest")
    return uniform_filter1d(held, size=5, mode="nearest")


def limit(samples: np.ndarray, rate: int, ceiling_dbfs: float) -> np.ndarray:
    """A look-ahead peak limiter: no sample above ``ceiling_dbfs``.

    The gain is computed on 1 ms blocks: each block gets the gain its loudest sample needs, that gain
    is held 15 ms either side of every peak and smoothed over 5 ms, then interpolated back to samples.
    Every block within reach of a peak holds a gain no higher than the peak needs, so neither the
    smoothing nor the interpolation can let the peak through, and gain changes ramp in before a peak
    instead of chopping it (no clicks on speech).  Working on blocks keeps a 3-minute bulletin at a few
    tens of milliseconds on a Pi.
    """
    ceiling = db_to_gain(ceiling_dbfs)
    smooth = _limiter_gain(samples, rate, ceiling)
    if smooth is None:
        return samples
    block = max(1, rate // 1000)
    centres = np.arange(len(smooth), dtype=np.float64) * block + (block - 1) / 2
    out = np.empty_like(samples, dtype=np.float32)
    step = 1 << 16  # interpolate in pieces: a float64 gain curve for 3 minutes would be 35 MB
    for start in range(0, len(samples), step):
        stop = min(len(samples), start + step)
        gain = np.interp(np.arange(start, stop, dtype=np.float64), centres, smooth)
        out[start:stop] = samples[start:stop] * gain
    # Interpolation past the last centre and float rounding are the only ways over; clip guards them.
    np.clip(out, -ceiling, ceiling, out=out)
    return out


class _LoudnessPredictor:
    """Predicts the meter's reading after a gain and a limiter envelope, without running the meter.

    The input is K-weighted once with pyloudnorm's own BS.1770 filters and kept as energy per 1 ms;
    a prediction applies the limiter's per-millisecond gain to those energies and gates them as the
    standard does (400 ms blocks, 75 % overlap, -70 LUFS absolute and -10 LU relative gates).  The
    limiter's envelope is slow, so this tracks the meter to a few hundredths of a LU; the meter still
    measures the final file.
    """

    def __init__(self, samples: np.ndarray, rate: int, chunk_s: float = 10.0):
        stages = (
            pyloudnorm.IIRfilter(4.0, 1 / np.sqrt(2), 1500.0, rate, "high_shelf"),
            pyloudnorm.IIRfilter(0.0, 0.5, 38.0, rate, "high_pass"),
        )
        self.block = max(1, rate // 1000)
        self.rate = rate
        # Filter in chunks, carrying the filter state across: a float64 copy of 3 minutes would cost
        # 35 MB per step on a Pi, a 10 s chunk costs 2 MB.
        states = [lfilter_zi(f.b, f.a) * 0.0 for f in stages]
        usable = len(samples) - len(samples) % self.block
        step = max(self.block, int(chunk_s * rate) // self.block * self.block)
        parts = []
        for start in range(0, usable, step):
            y = samples[start : min(usable, start + step)].astype(np.float64)
            for k, f in enumerate(stages):
                y, states[k] = lfilter(f.b, f.a, y, zi=states[k])
                y *= f.passband_gain
            parts.append(np.square(y).reshape(-1, self.block).sum(axis=1))
        self.energy_ms = np.concatenate(parts) if parts else np.zeros(0)

    def predict(self, gain_db: float, envelope: np.ndarray | None) -> float:
        e = self.energy_ms * db_to_gain(2 * gain_db)
        if envelope is not None:
            e = e * np.square(envelope[: len(e)], dtype=np.float64)
        per_100ms = e[: len(e) - len(e) % 100].reshape(-1, 100).sum(axis=1)
        if len(per_100ms) < 4:
            return float("-inf")
        window = self.block * 400  # samples in a 400 ms gating block
        z = np.convolve(per_100ms, np.ones(4), mode="valid") / window
        with np.errstate(divide="ignore"):
            loud = -0.691 + 10 * np.log10(z)
        z = z[loud >= -70.0]
        if not z.size:
            return float("-inf")
        relative = -0.691 + 10 * np.log10(z.mean()) - 10.0
        with np.errstate(divide="ignore"):
            z = z[-0.691 + 10 * np.log10(z) > relative]
        return float(-0.691 + 10 * np.log10(z.mean()))


@dataclass(frozen=True)
class LoudnessResult:
    samples: np.ndarray
    lufs: float
    gain_db: float
    passes: int


def normalize(
    samples: np.ndarray,
    rate: int,
    *,
    target_lufs: float,
    ceiling_dbtp: float,
    tolerance_lu: float,
    measured_lufs: float | None = None,
) -> LoudnessResult:
    """Bring ``samples`` to ``target_lufs``, limited to ``LIMITER_MARGIN_DB`` under ``ceiling_dbtp``.

    One meter reading up front; the limiter's loss is then predicted (``_LoudnessPredictor``) and the
    gain corrected until the prediction is on target.  The caller measures the result with the meter
    (``integrated_lufs``) and calls again with ``measured_lufs`` if it is still off.
    """
    measured = integrated_lufs(samples, rate) if measured_lufs is None else measured_lufs
    if not np.isfinite(measured):
        return LoudnessResult(samples, measured, 0.0, 0)
    gain_db = target_lufs - measured
    ceiling = ceiling_dbtp - LIMITER_MARGIN_DB
    # Louder input means more limiting, so loudness grows slower than the gain: secant steps on the
    # predicted reading converge in two or three cheap passes.
    predictor = _LoudnessPredictor(samples, rate)
    bias = measured - predictor.predict(0.0, None)  # the predictor's gating vs the meter's, tiny
    ceiling_lin = db_to_gain(ceiling)
    previous: tuple[float, float] | None = None
    passes = 0
    envelope = None
    for passes in range(1, MAX_PASSES + 1):  # noqa: B007 - reported after the loop
        envelope = _limiter_gain(samples * np.float32(db_to_gain(gain_db)), rate, ceiling_lin)
        predicted = predictor.predict(gain_db, envelope) + bias
        if abs(predicted - target_lufs) <= tolerance_lu * 0.1:
            break
        slope = 1.0
        if previous is not None and abs(gain_db - previous[0]) > 1e-6:
            slope = min(1.0, max(0.1, (predicted - previous[1]) / (gain_db - previous[0])))
        previous = (gain_db, predicted)
        gain_db += (target_lufs - predicted) / slope
    out = limit(samples * np.float32(db_to_gain(gain_db)), rate, ceiling)
    logger.debug("loudness: %.2f LUFS, gain %+.2f dB after %d passes", measured, gain_db, passes)
    return LoudnessResult(out.astype(np.float32, copy=False), float("nan"), gain_db, passes)
