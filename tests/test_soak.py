"""Soak: the real daemon under real systemd for about ten minutes, one fault after another.

Eight one-minute windows, 70 s apart, one 11 s bulletin each; the station runs the shipped unit
(tests/systemd_box.py: systemd as PID 1 in a container, WatchdogSec=4) and plays through ALSA into a
PulseAudio sink on the host that records everything. One fault per window, injected around its start:

  w1  kill -9 mid-play                       -> row interrupted, ExecStopPost unkeys, restarted, not re-aired
      then: a reload that revokes a token    -> that token gets 401, the others still work
  w2  BEGIN EXCLUSIVE on playout.db across the slot start -> airs on time, the row is written afterwards
      then: 300 MB anonymous bodies to /api/login (Content-Length and chunked) -> refused, memory bounded
  w3  the data disk (a tmpfs) full across the slot, then freed -> airs on time, the row reaches the disk
      then: stop, a garbage page in playout.db, start -> the station starts, no row lost, damage kept aside
  w4  the cached WAV deleted                 -> read again, airs
  w5  the cached WAV replaced by loud noise  -> caught before keying, read again, the noise never airs
  w6  the clock unsynchronised across the start, synchronised 20 s in -> waits, then airs
      then: a restart under libfaketime (clean, systemctl restart)
  w7  the clock stepped 20 s forward over the start, later 30 s back across it -> airs once
  w8  1100 idle connections to the API across the start -> airs on time, health keeps answering

Then, from systemd, the as-run log, the relay's pin history (the daemon logs `relay ON/OFF at <time>`;
ExecStopPost logs `forced OFF`) and the recording: one row per window with the expected status, no row
lost, the relay never on outside a window, no watchdog kill and exactly one restart (the kill -9),
health answered except while the station was down on purpose, 0 underruns, no sound with the relay off.

Every check is collected and all failures are reported together at the end. Run alone: `make soak`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from playout.auth import hash_token
from tests.pulse import PulseSink
from tests.systemd_box import STATION_DIR, TOKEN, TZ, StationService, clock, now

pytestmark = pytest.mark.slow

WINDOWS = 8
FIRST_S = 35  # from the start of the soak to the first window: boot, start, first render
SPACING_S = 70  # window start to window start
WINDOW_S = 60
SLOT_S = 1.0 + 11 + 0.5  # pre-roll + bulletin + tail
SCRIPT = "Kính thưa bà con. Đây là bản tin thử của trạm. Xin cảm ơn bà con."
REVOKED = "token-that-a-reload-revokes-0123456789"
EXPECTED = {"w1": "interrupted", **{f"w{i}": "played" for i in range(2, WINDOWS + 1)}}
HEALTH_GRACE_S = 3.0
# Keyed this long after its start, a slot is still on time: the as-run claim may wait up to
# playout.storage.BUSY_TIMEOUT_S (2 s) for a locked database before it holds the row in memory.
ON_TIME_S = 3.0  # after the station is back from a planned outage, before health must answer

POLLER = r"""
import json, sys, time, urllib.error, urllib.request
port, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
import os
with open(out, "a") as f:
    while not os.path.exists(stop):
        t = time.time()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=3) as r:
                status, err = r.status, None
        except urllib.error.HTTPError as e:
            status, err = e.code, None
        except Exception as e:
            status, err = 0, f"{type(e).__name__}: {e}"
        f.write(json.dumps({"t": t, "status": status, "s": round(time.time() - t, 3), "error": err}) + "\n")
        f.flush()
        time.sleep(max(0.0, t + 1.0 - time.time()))
"""

BIG_BODY = r"""
import json, socket, sys, time
port, size, chunked = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "chunked"
started = time.time()
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
head = "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
sock.sendall(head.encode())
block = b"a" * (1 << 20)
sent, error = 0, None
try:
    while sent < size:
        data = block[: size - sent]
        sock.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        sent += len(data)
    if chunked:
        sock.sendall(b"0\r\n\r\n")
except OSError as e:
    error = f"{type(e).__name__}: {e}"
answer = b""
try:
    while b"\r\n\r\n" not in answer:
        part = sock.recv(65536)
        if not part:
            break
        answer += part
except OSError as e:
    error = error or f"{type(e).__name__}: {e}"
