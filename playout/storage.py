"""The station's database file and the disk under it: checked at every start, rescued when damaged.

An SD card in a Pi loses power without warning and wears out; a ``playout.db`` that SQLite can no longer
read must not keep the station off the air.  Before the as-run log and the approval store open the file,
the daemon calls ``open_station_db``:

    check = open_station_db(cfg.paths.data / "playout.db", tz)
    if check.damaged:
        logger.error(check.detail)          # the alarm itself is already stored in the fresh database
    log = AsRunLog(...); approvals = ApprovalStore(...)
    ...
    Alarms(db_path, tz).active()            # health: shown until acknowledged or ALARM_DAYS old

A damaged file (not a database, truncated, pages of garbage, a garbage ``-wal``) is renamed aside as
``playout.db.damaged-20261129T062100`` with its ``-wal``/``-shm`` (renames only: nothing is ever
deleted), everything SQLite can still read is copied row by row into a fresh database, and an alarm in
Vietnamese is stored in that fresh database so the web page shows it after later restarts too.

The rescue is pure Python, in two passes: every table through SQLite, in rowid order, probing past
pages that cannot be read; then, if anything could not be read, the file's pages themselves, so rows
below a damaged root, interior page or page 1 (the table list) come back too (newest copies from the
-wal's committed frames).  The ``sqlite3`` command-line tool's ``.recover`` does the second pass too, but
it is one more package, and Debian 12's build (3.40.1) fails with "SQL logic error" even on a sound file.
The damaged file is kept byte for byte, so any tool can still be run on it by hand.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import mmap
import os
import re
import sqlite3
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from playout.atomic import atomic_write_text
from playout.errors import StorageUnavailable

logger = logging.getLogger(__name__)

STORAGE_BUSY_MESSAGE = "Cơ sở dữ liệu đang bận hoặc đầy đĩa, thử lại sau"

HEADER = b"SQLite format 3\x00"
WAL_MAGICS = (0x377F0682, 0x377F0683)
SIDECARS = ("-wal", "-shm", "-journal")
# How long a write waits for another writer (another process, a backup) before giving up: the as-run
# log then holds it in memory, an operator's action is refused with "try again".  Short: the on-air
# path writes before keying the relay and while playing, and must not stall behind a stuck writer.
BUSY_TIMEOUT_S = 2.0
# quick_check reads every page once; on a Pi's SD card that is about a second for a year of logs.  A
# check slower than this is abandoned (the file is assumed sound) rather than hold the station off air.
CHECK_BUDGET_S = 20.0
# The copy of a damaged file stops here and keeps what it has: airing matters more than the last rows.
RECOVER_BUDGET_S = 60.0
# An unacknowledged alarm stays on the health page this long, across restarts.
ALARM_DAYS = 7
# What a damaged file is called when the reason is SQLite's own error code (3.11+ exposes it).
_DAMAGE_ERRORS = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}

ALARMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    message TEXT NOT NULL,
    detail TEXT,
    acknowledged_at TEXT,
    acknowledged_by TEXT
);
"""


@dataclass(frozen=True)
class DatabaseCheck:
    """What ``open_station_db`` found and did.  ``damaged`` is False for a sound (or new) file."""

    path: Path
    checked_at: dt.datetime
    seconds: float
    damaged: bool = False
    problem: str | None = None  # English, for the log: SQLite's words or what the header check saw
    damaged_path: Path | None = None  # the damaged file, renamed aside (its -wal/-shm next to it)
    recovered: dict[str, int] = field(default_factory=dict)  # rows copied into the fresh file, per table
    unreadable: dict[str, int] = field(default_factory=dict)  # read errors skipped over, per table
    alarm: str | None = None  # Vietnamese, for the operator (also stored in the fresh database)
    alarm_stored: bool = False  # False: the fresh database could not be written (disk full?)

    @property
    def detail(self) -> str:
        if not self.damaged:
            return f"{self.path}: sound ({self.seconds:.2f} s)"
        return (
            f"{self.path} was damaged ({self.problem}); moved aside to {self.damaged_path}; recovered "
            f"{sum(self.recovered.values())} row(s) {self.recovered} in {self.seconds:.2f} s"
            + (f", skipped unreadable parts of {sorted(self.unreadable)}" if self.unreadable else "")
        )

    def as_dict(self) -> dict:
        return {
            "path": str(self.path),
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 3),
            "damaged": self.damaged,
            "problem": self.problem,
            "damaged_path": None if self.damaged_path is None else str(self.damaged_path),
            "recovered": dict(self.recovered),
            "alarm": self.alarm,
        }


