"""Audio out: the one seam between a bulletin in memory and the amplifier's input.

Two players share one small API (Mopidy's shape: an audio class with a real implementation and a
dummy)::

    Player
    ├── SoundDevicePlayer   PortAudio through sounddevice: ALSA on the Pi (or PulseAudio/PipeWire via
    │                       ALSA's "pulse"/"default" devices, which is how the tests record what aired)
    └── NullPlayer          no output device at all: the audio is discarded but takes real time, so the
                            on-air sequence (relay, pre-roll, tail, as-run log) behaves exactly as on air

Every failure of the sound system becomes :class:`AudioError` (``AUDIO_DEVICE_FAILED``, a
:class:`~playout.errors.PlayoutError`), never a raw PortAudio exception, and a stalled device cannot
hang the caller: a watchdog gives up when the device stops asking for audio.

Example (runs anywhere: with no sound card it picks the NullPlayer and says so in the log)::

    import math
    from array import array
    from playout.audio_out import open_player
    from playout.config import AudioSettings

    tone = array("h", (round(9830 * math.sin(2 * math.pi * 440 * i / 24000)) for i in range(24000)))
    with open_player(AudioSettings(device=None)) as player:
        result = player.play(tone, 24000)
        print(player.describe(), result.frames, result.underruns)

Samples are mono, int16 or float32: 16-bit PCM as ``bytes``/``bytearray``/``memoryview`` or
``array("h")`` (what the station passes: the cached WAV's frames), ``array("f")`` for float32, or a
numpy array of either (float64 is converted).  This module never imports numpy itself: the on-air
process idles all day and numpy alone is about 15 MiB of its RSS (issue 11); it is only looked at when
the caller already has it loaded.  PortAudio gets the bytes through ``sounddevice.RawOutputStream``.

``settings.device`` is a PortAudio device name (any unique part of it, e.g. ``"USB Audio"``) or
index, as listed by :func:`output_devices`; ``None`` is PortAudio's default output.

PortAudio reads its device list (and ALSA its configuration, which is where ``PULSE_SERVER`` and
the "pulse" plugin come in) when it is initialised.  This module keeps it initialised only while it is
used (a play, from relay-on to the end of the stream, or a look at the device list): the on-air process
idles all day, and an initialised PortAudio holds ALSA's plugins and configuration, about 11 MiB of it
(measured: 49.7 MiB RSS with it, 38.8 after ``Pa_Terminate``; initialising again takes about 30 ms,
inside the relay's pre-roll).  Each use therefore sees the devices of that moment: a USB card plugged
in later, a sound server restarted.  :func:`refresh_devices` re-reads them in the middle of a use.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import logging
import numbers
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from playout.config import AudioSettings
from playout.errors import (
    AudioError as AudioError,  # lives in the one error tree now; importable from here as before
)

if TYPE_CHECKING:
    import numpy as np

    Samples: TypeAlias = "bytes | bytearray | memoryview | array[int] | array[float] | np.ndarray | _Pcm"

logger = logging.getLogger(__name__)

#: Output buffer PortAudio keeps filled, in seconds.  Robustness over latency: nobody on the street
#: hears 200 ms of delay, everybody hears a dropout.  A Pi rendering speech on all cores can keep the
#: callback thread from the GIL for tens of milliseconds, which PortAudio's "high" (about 35 ms on
#: ALSA) does not always absorb; through PulseAudio's resampler it even underran once per play.
LATENCY_S = 0.2
#: A device that has not asked for audio for this long is hung (unplugged USB card, dead server).
STALL_TIMEOUT_S = 5.0
#: After ``stop`` is set, how long the callback gets to notice before the stream is aborted from outside.
STOP_GRACE_S = 0.08
#: Silence fed after the bulletin beyond the buffer itself (see ``_Feed``), in seconds.
PAD_S = 0.3
#: The stream is ended this long after the device's clock says the last frame was played.
END_MARGIN_S = 0.02
#: How often the playing thread looks at the stream's progress.
_POLL_S = 0.01

NULL_DESCRIPTION = "no audio device: audio is discarded in real time"

OnStart = Callable[[dt.datetime], None]


@dataclass
class PlayResult:
    """What happened to one play, for the as-run log."""

    started_at: dt.datetime  #: tz-aware UTC: when the first frame was handed to the device
    ended_at: dt.datetime  #: when the stream drained after the last frame, or playback was stopped
    frames: int  #: frames handed to the device
    underruns: int  #: output underflows the stream reported during this play
    stopped: bool  #: True if the ``stop`` event ended the play early
    device: str  #: where the audio went (``Player.describe()``)

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


#: PortAudio's name of each sample format, by the array/struct code the samples are read with.
_FORMATS = {"h": "int16", "f": "float32"}


@dataclass(frozen=True)
class _Pcm:
    """Mono samples as the bytes PortAudio takes (native byte order), and their format."""

    data: memoryview  #: format "B", C-contiguous
    code: str  #: "h" (int16) or "f" (float32)

    @property
    def dtype(self) -> str:
        return _FORMATS[self.code]

    @property
    def size(self) -> int:
        """Bytes per sample."""
        return 2 if self.code == "h" else 4

    def __len__(self) -> int:
        return len(self.data) // self.size


def _numpy_mono(samples: Any) -> _Pcm:
    """A numpy array's samples (numpy is loaded: the caller made the array)."""
    import numpy as np

    if samples.ndim == 2 and samples.shape[1] == 1:
        samples = samples[:, 0]
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples, got an array of shape {samples.shape}")
    if samples.dtype == np.float64:
        samples = samples.astype(np.float32)
    if samples.dtype not in (np.int16, np.float32):
        raise ValueError(f"expected int16 or float32 samples, got {samples.dtype}")
    samples = np.ascontiguousarray(samples)
    return _Pcm(memoryview(samples).cast("B"), "h" if samples.dtype == np.int16 else "f")


