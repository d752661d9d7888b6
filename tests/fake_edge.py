"""A fake Microsoft Edge read-aloud service on 127.0.0.1, for the real ``edge_tts`` client.

No machine of this project reaches the Internet, so the tests (and the benchmark) run the real
edge-tts 7.x client against this fake.  It speaks the service's websocket protocol as the client
expects it (see ``/work/shared/docs/edge-tts-protocol.md``) and synthesizes for real: espeak-ng
reads each sentence, ffmpeg encodes the request's audio as 24 kHz mono 48 kbit/s CBR MP3, the
format the client asks for and whose byte count it uses to offset the boundaries of later requests.

    with FakeEdge() as fake, patch_client(fake.url):
        async for chunk in edge_tts.Communicate(text, "vi-VN-HoaiMyNeural").stream(): ...

What one ``ok`` request gets back, in this order (one websocket connection per request, as the
client makes them):

* ``Path:turn.start``, then ``Path:response`` (the client explicitly accepts and ignores it, which
  suggests the real service sends it);
* the MP3 in binary frames of ``chunk_bytes``, with each sentence's ``audio.metadata`` frame sent
  just before the first audio frame that holds the sentence's start: metadata interleaved with the
  audio in time order, as a streaming synthesizer emits its boundary events (our best reading of the
  real service, unverified here; the client does not depend on the order).  The client yields the
  events in that order, so the audio bytes received before a boundary are a prefix of its request;
* an empty binary audio frame without ``Content-Type`` (end of stream), then ``Path:turn.end``.

The answer streams, as the real service's does: espeak-ng reads the sentences in parallel, their PCM
is piped into one ffmpeg encoder, and MP3 goes out as ffmpeg writes it (first audio after ~0.2 s;
a 4096-byte request, ~3.5 minutes of speech, takes 1-2 s in all on a 2-core machine).

Audio and boundaries: the text is split into sentences (after ``. ! ? …`` (plus closing quotes or
brackets) followed by whitespace, and at line breaks); each sentence is read by
``espeak-ng -v vi -s WPM --stdout`` (WPM = 175 scaled by the prosody rate, ``"+10%"`` → 192; a
non-zero volume or pitch adds ``-a``/``-p``), its leading and trailing silence is trimmed, and the
sentences are joined with 300 ms of silence.  A boundary's Offset and Duration (100 ns ticks) are the
sentence's trimmed span within the request's audio as ffmpeg decodes it, i.e. including the MP3
encoder delay (1105 samples, 46 ms), and its Text is the sentence as it appears in the SSML (XML
escaped, as the real service sends it; the client unescapes it).  Pieces without a letter or digit
are not spoken and get no boundary; a request with nothing to speak gets 300 ms of silence.  With
``boundary="WordBoundary"`` the client gets one WordBoundary per word instead, spread over the
sentence in proportion to the word lengths (approximate).  Nothing is cached.  Where the client
joins two requests, the silence before the next sentence is only the last MP3 frame's padding plus
the encoder delay (≥ 46 ms), not 300 ms.

Besides ``url``, ``connections``, ``requests`` and ``mode``, a FakeEdge has ``port`` and ``errors``
(handler exceptions and protocol violations; it stays empty while the client behaves).
``synthesize()`` is what a request gets, usable without the server.

Modes (``FakeEdge.mode``, read when a connection arrives; tests may change it between requests, and
switching to or from ``refuse`` closes or reopens the listening socket on the same port):

=========================  ================================================================
``ok``                     normal synthesis (voices in ``silent_voices`` get ``no-audio``)
``refuse``                 nothing listens on the port (connection refused)
``403``                    HTTP 403 with a ``Date`` header on every upgrade
``403-no-date``            HTTP 403 without ``Date`` (client: ``SkewAdjustmentError``)
``503``                    HTTP 503 on upgrade
``no-audio``               ``turn.start`` then ``turn.end``, no audio (client: ``NoAudioReceived``)
``partial``                first sentence's metadata, ~40 % of the MP3, then a websocket close
                           without ``turn.end`` (the client returns the truncated audio as success)
``stall``                  upgrade, read (and record) the request, then silence until the fake
                           stops (a close handshake from the client is still answered)
``close-after-first-request``  the first request is served normally; later connections are
                           closed right after the upgrade, without any data frame
=========================  ================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

MODES = (
    "ok",
    "refuse",
    "403",
    "403-no-date",
    "503",
    "no-audio",
    "partial",
    "stall",
    "close-after-first-request",
)
PATH = "/edge/v1"
TICKS_PER_SECOND = 10_000_000
MP3_SAMPLE_RATE = 24_000
MP3_BYTES_PER_SECOND = 48_000 // 8  # 48 kbit/s CBR: the client's offset compensation relies on it
MP3_FRAME_BYTES = 144  # MPEG-2 layer III, 576 samples at 24 kHz and 48 kbit/s, never padded
#: LAME's encoder delay plus the decoder delay, in samples at 24 kHz: where ffmpeg (which sees no
#: Xing/LAME tag, so trims nothing) puts the first input sample in the decoded audio.
MP3_DELAY_SAMPLES = 1105
ESPEAK_BASE_WPM = 175
SENTENCE_GAP_S = 0.3
PARTIAL_FRACTION = 0.4

_FULL_VOICE = "Microsoft Server Speech Text to Speech Voice ({lang}-{region}, {name})"
_SHORT_VOICE_RE = re.compile(r"^([a-z]{2,})-([A-Z]{2,})-(.+Neural)$")
_SENTENCE_BREAK_RE = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)|\n")
_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|apos|#[0-9]+|#[xX][0-9a-fA-F]+);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_VOICE_RE = re.compile(r"<voice\b[^>]*?\bname\s*=\s*(['\"])(.*?)\1[^>]*>(.*)</voice>", re.S)
_PROSODY_RE = re.compile(r"<prosody\b([^>]*)>(.*)</prosody>", re.S)
_ATTR_RE = re.compile(r"(\w+)\s*=\s*(['\"])(.*?)\2", re.S)
_TAG_RE = re.compile(r"<[^>]*>")
_PERCENT_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")
_HERTZ_RE = re.compile(r"^([+-]?\d+(?:\.\d+)?)Hz$")
#: Marks a request to answer without a Date header (aiohttp adds one to every response).
_NO_DATE: Any = (
    web.RequestKey("fake_edge_no_date", bool) if hasattr(web, "RequestKey") else "fake_edge_no_date"
)
_PUNCT_EDGES = "\"'“”‘’«»()[]{}.,;:!?…-–—"


# --------------------------------------------------------------------------------------------------
# Text and SSML


def full_voice_name(voice: str) -> str:
    """``vi-VN-HoaiMyNeural`` → ``Microsoft Server Speech Text to Speech Voice (vi-VN, HoaiMyNeural)``.

    The same rule as the client's; a full name is returned unchanged.
    """
    match = _SHORT_VOICE_RE.match(voice)
    if match is None:
        return voice
    lang, region, name = match.groups()
    if "-" in name:
        extra, name = name.split("-", 1)
        region = f"{region}-{extra}"
    return _FULL_VOICE.format(lang=lang, region=region, name=name)


def xml_unescape(text: str) -> str:
    """Undo XML escaping in one pass (``&amp;lt;`` → ``&lt;``, not ``<``)."""

    def replace(match: re.Match[str]) -> str:
        entity = match.group(1)
        if entity.startswith(("#x", "#X")):
            return chr(int(entity[2:], 16))
        if entity.startswith("#"):
            return chr(int(entity[1:]))
        return _ENTITIES[entity]

    return _ENTITY_RE.sub(replace, text)


def split_sentences(text: str) -> list[str]:
    """Sentences as the fake reads them: after ``. ! ? …`` (and closing quotes) + whitespace, at newlines.

    Each sentence keeps its text as it appears, without the surrounding whitespace.
    """
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK_RE.finditer(text):
        end = match.start() if match.group() == "\n" else match.end()
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def speakable(sentence: str) -> bool:
    return any(char.isalnum() for char in sentence)


def espeak_wpm(rate: str) -> int:
    """espeak-ng's ``-s`` for a prosody rate: 175 words a minute scaled by the percentage."""
    match = _PERCENT_RE.match(rate.strip())
    percent = float(match.group(1)) if match else 0.0
    return max(80, min(450, int(ESPEAK_BASE_WPM * (100 + percent) / 100)))


