"""Microsoft's neural Vietnamese voices through the edge-tts client: the station's main voice.

The service is online and, on a ward Pi, often unreachable or misbehaving, so this engine is careful:

* every request is bounded in time (the client can hang forever after the websocket handshake);
* transient faults are retried with backoff, and a service that is down is remembered for
  ``tts.edge_outage_s`` so a start-up render of twenty bulletins does not wait twenty times;
* audio cut short is a fault, not a success: the client returns truncated audio when the service
  closes early, so the sentence boundaries the service reports must cover the whole text and the audio
  must reach the last boundary;
* the voice goes into SSML unescaped by the client, so only whitelisted voices are ever sent.

A request carries consecutive sentences, one per line, up to ``REQUEST_BYTES``; a long script becomes
several requests, split between sentences (where the fitter puts its own pauses, so joins cannot be
heard), each bounded and retried on its own.  The service's sentence boundaries cut each request's
audio back into one clip per sentence.

    PLAYOUT_EDGE_WSS_URL=ws://127.0.0.1:8765/edge/v1?TrustedClientToken=x   # mirrors, proxies, tests
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape as xml_escape

from playout.errors import EngineError, EngineUnavailable
from tts import outages
from tts.engines import Engine, Take
from tts.voices import EDGE_VOICES

if TYPE_CHECKING:  # numpy only where samples are made: the daemon checks scripts without it
    import numpy as np

logger = logging.getLogger(__name__)


def trim_silence(samples: np.ndarray, rate: int) -> np.ndarray:
    """tts.audio's, imported when samples exist: checking a script (in the daemon) needs no numpy."""
    from tts.audio import trim_silence as trim

    return trim(samples, rate)


def frame_rms_db(samples: np.ndarray, rate: int, frame_s: float) -> np.ndarray:
    from tts.audio import frame_rms_db as rms

    return rms(samples, rate, frame_s)


URL_ENV = "PLAYOUT_EDGE_WSS_URL"
TICKS_PER_S = 10_000_000
SAMPLE_RATE = 24000  # the client always asks for audio-24khz-48kbitrate-mono-mp3

# The client (edge-tts, aiohttp) and the MP3 decoder (pydub) are imported when the engine first speaks,
# not with this module: estimates (``playout check``, an upload's check in the daemon) only need the
# engine's name, voices, speed and whether it is usable, and the on-air process must not load them.


def _overridden_url() -> str | None:
    url = os.environ.get(URL_ENV)
    if not url:
        return None
    # The client appends "&ConnectionId=…", so the address must already carry a query string.
    return url if "?" in url else url + "?TrustedClientToken=playout"


@functools.cache
def _default_url() -> str:
    """The client's own service address, read once: ``_request`` overwrites the client's global."""
    import edge_tts.communicate

    return edge_tts.communicate.WSS_URL


def service_url() -> str:
    return _overridden_url() or _default_url()


def reset_outages() -> None:
    outages.current.clear()


@dataclass(frozen=True)
class Boundary:
    start_s: float
    end_s: float
    text: str


class _Fault(Exception):
    """One failed attempt, classified: ``service`` faults mean the service is unreachable for everyone."""

    def __init__(self, kind: str, message: str, detail: str, retry: bool, code: str = "EDGE_FAILED"):
        super().__init__(detail)
        self.kind, self.message, self.detail, self.retry, self.code = kind, message, detail, retry, code