line = answer.split(b"\r\n", 1)[0].decode("latin-1")
print(json.dumps({"sent": sent, "status_line": line, "error": error, "s": round(time.time() - started, 2)}))
"""

IDLE = r"""
import json, resource, socket, sys, time
port, n, hold, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
socks, failed, first_error = [], 0, None
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        socks.append(s)
    except OSError as e:
        failed += 1
        first_error = first_error or f"{type(e).__name__}: {e}"
with open(out, "w") as f:
    json.dump({"connected": len(socks), "failed": failed, "first_error": first_error}, f)
time.sleep(hold)
alive = 0  # connections the server still held open at the end (closed ones read as b"")
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1) != b"":
            alive += 1
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
    s.close()
with open(out, "w") as f:
    result = {"connected": len(socks), "failed": failed, "first_error": first_error, "open_at_end": alive}
    json.dump(result, f)
"""

TIMEDATECTL = """#!/bin/sh
# Test stand-in for timedatectl (first on the service's PATH): answers NTPSynchronized from a file.
cat /srv/station/ntp-synchronized 2>/dev/null || echo yes
"""


@dataclass
class Verdict:
    """Every check of the soak, kept so that one run reports all that failed, not just the first."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: object = "") -> bool:
        self.results.append((name, bool(ok), str(detail)))
        print(f"[{'ok' if ok else 'FAIL'}] {name}" + ("" if ok else f": {detail}"), flush=True)
        return bool(ok)

    def failed(self) -> list[tuple[str, bool, str]]:
        return [r for r in self.results if not r[1]]


@pytest.fixture(autouse=True)
def not_near_midnight():
    """The windows are today's: a soak that would cross midnight waits for the new day instead."""
    t = now()
    left = (dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), t.tzinfo) - t).total_seconds()
    needed = FIRST_S + (WINDOWS - 1) * SPACING_S + WINDOW_S + 120
    if left < needed:
        time.sleep(left + 5)


