"""Issue 14: a province fleet.  `make bench BENCH=fleet`.

a. Ten stations (``playout run`` each) and a centre (``playout centre serve --broker``), all reaching the
   centre's HTTP side through one counting TCP proxy: the bytes one bulletin costs each station (TUF
   metadata and the target, HTTP included, from publish until every station verified it), then two
   emergencies to all ten, publish → relay ON at each station (min / median / max).
b. The centre with 100 simulated stations (playout.fleet.mqtt.StationLink objects in this process, each
   with its own broker account) sending a status every 2 s for 30 s: the centre process's CPU time and
   peak RSS (its Mosquitto's separately).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from pathlib import Path

from bench.common import line
from bench.fleet_demo import SETTLED, Fleet, TcpProxy, emergency_latency, http_json, wait


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kib(pid: int, key: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in text.splitlines() if x.startswith(key + ":")).split()[1])


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def bench_fleet_ten(n: int = 10) -> None:
    print(f"fleet: {n} stations and a centre as processes (issue 14)")
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, Fleet(Path(tmp), n=n) as fleet:
        proxy = TcpProxy(fleet.http_port).start()
        fleet.urls = {sid: f"http://127.0.0.1:{proxy.port}/" for sid in fleet.ids}
        try:
            took = fleet.start()
            line("centre, Mosquitto and stations ready", f"{took:.1f} s")
            time.sleep(1)
            before, requests = dict(proxy.counts), len(proxy.requests)
            text = "Thông báo: lịch tiêm chủng đợt một cho trẻ em dưới năm tuổi tại trạm y tế phường."
            _, t0 = fleet.publish("uu_tien", fleet.ids, "Lịch tiêm chủng", text=text)
            wait(lambda: all("Lịch tiêm chủng" in fleet.fleet_titles(s) for s in fleet.ids), 60, "it")
            arrived = time.time() - t0
            time.sleep(1)
            down = proxy.counts["bytes_down"] - before["bytes_down"]
            up = proxy.counts["bytes_up"] - before["bytes_up"]
            paths = proxy.requests[requests:]
            line("priority bulletin verified at every station", f"{arrived:.2f} s")
            line("bytes per bulletin per station, down", f"{down / n:.0f} B")
            line("  up (requests)", f"{up / n:.0f} B")
            line("  requests per station", f"{len(paths) / n:.1f}")
            line("  of which the target (script)", f"{len(text.encode())} B")
            meta = fleet.centre_dir / "repo" / "metadata"
            for role in ("timestamp", "snapshot", "approver-tinh"):
                newest = max(meta.glob(f"*{role}.json"), key=lambda p: p.stat().st_mtime)
                line(f"  metadata {role}.json on disk", f"{newest.stat().st_size} B")
            kinds: dict[str, int] = {}
            for p in paths:
                p = re.sub(r"/\d+\.", "/N.", re.sub(r"[0-9a-f]{64}", "<sha>", p))
                kinds[p] = kinds.get(p, 0) + 1
            print("    requests (all stations): " + ", ".join(f"{k} ×{v}" for k, v in sorted(kinds.items())))

            def rendered() -> bool:
                return all((fleet.health(s) or {}).get("library", {}).get("ready") == 2 for s in fleet.ids)

            wait(rendered, 60, "the bulletin rendered")
            latencies = []
            for round_ in (1, 2):
                title = f"Bão số {round_} đổ bộ"
                _, t0 = fleet.publish("khan_cap", fleet.ids, title, minutes=0.5)
                result = emergency_latency(fleet, title, t0, fleet.ids)
                latencies += result["per_station_s"].values()
                wait(lambda: all(fleet.rows(s)[-1]["status"] in SETTLED for s in fleet.ids), 40, "plays")
            latencies.sort()
            mid = latencies[len(latencies) // 2]
            line(
                f"emergency publish → relay ON ({len(latencies)} plays)",
                f"{latencies[0]:.2f}/{mid:.2f}/{latencies[-1]:.2f} s",
                "min/median/max, target max < 10 s",
                latencies[-1] < 10,
            )
        finally:
            proxy.close()
    print()


class _Counted:
    sent = 0
    lock = threading.Lock()


def bench_fleet_hundred(n: int = 100, seconds: float = 30.0, every_s: float = 2.0) -> None:
    from playout.fleet.centre import Centre
    from playout.fleet.mqtt import LinkTLS, StationLink

    print(f"fleet: the centre with {n} simulated stations' status (MQTT over TLS) every {every_s:.0f} s "
          f"for {seconds:.0f} s")  # fmt: skip

    class SimStation(StationLink):
        def _send_status(self, status):
            with _Counted.lock:
                _Counted.sent += 1
            super()._send_status(status)

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        fleet = Fleet(Path(tmp), n=0)
        centre = Centre(fleet.centre_dir)
        centre.init(broker_host="127.0.0.1", broker_port=fleet.mqtt_port, broker_tls=True)  # as installed
        tls = LinkTLS(ca_file=centre.broker_tls()["ca_file"])
        t = time.monotonic()
        passwords = {}
        for i in range(1, n + 1):
            sid = f"sim-{i:03d}"
            folder = centre.add_station(sid, centre_url=fleet.url + "/")
            passwords[sid] = (folder / "mqtt.pw").read_text().strip()
        # The fleet's state is for the desk's technicians: the bench reads it with a token, as monitors do.
        reader = {"Authorization": f"Bearer {centre.add_token('bench', ['technician'])}"}
        line(f"{n} stations registered (tokens, broker accounts)", f"{time.monotonic() - t:.1f} s")
        centre.close()
        links: list[StationLink] = []
        try:
            fleet.start_centre()
            pid = fleet.centre_proc.pid
            brokers = _children(pid)
            links = [
                SimStation(
                    sid,
                    "127.0.0.1",
                    fleet.mqtt_port,
                    pw,
                    on_doorbell=lambda ring: None,
                    tls=tls,
                    min_interval_s=every_s,
                    heartbeat_s=every_s,
                )  # fmt: skip
                for sid, pw in passwords.items()
            ]
            t = time.monotonic()
            for link in links:
                link.start()

            def all_online() -> bool:
                view = http_json(fleet.url + "/api/fleet/stations", headers=reader)["stations"]
                return sum(1 for s in view if (s["status"] or {}).get("online")) == n

            wait(all_online, 60, f"{n} stations online at the centre", every=0.5)
            line(f"{n} stations connected, seen online by the centre", f"{time.monotonic() - t:.1f} s")
            cpu0, bcpu0, sent0 = _cpu_s(pid), sum(_cpu_s(b) for b in brokers), _Counted.sent
            t0 = time.monotonic()
            tick = 0
            while time.monotonic() - t0 < seconds:
                tick += 1
                for i, link in enumerate(links):  # a field that changes, as relay and last play do
                    link.publish_status({"relay": "on" if (tick + i) % 2 else "off", "tick": tick})
                time.sleep(1.0)
            wall = time.monotonic() - t0
            cpu = _cpu_s(pid) - cpu0
            bcpu = sum(_cpu_s(b) for b in brokers) - bcpu0
            sent = _Counted.sent - sent0
            t = time.monotonic()
            view = http_json(fleet.url + "/api/fleet/stations", headers=reader)["stations"]
            page_ms = (time.monotonic() - t) * 1000
            line("statuses sent", f"{sent} ({sent / wall:.0f}/s)")
            line("centre CPU time", f"{cpu:.2f} s", f"{100 * cpu / wall:.1f} % of one core")
            line("centre peak RSS (VmHWM)", f"{_kib(pid, 'VmHWM') / 1024:.0f} MiB")
            line("centre RSS now", f"{_kib(pid, 'VmRSS') / 1024:.0f} MiB")
            for b in brokers:
                line("its Mosquitto: CPU time", f"{bcpu:.2f} s")
                line("its Mosquitto: peak RSS", f"{_kib(b, 'VmHWM') / 1024:.1f} MiB")
            line("GET /api/fleet/stations (100 stations)", f"{page_ms:.0f} ms", f"{len(view)} listed")
        finally:
            for link in links:
                link.close(timeout=0.5)
            fleet.stop_centre()
    print()


def bench_fleet() -> None:
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    bench_fleet_ten()
    bench_fleet_hundred()
