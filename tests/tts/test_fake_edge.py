"""The fake Edge read-aloud service, driven by the real edge_tts client (no network: 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import aiohttp
import edge_tts
import numpy as np
import pytest
from edge_tts.drm import DRM
from edge_tts.exceptions import NoAudioReceived, SkewAdjustmentError

from tests.fake_edge import (
    MP3_DELAY_SAMPLES,
    MP3_SAMPLE_RATE,
    TICKS_PER_SECOND,
    FakeEdge,
    espeak_wpm,
    full_voice_name,
    parse_ssml,
    patch_client,
    split_sentences,
)

HOAIMY = "vi-VN-HoaiMyNeural"
NAMMINH = "vi-VN-NamMinhNeural"
HOAIMY_FULL = "Microsoft Server Speech Text to Speech Voice (vi-VN, HoaiMyNeural)"

BULLETIN = (
    "Kính thưa bà con khu phố ba. Sáng mai, lúc bảy giờ, phường tổ chức tiêm chủng tại nhà văn hóa!\n"
    "Bà con nhớ mang theo sổ tiêm chủng nhé?\n"
    "Xin cảm ơn bà con."
)
BULLETIN_SENTENCES = [
    "Kính thưa bà con khu phố ba.",
    "Sáng mai, lúc bảy giờ, phường tổ chức tiêm chủng tại nhà văn hóa!",
    "Bà con nhớ mang theo sổ tiêm chủng nhé?",
    "Xin cảm ơn bà con.",
]


class Result:
    def __init__(self) -> None:
        self.audio = bytearray()
        self.events: list[dict] = []  # boundary events, each with the audio bytes received before it


async def _stream(text: str, voice: str, result: Result, **kwargs) -> None:
    async for chunk in edge_tts.Communicate(text, voice, **kwargs).stream():
        if chunk["type"] == "audio":
            result.audio += chunk["data"]
        else:
            result.events.append({**chunk, "audio_before": len(result.audio)})


def synth(fake: FakeEdge, text: str, voice: str = HOAIMY, *, timeout: float = 30, result=None, **kwargs):
    """Run the real client against the fake; return a Result (also filled in when it raises)."""
    result = Result() if result is None else result
    kwargs.setdefault("rate", "+0%")
    with patch_client(fake.url):
        asyncio.run(asyncio.wait_for(_stream(text, voice, result, **kwargs), timeout))
    return result


def decode(mp3: bytes) -> tuple[np.ndarray, int, int]:
    """Samples (float), sample rate and channels of an MP3, as ffmpeg decodes it."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-f", "mp3", "-i", "pipe:0", "-show_streams", "-of", "json"],
        input=mp3,
        capture_output=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "mp3", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1"],
        input=mp3,
        capture_output=True,
        check=True,
    ).stdout
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    return samples, int(stream["sample_rate"]), int(stream["channels"])


