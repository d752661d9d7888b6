"""The render path's BS.1770 meter against pyloudnorm, the reference it replaced (issue 11).

The station meters every bulletin in chunks so its memory does not grow with the bulletin; pyloudnorm
filters the whole signal at once (float64 copies of all of it).  The station's meter needs neither
pyloudnorm nor scipy (its K-weighting is an FFT convolution with the filters' impulse response), but
both must read the same loudness: the station's tolerance is 0.5 LU, the meter is held to 1e-4 LU here.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from scipy.signal import butter, lfilter

from playout.intake import parse_script, read_script
from tests.conftest import SAMPLES
from tts import loudness
from tts.render import Renderer

AGREE_LU = 1e-4
MiB = 1 << 20


def reference(samples: np.ndarray, rate: int) -> float:
    """pyloudnorm on float64 input: its most precise path."""
    return float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))


def tone(freq: float, seconds: float, rate: int, dbfs: float) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def bursts(seconds: float, rate: int, seed: int = 3, gap_s: tuple[float, float] = (2.0, 8.0)) -> np.ndarray:
    """Speech-like bursts (syllable-rate noise, 0.5-3 s) between long runs of exact zeros.

    The zeros are what an assembled bulletin looks like before the bed: the filters' tails decay in
    them, which is where subnormal floats appeared.
    """
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * rate), dtype=np.float32)
    b, a = butter(4, min(4000, rate * 0.45), fs=rate)
    pos = int(rng.uniform(0.1, 1.0) * rate)
    while pos < len(out):
        n = min(len(out) - pos, int(rng.uniform(0.5, 3.0) * rate))
        t = np.arange(n) / rate
        env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
        out[pos : pos + n] = lfilter(b, a, rng.standard_normal(n)) * env * rng.uniform(0.05, 0.4)
        pos += n + int(rng.uniform(*gap_s) * rate)
    return out


def fade(x: np.ndarray, rate: int) -> np.ndarray:
    """A steady fade of 3 dB a second: blocks cross the relative gate, then the absolute one."""
    return (x * 10 ** (-3 * np.arange(len(x)) / rate / 20)).astype(np.float32)


SIGNALS = {
    "1 kHz at -20 dBFS, 24 kHz": lambda: (tone(1000, 10, 24000, -20), 24000),
    "100 Hz at -6 dBFS, 48 kHz": lambda: (tone(100, 7.3, 48000, -6), 48000),
    "5 kHz at -30 dBFS, 44.1 kHz": lambda: (tone(5000, 5.05, 44100, -30), 44100),
    "30 Hz (under the high-pass), 16 kHz": lambda: (tone(30, 12, 16000, -10), 16000),
    "just over the -70 LUFS gate, 22.05 kHz": lambda: (tone(1000, 6, 22050, -66.5), 22050),
    "a fade through both gates": lambda: (fade(tone(1000, 20, 24000, -20), 24000), 24000),
    "bursts with long silences, 24 kHz": lambda: (bursts(180, 24000), 24000),
    "bursts with long silences, 48 kHz": lambda: (bursts(60, 48000, seed=5), 48000),
    "dense bursts, odd length": lambda: (bursts(33.3331, 24000, seed=9, gap_s=(0.1, 0.6)), 24000),
    "one gating block exactly": lambda: (tone(440, 0.4, 24000, -12), 24000),
    "a block and a bit": lambda: (tone(440, 0.4501, 24000, -12), 24000),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_meter_agrees_with_pyloudnorm(name):
    x, rate = SIGNALS[name]()
    ours, ref = loudness.integrated_lufs(x, rate), reference(x, rate)
    assert np.isfinite(ref)
    assert ours == pytest.approx(ref, abs=AGREE_LU)


def test_silence_and_short_clips_read_minus_infinity():
    assert loudness.integrated_lufs(np.zeros(24000 * 5, dtype=np.float32), 24000) == float("-inf")
    assert reference(np.zeros(24000 * 5), 24000) == float("-inf")
    assert loudness.integrated_lufs(tone(1000, 0.39, 24000, -10), 24000) == float("-inf")


def test_filters_never_compute_in_subnormal_floats(monkeypatch):
    """Exact zeros after speech let a recursive filter's tails decay into subnormal floats, which many
    CPUs handle in microcode at tens of times the cost.  The K-weighting is a convolution now; neither
    what it returns nor what it carries from one chunk to the next may be subnormal."""
    found: list[str] = []
    calls = []
    tiny = np.finfo(np.float64).tiny

    def subnormal(a: np.ndarray) -> bool:
        a = np.abs(a)
        return bool(np.any((a > 0) & (a < tiny)))

    call = loudness._KWeighting.__call__

    def watched(self, x):
        y = call(self, x)
        calls.append(len(x))
        if subnormal(y) or subnormal(self.carry):
            found.append("K-weighting")
        return y

    monkeypatch.setattr(loudness._KWeighting, "__call__", watched)
    x = bursts(60, 24000, seed=11)
    loudness.integrated_lufs(x, 24000)
    loudness.normalize(x, 24000, target_lufs=-16.0, ceiling_dbtp=-1.0, tolerance_lu=0.5)
    assert sum(calls) == 2 * len(x)  # both meterings went through the watched filter
    assert not found


def traced_peak_mib(fn, *args) -> tuple[float, object]:
    tracemalloc.start()
    try:
        result = fn(*args)
        return tracemalloc.get_traced_memory()[1] / MiB, result
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_meter_memory_is_bounded_on_a_30_minute_signal():
    rate = 24000
    three = bursts(180, rate, seed=13, gap_s=(0.3, 4.0))
    peak3, lufs3 = traced_peak_mib(loudness.integrated_lufs, three, rate)
    assert lufs3 == pytest.approx(reference(three, rate), abs=AGREE_LU)
    thirty = np.tile(three, 10)  # 165 MiB of float32: pyloudnorm would need 5x that on top
    peak30, lufs30 = traced_peak_mib(loudness.integrated_lufs, thirty, rate)
    # The same three minutes ten times over read the same (only the seams' blocks differ).
    assert lufs30 == pytest.approx(lufs3, abs=AGREE_LU)
    # Chunks and per-block sums only: a few MiB, against 16.5 MiB for the 3-minute signal itself.
    assert peak3 < 4 and peak30 < 4, (peak3, peak30)
    assert peak30 < peak3 + 1.5  # what grows is ten 400 ms blocks per second of float64


def render_and_capture(config, script, monkeypatch) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render for real; return the speech as loudness received it, the written samples, the summary."""
    captured = {}
    normalize = loudness.normalize

    def capture(samples, rate, **kw):
        captured["speech"] = samples.copy()
        return normalize(samples, rate, **kw)

    monkeypatch.setattr(loudness, "normalize", capture)
    result = Renderer(config).render(script)
    written, _ = sf.read(result.path, dtype="float32")
    return captured["speech"], written, result.summary


