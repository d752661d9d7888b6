"""`make fleet-demo`: a province centre, a real Mosquitto and ten stations, all as processes, on one machine.

The centre is ``playout centre serve DIR --broker`` (its HTTP side on one port, its Mosquitto on another);
each station is ``playout run`` with its own folder, API port, mock GPIO (GPIOZERO_PIN_FACTORY=mock) and no
sound card (the daemon's NullPlayer discards the audio in real time), rendering with espeak-ng. The demo
publishes an ordinary, a priority and an emergency bulletin through the centre's desk API, opens an air
window at every station a few seconds ahead, waits, prints a JSON summary and stops everything.

``Fleet`` is the harness; tests/fleet/test_fleet.py runs the same one.

    with Fleet(Path(tmp), n=10) as fleet:
        fleet.start()                                   # centre + broker, then the stations, all ready
        target, t0 = fleet.publish("khan_cap", fleet.ids, "Bão số 3")
        fleet.wait(lambda: all(fleet.emergency_row(s, "Bão số 3") for s in fleet.ids), 30, "the relays")
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # playout and tests, whatever the current directory

from tests.station import AUTH, DaemonRun, clock, free_port, now, write_script  # noqa: E402

APPROVER = "tinh"
RELAY_ON = re.compile(r"relay ON at (\S+)")
SETTLED = ("played", "failed", "interrupted", "missed", "skipped")
REQUEST_LINE = re.compile(rb"^((?:GET|POST|HEAD|DELETE) \S+)", re.M)


def playout_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "playout"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "playout"]


def ts(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def wait(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def http_json(url: str, *, method: str = "GET", body: Any = None, headers: dict | None = None,
              timeout: float = 10.0) -> Any:  # fmt: skip
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})})  # fmt: skip
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - 127.0.0.1 only
        return json.loads(answer.read())


def figures(values: Iterable[float]) -> dict[str, float] | None:
    values = sorted(values)
    if not values:
        return None
    return {"n": len(values), "min": round(values[0], 2), "median": round(statistics.median(values), 2),
            "max": round(values[-1], 2)}  # fmt: skip


class TcpProxy:
    """A TCP proxy in its own asyncio loop, counting what passes (bytes each way, requests by path).

    ``lossy``: it delays each connection and each chunk, drops some connections at once and cuts others
    after the first chunk of the answer (a flaky 4G link; these machines' kernels have no netem)."""

    def __init__(self, upstream: int, *, lossy: bool = False, drop: float = 0.25, cut: float = 0.1,
                 delay=(0.2, 0.8), chunk_delay=(0.02, 0.15)):  # fmt: skip
        self.upstream = upstream
        self.port = free_port()
        self.drop, self.cut, self.delay, self.chunk_delay = drop, cut, delay, chunk_delay
        self.lossy = lossy
        self.rng = random.Random(14)
        self.counts = {"connections": 0, "dropped": 0, "cut": 0, "bytes_down": 0, "bytes_up": 0}
        #: Request lines seen going up ("GET /tuf/metadata/timestamp.json"), in order.
        self.requests: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tcp-proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(5)
        return self

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, reader, writer, down: bool, cut: bool) -> None:
        try:
            while data := await reader.read(16384):
                if self.lossy:
                    await asyncio.sleep(self.rng.uniform(*self.chunk_delay))
                writer.write(data)
                await writer.drain()
                if not down:
                    self.counts["bytes_up"] += len(data)
                    self.requests += [m.decode() for m in REQUEST_LINE.findall(data)]
                if down:
                    self.counts["bytes_down"] += len(data)
                    if cut:
                        self.counts["cut"] += 1
                        break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort() if cut else writer.close()

    async def _handle(self, reader, writer) -> None:
        self.counts["connections"] += 1
        lossy = self.lossy
        if lossy and self.rng.random() < self.drop:
            self.counts["dropped"] += 1
            writer.transport.abort()
            return
        if lossy:
            await asyncio.sleep(self.rng.uniform(*self.delay))
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.transport.abort()
            return
        cut = lossy and self.rng.random() < self.cut
        await asyncio.gather(
            self._pipe(reader, up_writer, False, False), self._pipe(up_reader, writer, True, cut)
        )
        up_writer.close()
        writer.close()

    def close(self) -> None:
        async def stop():
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


