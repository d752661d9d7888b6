"""`make bench BENCH=faults`: what a fault costs the on-air daemon, measured on the real subprocess.

a. Start to READY on a corrupt playout.db (garbage; a real 100 000-row log with one page overwritten)
   against the same start on the sound file: the price of the check and rescue in open_station_db.
b. The daemon's RSS while an anonymous client streams a 300 MB JSON body to POST /api/login, once with
   Content-Length and once chunked, and how the server answered.
c. API latency, the daemon's descriptors and the play's underruns while 1 000 idle connections are open
   during a bulletin, the daemon started with systemd's default descriptor limit (1024), as on a Pi.

Audio goes to a private PulseAudio null sink (tests/pulse.py), as in the daemon bench: it keeps real
time, so an underrun in the as-run log is a real one.  All traffic is to 127.0.0.1; every loop is
bounded in count and in time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import math
import os
import re
import resource
import select
import selectors
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import bench_token, fill_asrun, line

ROOT = Path(__file__).resolve().parents[1]
PLAYOUT = [str(Path(sys.executable).parent / "playout")]
READY_LINE = re.compile(r"station \S+ ready")  # playout/daemon.py: "station %s ready: %s"
RESCUE_LINE = re.compile(r"recovered (\d+) row\(s\) .*? in ([\d.]+) s")
MiB = 1024 * 1024
# systemd's default soft RLIMIT_NOFILE for a service; the shipped unit does not raise it.
SYSTEMD_NOFILE = 1024


# -- the daemon process, seen from outside ----------------------------------------------------------


def proc_kib(pid: int, field: str) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def nofile_limit(pid: int) -> str:
    for row in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if row.startswith("Max open files"):
            return "/".join(row.split()[3:5])
    return "?"


def reset_peak_rss(pid: int) -> bool:
    """Zero VmHWM, so each body's peak is its own (Linux >= 4.0; our own child, so permitted)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """VmRSS every 50 ms in a thread, at most ``limit_s`` long."""

    def __init__(self, pid: int, limit_s: float = 120.0):
        self.pid, self.limit_s = pid, limit_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                self.samples.append(proc_kib(self.pid, "VmRSS"))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def http_get(port: int, path: str, headers: dict, timeout: float = 5.0) -> tuple[int | None, float, str]:
    """(status or None, milliseconds, error kind) of one request on a fresh connection, as a browser poll."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - began) * 1000, ""
    except (OSError, http.client.HTTPException) as exc:
        return None, (time.perf_counter() - began) * 1000, type(exc).__name__
    finally:
        conn.close()


def wait_ready(run, deadline_s: float = 90.0) -> dict:
    """Start ``run`` and time it until /api/health answers 200 and until the READY log line appears."""
    t0 = time.monotonic()
    run.start()
    health_s = log_s = None
    while time.monotonic() - t0 < deadline_s:
        if health_s is None and http_get(run.port, "/api/health", {}, timeout=0.5)[0] == 200:
            health_s = time.monotonic() - t0
        if log_s is None and READY_LINE.search(run.log()):
            log_s = time.monotonic() - t0
        if health_s is not None and log_s is not None:
            return {"health_s": health_s, "log_s": log_s}
        if run.proc.poll() is not None:
            raise SystemExit(f"daemon exited ({run.proc.returncode}) before READY:\n{run.log()[-3000:]}")
        time.sleep(0.02)
    raise SystemExit(f"daemon not READY in {deadline_s:.0f} s:\n{run.log()[-3000:]}")


def percentile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[max(0, math.ceil(q * len(sorted_ms)) - 1)]


def paced_load(
    port: int, paths: list[str], headers: dict, rate: float, count: int, timeout: float = 5.0
) -> dict:
    """``count`` requests at ``rate``/s, the paths in turn, each on its own thread at its own slot: open
    loop, as independent browsers and scripts are, so a slow answer delays no other request.  Bounded:
    at most rate x timeout requests in flight, all done within count / rate + timeout seconds."""
    results: list[tuple[int | None, float, str]] = []
    lock = threading.Lock()

    def one(path: str) -> None:
        result = http_get(port, path, headers, timeout)
        with lock:
            results.append(result)

    t0 = time.monotonic()
    threads = []
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=one, args=(paths[i % len(paths)],), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(timeout=max(0.1, t0 + count / rate + 2 * timeout - time.monotonic()))
    ok = sorted(ms for status, ms, _ in results if status == 200)
    errors: dict[str, int] = {}
    for status, _, kind in results:
        if status != 200:
            key = kind or str(status)
            errors[key] = errors.get(key, 0) + 1
    # Every request, a failure counted as the timeout: what a client waited, answered or not.
    waited = sorted(ms if status == 200 else max(ms, timeout * 1000) for status, ms, _ in results)
    return {
        "sent": count,
        "ok": len(ok),
        "p99_all": percentile(waited, 0.99),
        "errors": errors,
        "p50": percentile(ok, 0.50),
        "p99": percentile(ok, 0.99),
        "max": ok[-1] if ok else float("nan"),
        "seconds": time.monotonic() - t0,
    }


def new_run(work: Path, config: dict, env: dict):
    from tests.station import DaemonRun

    work.mkdir(parents=True, exist_ok=True)
    return DaemonRun(work, PLAYOUT, config, env=env)


def stop(run) -> None:
    with contextlib.suppress(Exception):
        run.stop(timeout=20)
    if run.proc is not None and run.proc.poll() is None:
        run.proc.kill()
        run.proc.wait()


# -- a. a corrupt database ---------------------------------------------------------------------------


def fold_wal(db: Path) -> None:
    """Everything into the main file, so a copy of it alone is the whole database."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def damage_one_page(db: Path) -> int:
    """Overwrite one whole leaf page of the plays table, halfway through it, with random bytes, as a card
    that lost one 4 KiB write would.  Returns the page number."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        leaves = [
            r[0]
            for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'plays' AND pagetype = 'leaf' ORDER BY pageno"
            )
        ]
    page = leaves[len(leaves) // 2]
    with db.open("r+b") as f:
        f.seek((page - 1) * page_size)  # pages are numbered from 1
        f.write(os.urandom(page_size))
    return page


def plays_count(db: Path) -> int | str:
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            return conn.execute("SELECT count(*) FROM plays").fetchone()[0]
    except sqlite3.Error as exc:
        return f"error: {exc}"


def fault_corrupt_db(work: Path, env: dict, rows: int, rounds: int = 3) -> dict:
    base = work / "db-source" / "var" / "playout.db"
    t0 = time.monotonic()
    fill_asrun(base, rows)
    built_s = time.monotonic() - t0
    config = {"windows": []}
    out: dict = {"built_s": built_s, "rows": rows}

    def start_on(name: str, prepare) -> dict:
        run = new_run(work / name, config, env)
        prepare(run.db)
        try:
            timing = wait_ready(run)
        finally:
            stop(run)
        rescue = RESCUE_LINE.search(run.log())
        timing["recovered"] = int(rescue.group(1)) if rescue else None
        timing["rescue_s"] = float(rescue.group(2)) if rescue else None
        timing["plays_after"] = plays_count(run.db)
        return timing

    def copy_base(db: Path) -> None:
        db.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base, db)

    # The first start also gives the file the station's other tables (approvals, alarms, ...): the
    # copies below are of a database as the daemon left it.  It runs on cold caches and is not counted.
    start_on("prepare", copy_base)
    real = work / "prepare" / "var" / "playout.db"
    fold_wal(real)
    base = work / "db-real.db"
    shutil.copyfile(real, base)
    size = base.stat().st_size

    def garbage(db: Path) -> None:
        db.parent.mkdir(parents=True, exist_ok=True)
        db.write_bytes(os.urandom(size))

    def one_bad_page(db: Path) -> None:
        copy_base(db)
        out["bad_page"] = damage_one_page(db)

    # Interleaved rounds: a start on two busy cores varies by half a second, and drift (page cache,
    # another process) then falls on every kind alike rather than on whichever ran last.
    kinds = {"sound": copy_base, "garbage": garbage, "damaged": one_bad_page}
    for kind in kinds:
        out[kind] = []
    for i in range(rounds):
        for kind, prepare in kinds.items():
            out[kind].append(start_on(f"{kind}{i}", prepare))
    out["size"] = size
    return out


# -- b. a 300 MB anonymous body --------------------------------------------------------------------------


def body_pieces(total: int, piece: int = 256 * 1024):
    """A JSON login ``total`` bytes long, ``piece`` bytes at a time, never held whole in memory."""
    head, tail = b'{"name":"', b'","password":"x"}'
    filler = b"a" * piece
    yield head
    left = total - len(head) - len(tail)
    while left > 0:
        n = min(piece, left)
        yield filler[:n]
        left -= n
    yield tail


def stream_body(port: int, total: int, chunked: bool, time_limit_s: float = 25.0) -> dict:
    """POST /api/login with a ``total``-byte body from a raw socket, reading whatever the server says
    while sending.  Stops at the first send error, when the server closes, or at ``time_limit_s``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    sock.sendall(
        (
            "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n\r\n"
        ).encode()
    )
    received = bytearray()
    state = {"fin": False, "reset": False}
    sent = 0
    sent_at_answer: int | None = None
    error = ""
    t0 = time.monotonic()

    def drain(wait: float = 0.0) -> None:
        nonlocal sent_at_answer
        while not state["fin"] and select.select([sock], [], [], wait)[0]:
            try:
                data = sock.recv(65536)
            except OSError:
                state["reset"] = True
                state["fin"] = True
                return
            if not data:
                state["fin"] = True
                return
            if sent_at_answer is None:
                sent_at_answer = sent
            received.extend(data)
            wait = 0.0

    try:
        for piece in body_pieces(total):
            frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            try:
                sock.sendall(frame)
            except OSError as exc:
                error = type(exc).__name__
                break
            sent += len(piece)
            drain()
            if state["fin"]:
                break
            if time.monotonic() - t0 > time_limit_s:
                error = f"stopped at the {time_limit_s:.0f} s limit"
                break
        else:
            if chunked:
                with contextlib.suppress(OSError):
                    sock.sendall(b"0\r\n\r\n")
        # The answer, if it has not come yet (a server that read it all may still be parsing it).
        answer_deadline = time.monotonic() + 15
        while not state["fin"] and time.monotonic() < answer_deadline and not _complete(received):
            drain(0.2)
    finally:
        sock.close()
    status_line = bytes(received).split(b"\r\n", 1)[0].decode("latin-1")
    body = (
        bytes(received).split(b"\r\n\r\n", 1)[1][:160].decode("utf-8", "replace")
        if b"\r\n\r\n" in received
        else ""
    )
    return {
        "status": status_line.split()[1] if status_line.startswith("HTTP/") else "no answer",
        "body": body,
        "sent": sent,
        "sent_at_answer": sent_at_answer,
        "error": error or ("reset" if state["reset"] else ""),
        "seconds": time.monotonic() - t0,
    }


