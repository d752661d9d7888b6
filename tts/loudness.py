"""Loudness to EBU R128 / ITU-R BS.1770: even levels from one bulletin to the next.

Uneven loudness between items is the top complaint about automated radio, and outdoor horns make it
worse, so every bulletin leaves here at the same integrated loudness (BS.1770, metered in chunks here and
held to pyloudnorm's reading in the tests) with its true peak under the ceiling.  Speech engines peak hot
(espeak-ng's raw output sits above 0 dBTP at about -19.5 LUFS), so raising it to -16 LUFS needs a peak
limiter; the limiter costs loudness, so gain and limiting are iterated until the meter agrees.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tts.audio import as_float32, db_to_gain, polyphase_taps, resample_poly

logger = logging.getLogger(__name__)

#: The limiter aims this far under the true-peak ceiling: 4x oversampling can still find overs.
LIMITER_MARGIN_DB = 0.6
MAX_PASSES = 5

#: BS.1770's K-weighting as pyloudnorm builds it: two RBJ-cookbook biquads (gain dB, Q, Hz, shape), a
#: +4 dB high shelf for the head's acoustic effect and a 38 Hz high-pass (RLB).  Both have unit passband
#: gain in pyloudnorm.
K_STAGES = (
    (4.0, 1 / np.sqrt(2), 1500.0, "high_shelf"),
    (0.0, 0.5, 38.0, "high_pass"),
)
#: The K-weighting filter's impulse response ends where it and the filter state have stayed under this
#: fraction of its peak for ``IMPULSE_QUIET`` samples (what remains sums to about 1e-13 of the peak).
IMPULSE_FLOOR = 1e-15
IMPULSE_QUIET = 64
#: Samples scanned at a time for per-millisecond peaks (a float32 chunk of 256 KiB).
PEAK_CHUNK = 1 << 16
#: FFT length of the K-weighting's overlap-add (at least this, and four times the impulse response): each
#: chunk costs a few float64 buffers of this length, however long the bulletin.
K_FFT = 1 << 16
#: BS.1770 gating: 400 ms blocks stepped by 100 ms, absolute gate -70 LUFS, relative gate -10 LU.
BLOCK_S = 0.4
STEP = 0.25
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0
#: The limiter holds each block's gain over this many 1 ms blocks (15 ms either side), then smooths it.
HOLD_MS = 31
SMOOTH_MS = 5


def biquad(gain_db: float, q: float, fc: float, rate: int, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """(b, a), normalised by a0: the RBJ Audio EQ Cookbook formulas exactly as pyloudnorm's IIRfilter
    writes them (the tests hold the two to 1e-12; they agree to the bit)."""
    A = 10 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * (fc / rate)
    alpha = np.sin(w0) / (2.0 * q)
    if shape == "high_shelf":
        b0 = A * ((A + 1) + (A - 1) * np.cos(w0) + 2 * np.sqrt(A) * alpha)
        b1 = -2 * A * ((A - 1) + (A + 1) * np.cos(w0))
        b2 = A * ((A + 1) + (A - 1) * np.cos(w0) - 2 * np.sqrt(A) * alpha)
        a0 = (A + 1) - (A - 1) * np.cos(w0) + 2 * np.sqrt(A) * alpha
        a1 = 2 * ((A - 1) - (A + 1) * np.cos(w0))
        a2 = (A + 1) - (A - 1) * np.cos(w0) - 2 * np.sqrt(A) * alpha
    elif shape == "high_pass":
        b0 = (1 + np.cos(w0)) / 2
        b1 = -(1 + np.cos(w0))
        b2 = (1 + np.cos(w0)) / 2
        a0 = 1 + alpha
        a1 = -2 * np.cos(w0)
        a2 = 1 - alpha
    else:
        raise ValueError(f"unknown filter shape {shape!r}")
    return np.array([b0, b1, b2]) / a0, np.array([a0, a1, a2]) / a0


def k_weighting(rate: int) -> np.ndarray:
    """The K-weighting filter as second-order sections (``[b0, b1, b2, 1, a1, a2]`` per row)."""
    return np.array([np.concatenate(biquad(*stage[:3], rate, stage[3])) for stage in K_STAGES])


@lru_cache(maxsize=8)
def k_impulse(rate: int) -> np.ndarray:
    """The K-weighting filter's impulse response, until it has died away (``IMPULSE_FLOOR``).

    The two biquads run on a unit impulse in transposed direct form II, the arithmetic ``sosfilt`` does
    (the tests find the same values to the bit), as plain Python floats: about 3 300 samples at 24 kHz,
    under a millisecond, once per rate.  Its slowest part is the 38 Hz high-pass's double pole.
    """
    (b0, b1, b2, _, a1, a2), (c0, c1, c2, _, d1, d2) = k_weighting(rate).tolist()
    z1 = z2 = w1 = w2 = 0.0
    x, peak, quiet = 1.0, 0.0, 0
    out: list[float] = []
    while quiet < IMPULSE_QUIET:
        y = b0 * x + z1
        z1 = b1 * x - a1 * y + z2
        z2 = b2 * x - a2 * y
        v = c0 * y + w1
        w1 = c1 * y - d1 * v + w2
        w2 = c2 * y - d2 * v
        x = 0.0
        out.append(v)
        peak = max(peak, abs(v))
        floor = IMPULSE_FLOOR * peak
        quiet = quiet + 1 if max(abs(v), abs(z1), abs(z2), abs(w1), abs(w2)) < floor else 0
    h = np.array(out[: len(out) - IMPULSE_QUIET])
    h.flags.writeable = False  # shared through the cache
    return h


class _KWeighting:
    """The K-weighting filter applied a chunk at a time: FFT overlap-add with its impulse response.

    A chunk of at most ``step`` samples is convolved whole (one forward and one inverse real FFT of
    ``size`` points); the part of its response that spills past the chunk is carried into the next.
    Memory is a few buffers of ``size`` float64s whatever the signal's length, and unlike the
    recursive filter no state decays through subnormal floats in the silences between sentences.
    """

    def __init__(self, rate: int, block: int = 1):
        h = k_impulse(rate)
        self.size = max(K_FFT, 1 << int(4 * len(h) - 1).bit_length())
        self.spectrum = np.fft.rfft(h, self.size)
        #: Whole ``block``s only, so a caller summing per millisecond never splits one across chunks.
        self.step = max(block, (self.size - len(h) + 1) // block * block)
        self.carry = np.zeros(len(h) - 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The filtered chunk (float64, a view into a scratch buffer the caller may overwrite)."""
        # float64 before the FFT: numpy transforms float32 in single precision.
        y = np.fft.irfft(np.fft.rfft(x.astype(np.float64), self.size) * self.spectrum, self.size)
        m = len(self.carry)
        y[:m] += self.carry
        self.carry = y[len(x) : len(x) + m].copy()
        return y[: len(x)]


