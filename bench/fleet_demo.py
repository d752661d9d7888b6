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

For tests of a weak link (tests/fleet/test_fleet_link.py) the harness also has ``Netns``: a station run
inside a network namespace whose only way out is a veth pair shaped by ``tbf`` at each end (these kernels
have no netem; tbf works), with the centre and its broker bound to the host end (``Fleet(host=...)``); and
a simulated day (``Fleet(day_s=...)``): the centre and the stations run through this file's ``--day-s``
launcher, so the centre's signatures expire and are renewed on a day of ``day_s`` seconds and a station
calls itself stale after such a day without the centre.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime as dt
import http.client
import json
import os
import random
import re
import secrets
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
import urllib.parse
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


#: The harness's own requests never go through a proxy from the environment (its addresses are local).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(url: str, *, method: str = "GET", body: Any = None, headers: dict | None = None,
              timeout: float = 10.0, netns: Netns | None = None) -> Any:  # fmt: skip
    """A JSON request; ``netns``: made from inside that network namespace (a station's 127.0.0.1 there)."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
    if netns is not None:
        return netns.http_json(url, method=method, data=data, headers=headers, timeout=timeout)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with _DIRECT.open(request, timeout=timeout) as answer:  # local addresses only
        return json.loads(answer.read())


def not_near_midnight(margin_s: float = 330) -> None:
    """Windows here are today's: a run that would cross midnight waits for the new day."""
    t = dt.datetime.now().astimezone()
    left = (dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), t.tzinfo) - t).total_seconds()
    if left < margin_s:
        time.sleep(left + 2)


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
                 delay=(0.2, 0.8), chunk_delay=(0.02, 0.15), record: bool = False):  # fmt: skip
        self.upstream = upstream
        self.port = free_port()
        self.drop, self.cut, self.delay, self.chunk_delay = drop, cut, delay, chunk_delay
        self.lossy = lossy
        self.rng = random.Random(14)
        self.counts = {"connections": 0, "dropped": 0, "cut": 0, "bytes_down": 0, "bytes_up": 0}
        #: Request lines seen going up ("GET /tuf/metadata/timestamp.json"), in order.
        self.requests: list[str] = []
        #: With ``record``: every byte sent up (what someone on the link would see), for tests.
        self.sent_up: bytearray | None = bytearray() if record else None
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
                    if self.sent_up is not None:
                        self.sent_up += data
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
            # Connections still piping are cancelled and closed while the loop runs: left pending, they
            # would be collected later and try to close their sockets on a closed loop.
            pipes = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class NetnsNotPermitted(RuntimeError):
    """``ip netns add`` refused: not root (or no CAP_SYS_ADMIN/CAP_NET_ADMIN)."""


#: setns(2)'s flag for a network namespace.
CLONE_NEWNET = 0x40000000