def _classify(exc: BaseException, timeout_s: float) -> _Fault:
    import aiohttp
    from edge_tts import exceptions as edge_errors

    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return _Fault("service", f"dịch vụ Edge không trả lời trong {timeout_s:.0f} giây", "timeout", True)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        if exc.status == 403:
            return _Fault("service", "dịch vụ Edge từ chối kết nối (403)", f"handshake 403: {exc}", False)
        return _Fault("service", f"dịch vụ Edge báo lỗi {exc.status}", f"handshake {exc.status}: {exc}", True)
    if isinstance(exc, edge_errors.SkewAdjustmentError):
        return _Fault("service", "dịch vụ Edge từ chối kết nối (lệch giờ)", f"skew: {exc}", False)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return _Fault(
            "service", "không kết nối được dịch vụ Edge (mất mạng?)", f"{type(exc).__name__}: {exc}", True
        )
    if isinstance(exc, edge_errors.NoAudioReceived):
        return _Fault("voice", "dịch vụ Edge không trả âm thanh", f"no audio: {exc}", True, "EDGE_NO_AUDIO")
    if isinstance(exc, edge_errors.EdgeTTSException):
        return _Fault("voice", "dịch vụ Edge trả về dữ liệu lạ", f"{type(exc).__name__}: {exc}", True)
    if isinstance(exc, EngineError):
        return _Fault("voice", exc.message, exc.detail or exc.message, True, exc.code)
    return _Fault(
        "voice", "lỗi không lường trước khi gọi dịch vụ Edge", f"{type(exc).__name__}: {exc}", False
    )


class EdgeEngine(Engine):
    name = "edge"
    #: Neural Vietnamese voices read about 4.6 syllables a second at +0 %; a first estimate, to be
    #: checked against real renders on a station with Internet (no machine here reaches the service).
    syllables_per_s = 4.6

    def default_voice(self) -> str:
        return "vi-VN-HoaiMyNeural"

    def voices(self) -> Sequence[str]:
        return tuple(EDGE_VOICES)

    def voice_chain(self, wanted: str | None) -> list[str]:
        # Users report intermittent failures with one voice while the other works: try both before
        # the station goes offline.
        first = self.pick_voice(wanted)
        return [first, *(v for v in EDGE_VOICES if v != first)]

    # -- the engine seam -------------------------------------------------------------------------------

    def synthesize(self, sentences: Sequence[str], *, voice: str, rate_pct: int) -> Take:

        if voice not in EDGE_VOICES:
            raise EngineError(f"Giọng '{voice}' không có trong danh sách giọng Edge", code="VOICE_UNKNOWN")
        url = service_url()
        self._check_outage(url)
        started = time.monotonic()
        clips: list[np.ndarray] = []
        for part in request_parts(sentences):
            clips += self._synthesize_part(url, part, voice, rate_pct)
        logger.info(
            "edge %s: %d sentences, %.1fs of speech in %.1fs",
            voice,
            len(clips),
            sum(len(c) for c in clips) / SAMPLE_RATE,
            time.monotonic() - started,
        )
        return Take(self.name, voice, rate_pct, SAMPLE_RATE, clips)

    def _synthesize_part(
        self, url: str, sentences: Sequence[str], voice: str, rate_pct: int
    ) -> list[np.ndarray]:
        """One request: bounded in time, retried with backoff for transient faults, every attempt logged."""
        s = self.settings
        delay = s.edge_backoff_s
        for attempt in range(1, s.edge_retries + 2):
            started = time.monotonic()
            try:
                mp3, boundaries = self._request(url, "\n".join(sentences), voice, rate_pct)
                return split_sentences_audio(decode_mp3(mp3), SAMPLE_RATE, sentences, boundaries)
            except Exception as exc:  # noqa: BLE001 - every failure is classified below, none escapes
                fault = _classify(exc, s.edge_attempt_timeout_s)
            logger.warning(
                "edge %s attempt %d/%d failed after %.1fs: %s",
                voice,
                attempt,
                s.edge_retries + 1,
                time.monotonic() - started,
                fault.detail,
            )
            if fault.retry and attempt <= s.edge_retries:
                threading.Event().wait(delay)  # interruptible, and immune to wall-clock steps
                delay *= 2
                continue
            if fault.kind == "service":
                self._record_outage(url)
                raise EngineUnavailable(
                    f"Không dùng được giọng Edge: {fault.message}", detail=fault.detail, engine=self.name
                )
            raise EngineError(
                f"Giọng {voice}: {fault.message}",
                code=fault.code,
                detail=fault.detail,
                engine=self.name,
                voice=voice,
            )
        raise AssertionError("unreachable")

    def ready(self) -> bool:
        # Without an override the station talks to one service: any remembered outage is its outage.
        return outages.current.remaining(_overridden_url()) <= 0

    # -- outages ------------------------------------------------------------------------------------------

    def _check_outage(self, url: str) -> None:
        # Service outages are remembered across render workers (a file in the data folder, see
        # tts.outages): a start-up render of twenty bulletins must not wait for the service twenty times.
        left = outages.current.remaining(url)
        if left > 0:
            raise EngineUnavailable(
                f"Dịch vụ Edge vừa không truy cập được; thử lại sau {left:.0f} giây, tạm dùng giọng dự phòng",
                detail=f"service marked down for another {left:.0f}s",
                engine=self.name,
            )

    def _record_outage(self, url: str) -> None:
        if self.settings.edge_outage_s > 0:
            outages.current.record(url, self.settings.edge_outage_s)
            logger.warning(
                "edge service unreachable; using offline engines for %.0fs", self.settings.edge_outage_s
            )

    # -- the request --------------------------------------------------------------------------------------

    def _request(self, url: str, text: str, voice: str, rate_pct: int) -> tuple[bytes, list[Boundary]]:
        import edge_tts.communicate

        _default_url()  # remembered before it is overwritten
        # The client reads the address from its own module global (see docs/edge-tts-protocol.md).
        edge_tts.communicate.WSS_URL = url
        timeout = self.settings.edge_attempt_timeout_s
        return asyncio.run(asyncio.wait_for(self._stream(text, voice, rate_pct, timeout), timeout))

    @staticmethod
    async def _stream(text: str, voice: str, rate_pct: int, timeout: float) -> tuple[bytes, list[Boundary]]:
        import edge_tts

        communicate = edge_tts.Communicate(
            text,
            voice,
            rate=f"{rate_pct:+d}%",
            boundary="SentenceBoundary",
            connect_timeout=max(1, min(10, int(timeout))),
            receive_timeout=max(1, int(timeout)),
        )
        audio = bytearray()
        boundaries: list[Boundary] = []
        async for chunk in communicate.stream():
            if chunk["type"] == "audio":
                audio += chunk["data"]
            elif chunk["type"] == "SentenceBoundary":
                start = chunk["offset"] / TICKS_PER_S
                boundaries.append(Boundary(start, start + chunk["duration"] / TICKS_PER_S, chunk["text"]))
        return bytes(audio), boundaries


