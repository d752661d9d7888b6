"""The as-run log and the approval store when SQLite cannot write: locked by another process, disk full.

Real parts only: another process holding ``BEGIN EXCLUSIVE`` on the same file, and a real full disk (a
small tmpfs filled with a file; needs root to mount, skipped otherwise).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from playout.approvals import ApprovalStore
from playout.asrun import AsRunLog, Slot, iso
from playout.errors import StorageUnavailable
from playout.storage import Alarms, disk_status

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BUSY_S = 0.5  # the log's busy timeout in these tests: the lock is held much longer than this
SCRIPT = "Bản tin thử nghiệm. Xin cảm ơn bà con.".encode()


def bulletin(n: int = 1) -> SimpleNamespace:
    return SimpleNamespace(
        id=f"{n:064x}", title=f"Bản tin {n}", topic="an ninh", summary={"engine": "piper", "voice": "vi"}
    )


def slot(hour: int, index: int = 0) -> Slot:
    """The key is day/window/index: one window per hour keeps the tests' slots apart."""
    return Slot(f"{hour} giờ", dt.datetime(2026, 11, 29, hour, 0, tzinfo=TZ), index)


def rows_in(path: Path) -> dict[str, dict]:
    """The rows as another program sees them, through its own connection."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return {r["slot_key"]: dict(r) for r in db.execute("SELECT * FROM plays")}
    finally:
        db.close()


class Locker:
    """Another process holding the database's write lock (``BEGIN EXCLUSIVE``) until told to let go."""

    CODE = (
        "import sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.readline()\n"
        "db.execute('COMMIT')\n"
    )

    def __init__(self, path: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.CODE, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            assert self.proc.wait(10) == 0


@pytest.fixture
def locker():
    made: list[Locker] = []

    def lock(path: Path) -> Locker:
        made.append(Locker(path))
        return made[-1]

    yield lock
    for one in made:
        with contextlib.suppress(Exception):
            one.release()
        if one.proc.poll() is None:
            one.proc.kill()


def test_a_locked_database_holds_the_play_and_writes_it_later_as_it_happened(tmp_path, locker):
    path = tmp_path / "playout.db"
    log = AsRunLog(path, TZ, busy_timeout_s=BUSY_S)
    assert log.record(slot(5), "missed", error="x")  # an ordinary row, written at once
    lock = locker(path)

    t0 = time.monotonic()
    before = log.now()
    row = log.start(slot(6), bulletin(1))
    started = log.now()
    on_at = started + dt.timedelta(milliseconds=10)
    log.update(row, relay_on_at=on_at)
    log.update(row, audio_start_at=on_at + dt.timedelta(seconds=1))
    log.update(row, audio_end_at=on_at + dt.timedelta(seconds=181), underruns=0)
    log.finish(row, "played", relay_off_at=on_at + dt.timedelta(seconds=183), error=None)
    finished = log.now()
    # Only the first write waits for the lock; the rest queue behind it at once.
    assert time.monotonic() - t0 < BUSY_S + 1.0
    assert row is not None and row < 0
    assert log.held() == 5

    # The held claim counts: the slot is taken, the bulletin has aired once, readers see the row.
    assert log.has_slot(slot(6).key)
    assert log.start(slot(6), bulletin(2)) is None
    assert not log.record(slot(6), "missed")
    assert log.play_counts() == {bulletin(1).id: 1}
    assert log.status_counts() == {"missed": 1, "played": 1}
    assert log.last()["slot_key"] == slot(6).key and log.last()["status"] == "played"
    assert [r["slot_key"] for r in log.plays(status=["played"])] == [slot(6).key]
    assert slot(6).key not in rows_in(path)

    t1 = time.monotonic()
    assert log.flush() == 0  # still locked: nothing written, nothing lost, and quickly
    assert time.monotonic() - t1 < 1.0
    assert log.held() == 5

    lock.release()
    assert log.flush() == 5
    assert log.held() == 0 and log.flush() == 0
    got = rows_in(path)[slot(6).key]
    assert got["status"] == "played" and got["error"] is None and got["underruns"] == 0
    assert got["bulletin_id"] == bulletin(1).id and got["engine"] == "piper"
    # The times are those of the events, not of the replay.
    assert iso(before) <= got["created_at"] <= iso(started)
    assert iso(started) <= got["updated_at"] <= iso(finished)
    assert got["relay_on_at"] == on_at.isoformat(timespec="milliseconds")
    assert got["relay_off_at"] == (on_at + dt.timedelta(seconds=183)).isoformat(timespec="milliseconds")
    # The handle keeps working after the replay (the on-air thread may still hold it).
    log.update(row, underruns=3)
    assert rows_in(path)[slot(6).key]["underruns"] == 3
    assert log.play_counts() == {bulletin(1).id: 1}
    log.close()


def test_a_held_recover_runs_before_the_new_plays_so_played_stays_final(tmp_path, locker):
    path = tmp_path / "playout.db"
    dead = AsRunLog(path, TZ)
    dead.start(slot(5), bulletin(1))  # a process killed mid-play leaves this 'playing'
    dead.close()

    lock = locker(path)
    log = AsRunLog(path, TZ, busy_timeout_s=BUSY_S)  # a restart while another process writes
    assert log.recover() == 0  # held
    row = log.start(slot(6), bulletin(2))
    log.finish(row, "played")
    assert log.held() == 3
    lock.release()
    assert log.flush() == 3
    got = rows_in(path)
    assert got[slot(5).key]["status"] == "interrupted"
    assert got[slot(6).key]["status"] == "played"
    log.close()


def test_a_write_that_fails_mid_play_is_held_and_the_finish_queues_behind_it(tmp_path, locker):
    path = tmp_path / "playout.db"
    log = AsRunLog(path, TZ, busy_timeout_s=BUSY_S)
    row = log.start(slot(6), bulletin(1))
    assert row > 0  # written at once
    lock = locker(path)
    log.update(row, relay_on_at=log.now())
    log.finish(row, "played")
    assert log.held() == 2
    assert rows_in(path)[slot(6).key]["status"] == "playing"
    assert log.plays()[0]["status"] == "played" and log.play_counts() == {bulletin(1).id: 1}
    lock.release()
    assert log.flush() == 2
    assert rows_in(path)[slot(6).key]["status"] == "played"
    log.close()


def test_the_approval_store_refuses_with_try_again_and_changes_nothing(tmp_path, locker):
    path = tmp_path / "playout.db"
    store = ApprovalStore(path, tmp_path / "scripts", TZ)
    record, _ = store.submit(SCRIPT, "tin.md", who="hoa", source="upload")
    lock = locker(path)
    t0 = time.monotonic()
    with pytest.raises(StorageUnavailable) as refused:
        store.approve(record.sha256, who="lan")
    assert time.monotonic() - t0 < 5.0
    assert refused.value.code == "STORAGE_UNAVAILABLE"
    assert refused.value.message == "Cơ sở dữ liệu đang bận hoặc đầy đĩa, thử lại sau"
    assert store.get(record.sha256).status == "pending"
    lock.release()
    assert store.approve(record.sha256, who="lan").status == "approved"
    assert [a["action"] for a in store.audit()] == ["approve", "submit"]
    store.close()


def test_held_writes_are_lost_only_if_the_station_stops_with_them_and_the_log_says_so(
    tmp_path, locker, caplog
):
    path = tmp_path / "playout.db"
    log = AsRunLog(path, TZ, busy_timeout_s=BUSY_S)
    lock = locker(path)
    row = log.start(slot(6), bulletin(1))
    log.finish(row, "played")
    held = [r for r in caplog.records if r.levelname == "WARNING" and "held in memory" in r.getMessage()]
    assert [r.getMessage().split(": ")[-1].split(" write")[0] for r in held] == ["1", "2"]
    log.close()  # still locked: the last flush fails too
    (lost,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "2 write(s)" in lost.getMessage() and slot(6).key in lost.getMessage()
    lock.release()
    assert slot(6).key not in rows_in(path)


def test_an_alarm_cannot_be_acknowledged_while_the_database_is_locked(tmp_path, locker):
    path = tmp_path / "playout.db"
    AsRunLog(path, TZ).close()  # the station's file, in its journal mode (WAL: readers go on)
    alarms = Alarms(path, TZ)
    alarm = alarms.raise_alarm("test", "Báo động thử")
    lock = locker(path)
    with pytest.raises(StorageUnavailable):
        alarms.acknowledge(alarm, who="lan")
    assert [a["id"] for a in alarms.active()] == [alarm]  # reading goes on meanwhile
    lock.release()
    assert alarms.acknowledge(alarm, who="lan") and alarms.active() == []


# -- a real full disk ------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: small enough to fill in a moment, real enough that SQLite gets ENOSPC."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        # CI runs as root, as the tests of the whole station do: no tmpfs means no full-disk test, a failure.
        pytest.fail(f"cannot mount a tmpfs here (root needed): {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 4096)
    return filler


def test_a_full_disk_holds_the_play_and_writes_it_when_space_returns(small_disk):
    path = small_disk / "playout.db"
    log = AsRunLog(path, TZ, busy_timeout_s=BUSY_S)
    assert log.record(slot(5), "missed")
    filler = fill(small_disk)
    status = disk_status(small_disk, low_mb=0.5, low_fraction=0)
    assert status["low"] and status["free_mb"] < 0.5 and status["message"]

    # Many plays' worth of rows: the -wal needs new pages for them, which the disk does not have.
    handles = []
    for i in range(40):
        row = log.start(slot(6, i), bulletin(i))
        log.update(row, relay_on_at=log.now(), title="Bản tin dài " + "x" * 2000)
        log.finish(row, "played", relay_off_at=log.now())
        handles.append(row)
    assert log.held() > 0
    assert all(log.has_slot(slot(6, i).key) for i in range(40))
    assert log.play_counts() == {bulletin(i).id: 1 for i in range(40)}
    assert log.flush() == 0

    filler.unlink()
    assert not disk_status(small_disk, low_mb=0.5, low_fraction=0)["low"]
    written = log.flush()
    assert written > 0 and log.held() == 0
    got = rows_in(path)
    assert len(got) == 41
    assert all(got[slot(6, i).key]["status"] == "played" for i in range(40))
    assert all(got[slot(6, i).key]["bulletin_id"] == bulletin(i).id for i in range(40))
    log.close()


def test_a_full_disk_refuses_an_upload_with_try_again(small_disk):
    store = ApprovalStore(small_disk / "playout.db", small_disk / "scripts", TZ)
    filler = fill(small_disk)
    with pytest.raises(StorageUnavailable):
        store.submit(SCRIPT, "tin.md", who="hoa", source="upload")
    filler.unlink()
    record, _ = store.submit(SCRIPT, "tin.md", who="hoa", source="upload")
    assert record.status == "pending"
    store.close()


def test_disk_status_defaults_warn_well_before_full(tmp_path):
    status = disk_status(tmp_path)
    assert status["threshold_mb"] >= 200 and status["total_mb"] > 0
    assert status["low"] == (status["free_mb"] < status["threshold_mb"])
    missing = disk_status(tmp_path / "nope")
    assert missing["low"] and "error" in missing
    assert os.path.exists(tmp_path)


def test_a_slot_that_does_not_air_is_never_seen_as_playing(tmp_path):
    """A missed or skipped slot is written with its outcome at once: a reader in between (the web page,
    the centre's outbox, a test) saw ``playing`` for a slot that never keyed the relay."""
    import threading

    log = AsRunLog(tmp_path / "asrun.db", TZ)
    reader = AsRunLog(tmp_path / "asrun.db", TZ)
    seen, done = set(), threading.Event()

    def watch():
        while not done.is_set():
            seen.update(r["status"] for r in reader.plays(limit=1000))

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        for i in range(300):
            slot = Slot("sáng", dt.datetime(2026, 12, 1, 6, 0, tzinfo=TZ) + dt.timedelta(days=i))
            assert log.record(slot, "missed" if i % 2 else "skipped", error="đồng hồ chưa đồng bộ")
    finally:
        done.set()
        thread.join()
    assert seen == {"missed", "skipped"}
    rows = log.plays(limit=1000)
    assert len(rows) == 300 and all(r["error"] == "đồng hồ chưa đồng bộ" for r in rows)
    with pytest.raises(ValueError):
        log.record(Slot("chiều", dt.datetime(2026, 12, 1, 17, 0, tzinfo=TZ)), "playing")