def _complete(received: bytearray) -> bool:
    if b"\r\n\r\n" not in received:
        return False
    head, body = bytes(received).split(b"\r\n\r\n", 1)
    m = re.search(rb"(?i)content-length:\s*(\d+)", head)
    return m is not None and len(body) >= int(m.group(1))


def fault_big_body(work: Path, env: dict, total: int) -> dict:
    run = new_run(work / "body", {"windows": []}, env)
    out: dict = {}
    try:
        wait_ready(run)
        pid = run.proc.pid
        time.sleep(2)  # let start-up's garbage settle before the baseline
        for chunked in (False, True):
            reset_peak_rss(pid)
            with RssSampler(pid, limit_s=5) as idle:
                time.sleep(1)
            before = statistics.median(idle.samples) / 1024
            hwm_reset = reset_peak_rss(pid)
            with RssSampler(pid, limit_s=60) as during:
                result = stream_body(run.port, total, chunked)
                time.sleep(3)  # what the daemon keeps once the request is over
            after = proc_kib(pid, "VmRSS") / 1024
            status, ms, _ = http_get(run.port, "/api/health", {})
            result.update(
                before=before,
                peak=max(during.samples) / 1024,
                hwm=proc_kib(pid, "VmHWM") / 1024 if hwm_reset else float("nan"),
                after=after,
                health=f"{status} in {ms:.0f} ms" if status else "no answer",
            )
            out["chunked" if chunked else "length"] = result
    finally:
        stop(run)
    return out


