"""Test support: the station daemon as a subprocess, as systemd would run it.

with DaemonRun(tmp_path, playout_cmd, config) as run:
    run.wait_for(lambda rows: any(r["status"] == "played" for r in rows), timeout=60)
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from playout.auth import hash_token

TZ = dt.timezone(dt.timedelta(hours=7))
TOKEN = "test-token-for-the-daemon-api-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}  # Asia/Ho_Chi_Minh has no DST: a fixed offset is exact


def now() -> dt.datetime:
    return dt.datetime.now(TZ)


def clock(t: dt.datetime) -> str:
    return t.astimezone(TZ).strftime("%H:%M:%S")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def faketime_library() -> str:
    found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    if not found:
        raise RuntimeError("libfaketime is not installed: run `make setup` (package faketime)")
    return found[0]


def write_script(folder: Path, name: str, text: str, **meta) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    front = "".join(f"{k}: {v}\n" for k, v in meta.items())
    path = folder / name
    path.write_text((f"---\n{front}---\n" if front else "") + text, "utf-8")
    return path


class DaemonRun:
    def __init__(self, root: Path, playout_cmd: list[str], config: dict, env: dict | None = None):
        self.root = root
        self.cmd = playout_cmd
        self.port = free_port()
        base = {
            "bulletin": {"length_s": 11, "lead_in": "{title}", "outro": "Hết tin."},
            "relay": {"pre_roll_s": 1.0, "tail_s": 0.5, "max_on_s": 60},
            "tts": {"engines": ["espeak"]},
            "api": {"host": "127.0.0.1", "port": self.port},
            "daemon": {"rescan_s": 1},
            "auth": {"tokens": [{"name": "tests", "token_hash": hash_token(TOKEN), "roles": ["admin"]}]},
            "paths": {"data": str(root / "var"), "bulletins": str(root / "bulletins")},
        }
        for key, value in config.items():
            base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
        self.config = base
        self.config_path = root / "schedule.yaml"
        self.env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def write_config(self, text: str | None = None) -> None:
        self.config_path.write_text(
            text if text is not None else yaml.safe_dump(self.config, allow_unicode=True)
        )

    @property
    def db(self) -> Path:
        return self.root / "var" / "playout.db"

    @property
    def log_path(self) -> Path:
        return self.root / f"daemon{self.runs}.log"

    def start(self) -> DaemonRun:
        if not self.config_path.exists():
            self.write_config()
        self.runs += 1
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [*self.cmd, "run", "--config", str(self.config_path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            text=True,
        )
        return self

    def log(self, run: int | None = None) -> str:
        return (self.root / f"daemon{run or self.runs}.log").read_text()

    def rows(self) -> list[dict]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db, timeout=5) as db:
            db.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in db.execute("SELECT * FROM plays ORDER BY id")]
            except sqlite3.OperationalError:
                return []

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float, what: str = "") -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows()
            if predicate(rows):
                return rows
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited ({self.proc.returncode}) waiting for {what}:\n{self.log()}"
                )
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; rows={self.rows()}\n{self.log()[-4000:]}")

    def wait_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not in the daemon log:\n{self.log()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def __enter__(self) -> DaemonRun:
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
            if self.proc.poll() is None:
                self.proc.kill()


def start_station(config, ready: int = 1, timeout: float = 30.0, renderer=None):
    """An in-process Station (mock relay pins, audio discarded in real time), started, with ``ready``
    bulletins rendered; the caller closes it.  ``renderer``: a double such as
    ``tests.doubles.InstantRendering`` (default: the real render worker)."""
    from playout.audio_out import NullPlayer
    from playout.daemon import Station

    station = Station(config, player=NullPlayer(), serve_api=False, renderer=renderer)
    station.start()
    deadline = time.monotonic() + timeout
    while len(station.library.ready()) < ready and time.monotonic() < deadline:
        time.sleep(0.1)
    if len(station.library.ready()) < ready:
        station.close()
        raise AssertionError(f"bulletins not rendered in {timeout:.0f} s: {station.library.bulletins()}")
    return station