def _as_mono(samples: Samples) -> _Pcm:
    """The samples as one contiguous channel of int16 or float32 (the formats PortAudio takes as is).

    Bytes-like samples without a format of their own (``bytes``, ``bytearray``, a byte ``memoryview``)
    are 16-bit PCM in the machine's byte order (little-endian on the Pi, as in a WAV file).
    """
    if isinstance(samples, _Pcm):
        return samples
    numpy = sys.modules.get("numpy")  # an ndarray can only exist if numpy is loaded: never import it here
    if numpy is not None and isinstance(samples, numpy.ndarray):
        return _numpy_mono(samples)
    if isinstance(samples, array):
        if samples.typecode not in _FORMATS:
            raise ValueError(f"expected int16 or float32 samples, got array({samples.typecode!r})")
        return _Pcm(memoryview(samples).cast("B"), samples.typecode)
    if isinstance(samples, bytes | bytearray | memoryview):
        view = memoryview(samples)
        code = view.format
        if code[:1] in ("@", "=") or (code[:1] == "<" and sys.byteorder == "little"):
            code = code[1:]
        code = "h" if code in ("B", "b", "c") else code
        if code not in _FORMATS:
            raise ValueError(f"expected int16 or float32 samples, got format {view.format!r}")
        if view.ndim > 1 and not (view.ndim == 2 and view.shape[1] == 1):
            raise ValueError(f"expected mono samples, got a buffer of shape {view.shape}")
        if not view.c_contiguous:
            raise ValueError("expected contiguous samples")
        view = view.cast("B")
        if len(view) % (2 if code == "h" else 4):
            raise ValueError(f"{len(view)} bytes is not a whole number of {_FORMATS[code]} samples")
        return _Pcm(view, code)
    raise TypeError(f"expected PCM bytes, an array or a numpy array of samples, not {type(samples).__name__}")


def _check_rate(rate: int) -> None:
    if not isinstance(rate, numbers.Integral) or not 1000 <= rate <= 384000:
        raise ValueError(f"invalid sample rate {rate!r}")


