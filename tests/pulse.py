"""A private PulseAudio server with a null sink "air": the loudspeaker the tests can listen to.

Used by the audio-out tests in this process and by the daemon's end-to-end tests, which run
``playout run`` as a subprocess with ``env=sink.env``::

    with PulseSink() as sink:
        recording = sink.record(tmp_path / "air.wav")
        subprocess.run([...], env=sink.env)        # or, in this process: with sink.route_this_process(): ...
        recording.stop()                            # the WAV is complete and valid from here on

How the audio gets there: ``libasound2-plugins`` gives ALSA a "pulse" device (and turns "default" into
PulseAudio when a server answers), PortAudio lists both, and libpulse finds *this* server through
``PULSE_SERVER``.  Both are read when PortAudio is initialised (``import sounddevice``): a subprocess
simply gets ``env``; this process needs :meth:`PulseSink.route_this_process`, which sets ``os.environ``
and re-initialises PortAudio (changing the environment alone is not seen).

Facts this relies on (PulseAudio 16.1, Debian 12, as root):

* As root PulseAudio runs per-user with a warning (``-n`` skips default.pa, so nothing but what we load
  runs; ``--exit-idle-time=-1`` keeps it up between plays).  Its runtime, state and config live in a
  fresh temporary folder, so it cannot meet a session's server or another test's.
* A null sink is clocked by a timer that, with nobody asking for low latency, fires in 2-second blocks:
  a stream then starts up to 2 s late, the monitor misses it and pacing is off by as much.  A real
  sound card never stops its clock, so neither does this one: a "keepalive" stream of silence asks for
  20 ms, and one suspend/resume of the sink makes it adopt that at once (otherwise it only does so when
  the pending 2 s block ends).  Mixing silence in leaves every sample unchanged.
* The sink defaults to the station's format (24 kHz mono s16le): with no resampling or mixing the
  monitor returns exactly the samples that were played.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

SINK = "air"
START_TIMEOUT_S = 10.0


class PulseError(RuntimeError):
    """The test sound server could not be started or driven (a broken setup, not a station bug)."""


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise PulseError(f"{binary} is not installed: run `make setup` (pulseaudio, pulseaudio-utils)")
    return path


class Recording:
    """``parecord`` on the sink's monitor, writing a WAV; :meth:`stop` finalises the file."""

    def __init__(self, proc: subprocess.Popen, path: Path, log: Path):
        self.proc = proc
        self.path = path
        self._log = log

    def stop(self, timeout: float = 5.0, settle_s: float = 0.1) -> Path:
        """End the recorder the way Ctrl-C does, so libsndfile writes the WAV header's final sizes.

        ``settle_s`` first lets the last fragment still in transit from the server reach the file.
        """
        if self.proc.poll() is None:
            time.sleep(settle_s)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        return self.path

    @property
    def log(self) -> str:
        return self._log.read_text("utf-8", "replace") if self._log.exists() else ""

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PulseSink:
    """A private PulseAudio daemon with a null sink "air" whose monitor records what was played."""

    def __init__(self, *, rate: int = 24000, channels: int = 1, latency_msec: int = 20):
        self.rate = rate
        self.channels = channels
        self.latency_msec = latency_msec
        self.root: Path | None = None
        self.env: dict[str, str] = {}
        self._proc: subprocess.Popen | None = None
        self._daemon_env: dict[str, str] = {}
        self._recordings: list[Recording] = []
        self._keepalive: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def __enter__(self) -> PulseSink:
        pulseaudio = _require("pulseaudio")
        _require("pactl")
        self.root = Path(tempfile.mkdtemp(prefix="pulse-sink-"))
        try:
            self._start(pulseaudio)
        except BaseException:
            self._cleanup()
            raise
        return self

    def _start(self, pulseaudio: str) -> None:
        assert self.root is not None
        runtime = self.root / "runtime"
        for sub in ("runtime", "runtime/pulse", "state", "config"):
            (self.root / sub).mkdir(mode=0o700)
        socket = runtime / "pulse" / "native"
        (self.root / "client.conf").write_text("autospawn = no\n", "utf-8")
        private = {
            "XDG_RUNTIME_DIR": str(runtime),
            "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        self._daemon_env = {
            **base,
            **private,
            "PULSE_STATE_PATH": str(self.root / "state"),
            "XDG_CONFIG_HOME": str(self.root / "config"),  # the daemon's cookie and daemon.conf stay here
        }
        self.env = {
            **private,
            "PULSE_SERVER": f"unix:{socket}",
            "PULSE_SINK": SINK,
            "PULSE_SOURCE": f"{SINK}.monitor",
            # Anonymous auth makes the cookie irrelevant; pointing at our folder keeps ~ untouched.
            "PULSE_COOKIE": str(self.root / "cookie"),
            "PULSE_CLIENTCONFIG": str(self.root / "client.conf"),
        }
        log = (self.root / "pulseaudio.log").open("wb")
        with log:
            self._proc = subprocess.Popen(
                [
                    pulseaudio,
                    "--daemonize=no",  # our child, so we hold its pid and can always end it
                    "--exit-idle-time=-1",
                    "--realtime=no",
                    "--high-priority=no",
                    "-n",
                    "--log-target=stderr",
                    f"--load=module-null-sink sink_name={SINK} rate={self.rate} channels={self.channels} "
                    "format=s16le norewinds=1 sink_properties=device.description=air",
                    f"--load=module-native-protocol-unix auth-anonymous=1 socket={socket}",
                ],
                env=self._daemon_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for pytest reaches us first, then we end it
            )
        self._wait_for_server()
        self._start_keepalive()

    def _wait_for_server(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._proc.poll() is not None:
                raise PulseError(f"pulseaudio exited ({self._proc.returncode}):\n{self.log}")
            info = self._pactl("info", check=False)
            if info.returncode == 0 and f"Default Sink: {SINK}" in info.stdout:
                break
            if info.returncode == 0:
                self._pactl("set-default-sink", SINK)
                continue
            if time.monotonic() > deadline:
                raise PulseError(f"pulseaudio did not answer in {START_TIMEOUT_S:g} s:\n{self.log}")
            time.sleep(0.05)

    def _start_keepalive(self) -> None:
        assert self.root is not None
        before = self._streams("sink-inputs")
        self._keepalive = subprocess.Popen(
            [
                _require("pacat"),
                "--playback",
                "--raw",
                f"--rate={self.rate}",
                f"--channels={self.channels}",
                "--format=s16le",
                f"--latency-msec={self.latency_msec}",
                "--client-name=keepalive",
                "/dev/zero",
            ],
            env={**self._daemon_env, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_for_stream("sink-inputs", before, self._keepalive, "pacat (keepalive)")
        # The sink's timer is still in the 2 s block it armed at start; a suspend/resume re-arms it
        # with the 20 ms the keepalive asks for.
        self._pactl("suspend-sink", SINK, "1")
        self._pactl("suspend-sink", SINK, "0")

    def _streams(self, kind: str) -> int:
        return len(self._pactl("list", "short", kind).stdout.splitlines())

    def _wait_for_stream(self, kind: str, before: int, proc: subprocess.Popen, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._streams(kind) <= before:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise PulseError(f"{what} did not connect to the sound server")
            time.sleep(0.02)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        for rec in self._recordings:
            with contextlib.suppress(Exception):
                rec.stop()
        keepalive, self._keepalive = self._keepalive, None
        if keepalive is not None and keepalive.poll() is None:
            keepalive.terminate()
            try:
                keepalive.wait(3)
            except subprocess.TimeoutExpired:
                keepalive.kill()
                keepalive.wait()
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                self._pactl("exit", check=False, timeout=3)
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- using it ----------------------------------------------------------------------------------------

    @property
    def log(self) -> str:
        """pulseaudio's own log, for failure messages."""
        path = self.root / "pulseaudio.log" if self.root else None
        return path.read_text("utf-8", "replace") if path and path.exists() else ""

    def _pactl(self, *args: str, check: bool = True, timeout: float = 5) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["pactl", *args],
            env={**self._daemon_env, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def pactl(self, *args: str) -> str:
        """Run ``pactl`` against this server and return its output."""
        return self._pactl(*args).stdout

    def record(self, path: Path) -> Recording:
        """Start recording the sink's monitor into ``path`` (WAV, 24 kHz mono s16le).

        Returns once the recorder is connected, so nothing played afterwards is missed.
        """
        _require("parecord")
        assert self.root is not None, "PulseSink is not running"
        before = self._streams("source-outputs")
        log = self.root / f"parecord-{len(self._recordings)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    "parecord",
                    f"--device={SINK}.monitor",
                    "--file-format=wav",
                    "--rate=24000",
                    "--channels=1",
                    "--format=s16le",
                    # Small fragments, so stopping right after a play loses nothing still in transit.
                    f"--latency-msec={self.latency_msec}",
                    str(path),
                ],
                env={**self._daemon_env, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        rec = Recording(proc, Path(path), log)
        self._recordings.append(rec)
        try:
            self._wait_for_stream("source-outputs", before, proc, "parecord")
        except PulseError:
            rec.stop()
            raise PulseError(f"parecord did not start:\n{rec.log}") from None
        return rec

    @contextlib.contextmanager
    def route_this_process(self) -> Iterator[None]:
        """Let this process's PortAudio play into the sink, and undo it afterwards.

        libpulse reads ``PULSE_SERVER`` and ALSA evaluates its "pulse" hooks when PortAudio initialises,
        so the environment is set and PortAudio re-initialised (no stream may be open meanwhile).
        """
        from playout.audio_out import refresh_devices

        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            refresh_devices()
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            refresh_devices()
