"""Small, vectorised sample-level helpers shared by the engines, the fitter and the verifier.

All audio inside the pipeline is mono float32 in [-1, 1]; it becomes 16-bit PCM only when written.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from math import gcd

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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


#: ``scipy.signal.resample_poly``'s default anti-aliasing filter: a Kaiser-windowed sinc (beta 5) with
#: ten zero crossings either side of the centre at the higher of the two rates.
KAISER_BETA = 5.0
HALF_ZEROS = 10
#: Matrix products are kept small enough that OpenBLAS computes them in the calling thread: above
#: 262 144 multiply-adds (GEMM) or 9 216 (GEMV) it wakes its other threads, which then spin for a while
#: after every call, doubling the render's CPU time for no gain at these sizes.  Input samples handled
#: at a time when upsampling by a whole factor (2048 x 23 taps x 4 phases, 188 KB of windows):
POLY_CHUNK = 1 << 11
#: ... and multiply-adds per matrix-vector product of one phase.
GEMV_MACS = 9000


@lru_cache(maxsize=16)
def polyphase_taps(up: int, down: int, dtype: str = "float64") -> tuple[np.ndarray, int]:
    """resample_poly's filter for ``up/down`` (coprime), cut into its ``up`` phases.

    The filter is scipy's ``firwin(2 * half + 1, 1 / max(up, down), window=("kaiser", 5.0)) * up``
    with ``half = 10 * max(up, down)``, built from its formula.  Row ``phase`` holds the taps an output
    at that phase applies to ``2 * k + 1`` consecutive input samples (reversed: a dot product with the
    window of input, oldest first).  Returns (taps, k).
    """
    widest = max(up, down)
    half = HALF_ZEROS * widest
    cutoff = 1.0 / widest
    m = np.arange(2 * half + 1, dtype=np.float64) - half
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(2 * half + 1, KAISER_BETA)
    h /= np.sum(h)
    h *= up
    k = half // up + 1
    offset = np.arange(up)[:, None] + np.arange(-k, k + 1)[None, :] * up
    taps = np.where(np.abs(offset) <= half, h[np.clip(offset + half, 0, 2 * half)], 0.0)
    taps = np.ascontiguousarray(taps[:, ::-1], dtype=dtype)
    taps.flags.writeable = False  # shared through the cache
    return taps, k


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(x, up, down)`` (default window, zero padding) in numpy.

    Output ``i`` is the filter centred at input time ``i * down / up`` applied to the zero-stuffed
    input: the same sum scipy forms, in the same precision (float32 for float32 input, else float64),
    so the two agree to rounding (tests/tts/test_dsp.py holds them to it).  Outputs are computed a
    phase at a time, each a matrix-vector product over a strided view of the input (no copies of
    it); whole-factor upsampling (the true-peak meter's 4x) multiplies chunks of windows by all the
    phases at once.
    """
    g = gcd(up, down)
    up, down = up // g, down // g
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    if up == down == 1:
        return np.array(x, dtype=dtype)
    taps, k = polyphase_taps(up, down, np.dtype(dtype).name)
    n_in = len(x)
    n_out = -(-n_in * up // down)
    padded = np.zeros(n_in + 2 * k, dtype=dtype)
    padded[k : k + n_in] = x
    windows = sliding_window_view(padded, 2 * k + 1)  # windows[p] is centred on input sample p
    out = np.empty(n_out, dtype=dtype)
    if down == 1:
        rows = out.reshape(n_in, up)
        for start in range(0, n_in, POLY_CHUNK):
            # Overlapping windows copied into rows: one matrix product (BLAS) computes every phase.
            rows[start : start + POLY_CHUNK] = (
                np.ascontiguousarray(windows[start : start + POLY_CHUNK]) @ taps.T
            )
        return out
    rows = max(1, GEMV_MACS // taps.shape[1])
    for j in range(min(up, n_out)):
        # Outputs j, j + up, j + 2 up, ... share a phase and step ``down`` inputs at a time.
        first, phase = divmod(j * down, up)
        count = (n_out - j + up - 1) // up
        strided, dest = windows[first::down], out[j::up]
        for start in range(0, count, rows):
            stop = min(count, start + rows)
            np.matmul(strided[start:stop], taps[phase], out=dest[start:stop])
    return out


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 ``samples`` at ``to_rate``: scipy's polyphase resampler, rebuilt in numpy (tests hold
    the two together) so the render needs no scipy (80 MB and most of a second to import on a Pi)."""
    if from_rate == to_rate or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    return resample_poly(samples.astype(np.float32, copy=False), to_rate, from_rate)


def to_pcm16(
    samples: np.ndarray,
    *,
    dither_seed: int | None = None,
    chunk: int = 1 << 16,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """16-bit PCM, optionally with TPDF dither (one LSB peak) so quiet fades do not turn into grit.

    Chunked so a 3-minute bulletin never needs float copies of itself on a small Pi; a fixed seed keeps
    the output identical for identical input (the render cache and the tests rely on that).  ``samples``
    may be anything with ``len()`` whose slices are float32 arrays (``tts.fit.Mix`` computes the
    bulletin a slice at a time); ``out`` receives the PCM (the data of a ``wav_buffer``, say).
    """
    if out is None:
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


def as_float32(samples: np.ndarray) -> np.ndarray:
    """float32 samples from float32 audio (as is) or from 16-bit PCM (``from_pcm16``'s values).

    The meters take either and convert a chunk at a time: a written bulletin is measured from its PCM
    without a float copy of the whole of it.
    """
    return from_pcm16(samples) if samples.dtype == np.int16 else samples


WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def wav_buffer(frames: int, rate: int) -> tuple[bytearray, np.ndarray]:
    """A mono 16-bit WAV file of ``frames`` silent frames, and its samples as a writable int16 view.

    The same 44-byte header soundfile writes (tests/tts/test_audio.py compares them), so the render can
    quantize straight into the bytes it stores: no PCM array, WAV copy and ``bytes`` copy side by side.
    """
    size = 2 * frames
    wav = bytearray(WAV_HEADER.size + size)
    WAV_HEADER.pack_into(
        wav, 0, b"RIFF", 36 + size, b"WAVE", b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16, b"data", size
    )
    return wav, np.frombuffer(wav, dtype="<i2", offset=WAV_HEADER.size)