def _k_weighted_power(samples: np.ndarray, rate: int, block: int = 1) -> Iterator[np.ndarray]:
    """The squared K-weighted signal in float64, a chunk (whole ``block``s) at a time.

    ``samples`` are float32, or 16-bit PCM read as ``from_pcm16`` would (a chunk at a time)."""
    kw = _KWeighting(rate, block)
    for start in range(0, len(samples), kw.step):
        y = kw(as_float32(samples[start : start + kw.step]))
        yield np.square(y, out=y)


def _gated(z: np.ndarray) -> float:
    """Integrated loudness of mean-square block energies: BS.1770's two gates, pyloudnorm's comparisons."""
    with np.errstate(divide="ignore"):
        blocks = -0.691 + 10.0 * np.log10(z)
    above = z[blocks >= ABSOLUTE_GATE]
    if not above.size:
        return float("-inf")
    relative = -0.691 + 10.0 * np.log10(above.mean()) + RELATIVE_GATE
    return float(-0.691 + 10.0 * np.log10(z[(blocks > relative) & (blocks > ABSOLUTE_GATE)].mean()))


class _Meter:
    """BS.1770 integrated loudness fed the squared K-weighted signal chunk by chunk.

    Block edges are pyloudnorm's to the sample (``int(0.4 * j * 0.25 * rate)``, the last block cut at
    the end of the signal).  The energy between consecutive edges is summed as chunks pass, so memory is
    a few floats per 100 ms rather than a copy of the signal.
    """

    def __init__(self, frames: int, rate: int):
        count = int(np.round((frames / rate - BLOCK_S) / (BLOCK_S * STEP))) + 1
        j = np.arange(max(0, count))
        lo = (BLOCK_S * (j * STEP) * rate).astype(np.int64)
        hi = np.minimum((BLOCK_S * (j * STEP + 1) * rate).astype(np.int64), frames)
        self.edges = np.unique(np.concatenate((lo, hi)))
        self.lo, self.hi = np.searchsorted(self.edges, lo), np.searchsorted(self.edges, hi)
        self.sums = np.zeros(max(0, len(self.edges) - 1))
        self.scale = 1.0 / (BLOCK_S * rate)
        self.pos = 0

    def add(self, power: np.ndarray) -> None:
        start, self.pos = self.pos, self.pos + len(power)
        if not len(self.sums) or start >= self.edges[-1]:
            return
        power = power[: self.edges[-1] - start]  # past the last block: pyloudnorm ignores it too
        first = np.searchsorted(self.edges, start, side="right") - 1
        last = np.searchsorted(self.edges, start + len(power), side="left")
        cuts = np.maximum(self.edges[first:last] - start, 0)
        self.sums[first:last] += np.add.reduceat(power, cuts)

    def lufs(self) -> float:
        if not len(self.lo):
            return float("-inf")
        # Sum each block's few segments directly (no running total): a silent block stays exactly 0.
        span = self.hi - self.lo
        k = np.arange(span.max())
        idx = np.minimum(self.lo[:, None] + k, len(self.sums) - 1)
        z = np.where(k < span[:, None], self.sums[idx], 0.0).sum(axis=1)
        return _gated(self.scale * z)