#: Bytes of escaped text per request.  edge-tts splits at 4096 on its own, possibly inside a sentence;
#: staying under it and splitting at sentence ends keeps every join between two sentences.
REQUEST_BYTES = 3500


def request_parts(sentences: Sequence[str], limit: int = REQUEST_BYTES) -> list[list[str]]:
    """Consecutive sentences grouped into requests of at most ``limit`` bytes (as the client escapes them)."""
    parts: list[list[str]] = []
    size = 0
    for sentence in sentences:
        n = len(xml_escape(sentence).encode("utf-8")) + 1
        if not parts or size + n > limit:
            parts.append([])
            size = 0
        parts[-1].append(sentence)
        size += n
    return parts


def decode_mp3(data: bytes) -> np.ndarray:
    """MP3 bytes to float32 mono at 24 kHz, through ffmpeg (pydub)."""
    import numpy as np
    from pydub import AudioSegment

    try:
        seg = AudioSegment.from_file(io.BytesIO(data), format="mp3")
    except Exception as exc:  # pydub raises bare exceptions for ffmpeg failures
        raise EngineError("Âm thanh từ dịch vụ Edge bị hỏng", detail=f"mp3 decode: {exc}") from None
    seg = seg.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    return np.frombuffer(seg.raw_data, dtype="<i2").astype(np.float32) / 32768.0


_WORD = re.compile(r"\w", re.UNICODE)
_SPACE = re.compile(r"\s+")


