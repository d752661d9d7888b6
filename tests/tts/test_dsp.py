"""The render path's numpy DSP against the scipy and pyloudnorm functions it replaced (issue 11).

scipy.signal alone cost the render ~80 MiB and 0.6 s of imports for a handful of functions, so the render
path rebuilds them with numpy: the K-weighting filters (pyloudnorm's coefficients, applied by FFT
convolution with their impulse response), scipy's polyphase resampler (espeak-ng's 22.05 kHz to the
station's rate, and the true-peak meter's 4x oversampling) and the limiter's minimum and moving-average
filters.  Each is held here to its reference, which stays installed for the tests only.
"""

from __future__ import annotations

import subprocess
from math import gcd

import numpy as np
import pyloudnorm
import pytest
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import firwin, resample_poly, sosfilt

from tests.conftest import require
from tts import audio, loudness
from tts.engines.espeak import parse_streamed_wav

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000)
TEXT = (
    "Kính thưa bà con. Hôm nay chúng ta học cách tạo mật khẩu an toàn cho tài khoản dịch vụ công. "
    "Mật khẩu cần ít nhất mười hai ký tự, có chữ hoa, chữ thường, chữ số và ký hiệu. "
    "Không dùng ngày sinh hay số điện thoại. Xin cảm ơn bà con đã lắng nghe."
)


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    """Real speech: espeak-ng's output (22.05 kHz, float32, peaking hot), with the pauses as exact zeros."""
    proc = subprocess.run(
        [require("espeak-ng"), "-v", "vi", "--stdout"], input=TEXT.encode(), capture_output=True, check=True
    )
    x, rate = parse_streamed_wav(proc.stdout)
    gap = np.zeros(int(0.8 * rate), dtype=np.float32)
    return np.concatenate((gap, x, gap, x[::-1] * np.float32(0.3), gap)), rate


