"""The centre's own records: every station's as-run rows, the desk's bulletins, and the audit trail.

SQLite (WAL), like the station's log.  A row is keyed by (station, row id): a station resends after any
doubt (a lost answer, a restart), and ``INSERT OR IGNORE`` makes each row count once, which is what the
province report needs (plays per ward per week against the target, missed and failed slots).

``bulletins`` is the desk's register: every script uploaded (pending), approved and signed (published),
rejected or withdrawn, with its targeting and the hash its approval is pinned to.  Bulletins published
from the CLI or the API are registered too, so the report can name each play's department.
``audit`` is append-only: who did what to which bulletin or account, and when.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS asrun (
    station TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    scheduled_at TEXT NOT NULL,
    scheduled_utc TEXT NOT NULL,  -- stations write their own offset: ranges compare in UTC
    status TEXT NOT NULL,
    bulletin_id TEXT,
    title TEXT,
    topic TEXT,
    relay_on_at TEXT,
    relay_off_at TEXT,
    error TEXT,
    row TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (station, row_id)
);
CREATE INDEX IF NOT EXISTS asrun_scheduled ON asrun (scheduled_utc);
CREATE TABLE IF NOT EXISTS bulletins (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,        -- of the script's UTF-8 bytes: what is approved, signed and aired
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    wards TEXT NOT NULL,         -- JSON list of station ids
    level TEXT NOT NULL,         -- thuong, uu_tien, khan_cap
    air_from TEXT NOT NULL,      -- ISO 8601 with offset
    air_until TEXT NOT NULL,
    department TEXT,
    filename TEXT,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    status TEXT NOT NULL,        -- pending, published, rejected, withdrawn
    decided_by TEXT,
    decided_at TEXT,
    reason TEXT,
    target TEXT,                 -- the TUF target path once published
    station_sha TEXT             -- sha256 of the file as a station stores it: its as-run bulletin_id
);
CREATE INDEX IF NOT EXISTS bulletins_status ON bulletins (status, id);
CREATE INDEX IF NOT EXISTS bulletins_station_sha ON bulletins (station_sha);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT,
    address TEXT
);
"""
#: The columns of a bulletin row as the desk returns them (wards decoded).
BULLETIN_COLUMNS = (
    "id", "sha256", "title", "body", "wards", "level", "air_from", "air_until", "department", "filename",
    "uploaded_by", "uploaded_at", "status", "decided_by", "decided_at", "reason", "target", "station_sha",
)  # fmt: skip
#: Plays of content the station approved itself (no centre bulletin matches) are counted under this.
LOCAL_DEPARTMENT = "Nội dung của phường"
#: What one row may carry, at most: a station cannot fill the centre's disk through the outbox.
MAX_ROW_BYTES = 8192


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds")