# -- the check ------------------------------------------------------------------------------------------


def open_station_db(
    path: Path,
    tz: dt.tzinfo = dt.UTC,
    *,
    check_budget_s: float = CHECK_BUDGET_S,
    recover_budget_s: float = RECOVER_BUDGET_S,
) -> DatabaseCheck:
    """Check the station's database before anything opens it; move a damaged one aside and rescue it.

    Never raises for a damaged file and never deletes one.  A file that cannot be checked for other
    reasons (locked, unreadable folder) is left alone: the caller's own open reports those.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    now = dt.datetime.now(tz)
    problem = _find_damage(path, check_budget_s)
    if problem is None:
        return DatabaseCheck(path, now, time.monotonic() - t0)
    logger.error("station database %s is damaged: %s", path, problem)
    try:
        aside = _move_aside(path, now)
    except OSError as exc:
        # A read-only or failing card: nothing can be rescued here; the stores' own open reports it.
        logger.error("cannot move the damaged %s aside: %s", path, exc)
        alarm = f"Cơ sở dữ liệu bị hỏng lúc {now:%H:%M ngày %d/%m/%Y} và không cất được tệp hỏng ({exc})"
        return DatabaseCheck(path, now, time.monotonic() - t0, True, problem, alarm=alarm)
    recovered, unreadable, stored = _rebuild(aside, path, now, problem, recover_budget_s)
    seconds = time.monotonic() - t0
    alarm = alarm_text(now, aside, recovered, stored)
    check = DatabaseCheck(
        path, now, seconds, True, problem, aside, recovered, unreadable, alarm, alarm_stored=stored
    )
    logger.error("%s", check.detail)
    return check


def alarm_text(at: dt.datetime, aside: Path, recovered: dict[str, int], stored: bool = True) -> str:
    plays = recovered.get("plays", 0)
    others = sum(recovered.values()) - plays
    text = (
        f"Cơ sở dữ liệu bị hỏng lúc {at:%H:%M ngày %d/%m/%Y}; đã cất tệp hỏng tại {aside}, "
        f"khôi phục được {plays} dòng nhật ký phát sóng"
    )
    if others:
        text += f" và {others} dòng dữ liệu khác (kịch bản, duyệt)"
    if not stored:
        text += "; chưa ghi được cơ sở dữ liệu mới (đĩa đầy?), trạm chạy với cơ sở dữ liệu trống"
    return text


def _find_damage(path: Path, budget_s: float) -> str | None:
    """English description of the damage, or None for a sound, new or uncheckable file."""
    wal = _sidecar(path, "-wal")
    if not path.exists():
        if wal.exists() and wal.stat().st_size:
            # A log without its database: SQLite would replay it onto a new empty file.
            return "a -wal file without its database"
        return None
    problem = _wal_problem(wal)
    if problem is None and not (wal.exists() and wal.stat().st_size):
        # With frames still in the -wal (a checkpoint cut short by a power cut), the main file may
        # legitimately be shorter than its header says: SQLite reads those pages from the log.
        problem = _header_problem(path)
    if problem:
        return problem
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=2, isolation_level=None)
    except sqlite3.Error as exc:
        logger.warning("cannot open %s to check it: %s", path, exc)
        return None
    deadline = time.monotonic() + budget_s
    db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    try:
        rows = [r[0] for r in db.execute("PRAGMA quick_check(20)").fetchall()]
    except sqlite3.DatabaseError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name in _DAMAGE_ERRORS or name.startswith("SQLITE_IOERR") or "malformed" in str(exc):
            return f"{name or 'error'}: {exc}"
        if name == "SQLITE_INTERRUPT":
            logger.warning("checking %s took over %.0f s: assumed sound", path, budget_s)
        else:
            logger.warning("cannot check %s (%s): left as it is", path, exc)
        return None
    finally:
        db.close()
    if rows != ["ok"]:
        return "quick_check: " + "; ".join(rows)
    return None


def _header_problem(path: Path) -> str | None:
    size = path.stat().st_size
    if size == 0:
        return None  # SQLite's own empty database
    with path.open("rb") as fh:
        head = fh.read(100)
    if len(head) < 100 or not head.startswith(HEADER):
        return "file is not a database (no SQLite header)"
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"header gives an impossible page size {page_size}"
    if size % page_size:
        return f"truncated mid-page: {size} bytes is not a whole number of {page_size}-byte pages"
    (change, pages), (valid_for,) = struct.unpack(">II", head[24:32]), struct.unpack(">I", head[92:96])
    if pages and change == valid_for and pages * page_size > size:
        return f"truncated: the header counts {pages} pages, the file holds {size // page_size}"
    return None


def _wal_problem(wal: Path) -> str | None:
    """A -wal whose header is not SQLite's: whatever it held is lost, so the damage must be told."""
    try:
        with wal.open("rb") as fh:
            head = fh.read(32)
    except FileNotFoundError:
        return None
    if not head:
        return None  # an empty log is normal after a checkpoint
    return _wal_problem_bytes(head)