def integrated_lufs(samples: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS, gated, BS.1770); -inf for silence or clips under 0.4 s.

    Metered in chunks: memory stays a few MiB however long the bulletin (tests hold it to pyloudnorm).
    ``samples`` may be 16-bit PCM, read as ``tts.audio.from_pcm16`` reads it: a written bulletin is
    measured without a float copy of it.
    """
    if len(samples) < int(BLOCK_S * rate):
        return float("-inf")
    meter = _Meter(len(samples), rate)
    for power in _k_weighted_power(samples, rate):
        meter.add(power)
    return meter.lufs()


def true_peak_dbtp(samples: np.ndarray, chunk: int = 1 << 16) -> float:
    """True peak per BS.1770-4 Annex 2: the peak of the signal oversampled four times.

    The oversampling is ``scipy.signal.resample_poly(x, 4, 1)``'s (``tts.audio.resample_poly``, float32
    sums: within 1e-5 dB of scipy's float64).  Done in overlapping chunks so a 3-minute bulletin never
    needs a 4x copy of itself in memory.  ``samples`` may be 16-bit PCM (see ``integrated_lufs``).

    An oversampled sample is a sum of taps times input samples, so it cannot exceed its chunk's sample
    peak times the largest sum of absolute taps of a phase (``reach``).  The chunks are oversampled
    loudest first, and once none left could beat the peak found they are skipped: the same result,
    usually from a few chunks (speech and a quiet bed), not all of them.
    """
    if len(samples) == 0:
        return float("-inf")
    overlap = 64
    taps, _ = polyphase_taps(4, 1, "float32")
    reach = float(np.abs(taps.astype(np.float64)).sum(axis=1).max()) * 1.0001  # and float32 rounding
    starts = range(0, len(samples), chunk)

    def block(start: int) -> np.ndarray:
        return as_float32(samples[max(0, start - overlap) : start + chunk + overlap]).astype(
            np.float32, copy=False
        )

    loudest = np.array([float(np.abs(block(start)).max()) for start in starts])
    peak = 0.0
    for i in np.argsort(-loudest, kind="stable"):
        if loudest[i] * reach <= peak:
            break
        start = starts[i]
        lo = max(0, start - overlap)
        up = resample_poly(block(start), 4, 1)
        # Ignore the filter's edge ringing; the overlap makes sure those samples are covered elsewhere.
        inner = up[4 * (start - lo) : 4 * (start - lo + chunk)] if len(up) > 8 * overlap else up
        peak = max(peak, float(np.max(np.abs(inner))) if len(inner) else 0.0)
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def _block_peaks(samples: np.ndarray, rate: int, gain: float = 1.0, chunk: int = PEAK_CHUNK) -> np.ndarray:
    """Peak of ``|samples * gain|`` per 1 ms block (the last one may be partial), in chunks.

    float32 multiplication rounds monotonically, so the peaks of a louder copy are exactly these peaks
    times the gain: the gain loop never needs a scaled copy of the whole bulletin.
    """
    block = max(1, rate // 1000)
    step = max(1, chunk // block) * block
    g = np.float32(gain)
    parts = []
    for start in range(0, len(samples), step):
        x = np.abs(samples[start : start + step] * g if gain != 1.0 else samples[start : start + step])
        usable = len(x) - len(x) % block
        parts.append(x[:usable].reshape(-1, block).max(axis=1))
        if usable < len(x):
            parts.append(x[usable:].max(keepdims=True))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def minimum_filter(x: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.minimum_filter1d(x, size, mode="nearest")``: the least of each ``size`` window
    centred on a sample (the edges repeated), the same values to the bit.

    Minima of windows of 2, 4, 8, ... samples are built by doubling; a window of ``size`` is covered
    exactly by two overlapping windows of the largest power of two within it.  A handful of whole-array
    ``np.minimum`` calls, however wide the window.
    """
    left = size // 2
    m = np.pad(x, (left, size - 1 - left), mode="edge")
    width = 1
    while 2 * width <= size:
        m = np.minimum(m[:-width], m[width:])  # m[i] is now the least of padded[i : i + 2 * width]
        width *= 2
    return np.minimum(m[: len(x)], m[size - width : size - width + len(x)])


