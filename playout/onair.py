"""The on-air sequence: the one place the relay is keyed.

    claim the slot (as-run log) → key the relay → pre-roll → play → tail → unkey (in ``finally``)

The audio is checked before the slot is claimed and before the relay is keyed (``verified_audio``): a
file deleted, truncated or replaced behind the station's back never keys the amplifier.  A play is cut
by ``stop`` (an operator, an emergency, the station stopping) or at the window's end (``ends_by``),
whatever the file; the relay is released either way.  One play at a time: callers hold ``lock`` around
``air_locked`` (``air`` does it for them), so a slot that must decide under the lock (does it still fit
its window?) can.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import struct
import sys
import threading
import time
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from playout import notify
from playout.asrun import AsRunLog, Slot
from playout.audio_out import Player
from playout.config import StationConfig
from playout.errors import PlayoutError
from playout.library import Bulletin

logger = logging.getLogger(__name__)

_READ_FRAMES = 1 << 16


@dataclass
class NowPlaying:
    bulletin: Bulletin
    slot: Slot
    row: int
    stop: threading.Event
    reason: str = ""
    since: float = field(default_factory=time.monotonic)


class _Interrupted(Exception):
    pass


def read_pcm16(data: bytes) -> tuple[array, int]:
    """The samples and rate of a 16-bit mono PCM WAV file (what the render writes), without numpy.

    The on-air process holds no numpy or soundfile (about 18 MiB of RSS, issue 11): the standard
    library's ``wave`` reads the header, the frames are copied once into an ``array("h")``.  A file cut
    short gives the frames it has (the caller compares the count); anything but 16-bit mono PCM is a
    ValueError, as is a header ``wave`` cannot read.
    """
    samples = array("h")
    try:
        with wave.open(io.BytesIO(data)) as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if channels != 1 or width != 2:
                raise ValueError(f"{channels} channel(s) of {8 * width}-bit samples, not 16-bit mono")
            # In pieces: the file's bytes and the samples side by side, not a third copy in between.
            while chunk := wav.readframes(_READ_FRAMES):
                samples.frombytes(chunk[: len(chunk) - len(chunk) % 2])
    except (wave.Error, EOFError, RuntimeError, struct.error) as exc:  # a broken header
        raise ValueError(str(exc) or type(exc).__name__) from None
    if sys.byteorder == "big":  # WAV is little-endian; PortAudio takes the machine's order
        samples.byteswap()
    return samples, rate


def slot_length_s(config: StationConfig, bulletin: Bulletin | None = None) -> float:
    """How long a play keeps the relay keyed: pre-roll, the bulletin (or the configured length), tail."""
    r = config.relay
    length = bulletin.duration_s if bulletin and bulletin.duration_s else config.bulletin.length_s
    return r.pre_roll_s + length + r.tail_s


class OnAir:
    """Key → pre-roll → play → tail → unkey, for one bulletin at a time.

    ``settings`` gives the config in force (pre-roll and tail are read at each play, so a reloaded
    ``schedule.yaml`` applies to the next one); ``rerender`` asks the library to render again a bulletin
    whose audio failed its check; ``next_slot_text`` is what systemd's status says between plays.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], StationConfig],
        relay,
        player: Player,
        log: AsRunLog,
        tz: dt.tzinfo,
        stopping: threading.Event,
        rerender: Callable[[], None],
        next_slot_text: Callable[[], str],
    ):
        self._settings = settings
        self.relay = relay
        self.player = player
        self.log = log
        self.tz = tz
        self.stopping = stopping
        self._rerender = rerender
        self._next_slot_text = next_slot_text
        #: Held by whoever airs: one play at a time (a slot waits for an emergency on air, and so on).
        self.lock = threading.Lock()
        self.now_playing: NowPlaying | None = None

    @property
    def config(self) -> StationConfig:
        return self._settings()

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def air(self, bulletin: Bulletin, slot: Slot, key: str | None = None) -> str:
        with self.lock:
            outcome = self.air_locked(bulletin, slot, key)
        if outcome == "unverified" and key and key.startswith("manual/"):
            # A technician pressed "play now": say on the log why nothing aired.  (An emergency stays
            # unclaimed instead, and airs as soon as its audio is rendered again.)
            row = self.log.start(slot, bulletin, key)
            if row is not None:
                self.log.finish(row, "failed", error="tệp âm thanh không khớp với bản đã dựng; đang dựng lại")
        return outcome

    def verified_audio(self, bulletin: Bulletin):
        """The bulletin's samples (16-bit PCM, ``array("h")``) and rate, if the cached file is the one the
        library rendered; else None.

        Checked before the slot is claimed and before the relay is keyed: a file deleted, truncated or
        replaced behind the station's back must not key the amplifier for silence or for someone else's
        audio (a 60 s tone once aired 31 s past the window's end, logged with the old hash).
        """
        path = bulletin.audio_path
        want_sha = bulletin.summary.get("audio_sha256")
        try:
            data = path.read_bytes() if path is not None else None
        except OSError as exc:
            data, why = None, f"unreadable ({exc.strerror or exc})"
        else:
            why = "missing" if data is None else ""
        if data is not None and want_sha and hashlib.sha256(data).hexdigest() != want_sha:
            data, why = None, "changed since it was rendered (hash differs)"
        samples = rate = None
        if data is not None:
            try:
                samples, rate = read_pcm16(data)
            except (RuntimeError, TypeError, ValueError) as exc:
                why = f"not a readable WAV ({exc})"
            else:
                expected = round(bulletin.duration_s * rate) if bulletin.duration_s else len(samples)
                if len(samples) != expected:
                    why, samples = f"{len(samples)} frames, expected {expected}", None
        if samples is None:
            logger.error("audio of %s (%s) %s: not airing it; rendering it again", bulletin.title, path, why)
            bulletin.status, bulletin.audio_path, bulletin.summary = "pending", None, {}
            self._rerender()
            return None
        return samples, rate

    def air_locked(
        self, bulletin: Bulletin, slot: Slot, key: str | None = None, ends_by: dt.datetime | None = None
    ) -> str:
        """Key → pre-roll → play → tail → unkey.  The one place the relay is keyed; released in finally.

        ``ends_by``: the window's end.  Whatever the file, the play is cut there, so nothing airs past it.
        """
        if self.stopping.is_set():
            return "stopping"
        if self.log.has_slot(key or slot.key):
            return "duplicate"
        audio = self.verified_audio(bulletin)
        if audio is None:
            return "unverified"
        samples, rate = audio
        row = self.log.start(slot, bulletin, key)
        if row is None:
            return "duplicate"  # this slot already has a row: it aired, failed or was logged before
        r = self.config.relay
        stop = threading.Event()
        self.now_playing = current = NowPlaying(bulletin, slot, row, stop)
        cut = None
        if ends_by is not None:
            # The last line of defence for "never past the window": whatever slipped through, stop there.
            cut = threading.Timer(
                max(0.0, (ends_by - self.now()).total_seconds()),
                lambda: self._cut(current, "hết khung giờ phát"),
            )
            cut.daemon = True
            cut.start()
        status, error = "failed", None
        logger.info("on air: %s (%s) for slot %s", bulletin.title, bulletin.id[:12], slot.key)
        notify.notify(f"STATUS=on air: {bulletin.title}")
        try:
            self.log.update(row, relay_on_at=self.relay.on().astimezone(self.tz))
            keyed = time.monotonic()
            # The sound system is started inside the pre-roll (PortAudio is down between plays, to keep
            # the idle process small), so the audio still starts pre_roll_s after the relay.
            with self.player.session():
                if stop.wait(max(0.0, r.pre_roll_s - (time.monotonic() - keyed))):
                    raise _Interrupted
                result = self.player.play(
                    samples,
                    rate,
                    stop=stop,
                    on_start=lambda t: self.log.update(row, audio_start_at=t.astimezone(self.tz)),
                )
            self.log.update(row, audio_end_at=result.ended_at.astimezone(self.tz), underruns=result.underruns)
            if result.stopped:
                raise _Interrupted
            if result.underruns:
                logger.warning("%d underrun(s) while airing %s", result.underruns, bulletin.title)
            # The tail counts from the last frame, not from when the player returned (it drains first).
            elapsed = (dt.datetime.now(dt.UTC) - result.ended_at).total_seconds()
            stop.wait(max(0.0, r.tail_s - elapsed))
            status = "played"
        except _Interrupted:
            status, error = "interrupted", current.reason or "dừng phát"
        except PlayoutError as exc:
            status, error = "failed", f"[{exc.code}] {exc.message}"
            logger.error("airing %s failed: %s", bulletin.title, error)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the relay goes off and the log says why
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            logger.exception("airing %s failed", bulletin.title)
        finally:
            off_at = self.relay.off()
            if cut is not None:
                cut.cancel()
            self.log.finish(row, status, relay_off_at=off_at.astimezone(self.tz), error=error)
            self.now_playing = None
            notify.notify(f"STATUS=on duty; next slot {self._next_slot_text()}")
        logger.info("slot %s: %s", slot.key, status)
        return status

    def _cut(self, playing: NowPlaying, reason: str) -> None:
        if self.now_playing is playing:
            self.stop(reason)

    def stop(self, reason: str) -> bool:
        """Cut the play on air (the sequence unkeys the relay); False if nothing was on air."""
        current = self.now_playing
        if current is None:
            return False
        current.reason = reason
        current.stop.set()
        logger.warning("stopping playback of %s: %s", current.bulletin.title, reason)
        return True
