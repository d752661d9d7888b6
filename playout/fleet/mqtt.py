"""The fleet's status and doorbell channel: Mosquitto at the province centre, paho-mqtt on both ends.

**Nothing received over MQTT can make a station air.**  A doorbell says only "the centre has published
new TUF metadata, come and look"; its payload (level, metadata version) is advisory and never trusted.
The station's ``on_doorbell`` callback may do one thing with it: start a TUF refresh, which downloads and
verifies signed metadata over HTTP(S) and decides from *that* what airs.  A forged "emergency" ring, a
replayed one or a compromised broker can at worst make stations refresh early.  This module imports
nothing that keys the relay or plays audio, and a test checks that it stays so.

Topics (``<id>`` is a station id, which is also its MQTT username)::

    playout/station/<id>/status                the station's retained status (JSON), and its last will
    playout/centre/doorbell                    a ring for every station (retained, QoS 1)
    playout/centre/station/<id>/doorbell       a ring for one station (retained, QoS 1)

The broker's ACL (written by ``Broker``) lets a station write only under ``playout/station/<id>/`` (its
own username) and read ``playout/centre/#``; the centre reads everything and writes only
``playout/centre/#``.  ``use_username_as_clientid`` ties a connection's client id to its account, so one
station cannot knock another off the broker (which would publish the victim's will).  Stations see each
other's per-station rings: they carry no secret.

Why rings are retained (emergencies too): a ring only asks for a refresh, and the refresh is harmless
when there is nothing new.  The retained copy gives a station that was offline, or that (re)connects
later, the same prompt the moment it subscribes (``Doorbell.retained`` says it is such a replay).
Lateness is not the doorbell's business: whether an emergency may still air is decided by its signed
air dates in TUF, so a late retained ring cannot make an expired emergency air.  Rings carry an MQTT 5
message expiry (a day by default) so the broker forgets them eventually.

Delivery: statuses and rings are QoS 1.  A station's status is retained and rate-limited (changes within
``min_interval_s`` are merged into one message; a heartbeat republishes it every ``heartbeat_s``); its
last will is a retained ``{"online": false}`` on the same topic, so the centre learns of a dead station
as soon as the broker notices (at once for a closed socket, 1.5 keep-alives for a silent link), and a
centre that starts later still finds every station's last word.

The station side never blocks and never raises into the station: ``StationLink.start`` returns at once,
the paho thread reconnects by itself with a doubling back-off, ``publish_status`` only records the status
when the broker is away (the newest one is sent on reconnection, never a backlog), and ``state`` says how
the link is (an English ``last_error`` for the log, a stable ``code`` and a Vietnamese ``message`` for
the technician's page).  The station keeps airing from its verified cache whatever this link does.

Refusals the centre's desk shows (Vietnamese message, stable code), in the tree of ``playout.errors``::

    PlayoutError
    ├── BrokerFailed       500  FLEET_BROKER_FAILED       mosquitto could not be set up or started
    └── BrokerUnavailable  503  FLEET_BROKER_UNAVAILABLE  a ring could not be handed to the broker

Example (a centre and one station on this machine)::

    broker = Broker(Path("var/fleet/broker"), port=1883)
    centre_password = broker.add_centre()
    station_password = broker.add_station("dong-hai")
    with broker:
        centre = CentreLink("127.0.0.1", 1883, centre_password, on_change=print)
        station = StationLink("dong-hai", "127.0.0.1", 1883, station_password, on_doorbell=refresh_tuf)
        centre.start(); station.start()
        station.publish_status({"relay": False, "clock": "synced"})
        centre.ring("emergency", 42)    # dong-hai's refresh_tuf(Doorbell(level="emergency", ...))
        station.close(); centre.close()
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from playout import __version__
from playout.atomic import atomic_write_text
from playout.errors import PlayoutError

logger = logging.getLogger(__name__)

#: The levels a ring may claim: the same names as ``playout.intake.PRIORITIES`` (TT39's thông thường,
#: ưu tiên, khẩn cấp).  A claim is only a hint for the refresh; the signed metadata says the real level.
LEVELS = ("normal", "priority", "emergency")

STATUS_TOPIC = "playout/station/{station}/status"
DOORBELL_TOPIC = "playout/centre/doorbell"
STATION_DOORBELL_TOPIC = "playout/centre/station/{station}/doorbell"
#: What the centre subscribes to: every station's status (and will).
STATUS_FILTER = "playout/station/+/status"

#: The last will: the broker publishes it (retained) when a station vanishes without saying goodbye.
WILL_PAYLOAD = {"online": False}

#: A station id is its MQTT username and a topic level: no wildcards, no slashes, nothing to escape.
STATION_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")

#: A status larger than this is cut down to its plain fields (the broker drops a client whose packet is
#: over ``Broker.MAX_PACKET_BYTES``, and a station must not lose its link over a long title).
MAX_STATUS_BYTES = 8 * 1024
#: A doorbell payload larger than this is not parsed (the ring still asks for a refresh).
MAX_DOORBELL_BYTES = 4 * 1024
#: How long the broker keeps a retained ring (MQTT 5 message expiry).
RING_EXPIRY_S = 24 * 3600

#: The fields a status carries (``publish_status`` may add others); ``online`` and ``time`` are the link's.
#: The broker's log is rotated (one old copy kept) once it passes this.
MAX_LOG_BYTES = 20 * 1024 * 1024
STATUS_FIELDS = ("online", "relay", "now_playing", "last_play", "clock", "disk_free_bytes", "version", "time")


class BrokerFailed(PlayoutError):
    """mosquitto could not be configured or started (missing binary, port taken, bad certificate)."""

    code = "FLEET_BROKER_FAILED"
    http_status = 500


class BrokerUnavailable(PlayoutError):
    """The centre's link to its broker is down, or the broker did not accept a ring."""

    code = "FLEET_BROKER_UNAVAILABLE"
    http_status = 503


