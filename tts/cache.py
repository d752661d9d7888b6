"""The render cache: air-ready WAV files addressed by what went into them.

The key hashes the spoken text, the engine chain, the voice, every setting that shapes the audio and
the pipeline version, so the same request is never synthesized twice and a bulletin rendered while the
Edge service was up never needs the network again.  Each entry is ``KEY.wav`` plus ``KEY.json`` (the
render summary); the JSON is written last, so an entry without it is an interrupted write and ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import wave
from pathlib import Path

from playout.atomic import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)


def wav_frames(path: Path) -> tuple[int, int]:
    """Frames and sample rate of a cached WAV (16-bit mono PCM), from its header, without numpy.

    The on-air process looks at cache entries too and holds neither numpy nor soundfile (issue 11).  A
    file whose audio is cut short of what its header says, or that is not 16-bit mono PCM, is a
    ValueError: not an entry to air.
    """
    try:
        with wave.open(str(path)) as wav:
            frames, rate = wav.getnframes(), wav.getframerate()
            channels, width = wav.getnchannels(), wav.getsampwidth()
            if channels != 1 or width != 2:
                raise ValueError(f"{channels} channel(s) of {8 * width}-bit samples, not 16-bit mono")
            if frames:  # the last frame the header promises is there
                wav.setpos(frames - 1)
                if len(wav.readframes(1)) != 2:
                    raise ValueError(f"the audio ends before the {frames} frames its header gives")
    except (wave.Error, EOFError, struct.error) as exc:
        raise ValueError(f"not a readable WAV ({exc or type(exc).__name__})") from None
    return frames, rate


def cache_key(request: dict) -> str:
    blob = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


class RenderCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def wav_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.wav"

    def _summary_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> tuple[Path, dict] | None:
        """The entry, if it is complete and its audio is intact; a damaged entry counts as a miss."""
        wav, meta = self.wav_path(key), self._summary_path(key)
        try:
            summary = json.loads(meta.read_text("utf-8"))
            frames, rate = wav_frames(wav)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RuntimeError) as exc:
            logger.warning("render cache entry %s is damaged (%s); rendering again", key[:12], exc)
            return None
        if frames != summary.get("frames") or rate != summary.get("sample_rate"):
            logger.warning("render cache entry %s does not match its summary; rendering again", key[:12])
            return None
        # Same length is not same audio: a file replaced behind the station's back must not air as this
        # bulletin.  Hashing a 3-minute WAV costs ~15 ms, paid once per render request.
        want = summary.get("audio_sha256")
        if want:
            try:
                digest = hashlib.sha256(wav.read_bytes()).hexdigest()
            except OSError as exc:
                logger.warning("render cache entry %s is unreadable (%s); rendering again", key[:12], exc)
                return None
            if digest != want:
                logger.warning("render cache entry %s was changed after rendering; rendering again", key[:12])
                return None
        return wav, summary

    def put(self, key: str, wav_bytes: bytes, summary: dict) -> Path:
        wav = self.wav_path(key)
        atomic_write_bytes(wav, wav_bytes)
        atomic_write_text(self._summary_path(key), json.dumps(summary, ensure_ascii=False, indent=1))
        return wav