class CentreStore:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_rows(self, station: str, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Store a station's rows; (rows new to the centre, the highest row id now held from the batch).

        ValueError for a malformed row (the whole batch is refused: the station will resend it)."""
        clean = []
        for r in rows:
            if not isinstance(r, dict) or not isinstance(r.get("id"), int) or r["id"] < 1:
                raise ValueError("row without a positive integer id")
            if not isinstance(r.get("scheduled_at"), str) or not isinstance(r.get("status"), str):
                raise ValueError(f"row {r.get('id')}: scheduled_at and status are required")
            when = dt.datetime.fromisoformat(r["scheduled_at"])
            if when.tzinfo is None:
                raise ValueError(f"row {r['id']}: scheduled_at has no UTC offset")
            text = json.dumps(r, ensure_ascii=False, sort_keys=True)
            if len(text.encode("utf-8")) > MAX_ROW_BYTES:
                raise ValueError(f"row {r['id']}: larger than {MAX_ROW_BYTES} bytes")
            clean.append((r, text, _utc(when)))
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        added = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for r, text, utc in clean:
                    cur = self._db.execute(
                        "INSERT OR IGNORE INTO asrun (station, row_id, scheduled_at, scheduled_utc, status,"
                        " bulletin_id, title, topic, relay_on_at, relay_off_at, error, row, received_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            station, r["id"], r["scheduled_at"], utc, r["status"], r.get("bulletin_id"),
                            r.get("title"), r.get("topic"), r.get("relay_on_at"), r.get("relay_off_at"),
                            r.get("error"), text, now,
                        ),
                    )  # fmt: skip
                    added += cur.rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added, max((r["id"] for r, _, _ in clean), default=0)

    def rows(self, station: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM asrun", ()
        if station is not None:
            sql, args = sql + " WHERE station = ?", (station,)
        with self._lock:
            return [dict(r) for r in self._db.execute(sql + " ORDER BY station, row_id", args)]

    def last_plays(self) -> dict[str, dict]:
        """Each station's latest row (by schedule)."""
        out: dict[str, dict] = {}
        with self._lock:
            for r in self._db.execute(
                "SELECT a.* FROM asrun a JOIN (SELECT station, MAX(scheduled_utc) m FROM asrun"
                " GROUP BY station) b ON a.station = b.station AND a.scheduled_utc = b.m"
            ):
                out[r["station"]] = dict(r)
        return out

    def weekly_report(self, since: dt.datetime, until: dt.datetime, target_per_week: int = 12) -> list[dict]:
        """Per station: plays, failed, missed, interrupted in [since, until), and the weekly target met."""
        weeks = max(1.0, (until - since).total_seconds() / (7 * 86400))
        with self._lock:
            rows = self._db.execute(
                "SELECT station, status, COUNT(*) n FROM asrun WHERE scheduled_utc >= ? AND scheduled_utc < ?"
                " GROUP BY station, status",
                (_utc(since), _utc(until)),
            ).fetchall()
        per: dict[str, dict] = {}
        for r in rows:
            entry = per.setdefault(r["station"], {"station": r["station"], "played": 0, "failed": 0,
                                                   "missed": 0, "interrupted": 0, "skipped": 0})  # fmt: skip
            if r["status"] in entry:
                entry[r["status"]] += r["n"]
        target = round(target_per_week * weeks)
        for entry in per.values():
            entry["target"] = target
            entry["target_met"] = entry["played"] >= target
        return sorted(per.values(), key=lambda e: e["station"])

    # -- the desk's register ---------------------------------------------------------------------------

    @staticmethod
    def _bulletin(row: sqlite3.Row | None) -> dict | None:
        if row is None:
            return None
        out = dict(row)
        out["wards"] = json.loads(out["wards"])
        return out

    def add_bulletin(self, fields: dict[str, Any], *, status: str = "pending") -> int:
        """Register a bulletin (``fields`` named as the table's columns); its id."""
        values = {**fields, "status": status, "wards": json.dumps(list(fields["wards"]), ensure_ascii=False)}
        values.setdefault("uploaded_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        cols = [c for c in BULLETIN_COLUMNS if c in values and c != "id"]
        with self._lock:
            cur = self._db.execute(
                f"INSERT INTO bulletins ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [values[c] for c in cols],
            )
            return int(cur.lastrowid)

    def bulletin(self, bulletin_id: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM bulletins WHERE id = ?", (bulletin_id,)).fetchone()
        return self._bulletin(row)

    def bulletins(self, status: str | None = None, *, limit: int = 200) -> list[dict]:
        """Newest first."""
        sql, args = "SELECT * FROM bulletins", ()
        if status is not None:
            sql, args = sql + " WHERE status = ?", (status,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [self._bulletin(r) for r in rows]

    def published_by_target(self, target: str) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM bulletins WHERE target = ? AND status = 'published' ORDER BY id DESC LIMIT 1",
                (target,),
            ).fetchone()
        return self._bulletin(row)

    def decide(self, bulletin_id: int, expected: str, status: str, who: str, **fields: Any) -> bool:
        """Move a bulletin from ``expected`` to ``status`` (compare-and-set: two approvers clicking at once
        decide it once); False when it was no longer ``expected``."""
        sets = {"status": status, "decided_by": who,
                "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **fields}  # fmt: skip
        unknown = set(sets) - set(BULLETIN_COLUMNS)
        if unknown:
            raise ValueError(f"unknown bulletin fields: {sorted(unknown)}")
        with self._lock:
            cur = self._db.execute(
                f"UPDATE bulletins SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ? AND status = ?",
                (*sets.values(), bulletin_id, expected),
            )
            return cur.rowcount == 1

    # -- the audit trail -------------------------------------------------------------------------------

    def audit(self, who: str, action: str, subject: str | None = None, detail: str | None = None,
              address: str | None = None) -> None:  # fmt: skip
        with self._lock:
            self._db.execute(
                "INSERT INTO audit (at, who, action, subject, detail, address) VALUES (?,?,?,?,?,?)",
                (dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), who, action, subject,
                 (detail or "")[:1000] or None, address),
            )  # fmt: skip

    def audit_rows(self, *, limit: int = 200, before: int | None = None) -> list[dict]:
        """Newest first; ``before`` pages back from an id."""
        sql, args = "SELECT * FROM audit", ()
        if before is not None:
            sql, args = sql + " WHERE id < ?", (before,)
        with self._lock:
            return [dict(r) for r in self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))]

    def department_report(self, since: dt.datetime, until: dt.datetime) -> list[dict]:
        """Plays in [since, until) per department of the content aired: centre bulletins by their
        department, the wards' own content under LOCAL_DEPARTMENT."""
        with self._lock:
            rows = self._db.execute(
                "SELECT COALESCE(b.department, CASE WHEN b.id IS NULL THEN ? ELSE '' END) dep,"
                " COUNT(*) plays, COUNT(DISTINCT a.station) stations, COUNT(DISTINCT a.bulletin_id) items"
                " FROM asrun a LEFT JOIN (SELECT station_sha, MAX(id) id, department FROM bulletins"
                "  WHERE station_sha IS NOT NULL GROUP BY station_sha) b ON b.station_sha = a.bulletin_id"
                " WHERE a.status = 'played' AND a.scheduled_utc >= ? AND a.scheduled_utc < ?"
                " GROUP BY dep ORDER BY plays DESC, dep",
                (LOCAL_DEPARTMENT, _utc(since), _utc(until)),
            ).fetchall()
        return [
            {"department": r["dep"] or "Không ghi đơn vị", "plays": r["plays"], "stations": r["stations"],
             "bulletins": r["items"]}
            for r in rows
        ]  # fmt: skip