def uniform_filter(x: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.uniform_filter1d(x, size, mode="nearest")`` to the bit: scipy's running sum in
    float64 (the first window summed in order, then one in, one out), divided by ``size``."""
    left = size // 2
    padded = np.pad(x.astype(np.float64), (left, size - 1 - left), mode="edge")
    sums = np.cumsum(np.concatenate((np.cumsum(padded[:size])[-1:], padded[size:] - padded[:-size])))
    return (sums / size).astype(x.dtype)


def _gain_from_peaks(peaks: np.ndarray, ceiling: float) -> np.ndarray | None:
    """Gain per 1 ms block (None when nothing is over the ceiling)."""
    if peaks.max(initial=0.0) <= ceiling:
        return None
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-9)).astype(np.float32)
    return uniform_filter(minimum_filter(need, HOLD_MS), SMOOTH_MS)


def _limiter_gain(samples: np.ndarray, rate: int, ceiling: float) -> np.ndarray | None:
    """Gain per 1 ms block (None when nothing is over the ceiling)."""
    return _gain_from_peaks(_block_peaks(samples, rate), ceiling)


def limit(
    samples: np.ndarray,
    rate: int,
    ceiling_dbfs: float,
    *,
    gain: float = 1.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """A look-ahead peak limiter: no sample of ``samples * gain`` above ``ceiling_dbfs``.

    The gain is computed on 1 ms blocks: each block gets the gain its loudest sample needs, that gain
    is held 15 ms either side of every peak and smoothed over 5 ms, then interpolated back to samples.
    Every block within reach of a peak holds a gain no higher than the peak needs, so neither the
    smoothing nor the interpolation can let the peak through, and gain changes ramp in before a peak
    instead of chopping it (no clicks on speech).  Working on blocks keeps a 3-minute bulletin at a few
    tens of milliseconds on a Pi.  ``gain`` is applied on the way (the same result as limiting
    ``samples * np.float32(gain)``) so a caller needs no scaled copy of the whole bulletin.  The result
    goes to ``out`` if given (float32, ``samples`` itself to limit in place) and is returned.
    """
    ceiling = db_to_gain(ceiling_dbfs)
    g = np.float32(gain)
    smooth = _gain_from_peaks(_block_peaks(samples, rate, gain), ceiling)
    if smooth is None and out is None:
        return samples if gain == 1.0 else samples * g
    if out is None:
        out = np.empty_like(samples, dtype=np.float32)
    block = max(1, rate // 1000)
    step = 1 << 16  # interpolate in pieces: a float64 gain curve for 3 minutes would be 35 MB
    for start in range(0, len(samples), step):
        stop = min(len(samples), start + step)
        # Each piece is read before it is written: ``out`` may be ``samples``.
        piece = samples[start:stop] * g if gain != 1.0 else samples[start:stop]
        if smooth is None:
            out[start:stop] = piece
            continue
        # Only the block centres around this piece (one either side): the same interpolation.
        first, end = max(0, start // block - 1), min(len(smooth), stop // block + 2)
        centres = np.arange(first, end, dtype=np.float64) * block + (block - 1) / 2
        curve = np.interp(np.arange(start, stop, dtype=np.float64), centres, smooth[first:end])
        out[start:stop] = piece * curve
    if smooth is not None:
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

    def __init__(self, samples: np.ndarray, rate: int, meter: _Meter | None = None):
        self.block = max(1, rate // 1000)
        self.rate = rate
        usable = len(samples) - len(samples) % self.block
        parts, start = [], 0
        # One K-weighting pass serves both: ``meter`` (if given) reads the input's loudness from it.
        # Chunks of whole milliseconds, so no millisecond is split between two.
        for power in _k_weighted_power(samples, rate, self.block):
            if meter is not None:
                meter.add(power)
            ms = power[: max(0, usable - start)]
            parts.append(ms.reshape(-1, self.block).sum(axis=1))
            start += len(power)
        self.energy_ms = np.concatenate(parts) if parts else np.zeros(0)

    def predict(self, gain_db: float, envelope: np.ndarray | None) -> float:
        e = self.energy_ms * db_to_gain(2 * gain_db)
        if envelope is not None:
            e = e * np.square(envelope[: len(e)], dtype=np.float64)
        per_100ms = e[: len(e) - len(e) % 100].reshape(-1, 100).sum(axis=1)
        if len(per_100ms) < 4:
            return float("-inf")
        window = self.block * 400  # samples in a 400 ms gating block
        return _gated(np.convolve(per_100ms, np.ones(4), mode="valid") / window)


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
    out: np.ndarray | None = None,
) -> LoudnessResult:
    """Bring ``samples`` to ``target_lufs``, limited to ``LIMITER_MARGIN_DB`` under ``ceiling_dbtp``.

    One meter reading up front; the limiter's loss is then predicted (``_LoudnessPredictor``) and the
    gain corrected until the prediction is on target.  The caller measures the result with the meter
    (``integrated_lufs``) and calls again with ``measured_lufs`` if it is still off.  ``out=samples``
    normalizes in place (the render's speech: one float copy of it fewer).
    """
    predictor = None
    measured = measured_lufs
    if measured is None:
        # The meter's reading and the predictor's energies come from the same K-weighting pass.
        meter = _Meter(len(samples), rate) if len(samples) >= int(BLOCK_S * rate) else None
        predictor = _LoudnessPredictor(samples, rate, meter)
        measured = meter.lufs() if meter is not None else float("-inf")
    if not np.isfinite(measured):
        if out is not None and out is not samples:
            out[:] = samples
        return LoudnessResult(samples if out is None else out, measured, 0.0, 0)
    gain_db = target_lufs - measured
    ceiling = ceiling_dbtp - LIMITER_MARGIN_DB
    # Louder input means more limiting, so loudness grows slower than the gain: secant steps on the
    # predicted reading converge in two or three cheap passes.
    predictor = predictor or _LoudnessPredictor(samples, rate)
    bias = measured - predictor.predict(0.0, None)  # the predictor's gating vs the meter's, tiny
    ceiling_lin = db_to_gain(ceiling)
    previous: tuple[float, float] | None = None
    passes = 0
    envelope = None
    peaks = _block_peaks(samples, rate)
    for passes in range(1, MAX_PASSES + 1):  # noqa: B007 - reported after the loop
        envelope = _gain_from_peaks(peaks * np.float32(db_to_gain(gain_db)), ceiling_lin)
        predicted = predictor.predict(gain_db, envelope) + bias
        if abs(predicted - target_lufs) <= tolerance_lu * 0.1:
            break
        slope = 1.0
        if previous is not None and abs(gain_db - previous[0]) > 1e-6:
            slope = min(1.0, max(0.1, (predicted - previous[1]) / (gain_db - previous[0])))
        previous = (gain_db, predicted)
        gain_db += (target_lufs - predicted) / slope
    del predictor, peaks, envelope  # per-millisecond arrays: not needed while the output exists
    out = limit(samples, rate, ceiling, gain=db_to_gain(gain_db), out=out)
    logger.debug("loudness: %.2f LUFS, gain %+.2f dB after %d passes", measured, gain_db, passes)
    return LoudnessResult(out.astype(np.float32, copy=False), float("nan"), gain_db, passes)
