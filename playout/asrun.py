"""The as-run log: what aired, when, and whether the amplifier was keyed (SQLite, WAL).

One row per slot outcome: ``played``, ``failed``, ``interrupted``, ``skipped``, ``missed``; a row is
written as ``playing`` before the relay is keyed, so a process killed mid-play leaves evidence that the
next start turns into ``interrupted``.  Every slot has a unique key (``2026-11-21/sáng/0``), so no slot
airs twice, whatever restarts or clock steps happen in between.

    log = AsRunLog(Path("var/playout.db"))
    row = log.start(slot, bulletin)
    log.finish(row, "played", audio_end_at=...)
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

STATUSES = ("playing", "played", "failed", "interrupted", "skipped", "missed")
OUTCOMES = STATUSES[1:]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS plays (
    id INTEGER PRIMARY KEY,
    slot_key TEXT NOT NULL UNIQUE,
    window TEXT NOT NULL,
    scheduled_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('playing','played','failed','interrupted','skipped','missed')),
    bulletin_id TEXT,
    title TEXT,
    topic TEXT,
    relay_on_at TEXT,
    audio_start_at TEXT,
    audio_end_at TEXT,
    relay_off_at TEXT,
    underruns INTEGER,
    engine TEXT,
    voice TEXT,
    audio_sha256 TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plays_scheduled ON plays (scheduled_at);
CREATE INDEX IF NOT EXISTS plays_bulletin ON plays (bulletin_id, status);
"""

COLUMNS = (
    "id",
    "slot_key",
    "window",
    "scheduled_at",
    "status",
    "bulletin_id",
    "title",
    "topic",
    "relay_on_at",
    "audio_start_at",
    "audio_end_at",
    "relay_off_at",
    "underruns",
    "engine",
    "voice",
    "audio_sha256",
    "error",
    "created_at",
    "updated_at",
)
_UPDATABLE = set(COLUMNS) - {"id", "slot_key", "created_at"}


@dataclass(frozen=True)
class Slot:
    """One place in the schedule: a window on a day, the n-th play in it (or an emergency)."""

    window: str
    scheduled_at: dt.datetime
    index: int = 0

    @property
    def key(self) -> str:
        return f"{self.scheduled_at.date().isoformat()}/{self.window}/{self.index}"


def iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat(timespec="milliseconds")


class AsRunLog:
    def __init__(self, path: Path, tz: dt.tzinfo = dt.UTC):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tz = tz
        # One connection shared by the scheduler, the on-air thread and the API, behind a lock: SQLite
        # serialises writers anyway, and a Pi has no use for a pool.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL with WAL survives power cuts without losing committed rows except the last few ms.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing --------------------------------------------------------------------------------------------

    def recover(self) -> int:
        """Rows left ``playing`` by a process that died mid-play become ``interrupted``."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE plays SET status='interrupted', error=COALESCE(error, ?), updated_at=?"
                " WHERE status='playing'",
                ("the station stopped during the play (power cut, crash or kill)", iso(self.now())),
            )
        if cur.rowcount:
            logger.warning("as-run log: %d play(s) marked interrupted after an unclean stop", cur.rowcount)
        return cur.rowcount

    def has_slot(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM plays WHERE slot_key=?", (key,)).fetchone() is not None

    def start(self, slot: Slot, bulletin: Any | None = None, key: str | None = None) -> int | None:
        """Claim the slot with a ``playing`` row; None if the slot already has a row (never air twice)."""
        fields = _bulletin_fields(bulletin)
        now = iso(self.now())
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO plays (slot_key, window, scheduled_at, status, bulletin_id, title, topic,"
                    " engine, voice, audio_sha256, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        key or slot.key,
                        slot.window,
                        iso(slot.scheduled_at),
                        "playing",
                        fields["bulletin_id"],
                        fields["title"],
                        fields["topic"],
                        fields["engine"],
                        fields["voice"],
                        fields["audio_sha256"],
                        now,
                        now,
                    ),
                )
            except sqlite3.IntegrityError:
                return None
        return cur.lastrowid

    def update(self, row_id: int, **fields: Any) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown as-run columns: {sorted(unknown)}")
        values = {k: (iso(v) if isinstance(v, dt.datetime) else v) for k, v in fields.items()}
        values["updated_at"] = iso(self.now())
        assignments = ", ".join(f"{k}=?" for k in values)
        with self._lock:
            self._db.execute(f"UPDATE plays SET {assignments} WHERE id=?", (*values.values(), row_id))  # noqa: S608

    def finish(self, row_id: int, status: str, **fields: Any) -> None:
        if status not in OUTCOMES:
            raise ValueError(f"not an outcome: {status}")
        self.update(row_id, status=status, **fields)

    def record(
        self, slot: Slot, status: str, *, error: str | None = None, bulletin: Any | None = None
    ) -> bool:
        """A slot that did not air (``skipped``, ``missed``); False if the slot already has a row."""
        row = self.start(slot, bulletin)
        if row is None:
            return False
        self.finish(row, status, error=error)
        logger.info("slot %s %s%s", slot.key, status, f": {error}" if error else "")
        return True

    # -- reading --------------------------------------------------------------------------------------------

    def plays(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: Iterable[str] | None = None,
        topic: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[dict]:
        where, args = [], []
        if since is not None:
            where.append("scheduled_at >= ?")
            args.append(iso(since))
        if until is not None:
            where.append("scheduled_at < ?")
            args.append(iso(until))
        if status:
            status = list(status)
            where.append(f"status IN ({','.join('?' * len(status))})")
            args.extend(status)
        if topic:
            where.append("topic = ?")
            args.append(topic)
        sql = "SELECT * FROM plays" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY scheduled_at DESC, id DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(sql, (*args, limit, offset)).fetchall()
        return [dict(r) for r in rows]

    def play_counts(self) -> dict[str, int]:
        """How many times each bulletin has aired (rotation favours the least aired)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT bulletin_id, COUNT(*) FROM plays WHERE status='played' AND bulletin_id IS NOT NULL"
                " GROUP BY bulletin_id"
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def status_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM plays GROUP BY status").fetchall()
        return {r[0]: r[1] for r in rows}

    def total_underruns(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(underruns), 0) FROM plays").fetchone()[0])

    def last(self) -> dict | None:
        rows = self.plays(limit=1)
        return rows[0] if rows else None


def _bulletin_fields(bulletin: Any | None) -> dict[str, Any]:
    if bulletin is None:
        return dict.fromkeys(("bulletin_id", "title", "topic", "engine", "voice", "audio_sha256"))
    summary = getattr(bulletin, "summary", None) or {}
    return {
        "bulletin_id": bulletin.id,
        "title": bulletin.title,
        "topic": bulletin.topic,
        "engine": summary.get("engine"),
        "voice": summary.get("voice"),
        "audio_sha256": summary.get("audio_sha256"),
    }