# -- c. 1 000 idle connections during a play -----------------------------------------------------------


class IdleConnections:
    """``n`` TCP connections that send nothing; a thread notes when the server closes each."""

    def __init__(self, port: int, n: int):
        self.port, self.n = port, n
        self.socks: list[socket.socket] = []
        self.opened_at = 0.0
        self.connected = 0
        self.unconnected = 0
        self.closed: list[float] = []  # seconds after opening
        self.answered = 0  # closed with bytes first (a 408, say) rather than silently
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def open(self) -> None:
        # Non-blocking connects: a server whose backlog is full must not make this take n x timeout.
        self.opened_at = time.monotonic()
        for _ in range(self.n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.socks.append(s)
        # epoll, not select(): descriptors above 1024 are the point here.
        for s in self.socks:
            self._sel.register(s, selectors.EVENT_WRITE)
        pending = set(self.socks)
        deadline = time.monotonic() + 5
        while pending and time.monotonic() < deadline:
            for key, _ in self._sel.select(timeout=0.2):
                s = key.fileobj
                if s not in pending:
                    # Watched for reading already: leave it to the watcher thread, started below.
                    continue
                pending.discard(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    self.connected += 1
                    self._sel.modify(s, selectors.EVENT_READ)
                else:
                    self._sel.unregister(s)
        for s in pending:  # never connected: not watched for a close
            self._sel.unregister(s)
        self.unconnected = len(pending)
        self._thread.start()

    def _watch(self) -> None:
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            for key, _ in self._sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if data:
                    self.answered += 1
                    continue  # an answer first; the close follows
                self.closed.append(time.monotonic() - self.opened_at)
                self._sel.unregister(s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for s in self.socks:
            s.close()
        self._sel.close()


def fault_idle_connections(work: Path, env: dict, auth: tuple[dict, dict], idle_n: int) -> dict:
    from tests.station import clock, now, write_script

    section, headers = auth
    write_script(
        work / "idle" / "bulletins" / "approved",
        "tin.txt",
        "Kính thưa bà con. Đây là bản tin đo khi máy chủ bị giữ nhiều kết nối. Xin cảm ơn bà con.",
    )
    t = now()
    if (t + dt.timedelta(seconds=90)).date() != t.date():  # today's windows must not straddle midnight
        time.sleep(
            (dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), t.tzinfo) - t).total_seconds()
            + 2
        )
    # Start-up (~4 s), render (~2 s), READY, the baseline and the idle connections all fit before it.
    start = (now() + dt.timedelta(seconds=16)).replace(microsecond=0)
    length_s = 16.0
    config = {
        "windows": [{"name": "đo", "start": clock(start), "end": clock(start + dt.timedelta(seconds=60))}],
        "bulletin": {"length_s": length_s},
        "auth": section,
    }
    run = new_run(work / "idle", config, env)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The daemon inherits the descriptor limit systemd would give it; this process then needs more
    # than 1 000 for its own end of the idle connections.
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(SYSTEMD_NOFILE, soft), hard))
    try:
        wait_ready(run)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, idle_n + 1024)), hard))
    pid = run.proc.pid
    out: dict = {"limit": nofile_limit(pid), "fds_idle": open_fds(pid)}
    paths = ["/api/health", "/api/plays?limit=50"]
    idle = IdleConnections(run.port, idle_n)
    try:
        out["baseline"] = paced_load(run.port, paths, headers, rate=20, count=40)
        idle.open()
        time.sleep(0.5)
        out["fds_with_idle"] = open_fds(pid)
        out["connected"] = idle.connected
        run.wait_for(lambda rows: any(r["status"] == "playing" for r in rows), 60, "the play to start")
        fd_peak = [open_fds(pid)]
        sampling = threading.Event()

        def sample_fds() -> None:
            while not sampling.wait(0.25):
                with contextlib.suppress(OSError):
                    fd_peak.append(open_fds(pid))

        sampler = threading.Thread(target=sample_fds, daemon=True)
        sampler.start()
        out["load"] = paced_load(run.port, paths, headers, rate=20, count=200)
        sampling.set()
        sampler.join()
        out["fds_peak"] = max(fd_peak)
        rows = run.wait_for(
            lambda rows: rows and all(r["status"] != "playing" for r in rows), 60, "the play to end"
        )
        out["play"] = rows[-1]
        out["closed"] = sorted(idle.closed)
        out["answered"] = idle.answered
        out["fds_end"] = open_fds(pid)
        out["server"] = server_stats(run.port, headers)
        out["log_errors"] = log_errors(run.log())
    finally:
        idle.close()
        stop(run)
    return out


