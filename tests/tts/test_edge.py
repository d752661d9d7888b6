"""The edge engine: the real edge-tts client against the local fake service (tests/fake_edge.py)."""

from __future__ import annotations

import subprocess
import time

import pytest
import soundfile as sf

from playout.config import TtsSettings
from playout.errors import EngineError, EngineUnavailable
from playout.intake import parse_script
from tests.conftest import require
from tests.fake_edge import FakeEdge
from tts.audio import active_s
from tts.engines import edge as edge_engine
from tts.engines import get_engine
from tts.render import Renderer

FAST = {"edge_attempt_timeout_s": 2.0, "edge_retries": 1, "edge_backoff_s": 0.1, "edge_outage_s": 300}


@pytest.fixture
def fake(monkeypatch):
    """Start a fake Edge service in the given mode and point the engine at it."""
    started = []

    def start(mode="ok", **kw):
        f = FakeEdge(mode, **kw).__enter__()
        started.append(f)
        monkeypatch.setenv(edge_engine.URL_ENV, f.url)
        return f

    edge_engine.reset_outages()
    yield start
    for f in started:
        f.__exit__(None, None, None)
    edge_engine.reset_outages()


def script(text="Kính thưa bà con. Hôm nay học cách quét mã QR. Xin cảm ơn bà con.", **meta):
    front = "".join(f"{k}: {v}\n" for k, v in meta.items())
    return parse_script(((f"---\n{front}---\n" if front else "") + text).encode(), "edge.md")


def renderer(make_config, **tts):
    config = make_config(bulletin={"length_s": 40}, tts={"engines": ["edge", "espeak"], **FAST, **tts})
    return Renderer(config)


def edge(**tts) -> edge_engine.EdgeEngine:
    return get_engine("edge", TtsSettings(**{**FAST, **tts}))


def test_success_uses_the_neural_voice_and_records_it(fake, make_config):
    f = fake("ok")
    result = renderer(make_config).render(script())
    s = result.summary
    assert (s["engine"], s["voice"], s["fallback"]) == ("edge", "vi-VN-HoaiMyNeural", False)
    assert len(f.requests) == 1
    assert "HoaiMyNeural" in f.requests[0]["voice"]
    assert f.requests[0]["rate"] == f"{s['rate']:+d}%"
    assert s["lufs"] == pytest.approx(-16, abs=0.5) and s["true_peak_dbtp"] <= -1
    assert sf.info(result.path).frames == 40 * 24000


def test_each_sentence_gets_its_own_clip(fake):
    fake("ok")
    sentences = [
        "Kính thưa bà con.",
        "Hôm nay chúng ta học cách tạo mật khẩu an toàn cho điện thoại.",
        "Xin cảm ơn.",
    ]
    take = edge().synthesize(sentences, voice="vi-VN-HoaiMyNeural", rate_pct=0)
    assert take.sample_rate == 24000 and len(take.clips) == 3
    assert all(active_s(c, 24000) > 0.3 for c in take.clips)
    assert len(take.clips[1]) > 2 * len(take.clips[0])


def test_long_script_spans_several_requests_without_losing_a_sentence(fake):
    f = fake("ok")
    base = [
        "Bà con mở ứng dụng ngân hàng trên điện thoại.",
        "Chọn mục thanh toán hóa đơn rồi chọn loại dịch vụ cần trả.",
        "Nhập mã khách hàng in trên hóa đơn và kiểm tra kỹ số tiền.",
        "Không cho người khác mượn điện thoại để chuyển tiền.",
    ]
    sentences = (base * 24)[:90]
    assert len("\n".join(sentences).encode()) > 4096 * 1.2
    take = edge().synthesize(sentences, voice="vi-VN-HoaiMyNeural", rate_pct=0)
    assert f.connections >= 2 and len(f.requests) >= 2
    assert len(take.clips) == len(sentences)
    # Continuity: every clip, including the ones at the joins between requests, is a whole sentence:
    # the same sentence reads the same length wherever it falls.
    lengths = {}
    for s, clip in zip(sentences, take.clips, strict=True):
        lengths.setdefault(s, []).append(len(clip) / 24000)
    for s, seen in lengths.items():
        assert max(seen) - min(seen) < 0.25, (s, seen)


def test_ssml_special_characters_are_read_not_interpreted(fake):
    f = fake("ok")
    text = 'Giá < 5 & > 3 "nghìn" <speak> </voice>'
    take = edge().synthesize([text], voice="vi-VN-NamMinhNeural", rate_pct=0)
    assert f.requests[-1]["text"] == text
    assert "NamMinhNeural" in f.requests[-1]["voice"]
    assert active_s(take.clips[0], 24000) > 0.5


def test_unknown_voice_never_reaches_the_service(fake):
    f = fake("ok")
    with pytest.raises(EngineError) as err:
        edge().synthesize(["Xin chào."], voice="vi-VN-HoaiMyNeural'><evil", rate_pct=0)
    assert err.value.code == "VOICE_UNKNOWN"
    assert f.connections == 0