def _wal_problem_bytes(head: bytes) -> str | None:
    if len(head) < 32:
        return f"-wal file is {len(head)} bytes, shorter than its header"
    magic, version = struct.unpack(">II", head[:8])
    if magic not in WAL_MAGICS or version != 3007000:
        return "-wal file is not an SQLite write-ahead log (bad magic)"
    if _wal_checksum(head[:24], big_endian=bool(magic & 1)) != struct.unpack(">II", head[24:32]):
        return "-wal file header checksum does not match"
    return None


def _wal_checksum(data: bytes, *, big_endian: bool) -> tuple[int, int]:
    s0 = s1 = 0
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _move_aside(path: Path, now: dt.datetime) -> Path:
    """Rename the file and its sidecars to ``NAME.damaged-STAMP[-wal|-shm]``; returns the new main path.

    Sidecars go first: a crash between renames then leaves the damaged main file in place (found again
    at the next start), never a -wal that SQLite would replay onto a new, empty database.
    """
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")
    base = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while any(_sidecar(base, s).exists() for s in ("", *SIDECARS)):
        n += 1
        base = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in (*SIDECARS, ""):
        src = _sidecar(path, suffix)
        if src.exists():
            os.rename(src, _sidecar(base, suffix))
    _fsync_dir(path.parent)
    return base


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- the rescue -----------------------------------------------------------------------------------------


def _rebuild(
    aside: Path, path: Path, now: dt.datetime, problem: str, budget_s: float
) -> tuple[dict[str, int], dict[str, int], bool]:
    """Copy what is readable from ``aside`` into a fresh file renamed into place at ``path``."""
    tmp = path.with_name(f".{path.name}.recovering")
    for suffix in ("", *SIDECARS):
        with contextlib.suppress(FileNotFoundError):
            _sidecar(tmp, suffix).unlink()  # our own half-built copy from a run that died
    recovered: dict[str, int] = {}
    unreadable: dict[str, int] = {}
    try:
        out = sqlite3.connect(tmp, isolation_level=None)
        try:
            # Nothing in the copy is precious until it is renamed into place: build it fast.
            out.execute("PRAGMA journal_mode=OFF")
            out.execute("PRAGMA synchronous=OFF")
            out.execute("BEGIN")
            if aside.exists() and not problem.startswith("a -wal file without"):
                _copy_readable(aside, out, recovered, unreadable, budget_s)
            out.execute(ALARMS_SCHEMA)
            at = now.isoformat(timespec="milliseconds")
            out.execute(
                "INSERT INTO alarms (kind, raised_at, message, detail) VALUES (?,?,?,?)",
                (
                    "database_damaged",
                    at,
                    alarm_text(now, aside, recovered),
                    f"{problem}; moved aside to {aside}; recovered {recovered}",
                ),
            )
            out.execute("COMMIT")
            out.execute("PRAGMA journal_mode=WAL")  # the station's mode, set while nobody else has it open
        finally:
            out.close()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.rename(tmp, path)
        _fsync_dir(path.parent)
        return recovered, unreadable, True
    except (sqlite3.Error, OSError) as exc:
        logger.error("cannot build a fresh %s (%s): starting with an empty database", path, exc)
        for suffix in ("", *SIDECARS):
            with contextlib.suppress(OSError):
                _sidecar(tmp, suffix).unlink()
        return recovered, unreadable, False


