"""The whole render pipeline with the real espeak-ng, checked on the written file.

Loudness and true peak are measured twice: by the pipeline (tts.loudness, held to pyloudnorm in
test_loudness_meter.py) and here, independently, by ffmpeg's EBU R128 meter reading the WAV the station
would air.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from playout.errors import RenderError, ScriptTooLong
from playout.intake import parse_script, read_script
from tests.conftest import SAMPLES, require
from tts import fit
from tts.audio import active_s, longest_silence_s
from tts.engines import Engine, Take, get_engine, register
from tts.render import Renderer, spoken_script

SHORT = {"bulletin": {"length_s": 30}}


def ffmpeg_r128(path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) as ffmpeg's ebur128 filter measures them."""
    out = subprocess.run(
        [
            require("ffmpeg"),
            "-nostats",
            "-hide_banner",
            "-i",
            str(path),
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    summary = out[out.rindex("Summary:") :]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary).group(1))
    return lufs, peak


def short_script(text="Kính thưa bà con. Hôm nay chúng ta học cách tạo mật khẩu an toàn.", **meta):
    front = "".join(f"{k}: {v}\n" for k, v in meta.items())
    data = (f"---\n{front}---\n" if front else "") + text
    return parse_script(data.encode("utf-8"), "tin-ngan.md")


# Imports the render path, renders one short bulletin with espeak-ng, then reports which of scipy and
# pyloudnorm ended up in ``sys.modules`` (tests/playout/test_cheap_commands.py probes commands this way).
RENDER_PROBE = """
import json, os, sys
from playout.config import parse_config
from playout.intake import parse_script
from tts.render import Renderer

config = parse_config(
    {"paths": {"data": "var"}, "tts": {"engines": ["espeak"]}, "bulletin": {"length_s": 30}, "windows": []},
    base=os.getcwd(),
)
text = "---\\ntitle: Thử\\n---\\nKính thưa bà con. Hôm nay chúng ta học cách tạo mật khẩu an toàn."
summary = Renderer(config).render(parse_script(text.encode(), "thu.md")).summary
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "pyloudnorm"})
print(json.dumps({"heavy": heavy, "lufs": summary["lufs"], "cached": summary["cached"]}))
"""