def _now_iso() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def check_station_id(station_id: str) -> str:
    """``station_id`` if it can be a username and a topic level, else ValueError."""
    if not isinstance(station_id, str) or not STATION_ID.match(station_id):
        raise ValueError(f"invalid station id {station_id!r}: lower-case letters, digits, '-', '_' (max 63)")
    return station_id


# --------------------------------------------------------------------------------------------- broker


@dataclasses.dataclass(frozen=True)
class BrokerTLS:
    """The centre listener's certificate and key (PEM files the broker's user can read)."""

    certfile: Path
    keyfile: Path
    #: Only needed when stations authenticate with client certificates.
    cafile: Path | None = None


class Broker:
    """A Mosquitto broker for a centre: its configuration, accounts and ACL in one private folder.

    ``directory`` (made 0700) holds ``mosquitto.conf``, ``passwd`` (hashed by ``mosquitto_passwd``),
    ``acl`` and ``mosquitto.log``, each 0600: only the user who runs the centre reads them, and mosquitto
    runs as that same user.  Mosquitto writes its pid to ``mosquitto.pid`` there, so another process
    (``playout centre station`` in a second shell while ``playout centre serve --broker`` runs) can make
    the running broker reread the accounts it changed.  Passwords are hashed with ``mosquitto_passwd -U``
    on a private temporary file, so a password never appears on a command line (``-b`` would show it to
    every local user in ``ps``).  ``start`` runs ``mosquitto -c`` as a child process and waits until it
    listens; ``stop`` ends it; adding or removing an account while it runs reloads it (SIGHUP), whichever
    process started it.

        broker = Broker(Path("/var/lib/playout-centre/broker"), host="0.0.0.0", port=8883,
                        tls=BrokerTLS(Path("centre.crt"), Path("centre.key")))
        broker.add_centre()                       # -> the centre's generated password
        broker.add_station("dong-hai")            # -> the station's generated password
        with broker: ...
    """

    #: The largest MQTT packet the broker accepts; a client sending more is disconnected.
    MAX_PACKET_BYTES = 64 * 1024

    def __init__(
        self,
        directory: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        centre_user: str = "centre",
        persistence: bool = False,
        tls: BrokerTLS | None = None,
        mosquitto: str | None = None,
        mosquitto_passwd: str | None = None,
    ):
        self.directory = Path(directory).resolve()
        self.host = host
        self.port = int(port)
        self.centre_user = check_station_id(centre_user)
        self.persistence = persistence
        self.tls = tls
        self._mosquitto = mosquitto or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self._mosquitto_passwd = (
            mosquitto_passwd or shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        )
        self._proc: subprocess.Popen | None = None
        self._log: Any = None
        self._lock = threading.Lock()

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def password_path(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl_path(self) -> Path:
        return self.directory / "acl"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def pid_path(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    def running_pid(self) -> int | None:
        """The pid of the broker running this folder's configuration: the one this object started, or
        one another process started (found through ``mosquitto.pid`` and checked); None if neither."""
        if self.running:
            return self.pid
        pid = self._pid_from_file()
        return pid if pid is not None and self._is_our_broker(pid) else None

    def _pid_from_file(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            return None
        return pid if pid > 1 and pid != os.getpid() else None

    def _is_our_broker(self, pid: int) -> bool:
        """Whether ``pid`` is a mosquitto run with this folder's config.  A pid file outlives a broker
        that was killed, and its pid may since belong to anything: only that check makes it safe to
        signal."""
        proc = Path("/proc") / str(pid)
        try:
            exe = os.readlink(proc / "exe").removesuffix(" (deleted)")  # (deleted): upgraded under it
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or another user's process
            return False
        if os.path.basename(exe) != "mosquitto" and exe != os.path.realpath(self._mosquitto):
            return False
        config = os.fsencode(self.config_path)
        return any(argv[i] == b"-c" and argv[i + 1] == config for i in range(len(argv) - 1))

    def _signal_from_pid_file(self, signum: int) -> int | None:
        """Send ``signum`` to the broker in the pid file if it is ours; returns its pid if sent."""
        pid = self._pid_from_file()
        if pid is None:
            return None
        try:
            # Held by a pidfd from before the check, the process checked is the one signalled even if
            # it exits and its pid is reused in between.
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        except (AttributeError, OSError):
            pidfd = None  # no pidfd (old kernel): the check and the kill are a moment apart
        try:
            if not self._is_our_broker(pid):
                logger.warning("%s names pid %d, which is not this broker: not signalled", self.pid_path, pid)
                return None
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            return None
        finally:
            if pidfd is not None:
                os.close(pidfd)
        return pid

    # ---- files

    def _prepare_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if not self.password_path.exists():
            atomic_write_text(self.password_path, "")

    def acl_text(self) -> str:
        """The ACL, one block per account in the password file: an account it does not name has no rights."""
        lines = ["# Written by playout.fleet.mqtt.Broker from the password file: edits are overwritten."]
        for user in self._users_unlocked():
            if user == self.centre_user:
                lines += [
                    "",
                    "# The centre reads everything and writes only the centre's topics.",
                    f"user {user}",
                ]
                lines += ["topic read #", "topic write playout/centre/#"]
            else:
                lines += [
                    "",
                    f"# Station {user}: writes only its own topics, reads the centre's.",
                    f"user {user}",
                ]
                lines += [f"topic write playout/station/{user}/#", "topic read playout/centre/#"]
        return "\n".join(lines) + "\n"

    def config_text(self) -> str:
        # mosquitto started as root would switch to the `mosquitto` user, which cannot read these 0600
        # files: it keeps the user that owns them (run the centre as an unprivileged user).
        run_as = pwd.getpwuid(os.geteuid()).pw_name
        lines = [
            "# Written by playout.fleet.mqtt.Broker: edits are overwritten.",
            f"user {run_as}",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.password_path}",
            f"acl_file {self.acl_path}",
            # So that another process (`playout centre station` in a second shell) finds it to reload it.
            f"pid_file {self.pid_path}",
            f"max_packet_size {self.MAX_PACKET_BYTES}",
            # Rings are tiny and latency-bound: don't let Nagle hold them back.
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if self.persistence:
            data = self.directory / "data"
            data.mkdir(mode=0o700, exist_ok=True)
            lines += ["persistence true", f"persistence_location {data}/"]
        else:
            lines.append("persistence false")
        # Listener options only after the `listener` line: placed before it, mosquitto 2.0 applies them to
        # an implicit default listener on port 1883 (on every interface) instead.
        lines.append(f"listener {self.port} {self.host}")
        # A client's id is its username: nobody can take over (and kill) another station's session.
        lines.append("use_username_as_clientid true")
        if self.tls is not None:
            lines += [
                f"certfile {Path(self.tls.certfile).resolve()}",
                f"keyfile {Path(self.tls.keyfile).resolve()}",
            ]
            if self.tls.cafile is not None:
                lines.append(f"cafile {Path(self.tls.cafile).resolve()}")
        return "\n".join(lines) + "\n"

    def write_config(self) -> Path:
        """Write ``mosquitto.conf`` and ``acl`` (0600, in the 0700 folder); returns the config's path."""
        with self._lock:
            self._prepare_directory()
            atomic_write_text(self.acl_path, self.acl_text())
            atomic_write_text(self.config_path, self.config_text())
        return self.config_path

    # ---- accounts

    def add_centre(self, password: str | None = None) -> str:
        """Set the centre's account; returns its password (a new random one unless given)."""
        return self._set_password(self.centre_user, password)

    def add_station(self, station_id: str, password: str | None = None) -> str:
        """Add (or re-key) a station's account; returns its password (a new random one unless given)."""
        check_station_id(station_id)
        if station_id == self.centre_user:
            raise ValueError(f"station id {station_id!r} is the centre's account")
        return self._set_password(station_id, password)

    def remove_station(self, station_id: str) -> None:
        """Revoke a station's account; a running broker drops its connection when it reloads."""
        check_station_id(station_id)
        with self._lock:
            lines = self._password_lines()
            kept = [line for line in lines if line.split(":", 1)[0] != station_id]
            self._write_accounts(kept)
        self.reload()

    def users(self) -> list[str]:
        """The accounts in the password file (the centre's and the stations')."""
        with self._lock:
            return self._users_unlocked()

    def _users_unlocked(self) -> list[str]:
        return [line.split(":", 1)[0] for line in self._password_lines()]

    def _password_lines(self) -> list[str]:
        try:
            text = self.password_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [line for line in text.splitlines() if line.strip()]

    def _write_accounts(self, lines: list[str]) -> None:
        atomic_write_text(self.password_path, "".join(line + "\n" for line in lines))
        atomic_write_text(self.acl_path, self.acl_text())

    def _set_password(self, user: str, password: str | None) -> str:
        if password is None:
            password = secrets.token_urlsafe(24)
        if not password or any(c in password for c in "\r\n\0"):
            raise ValueError("a broker password must be one non-empty line")
        with self._lock:
            self._prepare_directory()
            hashed = self._hash(user, password)
            lines = [line for line in self._password_lines() if line.split(":", 1)[0] != user]
            lines.append(hashed)
            self._write_accounts(lines)
        self.reload()
        return password

    def _hash(self, user: str, password: str) -> str:
        """``user:<hash>`` from mosquitto_passwd, the password passed in a 0600 file, never in argv."""
        fd, tmp = tempfile.mkstemp(prefix=".passwd-", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(f"{user}:{password}\n")
            try:
                done = subprocess.run(
                    [self._mosquitto_passwd, "-U", tmp], capture_output=True, text=True, timeout=30
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise BrokerFailed(
                    "Không tạo được mật khẩu cho máy chủ MQTT: thiếu công cụ mosquitto_passwd.",
                    detail=f"{self._mosquitto_passwd}: {exc}",
                ) from exc
            hashed = Path(tmp).read_text(encoding="utf-8").strip()
            if done.returncode != 0 or not hashed.startswith(f"{user}:$"):
                raise BrokerFailed(
                    "Không tạo được mật khẩu cho máy chủ MQTT.",
                    detail=f"mosquitto_passwd -U exited {done.returncode}: {done.stderr.strip()[:300]}",
                )
            return hashed
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # ---- process

    def start(self, timeout: float = 10.0) -> None:
        """Write the configuration and run ``mosquitto -c``; returns once it listens (else BrokerFailed)."""
        if self.running:
            return
        other = self.running_pid()
        if other is not None:
            raise BrokerFailed(
                f"Máy chủ MQTT của trung tâm đang chạy trong một tiến trình khác (pid {other}).",
                detail=f"mosquitto {other} runs {self.config_path}",
            )
        self.write_config()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        start_offset = os.fstat(fd).st_size
        self._log = os.fdopen(fd, "ab", buffering=0)
        try:
            self._proc = subprocess.Popen(
                [self._mosquitto, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            self._close_log()
            raise BrokerFailed(
                "Không khởi động được máy chủ MQTT (mosquitto): chưa cài đặt?",
                detail=f"{self._mosquitto}: {exc}",
            ) from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                tail = self.log_tail(start_offset)
                self._proc = None
                self._close_log()
                raise BrokerFailed(
                    "Máy chủ MQTT (mosquitto) dừng ngay khi khởi động: xem nhật ký của nó.",
                    detail=f"mosquitto exited: {tail}",
                )
            if " running" in self.log_tail(start_offset, limit=None) and self._port_open():
                logger.info("mosquitto %s listening on %s:%d", self._proc.pid, self.host, self.port)
                return
            time.sleep(0.02)
        tail = self.log_tail(start_offset)
        self.stop()
        raise BrokerFailed(
            "Máy chủ MQTT (mosquitto) không mở cổng kịp thời.",
            detail=f"not listening after {timeout}s: {tail}",
        )

    def _port_open(self) -> bool:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else "::1" if self.host == "::" else self.host
        try:
            with socket.create_connection((host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def rotate_log(self, max_bytes: int = MAX_LOG_BYTES) -> bool:
        """Keep the broker's log bounded: past ``max_bytes`` it is copied to ``mosquitto.log.1`` (the one
        before that dropped) and emptied in place.  Mosquitto keeps writing to the same descriptor, which
        is O_APPEND, so its next line lands at the start; a connect/disconnect line from each of a hundred
        stations on flaky 4G would otherwise grow it for as long as the centre runs."""
        try:
            if self.log_path.stat().st_size <= max_bytes:
                return False
            old = self.log_path.with_name(self.log_path.name + ".1")
            shutil.copyfile(self.log_path, old)
            os.chmod(old, 0o600)
            os.truncate(self.log_path, 0)
        except OSError as exc:
            logger.warning("broker log not rotated: %s", exc)
            return False
        logger.info("broker log rotated (over %d bytes): previous lines in %s", max_bytes, old.name)
        return True

    def log_tail(self, offset: int = 0, limit: int | None = 2000) -> str:
        """The broker's log from ``offset`` (its last ``limit`` characters)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return text if limit is None else text[-limit:]

    def reload(self, timeout: float = 2.0) -> bool:
        """Make the running broker reread its password file and ACL (SIGHUP), whether this object started
        it or another process did (found through its pid file); waits until it has.  Returns whether a
        broker was signalled (False: none runs, and the accounts count from its next start)."""
        try:
            offset = self.log_path.stat().st_size
        except OSError:
            offset = 0
        if self.running:
            assert self._proc is not None
            self._proc.send_signal(signal.SIGHUP)
        elif self._signal_from_pid_file(signal.SIGHUP) is None:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "Reloading config" not in self.log_tail(offset, None):
            time.sleep(0.01)
        # The reload runs in the broker's main loop just after it logs the line: give it a moment.
        time.sleep(0.05)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """End the broker (SIGTERM, then SIGKILL after ``timeout``)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            logger.info("mosquitto %s stopped", proc.pid)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------- links


@dataclasses.dataclass(frozen=True)
class LinkTLS:
    """TLS to the broker: ``ca_file`` None trusts the system's CAs; a client certificate is optional."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclasses.dataclass(frozen=True)
class LinkState:
    """How a link to the broker is, for the log (``last_error``) and for people (``code``, ``message``)."""

    connected: bool
    #: English, for the log: the last refusal or network failure (kept after reconnecting).
    last_error: str | None
    #: None while connected; FLEET_LINK_CONNECTING, FLEET_LINK_DOWN, FLEET_LINK_REFUSED or FLEET_LINK_TLS.
    code: str | None
    message: str | None
    #: Wall-clock time of the current connection's start (None when down).
    connected_since: float | None
    #: Successful connections so far (2 or more: it has reconnected).
    connections: int


_MESSAGES = {
    "FLEET_LINK_CONNECTING": "Đang kết nối tới trung tâm.",
    "FLEET_LINK_DOWN": "Mất kết nối tới trung tâm; đài vẫn phát theo lịch và tự kết nối lại.",
    "FLEET_LINK_REFUSED": "Trung tâm từ chối đăng nhập: kiểm tra tên và mật khẩu MQTT trong mục fleet.",
    "FLEET_LINK_TLS": "Kết nối bảo mật (TLS) tới trung tâm không thiết lập được: kiểm tra chứng chỉ.",
}


class _Link:
    """One paho client (MQTT 5, callback API 2) in its own thread, reconnecting with a doubling back-off.

    Every callback is wrapped: an exception in our code is logged, never allowed to end paho's thread.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str,
        tls: LinkTLS | None,
        keepalive: int,
        reconnect_min_s: float,
        reconnect_max_s: float,
    ):
        self.host = host
        self.port = int(port)
        self.username = username
        self._tls = tls
        self._keepalive = int(keepalive)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)  # type: ignore[arg-type]
        self._client.suppress_exceptions = True
        self._client.on_connect = self._guard(self._on_connect_cb)
        self._client.on_connect_fail = self._guard(self._on_connect_fail_cb)
        self._client.on_disconnect = self._guard(self._on_disconnect_cb)
        self._client.on_message = self._guard(self._on_message)
        self._state_lock = threading.Lock()
        self._connected = False
        self._last_error: str | None = None
        self._code: str | None = "FLEET_LINK_CONNECTING"
        self._connected_since: float | None = None
        self._connections = 0
        self._started = False
        self._closed = False

    @property
    def state(self) -> LinkState:
        with self._state_lock:
            code = None if self._connected else self._code
            return LinkState(
                connected=self._connected,
                last_error=self._last_error,
                code=code,
                message=_MESSAGES.get(code) if code else None,
                connected_since=self._connected_since,
                connections=self._connections,
            )

    def _guard(self, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:
                logger.exception("MQTT link to %s:%d: %s failed", self.host, self.port, callback.__name__)

        return guarded

    def start(self) -> None:
        """Start connecting in the background; returns at once and never raises for the network."""
        if self._started or self._closed:
            return
        self._started = True
        try:
            if self._tls is not None:
                self._client.tls_set(
                    ca_certs=str(self._tls.ca_file) if self._tls.ca_file else None,
                    certfile=str(self._tls.cert_file) if self._tls.cert_file else None,
                    keyfile=str(self._tls.key_file) if self._tls.key_file else None,
                )
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._set_error("FLEET_LINK_TLS", f"TLS settings unusable: {exc}")
            logger.error(
                "MQTT link to %s:%d not started: TLS settings unusable: %s", self.host, self.port, exc
            )
            return
        self._client.connect_async(self.host, self.port, keepalive=self._keepalive, clean_start=True)
        self._client.loop_start()

    def _set_error(self, code: str, error: str) -> None:
        with self._state_lock:
            self._code = code
            self._last_error = error

    def _on_connect_cb(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._set_error("FLEET_LINK_REFUSED", f"broker refused the connection: {reason_code}")
            logger.warning(
                "MQTT broker %s:%d refused %s: %s", self.host, self.port, self.username, reason_code
            )
            return
        with self._state_lock:
            self._connected = True
            self._connected_since = time.time()
            self._connections += 1
        logger.info("MQTT link to %s:%d up as %s", self.host, self.port, self.username)
        self._on_connect()

    def _on_connect_fail_cb(self, client, userdata) -> None:
        # paho calls this inside its `except OSError`: the exception is still the one being handled.
        exc = sys.exc_info()[1]
        code = "FLEET_LINK_TLS" if isinstance(exc, ssl.SSLError) else "FLEET_LINK_DOWN"
        self._set_error(code, f"cannot reach {self.host}:{self.port}: {exc or 'connection failed'}")
        logger.debug("MQTT link to %s:%d: connection failed: %s", self.host, self.port, exc)

    def _on_disconnect_cb(self, client, userdata, flags, reason_code, properties) -> None:
        with self._state_lock:
            was = self._connected
            self._connected = False
            self._connected_since = None
            if was:
                self._code = "FLEET_LINK_DOWN"
                self._last_error = f"disconnected: {reason_code}"
        if was and not self._closed:
            logger.warning("MQTT link to %s:%d lost: %s", self.host, self.port, reason_code)
        self._on_disconnect()

    def _on_connect(self) -> None: ...

    def _on_disconnect(self) -> None: ...

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None: ...

    def _stop_client(self) -> None:
        if not self._started:
            return
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()


# ---------------------------------------------------------------------------------------------- station


@dataclasses.dataclass(frozen=True)
class Doorbell:
    """A ring as a station received it.  Everything but ``topic``, ``retained`` and ``received_at`` is
    what the sender *claims*: advisory, unverified, only a reason to refresh TUF metadata now."""

    topic: str
    #: One of LEVELS if the payload claimed one, else None.
    level: str | None
    #: The metadata version the payload claims the centre has published (an int >= 0), else None.
    version: int | None
    #: The station a per-station ring was addressed to (from the topic), None for a ring to all.
    station: str | None
    #: True when the broker replayed a stored ring on (re)subscription rather than relaying a new one.
    retained: bool
    ring_id: str | None
    sent: str | None
    received_at: float
    payload: Mapping[str, Any]


class StationLink(_Link):
    """A station's link to its centre: retained status and last will out, doorbells in.

    ``on_doorbell(Doorbell)`` runs in the link's own worker thread, one call at a time, so a slow TUF
    refresh never stalls the MQTT connection; rings that arrive meanwhile are merged into one pending
    call (the newest).  It should only start a refresh: see the module's first paragraph.

        link = StationLink("dong-hai", "centre.example", 8883, password, on_doorbell=tuf.request_refresh,
                           tls=LinkTLS(), disk_path=Path("/var/lib/playout"))
        link.start()                                   # never blocks, never raises for the network
        link.publish_status({"relay": True, "now_playing": {"title": "…"}})
        link.state                                     # LinkState(connected=…, last_error=…, …)
        link.close()                                   # publishes {"online": false, "reason": "stopped"}
    """

    def __init__(
        self,
        station_id: str,
        host: str,
        port: int,
        password: str,
        *,
        on_doorbell: Callable[[Doorbell], None],
        tls: LinkTLS | None = None,
        version: str = __version__,
        disk_path: Path | str | None = None,
        min_interval_s: float = 2.0,
        heartbeat_s: float = 60.0,
        keepalive: int = 30,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 60.0,
    ):
        self.station_id = check_station_id(station_id)
        super().__init__(
            host=host,
            port=port,
            username=station_id,
            password=password,
            client_id=f"station-{station_id}",
            tls=tls,
            keepalive=keepalive,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
        )
        self.status_topic = STATUS_TOPIC.format(station=station_id)
        self.doorbell_topics = (DOORBELL_TOPIC, STATION_DOORBELL_TOPIC.format(station=station_id))
        self._on_doorbell = on_doorbell
        self._disk_path = Path(disk_path) if disk_path is not None else None
        self._min_interval_s = float(min_interval_s)
        self._heartbeat_s = float(heartbeat_s)
        self._client.will_set(self.status_topic, json.dumps(WILL_PAYLOAD), qos=1, retain=True)
        self._client.max_queued_messages_set(50)

        # Status: the newest snapshot, sent by one thread (so messages never overtake each other).
        self._cond = threading.Condition()
        self._status: dict[str, Any] = {
            "online": True,
            "relay": None,
            "now_playing": None,
            "last_play": None,
            "clock": None,
            "disk_free_bytes": None,
            "version": version,
        }
        self._dirty = False
        self._republish = False
        self._follow_up = False
        self._last_sent = float("-inf")
        self._last_info: mqtt.MQTTMessageInfo | None = None
        self._status_thread = threading.Thread(
            target=self._status_loop, name=f"mqtt-status-{station_id}", daemon=True
        )

        # Doorbells: at most one pending call, handed to one worker thread.
        self._ring_cond = threading.Condition()
        self._pending_ring: Doorbell | None = None
        self._ring_thread = threading.Thread(
            target=self._ring_loop, name=f"mqtt-doorbell-{station_id}", daemon=True
        )

    # ---- public

    def start(self) -> None:
        if self._started or self._closed:
            return
        self._status_thread.start()
        self._ring_thread.start()
        super().start()

    @property
    def status(self) -> dict[str, Any]:
        """The status as it will next be sent (without ``time``)."""
        with self._cond:
            return dict(self._status)

    def publish_status(self, fields: Mapping[str, Any]) -> None:
        """Merge ``fields`` into the status and send it (at most one message per ``min_interval_s``).

        Returns at once, whether or not the broker is reachable: while it is not, only the newest status
        is kept, and sent on reconnection.  ``online`` and ``time`` belong to the link and are ignored.
        """
        with self._cond:
            for key, value in fields.items():
                if key in ("online", "time"):
                    continue
                self._status[str(key)] = value
            self._dirty = True
            self._cond.notify_all()

    def close(self, timeout: float = 2.0) -> None:
        """Say goodbye (a retained ``{"online": false, "reason": "stopped"}``), disconnect, stop threads."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._cond.notify_all()
        with self._ring_cond:
            self._ring_cond.notify_all()
        if self._status_thread.is_alive():
            self._status_thread.join(timeout)
        if self._started and self._client.is_connected():
            goodbye = {"online": False, "reason": "stopped", "time": _now_iso()}
            try:
                self._client.publish(
                    self.status_topic, json.dumps(goodbye), qos=1, retain=True
                ).wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                logger.debug("goodbye status not confirmed: %s", exc)
        self._stop_client()
        if self._ring_thread.is_alive():
            self._ring_thread.join(timeout)

    def __enter__(self) -> StationLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- MQTT callbacks (paho's thread)

    def _on_connect(self) -> None:
        for topic in self.doorbell_topics:
            self._client.subscribe(topic, qos=1)
        with self._cond:
            self._republish = True
            # A status the broker never acknowledged is resent by paho after this callback, and may land
            # after the fresh one: send the fresh one again a little later so it is the one retained.
            last = self._last_info
            self._follow_up = last is not None and not last.is_published()
            self._cond.notify_all()

    def _on_disconnect(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if message.topic not in self.doorbell_topics:
            logger.debug("ignoring a message on %r", message.topic)
            return
        ring = self._parse_ring(message)
        logger.info(
            "doorbell%s on %s: claims level=%r version=%r",
            " (retained)" if ring.retained else "",
            ring.topic,
            ring.level,
            ring.version,
        )
        with self._ring_cond:
            self._pending_ring = ring
            self._ring_cond.notify_all()

    def _parse_ring(self, message: mqtt.MQTTMessage) -> Doorbell:
        payload: dict[str, Any] = {}
        if len(message.payload) <= MAX_DOORBELL_BYTES:
            try:
                parsed = json.loads(message.payload.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                parsed = None
            if isinstance(parsed, dict):
                payload = parsed
        level = payload.get("level")
        version = payload.get("version")
        ring_id = payload.get("id")
        sent = payload.get("sent")
        return Doorbell(
            topic=message.topic,
            level=level if level in LEVELS else None,
            version=version if type(version) is int and version >= 0 else None,
            station=self.station_id if message.topic != DOORBELL_TOPIC else None,
            retained=bool(message.retain),
            ring_id=ring_id[:64] if isinstance(ring_id, str) else None,
            sent=sent[:64] if isinstance(sent, str) else None,
            received_at=time.time(),
            payload=payload,
        )

    # ---- threads

    def _ring_loop(self) -> None:
        while True:
            with self._ring_cond:
                while self._pending_ring is None and not self._closed:
                    self._ring_cond.wait()
                if self._closed:
                    return
                ring, self._pending_ring = self._pending_ring, None
            try:
                self._on_doorbell(ring)
            except Exception:
                logger.exception("on_doorbell failed for a ring on %s", ring.topic)

    def _status_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if not self._connected:  # (paho's own flag lags behind its disconnect callback)
                        self._cond.wait()
                        continue
                    if self._republish:
                        due = now
                    elif self._dirty:
                        due = self._last_sent + self._min_interval_s
                    else:
                        due = self._last_sent + self._heartbeat_s
                    if due <= now:
                        break
                    self._cond.wait(due - now)
                self._dirty = self._follow_up if self._republish else False
                self._republish = self._follow_up = False
                self._last_sent = now
                snapshot = dict(self._status)
            try:
                self._send_status(snapshot)
            except Exception:  # a status that cannot be encoded must not end the heartbeat
                logger.exception("status not sent")

    def _send_status(self, status: dict[str, Any]) -> None:
        status["online"] = True
        status["time"] = _now_iso()
        if self._disk_path is not None:
            with contextlib.suppress(OSError):
                status["disk_free_bytes"] = shutil.disk_usage(self._disk_path).free
        payload = json.dumps(status, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        if len(payload) > MAX_STATUS_BYTES:
            logger.warning("status of %d bytes cut down to its plain fields", len(payload))
            small = {
                k: v if v is None or isinstance(v, bool | int | float) else str(v)[:200]
                for k, v in status.items()
                if k in STATUS_FIELDS
            }
            payload = json.dumps(small, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            info = self._client.publish(self.status_topic, payload, qos=1, retain=True)
        except ValueError as exc:
            logger.error("status not sent: %s", exc)
            return
        with self._cond:
            self._last_info = info
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            logger.debug("status queued, not sent: %s", mqtt.error_string(info.rc))


# ----------------------------------------------------------------------------------------------- centre


@dataclasses.dataclass(frozen=True)
class StationStatus:
    """The centre's view of one station: its last status (or will) message as received."""

    station: str
    #: The last payload, exactly as published (a will is just ``{"online": false}``).
    status: Mapping[str, Any]
    #: Wall-clock time the centre received it.
    received_at: float
    #: True if the broker replayed it (retained) when the centre subscribed, not relayed it live.
    retained: bool
    #: The last payload that said ``online: true`` (what the station last reported about itself).
    last_online: Mapping[str, Any] | None

    @property
    def online(self) -> bool:
        return self.status.get("online") is True


#: Said with every ring refusal: the desk's operator must know the stations are not left waiting.
_STATIONS_POLL = "Các đài vẫn tự kiểm tra nội dung mới theo định kỳ."


class CentreLink(_Link):
    """The centre's link: every station's status and will in ``stations``, and the doorbell.

    ``on_change(station_id, StationStatus | None)`` runs in paho's thread for every status received
    (None when a station's retained status was cleared); keep it short.

        centre = CentreLink("127.0.0.1", 1883, password, on_change=fleet_page.update)
        centre.start()
        centre.ring("emergency", 42)                   # every station refreshes its TUF metadata
        centre.ring("normal", 43, station="dong-hai")  # one station does
        centre.stations["dong-hai"].online
    """

    def __init__(
        self,
        host: str,
        port: int,
        password: str,
        *,
        username: str = "centre",
        on_change: Callable[[str, StationStatus | None], None] | None = None,
        tls: LinkTLS | None = None,
        keepalive: int = 30,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
    ):
        super().__init__(
            host=host,
            port=port,
            username=username,
            password=password,
            client_id=username,
            tls=tls,
            keepalive=keepalive,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
        )
        self._on_change = on_change
        self._stations: dict[str, StationStatus] = {}
        self._cond = threading.Condition()
        self._refused: dict[int, str] = {}
        self._client.on_publish = self._guard(self._on_publish_cb)

    @property
    def stations(self) -> dict[str, StationStatus]:
        """A copy of every station's last status, by station id."""
        with self._cond:
            return dict(self._stations)

    def wait_for(self, predicate: Callable[[dict[str, StationStatus]], bool], timeout: float) -> bool:
        """Wait until ``predicate(stations)`` holds (checked at each status received); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(dict(self._stations)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def ring(
        self,
        level: str,
        version: int,
        station: str | None = None,
        *,
        expiry_s: int = RING_EXPIRY_S,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Ring every station (or one): "metadata ``version`` is published, refresh".  Retained, QoS 1.

        Returns the payload sent once the broker has acknowledged it; raises BrokerUnavailable when the
        link is down or the broker refused or did not acknowledge it in ``timeout`` s.
        """
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        if type(version) is not int or version < 0:
            raise ValueError(f"version must be an int >= 0, not {version!r}")
        topic = (
            DOORBELL_TOPIC
            if station is None
            else STATION_DOORBELL_TOPIC.format(station=check_station_id(station))
        )
        payload = {
            "level": level,
            "version": version,
            "station": station,
            "id": uuid.uuid4().hex,
            "sent": _now_iso(),
        }
        what = f"ring {level} v{version} to {station or 'all'}"
        if not self.state.connected:
            raise BrokerUnavailable(
                f"Chưa gửi được chuông báo: mất kết nối tới máy chủ MQTT. {_STATIONS_POLL}",
                detail=f"{what}: link to {self.host}:{self.port} down",
            )
        properties = Properties(PacketTypes.PUBLISH)
        properties.MessageExpiryInterval = int(expiry_s)
        info = self._client.publish(topic, json.dumps(payload), qos=1, retain=True, properties=properties)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError) as exc:
            raise BrokerUnavailable(
                f"Chưa gửi được chuông báo tới máy chủ MQTT. {_STATIONS_POLL}", detail=f"{what}: {exc}"
            ) from exc
        with self._cond:
            refused = self._refused.pop(info.mid, None)
        if not info.is_published() or refused:
            # Unacknowledged, it stays in paho's queue and may still go out: harmless, a ring is a hint.
            raise BrokerUnavailable(
                f"Máy chủ MQTT chưa nhận chuông báo. {_STATIONS_POLL}",
                detail=f"{what}: {refused or f'no PUBACK in {timeout}s'}",
            )
        logger.info("rang %s v%d to %s", level, version, station or "every station")
        return payload

    def close(self) -> None:
        """Disconnect and stop the link's thread."""
        if self._closed:
            return
        self._closed = True
        self._stop_client()

    def __enter__(self) -> CentreLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- MQTT callbacks (paho's thread)

    def _on_connect(self) -> None:
        self._client.subscribe(STATUS_FILTER, qos=1)

    def _on_publish_cb(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            with self._cond:
                if len(self._refused) > 100:
                    self._refused.clear()
                self._refused[mid] = str(reason_code)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        if len(parts) != 4 or parts[:2] != ["playout", "station"] or parts[3] != "status":
            return
        station = parts[2]
        if not STATION_ID.match(station):
            logger.warning("status on a malformed topic %r ignored", message.topic)
            return
        if not message.payload:  # a retained status was cleared
            with self._cond:
                self._stations.pop(station, None)
                self._cond.notify_all()
            self._notify(station, None)
            return
        try:
            status = (
                json.loads(message.payload.decode("utf-8"))
                if len(message.payload) <= MAX_STATUS_BYTES
                else None
            )
        except (UnicodeDecodeError, ValueError):
            status = None
        if not isinstance(status, dict):
            logger.warning("unreadable status from %s (%d bytes) ignored", station, len(message.payload))
            return
        with self._cond:
            previous = self._stations.get(station)
            last_online = (
                status if status.get("online") is True else previous.last_online if previous else None
            )
            record = StationStatus(
                station=station,
                status=status,
                received_at=time.time(),
                retained=bool(message.retain),
                last_online=last_online,
            )
            self._stations[station] = record
            self._cond.notify_all()
        if previous is None or previous.online != record.online:
            logger.info("station %s %s", station, "online" if record.online else "offline")
        self._notify(station, record)

    def _notify(self, station: str, record: StationStatus | None) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(station, record)
        except Exception:
            logger.exception("on_change failed for station %s", station)