def _copy_readable(
    src: Path, out: sqlite3.Connection, recovered: dict[str, int], unreadable: dict[str, int], budget_s: float
) -> None:
    """Every table through SQLite first; if any of it could not be read, the pages themselves next."""
    db = sqlite3.connect(f"{src.as_uri()}?mode=ro", uri=True, timeout=2, isolation_level=None)
    deadline = time.monotonic() + budget_s
    db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
    roots: dict[int, str] = {}
    schema: list[tuple] = []
    try:
        try:
            schema = db.execute(
                "SELECT type, name, tbl_name, sql, rootpage FROM sqlite_master WHERE sql IS NOT NULL"
                " AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            logger.error("the damaged file's table list is unreadable (%s): reading its pages", exc)
            unreadable["sqlite_master"] = 1
        for kind, name, _, sql, root in schema:
            if kind != "table":
                continue
            try:
                out.execute(sql)
            except sqlite3.Error as exc:
                logger.error("cannot recreate table %s (%s): skipped", name, exc)
                continue
            roots[root] = name
            recovered[name], errors = _copy_table(db, out, name, deadline)
            if errors:
                unreadable[name] = errors
    finally:
        db.close()
    if unreadable:
        if not roots:
            _station_schema(out)  # the table list is gone: the station's own tables, found by shape
        try:
            for name, added in _scan_pages(src, out, roots, deadline).items():
                recovered[name] = recovered.get(name, 0) + added
        except (OSError, ValueError) as exc:
            logger.error("reading the damaged file's pages failed: %s", exc)
    for kind, name, _table, sql, _root in schema:
        if kind in ("index", "trigger", "view"):
            try:
                out.execute(sql)
            except sqlite3.Error as exc:  # a unique index the recovered rows no longer satisfy
                logger.error("cannot recreate %s %s (%s): skipped", kind, name, exc)


def _station_schema(out: sqlite3.Connection) -> None:
    # Imported here: both stores import this module.
    from playout import approvals, asrun

    for script in (asrun._SCHEMA, approvals._SCHEMA, ALARMS_SCHEMA):
        for statement in script.split(";"):
            if statement.strip():
                out.execute(statement)


def _copy_table(
    db: sqlite3.Connection, out: sqlite3.Connection, table: str, deadline: float
) -> tuple[int, int]:
    """Rows in rowid order; past a page that cannot be read, probe ahead for the next readable row.

    Returns (rows copied, read errors and garbled rows skipped).  Rows on a damaged page are lost; the
    rest of the table is not.
    """
    q = _quote(table)
    try:
        names = [d[0] for d in db.execute(f"SELECT * FROM {q} LIMIT 0").description]
    except sqlite3.DatabaseError as exc:
        logger.error("table %s unreadable: %s", table, exc)
        return 0, 1
    cols = ", ".join(_quote(n) for n in names)
    # OR IGNORE: a row the damage garbled into breaking a CHECK or a UNIQUE is dropped, not fatal.
    insert = f"INSERT OR IGNORE INTO {q} (rowid, {cols}) VALUES ({', '.join('?' * (len(names) + 1))})"
    scan = f"SELECT rowid, {cols} FROM {q} WHERE rowid >= ? ORDER BY rowid"
    before = out.total_changes
    skipped = 0

    def keep(rows: list[tuple]) -> None:
        nonlocal skipped
        sound = [r for r in rows if not _garbled(r)]
        skipped += len(rows) - len(sound)
        out.executemany(insert, sound)

    resume: int | None = -(2**63)
    while resume is not None and time.monotonic() < deadline:
        batch: list[tuple] = []
        last: int | None = None  # the last row this round read
        try:
            for row in db.execute(scan, (resume,)):
                batch.append(tuple(row))
                last = row[0]
                if len(batch) >= 1000:
                    keep(batch)
                    batch.clear()
            resume = None  # read to the end
        except sqlite3.DatabaseError as exc:
            skipped += 1
            logger.warning("table %s: unreadable past rowid %s: %s", table, last, exc)
            # The module reads one row ahead: the row before the damage was read, then dropped with
            # the error.  Read it alone (LIMIT 1 does not read ahead).
            first = resume if last is None else last + 1
            try:
                rescued = [tuple(r) for r in db.execute(scan + " LIMIT 1", (first,))]
            except sqlite3.DatabaseError:
                rescued = []
            batch.extend(rescued)
            # Strictly past where this round started, so every round makes progress.
            nxt = _next_readable(db, scan, rescued[0][0] + 1 if rescued else first + 1, deadline)
            resume = nxt
        if batch:
            keep(batch)
    return out.total_changes - before, skipped


def _garbled(row: tuple) -> bool:
    """A text with NUL bytes: what SQLite reads from the zero-filled end of a file cut mid-page."""
    return any(isinstance(v, str) and "\x00" in v for v in row)


def _next_readable(db: sqlite3.Connection, scan: str, start: int, deadline: float) -> int | None:
    """A rowid >= ``start`` from which the table reads again, None if nothing past it reads.

    Gallops (start, start+1, start+2, start+4, …) to jump a damaged page or subtree in a few probes,
    then bisects back so the rows at the start of the next sound page are not skipped.
    """
    top = 2**63 - 1
    probe = scan + " LIMIT 1"  # LIMIT 1 stops without stepping past the row it reads

    def fails(k: int) -> bool:
        try:
            db.execute(probe, (k,)).fetchall()
        except sqlite3.DatabaseError:
            return True
        return False

    bad, step, k = None, 1, start
    while True:
        if time.monotonic() > deadline:
            return None
        if not fails(k):
            break
        if k >= top:
            return None
        bad, k = k, min(top, start + step)
        step *= 2
    if bad is not None:
        lo, hi = bad, k  # fails at lo, reads at hi
        while hi - lo > 1 and time.monotonic() < deadline:
            mid = (lo + hi) // 2
            if fails(mid):
                lo = mid
            else:
                hi = mid
        k = hi
    try:
        row = db.execute(probe, (k,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else row[0]


# -- reading pages the b-tree no longer reaches --------------------------------------------------------
#
# SQLite reads a table from its root page down; a damaged root, interior page or page 1 (which holds the
# table list) hides every row below it although the rows' own pages are sound.  These are read here
# straight from the file (and from the -wal's committed frames, which are newer): every table leaf page
# no sound root reaches is decoded cell by cell, and each record goes to the table whose shape it has.
# The format is SQLite's documented file format (https://sqlite.org/fileformat2.html).

_LEAF, _INTERIOR = 0x0D, 0x05
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def _scan_pages(src: Path, out: sqlite3.Connection, roots: dict[int, str], deadline: float) -> dict[str, int]:
    """Rows from table leaf pages the sound roots do not reach, added with INSERT OR IGNORE; per table."""
    with src.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return {}
        # Mapped, not read: a damaged file can be any size, and a Pi has little memory.
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _scan_mapped(data, src, out, roots, deadline)


def _scan_mapped(
    data, src: Path, out: sqlite3.Connection, roots: dict[int, str], deadline: float
) -> dict[str, int]:
    wal, wal_page_size = _wal_pages(_sidecar(src, "-wal"))
    page_size = _page_size(data) or wal_page_size or 4096
    count = max(len(data) // page_size, max(wal, default=0))
    usable = page_size - (data[20] if len(data) > 100 and data[:16] == HEADER else 0)

    def page(n: int) -> bytes:
        return wal.get(n) or data[(n - 1) * page_size : n * page_size]

    reached: set[int] = {1}  # page 1 is the table list's own
    for root in roots:
        _walk(page, root, count, reached)
    tables = _tables(out)
    inserts = {
        name: f"INSERT OR IGNORE INTO {_quote(name)} (rowid, {', '.join(_quote(c) for c, _ in cols)})"
        f" VALUES ({', '.join('?' * (len(cols) + 1))})"
        for name, cols in tables.items()
    }
    before = {name: _changes(out, name) for name in tables}
    for n in range(2, count + 1):
        if time.monotonic() > deadline:
            logger.error("reading pages: out of time at page %d of %d", n, count)
            break
        if n in reached:
            continue
        raw = page(n)
        if len(raw) < page_size or raw[0] != _LEAF:
            continue
        for rowid, values in _leaf_cells(raw, usable, page):
            name = _shape(values, tables)
            if name is None:
                continue
            # A record written before a column was added (ALTER TABLE … ADD COLUMN) is shorter.
            values = [*values, *[None] * (len(tables[name]) - len(values))]
            # The INTEGER PRIMARY KEY is stored as NULL in the record: its value is the rowid.
            values = [
                rowid if alias and v is None else v
                for v, (_, alias) in zip(values, tables[name], strict=True)
            ]
            if not _garbled(values):
                out.execute(inserts[name], (rowid, *values))
    after = {name: _changes(out, name) for name in tables}
    return {name: after[name] - before[name] for name in tables if after[name] > before[name]}


def _changes(out: sqlite3.Connection, table: str) -> int:
    return out.execute(f"SELECT COUNT(*) FROM {_quote(table)}").fetchone()[0]


def _tables(out: sqlite3.Connection) -> dict[str, list[tuple[str, bool]]]:
    """Each table's columns as (name, is the INTEGER PRIMARY KEY, which the record stores as NULL)."""
    tables = {}
    for (name,) in out.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
    ):
        info = out.execute(f"PRAGMA table_info({_quote(name)})").fetchall()
        pk = [r for r in info if r[5]]
        tables[name] = [(r[1], len(pk) == 1 and r[5] == 1 and str(r[2]).upper() == "INTEGER") for r in info]
    return tables


def _shape(values: list, tables: dict[str, list[tuple[str, bool]]]) -> str | None:
    """The table a record fits: same column count, time columns holding times.  None if unclear.

    A record one or two columns short fits a table those columns were added to later (``checks`` on
    ``scripts``), at a lower score than one that fits exactly.
    """
    best, best_score, tie = None, None, False
    for name, cols in tables.items():
        missing = len(cols) - len(values)
        if not 0 <= missing <= 2:
            continue
        score = -2 * missing
        for (col, _), v in zip(cols, values, strict=False):
            if col == "at" or col.endswith("_at"):
                score += 1 if v is None or (isinstance(v, str) and _TIME.match(v)) else -1
        if best_score is None or score > best_score:
            best, best_score, tie = name, score, False
        elif score == best_score:
            tie = True
    return None if tie else best


def _walk(page, n: int, count: int, reached: set[int]) -> None:
    """Mark the pages reachable from a table root through sound interior pages."""
    stack = [n]
    while stack:
        n = stack.pop()
        if n in reached or not 1 <= n <= count:
            continue
        raw = page(n)
        if not raw:
            continue
        if raw[0] == _LEAF:
            reached.add(n)
        elif raw[0] == _INTERIOR:
            reached.add(n)
            cells = struct.unpack_from(">H", raw, 3)[0]
            stack.append(struct.unpack_from(">I", raw, 8)[0])
            for i in range(cells):
                at = struct.unpack_from(">H", raw, 12 + 2 * i)[0]
                if at + 4 <= len(raw):
                    stack.append(struct.unpack_from(">I", raw, at)[0])


def _leaf_cells(raw: bytes, usable: int, page) -> list[tuple[int, list]]:
    """(rowid, values) of each cell on a table leaf page that decodes cleanly."""
    rows = []
    try:
        cells = struct.unpack_from(">H", raw, 3)[0]
    except struct.error:
        return rows
    for i in range(cells):
        try:
            at = struct.unpack_from(">H", raw, 8 + 2 * i)[0]
            size, at = _varint(raw, at)
            rowid, at = _varint(raw, at)
            payload = _payload(raw, at, size, usable, page)
            rows.append((rowid, _record(payload)))
        except (ValueError, IndexError, struct.error, UnicodeDecodeError):
            continue
    return rows


def _payload(raw: bytes, at: int, size: int, usable: int, page) -> bytes:
    max_local = usable - 35
    if size <= max_local:
        if at + size > len(raw):
            raise ValueError("cell runs past its page")
        return raw[at : at + size]
    min_local = (usable - 12) * 32 // 255 - 23
    local = min_local + (size - min_local) % (usable - 4)
    if local > max_local:
        local = min_local
    parts = [raw[at : at + local]]
    nxt = struct.unpack_from(">I", raw, at + local)[0]
    have = local
    seen = set()
    while have < size:
        if nxt == 0 or nxt in seen:
            raise ValueError("overflow chain broken")
        seen.add(nxt)
        over = page(nxt)
        if len(over) < usable:
            raise ValueError("overflow page missing")
        take = min(usable - 4, size - have)
        parts.append(over[4 : 4 + take])
        have += take
        nxt = struct.unpack_from(">I", over, 0)[0]
    return b"".join(parts)


def _record(payload: bytes) -> list:
    header, at = _varint(payload, 0)
    if not 1 <= header <= len(payload):
        raise ValueError("bad record header")
    types = []
    while at < header:
        t, at = _varint(payload, at)
        types.append(t)
    if at != header:
        raise ValueError("record header overruns")
    values: list = []
    for t in types:
        if t == 0:
            values.append(None)
        elif 1 <= t <= 6:
            n = (1, 2, 3, 4, 6, 8)[t - 1]
            values.append(int.from_bytes(payload[at : at + n], "big", signed=True))
            at += n
        elif t == 7:
            values.append(struct.unpack_from(">d", payload, at)[0])
            at += 8
        elif t in (8, 9):
            values.append(t - 8)
        elif t >= 12:
            n = (t - 12) // 2
            chunk = payload[at : at + n]
            values.append(bytes(chunk) if t % 2 == 0 else chunk.decode("utf-8"))
            at += n
        else:
            raise ValueError("reserved serial type")
        if at > len(payload):
            raise ValueError("record runs past its payload")
    return values


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        b = buf[at + i]
        if i == 8:
            return (value << 8) | b, at + 9
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, at + i + 1
    raise ValueError("varint")  # not reached


def _page_size(data) -> int | None:
    if len(data) < 100 or data[:16] != HEADER:
        return None
    size = struct.unpack(">H", data[16:18])[0]
    size = 65536 if size == 1 else size
    return size if size >= 512 and not size & (size - 1) else None


def _wal_pages(wal: Path) -> tuple[dict[int, bytes], int | None]:
    """The newest committed copy of each page in a -wal (frames of its current generation only)."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return {}, None
    if len(data) < 32 or _wal_problem_bytes(data[:32]):
        return {}, None
    page_size, salts = struct.unpack(">I", data[8:12])[0], data[16:24]
    pages: dict[int, bytes] = {}
    pending: dict[int, bytes] = {}
    at = 32
    while at + 24 + page_size <= len(data):
        number, commit = struct.unpack_from(">II", data, at)
        if data[at + 8 : at + 16] != salts:
            break  # a frame left over from an earlier generation of the log
        pending[number] = data[at + 24 : at + 24 + page_size]
        if commit:
            pages.update(pending)
            pending.clear()
        at += 24 + page_size
    return pages, page_size


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- alarms ---------------------------------------------------------------------------------------------


class Alarms:
    """The station's standing alarms, kept in its database so a restart does not hide them."""

    def __init__(self, path: Path, tz: dt.tzinfo = dt.UTC, *, keep_days: int = ALARM_DAYS):
        self.path = Path(path)
        self.tz = tz
        self.keep_days = keep_days

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.executescript(ALARMS_SCHEMA)
        return db

    def active(self, now: dt.datetime | None = None) -> list[dict]:
        """Unacknowledged alarms raised in the last ``keep_days`` days, newest first; [] if unreadable."""
        since = (now or dt.datetime.now(self.tz)) - dt.timedelta(days=self.keep_days)
        try:
            db = self._connect()
            try:
                rows = db.execute(
                    "SELECT * FROM alarms WHERE acknowledged_at IS NULL AND raised_at >= ?"
                    " ORDER BY raised_at DESC, id DESC",
                    (since.isoformat(timespec="milliseconds"),),
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            logger.warning("cannot read alarms: %s", exc)
            return []
        return [dict(r) for r in rows]

    def raise_alarm(self, kind: str, message: str, detail: str | None = None) -> int | None:
        """Store an alarm; None if the database cannot take it now (the caller logs it anyway)."""
        try:
            db = self._connect()
            try:
                cur = db.execute(
                    "INSERT INTO alarms (kind, raised_at, message, detail) VALUES (?,?,?,?)",
                    (kind, dt.datetime.now(self.tz).isoformat(timespec="milliseconds"), message, detail),
                )
            finally:
                db.close()
        except sqlite3.Error as exc:
            logger.warning("cannot store alarm %s: %s", kind, exc)
            return None
        return cur.lastrowid

    def acknowledge(self, alarm_id: int, who: str) -> bool:
        """Take an alarm off the health page; False if there is no such unacknowledged alarm.

        Raises StorageUnavailable (an operator's action: "try again") when the database cannot take it.
        """
        try:
            db = self._connect()
            try:
                cur = db.execute(
                    "UPDATE alarms SET acknowledged_at=?, acknowledged_by=?"
                    " WHERE id=? AND acknowledged_at IS NULL",
                    (dt.datetime.now(self.tz).isoformat(timespec="milliseconds"), who, alarm_id),
                )
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise StorageUnavailable(STORAGE_BUSY_MESSAGE, detail=str(exc)) from None
        if cur.rowcount == 1:
            logger.warning("alarm %s acknowledged by %s", alarm_id, who)
        return cur.rowcount == 1


# -- the disk -------------------------------------------------------------------------------------------

# A 3-minute bulletin is ~8.6 MB (24 kHz, 16-bit, mono): 200 MB is a couple of dozen renders, and 5 % of
# a 16-32 GB card leaves room for a week of new bulletins, logs and the journal before writes fail.
LOW_MB = 200
LOW_FRACTION = 0.05


def disk_status(path: Path, *, low_mb: float = LOW_MB, low_fraction: float = LOW_FRACTION) -> dict:
    """Free and total space where ``path`` lives; ``low`` when free < max(low_mb, low_fraction × total).

    Counts what an unprivileged process may use (root's reserved blocks excluded): the daemon's view.
    """
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return {"path": str(path), "error": str(exc), "low": True, "message": f"Không đọc được ổ đĩa: {exc}"}
    mb = 2**20
    free = st.f_bavail * st.f_frsize / mb
    total = st.f_blocks * st.f_frsize / mb
    threshold = max(float(low_mb), low_fraction * total)
    low = free < threshold
    return {
        "path": str(path),
        "free_mb": round(free, 1),
        "total_mb": round(total, 1),
        "threshold_mb": round(threshold, 1),
        "low": low,
        "message": f"Sắp hết dung lượng lưu trữ: chỉ còn {free:.0f} MB trống" if low else None,
    }


# -- in service since ---------------------------------------------------------------------------------------

IN_SERVICE_FILE = "in-service.json"


def in_service_since(data_dir: Path, tz: dt.tzinfo, earliest: dt.datetime | None = None) -> dt.datetime:
    """When this station went into service: recorded at its first start, kept across restarts.

    Windows before it are not missed and report targets start from its day.  A station that predates the
    record (an upgrade) counts from its first as-run row (``earliest``), else from now.  An unreadable or
    unwritable record costs nothing but this answer: now, without the file.
    """
    path = Path(data_dir) / IN_SERVICE_FILE
    try:
        recorded = json.loads(path.read_text("utf-8"))["since"]
        return dt.datetime.fromisoformat(recorded).astimezone(tz)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("in-service record %s unreadable (%s): writing it again", path, exc)
    since = dt.datetime.now(tz).replace(microsecond=0)
    if earliest is not None and earliest < since:
        since = earliest.astimezone(tz)
    try:
        atomic_write_text(path, json.dumps({"since": since.isoformat()}))
    except OSError as exc:
        logger.warning("cannot record when the station went into service (%s): %s", path, exc)
    return since