def parse_ssml(ssml: str) -> dict[str, str]:
    """Voice, prosody and the unescaped text of an SSML document as edge-tts builds it."""
    voice_match = _VOICE_RE.search(ssml)
    if voice_match is None:
        raise ValueError(f"no <voice name=…> in SSML: {ssml[:200]!r}")
    voice, inner = voice_match.group(2), voice_match.group(3)
    attrs: dict[str, str] = {}
    prosody = _PROSODY_RE.search(inner)
    if prosody is not None:
        attrs = {name: value for name, _, value in _ATTR_RE.findall(prosody.group(1))}
        inner = prosody.group(2)
    return {
        "voice": voice,
        "rate": attrs.get("rate", "+0%"),
        "pitch": attrs.get("pitch", "+0Hz"),
        "volume": attrs.get("volume", "+0%"),
        "text": xml_unescape(_TAG_RE.sub("", inner)),
    }


def _parse_text_frame(data: str) -> tuple[dict[str, str], str]:
    head, sep, body = data.partition("\r\n\r\n")
    if not sep:
        head, body = data, ""
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, body


# --------------------------------------------------------------------------------------------------
# Synthesis


@dataclass(frozen=True)
class Boundary:
    """One audio.metadata event: ``offset``/``duration`` in 100 ns ticks within the request's audio."""

    kind: str  # "SentenceBoundary" or "WordBoundary"
    offset: int
    duration: int
    text: str  # unescaped
    sentence: int  # index of its sentence in Rendering.sentences (not sent)


