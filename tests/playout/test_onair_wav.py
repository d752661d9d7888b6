"""The on-air process reads its cached WAVs with the standard library (no numpy, no soundfile: issue 11).

What must hold: every WAV the render writes (soundfile's PCM_16 mono) reads back sample for sample, and
a broken file is a miss or a refusal with its reason, never a crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import subprocess
import sys
import textwrap
from array import array
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from playout.onair import OnAir, read_pcm16
from tests.conftest import ROOT
from tts.cache import RenderCache, wav_frames

RATE = 24000


def wav_bytes(samples: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format="WAV", subtype=subtype)
    return out.getvalue()


def noise(frames: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, frames, dtype=np.int16)


def test_soundfiles_pcm16_wavs_read_back_sample_for_sample():
    samples = noise(RATE + 7)
    pcm, rate = read_pcm16(wav_bytes(samples))
    assert isinstance(pcm, array) and pcm.typecode == "h" and rate == RATE
    assert pcm.tolist() == samples.tolist()
    assert read_pcm16(wav_bytes(samples[:0]))[0].tolist() == []


def test_a_wav_cut_short_gives_the_frames_it_has():
    data = wav_bytes(noise(1000))
    assert len(read_pcm16(data[: 44 + 2 * 600 + 1])[0]) == 600  # half a sample at the end: dropped


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage" * 20,
        wav_bytes(noise(100))[:30],  # header cut short
        wav_bytes(np.zeros((100, 2), np.int16)),  # stereo
        wav_bytes(np.zeros(100, np.int16), subtype="PCM_24"),
        wav_bytes(np.zeros(100, np.float32), subtype="FLOAT"),
    ],
    ids=["empty", "garbage", "header-cut", "stereo", "24-bit", "float"],
)
def test_anything_but_a_16_bit_mono_wav_is_a_value_error(data):
    with pytest.raises(ValueError):
        read_pcm16(data)


def test_random_damage_to_a_header_is_never_a_crash():
    data = wav_bytes(noise(300))
    rng = np.random.default_rng(7)
    for _ in range(3000):
        damaged = bytearray(data[: int(rng.integers(0, len(data) + 1))])
        for _ in range(int(rng.integers(1, 4))):
            if damaged:
                damaged[int(rng.integers(0, min(60, len(damaged))))] = int(rng.integers(0, 256))
        with contextlib.suppress(ValueError):  # anything else fails the test
            read_pcm16(bytes(damaged))


# -- the check before the relay is keyed ------------------------------------------------------------------


def bulletin_with(tmp_path, data: bytes | None, *, duration_s: float, sha: str | None = None):
    path = tmp_path / "b.wav"
    if data is not None:
        path.write_bytes(data)
    summary = {"duration_s": duration_s, "audio_sha256": sha or hashlib.sha256(data or b"").hexdigest()}
    return SimpleNamespace(
        title="Tin", audio_path=path, summary=summary, duration_s=duration_s, status="ready"
    )


def checker(rerendered: list) -> OnAir:
    return OnAir(
        settings=None,
        relay=None,
        player=None,
        log=None,
        tz=None,
        stopping=None,
        rerender=lambda: rerendered.append(1),
        next_slot_text=lambda: "",
    )


def test_verified_audio_gives_the_samples_as_pcm16(tmp_path):
    samples = noise(2 * RATE)
    rerendered: list = []
    pcm, rate = checker(rerendered).verified_audio(
        bulletin_with(tmp_path, wav_bytes(samples), duration_s=2.0)
    )
    assert rate == RATE and pcm.typecode == "h" and pcm.tolist() == samples.tolist() and not rerendered


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("no file", "missing"),
        ("deleted", "unreadable (No such file or directory)"),
        ("changed", "changed since it was rendered (hash differs)"),
        ("not a wav", "not a readable WAV"),
        ("stereo", "not a readable WAV (2 channel(s) of 16-bit samples, not 16-bit mono)"),
        ("short", f"{RATE} frames, expected {2 * RATE}"),
    ],
)
def test_verified_audio_refuses_a_broken_file_with_the_reason(tmp_path, caplog, case, why):
    good = wav_bytes(noise(2 * RATE))
    data, sha = {
        "no file": (None, None),
        "deleted": (None, None),
        "changed": (good, "0" * 64),
        "not a wav": (b"RIFF" + bytes(100), None),
        "stereo": (wav_bytes(np.zeros((2 * RATE, 2), np.int16)), None),
        "short": (wav_bytes(noise(RATE)), None),
    }[case]
    bulletin = bulletin_with(tmp_path, data, duration_s=2.0, sha=sha)
    if case == "no file":
        bulletin.audio_path = None
    rerendered: list = []
    caplog.set_level(logging.ERROR, logger="playout.onair")
    assert checker(rerendered).verified_audio(bulletin) is None
    assert why in caplog.text and "not airing it; rendering it again" in caplog.text
    assert rerendered == [1] and bulletin.status == "pending" and bulletin.audio_path is None


# -- the render cache ------------------------------------------------------------------------------------


def cache_entry(tmp_path, data: bytes, frames: int):
    cache = RenderCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    summary = {"frames": frames, "sample_rate": RATE, "audio_sha256": hashlib.sha256(data).hexdigest()}
    cache.put(key, data, summary)
    return cache, key


def test_an_intact_cache_entry_is_a_hit(tmp_path):
    data = wav_bytes(noise(RATE))
    cache, key = cache_entry(tmp_path, data, RATE)
    assert wav_frames(cache.wav_path(key)) == (RATE, RATE)
    path, summary = cache.get(key)
    assert path == cache.wav_path(key) and summary["frames"] == RATE


@pytest.mark.parametrize("damage", ["cut", "garbage", "stereo", "cut-unhashed"])
def test_a_damaged_cache_entry_is_a_miss_with_a_warning(tmp_path, caplog, damage):
    data = wav_bytes(noise(RATE))
    cache, key = cache_entry(tmp_path, data, RATE)
    wav = cache.wav_path(key)
    if damage.startswith("cut"):
        wav.write_bytes(data[:5000])  # a power cut: the header promises more than there is
    elif damage == "garbage":
        wav.write_bytes(b"\0" * 5000)
    else:
        wav.write_bytes(wav_bytes(np.zeros((RATE, 2), np.int16)))
    if damage == "cut-unhashed":  # an entry from before the hash was kept: the header check alone
        meta = wav.with_suffix(".json")
        meta.write_text(json.dumps({**json.loads(meta.read_text()), "audio_sha256": None}))
    caplog.set_level(logging.WARNING, logger="tts.cache")
    assert cache.get(key) is None
    assert "rendering again" in caplog.text


def test_a_missing_cache_entry_is_a_quiet_miss(tmp_path, caplog):
    data = wav_bytes(noise(100))
    cache, key = cache_entry(tmp_path, data, 100)
    cache.wav_path(key).unlink()
    caplog.set_level(logging.WARNING, logger="tts.cache")
    assert cache.get(key) is None and not caplog.text


def test_reading_cached_audio_loads_neither_numpy_nor_soundfile(tmp_path):
    data = wav_bytes(noise(RATE))
    cache, key = cache_entry(tmp_path, data, RATE)
    code = textwrap.dedent(
        """
        import json, sys
        from pathlib import Path
        from playout.audio_out import NullPlayer
        from playout.onair import read_pcm16
        from tts.cache import RenderCache
        path, summary = RenderCache(Path(sys.argv[1])).get(sys.argv[2])
        pcm, rate = read_pcm16(path.read_bytes())
        result = NullPlayer().play(pcm[: rate // 20], rate)
        loaded = sorted({"numpy", "soundfile"} & set(sys.modules))
        print(json.dumps({"frames": result.frames, "loaded": loaded}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(cache.root), key],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"frames": RATE // 20, "loaded": []}
