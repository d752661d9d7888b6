"""What one LAN client may cost the station: connections, idle time, descriptors, bodies.

The server under test runs in a process of its own (tests/playout/limits_server.py) so its descriptors
can be counted from outside, with a hard open-file limit low enough that the budget has to bind.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from playout.limits import ConnectionLimits, fd_budget, make_server
from tests.playout.live import LOCALHOST, request, serve

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "limits-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
IDLE = 1_100
HARD_NOFILE = 400  # the child's hard limit: the connection budget must fit inside it with the reserve


def _child_limits():
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, HARD_NOFILE))


@pytest.fixture
def child(tmp_path):
    stderr = open(tmp_path / "stderr.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.playout.limits_server", TOKEN, "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        preexec_fn=_child_limits,
        env={**os.environ, "NO_PROXY": "127.0.0.1"},
    )
    try:
        line = proc.stdout.readline()  # the child prints once it listens (bounded by its own 10 s wait)
        assert line, (tmp_path / "stderr.log").read_text()
        info = json.loads(line)
        info.update(proc=proc, stderr=tmp_path / "stderr.log")
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        stderr.close()


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_idle(port: int, count: int, seconds: float) -> list[socket.socket]:
    """``count`` connections that never send a byte (those the kernel will not take are skipped)."""
    socks: list[socket.socket] = []
    deadline = time.monotonic() + seconds
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        s = socket.socket()
        s.settimeout(0.5)
        try:
            s.connect((LOCALHOST, port))
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_a_thousand_idle_connections_cannot_starve_the_station(child):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE + 200:  # this test process holds the 1 100 client sockets itself
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    pid, port, budget = child["proc"].pid, child["port"], child["budget"]
    assert budget["soft"] == HARD_NOFILE  # raised from 256 to the hard limit
    cap = budget["max_connections"]
    worst = (
        cap * budget["per_connection"] + 2 * budget["backlog"] + budget["open_at_start"] + budget["reserve"]
    )
    assert cap < 200 and worst <= HARD_NOFILE
    base = fds(pid)
    socks: list[socket.socket] = []
    try:
        peak = base
        start = time.monotonic()
        while len(socks) < IDLE and time.monotonic() - start < 20:
            socks += open_idle(port, 100, 3)
            peak = max(peak, fds(pid))
        assert len(socks) >= IDLE * 0.9, f"only {len(socks)} connections opened"
        # Meanwhile a technician's request (a new connection) is answered at once, and the on-air path
        # can still open its files.
        with httpx.Client(base_url=f"http://{LOCALHOST}:{port}", headers=AUTH, timeout=5) as api:
            t = time.monotonic()
            assert api.get("/api/ping").json() == {"ok": True}
            assert time.monotonic() - t < 1
            assert api.get("/api/onair").json() == {"opened": budget["reserve"]}
            peak = max(peak, fds(pid))
            # The cap, plus what one accept pass takes in and the previous one closed (not yet released).
            assert peak <= base + cap + 2 * budget["backlog"] + 4, f"{peak} fds (base {base}, cap {cap})"
            assert peak <= HARD_NOFILE - budget["reserve"]
            # Silent connections are cut off after the header timeout (2 s here), accepted or not yet.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not all(closed_by_server(s) for s in socks):
                time.sleep(0.2)
            still = sum(not closed_by_server(s) for s in socks)
            assert still == 0, f"{still} idle connections still open"
            stats = api.get("/api/stats").json()
        print(f"idle={len(socks)} cap={cap} fds: base={base} peak={peak} stats={stats}")
        assert stats["open"] <= 2 and stats["peak"] <= cap
        assert stats["evicted"] + stats["timed_out"] + stats["refused"] >= len(socks) - cap
    finally:
        for s in socks:
            s.close()
    # The flood left a few lines, not a line per connection.
    assert child["stderr"].stat().st_size < 20_000, child["stderr"].read_text()[-2000:]


def test_dribbled_headers_are_cut_off(child):
    port = child["port"]
    with socket.create_connection((LOCALHOST, port), timeout=1) as s:
        s.setblocking(False)
        start = time.monotonic()
        head = b"GET /api/ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        closed_after = None
        for byte in head:  # one byte every 0.25 s: under any per-read timeout, never finishing
            if time.monotonic() - start > 8:
                break
            try:
                s.send(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - start
                break
            if closed_by_server(s):
                closed_after = time.monotonic() - start
                break
            time.sleep(0.25)
    assert closed_after is not None and closed_after < 4, closed_after


def test_a_connection_with_a_request_in_flight_is_not_evicted():
    import asyncio

    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/slow")
    async def slow() -> dict:
        await asyncio.sleep(1.5)
        return {"ok": True}

    @app.get("/fast")
    async def fast() -> dict:
        return {"ok": True}

    server = make_server(app, LOCALHOST, 0, limits=ConnectionLimits(max_connections=3, header_timeout_s=5))
    with serve(app, server=server) as port:
        answers: dict = {}

        def call(name, path):
            answers[name] = request(port, "GET", path, timeout=5)

        import threading

        busy = [threading.Thread(target=call, args=(f"slow{i}", "/slow")) for i in range(3)]
        for t in busy:
            t.start()
        time.sleep(0.3)  # three connections, each with a request in flight: the server is full
        refused = request(port, "GET", "/fast", timeout=2)
        assert refused.status is None  # closed at once, not queued behind them
        for t in busy:
            t.join(5)
        assert all(answers[f"slow{i}"].status == 200 for i in range(3))
        # With idle connections only, the oldest makes room for the newcomer.
        idle = open_idle(port, 3, 2)
        try:
            assert request(port, "GET", "/fast", timeout=2).status == 200
            time.sleep(0.1)
            assert closed_by_server(idle[0])
        finally:
            for s in idle:
                s.close()
        assert server.stats()["refused"] >= 1 and server.stats()["evicted"] >= 1


def test_fd_budget_raises_the_soft_limit_and_keeps_a_reserve():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
        budget = fd_budget(200, reserve=64, target_soft=min(hard, 1024))
        assert budget.soft == min(hard, 1024)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == budget.soft
        used = budget.open_at_start + budget.max_connections * budget.per_connection + 2 * budget.backlog
        assert budget.soft - used >= 64 and budget.max_connections <= 200
        # A tight limit gives fewer connections, never the reserve.
        resource.setrlimit(resource.RLIMIT_NOFILE, (budget.open_at_start + 100, hard))
        tight = fd_budget(200, reserve=64, target_soft=budget.open_at_start + 100)
        assert tight.max_connections == 1  # (100 - 64 - 2 * 32) / 2 < 1: one, and a warning
    finally:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