class Netns:
    """A network namespace joined to the host by a veth pair, each end's egress shaped by ``tbf``.

    A station run inside it (``wrap(cmd)``) reaches the centre only through the pair: what goes down to it
    leaves the host end (``host_if``, address ``host_ip``: bind the centre and its broker there), what
    comes up leaves the namespace's end (``ns_if``, ``ns_ip``); both are limited to ``rate_kbit`` (a weak
    2G/3G link). ``down()`` takes the host end down, as a lost signal does: established connections hang
    (packets vanish), new ones fail once ARP gives up (~3 s); ``up()`` brings it back. The names are random
    per run (a crashed earlier run may have left its own); ``close()`` deletes the namespace and the pair.
    Needs root; ``create()`` raises NetnsNotPermitted when the kernel refuses."""

    def __init__(self, rate_kbit: int = 64, *, burst: str = "4kb", latency: str = "400ms"):
        tag = secrets.token_hex(4)
        self.name = f"playout-{tag}"
        self.host_if, self.ns_if = f"plh{tag}", f"pln{tag}"  # interface names: 15 characters at most
        self.rate_kbit, self.burst, self.latency = rate_kbit, burst, latency
        self.host_ip = self.ns_ip = ""
        self.created = False

    @staticmethod
    def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=15)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.returncode}")
        return done

    def _free_subnet(self) -> tuple[str, str]:
        """Two addresses of a /30 in 10.200-254.x.x that no interface or route of this machine uses."""
        used = self._run("ip", "-4", "-o", "addr", "show").stdout
        used += self._run("ip", "-4", "route", "show", "table", "all").stdout
        rng = random.SystemRandom()
        for _ in range(100):
            a, b, c = rng.randrange(200, 255), rng.randrange(256), rng.randrange(0, 256, 4)
            if f"10.{a}.{b}." not in used:
                return f"10.{a}.{b}.{c + 1}", f"10.{a}.{b}.{c + 2}"
        raise RuntimeError("no free 10.x.x.x/30 for the veth pair")

    def create(self) -> Netns:
        added = self._run("ip", "netns", "add", self.name, check=False)
        if added.returncode != 0:
            err = added.stderr.strip()
            if os.geteuid() != 0 or "not permitted" in err.lower() or "permission denied" in err.lower():
                raise NetnsNotPermitted(f"ip netns add: {err or 'refused'} (needs root)")
            raise RuntimeError(f"ip netns add {self.name}: {err}")
        self.created = True
        self.host_ip, self.ns_ip = self._free_subnet()
        ns, h, n = self.name, self.host_if, self.ns_if
        tbf = ["tbf", "rate", f"{self.rate_kbit}kbit", "burst", self.burst, "latency", self.latency]
        for cmd in (
            ["ip", "link", "add", h, "type", "veth", "peer", "name", n, "netns", ns],
            # No IPv6 link-local addresses: nothing but the station's own traffic on the shaped link.
            ["ip", "link", "set", h, "addrgenmode", "none"],
            ["ip", "-n", ns, "link", "set", n, "addrgenmode", "none"],
            ["ip", "addr", "add", f"{self.host_ip}/30", "dev", h],
            ["ip", "-n", ns, "addr", "add", f"{self.ns_ip}/30", "dev", n],
            ["tc", "qdisc", "add", "dev", h, "root", *tbf],
            ["tc", "-n", ns, "qdisc", "add", "dev", n, "root", *tbf],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
            ["ip", "-n", ns, "link", "set", n, "up"],
            ["ip", "link", "set", h, "up"],
        ):
            self._run(*cmd)
        return self

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` run inside the namespace (``ip netns exec`` execs it: the process keeps its pid)."""
        return ["ip", "netns", "exec", self.name, *cmd]

    def down(self) -> None:
        self._run("ip", "link", "set", self.host_if, "down")

    def up(self) -> None:
        self._run("ip", "link", "set", self.host_if, "up")

    def counters(self) -> dict[str, int]:
        """Bytes and packets through the pair (``down``: to the station; ``up``: from it), and what each
        end's tbf dropped or held back."""
        stats = Path("/sys/class/net") / self.host_if / "statistics"
        out = {
            "bytes_down": int((stats / "tx_bytes").read_text()),
            "bytes_up": int((stats / "rx_bytes").read_text()),
            "packets_down": int((stats / "tx_packets").read_text()),
            "packets_up": int((stats / "rx_packets").read_text()),
        }
        for end, cmd in (
            ("down", ["tc", "-s", "-j", "qdisc", "show", "dev", self.host_if]),
            ("up", ["tc", "-n", self.name, "-s", "-j", "qdisc", "show", "dev", self.ns_if]),
        ):
            tbf = next(q for q in json.loads(self._run(*cmd).stdout) if q.get("kind") == "tbf")
            out[f"tbf_dropped_{end}"] = int(tbf.get("drops", 0))
            out[f"tbf_overlimits_{end}"] = int(tbf.get("overlimits", 0))
        return out

    def connect(self, address: tuple[str, int], timeout: float = 10.0) -> socket.socket:
        """A TCP connection made inside the namespace: a helper thread joins it (setns affects only the
        calling thread) and opens the socket, which stays in the namespace whoever uses it."""
        got: dict[str, Any] = {}

        def inside() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {self.name}")
                finally:
                    os.close(fd)
                got["sock"] = socket.create_connection(address, timeout=timeout)
            except OSError as exc:
                got["error"] = exc

        thread = threading.Thread(target=inside, name=f"in-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout + 5)
        if "sock" not in got:
            raise got.get("error") or TimeoutError(f"connecting inside {self.name}")
        return got["sock"]

    def http_json(self, url: str, *, method: str, data: bytes | None, headers: dict, timeout: float) -> Any:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        conn.sock = self.connect((parts.hostname, parts.port or 80), timeout)
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), data, headers)
            answer = conn.getresponse()
            body = answer.read()
            if answer.status >= 400:
                raise OSError(f"HTTP {answer.status} from {url}: {body[:200]!r}")
            return json.loads(body)
        finally:
            conn.close()

    def throughput(self, n_bytes: int = 32_000, timeout: float = 60) -> dict[str, float]:
        """Measured rate through the pair, each way at once: the host end sends ``n_bytes`` to a socket in
        the namespace while that socket sends as many back (kbit/s, from connect to the last byte)."""
        server = socket.create_server((self.host_ip, 0))
        server.settimeout(timeout)
        port = server.getsockname()[1]
        result: dict[str, float] = {}
        payload = os.urandom(n_bytes)

        def exchange(sock: socket.socket, t0: float) -> float:
            """Send the payload while receiving as much; kbit/s received since t0."""
            sock.settimeout(timeout)
            sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
            sender.start()
            got = 0
            while got < n_bytes and (chunk := sock.recv(65536)):
                got += len(chunk)
            rate = got * 8 / 1000 / (time.monotonic() - t0)
            sender.join(timeout)
            return rate

        def host_side() -> None:
            conn, _ = server.accept()
            with conn:
                result["up_kbit"] = exchange(conn, time.monotonic())

        helper = threading.Thread(target=host_side, daemon=True)
        helper.start()
        t0 = time.monotonic()
        with server, self.connect((self.host_ip, port), timeout) as sock:
            result["down_kbit"] = exchange(sock, t0)
            helper.join(timeout)
        return {k: round(v, 1) for k, v in sorted(result.items())}

    def close(self) -> None:
        """The namespace and the pair gone (deleting one end deletes both); safe to call twice."""
        if self.created:
            self._run("ip", "netns", "del", self.name, check=False)
            self.created = False
        if Path("/sys/class/net", self.host_if).exists():
            self._run("ip", "link", "del", self.host_if, check=False)


class Fleet:
    """A centre (process), its Mosquitto (the centre's child) and ``n`` stations (``playout run`` each).

    ``host``: the address the centre's HTTP side and its broker listen on (a ``Netns``'s ``host_ip`` when a
    station runs inside one); ``netns``: station id -> the namespace it runs in; ``day_s``: a simulated day
    of that many seconds (``scaled_playout``) for the centre and every station; ``broker_tls``: MQTT over
    TLS with the centre's own CA, as an installed centre runs it (``init --broker-tls``)."""

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
        host: str = "127.0.0.1",
        netns: dict[str, Netns] | None = None,
        day_s: float | None = None,
        broker_tls: bool = True,
    ):
        self.root = Path(root)
        self.broker_tls = broker_tls
        self.cmd = cmd or playout_cmd()
        self.ids = [f"tram-{i:02d}" for i in range(1, n + 1)]
        self.length_s = length_s
        self.refresh_s = refresh_s
        #: Station id -> its own refresh_s (a station on a lossy link retries sooner).
        self.refresh = dict(refresh or {})
        self.http_port = free_port()
        self.mqtt_port = free_port()
        self.host = host
        self.netns = dict(netns or {})
        self.day_s = day_s
        self.url = f"http://{host}:{self.http_port}"
        # The processes talk to the centre directly, whatever proxy the environment names.
        no_proxy = ",".join(x for x in (os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost", host) if x)
        self.env = {"NO_PROXY": no_proxy, "no_proxy": no_proxy}
        #: Station id -> the centre address it is given (default the centre itself; a test's proxy else).
        self.urls = {sid: (urls or {}).get(sid, self.url + "/") for sid in self.ids}
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.centre_dir = self.root / "centre"
        self.centre_proc: subprocess.Popen | None = None
        self.centre_runs = 0
        self.stations: dict[str, DaemonRun] = {}
        self.approver_token = ""
        #: A technician's token for the centre's read API (the fleet list is not public).
        self.reader_token = ""

    @property
    def run_cmd(self) -> list[str]:
        """How the centre and the stations are started: ``playout``, or the scaled-day launcher."""
        if self.day_s is None:
            return self.cmd
        return [sys.executable, str(Path(__file__).resolve()), "--day-s", str(self.day_s)]

    # -- set-up ------------------------------------------------------------------------------------------

    def setup(self) -> None:
        """The centre's folder (keys, root, broker accounts), one approver, and every station's folder."""
        import yaml

        from playout.fleet.centre import Centre

        centre = Centre(self.centre_dir)
        centre.init(broker_host=self.host, broker_port=self.mqtt_port, broker_tls=self.broker_tls)
        self.approver_token = centre.add_approver(APPROVER)
        self.reader_token = centre.add_token("fleet-harness", ["technician"])
        for sid in self.ids:
            folder = centre.add_station(sid, centre_url=self.urls[sid])
            fleet = yaml.safe_load((folder / "fleet.yaml").read_text())["fleet"]
            for key in ("root", "token_file"):
                fleet[key] = str(folder / fleet[key])
            for key in ("password_file", "ca_file"):
                if key in fleet["broker"]:
                    fleet["broker"][key] = str(folder / fleet["broker"][key])
            fleet["refresh_s"] = self.refresh.get(sid, self.refresh_s)
            home = self.root / sid
            home.mkdir(parents=True, exist_ok=True)
            write_script(home / "bulletins" / "approved", "rieng.md",
                         f"Tin của phường {sid[-2:]}: bà con nhớ giữ vệ sinh đường phố.",
                         title=f"Tin riêng {sid}")  # fmt: skip
            ns = self.netns.get(sid)
            self.stations[sid] = DaemonRun(
                home,
                ns.wrap(self.run_cmd) if ns else self.run_cmd,
                {
                    "bulletin": {"length_s": self.length_s},
                    "windows": [],
                    "relay": {"pre_roll_s": 1.0, "tail_s": 0.5, "max_on_s": 120},
                    "fleet": fleet,
                },
                env=self.env,
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
            [
                *self.run_cmd,
                "centre",
                "serve",
                str(self.centre_dir),
                "--host",
                self.host,
                "--port",
                str(self.http_port),
                "--broker",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its Mosquitto in the same group: nothing outlives stop_centre
        )
        log.close()

        def up() -> bool:
            if self.centre_proc.poll() is not None:
                raise AssertionError(f"the centre exited:\n{self.centre_log()[-3000:]}")
            try:  # public, whatever the centre's accounts: the stations' own first request
                http_json(self.url + "/tuf/metadata/timestamp.json", timeout=2)
            except (OSError, ValueError):
                return False
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.mqtt_port), 1):
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
            return self.api(sid, "/api/health", timeout=5)
        except (OSError, ValueError):
            return None

    def api(self, sid: str, path: str, *, method: str = "GET", body: Any = None, timeout: float = 10) -> Any:
        """The station's own API (as its admin), from inside its namespace if it runs in one."""
        url = f"http://127.0.0.1:{self.stations[sid].port}{path}"
        return http_json(
            url, method=method, body=body, headers=AUTH, timeout=timeout, netns=self.netns.get(sid)
        )

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

    def arrival(self, ids: list[str], title: str, t0: float, timeout: float) -> dict[str, float]:
        """Publish (at ``t0``) → the verified script in each station's approved/, in seconds."""
        got: dict[str, float] = {}

        def arrived() -> bool:
            for sid in ids:
                if sid not in got and title in self.fleet_titles(sid):
                    got[sid] = round(time.time() - t0, 2)
            return len(got) == len(ids)

        wait(arrived, timeout, f"{title!r} at {sorted(set(ids) - set(got))}", every=0.1)
        return got

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
        auth = {"Authorization": f"Bearer {self.reader_token}"} if self.reader_token else {}
        try:
            return {s["id"]: s for s in http_json(self.url + "/api/fleet/stations", headers=auth)["stations"]}
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
    not_near_midnight()
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


def scaled_playout(day_s: float, argv: list[str]) -> int:
    """``python bench/fleet_demo.py --day-s D <playout arguments>``: ``playout`` on a day of D seconds.

    The centre signs each role for as many simulated days as ``Expiry`` gives it (the timestamp for one,
    the snapshot for seven, ...) and, under ``centre serve``, renews the timestamp every quarter day (as
    the hourly timer does for a real day); a station raises its stale alarm after a day without the centre.
    centre.yaml's ``expiry_hours`` counts whole hours and schedule.yaml has no ``stale_after``, hence this
    launcher: it replaces the centre's lifetimes (``Centre.expiry``, which every repository the centre
    opens takes) and gives ``FleetClient(stale_after=)`` a simulated day by default; nothing else of
    playout changes."""
    from playout.cli import main as playout_main
    from playout.fleet import tuf_client, tuf_repo
    from playout.fleet.centre import Centre

    day = dt.timedelta(seconds=day_s)
    scaled = tuf_repo.Expiry(
        root=365 * day, targets=90 * day, snapshot=7 * day, timestamp=day, approver=90 * day
    )
    repository_init = tuf_repo.CentreRepository.__init__
    client_init = tuf_client.FleetClient.__init__

    def scaled_repository(self, *args: Any, expiry: Any = None, **kw: Any) -> None:
        repository_init(self, *args, expiry=expiry or scaled, **kw)

    def scaled_client(self, *args: Any, stale_after: Any = None, **kw: Any) -> None:
        client_init(self, *args, stale_after=stale_after or day, **kw)

    tuf_repo.CentreRepository.__init__ = scaled_repository
    tuf_client.FleetClient.__init__ = scaled_client
    Centre.expiry = lambda self: scaled  # the centre passes its own lifetimes to each repository it opens
    if argv[:2] == ["centre", "serve"] and len(argv) > 2:
        folder = argv[2]

        def renew() -> None:
            while True:
                time.sleep(day_s / 4)
                try:
                    Centre(folder).repository().refresh_timestamp()
                except Exception as exc:  # noqa: BLE001 - said; the next quarter day tries again
                    print(f"fleet_demo: renewing the timestamp failed: {exc!r}", file=sys.stderr, flush=True)

        threading.Thread(target=renew, name="scaled-timestamp", daemon=True).start()
    return playout_main(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--day-s"]:
        sys.exit(scaled_playout(float(argv[1]), argv[2:]))
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    print(json.dumps(demo(int(os.environ.get("FLEET_STATIONS", "10"))), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