def faketime_library() -> str:
    found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    if not found:
        raise RuntimeError("libfaketime is not installed: run `make setup` (package faketime)")
    return found[0]


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def station_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def vm(pid: int, key: str) -> int:
    """A /proc/PID/status field in kB (VmHWM: peak resident memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def test_soak(tmp_path):
    verdict = Verdict()
    t0 = time.time()
    starts = [t0 + FIRST_S + i * SPACING_S for i in range(WINDOWS)]  # real (unfaked) epoch seconds
    windows = [
        {
            "name": f"w{i + 1}",
            "start": clock(dt.datetime.fromtimestamp(s, TZ)),
            "end": clock(dt.datetime.fromtimestamp(s + WINDOW_S, TZ)),
        }
        for i, s in enumerate(starts)
    ]
    config = {
        "windows": windows,
        "auth": {
            "tokens": [
                {"name": "tests", "token_hash": hash_token(TOKEN), "roles": ["admin"]},
                {"name": "revoked", "token_hash": hash_token(REVOKED), "roles": ["technician"]},
            ]
        },
    }
    downtime: list[list[float]] = []  # planned outages (start, end): health may not answer then
    notes: dict[str, object] = {}

    with PulseSink() as sink:
        pulse_dir = sink.root / "runtime" / "pulse"
        os.chmod(pulse_dir, 0o755)  # the service runs as the playout user
        recording = sink.record(tmp_path / "air.wav")
        recording_t0 = time.time()
        station = StationService(tmp_path, config, pulse_dir=pulse_dir, data_tmpfs_mb=24)
        station.prepare()
        approved = station.dir / "bulletins" / "approved"
        (approved / "tin.md").write_text(f"---\ntitle: Bản tin thử\n---\n{SCRIPT}", "utf-8")
        (station.dir / "bin").mkdir()
        (station.dir / "bin" / "timedatectl").write_text(TIMEDATECTL)
        (station.dir / "bin" / "timedatectl").chmod(0o755)
        (station.dir / "ntp-synchronized").write_text("yes\n")
        (station.dir / "faketime").write_text("+0\n")
        station.chown(station.dir)
        station.add_dropin(
            "soak",
            "[Service]\n"
            "# A stand-in timedatectl first on PATH: the test decides what NTPSynchronized says.\n"
            f"Environment=PATH={STATION_DIR}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        )
        stop_poll = tmp_path / "stop-poll"
        health_log = tmp_path / "health.jsonl"
        with station:
            print(f"container booted in {station.box.boot_s:.2f} s, READY=1 after {station.start_s:.2f} s")
            poller = station.net_popen(POLLER, str(station.port), str(health_log), str(stop_poll))
            try:
                run_phases(station, verdict, starts, downtime, notes, tmp_path)
            finally:
                stop_poll.touch()
                poller.wait(timeout=10)
            rows = station.rows()
            state = station.show()
            entries = station.journal_entries()
            damaged = sorted(p.name for p in station.data.glob("playout.db.damaged-*"))
        recording.stop()

    final_checks(
        verdict,
        rows,
        state,
        entries,
        damaged,
        windows,
        starts,
        downtime,
        health_log,
        notes,
        tmp_path,
        recording_t0,
    )
    print(f"soak took {time.time() - t0:.0f} s")
    failed = verdict.failed()
    assert not failed, f"{len(failed)} of {len(verdict.results)} checks failed:\n" + "\n".join(
        f"- {name}: {detail}" for name, _, detail in failed
    )


# -- the faults, one per window ------------------------------------------------------------------------------


def row_of(station: StationService, window: str) -> dict | None:
    return next((r for r in station.rows() if r["window"] == window), None)


def wait_row(station: StationService, window: str, pred, timeout: float) -> dict | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = row_of(station, window)
        if row is not None and pred(row):
            return row
        time.sleep(0.3)
    return row_of(station, window)


def wait_active(station: StationService, restarts: str | None, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = station.show()
        if state["ActiveState"] == "active" and (restarts is None or state["NRestarts"] == restarts):
            return True
        time.sleep(0.3)
    return False


def reloads(station: StationService) -> int:
    return station.journal().count("schedule.yaml reloaded")


def run_phases(station, verdict, starts, downtime, notes, tmp_path) -> None:
    phases = [
        phase_kill,
        phase_db_lock,
        phase_full_disk,
        phase_deleted_wav,
        phase_replaced_wav,
        phase_unsynchronised,
        phase_stepped_clock,
        phase_idle_connections,
    ]
    for i, phase in enumerate(phases):
        try:
            phase(station, verdict, starts[i], downtime, notes, tmp_path)
        except Exception as exc:  # noqa: BLE001 - one broken phase must not hide the others' results
            verdict.check(f"{phase.__name__} ran to the end", False, f"{type(exc).__name__}: {exc}")
    wait_row(station, "w8", lambda r: r["status"] != "playing", starts[-1] + 30 - time.time())


def phase_kill(station, verdict, start, downtime, notes, tmp_path) -> None:
    row = wait_row(station, "w1", lambda r: r["audio_start_at"], start + 25 - time.time())
    verdict.check("w1: on air before the kill", row and row["audio_start_at"], row)
    time.sleep(3)
    pid = station.show("MainPID")["MainPID"]
    killed = time.time()
    station.box.exec("kill", "-KILL", pid)
    back = wait_active(station, "1", 30)
    downtime.append([killed, time.time()])
    verdict.check("w1: systemd restarted the killed station (NRestarts=1)", back, station.show())
    row = wait_row(station, "w1", lambda r: r["status"] != "playing", 20)
    verdict.check("w1: the killed play is logged interrupted", row and row["status"] == "interrupted", row)

    # A reload that revokes a token: it must stop working at once, the others keep working.
    before, _ = station.http("GET", "/api/plays", token=REVOKED)
    station.config["auth"]["tokens"] = [t for t in station.config["auth"]["tokens"] if t["name"] != "revoked"]
    count = reloads(station)
    station.write_config()
    station.systemctl("reload", "playout.service")
    deadline = time.time() + 10
    while reloads(station) == count and time.time() < deadline:
        time.sleep(0.3)
    after, _ = station.http("GET", "/api/plays", token=REVOKED)
    admin, _ = station.http("GET", "/api/plays")
    verdict.check(
        "reload revokes a token: 200 before, 401 after, others 200",
        (before, after, admin) == (200, 401, 200),
        (before, after, admin),
    )


def phase_db_lock(station, verdict, start, downtime, notes, tmp_path) -> None:
    held = {}

    def hold() -> None:
        sleep_until(start - 3)
        db = sqlite3.connect(station.db, timeout=10, isolation_level=None)
        try:
            db.execute("BEGIN EXCLUSIVE")
            held["from"] = time.time()
            sleep_until(start + 8)
            db.execute("ROLLBACK")
            held["until"] = time.time()
        finally:
            db.close()

    thread = threading.Thread(target=hold, name="db-lock")
    thread.start()
    thread.join(timeout=max(1.0, start + 30 - time.time()))
    verdict.check(
        "w2: the lock was held across the slot start",
        held.get("from", 1e18) < start and held.get("until", 0) > start + 5,
        held,
    )
    row = wait_row(station, "w2", lambda r: r["status"] == "played", 20)
    verdict.check(
        "w2: airs through a locked database and the row reaches it", row and row["status"] == "played", row
    )
    notes["w2_on_time"] = row

    # 300 MB anonymous bodies to /api/login: refused early, and the daemon's memory stays small.
    pid = station.main_pid()
    hwm = vm(pid, "VmHWM")
    for mode in ("length", "chunked"):
        proc = station.net_popen(BIG_BODY, str(station.port), str(300 << 20), mode, stdout=-1, text=True)
        out, _ = proc.communicate(timeout=120)
        result = json.loads(out) if out.strip() else {"error": "no answer"}
        status = result.get("status_line", "")
        verdict.check(f"300 MB body ({mode}) to /api/login refused with 413", " 413 " in f"{status} ", result)
    grown = vm(pid, "VmHWM") - hwm
    verdict.check(
        "300 MB bodies: the daemon's peak memory grew by under 50 MB", grown < 50 * 1024, f"{grown} kB"
    )
    code, _ = station.http("GET", "/api/health", token=None)
    verdict.check("health answers after the big bodies", code == 200, code)


def phase_full_disk(station, verdict, start, downtime, notes, tmp_path) -> None:
    sleep_until(start - 5)
    filler = station.data / "filler"
    with filler.open("wb", buffering=0) as f:  # unbuffered: ENOSPC surfaces here, not at close
        for size in (1 << 20, 4096, 512):
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    f.write(block)
                    f.flush()
    free = os.statvfs(station.data).f_bavail
    verdict.check("w3: the data disk is full at the slot start", free == 0, f"{free} blocks free")
    row = wait_row(station, "w3", lambda r: r["status"] == "played", start + 20 - time.time())
    notes["w3_during_full"] = row
    sleep_until(start + 20)
    filler.unlink()
    row = wait_row(station, "w3", lambda r: r["status"] == "played", 20)
    verdict.check(
        "w3: airs on a full disk, and the row is written once space returns",
        row and row["status"] == "played",
        row,
    )

    # Stop, damage one page of playout.db that is not the plays table's, start again.
    before = station.rows()
    stopped = time.time()
    station.systemctl("stop", "playout.service")
    page = corrupt_a_page(station.db)
    notes["corrupted_page"] = page
    done = station.box.exec("systemctl", "start", "playout.service", check=False, timeout=90)
    back = wait_active(station, None, 30)
    downtime.append([stopped, time.time()])
    verdict.check(
        "a damaged playout.db: the station starts",
        done.returncode == 0 and back,
        done.stderr + station.journal()[-3000:],
    )
    after = {r["slot_key"]: r["status"] for r in station.rows()}
    lost = [r["slot_key"] for r in before if after.get(r["slot_key"]) != r["status"]]
    verdict.check("a damaged playout.db: no row lost", not lost, f"lost or changed: {lost}; now {after}")
    verdict.check(
        "a damaged playout.db: the damaged file is kept aside",
        any(station.data.glob("playout.db.damaged-*")),
        sorted(p.name for p in station.data.iterdir()),
    )


def corrupt_a_page(path: Path) -> dict:
    """Garbage over one b-tree page that is not the plays table (an index, another table): a torn write."""
    wal = path.with_name(path.name + "-wal")
    wal_bytes = wal.stat().st_size if wal.exists() else 0  # a clean stop checkpoints it away
    with contextlib.closing(sqlite3.connect(path)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        objects = db.execute(
            "SELECT type, name, tbl_name, rootpage FROM sqlite_master WHERE rootpage > 1"
        ).fetchall()
    # An index of plays if there is one (its rows are all in the table), else any other table.
    ranked = sorted(objects, key=lambda o: (o[0] != "index" or o[2] != "plays", o[2] == "plays", o[3]))
    kind, name, table, root = ranked[0]
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(os.urandom(page_size))
    return {"type": kind, "name": name, "table": table, "page": root, "wal_bytes_at_stop": wal_bytes}


def cached_wavs(station: StationService) -> list[Path]:
    return sorted(station.data.glob("cache/**/*.wav"))


def phase_deleted_wav(station, verdict, start, downtime, notes, tmp_path) -> None:
    sleep_until(start - 15)
    wavs = cached_wavs(station)
    notes["original_sha"] = {hashlib.sha256(p.read_bytes()).hexdigest() for p in wavs}
    for p in wavs:
        p.unlink()
    verdict.check("w4: there was cached audio to delete", wavs, wavs)
    row = wait_row(station, "w4", lambda r: r["status"] not in ("playing",), start + 40 - time.time())
    verdict.check("w4: a deleted cached WAV is read again and airs", row and row["status"] == "played", row)


def phase_replaced_wav(station, verdict, start, downtime, notes, tmp_path) -> None:
    sleep_until(start - 15)
    wavs = cached_wavs(station)
    noise_sha = set()
    rng = np.random.default_rng(1)
    for p in wavs:
        info = sf.info(p)
        noise = (rng.uniform(-0.5, 0.5, size=(info.frames, info.channels))).astype("float32")
        sf.write(p, noise, info.samplerate, subtype=info.subtype)
        noise_sha.add(hashlib.sha256(p.read_bytes()).hexdigest())
    notes["noise_sha"] = noise_sha
    verdict.check("w5: there was cached audio to replace", wavs, wavs)
    row = wait_row(station, "w5", lambda r: r["status"] not in ("playing",), start + 40 - time.time())
    verdict.check(
        "w5: a replaced cached WAV is caught, read again, and airs",
        row and row["status"] == "played" and row["audio_sha256"] not in noise_sha,
        row,
    )


def phase_unsynchronised(station, verdict, start, downtime, notes, tmp_path) -> None:
    sleep_until(start - 25)
    (station.dir / "ntp-synchronized").write_text("no\n")
    station.set_clock_synced(False)
    deadline = time.time() + 20
    trusted = None
    while time.time() < deadline:
        _, health = station.http("GET", "/api/health")
        trusted = (health.get("clock") or {}).get("trusted") if isinstance(health, dict) else None
        if trusted is False:
            break
        time.sleep(1)
    verdict.check("w6: the station sees the clock unsynchronised before the slot", trusted is False, trusted)
    sleep_until(start + 20)
    synced_at = time.time()
    (station.dir / "ntp-synchronized").write_text("yes\n")
    row = wait_row(station, "w6", lambda r: r["status"] != "playing", start + 55 - time.time())
    on = station_time(row and row["relay_on_at"])
    verdict.check(
        "w6: the slot waits for the clock, then airs once synchronised",
        row and row["status"] == "played" and on and on.timestamp() >= synced_at,
        (row, synced_at),
    )
    notes["w6_synced_at"] = synced_at
    station.set_clock_synced(True)

    # From here on under libfaketime (offset 0 until the next phase steps it): a clean restart.
    station.add_dropin(
        "faketime",
        "[Service]\n"
        "# Stepped-clock phase: the daemon's wall clock from a file the test writes (monotonic untouched).\n"
        f"Environment=LD_PRELOAD={faketime_library()} FAKETIME_TIMESTAMP_FILE={STATION_DIR}/faketime "
        "FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1\n",
    )
    stopped = time.time()
    station.systemctl("restart", "playout.service", check=False)
    back = wait_active(station, None, 30)
    downtime.append([stopped, time.time()])
    verdict.check("restart under libfaketime", back, station.show())


def phase_stepped_clock(station, verdict, start, downtime, notes, tmp_path) -> None:
    fake = station.dir / "faketime"
    sleep_until(start - 5)
    fake.write_text("+20\n")  # NTP steps the clock forward over the window's start
    row = wait_row(station, "w7", lambda r: r["status"] != "playing", 30)
    verdict.check(
        "w7: the slot whose start the clock jumped over airs", row and row["status"] == "played", row
    )
    sleep_until(start + 12)
    fake.write_text("-30\n")  # and back across the start: the scheduler meets it again
    sleep_until(start + 36)
    fake.write_text("+0\n")
    rows = [r for r in station.rows() if r["window"] == "w7"]
    verdict.check("w7: stepped back across the start, it does not air again", len(rows) == 1, rows)
    journal = station.journal()
    verdict.check(
        "w7: the daemon saw both steps",
        "stepped by +" in journal and "stepped by -" in journal,
        re.findall(r".*stepped by.*", journal),
    )


def phase_idle_connections(station, verdict, start, downtime, notes, tmp_path) -> None:
    sleep_until(start - 12)
    out = tmp_path / "idle.json"
    proc = station.net_popen(IDLE, str(station.port), "1100", "35", str(out))
    deadline = time.time() + 30  # 1100 connects against a server that caps and evicts take a while
    while not out.exists() and time.time() < deadline:
        time.sleep(0.2)
    opened = json.loads(out.read_text()) if out.exists() else None
    notes["idle_opened"] = opened
    row = wait_row(station, "w8", lambda r: r["status"] != "playing", start + 25 - time.time())
    code, _ = station.http("GET", "/api/health", token=None)
    verdict.check("w8: health answers while 1100 idle connections are open", code == 200, (code, opened))
    proc.wait(timeout=60)
    opened = json.loads(out.read_text()) if out.exists() else None
    notes["idle"] = opened
    verdict.check(
        "w8: airs with 1100 idle connections open", row and row["status"] == "played", (row, opened)
    )


# -- the verdict from the records ----------------------------------------------------------------------------


def final_checks(
    verdict,
    rows,
    state,
    entries,
    damaged,
    windows,
    starts,
    downtime,
    health_log,
    notes,
    tmp_path,
    recording_t0,
) -> None:
    (tmp_path / "rows.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    by_window: dict[str, list[dict]] = {}
    for r in rows:
        by_window.setdefault(r["window"], []).append(r)
    for name, status in EXPECTED.items():
        got = [r["status"] for r in by_window.get(name, [])]
        verdict.check(f"{name}: exactly one row, {status}", got == [status], got)
    extra = sorted(set(by_window) - set(EXPECTED))
    verdict.check("no row outside the windows", not extra, extra)
    verdict.check(
        "0 underruns",
        all((r["underruns"] or 0) == 0 for r in rows),
        [(r["window"], r["underruns"]) for r in rows],
    )
    # On time where the fault was not about time: keyed within ON_TIME_S of the window's configured start
    # (whole seconds, station time).
    for i, name in ((1, "w2"), (2, "w3"), (7, "w8")):
        r = (by_window.get(name) or [None])[0]
        on = station_time(r and r["relay_on_at"])
        start = dt.datetime.combine(on.date(), dt.time.fromisoformat(windows[i]["start"]), TZ) if on else None
        late = round((on - start).total_seconds(), 3) if on else None
        verdict.check(
            f"{name}: keyed on time despite the fault", late is not None and 0 <= late < ON_TIME_S, late
        )

    # systemd: one restart, the kill -9; never the watchdog.
    messages = [e["message"] for e in entries]
    failures = [m for m in messages if "Failed with result" in m]
    verdict.check(
        "systemd: no watchdog kill",
        not any("Watchdog timeout" in m for m in messages),
        [m for m in messages if "Watchdog" in m],
    )
    verdict.check(
        "systemd: the only failure is the kill -9 (result 'signal')",
        failures == ["playout.service: Failed with result 'signal'."],
        failures,
    )
    # NRestarts counts automatic restarts only since the last manual start (the soak restarts it twice by
    # hand): systemd's "Scheduled restart job" lines count them all.
    automatic = [m for m in messages if "Scheduled restart job" in m]
    verdict.check(
        "systemd: one automatic restart (the kill -9), active at the end",
        len(automatic) == 1 and state["ActiveState"] == "active",
        (automatic, state),
    )

    # The relay's pin history: every ON inside a window, and released (by the daemon or ExecStopPost).
    spans, on_at, on_real = [], None, None
    for e in entries:
        m = e["message"]
        if (found := re.search(r"relay ON at (\S+)", m)) and on_at is None:
            on_at, on_real = dt.datetime.fromisoformat(found.group(1)), e["t"]
        elif on_at is not None and ((found := re.search(r"relay OFF at (\S+)", m)) or "forced OFF" in m):
            off_at = (
                dt.datetime.fromisoformat(found.group(1)) if found else dt.datetime.fromtimestamp(e["t"], TZ)
            )
            spans.append((on_at, off_at, on_real, e["t"]))
            on_at = None
    verdict.check("relay: released after every ON", on_at is None, on_at)
    day = dt.datetime.fromtimestamp(starts[0], TZ).date()
    bounds = [
        (
            dt.datetime.combine(day, dt.time.fromisoformat(w["start"]), TZ),
            dt.datetime.combine(day, dt.time.fromisoformat(w["end"]), TZ),
        )
        for w in windows
    ]
    outside = [
        (a.isoformat(), b.isoformat())
        for a, b, _, _ in spans
        if not any(s <= a and b <= e for s, e in bounds)
    ]
    verdict.check("relay: never on outside a window", not outside, outside)
    per_window = [sum(1 for on, *_ in spans if s <= on <= e) for s, e in bounds]
    verdict.check("relay: keyed once per window", per_window == [1] * len(windows), per_window)

    # Health: answered every second, except while the station was down on purpose.
    polls = [json.loads(line) for line in health_log.read_text().splitlines()] if health_log.exists() else []
    planned = [(a, b + HEALTH_GRACE_S) for a, b in downtime]
    unanswered = [p for p in polls if p["status"] != 200 and not any(a <= p["t"] <= b for a, b in planned)]
    verdict.check(
        "health: answered throughout (but planned restarts)",
        polls and not unanswered,
        f"{len(unanswered)} of {len(polls)} unanswered: {unanswered[:5]}",
    )
    slow = [p for p in polls if p["status"] == 200 and p["s"] > 2]
    verdict.check("health: every answer within 2 s", not slow, slow[:5])

    # The audio: sound only while the relay is on; no loud noise; each play audible for most of its length.
    audio, rate = sf.read(tmp_path / "air.wav", dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    block = rate // 20
    rms = np.sqrt(np.mean(audio[: len(audio) // block * block].reshape(-1, block) ** 2, axis=1))
    loud = np.flatnonzero(rms > 1e-3)
    times = recording_t0 + loud / 20
    real_spans = [(a, b) for _, _, a, b in spans]
    stray = [
        round(t - recording_t0, 2) for t in times if not any(a - 0.5 <= t <= b + 0.5 for a, b in real_spans)
    ]
    verdict.check(
        "audio: no sound while the relay is off", not stray, f"{len(stray)} blocks, at {stray[:10]} s"
    )
    noise = notes.get("noise_sha") or set()
    verdict.check(
        "as-run: no row aired the injected noise",
        not [r for r in rows if r["audio_sha256"] in noise],
        [r["window"] for r in rows if r["audio_sha256"] in noise],
    )
    for w, (s, e) in zip(windows, bounds, strict=True):
        if EXPECTED[w["name"]] != "played":
            continue
        inside = np.zeros(len(rms), dtype=bool)
        for on, _, a, b in spans:
            if s <= on <= e:
                inside[max(0, int((a - recording_t0) * 20)) : int((b - recording_t0) * 20) + 1] = True
        sounding = np.count_nonzero(inside & (rms > 1e-3)) / 20
        verdict.check(f"audio: {w['name']} audible on air", sounding > 3, f"{sounding:.1f} s")
        # Speech has pauses: its median 50 ms level sits far below uniform noise's steady 0.29.
        level = float(np.median(rms[inside & (rms > 1e-3)])) if sounding else 0.0
        verdict.check(f"audio: {w['name']} sounds like speech, not noise", level < 0.2, round(level, 3))
    (tmp_path / "notes.json").write_text(json.dumps(notes, default=str, indent=1, ensure_ascii=False))
    print("notes:", json.dumps(notes, default=str, ensure_ascii=False))