class Player(abc.ABC):
    """Plays one bulletin at a time, blocking, in real time."""

    name: str = "player"

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the audio goes, in words for the log and the health endpoint."""

    @abc.abstractmethod
    def play(
        self,
        samples: Samples,
        rate: int,
        *,
        stop: threading.Event | None = None,
        on_start: OnStart | None = None,
    ) -> PlayResult:
        """Play mono ``samples`` (int16 or float32, see the module's doc) at ``rate``; block until done or
        ``stop`` is set.

        ``on_start`` is called once, from the calling thread, with the time the first audio went out;
        it is not called if nothing was played.
        """

    def session(self) -> contextlib.AbstractContextManager[None]:
        """The sound system held ready for one play: entered at relay-on, so its start-up happens during
        the pre-roll rather than after it.  ``play`` works without it (and then starts it itself)."""
        return contextlib.nullcontext()

    def close(self) -> None:  # noqa: B027 - an optional hook, not a duty: most players hold nothing
        """Release the device (nothing is held between plays; kept for symmetry with the other parts)."""

    def __enter__(self) -> Player:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- PortAudio -------------------------------------------------------------------------------------------


def _sounddevice() -> ModuleType | None:
    """sounddevice, or None where the PortAudio library itself is missing (a machine with no audio)."""
    try:
        import sounddevice
    except OSError as exc:  # raised at import when libportaudio2 cannot be loaded
        logger.debug("PortAudio unavailable: %s", exc)
        return None
    return sounddevice


def _output_infos(sd: ModuleType) -> list[dict[str, Any]]:
    """PortAudio's output devices, each with ``index`` and ``hostapi_name`` added."""
    hostapis = sd.query_hostapis()
    out = []
    for index, info in enumerate(sd.query_devices()):
        if info["max_output_channels"] > 0:
            info = dict(info)
            info.setdefault("index", index)
            info["hostapi_name"] = hostapis[info["hostapi"]]["name"]
            out.append(info)
    return out


def _label(info: dict[str, Any]) -> str:
    return f"{info['name']} ({info['hostapi_name']})"


def output_devices() -> list[str]:
    """Output devices PortAudio can see, as ``"index: name (host API)"``; empty without PortAudio."""
    sd = _sounddevice()
    if sd is None:
        return []
    try:
        with portaudio():
            return [f"{info['index']}: {_label(info)}" for info in _output_infos(sd)]
    except (sd.PortAudioError, AudioError) as exc:
        logger.warning("cannot list audio devices: %s", exc)
        return []


def refresh_devices() -> None:
    """Make PortAudio see the current devices and environment.

    PortAudio enumerates devices, and ALSA reads its configuration (including whether the "pulse"
    plugin has a server to talk to, from ``PULSE_SERVER``), only in ``Pa_Initialize``.  Outside a use
    (see :func:`portaudio`) there is nothing to do: the next use initialises afresh.  Inside one it is
    re-initialised at once; only call it then while no stream is open.
    """
    sd = _sounddevice()
    if sd is None:
        return
    with _pa_lock:
        try:
            _pa_terminate(sd)
            if _pa_users:
                _pa_initialize(sd)
        except sd.PortAudioError as exc:
            raise AudioError(
                "Không khởi động lại được hệ thống âm thanh (PortAudio)", detail=str(exc)
            ) from None


# PortAudio is initialised while anything in this process uses it, and terminated when the last use
# ends (``import sounddevice`` initialises it once; the first use's end terminates that too).
_pa_lock = threading.RLock()
_pa_users = 0


def _pa_initialize(sd: ModuleType) -> None:
    # sounddevice points fd 2 at /dev/null while Pa_Initialize runs, to hide ALSA's chatter about
    # missing cards.  In a daemon whose log is its stderr, a line another thread wrote meanwhile would be
    # lost: hold the log handlers' locks for those ~30 ms, so such a line waits instead.
    handlers = [h for ref in logging._handlerList if (h := ref()) is not None]  # type: ignore[attr-defined]
    for handler in handlers:
        handler.acquire()
    try:
        sd._initialize()
    finally:
        for handler in reversed(handlers):
            handler.release()


def _pa_terminate(sd: ModuleType) -> None:
    while sd._initialized:
        sd._terminate()


@contextlib.contextmanager
def portaudio() -> Iterator[ModuleType]:
    """sounddevice with PortAudio initialised for the ``with`` block; AudioError if it cannot be.

    Uses nest and may overlap across threads; PortAudio is terminated when the last one ends.
    """
    global _pa_users
    sd = _sounddevice()
    if sd is None:
        raise AudioError("Máy này không có thư viện âm thanh PortAudio (libportaudio2)")
    with _pa_lock:
        if not sd._initialized:
            try:
                _pa_initialize(sd)
            except sd.PortAudioError as exc:
                raise AudioError(
                    "Không khởi động được hệ thống âm thanh (PortAudio)", detail=str(exc)
                ) from None
        _pa_users += 1
    try:
        yield sd
    finally:
        with _pa_lock:
            _pa_users -= 1
            if not _pa_users:
                try:
                    _pa_terminate(sd)
                except sd.PortAudioError as exc:  # nothing to undo: the next use initialises again
                    logger.warning("terminating PortAudio failed: %s", exc)


def _device_list_text(infos: list[dict[str, Any]]) -> str:
    if not infos:
        return "không có thiết bị phát nào"
    return ", ".join(f"{info['index']}: {_label(info)}" for info in infos)


class _Feed:
    """One play's state, shared between the PortAudio callback thread and the playing thread.

    The callback only copies memory and reads clocks: anything slower (logging, the caller's
    ``on_start``) happens in the playing thread, so it can never cause an underrun.

    After the bulletin the callback keeps feeding silence (``pad`` frames).  ALSA's "pulse" plugin
    loses the last buffer-full when PortAudio drains it (the final ~200 ms of every bulletin never
    reached the sink in the tests; other ioplug-based plugins, PipeWire's among them, are built the same
    way); padded, what is lost is silence.  The playing thread ends the stream as soon as the device's
    clock says the last real frame was played, so the caller's next step (the relay tail) is on time.
    """

    def __init__(
        self,
        samples: Samples,
        rate: int,
        stop: threading.Event | None,
        *,
        pad: int,
        fallback_delay_s: float,
        callback_stop: type[BaseException],
        abort: type[BaseException],
    ):
        self.pcm = _as_mono(samples)
        self.rate = rate
        self.total = len(self.pcm)
        self.pad = pad
        self.stop = stop
        self.fallback_delay_s = fallback_delay_s
        self.pos = 0  # frames handed over, silence included
        self.underruns = 0
        self.first_at: float | None = None  # time.time() of the first callback
        self.end_at: float | None = None  # time.time() when the last real frame leaves the device
        self.finished_at: float | None = None  # time.time() of PortAudio's finished callback
        self.last_progress = time.monotonic()
        self.stopped = False
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.finished = threading.Event()
        self._callback_stop = callback_stop
        self._abort = abort

    @property
    def frames(self) -> int:
        """Frames of the bulletin handed over (the silence pad not counted)."""
        return min(self.pos, self.total)

    @property
    def completed(self) -> bool:
        return self.end_at is not None

    def callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """sounddevice's raw stream callback (runs in PortAudio's thread).

        ``outdata`` is the device's buffer for ``frames`` frames of interleaved samples in the stream's
        format (any writable buffer: cffi's from ``RawOutputStream``, a numpy array or a bytearray in the
        tests); its channel count follows from its size.
        """
        try:
            self._fill(outdata, frames, time_info, status)
        except (self._callback_stop, self._abort):
            raise
        except Exception as exc:  # noqa: BLE001 - an exception must not escape into PortAudio's thread
            self.error = exc
            _silence(outdata)
            raise self._abort from None

    def _fill(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        now = time.time()
        if status.output_underflow:
            self.underruns += 1
        if self.first_at is None:
            self.first_at = now
            self.started.set()
        self.last_progress = time.monotonic()
        if self.stop is not None and self.stop.is_set():
            # Abort, not stop: stopping would first play out the buffered ~200 ms of the bulletin.
            _silence(outdata)
            self.stopped = self.end_at is None or now < self.end_at
            raise self._abort
        out = memoryview(outdata).cast("B")
        size = self.pcm.size
        channels = max(1, len(out) // (frames * size)) if frames else 1
        n = max(0, min(frames, self.total - self.pos))
        filled = n * size * channels
        if n:
            chunk = self.pcm.data[self.pos * size : (self.pos + n) * size]
            if channels == 1:
                out[:filled] = chunk
            else:  # the same signal on every channel (a device that only takes stereo)
                block, mono = out[:filled].cast(self.pcm.code), chunk.cast(self.pcm.code)
                for channel in range(channels):
                    block[channel::channels] = mono
        if filled < len(out):
            out[filled:] = bytes(len(out) - filled)
        if n and self.pos + n == self.total:
            # The device's own account of when this block reaches the DAC (PortAudio's stream time);
            # ioplug devices report 0 at first, then the plugin's real delay.
            delay = float(time_info.outputBufferDacTime - time_info.currentTime) if time_info else 0.0
            if not 0 < delay < 5:
                delay = self.fallback_delay_s
            self.end_at = now + delay + n / self.rate
        self.pos += frames
        if self.pos >= self.total + self.pad:
            raise self._callback_stop

    def on_finished(self) -> None:
        """sounddevice's finished_callback: the stream drained, was aborted, or failed."""
        self.finished_at = time.time()
        self.finished.set()


def _silence(outdata: Any) -> None:
    out = memoryview(outdata).cast("B")
    out[:] = bytes(len(out))


class SoundDevicePlayer(Player):
    """PortAudio output through ``sounddevice.RawOutputStream`` (bytes, no numpy) with a callback.

    A stream is opened per play and closed after it, so a device that went away between bulletins
    (USB card replugged, sound server restarted) is found again at the next play.
    """

    name = "sounddevice"
    #: The per-play state class; tests substitute a subclass to provoke underruns.
    feed_class: type[_Feed] = _Feed

    def __init__(
        self,
        device: str | int | None = None,
        *,
        latency: float | str = LATENCY_S,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ):
        sd = _sounddevice()
        if sd is None:
            raise AudioError("Máy này không có thư viện âm thanh PortAudio (libportaudio2)")
        self._sd = sd
        self.latency = latency
        self.stall_timeout_s = stall_timeout_s
        self.device = device  # as configured: resolved again each time PortAudio reads its list
        with portaudio():
            info = self._resolve(device)
        self._index = info["index"]
        self._description = f"sounddevice: {_label(info)}"
        # Opening mono is tried first; some hardware devices only take stereo (remembered once found).
        self._channels = 1

    def _resolve(self, device: str | int | None) -> dict[str, Any]:
        """The output device ``device`` names, matched the way sounddevice does (all words of the name)."""
        sd = self._sd
        try:
            infos = _output_infos(sd)
            default = sd.default.device[1]
        except sd.PortAudioError as exc:
            raise AudioError("Không đọc được danh sách thiết bị âm thanh", detail=str(exc)) from None
        if device is None:
            matches = [i for i in infos if i["index"] == default] or infos[:1]
        elif isinstance(device, int):
            matches = [i for i in infos if i["index"] == device]
        else:
            query = device.lower()
            matches = [i for i in infos if i["name"].lower() == query] or [
                i
                for i in infos
                if all(w in f"{i['name']}, {i['hostapi_name']}".lower() for w in query.split())
            ]
        if len(matches) == 1:
            return matches[0]
        what = "mặc định" if device is None else repr(device)
        if matches:
            problem = f"Tên thiết bị âm thanh {what} khớp với nhiều thiết bị: {_device_list_text(matches)}"
        else:
            problem = f"Không tìm thấy thiết bị phát âm thanh {what}"
        raise AudioError(
            f"{problem}. Các thiết bị phát hiện có: {_device_list_text(infos)}",
            detail=f"{len(matches)} output devices match {device!r}",
            devices=[f"{i['index']}: {_label(i)}" for i in infos],
        )

    def _safe_infos(self) -> list[dict[str, Any]]:
        try:
            return _output_infos(self._sd)
        except self._sd.PortAudioError:
            return []

    def describe(self) -> str:
        return self._description

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        fresh = not self._sd._initialized
        with portaudio():
            if fresh:  # PortAudio has just read the devices again: the index may have changed
                self._index = self._resolve(self.device)["index"]
            yield

    def _open(self, feed: _Feed, rate: int, dtype: str) -> Any:
        sd = self._sd
        last: Exception | None = None
        for attempt in range(2):
            for channels in dict.fromkeys((self._channels, 2)):
                try:
                    stream = sd.RawOutputStream(
                        samplerate=rate,
                        channels=channels,
                        dtype=dtype,
                        device=self._index,
                        latency=self.latency,
                        callback=feed.callback,
                        finished_callback=feed.on_finished,
                    )
                except (sd.PortAudioError, ValueError) as exc:
                    last = exc
                    continue
                if channels != self._channels:
                    logger.info("%s takes %d channels, not %d", self._description, channels, self._channels)
                    self._channels = channels
                return stream
            if attempt == 0:
                # PortAudio reads the device list once per initialisation: look again, once.
                logger.warning("opening %s failed (%s); re-reading the device list", self._description, last)
                try:
                    refresh_devices()
                    self._index = self._resolve(self.device)["index"]
                except AudioError as exc:
                    last = exc
                    break
        raise AudioError(
            f"Không mở được thiết bị âm thanh ({self._description}). Các thiết bị phát hiện có: "
            f"{_device_list_text(self._safe_infos())}",
            detail=str(last),
        )

    def play(
        self,
        samples: Samples,
        rate: int,
        *,
        stop: threading.Event | None = None,
        on_start: OnStart | None = None,
    ) -> PlayResult:
        pcm = _as_mono(samples)
        _check_rate(rate)
        if len(pcm) == 0 or (stop is not None and stop.is_set()):
            now = _utc(time.time())
            return PlayResult(now, now, 0, 0, stop is not None and stop.is_set(), self._description)
        with self.session():
            return self._play(pcm, rate, stop, on_start)

    def _play(
        self, pcm: _Pcm, rate: int, stop: threading.Event | None, on_start: OnStart | None
    ) -> PlayResult:
        sd = self._sd
        latency_s = self.latency if isinstance(self.latency, int | float) else LATENCY_S
        feed = self.feed_class(
            pcm,
            rate,
            stop,
            pad=int((latency_s + PAD_S) * rate),
            fallback_delay_s=latency_s,
            callback_stop=sd.CallbackStop,
            abort=sd.CallbackAbort,
        )
        stream = self._open(feed, rate, pcm.dtype)
        feed.fallback_delay_s = float(stream.latency)  # what PortAudio actually granted
        announced = False
        stop_seen: float | None = None
        try:
            try:
                feed.last_progress = time.monotonic()
                stream.start()
            except sd.PortAudioError as exc:
                raise AudioError(
                    f"Thiết bị âm thanh không chịu phát ({self._description})", detail=str(exc)
                ) from None
            while not feed.finished.wait(_POLL_S):
                if not announced and feed.started.is_set():
                    announced = True
                    if on_start is not None:
                        on_start(_utc(feed.first_at))
                if feed.end_at is not None and time.time() >= feed.end_at + END_MARGIN_S:
                    # The last real frame has been played; what is left in the buffers is the pad.
                    stream.abort(ignore_errors=True)
                    break
                now = time.monotonic()
                if stop is not None and stop.is_set():
                    # The callback normally aborts within one block; a silent device is aborted from here.
                    stop_seen = stop_seen or now
                    if now - stop_seen > STOP_GRACE_S:
                        feed.stopped = feed.end_at is None or time.time() < feed.end_at
                        stream.abort(ignore_errors=True)
                        break
                if now - feed.last_progress > self.stall_timeout_s:
                    stream.abort(ignore_errors=True)
                    raise AudioError(
                        f"Thiết bị âm thanh bị treo: không nhận dữ liệu trong {self.stall_timeout_s:g} giây "
                        f"({self._description})",
                        detail=f"no callback for {now - feed.last_progress:.1f} s after {feed.frames} frames",
                    )
        finally:
            stream.close(ignore_errors=True)
        if feed.first_at is not None and not announced and on_start is not None:
            on_start(_utc(feed.first_at))
        if feed.error is not None:
            raise AudioError("Lỗi khi phát âm thanh", detail=repr(feed.error)) from feed.error
        if not (feed.completed or feed.stopped):
            # PortAudio finished the stream itself: the device failed under us (ALSA error, dead server).
            raise AudioError(
                f"Phát âm thanh bị ngắt giữa chừng ({self._description})",
                detail=f"stream finished after {feed.frames} of {feed.total} frames",
            )
        # Played to the end: the device clock's account; stopped or cut: when the stream ended.
        ended = (
            feed.end_at if feed.end_at is not None and not feed.stopped else feed.finished_at or time.time()
        )
        if feed.underruns:
            logger.warning("%d output underrun(s) on %s", feed.underruns, self._description)
        return PlayResult(
            started_at=_utc(feed.first_at if feed.first_at is not None else ended),
            ended_at=_utc(ended),
            frames=feed.frames,
            underruns=feed.underruns,
            stopped=feed.stopped,
            device=self._description,
        )


# -- no device -------------------------------------------------------------------------------------------


class NullPlayer(Player):
    """Discards the audio but takes its real duration (stoppable), for machines with no output device."""

    name = "null"

    def describe(self) -> str:
        return NULL_DESCRIPTION

    def play(
        self,
        samples: Samples,
        rate: int,
        *,
        stop: threading.Event | None = None,
        on_start: OnStart | None = None,
    ) -> PlayResult:
        total = len(_as_mono(samples))
        _check_rate(rate)
        stop = stop or threading.Event()
        started = time.time()
        if total == 0 or stop.is_set():
            return PlayResult(_utc(started), _utc(started), 0, 0, stop.is_set(), NULL_DESCRIPTION)
        t0 = time.monotonic()
        if on_start is not None:
            on_start(_utc(started))
        deadline = t0 + total / rate
        # Waiting on the monotonic deadline (not a sum of sleeps) keeps the pace exact over 3 minutes.
        while (left := deadline - time.monotonic()) > 0:
            if stop.wait(left):
                break
        elapsed = time.monotonic() - t0
        stopped = stop.is_set() and elapsed < total / rate
        frames = min(total, int(elapsed * rate)) if stopped else total
        return PlayResult(_utc(started), _utc(started + elapsed), frames, 0, stopped, NULL_DESCRIPTION)


# -- choosing ----------------------------------------------------------------------------------------------


def open_player(settings: AudioSettings) -> Player:
    """The player for ``settings.device``: PortAudio when there is an output, else a NullPlayer.

    A device named in the settings must exist (AudioError listing the ones that do): a technician who
    wrote it expects sound there, and silently discarding the bulletins would hide the mistake.
    """
    sd = _sounddevice()
    if sd is None:
        if settings.device is not None:
            raise AudioError(
                f"Không phát được ra thiết bị {settings.device!r}: máy này thiếu thư viện PortAudio "
                "(libportaudio2)"
            )
        logger.warning("PortAudio is not installed: %s", NULL_DESCRIPTION)
        return NullPlayer()
    if settings.device is not None:
        return SoundDevicePlayer(settings.device)
    try:
        with portaudio():
            infos = _output_infos(sd)
            if not infos:
                logger.warning(
                    "no audio output device found: %s (nothing reaches the amplifier)", NULL_DESCRIPTION
                )
                return NullPlayer()
            default = sd.default.device[1]
            if isinstance(default, int) and any(i["index"] == default for i in infos):
                return SoundDevicePlayer(None)
            # Outputs exist but PortAudio names none as default: the first is better than silence.
            logger.warning("no default audio output; using %s", _label(infos[0]))
            return SoundDevicePlayer(infos[0]["index"])
    except (sd.PortAudioError, AudioError) as exc:
        logger.warning("cannot list audio devices (%s): %s", exc, NULL_DESCRIPTION)
        return NullPlayer()
