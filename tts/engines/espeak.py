"""espeak-ng: the offline engine that is always there.

Robotic, but it runs on any Pi without a network or a model file, in well under a second per bulletin,
so it is the last link of every engine chain.  One process per sentence (espeak-ng starts in a few
milliseconds) gives exact sentence boundaries for the fitter; sentences run two at a time because the
Pi and CI both have more than one core.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from playout.errors import EngineError, EngineUnavailable
from tts.engines import Engine, Take
from tts.voices import ESPEAK_VOICES

if TYPE_CHECKING:  # numpy only where samples are made: the daemon checks scripts without it
    import numpy as np

logger = logging.getLogger(__name__)


def trim_silence(samples: np.ndarray, rate: int) -> np.ndarray:
    """tts.audio's, imported when samples exist: checking a script (in the daemon) needs no numpy."""
    from tts.audio import trim_silence as trim

    return trim(samples, rate)


SENTENCE_TIMEOUT_S = 30.0


class EspeakEngine(Engine):
    name = "espeak"
    syllables_per_s = 4.0

    def __init__(self, settings):
        super().__init__(settings)
        self.binary = shutil.which("espeak-ng")

    def default_voice(self) -> str:
        return self.settings.espeak_voice

    def voices(self) -> Sequence[str]:
        return tuple(ESPEAK_VOICES)

    def ready(self) -> bool:
        return self.binary is not None

    def words_per_minute(self, rate_pct: int) -> int:
        return max(80, round(self.settings.espeak_wpm * (1 + rate_pct / 100)))

    def synthesize(self, sentences: Sequence[str], *, voice: str, rate_pct: int) -> Take:
        if not self.binary:
            raise EngineUnavailable(
                "Không tìm thấy chương trình espeak-ng (cài bằng: make setup)",
                detail="espeak-ng not on PATH",
                engine=self.name,
            )
        if voice not in ESPEAK_VOICES:
            raise EngineError(f"Giọng '{voice}' không có trong espeak-ng", engine=self.name)
        wpm = self.words_per_minute(rate_pct)
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda s: self._speak(s, voice, wpm), sentences))
        rate = results[0][1] if results else 22050
        return Take(self.name, voice, rate_pct, rate, [clip for clip, _ in results])

    def _speak(self, sentence: str, voice: str, wpm: int) -> tuple[np.ndarray, int]:
        # Text goes through stdin, never argv: a sentence starting with "-" must not become an option.
        try:
            proc = subprocess.run(
                [self.binary, "-v", voice, "-s", str(wpm), "--stdout"],
                input=sentence.encode("utf-8"),
                capture_output=True,
                timeout=SENTENCE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise EngineError(
                "espeak-ng không phản hồi", detail=f"timeout on {sentence[:60]!r}", engine=self.name
            ) from None
        if proc.returncode != 0:
            raise EngineError(
                "espeak-ng báo lỗi khi đọc văn bản",
                detail=proc.stderr.decode("utf-8", "replace")[-500:],
                engine=self.name,
            )
        samples, rate = parse_streamed_wav(proc.stdout)
        return trim_silence(samples, rate), rate


def parse_streamed_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM from a WAV written to a pipe.

    espeak-ng cannot seek back to fill in the RIFF and data sizes when it writes to stdout, so they hold
    placeholders; the audio is simply everything after the ``data`` chunk header.
    """
    import numpy as np

    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineError("espeak-ng trả về dữ liệu âm thanh hỏng", detail=f"not a WAV ({len(data)} bytes)")
    pos = 12
    rate = channels = bits = None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"fmt ":
            channels = int.from_bytes(data[pos + 10 : pos + 12], "little")
            rate = int.from_bytes(data[pos + 12 : pos + 16], "little")
            bits = int.from_bytes(data[pos + 22 : pos + 24], "little")
        elif chunk == b"data":
            if rate is None or channels != 1 or bits != 16:
                raise EngineError("espeak-ng trả về định dạng âm thanh lạ", detail=f"{channels=} {bits=}")
            body = data[pos + 8 :]
            body = body[: len(body) - len(body) % 2]
            return np.frombuffer(body, dtype="<i2").astype(np.float32) / 32768.0, rate
        pos += 8 + size + (size & 1)
    raise EngineError("espeak-ng trả về dữ liệu âm thanh hỏng", detail="no data chunk")
