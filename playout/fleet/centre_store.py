"""The centre's own records: every station's as-run rows, received once each, and what it knows of them.

SQLite (WAL), like the station's log.  A row is keyed by (station, row id): a station resends after any
doubt (a lost answer, a restart), and ``INSERT OR IGNORE`` makes each row count once, which is what the
province report needs (plays per ward per week against the target, missed and failed slots).
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
"""
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