def espeak_seconds(text: str, wpm: int = 175) -> float:
    wav = subprocess.run(
        ["espeak-ng", "-v", "vi", "-s", str(wpm), "--stdout"],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return (len(wav) - wav.find(b"data") - 8) / 2 / 22050


def seconds(ticks: int) -> float:
    return ticks / TICKS_PER_SECOND


def rms(samples: np.ndarray, rate: int, start_s: float, end_s: float) -> float:
    window = samples[int(start_s * rate) : int(end_s * rate)]
    return float(np.sqrt(np.mean(window**2))) if window.size else 0.0


# --------------------------------------------------------------------------------------------------
# Pieces


def test_helpers():
    assert espeak_wpm("+0%") == 175
    assert espeak_wpm("+10%") == 192
    assert espeak_wpm("-50%") == 87
    assert full_voice_name(HOAIMY) == HOAIMY_FULL
    assert full_voice_name(HOAIMY_FULL) == HOAIMY_FULL
    assert split_sentences(BULLETIN) == BULLETIN_SENTENCES
    assert split_sentences('Anh nói: "Đi thôi." Rồi đi… Xong.\n\n  Hết') == [
        'Anh nói: "Đi thôi."',
        "Rồi đi…",
        "Xong.",
        "Hết",
    ]
    assert split_sentences("3.5 triệu đồng. Ok") == ["3.5 triệu đồng.", "Ok"]
    ssml = (
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'>"
        f"<voice name='{HOAIMY_FULL}'><prosody pitch='+2Hz' rate='-5%' volume='+10%'>"
        "a &amp;lt; b &lt; c &amp; 'd' \"e\"</prosody></voice></speak>"
    )
    assert parse_ssml(ssml) == {
        "voice": HOAIMY_FULL,
        "rate": "-5%",
        "pitch": "+2Hz",
        "volume": "+10%",
        "text": "a &lt; b < c & 'd' \"e\"",
    }


def test_patch_client_restores_state(monkeypatch):
    import edge_tts.communicate

    monkeypatch.setenv("NO_PROXY", "example.org")
    monkeypatch.delenv("no_proxy", raising=False)
    original = edge_tts.communicate.WSS_URL
    DRM.clock_skew_seconds = 12.0
    with patch_client("ws://127.0.0.1:9/edge/v1?TrustedClientToken=x"):
        assert edge_tts.communicate.WSS_URL == "ws://127.0.0.1:9/edge/v1?TrustedClientToken=x"
        assert DRM.clock_skew_seconds == 0
        assert os.environ["NO_PROXY"].split(",") == ["example.org", "127.0.0.1", "localhost"]
        DRM.clock_skew_seconds = 5.0
    assert original == edge_tts.communicate.WSS_URL
    assert DRM.clock_skew_seconds == 0
    assert os.environ["NO_PROXY"] == "example.org"
    assert "no_proxy" not in os.environ


# --------------------------------------------------------------------------------------------------
# ok


def test_ok_speaks_the_text_with_one_boundary_per_sentence():
    with FakeEdge() as fake:
        result = synth(fake, BULLETIN)
        assert fake.connections == 1
        assert fake.requests == [
            {
                "voice": HOAIMY_FULL,
                "rate": "+0%",
                "pitch": "+0Hz",
                "volume": "+0%",
                "text": BULLETIN,
                "boundary": "SentenceBoundary",
            }
        ]
        assert fake.errors == []

    samples, rate, channels = decode(bytes(result.audio))
    assert (rate, channels) == (24000, 1)
    duration = samples.size / rate
    assert len(result.audio) % 144 == 0  # whole 48 kbit/s frames: bytes / 6000 is the duration
    assert duration == pytest.approx(len(result.audio) / 6000, abs=0.001)
    assert 0.7 < duration / espeak_seconds(BULLETIN) < 1.4

    events = result.events
    assert [event["type"] for event in events] == ["SentenceBoundary"] * 4
    assert [event["text"] for event in events] == BULLETIN_SENTENCES
    starts = [seconds(event["offset"]) for event in events]
    ends = [seconds(event["offset"] + event["duration"]) for event in events]
    assert starts[0] == pytest.approx(MP3_DELAY_SAMPLES / MP3_SAMPLE_RATE, abs=0.05)
    for i in range(1, len(events)):
        assert ends[i - 1] + 0.25 < starts[i]  # ~300 ms between sentences
    assert ends[-1] <= duration < ends[-1] + 0.1

    # The boundaries line up with the decoded audio: speech inside, silence in between.
    for i in range(len(events)):
        assert rms(samples, rate, starts[i] + 0.02, ends[i] - 0.02) > 0.02
    for i in range(1, len(events)):
        assert rms(samples, rate, ends[i - 1] + 0.01, starts[i] - 0.01) < 0.001
    assert rms(samples, rate, 0, starts[0] - 0.005) < 0.001

    # Metadata comes just before the audio that holds its sentence: in time order with the audio.
    for event in events:
        assert event["audio_before"] <= seconds(event["offset"]) * 6000 < event["audio_before"] + 4096


def test_special_characters_arrive_unescaped():
    text = "Giá \"5 < 6 & 7 > 3\" là 'đúng'; viết &amp; hay &lt;b&gt; cũng được."
    with FakeEdge(chunk_bytes=1000) as fake:
        result = synth(fake, text)
        assert fake.requests[-1]["text"] == text
    assert [event["text"] for event in result.events] == [text]
    assert len(result.audio) > 6000


def test_rate_and_word_boundaries():
    text = "Một hai ba bốn năm. Sáu bảy, tám chín mười!"
    with FakeEdge() as fake:
        normal = synth(fake, text)
        fast = synth(fake, text, rate="+50%", volume="-20%", pitch="+10Hz")
        words = synth(fake, text, boundary="WordBoundary")
        assert [(r["rate"], r["volume"], r["pitch"], r["boundary"]) for r in fake.requests] == [
            ("+0%", "+0%", "+0Hz", "SentenceBoundary"),
            ("+50%", "-20%", "+10Hz", "SentenceBoundary"),
            ("+0%", "+0%", "+0Hz", "WordBoundary"),
        ]
    assert len(fast.audio) < 0.8 * len(normal.audio)
    assert [event["type"] for event in words.events] == ["WordBoundary"] * 10
    words_said = ["Một", "hai", "ba", "bốn", "năm", "Sáu", "bảy", "tám", "chín", "mười"]
    assert [event["text"] for event in words.events] == words_said
    offsets = [event["offset"] for event in words.events]
    assert offsets == sorted(offsets)
    assert words.events[0]["offset"] == normal.events[0]["offset"]
    last, sentence = words.events[-1], normal.events[-1]
    assert last["offset"] + last["duration"] == pytest.approx(
        sentence["offset"] + sentence["duration"], abs=2
    )


def test_long_text_is_several_requests_with_continuing_offsets():
    lines = [
        f"Thông báo số {i}: tổ dân phố {i % 7 + 1} họp lúc {i % 12 + 1} giờ tối nay tại nhà văn hóa."
        for i in range(1, 61)
    ]
    text = "\n".join(lines)
    assert len(text.encode()) > 4096
    with FakeEdge() as fake:
        result = synth(fake, text)
        requests = fake.requests
        assert fake.connections == len(requests) >= 2
        assert fake.errors == []
    assert "\n".join(request["text"] for request in requests) == text  # split at line breaks

    events = result.events
    assert [event["text"] for event in events] == lines
    offsets = [event["offset"] for event in events]
    assert all(a < b for a, b in zip(offsets, offsets[1:], strict=False))
    samples, rate, _ = decode(bytes(result.audio))
    duration = samples.size / rate

    first = len(split_sentences(requests[0]["text"]))
    end_of_first = events[first - 1]["offset"] + events[first - 1]["duration"]
    second = events[first]
    assert second["offset"] > end_of_first
    # The client offsets request 2 by request 1's byte count at 48 kbit/s: exactly what the fake sent.
    first_bytes = second["audio_before"]
    assert first_bytes % 144 == 0
    expected = first_bytes * 8 * TICKS_PER_SECOND // 48_000 + MP3_DELAY_SAMPLES * TICKS_PER_SECOND // 24_000
    assert second["offset"] == pytest.approx(expected, abs=2)
    final_end = seconds(events[-1]["offset"] + events[-1]["duration"])
    assert abs(duration - final_end) < 0.3
    # ... and the later boundaries still sit on speech in the concatenated audio.  At the join the
    # silence before a sentence is only request 1's last MP3 frame's padding plus the encoder delay.
    for index in [first, first + 1, first + 2, len(events) - 2, len(events) - 1]:
        start, end = (
            seconds(events[index]["offset"]),
            seconds(events[index]["offset"] + events[index]["duration"]),
        )
        silence = 0.04 if index == first else 0.25
        assert rms(samples, rate, start + 0.02, end - 0.02) > 0.02
        assert rms(samples, rate, start - silence, start - 0.005) < 0.001


# --------------------------------------------------------------------------------------------------
# Failures


def test_refuse():
    with FakeEdge("refuse") as fake:
        with pytest.raises(aiohttp.ClientConnectorError):
            synth(fake, BULLETIN)
        assert fake.connections == 0
        fake.mode = "ok"  # the service comes back on the same address
        assert len(synth(fake, BULLETIN).events) == 4
        assert fake.connections == 1


def test_403_retries_once_then_raises():
    with FakeEdge("403") as fake:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            synth(fake, BULLETIN)
        assert caught.value.status == 403
        assert fake.connections == 2
        assert fake.requests == []


def test_403_without_date_is_a_skew_error():
    with FakeEdge("403-no-date") as fake:
        with pytest.raises(SkewAdjustmentError):
            synth(fake, BULLETIN)
        assert fake.connections == 1


def test_503():
    with FakeEdge("503") as fake:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            synth(fake, BULLETIN)
        assert caught.value.status == 503
        assert fake.connections == 1


def test_no_audio():
    with FakeEdge("no-audio") as fake:
        with pytest.raises(NoAudioReceived):
            synth(fake, BULLETIN)
        assert fake.requests[-1]["text"] == BULLETIN


def test_partial_audio_is_returned_as_success():
    with FakeEdge() as fake:
        full = synth(fake, BULLETIN)
        fake.mode = "partial"
        partial = synth(fake, BULLETIN)  # no exception: the client takes the truncated audio
        assert fake.connections == 2
        assert fake.errors == []
    assert [event["text"] for event in partial.events] == BULLETIN_SENTENCES[:1]
    assert partial.events[0]["offset"] == full.events[0]["offset"]
    assert 0.3 * len(full.audio) < len(partial.audio) < 0.5 * len(full.audio)
    samples, rate, _ = decode(bytes(partial.audio))
    assert samples.size / rate < 0.5 * decode(bytes(full.audio))[0].size / rate


def test_stall_hangs_the_client_and_still_stops_promptly():
    fake = FakeEdge("stall")
    with fake:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            synth(fake, BULLETIN, timeout=1.0)
        assert time.monotonic() - started < 2.0
        assert fake.connections == 1
        assert fake.requests[-1]["text"] == BULLETIN  # it was received, just never answered
        # A second client left hanging while the fake stops.
        with patch_client(fake.url):

            async def hang() -> None:
                task = asyncio.create_task(_stream(BULLETIN, HOAIMY, Result()))
                await asyncio.sleep(0.3)
                stopping = time.monotonic()
                await asyncio.to_thread(fake.__exit__, None, None, None)
                assert time.monotonic() - stopping < 2.0
                with pytest.raises(NoAudioReceived):  # the connection dropped before any audio
                    await asyncio.wait_for(task, 2.0)

            asyncio.run(hang())
    stopped = time.monotonic()
    fake.__exit__(None, None, None)  # idempotent
    assert time.monotonic() - stopped < 0.5


@pytest.mark.parametrize("silent", [HOAIMY, HOAIMY_FULL])
def test_silent_voice(silent):
    with FakeEdge(silent_voices=[silent]) as fake:
        with pytest.raises(NoAudioReceived):
            synth(fake, BULLETIN, HOAIMY)
        other = synth(fake, BULLETIN, NAMMINH)
        assert len(other.events) == 4
        assert [request["voice"] for request in fake.requests] == [
            HOAIMY_FULL,
            "Microsoft Server Speech Text to Speech Voice (vi-VN, NamMinhNeural)",
        ]


def test_close_after_first_request_fails_a_long_text_midway():
    text = "\n".join(f"Dòng số {i} của bản tin phường, xin bà con chú ý lắng nghe kỹ." for i in range(60))
    assert len(text.encode()) > 4096
    with FakeEdge("close-after-first-request") as fake:
        result = Result()
        with pytest.raises(NoAudioReceived):
            synth(fake, text, result=result)
        assert fake.connections == 2
        assert len(fake.requests) == 1
        assert fake.errors == []
    first = split_sentences(fake.requests[0]["text"])
    assert [event["text"] for event in result.events] == first  # the first request arrived whole
    assert len(result.audio) > 0


def test_mode_switch_refuse_and_back():
    with FakeEdge() as fake:
        synth(fake, "Một.")
        fake.mode = "refuse"
        with pytest.raises(aiohttp.ClientConnectorError):
            synth(fake, "Hai.")
        fake.mode = "503"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            synth(fake, "Ba.")
        fake.mode = "ok"
        assert [event["text"] for event in synth(fake, "Bốn.").events] == ["Bốn."]
        assert fake.connections == 3
        assert [request["text"] for request in fake.requests] == ["Một.", "Bốn."]
        with pytest.raises(ValueError):
            fake.mode = "nonsense"


def test_handler_errors_are_logged_and_the_server_keeps_serving(caplog):
    async def misbehave(url: str) -> list[aiohttp.WSMessage]:
        replies = []
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url + "&ConnectionId=1") as ws:  # SSML before speech.config
                await ws.send_str("X-RequestId:1\r\nPath:ssml\r\n\r\n<speak/>")
                replies.append(await ws.receive())
            async with session.ws_connect(url + "&ConnectionId=2") as ws:  # SSML without a voice
                await ws.send_str("Path:speech.config\r\n\r\n{}")
                await ws.send_str("X-RequestId:2\r\nPath:ssml\r\n\r\n<speak>no voice</speak>")
                replies.append(await ws.receive())
        return replies

    with FakeEdge() as fake:
        replies = asyncio.run(asyncio.wait_for(misbehave(fake.url), 5))
        assert [(reply.type, reply.data) for reply in replies] == [
            (aiohttp.WSMsgType.CLOSE, 1002),
            (aiohttp.WSMsgType.CLOSE, 1011),
        ]
        assert len(fake.errors) == 2
        assert fake.errors[0] == "ssml before speech.config"
        assert "no <voice" in fake.errors[1]
        assert "FakeEdge handler failed" in caplog.text
        assert [event["text"] for event in synth(fake, "Vẫn chạy.").events] == ["Vẫn chạy."]
        assert fake.connections == 3


def test_stops_promptly_in_the_middle_of_a_long_synthesis():
    text = "\n".join(
        f"Câu số {i}: bà con nhớ đóng cửa cẩn thận trước khi ra khỏi nhà vào buổi tối." for i in range(50)
    )
    assert len(text.encode()) > 4096  # two requests
    fake = FakeEdge().__enter__()
    result = Result()

    async def client() -> float:
        task = asyncio.create_task(_stream(text, HOAIMY, result))
        while not result.audio:
            await asyncio.sleep(0.01)
        stopping = time.monotonic()
        await asyncio.to_thread(fake.__exit__, None, None, None)
        elapsed = time.monotonic() - stopping
        # The client takes the dropped first request as a (truncated) success, then finds nobody there
        # for the second one.
        with pytest.raises(aiohttp.ClientConnectorError):
            await asyncio.wait_for(task, 2.0)
        return elapsed

    with patch_client(fake.url):
        assert asyncio.run(client()) < 1.5
    assert len(result.audio) > 0 and len(result.events) < 50
    assert fake.errors == []
