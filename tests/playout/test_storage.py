"""A damaged station database is moved aside, rescued row by row, and told about until acknowledged.

Real SQLite files damaged the ways an SD card damages them: garbage, cut short, one page overwritten,
a garbage write-ahead log.  And one the check must leave alone: a sound file whose last commits are
still in its -wal after a kill.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from playout.approvals import ApprovalStore
from playout.asrun import COLUMNS, AsRunLog
from playout.storage import Alarms, _wal_pages, open_station_db

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SCRIPT = "Bản tin thử nghiệm. Xin cảm ơn bà con.".encode()


def make_station_db(path: Path, plays: int) -> dict[str, tuple]:
    """A database as the station leaves it (both stores' schemas, a script, its audit), ``plays`` rows."""
    store = ApprovalStore(path, path.parent / "scripts", TZ)
    record, _ = store.submit(SCRIPT, "tin.md", who="hoa", source="upload")
    store.approve(record.sha256, who="lan")
    store.record_action("lan", "play_now", record.sha256, "tin.md", "ghi chú dài " * 1000)  # overflow pages
    store.close()
    AsRunLog(path, TZ).close()
    db = sqlite3.connect(path)
    t0 = dt.datetime(2026, 1, 1, 6, tzinfo=TZ)
    rows = []
    for i in range(plays):
        at = (t0 + dt.timedelta(hours=8 * i)).isoformat(timespec="milliseconds")
        rows.append(
            (i + 1, f"{at[:10]}/khung {i % 3}/0", f"khung {i % 3}", at, "played", f"{i % 7:064x}",
             f"Bản tin số {i}", "an ninh", at, at, at, at, 0, "piper", "vi", "a" * 64, None, at, at)
        )  # fmt: skip
    db.executemany(f"INSERT INTO plays VALUES ({','.join('?' * len(COLUMNS))})", rows)
    db.commit()
    db.close()
    return {r[1]: r for r in rows}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plays_in(path: Path) -> dict[str, tuple]:
    db = sqlite3.connect(path)
    try:
        return {r[1]: tuple(r) for r in db.execute("SELECT * FROM plays")}
    finally:
        db.close()


def leaf_pages(path: Path, table: str) -> list[tuple[int, int]]:
    """(page number, rows on it) for the table's leaf pages (SQLite's own dbstat table)."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT pageno, ncell FROM dbstat WHERE name=? AND pagetype='leaf' ORDER BY pageno", (table,)
        ).fetchall()
    finally:
        db.close()


def overwrite_page(path: Path, page: int, page_size: int = 4096) -> None:
    with path.open("r+b") as fh:
        fh.seek((page - 1) * page_size)
        fh.write(random.Random(page).randbytes(page_size))


def assert_restarts_with_alarm(path: Path, aside: Path) -> list[dict]:
    """The station opens the rescued file, and the alarm is still there after a restart."""
    log = AsRunLog(path, TZ)
    store = ApprovalStore(path, path.parent / "scripts", TZ)
    log.close()
    store.close()
    again = AsRunLog(path, TZ)  # a later restart: the alarm is in the database, not in memory
    again.close()
    (alarm,) = Alarms(path, TZ).active()
    assert alarm["kind"] == "database_damaged"
    assert alarm["message"].startswith("Cơ sở dữ liệu bị hỏng lúc ")
    assert str(aside) in alarm["message"]
    return [alarm]


def test_a_sound_database_is_left_exactly_as_it_was(tmp_path):
    path = tmp_path / "playout.db"
    make_station_db(path, 50)
    before = digest(path)
    check = open_station_db(path, TZ)
    assert not check.damaged and check.damaged_path is None and check.alarm is None
    assert digest(path) == before
    assert not [p for p in tmp_path.iterdir() if "damaged" in p.name]
    assert open_station_db(tmp_path / "new" / "playout.db", TZ).damaged is False  # first start


def test_a_sound_database_with_its_last_commits_still_in_the_wal_is_not_damaged(tmp_path):
    path = tmp_path / "playout.db"
    rows = make_station_db(path, 20)
    # A process killed without closing: its commits live only in the -wal until the next checkpoint.
    code = (
        "import sqlite3, os, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute(\"UPDATE plays SET status='failed' WHERE id <= 5\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert (tmp_path / "playout.db-wal").stat().st_size > 0
    check = open_station_db(path, TZ)
    assert not check.damaged, check.problem
    got = plays_in(path)
    assert len(got) == len(rows)
    assert sorted(r[4] for r in got.values()).count("failed") == 5


def test_garbage_is_moved_aside_untouched_and_the_station_starts_with_an_alarm(tmp_path):
    path = tmp_path / "playout.db"
    path.write_bytes(os.urandom(50_000))
    before = digest(path)
    check = open_station_db(path, TZ)
    assert check.damaged and "not a database" in check.problem
    assert check.damaged_path.name.startswith("playout.db.damaged-")
    assert digest(check.damaged_path) == before
    assert sum(check.recovered.values()) == 0
    assert "khôi phục được 0 dòng nhật ký" in check.alarm
    assert_restarts_with_alarm(path, check.damaged_path)


def test_a_file_cut_short_mid_page_keeps_every_row_on_the_whole_pages(tmp_path):
    path = tmp_path / "playout.db"
    rows = make_station_db(path, 3000)
    size = path.stat().st_size
    os.truncate(path, size - 1000)
    before = digest(path)
    check = open_station_db(path, TZ)
    assert check.damaged and "truncated" in check.problem
    assert digest(check.damaged_path) == before
    got = plays_in(path)
    assert check.recovered["plays"] == len(got)
    assert len(rows) - 200 < len(got) <= len(rows)  # at most a page or two of rows is lost
    assert all(rows[k] == v for k, v in got.items())  # and what came back is what was written
    assert check.recovered["scripts"] == 1 and check.recovered["audit"] == 3
    assert f"khôi phục được {len(got)} dòng nhật ký phát sóng" in check.alarm
    assert_restarts_with_alarm(path, check.damaged_path)


def test_a_page_of_garbage_loses_only_the_rows_on_that_page(tmp_path):
    path = tmp_path / "playout.db"
    rows = make_station_db(path, 3000)
    earlier = Alarms(path, TZ).raise_alarm("test", "Báo động chưa xác nhận")
    leaves = leaf_pages(path, "plays")
    page, on_page = leaves[len(leaves) // 2]
    overwrite_page(path, page)
    before = digest(path)
    check = open_station_db(path, TZ)
    assert check.damaged
    assert digest(check.damaged_path) == before
    got = plays_in(path)
    assert len(got) == check.recovered["plays"] == len(rows) - on_page
    assert all(rows[k] == v for k, v in got.items())
    assert set(check.unreadable) == {"plays"}
    # The fresh file is sound, in the station's journal mode, and takes new rows.
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    # An alarm nobody had acknowledged yet came through too: the alarms table is copied like any other.
    log = AsRunLog(path, TZ)
    log.close()
    alarms = Alarms(path, TZ).active()
    assert [a["kind"] for a in alarms] == ["database_damaged", "test"] and alarms[1]["id"] == earlier
    assert str(check.damaged_path) in alarms[0]["message"]


def tree_pages(path: Path, table: str) -> tuple[int, list[int]]:
    """The table's root page and its other interior pages."""
    db = sqlite3.connect(path)
    try:
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
        inner = db.execute(
            "SELECT pageno FROM dbstat WHERE name=? AND pagetype='internal' AND pageno != ?", (table, root)
        ).fetchall()
        return root, [r[0] for r in inner]
    finally:
        db.close()


def everything_in(path: Path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(path)
    try:
        return {
            t: db.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall()
            for t in ("plays", "scripts", "audit")
        }
    finally:
        db.close()


@pytest.mark.parametrize("where", ["page 1 (the table list)", "the log's root page", "an interior page"])
def test_rows_below_a_damaged_table_list_root_or_interior_page_all_come_back(tmp_path, where):
    path = tmp_path / "playout.db"
    make_station_db(path, 10_000)  # three levels: root, interior pages, leaves
    original = everything_in(path)
    root, inner = tree_pages(path, "plays")
    assert inner
    page = {"page 1 (the table list)": 1, "the log's root page": root, "an interior page": inner[0]}[where]
    overwrite_page(path, page)
    check = open_station_db(path, TZ)
    assert check.damaged
    assert everything_in(path) == original  # every row of every table, each exactly as written
    assert check.recovered["plays"] == 10_000
    assert_restarts_with_alarm(path, check.damaged_path)


def test_commits_still_in_the_wal_come_back_when_the_main_file_is_damaged(tmp_path):
    path = tmp_path / "playout.db"
    rows = make_station_db(path, 3000)
    root, _ = tree_pages(path, "plays")  # before: the last reader to close folds the -wal back in
    # A process killed without closing: its commits live only in the -wal.
    code = (
        "import sqlite3, os, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute(\"UPDATE plays SET status='failed', error='hỏng loa' WHERE id % 10 = 0\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert (tmp_path / "playout.db-wal").stat().st_size > 0
    status, error = COLUMNS.index("status"), COLUMNS.index("error")
    expected = sorted(
        (r[:status] + ("failed",) + r[status + 1 : error] + ("hỏng loa",) + r[error + 1 :])
        if r[0] % 10 == 0
        else r
        for r in rows.values()
    )
    in_wal, _ = _wal_pages(tmp_path / "playout.db-wal")
    assert root not in in_wal and len(in_wal) > 10  # the newest copies of many leaves are in the log
    overwrite_page(path, root)  # the main file's copy of the log's root
    check = open_station_db(path, TZ)
    assert check.damaged
    db = sqlite3.connect(path)
    assert db.execute("SELECT * FROM plays ORDER BY id").fetchall() == expected
    db.close()


def test_a_garbage_wal_is_moved_aside_with_its_database(tmp_path):
    path = tmp_path / "playout.db"
    rows = make_station_db(path, 100)
    wal = tmp_path / "playout.db-wal"
    wal.write_bytes(os.urandom(8192))
    before = digest(path), digest(wal)
    check = open_station_db(path, TZ)
    assert check.damaged and "-wal" in check.problem
    aside_wal = check.damaged_path.with_name(check.damaged_path.name + "-wal")
    assert (digest(check.damaged_path), digest(aside_wal)) == before
    assert not wal.exists()
    assert plays_in(path) == rows
    assert_restarts_with_alarm(path, check.damaged_path)


def test_a_wal_left_without_its_database_is_moved_aside_not_replayed_onto_a_new_one(tmp_path):
    path = tmp_path / "playout.db"
    make_station_db(path, 20)
    code = (
        "import sqlite3, os, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute(\"UPDATE plays SET status='failed'\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    path.unlink()  # someone "reset" the station by deleting the database alone
    wal = digest(tmp_path / "playout.db-wal")
    check = open_station_db(path, TZ)
    assert check.damaged and "without its database" in check.problem
    assert digest(check.damaged_path.with_name(check.damaged_path.name + "-wal")) == wal
    log = AsRunLog(path, TZ)
    assert log.plays() == []
    log.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    assert len(Alarms(path, TZ).active()) == 1


def test_two_damages_in_the_same_second_overwrite_nothing(tmp_path):
    path = tmp_path / "playout.db"
    path.write_bytes(b"not a database at all" * 100)
    first = open_station_db(path, TZ)
    path.write_bytes(b"damaged again" * 100)
    second = open_station_db(path, TZ)
    assert first.damaged_path != second.damaged_path
    assert first.damaged_path.read_bytes() == b"not a database at all" * 100
    assert second.damaged_path.read_bytes() == b"damaged again" * 100


def test_an_alarm_stays_until_acknowledged_or_a_week_old(tmp_path):
    path = tmp_path / "playout.db"
    path.write_bytes(os.urandom(10_000))
    open_station_db(path, TZ)
    alarms = Alarms(path, TZ)
    (alarm,) = alarms.active()
    assert alarms.active(dt.datetime.now(TZ) + dt.timedelta(days=8)) == []
    assert alarms.acknowledge(alarm["id"], who="lan")
    assert not alarms.acknowledge(alarm["id"], who="lan")
    assert Alarms(path, TZ).active() == []


@pytest.mark.slow
def test_rescuing_a_year_of_logs_takes_seconds_not_minutes(tmp_path):
    path = tmp_path / "playout.db"
    rows = make_station_db(path, 100_000)
    leaves = leaf_pages(path, "plays")
    overwrite_page(path, leaves[len(leaves) // 3][0])
    t0 = time.monotonic()
    check = open_station_db(path, TZ)
    took = time.monotonic() - t0
    assert check.damaged and check.recovered["plays"] > len(rows) - 50
    assert took < 10, f"{took:.1f} s"


def test_in_service_since_is_recorded_once_and_kept(tmp_path):
    import datetime as dt

    from playout.storage import IN_SERVICE_FILE, in_service_since

    tz = dt.timezone(dt.timedelta(hours=7))
    first = in_service_since(tmp_path, tz)
    assert abs((first - dt.datetime.now(tz)).total_seconds()) < 5
    assert in_service_since(tmp_path, tz) == first  # a restart keeps the day it went into service
    # An upgraded station with a history counts from its first as-run row.
    (tmp_path / IN_SERVICE_FILE).unlink()
    history = dt.datetime(2026, 3, 2, 6, 0, tzinfo=tz)
    assert in_service_since(tmp_path, tz, earliest=history) == history
    (tmp_path / IN_SERVICE_FILE).write_text("{not json", "utf-8")  # a damaged record is written again
    assert in_service_since(tmp_path, tz).date() == dt.datetime.now(tz).date()


def test_a_database_from_before_upload_checks_opens_and_its_scripts_are_rescued(tmp_path):
    """Scripts stored before the ``checks`` column existed: the store adds the column, and if the file is
    later damaged those shorter records still find their table."""
    path = tmp_path / "playout.db"
    make_station_db(path, 50)
    db = sqlite3.connect(path)
    db.executescript(  # the scripts table as it was, with the row it had
        "CREATE TABLE old AS SELECT sha256, name, suffix, title, source, status, submitted_by, submitted_at,"
        " decided_by, decided_at, reason FROM scripts; DROP TABLE scripts; ALTER TABLE old RENAME TO scripts;"
    )
    db.close()
    store = ApprovalStore(path, path.parent / "scripts", TZ)
    (old,) = store.records()
    assert old.title == "Bản tin thử nghiệm" and old.checks is None
    store.close()
    overwrite_page(path, 1)  # the table list: rows are found by their shape alone
    check = open_station_db(path, TZ)
    assert check.damaged and check.recovered["scripts"] == 1
    store = ApprovalStore(path, path.parent / "scripts", TZ)
    (rescued,) = store.records()
    assert rescued.sha256 == old.sha256 and rescued.status == "approved" and rescued.checks is None
    store.close()