def at(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    """The speech at another rate, through the scipy reference (so no test depends on ours twice)."""
    g = gcd(rate, to)
    return resample_poly(x, to // g, rate // g).astype(np.float32)


# -- K-weighting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_k_weighting_coefficients_are_pyloudnorms(rate):
    for (gain_db, q, fc, shape), row in zip(loudness.K_STAGES, loudness.k_weighting(rate), strict=True):
        ref = pyloudnorm.IIRfilter(gain_db, q, fc, rate, shape)
        np.testing.assert_allclose(row[:3], ref.b, rtol=0, atol=1e-12)
        np.testing.assert_allclose(row[3:], ref.a, rtol=0, atol=1e-12)
        assert ref.passband_gain == 1.0  # what the station's meter assumes
    # And pyloudnorm's meter uses exactly these two stages.
    meter = pyloudnorm.Meter(rate)
    assert [(f.G, f.Q, f.fc, f.filter_type) for f in meter._filters.values()] == list(loudness.K_STAGES)


@pytest.mark.parametrize("rate", RATES)
def test_k_impulse_response_is_sosfilts_until_it_has_died_away(rate):
    h = loudness.k_impulse(rate)
    impulse = np.zeros(2 * rate)
    impulse[0] = 1.0
    ref = sosfilt(loudness.k_weighting(rate), impulse)
    np.testing.assert_allclose(h, ref[: len(h)], rtol=0, atol=1e-15)
    # What the truncation drops is nothing a meter could read: 1e-13 of the peak, all of it together.
    assert np.abs(ref[len(h) :]).sum() < 1e-12 * np.abs(h).max()
    assert len(h) < 0.2 * rate  # the 38 Hz double pole is the slowest part: about 140 ms


@pytest.mark.parametrize("rate", [16000, 24000, 48000])
@pytest.mark.parametrize("block", [1, 24])
def test_k_weighting_filter_is_sosfilt_chunk_by_chunk(speech, rate, block):
    x = at(*speech, rate)
    kw = loudness._KWeighting(rate, block)
    assert kw.step % block == 0
    # Chunks of the filter's own step, then ragged ones (shorter than its carried tail, too).
    ours = [kw(x[s : s + kw.step]).copy() for s in range(0, len(x) // 2, kw.step)]
    done = sum(len(c) for c in ours)
    rng = np.random.default_rng(rate)
    while done < len(x):
        n = int(rng.integers(1, kw.step + 1))
        ours.append(kw(x[done : done + n]).copy())
        done += n
    ref = sosfilt(loudness.k_weighting(rate), x.astype(np.float64))
    err = np.abs(np.concatenate(ours) - ref).max()
    assert err < 1e-12 * np.abs(ref).max(), err


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
def test_integrated_loudness_of_real_speech_is_pyloudnorms(speech, rate):
    x = at(*speech, rate)
    for signal in (x, x * np.float32(0.05), np.tile(x, 3)):
        ref = pyloudnorm.Meter(rate).integrated_loudness(signal.astype(np.float64))
        assert loudness.integrated_lufs(signal, rate) == pytest.approx(ref, abs=1e-4)


# -- polyphase resampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("up", "down"), [(4, 1), (160, 147), (147, 160), (3, 2), (1, 2), (80, 147)])
def test_polyphase_taps_are_firwins_kaiser_filter(up, down):
    taps, k = audio.polyphase_taps(up, down)
    half = 10 * max(up, down)
    ref = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
    # Row ``phase`` holds ref[half + phase + j * up] for j = k .. -k (reversed), zero past the ends.
    for phase in range(up):
        idx = half + phase + np.arange(k, -k - 1, -1) * up
        expected = np.where((idx >= 0) & (idx <= 2 * half), ref[np.clip(idx, 0, 2 * half)], 0.0)
        np.testing.assert_allclose(taps[phase], expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("from_rate", "to_rate"), [(22050, 24000), (24000, 22050), (16000, 24000), (48000, 24000), (44100, 24000)]
)
def test_resample_is_scipys_resample_poly_on_speech(speech, from_rate, to_rate):
    x = speech[0] if from_rate == speech[1] else at(*speech, from_rate)
    g = gcd(from_rate, to_rate)
    ref = resample_poly(x, to_rate // g, from_rate // g)  # float32 in: scipy computes in float32 too
    ours = audio.resample(x, from_rate, to_rate)
    assert ours.dtype == np.float32 and len(ours) == len(ref)
    assert np.abs(ours - ref).max() < 1e-6  # float32 sums in another order; 1e-4 would be inaudible
    # Short and odd lengths: the edges are zero-padded the same way.
    for n in (1, 2, 7, 147, 161, 1000):
        np.testing.assert_allclose(
            audio.resample(x[:n], from_rate, to_rate),
            resample_poly(x[:n], to_rate // g, from_rate // g),
            atol=1e-6,
        )


@pytest.mark.parametrize(("up", "down"), [(4, 1), (160, 147), (2, 1), (1, 3)])
def test_resample_poly_in_float64_is_scipys_to_rounding(speech, up, down):
    x = speech[0][: 3 * speech[1]].astype(np.float64)
    ref = resample_poly(x, up, down)
    ours = audio.resample_poly(x, up, down)
    assert ours.dtype == np.float64 and len(ours) == len(ref)
    assert np.abs(ours - ref).max() < 1e-14


def test_resampling_leaves_the_input_alone_at_the_same_rate():
    x = np.arange(10, dtype=np.float32)
    assert audio.resample(x, 24000, 24000) is x
    assert len(audio.resample(x[:0], 22050, 24000)) == 0


# -- true peak --------------------------------------------------------------------------------------------


def reference_true_peak(x: np.ndarray) -> float:
    """The station's true-peak meter before issue 11: scipy's 4x resample_poly of the whole signal."""
    return float(20 * np.log10(np.abs(resample_poly(x.astype(np.float64), 4, 1)).max()))


@pytest.mark.parametrize("rate", [22050, 24000, 48000])
def test_true_peak_of_real_speech_is_scipys(speech, rate):
    x = speech[0] if rate == speech[1] else at(*speech, rate)
    for signal in (x, x * np.float32(0.1), x[: 5 * rate + 37]):
        assert loudness.true_peak_dbtp(signal) == pytest.approx(reference_true_peak(signal), abs=0.01)
        # Chunking changes nothing: chunks of any size see the same samples around their edges.
        assert loudness.true_peak_dbtp(signal, chunk=1000) == pytest.approx(
            loudness.true_peak_dbtp(signal), abs=1e-9
        )


def test_true_peak_finds_overs_between_samples_as_scipy_does():
    n = np.arange(24000)
    for freq, phase in ((6000, np.pi / 4), (5000, 0.3), (11000, 1.0), (997, 0.0)):
        x = (0.5 * np.sin(2 * np.pi * freq * n / 24000 + phase)).astype(np.float32)
        assert loudness.true_peak_dbtp(x) == pytest.approx(reference_true_peak(x), abs=0.01)
    for n_samples in (1, 3, 100, 129):  # shorter than the chunks' overlap: the whole signal is read
        x = np.random.default_rng(n_samples).uniform(-1, 1, n_samples).astype(np.float32)
        assert loudness.true_peak_dbtp(x) == pytest.approx(reference_true_peak(x), abs=0.01)


def every_chunk_true_peak(x: np.ndarray, chunk: int = 1 << 16) -> float:
    """The meter without its shortcut: every chunk oversampled (as before issue 11, in float32)."""
    peak = 0.0
    for start in range(0, len(x), chunk):
        lo = max(0, start - 64)
        up = audio.resample_poly(x[lo : start + chunk + 64].astype(np.float32), 4, 1)
        inner = up[4 * (start - lo) : 4 * (start - lo + chunk)] if len(up) > 512 else up
        peak = max(peak, float(np.abs(inner).max()))
    return 20.0 * np.log10(peak)


def test_true_peak_skips_only_chunks_that_cannot_hold_it(speech):
    x, rate = speech
    x = x * np.float32(0.75 / np.abs(x).max())
    rng = np.random.default_rng(8)
    bed = (rng.standard_normal(3 * len(x)) * 0.01).astype(np.float32)
    bulletin = np.concatenate((x, bed))
    # In the quiet part, across a chunk's edge: a sine at a quarter of the rate, 45 degrees off its crest.
    # Its samples (0.7) are under the speech's (0.75) but its true peak (0.99) is the bulletin's.
    edge = (len(x) // (1 << 16) + 2) * (1 << 16)
    n = np.arange(-20, 20)
    bulletin[edge - 20 : edge + 20] = 0.99 * np.sin(np.pi * n / 2 + np.pi / 4)
    assert every_chunk_true_peak(bulletin) > every_chunk_true_peak(x) + 2
    for signal in (bulletin, x, bed, bulletin[:1000]):
        assert loudness.true_peak_dbtp(signal) == every_chunk_true_peak(signal)
    pcm = audio.to_pcm16(bulletin * np.float32(0.5))
    assert loudness.true_peak_dbtp(pcm) == every_chunk_true_peak(audio.from_pcm16(pcm))


# -- the limiter's envelope filters -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 4, 5, 30, 31, 32, 1000, 180_000])
def test_envelope_filters_are_scipy_ndimages_to_the_bit(n):
    rng = np.random.default_rng(n)
    peaks = rng.uniform(0, 1.5, n).astype(np.float32)
    need = np.minimum(1.0, 0.7 / np.maximum(peaks, 1e-9)).astype(np.float32)  # what the limiter filters
    for x in (need, rng.random(n).astype(np.float32), rng.random(n)):
        for size in (1, 2, 4, 5, 31):
            np.testing.assert_array_equal(
                loudness.minimum_filter(x, size), minimum_filter1d(x, size, mode="nearest")
            )
            ours, ref = loudness.uniform_filter(x, size), uniform_filter1d(x, size, mode="nearest")
            assert ours.dtype == ref.dtype
            np.testing.assert_array_equal(ours, ref)