def test_the_render_path_loads_neither_scipy_nor_pyloudnorm(tmp_path):
    """scipy.signal alone cost ~80 MiB and 0.6 s of the render worker's start (issue 11); the render path
    does its DSP with numpy.  A fresh interpreter, as the worker is, renders and is checked."""
    require("espeak-ng")
    env = {k: v for k, v in os.environ.items() if k != "PLAYOUT_CONFIG"}
    proc = subprocess.run(
        [sys.executable, "-c", RENDER_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["cached"] is False and result["lufs"] == pytest.approx(-16.0, abs=0.5)  # it did render
    assert result["heavy"] == []


def test_short_bulletin_is_exact_even_loud_and_never_silent(make_config):
    config = make_config(**SHORT)
    result = Renderer(config).render(short_script(title="Mật khẩu an toàn"))
    s = result.summary
    audio, rate = sf.read(result.path, dtype="float32")
    info = sf.info(result.path)
    assert info.subtype == "PCM_16" and rate == 24000
    assert len(audio) == 30 * 24000 == s["frames"]
    lufs, peak = ffmpeg_r128(result.path)
    assert lufs == pytest.approx(-16.0, abs=0.5)
    assert peak <= -1.0
    assert s["lufs"] == pytest.approx(lufs, abs=0.3)
    fade = int(config.bulletin.fade_s * rate)
    assert longest_silence_s(audio[:-fade], rate) <= 3.0
    # Speech first, then the bed: the first seconds carry speech, the faded tail is near zero.
    assert active_s(audio[: int(s["speech_s"] * rate)], rate) > 0.5 * s["speech_s"]
    assert np.abs(audio[-50:]).max() < 0.01
    assert s["engine"] == "espeak" and s["voice"] == "vi"
    assert s["duration_s"] == 30
    assert fit.LEAD_SILENCE_S + s["speech_s"] + s["pauses_s"] + s["fill_s"] == pytest.approx(30, abs=0.05)


def test_same_request_twice_is_a_cache_hit_without_synthesis(make_config):
    config = make_config(**SHORT)
    renderer = Renderer(config)
    first = renderer.render(short_script())
    assert renderer.synth_calls == 1 and not first.cached
    again = Renderer(config).render(short_script())  # a new process would do the same
    assert again.cached and again.path == first.path
    assert again.summary["audio_sha256"] == first.summary["audio_sha256"]
    second = Renderer(config)
    second.render(short_script())
    assert second.synth_calls == 0
    # A different voice is a different bulletin.
    other = second.render(short_script(voice="vi-vn-x-south"))
    assert not other.cached and other.summary["voice"] == "vi-vn-x-south"


def test_damaged_cache_entry_is_rendered_again(make_config):
    config = make_config(**SHORT)
    first = Renderer(config).render(short_script())
    first.path.write_bytes(first.path.read_bytes()[:1000])  # truncated by a power cut
    renderer = Renderer(config)
    again = renderer.render(short_script())
    assert renderer.synth_calls == 1 and not again.cached
    assert sf.info(again.path).frames == 30 * 24000


def test_over_length_script_is_refused_with_what_to_cut(make_config):
    config = make_config(bulletin={"length_s": 20})
    text = " ".join(["Bà con mở ứng dụng ngân hàng, chọn mục thanh toán hóa đơn rồi nhập mã khách hàng."] * 8)
    renderer = Renderer(config)
    with pytest.raises(ScriptTooLong) as err:
        renderer.render(short_script(text))
    e = err.value
    assert e.code == "SCRIPT_TOO_LONG"
    assert e.context["words_to_cut"] > 50 and e.context["rate"] == 15
    assert "bớt khoảng" in e.message
    assert not list(config.cache_dir.rglob("*.wav"))


def test_a_script_slightly_too_long_for_natural_speed_is_read_faster(make_config):
    text = (
        "Bà con mở ứng dụng ngân hàng, chọn mục thanh toán hóa đơn. Rồi nhập mã khách hàng in trên hóa đơn."
    )
    script = short_script(text)
    probe = make_config(bulletin={**SHORT["bulletin"], "repeat_short": False})
    spoken = spoken_script(script, probe)
    natural = get_engine("espeak", probe.tts).synthesize(spoken.sentences, voice="vi", rate_pct=0).speech_s
    # A bulletin just too short for the natural reading with the tightest pauses: about 6 % short.
    b = probe.bulletin
    n_sent, n_para = fit.count_gaps(spoken.sections)
    overhead = (
        b.fade_s
        + fit.SPEECH_END_MARGIN_S
        + fit.LEAD_SILENCE_S
        + n_sent * b.sentence_pause_s[0]
        + n_para * b.paragraph_pause_s[0]
    )
    # Read once: this is about the rate, not the repetition of a short body.
    config = make_config(bulletin={"length_s": round(overhead + natural * 0.94, 2), "repeat_short": False})
    result = Renderer(config).render(script)
    assert 3 <= result.summary["rate"] <= 15
    assert result.summary["frames"] == round(config.bulletin.length_s * 24000)


class SilentEngine(Engine):
    """A broken engine: espeak's clips, but one sentence comes back silent (a truncated stream)."""

    name = "silent"

    def __init__(self, settings):
        super().__init__(settings)
        self.inner = get_engine("espeak", settings)

    def default_voice(self):
        return "vi"

    def voices(self):
        return ("vi",)

    def synthesize(self, sentences, *, voice, rate_pct):
        take = self.inner.synthesize(sentences, voice=voice, rate_pct=rate_pct)
        take.clips[1] = np.zeros(int(0.05 * take.sample_rate), dtype=np.float32)
        return Take(self.name, voice, rate_pct, take.sample_rate, take.clips)


def test_silence_from_an_engine_never_becomes_air_ready(make_config):
    register("silent", SilentEngine)
    config = make_config(**SHORT)
    with pytest.raises(RenderError) as err:
        Renderer(config, engines=["silent"]).render(short_script())
    assert err.value.code == "ENGINES_EXHAUSTED"
    assert "gần như không có tiếng" in err.value.message
    assert not list(config.cache_dir.rglob("*.wav"))


def test_chain_falls_back_to_the_next_engine_and_says_so(make_config):
    register("silent", SilentEngine)
    config = make_config(**SHORT)
    result = Renderer(config, engines=["silent", "espeak"]).render(short_script())
    assert result.summary["engine"] == "espeak"
    assert any("dự phòng" in w for w in result.summary["warnings"])


def test_unknown_engine_in_chain_is_skipped(make_config):
    config = make_config(**SHORT)
    result = Renderer(config, engines=["piper", "espeak"]).render(short_script())
    assert result.summary["engine"] == "espeak"


def test_music_bed_fills_the_end(make_config, tmp_path):
    mp3 = tmp_path / "bed.mp3"
    subprocess.run(
        [
            require("ffmpeg"),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            str(mp3),
        ],
        check=True,
    )
    config = make_config(bulletin={"length_s": 30, "music_bed": str(mp3)})
    result = Renderer(config).render(short_script())
    audio, rate = sf.read(result.path, dtype="float32")
    tail = audio[int((result.summary["speech_s"] + result.summary["pauses_s"] + 3) * rate) : -3 * rate]
    spectrum = np.abs(np.fft.rfft(tail[:rate]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=3)  # 1 s of tail = 1 Hz bins


@pytest.mark.slow
def test_full_length_samples_and_estimate_accuracy(make_config):
    """The shipped samples at the real 3:00; check's estimate within 10 % of the real speech time."""
    config = make_config()
    renderer = Renderer(config)
    for path in sorted(SAMPLES.iterdir()):
        script = read_script(path)
        estimate = renderer.estimate(script)
        result = renderer.render(script)
        s = result.summary
        assert s["frames"] == 180 * 24000
        assert s["lufs"] == pytest.approx(-16, abs=0.5) and s["true_peak_dbtp"] <= -1.0
        assert s["longest_silence_s"] <= 3.0
        assert estimate.rate_pct == s["rate"], path.name
        assert estimate.speech_s == pytest.approx(s["speech_s"], rel=0.10), path.name


@pytest.mark.slow
def test_a_longer_bulletin_costs_little_more_than_its_wav(make_config):
    """The render holds the speech and the WAV's bytes; the bed, the mix and the written samples are
    computed and measured a chunk at a time (issue 11).  The same script in a 3- and a 10-minute
    bulletin: what grows is the WAV (2 bytes a frame) and per-millisecond figures, where it used to be
    ~4.8 float32 copies of the bulletin (0.44 MiB per second of bulletin)."""
    script = read_script(SAMPLES / "tai-khoan-dich-vu-cong.md")
    once = {"repeat_short": False}  # the same speech at every length
    Renderer(make_config(bulletin={"length_s": 120, **once})).render(script)  # the per-process caches, first
    peaks = {}
    for length in (180, 600):
        config = make_config(bulletin={"length_s": length, **once})
        tracemalloc.start()
        try:
            summary = Renderer(config).render(script).summary
            peaks[length] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        assert summary["frames"] == length * 24000 and summary["lufs"] == pytest.approx(-16, abs=0.5)
    float_copy_per_s = 4 * 24000 / 2**20  # MiB a second of bulletin costs in float32: 0.09
    growth = (peaks[600] - peaks[180]) / (600 - 180)
    assert growth < 0.6 * float_copy_per_s, f"{growth:.3f} MiB/s ({peaks})"


def test_a_loud_bed_under_a_short_script_gives_way_to_the_speech(make_config, caplog):
    # Eight seconds of speech in a minute, the bed set only 6 dB under it: the loudness gate would count
    # the bed and pull the bulletin's loudness down; the renderer lowers the bed instead.
    config = make_config(bulletin={"length_s": 60, "bed_level_db": -6, "repeat_short": False})  # read once
    with caplog.at_level("INFO", logger="tts.render"):
        result = Renderer(config).render(short_script("Kính thưa bà con. Xin mời nghe tin."))
    lufs, peak = ffmpeg_r128(result.path)
    assert lufs == pytest.approx(-16.0, abs=0.5) and peak <= -1.0
    assert "bed lowered" in caplog.text


def test_a_short_body_is_read_twice_and_the_outro_offers_a_qr_code_only_with_a_link(make_config):
    """Ward loudspeakers repeat their announcements: a body that fits twice is read twice with "Xin nhắc
    lại" between, instead of once and then minutes of pad with the amplifier on."""
    text = "Bà con chú ý. Chiều nay phun thuốc diệt muỗi tại tổ dân phố 3. Xin cảm ơn."
    config = make_config(bulletin={"length_s": 40})
    spoken = spoken_script(short_script(text), config)
    assert spoken.repeated and ["xin nhắc lại."] in spoken.sections
    body = [s for s in spoken.sections if "phun thuốc" in " ".join(s)]
    assert len(body) == 2 and body[0] == body[1]
    # No link and no qr.base_url: nothing to scan, so no invitation to scan.
    assert spoken.sections[-1] == ["xin cảm ơn bà con đã lắng nghe."]
    linked = spoken_script(short_script(text, link="https://dichvucong.gov.vn"), config)
    assert "quét mã quy a" in " ".join(linked.sections[-1])
    # Too long to fit twice: read once, the fill as before.
    long_text = " ".join([text] * 6)
    assert not spoken_script(short_script(long_text), config).repeated
    off = make_config(bulletin={"length_s": 40, "repeat_short": False})
    assert not spoken_script(short_script(text), off).repeated

    twice = Renderer(config).render(short_script(text)).summary
    once = Renderer(off).render(short_script(text)).summary
    assert twice["repeated"] and not once["repeated"]
    assert twice["speech_s"] > 1.6 * once["speech_s"] and twice["fill_s"] < once["fill_s"]
    assert twice["frames"] == once["frames"] == 40 * 24000


def test_a_repetition_that_comes_out_too_long_falls_back_to_one_reading(make_config, monkeypatch):
    """The decision to read twice is an estimate; if the engine reads slower than that, the bulletin is
    read once, never refused for it."""
    from tts import request

    text = "Bà con chú ý. Chiều nay phun thuốc diệt muỗi tại tổ dân phố 3 và tổ dân phố 4. Xin cảm ơn."
    config = make_config(bulletin={"length_s": 20})
    assert not spoken_script(short_script(text), config).repeated  # honestly: too long to read twice
    monkeypatch.setattr(request, "REPEAT_MARGIN", 0.3)  # an estimate far too optimistic
    assert spoken_script(short_script(text), config).repeated
    summary = Renderer(config).render(short_script(text)).summary
    assert not summary["repeated"] and summary["frames"] == 20 * 24000