def timed_render(make_config, caplog, **tts):
    r = renderer(make_config, **tts)
    t0 = time.monotonic()
    with caplog.at_level("WARNING"):
        result = r.render(script())
    return result.summary, time.monotonic() - t0


@pytest.mark.parametrize(
    "mode, connections, bound_s, log",
    [
        ("refuse", 0, 4.0, "ClientConnectorError"),
        ("403", 2, 4.0, "handshake 403"),  # the client's own clock-skew retry, then no retry of ours
        ("403-no-date", 1, 4.0, "skew"),
        ("503", 2, 5.0, "handshake 503"),  # one retry with backoff, then offline
        ("stall", 2, 2 * 2.0 + 0.1 + 5.0, "timeout"),  # two bounded attempts, then espeak
    ],
)
def test_service_faults_fall_back_offline_quickly(fake, make_config, caplog, mode, connections, bound_s, log):
    f = fake(mode)
    s, took = timed_render(make_config, caplog)
    assert s["engine"] == "espeak" and s["fallback"] is True
    assert any("Edge" in w for w in s["warnings"])
    if mode != "refuse":
        assert f.connections == connections
    assert took < bound_s
    assert log in caplog.text and "edge vi-VN-HoaiMyNeural attempt" in caplog.text
    # A service fault is the service's, not the voice's: the second voice is not tried.
    assert "NamMinh" not in caplog.text


def test_no_audio_for_one_voice_tries_the_other_voice(fake, make_config, caplog):
    fake("ok", silent_voices=["vi-VN-HoaiMyNeural"])
    s, _ = timed_render(make_config, caplog)
    assert (s["engine"], s["voice"], s["fallback"]) == ("edge", "vi-VN-NamMinhNeural", True)
    assert "no audio" in caplog.text


def test_audio_cut_short_is_a_failure_never_a_bulletin(fake, make_config, caplog):
    f = fake("partial")
    s, _ = timed_render(make_config, caplog)
    # Both voices came back truncated (with one retry each); the bulletin is espeak's, complete.
    assert s["engine"] == "espeak"
    assert "truncated" in caplog.text.lower() or "boundaries stop" in caplog.text
    assert len(f.requests) == 4


def test_cut_short_is_detected_at_the_engine(fake):
    fake("partial")
    with pytest.raises(EngineError) as err:
        edge(edge_retries=0).synthesize(
            ["Kính thưa bà con.", "Hôm nay học cách quét mã QR.", "Xin cảm ơn bà con."],
            voice="vi-VN-HoaiMyNeural",
            rate_pct=0,
        )
    assert err.value.code == "EDGE_TRUNCATED"


def test_failure_midway_through_a_long_script(fake):
    fake("close-after-first-request")
    sentences = ["Bà con mở ứng dụng ngân hàng trên điện thoại và chọn mục thanh toán hóa đơn."] * 80
    with pytest.raises((EngineError, EngineUnavailable)):
        edge(edge_retries=0).synthesize(sentences, voice="vi-VN-HoaiMyNeural", rate_pct=0)


def test_outage_is_remembered_so_later_renders_do_not_wait(fake, make_config, caplog):
    f = fake("stall")
    timed_render(make_config, caplog)
    seen = f.connections
    r = renderer(make_config)
    t0 = time.monotonic()
    s = r.render(script("Một bản tin khác. Xin cảm ơn bà con.")).summary
    assert s["engine"] == "espeak" and f.connections == seen
    assert time.monotonic() - t0 < 3.0


def test_a_cached_render_never_needs_the_network_again(fake, make_config, monkeypatch):
    up = fake("ok")
    first = renderer(make_config).render(script())
    assert first.summary["engine"] == "edge"
    down = fake("refuse")  # the Internet is gone
    again = renderer(make_config).render(script())
    assert again.cached and again.summary["engine"] == "edge"
    assert again.summary["audio_sha256"] == first.summary["audio_sha256"]
    assert up.connections == 1 and down.connections == 0


def test_service_url_override_keeps_a_query_string(monkeypatch):
    monkeypatch.setenv(edge_engine.URL_ENV, "ws://127.0.0.1:9/edge/v1")
    assert edge_engine.service_url().startswith("ws://127.0.0.1:9/edge/v1?")
    monkeypatch.delenv(edge_engine.URL_ENV)
    assert edge_engine.service_url().startswith("wss://speech.platform.bing.com/")


def test_real_mp3_through_the_decoder():
    ffmpeg = require("ffmpeg")
    mp3 = subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=500:duration=1",
            "-ar",
            "24000",
            "-ac",
            "1",
            "-b:a",
            "48k",
            "-f",
            "mp3",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    samples = edge_engine.decode_mp3(mp3)
    assert abs(len(samples) / 24000 - 1.0) < 0.1
    with pytest.raises(EngineError):
        edge_engine.decode_mp3(b"not an mp3 at all" * 10)