def server_stats(port: int, headers: dict) -> dict | None:
    """The API server's own connection counters, from the full health (absent before limits.py)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/health", headers=headers)
        response = conn.getresponse()
        api = json.loads(response.read()).get("api") if response.status == 200 else None
        return api if isinstance(api, dict) else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def log_errors(text: str) -> list[tuple[str, int, str]]:
    """The daemon's ERROR records, one per distinct message: (message and the exception it logged,
    count, time of the first)."""
    seen: dict[str, list] = {}
    current = None
    for row in text.splitlines():
        parts = row.split(" ", 3)  # date, time, level, "logger: message"
        if len(parts) == 4 and re.fullmatch(r"\d\d:\d\d:\d\d,\d+", parts[1]):
            current = None
            if parts[2] == "ERROR":
                current = seen.setdefault(parts[3], [0, parts[1], ""])
                current[0] += 1
        elif current is not None and re.match(r"\s+[A-Za-z_][\w.]*(Error|Exception)\b", row):
            current[2] = row.strip()  # a traceback (indented continuation lines) ends with the exception
    return [(f"{m} [{exc}]" if exc else m, n, first) for m, (n, first, exc) in seen.items()]


# -- the report -----------------------------------------------------------------------------------------


def bench_faults(rows: int = 100_000, body_bytes: int = 300 * MiB, idle_n: int = 1000) -> None:
    from tests.pulse import PulseSink

    print("\nFaults: the real daemon (`playout run`) into a PulseAudio null sink")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-faults-"))
    began = time.monotonic()
    try:
        with PulseSink() as pulse:
            a = fault_corrupt_db(work / "db", pulse.env, rows)
            b = fault_big_body(work, pulse.env, body_bytes)
            c = fault_idle_connections(work, pulse.env, bench_token(), idle_n)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"  a. corrupt var/playout.db ({a['rows']:,} as-run rows, {a['size'] / MiB:.1f} MiB) -> READY")
    n = len(a["sound"])
    print(
        f"     {f'start on (median of {n}, min-max)':<38} {'/api/health 200':>17}"
        f" {'READY line':>11} {'vs sound':>9}  rescue (daemon's own timing)"
    )
    sound = statistics.median(r["health_s"] for r in a["sound"])
    for key, label in (
        ("sound", "sound DB"),
        ("garbage", "random bytes, same size"),
        ("damaged", f"one plays leaf page overwritten (p{a.get('bad_page', '?')})"),
    ):
        runs = a[key]
        health = sorted(r["health_s"] for r in runs)
        med = statistics.median(health)
        ready = statistics.median(r["log_s"] for r in runs)
        diff = "" if key == "sound" else f"{med - sound:+.2f} s"
        last = runs[-1]
        if last["recovered"] is not None:
            rescue = (
                f"{statistics.median(r['rescue_s'] for r in runs):.2f} s; {last['recovered']:,} rows kept"
            )
            rescue += f", plays {last['plays_after']:,}" if isinstance(last["plays_after"], int) else ""
        else:
            rescue = f"none; plays {last['plays_after']}"
        spread = f"{med:.2f} ({health[0]:.2f}-{health[-1]:.2f})"
        print(f"     {label:<38} {spread:>17} {ready:>9.2f} s {diff:>9}  {rescue}")

    print(f"  b. {body_bytes / MiB:.0f} MiB JSON body to POST /api/login, anonymous, streamed")
    for key, label in (("length", "Content-Length"), ("chunked", "chunked")):
        r = b[key]
        answer = r["status"] + (f", {r['error']}" if r["error"] else "")
        # Bytes the client got into the socket before the first byte of answer: mostly the kernel's
        # buffers on both sides, not what the server read.
        at = "no answer" if r["sent_at_answer"] is None else f"after {r['sent_at_answer'] / MiB:.1f} MiB sent"
        line(
            f"{label}: server's answer",
            answer,
            f"{at}; {r['sent'] / MiB:.1f} MiB sent in {r['seconds']:.1f} s",
        )
        line(
            f"{label}: RSS before / peak / 3 s after",
            f"{r['before']:.0f} / {r['peak']:.0f} / {r['after']:.0f} MiB",
            f"growth {r['peak'] - r['before']:+.0f} MiB peak, {r['after'] - r['before']:+.0f} kept;"
            f" VmHWM {r['hwm']:.0f} MiB",
        )
        line(f"{label}: /api/health right after", r["health"])
        if r["body"]:
            print(f"     answer body: {r['body'][:120]}")

    print(f"  c. {idle_n} idle connections during a play (daemon fd limit {c['limit']} soft/hard)")
    base, load = c["baseline"], c["load"]
    line(
        "baseline, no idle conns: p50 / p99 / max",
        f"{base['p50']:.0f} / {base['p99']:.0f} / {base['max']:.0f} ms",
        f"{base['ok']}/{base['sent']} ok",
    )
    line(
        "on air + idle conns: p50 / p99 / max",
        f"{load['p50']:.0f} / {load['p99']:.0f} / {load['max']:.0f} ms",
        f"{load['ok']}/{load['sent']} answered 200, all done in {load['seconds']:.1f} s",
    )
    if load["ok"] < load["sent"]:
        line("  p99 over all requests (a failure = 5 s)", f"{load['p99_all']:.0f} ms")
    line("  errors", f"{sum(load['errors'].values())}", str(load["errors"]) if load["errors"] else "")
    closed = c["closed"]
    when = (
        f"after {closed[0]:.1f} / {statistics.median(closed):.1f} / {closed[-1]:.1f} s (first/median/last)"
        if closed
        else "none by the play's end"
    )
    line("idle conns connected / closed by the server", f"{c['connected']} / {len(closed)}", when)
    line("  not closed by the play's end (client's view)", f"{c['connected'] - len(closed)}")
    if c["server"]:
        keys = ("max_connections", "peak", "refused", "evicted", "timed_out", "open")
        stats = ", ".join(f"{k} {c['server'][k]}" for k in keys if k in c["server"])
        print(f"     server's counters after the play: {stats}")
    if c["answered"]:
        line("  of which answered before closing", f"{c['answered']}")
    line(
        "daemon fds: idle / +conns / peak / end",
        f"{c['fds_idle']} / {c['fds_with_idle']} / {c['fds_peak']} / {c['fds_end']}",
    )
    play = c["play"]
    line(
        "the play: status / underruns",
        f"{play['status']} / {play['underruns']}",
        "target played / 0",
        play["status"] == "played" and play["underruns"] == 0,
    )
    if play.get("error"):
        print(f"     play error: {play['error']}")
    if play.get("relay_on_at"):
        late = dt.datetime.fromisoformat(play["relay_on_at"]) - dt.datetime.fromisoformat(
            play["scheduled_at"]
        )
        line("  relay ON vs scheduled", f"{late.total_seconds() * 1000:.0f} ms")
    for message, n, first in c["log_errors"][:5]:
        print(f"     daemon log ERROR x{n}, first at {first}: {message[:160]}")
    print(f"  (faults bench took {time.monotonic() - began:.0f} s)")