@dataclass(frozen=True)
class Rendering:
    mp3: bytes
    boundaries: list[Boundary]
    sentences: list[str]  # the spoken sentences, in order


def _espeak(sentence: str, *, wpm: int, amplitude: int | None, pitch: int | None) -> tuple[np.ndarray, int]:
    cmd = ["espeak-ng", "-v", "vi", "-s", str(wpm)]
    if amplitude is not None:
        cmd += ["-a", str(amplitude)]
    if pitch is not None:
        cmd += ["-p", str(pitch)]
    cmd.append("--stdout")
    wav = subprocess.run(
        cmd, input=sentence.encode("utf-8"), capture_output=True, check=True, timeout=60
    ).stdout
    return _wav_pcm(wav)


def _wav_pcm(wav: bytes) -> tuple[np.ndarray, int]:
    """16-bit mono PCM of espeak-ng's WAV (written to a pipe, so its RIFF/data sizes are bogus)."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError(f"espeak-ng returned no WAV ({len(wav)} bytes)")
    rate = 0
    pos = 12
    while pos + 8 <= len(wav):
        chunk_id = wav[pos : pos + 4]
        size = int.from_bytes(wav[pos + 4 : pos + 8], "little")
        if chunk_id == b"fmt ":
            channels = int.from_bytes(wav[pos + 10 : pos + 12], "little")
            rate = int.from_bytes(wav[pos + 12 : pos + 16], "little")
            bits = int.from_bytes(wav[pos + 22 : pos + 24], "little")
            if channels != 1 or bits != 16:
                raise ValueError(f"espeak-ng returned {channels=} {bits=}")
        elif chunk_id == b"data":
            data = wav[pos + 8 :]
            return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2"), rate
        pos += 8 + size + (size & 1)
    raise ValueError("espeak-ng returned a WAV without data")


def _trim(pcm: np.ndarray, rate: int) -> np.ndarray:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 328)  # 1 % of full scale
    if loud.size == 0:
        return pcm[:0]
    start = max(0, int(loud[0]) - rate // 100)  # keep 10 ms before the first sound
    end = min(len(pcm), int(loud[-1]) + 1 + rate * 3 // 100)  # and 30 ms of decay
    return pcm[start:end]


def _words(sentence: str) -> list[str]:
    words = [token.strip(_PUNCT_EDGES) for token in sentence.split()]
    return [word for word in words if speakable(word)]


_FFMPEG_MP3 = [
    "-ar", str(MP3_SAMPLE_RATE), "-ac", "1",
    "-c:a", "libmp3lame", "-b:a", "48k", "-compression_level", "7",  # LAME -q 7: fast, still CBR
    "-write_xing", "0", "-id3v2_version", "0", "-map_metadata", "-1",
    "-f", "mp3", "pipe:1",
]  # fmt: skip


class _Cancelled(Exception):
    """The request went away while it was being synthesized."""


def _check_mp3(head: bytes, size: int) -> None:
    if not size or size % MP3_FRAME_BYTES or head[:2] != b"\xff\xf3":
        raise ValueError(f"ffmpeg's MP3 is not 48 kbit/s CBR frames ({size} bytes, {head[:4].hex()})")


def _espeak_options(rate: str, volume: str, pitch: str) -> dict[str, int | None]:
    volume_match = _PERCENT_RE.match(volume.strip())
    volume_pct = float(volume_match.group(1)) if volume_match else 0.0
    pitch_match = _HERTZ_RE.match(pitch.strip())
    pitch_hz = float(pitch_match.group(1)) if pitch_match else 0.0
    return {
        "wpm": espeak_wpm(rate),
        "amplitude": None if volume_pct == 0 else max(0, min(200, round(100 + volume_pct))),
        "pitch": None if pitch_hz == 0 else max(0, min(99, round(50 + pitch_hz / 2))),
    }


def _boundaries(kind: str, sentence: str, index: int, start: int, length: int, rate: int) -> list[Boundary]:
    """The events of one sentence whose trimmed clip spans [start, start + length) espeak samples."""
    delay = MP3_DELAY_SAMPLES / MP3_SAMPLE_RATE * rate  # where ffmpeg decodes sample 0, in espeak samples

    def ticks(samples: float) -> int:
        return round(samples / rate * TICKS_PER_SECOND)

    if kind != "WordBoundary":
        return [Boundary("SentenceBoundary", ticks(start + delay), ticks(length), sentence, index)]
    words = _words(sentence)
    weights = [len(word) + 1 for word in words]
    events = []
    at = float(start)
    for word, weight in zip(words, weights, strict=True):
        span = length * weight / sum(weights)
        events.append(Boundary("WordBoundary", ticks(at + delay), ticks(span), word, index))
        at += span
    return events


def _produce(
    text: str,
    *,
    rate: str,
    volume: str,
    pitch: str,
    boundary: str,
    emit: Callable[[Boundary | bytes], None],
    cancelled: threading.Event,
) -> list[str]:
    """Synthesize ``text`` as a stream; return the spoken sentences.

    Each sentence's boundary events are emitted before its audio goes into the encoder, so they always
    come before the MP3 bytes that hold them; MP3 bytes are emitted as ffmpeg writes them (espeak-ng
    reads the next sentences meanwhile).  Runs in a worker thread; ``cancelled`` stops it early.
    """
    options = _espeak_options(rate, volume, pitch)
    sentences = [sentence for sentence in split_sentences(text) if speakable(sentence)]
    pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="espeak")
    ffmpeg: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    produced = {"size": 0, "head": b""}

    def read_mp3(stream: Any) -> None:
        while chunk := stream.read1(65536):
            if not produced["head"]:
                produced["head"] = chunk[:4]
            produced["size"] += len(chunk)
            emit(chunk)

    def start_encoder(rate_hz: int) -> subprocess.Popen[bytes]:
        nonlocal reader
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
        cmd += ["-f", "s16le", "-ar", str(rate_hz), "-ac", "1", "-i", "pipe:0", *_FFMPEG_MP3]
        process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader = threading.Thread(target=read_mp3, args=(process.stdout,), name="ffmpeg-reader", daemon=True)
        reader.start()
        return process

    spoken: list[str] = []
    try:
        readings = pool.map(lambda sentence: _espeak(sentence, **options), sentences)
        rate_hz = 0
        position = 0  # in espeak samples
        for sentence, (pcm, pcm_rate) in zip(sentences, readings, strict=True):
            if cancelled.is_set():
                raise _Cancelled
            if ffmpeg is None:
                rate_hz = pcm_rate
                ffmpeg = start_encoder(rate_hz)
            elif pcm_rate != rate_hz:
                raise ValueError(f"espeak-ng changed its sample rate ({rate_hz} → {pcm_rate})")
            clip = _trim(pcm, rate_hz)
            if clip.size == 0:
                continue
            assert ffmpeg.stdin is not None
            if spoken:
                gap = np.zeros(round(SENTENCE_GAP_S * rate_hz), dtype="<i2")
                ffmpeg.stdin.write(gap.tobytes())
                position += gap.size
            for event in _boundaries(boundary, sentence, len(spoken), position, clip.size, rate_hz):
                emit(event)
            ffmpeg.stdin.write(clip.astype("<i2").tobytes())
            position += clip.size
            spoken.append(sentence)
        if ffmpeg is None:
            rate_hz = 22050
            ffmpeg = start_encoder(rate_hz)
        assert ffmpeg.stdin is not None and ffmpeg.stderr is not None
        if not spoken:  # nothing to say: a moment of silence, no boundary
            ffmpeg.stdin.write(np.zeros(round(SENTENCE_GAP_S * rate_hz), dtype="<i2").tobytes())
        ffmpeg.stdin.close()
        if reader is not None:
            reader.join()
        errors = ffmpeg.stderr.read().decode(errors="replace")
        if ffmpeg.wait() != 0:
            raise RuntimeError(f"ffmpeg failed: {errors.strip()}")
        _check_mp3(produced["head"], produced["size"])
        return spoken
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if ffmpeg is not None and ffmpeg.poll() is None:
            ffmpeg.kill()
            ffmpeg.wait()
        if reader is not None:
            reader.join(timeout=5)
        if ffmpeg is not None:
            for stream in (ffmpeg.stdin, ffmpeg.stdout, ffmpeg.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


def synthesize(
    text: str,
    *,
    rate: str = "+0%",
    volume: str = "+0%",
    pitch: str = "+0Hz",
    boundary: str = "SentenceBoundary",
) -> Rendering:
    """What the fake answers to one request (the MP3 and its boundary events), without the server."""
    mp3 = bytearray()
    boundaries: list[Boundary] = []

    def emit(item: Boundary | bytes) -> None:
        if isinstance(item, Boundary):
            boundaries.append(item)
        else:
            mp3.extend(item)

    spoken = _produce(
        text,
        rate=rate,
        volume=volume,
        pitch=pitch,
        boundary=boundary,
        emit=emit,
        cancelled=threading.Event(),
    )
    return Rendering(bytes(mp3), boundaries, spoken)


# --------------------------------------------------------------------------------------------------
# Frames


def _text_frame(request_id: str, path: str, body: str) -> str:
    headers = f"X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}"
    return f"{headers}\r\n\r\n{body}"


def _audio_frame(request_id: str, stream_id: str, data: bytes) -> bytes:
    # The client reads the headers from data[:length] (counting the 2 length bytes) and the audio from
    # data[length + 2:], so the header block ends with "\r\n" and must not start with "Path".
    content_type = "Content-Type:audio/mpeg\r\n" if data else ""  # none on the end-of-stream frame
    head = f"X-RequestId:{request_id}\r\n{content_type}X-StreamId:{stream_id}\r\nPath:audio\r\n".encode()
    return len(head).to_bytes(2, "big") + head + data


def _metadata_body(item: Boundary) -> str:
    text = escape(item.text)  # the service sends the text XML-escaped, as it is in the SSML
    data = {
        "Offset": item.offset,
        "Duration": item.duration,
        "text": {"Text": text, "Length": len(text), "BoundaryType": item.kind},
    }
    return json.dumps(
        {"Metadata": [{"Type": item.kind, "Data": data}]}, ensure_ascii=False, separators=(",", ":")
    )


class _AudioSender:
    """Audio frames of ``chunk_bytes``; each boundary goes out just before the frame that holds its start."""

    def __init__(self, ws: web.WebSocketResponse, request_id: str, stream_id: str, chunk_bytes: int):
        self.ws, self.request_id, self.stream_id, self.chunk_bytes = ws, request_id, stream_id, chunk_bytes
        self.buffer = bytearray()
        self.sent = 0  # MP3 bytes sent so far
        self.pending: list[Boundary] = []

    def boundary(self, item: Boundary) -> None:
        self.pending.append(item)

    async def audio(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= self.chunk_bytes:
            chunk = bytes(self.buffer[: self.chunk_bytes])
            del self.buffer[: self.chunk_bytes]
            await self._send(chunk)

    async def finish(self) -> None:
        if self.buffer:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            await self._send(chunk)
        while self.pending:
            await self._metadata(self.pending.pop(0))

    async def _send(self, chunk: bytes) -> None:
        end = self.sent + len(chunk)
        while self.pending and self.pending[0].offset * MP3_BYTES_PER_SECOND // TICKS_PER_SECOND < end:
            await self._metadata(self.pending.pop(0))
        await self.ws.send_bytes(_audio_frame(self.request_id, self.stream_id, chunk))
        self.sent = end

    async def _metadata(self, item: Boundary) -> None:
        await self.ws.send_str(_text_frame(self.request_id, "audio.metadata", _metadata_body(item)))


# --------------------------------------------------------------------------------------------------
# The server


class FakeEdge:
    """A fake Edge read-aloud service on 127.0.0.1, in a background thread with its own asyncio loop."""

    def __init__(self, mode: str = "ok", *, silent_voices: Iterable[str] = (), chunk_bytes: int = 4096):
        _check_mode(mode)
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be positive")
        self._mode = mode
        self.silent_voices = frozenset(full_voice_name(voice) for voice in silent_voices)
        self.chunk_bytes = chunk_bytes
        self.port = 0
        self.url = ""
        #: Websocket upgrade attempts seen, refused ones included.
        self.connections = 0
        #: One dict per SSML request received: voice, rate, pitch, volume, text, boundary.
        self.requests: list[dict[str, str]] = []
        #: Handler exceptions and protocol violations, formatted (tests may assert it stays empty).
        self.errors: list[str] = []
        self._served = 0  # requests answered with audio ("close-after-first-request")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- mode ------------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        _check_mode(value)
        self._mode = value
        loop = self._loop
        if loop is None or not self._ready.is_set() or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._sync_listening(), loop)
        if threading.get_ident() != getattr(self._thread, "ident", None):
            future.result(timeout=10)  # "refuse" takes effect before the setter returns

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> FakeEdge:
        if self._thread is not None:
            raise RuntimeError("FakeEdge can be started only once")
        self._thread = threading.Thread(target=self._thread_main, name="FakeEdge", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            self._shutdown()
            raise RuntimeError("FakeEdge did not start within 30 s")
        if self._startup_error is not None:
            self._shutdown()
            raise RuntimeError("FakeEdge failed to start") from self._startup_error
        self.url = f"ws://127.0.0.1:{self.port}{PATH}?TrustedClientToken=fake"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        loop, thread, stop = self._loop, self._thread, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=15)
            if thread.is_alive():
                log.error("FakeEdge thread did not stop within 15 s")

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to __enter__ or logged
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                log.exception("FakeEdge server loop failed")
                self.errors.append(traceback.format_exc())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get(PATH, self._handle)
        app.on_response_prepare.append(self._on_response_prepare)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            sock = _bind(0)
            self.port = sock.getsockname()[1]
            if self._mode == "refuse":
                sock.close()  # the port was ours a moment ago: connections to it are refused
            else:
                self._site = web.SockSite(self._runner, sock)
                await self._site.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            tasks = [task for task in self._tasks if not task.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            await self._runner.cleanup()
            self._site = None

    async def _sync_listening(self) -> None:
        """Stop listening in "refuse" mode, listen again on the same port otherwise."""
        if self._runner is None or self._stop is None or self._stop.is_set():
            return
        if self._mode == "refuse" and self._site is not None:
            site, self._site = self._site, None
            await site.stop()
        elif self._mode != "refuse" and self._site is None:
            self._site = web.SockSite(self._runner, _bind(self.port))
            await self._site.start()

    # -- handlers ----------------------------------------------------------------------------------

    async def _on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        # aiohttp adds a Date header to every response; this signal runs after it did.
        if request.get(_NO_DATE):
            response.headers.popall("Date", None)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.connections += 1
        mode = self._mode
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        ws: web.WebSocketResponse | None = None
        try:
            if mode == "403":
                return web.Response(status=403, text="Forbidden")
            if mode == "403-no-date":
                request[_NO_DATE] = True
                return web.Response(status=403, text="Forbidden")
            if mode in ("503", "refuse"):  # "refuse" here: a connection accepted just before the switch
                return web.Response(status=503, text="Service Unavailable")
            ws = web.WebSocketResponse(autoping=True, compress=True, max_msg_size=16 * 1024 * 1024)
            await ws.prepare(request)
            if mode == "close-after-first-request" and self._served >= 1:
                await ws.close()
                return ws
            await self._converse(ws, mode)
            return ws
        except ConnectionResetError:  # the client hung up (timed out, cancelled): not the fake's fault
            log.info("FakeEdge: the client went away (mode %s)", mode)
            return ws if ws is not None else web.Response(status=499)
        except Exception:
            log.exception("FakeEdge handler failed (mode %s)", mode)
            self.errors.append(traceback.format_exc())
            if ws is None:
                return web.Response(status=500, text="fake edge handler failed")
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close(code=1011, message=b"fake edge handler failed")
            return ws
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _converse(self, ws: web.WebSocketResponse, mode: str) -> None:
        config: dict[str, Any] | None = None
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                self._protocol_error(f"unexpected {message.type.name} frame from the client")
                continue
            headers, body = _parse_text_frame(message.data)
            path = headers.get("path")
            if path == "speech.config":
                config = json.loads(body)
                continue
            if path != "ssml":
                self._protocol_error(f"unknown path {path!r} from the client")
                continue
            if config is None:
                self._protocol_error("ssml before speech.config")
                await ws.close(code=1002, message=b"speech.config expected first")
                return
            request = parse_ssml(body)
            request["boundary"] = _boundary_kind(config)
            self.requests.append(request)
            if mode == "stall":
                continue  # say nothing; the loop still answers the client's close handshake
            request_id = headers.get("x-requestid") or uuid.uuid4().hex
            await self._answer(ws, mode, request_id, request)
            if mode == "partial":
                await ws.close()
                return

    async def _answer(
        self, ws: web.WebSocketResponse, mode: str, request_id: str, request: dict[str, str]
    ) -> None:
        service_tag = uuid.uuid4().hex
        context = json.dumps({"context": {"serviceTag": service_tag}})
        await ws.send_str(_text_frame(request_id, "turn.start", context))
        if mode == "no-audio" or full_voice_name(request["voice"]) in self.silent_voices:
            await ws.send_str(_text_frame(request_id, "turn.end", context))
            return

        stream_id = uuid.uuid4().hex.upper()
        response = {
            "context": {"serviceTag": service_tag},
            "audio": {"type": "inline", "streamId": stream_id},
        }
        await ws.send_str(_text_frame(request_id, "response", json.dumps(response)))
        sender = _AudioSender(ws, request_id, stream_id, self.chunk_bytes)
        options = {key: request[key] for key in ("rate", "volume", "pitch", "boundary")}

        if mode == "partial":  # needs the whole length first: synthesize, then send a part
            loop = asyncio.get_running_loop()
            rendering = await loop.run_in_executor(None, lambda: synthesize(request["text"], **options))
            mp3 = rendering.mp3
            cut = max(MP3_FRAME_BYTES, int(len(mp3) * PARTIAL_FRACTION) // MP3_FRAME_BYTES * MP3_FRAME_BYTES)
            for item in rendering.boundaries:
                if item.sentence == 0:
                    sender.boundary(item)
            await sender.audio(mp3[:cut])
            await sender.finish()
            return  # the caller closes the websocket: no end-of-stream frame, no turn.end

        await self._stream(sender, request["text"], options)
        await sender.finish()
        await ws.send_bytes(_audio_frame(request_id, stream_id, b""))
        await ws.send_str(_text_frame(request_id, "turn.end", context))
        self._served += 1

    async def _stream(self, sender: _AudioSender, text: str, options: dict[str, str]) -> None:
        """Send the audio and metadata as a worker thread synthesizes them."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()
        done = object()

        def emit(item: Any) -> None:
            if not cancelled.is_set():
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                _produce(text, **options, emit=emit, cancelled=cancelled)
            except _Cancelled:
                return
            except BaseException as exc:  # noqa: BLE001 - handed over to the handler
                emit(exc)
            else:
                emit(done)

        worker = loop.run_in_executor(None, work)
        try:
            while (item := await queue.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Boundary):
                    sender.boundary(item)
                else:
                    await sender.audio(item)
        finally:
            cancelled.set()  # stops the worker if the client went away or the fake is stopping
            if worker.done():
                worker.result()

    def _protocol_error(self, what: str) -> None:
        log.warning("FakeEdge: %s", what)
        self.errors.append(what)