@pytest.mark.parametrize("length_s", [30, 180])
def test_meter_agrees_with_pyloudnorm_on_real_renders(make_config, monkeypatch, length_s):
    config = make_config(bulletin={"length_s": length_s})
    if length_s == 30:
        text = "Kính thưa bà con. Hôm nay chúng ta học cách tạo mật khẩu an toàn. Xin cảm ơn bà con."
        script = parse_script(f"---\ntitle: Mật khẩu\n---\n{text}".encode(), "ngan.md")
    else:
        script = read_script(SAMPLES / "tai-khoan-dich-vu-cong.md")
    speech, written, summary = render_and_capture(config, script, monkeypatch)
    rate = config.bulletin.sample_rate
    assert np.mean(speech == 0) > 0.2  # pauses of exact zeros: the case that produced subnormals
    assert loudness.integrated_lufs(speech, rate) == pytest.approx(reference(speech, rate), abs=AGREE_LU)
    ref = reference(written, rate)
    assert loudness.integrated_lufs(written, rate) == pytest.approx(ref, abs=AGREE_LU)
    assert summary["lufs"] == pytest.approx(ref, abs=0.005 + AGREE_LU)  # rounded to 0.01 in the summary


@pytest.mark.slow
def test_verifier_measures_without_copies_of_the_bulletin(make_config):
    """measure() took two float32 copies of the bulletin per level check (frame levels for dead air,
    then again for speech activity): at 0.09 MiB per second of bulletin each, the render's peak."""
    from tts.audio import active_s, longest_silence_s
    from tts.verify import measure

    b = make_config(bulletin={"length_s": 600}).bulletin  # long enough that copies dwarf fixed costs
    rate = b.sample_rate
    x = bursts(b.length_s, rate, seed=17, gap_s=(0.2, 3.5))
    speech_end = len(x) - int(5 * rate)
    peak, m = traced_peak_mib(measure, x, rate, b, speech_end)
    fade_start = len(x) - int(round(b.fade_s * rate))
    # The same figures as the sample-level helpers give.
    assert m.longest_silence_s == longest_silence_s(x[:fade_start], rate)
    assert m.speech_active_s == active_s(x[:speech_end], rate)
    assert m.lufs == pytest.approx(reference(x, rate), abs=AGREE_LU)
    # Fixed-size chunks only (the true-peak meter's 4x oversampled chunk and its windows: a few MiB).
    assert peak < 0.5 * x.nbytes / MiB, f"{peak:.1f} MiB for a {x.nbytes / MiB:.1f} MiB bulletin"