class Fleet:
    """A centre (process), its Mosquitto (the centre's child) and ``n`` stations (``playout run`` each)."""

    def __init__(
        self,
        root: Path,
        n: int = 10,
        *,
        length_s: float = 12,
        refresh_s: float = 300,
        refresh: dict[str, float] | None = None,
        urls: dict[str, str] | None = None,
        cmd: list[str] | None = None,
        say: Callable[[str], None] | None = None,
    ):
        self.root = Path(root)
        self.cmd = cmd or playout_cmd()
        self.ids = [f"tram-{i:02d}" for i in range(1, n + 1)]
        self.length_s = length_s
        self.refresh_s = refresh_s
        #: Station id -> its own refresh_s (a station on a lossy link retries sooner).
        self.refresh = dict(refresh or {})
        self.http_port = free_port()
        self.mqtt_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        #: Station id -> the centre address it is given (default the centre itself; a test's proxy else).
        self.urls = {sid: (urls or {}).get(sid, self.url + "/") for sid in self.ids}
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.centre_dir = self.root / "centre"
        self.centre_proc: subprocess.Popen | None = None
        self.centre_runs = 0
        self.stations: dict[str, DaemonRun] = {}
        self.approver_token = ""

    # -- set-up ------------------------------------------------------------------------------------------

    def setup(self) -> None:
        """The centre's folder (keys, root, broker accounts), one approver, and every station's folder."""
        import yaml

        from playout.fleet.centre import Centre

        centre = Centre(self.centre_dir)
        centre.init(broker_host="127.0.0.1", broker_port=self.mqtt_port)
        self.approver_token = centre.add_approver(APPROVER)
        for sid in self.ids:
            folder = centre.add_station(sid, centre_url=self.urls[sid])
            fleet = yaml.safe_load((folder / "fleet.yaml").read_text())["fleet"]
            for key in ("root", "token_file"):
                fleet[key] = str(folder / fleet[key])
            fleet["broker"]["password_file"] = str(folder / fleet["broker"]["password_file"])
            fleet["refresh_s"] = self.refresh.get(sid, self.refresh_s)
            home = self.root / sid
            home.mkdir(parents=True, exist_ok=True)
            write_script(home / "bulletins" / "approved", "rieng.md",
                         f"Tin của phường {sid[-2:]}: bà con nhớ giữ vệ sinh đường phố.",
                         title=f"Tin riêng {sid}")  # fmt: skip
            self.stations[sid] = DaemonRun(
                home,
                self.cmd,
                {
                    "bulletin": {"length_s": self.length_s},
                    "windows": [],
                    "relay": {"pre_roll_s": 1.0, "tail_s": 0.5, "max_on_s": 120},
                    "fleet": fleet,
                },
            )
        centre.close()

    def start(self, timeout: float = 120) -> float:
        """Centre first, then every station; returns once each is ready (local bulletin rendered, linked)."""
        t0 = time.monotonic()
        self.setup()
        self.start_centre()
        for sid in self.ids:
            self.stations[sid].start()
        self.wait_ready(self.ids, timeout)
        return time.monotonic() - t0

    def start_centre(self, timeout: float = 30) -> None:
        self.centre_runs += 1
        log = (self.root / f"centre{self.centre_runs}.log").open("w")
        self.centre_proc = subprocess.Popen(
            [*self.cmd, "centre", "serve", str(self.centre_dir), "--port", str(self.http_port), "--broker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its Mosquitto in the same group: nothing outlives stop_centre
        )
        log.close()

        def up() -> bool:
            if self.centre_proc.poll() is not None:
                raise AssertionError(f"the centre exited:\n{self.centre_log()[-3000:]}")
            try:
                http_json(self.url + "/api/fleet/stations", timeout=2)
            except OSError:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.mqtt_port), 1):
                return True
            return False

        wait(up, timeout, "the centre and its broker")

    def centre_log(self) -> str:
        return (self.root / f"centre{self.centre_runs}.log").read_text(errors="replace")

    def stop_centre(self) -> None:
        proc, self.centre_proc = self.centre_proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left of the group this harness started
        proc.wait(5)

    def wait_ready(self, ids: Iterable[str], timeout: float) -> None:
        def ready(sid: str) -> bool:
            h = self.health(sid)
            return bool(h and h["library"]["ready"] >= 1 and h["fleet"] and h["fleet"]["link"]["connected"])

        pending = set(ids)

        def all_ready() -> bool:
            for sid in sorted(pending):
                if self.stations[sid].proc.poll() is not None:
                    raise AssertionError(f"{sid} exited:\n{self.stations[sid].log()[-3000:]}")
                if ready(sid):
                    pending.discard(sid)
            return not pending

        wait(all_ready, timeout, f"stations ready ({sorted(pending)})", every=0.5)

    def close(self) -> None:
        for run in self.stations.values():
            with contextlib.suppress(Exception):
                if run.proc is not None and run.proc.poll() is None:
                    run.stop(timeout=15)
            if run.proc is not None and run.proc.poll() is None:
                run.proc.kill()
        self.stop_centre()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the desk ----------------------------------------------------------------------------------------

    def publish(self, level: str, wards: list[str], title: str, *, text: str | None = None,
                minutes: float = 60, start_minutes: float = -1) -> tuple[str, float]:  # fmt: skip
        """An approver publishes through the centre's desk API; (target, wall time just before asking)."""
        at = dt.datetime.now(dt.UTC).astimezone()
        body = {
            "title": title,
            "text": text or f"Thông báo: {title}. Đề nghị bà con chú ý theo dõi.",
            "wards": wards,
            "level": level,
            "air_from": (at + dt.timedelta(minutes=start_minutes)).isoformat(),
            "air_until": (at + dt.timedelta(minutes=minutes)).isoformat(),
        }
        t0 = time.time()
        auth = {"Authorization": f"Bearer {self.approver_token}"}
        answer = http_json(
            f"{self.url}/api/centre/bulletins", method="POST", body=body, headers=auth, timeout=30
        )
        return answer["target"], t0

    def withdraw(self, target: str) -> None:
        http_json(f"{self.url}/api/centre/{target}", method="DELETE",
                  headers={"Authorization": f"Bearer {self.approver_token}"}, timeout=30)  # fmt: skip

    # -- the stations ------------------------------------------------------------------------------------

    def open_window(self, name: str, lead_s: float = 4, length_s: float = 22,
                    ids: Iterable[str] | None = None) -> dt.datetime:  # fmt: skip
        """A window starting ``lead_s`` from now at each station (schedule.yaml rewritten, then SIGHUP);
        it replaces the windows before it. Returns its start (whole seconds, as the window has it)."""
        start = (now() + dt.timedelta(seconds=lead_s)).replace(microsecond=0)
        self._set_windows(ids, lambda old: [self._window(name, start, length_s)])
        return start

    def add_window(self, name: str, start: dt.datetime, length_s: float,
                   ids: Iterable[str] | None = None) -> None:  # fmt: skip
        """One more window at ``start``, beside the ones already set."""
        self._set_windows(ids, lambda old: [*old, self._window(name, start, length_s)])

    @staticmethod
    def _window(name: str, start: dt.datetime, length_s: float) -> dict:
        return {"name": name, "start": clock(start), "end": clock(start + dt.timedelta(seconds=length_s))}

    def _set_windows(self, ids: Iterable[str] | None, change: Callable[[list], list]) -> None:
        for sid in ids or self.ids:
            run = self.stations[sid]
            run.config["windows"] = change(run.config.get("windows") or [])
            run.write_config()
            if run.proc is not None and run.proc.poll() is None:
                run.proc.send_signal(signal.SIGHUP)

    def health(self, sid: str) -> dict | None:
        try:
            port = self.stations[sid].port
            return http_json(f"http://127.0.0.1:{port}/api/health", headers=AUTH, timeout=5)
        except (OSError, ValueError):
            return None

    def rows(self, sid: str) -> list[dict]:
        return self.stations[sid].rows()

    def window_rows(self, sid: str, window: str) -> list[dict]:
        return [r for r in self.rows(sid) if r["window"] == window and r["status"] in SETTLED]

    def emergency_row(self, sid: str, title: str) -> dict | None:
        for r in self.rows(sid):
            if r["slot_key"].startswith("emergency/") and r["title"] == title and r["relay_on_at"]:
                return r
        return None

    def relay_on_lines(self, sid: str) -> list[str]:
        run = self.stations[sid]
        return [m for i in range(1, run.runs + 1) for m in RELAY_ON.findall(run.log(i))]

    def fleet_files(self, sid: str) -> list[Path]:
        return sorted((self.root / sid / "bulletins" / "approved").glob("fleet-*.md"))

    def fleet_titles(self, sid: str) -> set[str]:
        out = set()
        for path in self.fleet_files(sid):
            with contextlib.suppress(OSError):
                m = re.search(r"^title: (.*)$", path.read_text("utf-8"), re.M)
                out.add(m.group(1).strip().strip("'\"") if m else path.name)
        return out

    def alarms(self, sid: str) -> list[dict]:
        db = self.stations[sid].db
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute("SELECT * FROM alarms ORDER BY id")]
            except sqlite3.OperationalError:
                return []

    def manifest_levels(self, sid: str) -> dict[str, int]:
        """The centre's bulletins the station holds, by level (ordinary ones wait on the ward's desk)."""
        try:
            manifest = json.loads((self.root / sid / "var" / "fleet" / "manifest.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        out: dict[str, int] = {}
        for entry in manifest.values():
            key = "thuong_on_desk" if entry.get("submitted") else entry.get("level", "?")
            out[key] = out.get(key, 0) + 1
        return out

    def centre_rows(self) -> list[dict]:
        path = self.centre_dir / "centre.db"
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
            conn.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in conn.execute("SELECT * FROM asrun ORDER BY station, row_id")]
            except sqlite3.OperationalError:
                return []

    def centre_stations(self) -> dict[str, dict]:
        try:
            return {s["id"]: s for s in http_json(self.url + "/api/fleet/stations")["stations"]}
        except OSError:
            return {}

    def summary(self, emergency: dict | None = None) -> dict:
        at_centre: dict[str, int] = {}
        for r in self.centre_rows():
            at_centre[r["station"]] = at_centre.get(r["station"], 0) + 1
        view = self.centre_stations()
        out: dict[str, Any] = {"stations": {}}
        for sid in self.ids:
            rows = self.rows(sid)
            status = (view.get(sid) or {}).get("status") or {}
            out["stations"][sid] = {
                "online": bool(status.get("online")),
                "relay_switchings": len(self.relay_on_lines(sid)),
                "plays": sum(1 for r in rows if r["status"] == "played"),
                "rows": len([r for r in rows if r["status"] in SETTLED]),
                "rows_at_centre": at_centre.get(sid, 0),
                "centre_bulletins": self.manifest_levels(sid),
                "titles": sorted({r["title"] for r in rows if r["status"] == "played"}),
            }
        if emergency is not None:
            out["emergency"] = emergency
        return out


def emergency_latency(fleet: Fleet, title: str, t0: float, ids: list[str], timeout: float = 30) -> dict:
    """Publish → each station's relay_on_at for the emergency ``title``, in seconds."""
    wait(lambda: all(fleet.emergency_row(s, title) for s in ids), timeout, f"{title!r} on every relay")
    latency = {s: ts(fleet.emergency_row(s, title)["relay_on_at"]) - t0 for s in ids}
    return {"per_station_s": {s: round(v, 2) for s, v in latency.items()}, **figures(latency.values())}


def demo(n: int = 10) -> dict:
    with tempfile.TemporaryDirectory(prefix="fleet-demo-") as tmp, Fleet(Path(tmp), n=n) as fleet:
        took = fleet.start()
        fleet.say(f"fleet-demo: centre, Mosquitto and {n} stations up in {took:.1f} s")
        half = fleet.ids[: n // 2]
        fleet.publish("thuong", fleet.ids, "Tuyên truyền phòng cháy")  # to each ward's desk
        fleet.publish("uu_tien", half, "Lịch tiêm chủng")  # first in the next window, first half only
        wait(lambda: all(fleet.fleet_files(s) for s in half), 30, "the priority bulletin")
        time.sleep(4)  # its render
        fleet.open_window("demo", lead_s=3, length_s=20)
        wait(lambda: all(fleet.window_rows(s, "demo") for s in fleet.ids), 60, "the window's plays")
        fleet.say("fleet-demo: window aired; publishing an emergency")
        _, t0 = fleet.publish("khan_cap", fleet.ids, "Bão số 3 đổ bộ", minutes=1)
        emergency = emergency_latency(fleet, "Bão số 3 đổ bộ", t0, fleet.ids)
        wait(lambda: all(fleet.rows(s)[-1]["status"] in SETTLED for s in fleet.ids), 40, "plays to end")

        def uploaded() -> bool:
            s = fleet.summary()["stations"]
            return all(v["rows"] == v["rows_at_centre"] for v in s.values())

        wait(uploaded, 60, "the as-run rows at the centre")
        return fleet.summary(emergency)


def main() -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    print(json.dumps(demo(int(os.environ.get("FLEET_STATIONS", "10"))), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