def _boundary_kind(config: dict[str, Any]) -> str:
    try:
        options = config["context"]["synthesis"]["audio"]["metadataoptions"]
    except (KeyError, TypeError):
        return "SentenceBoundary"
    return "WordBoundary" if str(options.get("wordBoundaryEnabled")).lower() == "true" else "SentenceBoundary"


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown FakeEdge mode {mode!r}; one of {', '.join(MODES)}")


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------------------------------
# Pointing the real client at the fake


@contextlib.contextmanager
def patch_client(url: str) -> Iterator[None]:
    """Point the real edge_tts client at ``url`` (a FakeEdge's) for the duration of the block.

    ``communicate.py`` imported ``WSS_URL`` by name, so that is the one patched; the client session
    trusts the environment, so 127.0.0.1 goes into NO_PROXY; the client's clock skew is class-level
    state that a 403 with a Date header changes, so it is reset before and after.
    """
    import edge_tts.communicate
    from edge_tts.drm import DRM

    saved_url = edge_tts.communicate.WSS_URL
    saved_env = {name: os.environ.get(name) for name in ("NO_PROXY", "no_proxy")}
    hosts = [
        host for host in (saved_env["NO_PROXY"] or saved_env["no_proxy"] or "").split(",") if host.strip()
    ]
    for host in ("127.0.0.1", "localhost"):
        if host not in hosts:
            hosts.append(host)
    edge_tts.communicate.WSS_URL = url
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(hosts)
    DRM.clock_skew_seconds = 0
    try:
        yield
    finally:
        edge_tts.communicate.WSS_URL = saved_url
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        DRM.clock_skew_seconds = 0