def _find(text: str, needle: str, start: int) -> tuple[int, int]:
    """Where the service's sentence text sits in ours, tolerant of whitespace differences."""
    i = text.find(needle, start)
    if i >= 0:
        return i, i + len(needle)
    pattern = r"\s+".join(re.escape(part) for part in needle.split())
    m = re.compile(pattern).search(text, start) if pattern else None
    return (m.start(), m.end()) if m else (-1, -1)


def split_sentences_audio(
    samples: np.ndarray, rate: int, sentences: Sequence[str], boundaries: Sequence[Boundary]
) -> list[np.ndarray]:
    """Cut the service's audio into one clip per sentence, and refuse audio that was cut short.

    The service reports its own sentence boundaries (text, start, duration).  They are located in our
    text; a sentence of ours that starts or ends where one of theirs does is cut exactly, and one the
    service merged with a neighbour is cut at the quietest moment near where its characters say.
    """
    text = "\n".join(sentences)
    spans: list[tuple[int, int, float, float]] = []
    cursor = 0
    for b in boundaries:
        needle = b.text.strip()
        if not needle:
            continue
        c0, c1 = _find(text, needle, cursor)
        if c0 < 0:
            raise EngineError(
                "Dịch vụ Edge đọc một câu không có trong bài", detail=f"unmatched boundary {needle!r}"
            )
        spans.append((c0, c1, b.start_s, b.end_s))
        cursor = c1
    words = [m.start() for m in _WORD.finditer(text)]
    if not spans:
        if len(sentences) == 1 and len(samples) and not boundaries:
            return [trim_silence(samples, rate)]
        raise EngineError(
            "Dịch vụ Edge không báo ranh giới câu", detail="no sentence boundaries", code="EDGE_TRUNCATED"
        )
    if words and spans[-1][1] <= words[-1]:
        missing = text[spans[-1][1] :].strip()[:60]
        raise EngineError(
            "Âm thanh từ dịch vụ Edge bị cắt cụt: thiếu câu cuối",
            detail=f"boundaries stop before the end of the text; missing {missing!r}",
            code="EDGE_TRUNCATED",
        )
    audio_s = len(samples) / rate
    if audio_s + 0.15 < spans[-1][3]:
        raise EngineError(
            "Âm thanh từ dịch vụ Edge bị cắt cụt",
            detail=f"audio {audio_s:.2f}s ends before the last boundary at {spans[-1][3]:.2f}s",
            code="EDGE_TRUNCATED",
        )

    def no_word(a: int, b: int) -> bool:
        return not _WORD.search(text, a, b) if a < b else True

    def time_at(c: int, *, is_end: bool) -> float:
        for c0, c1, t0, t1 in spans:
            if is_end and c <= c1 and no_word(c, c1) and c > c0:
                return t1
            if not is_end and c0 <= c < c1 and no_word(c, c0):
                return t0
            if not is_end and c < c0:
                return t0
            if c0 <= c < c1 or (is_end and c0 < c <= c1):
                share = (c - c0) / max(1, c1 - c0)
                return _quietest_near(samples, rate, t0 + share * (t1 - t0))
        return spans[-1][3]

    clips = []
    pos = 0
    for sentence in sentences:
        a, b = pos, pos + len(sentence)
        pos = b + 1  # the "\n" between sentences
        start = int(round(time_at(a, is_end=False) * rate))
        end = int(round(time_at(b, is_end=True) * rate))
        clips.append(trim_silence(samples[start : max(start, min(end, len(samples)))], rate))
    return clips


def _quietest_near(samples: np.ndarray, rate: int, t: float, reach_s: float = 0.25) -> float:
    import numpy as np

    lo = max(0, int((t - reach_s) * rate))
    hi = min(len(samples), int((t + reach_s) * rate))
    if hi - lo < rate // 50:
        return t
    levels = frame_rms_db(samples[lo:hi], rate, 0.01)
    return (lo + int(np.argmin(levels)) * int(rate * 0.01)) / rate
