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

import contextlib
import datetime as dt
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playout.storage import BUSY_TIMEOUT_S

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


# A replay from the main loop (every second) waits only this long: it holds the log's lock meanwhile.
FLUSH_BUSY_TIMEOUT_S = 0.1
_RECOVER_ERROR = "the station stopped during the play (power cut, crash or kill)"


class AsRunLog:
    """The as-run log.  Writes never raise into the on-air path: what cannot be written is held.

    When SQLite cannot take a write (locked by another process past ``busy_timeout_s``, disk full,
    I/O error), the write is held in memory, in call order, and every later write queues behind it so
    the order never changes; ``flush()`` (the daemon's main loop, every second) replays them in one
    transaction with the values and timestamps of the moment they happened.  ``start`` then returns a
    negative handle that ``update``/``finish`` accept like a row id.  ``has_slot``, ``play_counts``,
    ``plays``, ``last``, ``status_counts`` and ``total_underruns`` include held rows, so a held claim
    still keeps its slot from airing twice and counts in the rotation.

    Held writes are lost if the process dies while they are held (their count is logged at WARNING
    each time one is added, and ``held()`` gives it to the health page); a row then left ``playing``
    becomes ``interrupted`` at the next start, as after any unclean stop.
    """

    def __init__(self, path: Path, tz: dt.tzinfo = dt.UTC, *, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tz = tz
        self.busy_timeout_s = busy_timeout_s
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
            self._set_busy_timeout(busy_timeout_s)  # after the schema: opening may wait longer
        self._held: list[tuple[str, int | None, dict[str, Any]]] = []  # (op, row id or handle, values)
        self._rows: dict[int, dict[str, Any]] = {}  # held claims by handle: each row as it will be written
        self._overlay: dict[int, dict[str, Any]] = {}  # rows in the db: their held, unwritten values
        self._real: dict[int, int] = {}  # handle of a replayed claim → its row id
        self._next_handle = -1
        self._flush_warned = 0.0
        self._flushing = False

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def close(self) -> None:
        if self._held:
            self.flush(wait_s=self.busy_timeout_s)
        with self._lock:
            if self._held:
                logger.error(
                    "as-run log: closing with %d write(s) still held in memory: they are lost (%s)",
                    len(self._held),
                    ", ".join(sorted({str(v.get("slot_key", "")) for _, _, v in self._held} - {""})),
                )
            self._db.close()

    def _set_busy_timeout(self, seconds: float) -> None:
        self._db.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")

    # -- writing --------------------------------------------------------------------------------------------

    def recover(self) -> int:
        """Rows left ``playing`` by a process that died mid-play become ``interrupted``."""
        values = {"error": _RECOVER_ERROR, "updated_at": iso(self.now())}
        with self._lock:
            if not self._held:
                try:
                    count = self._apply("recover", None, values)
                except sqlite3.Error as exc:
                    self._hold("recover", None, values, exc)
                    return 0
                if count:
                    logger.warning("as-run log: %d play(s) marked interrupted after an unclean stop", count)
                return count
            self._hold("recover", None, values)
        return 0

    def has_slot(self, key: str) -> bool:
        with self._lock:
            if any(r["slot_key"] == key for r in self._rows.values()):
                return True
            try:
                return self._db.execute("SELECT 1 FROM plays WHERE slot_key=?", (key,)).fetchone() is not None
            except sqlite3.Error as exc:
                # Unreadable, not merely unwritable: answer from what this process claimed, and air.
                logger.error("as-run log: cannot read whether slot %s has aired: %s", key, exc)
                return False

    def start(
        self,
        slot: Slot,
        bulletin: Any | None = None,
        key: str | None = None,
        *,
        status: str = "playing",
        error: str | None = None,
    ) -> int | None:
        """Claim the slot with a ``playing`` row; None if the slot already has a row (never air twice).

        Returns the row id, or a negative handle when the row is held in memory (see the class doc).
        ``status``/``error``: a slot that will not air is claimed with its outcome in the same write, so
        no reader (the web page, the centre's outbox) ever sees a missed slot as ``playing``.
        """
        fields = _bulletin_fields(bulletin)
        if error is not None:
            fields["error"] = error
        now = iso(self.now())
        row = {
            "slot_key": key or slot.key,
            "window": slot.window,
            "scheduled_at": iso(slot.scheduled_at),
            "status": status,
            **fields,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            if any(r["slot_key"] == row["slot_key"] for r in self._rows.values()):
                return None
            error: Exception | None = None
            if not self._held:
                try:
                    return self._apply("insert", None, row)
                except sqlite3.IntegrityError:
                    return None
                except sqlite3.Error as exc:
                    error = exc
            try:
                # Reads go on while another writer holds the lock (WAL): the slot may have aired already.
                if self._db.execute("SELECT 1 FROM plays WHERE slot_key=?", (row["slot_key"],)).fetchone():
                    return None
            except sqlite3.Error:
                pass  # cannot tell: claim it; a replay that finds the key taken drops the held row
            handle = self._next_handle
            self._next_handle -= 1
            self._rows[handle] = {**dict.fromkeys(COLUMNS), **row, "id": handle}
            self._hold("insert", handle, row, error)
            return handle

    def update(self, row_id: int, **fields: Any) -> None:
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"unknown as-run columns: {sorted(unknown)}")
        values = {k: (iso(v) if isinstance(v, dt.datetime) else v) for k, v in fields.items()}
        values["updated_at"] = iso(self.now())
        with self._lock:
            row_id = self._real.get(row_id, row_id)
            if row_id < 0 and row_id not in self._rows:
                logger.error("as-run log: update of unknown held row %s dropped: %s", row_id, values)
                return
            if not self._held:
                try:
                    self._apply("update", row_id, values)
                    return
                except sqlite3.Error as exc:
                    self._hold("update", row_id, values, exc)
                    return
            self._hold("update", row_id, values)

    def finish(self, row_id: int, status: str, **fields: Any) -> None:
        if status not in OUTCOMES:
            raise ValueError(f"not an outcome: {status}")
        self.update(row_id, status=status, **fields)

    def record(
        self, slot: Slot, status: str, *, error: str | None = None, bulletin: Any | None = None
    ) -> bool:
        """A slot that did not air (``skipped``, ``missed``); False if the slot already has a row."""
        if status not in OUTCOMES:
            raise ValueError(f"not an outcome: {status}")
        if self.start(slot, bulletin, status=status, error=error) is None:
            return False
        logger.info("slot %s %s%s", slot.key, status, f": {error}" if error else "")
        return True

    def held(self) -> int:
        """Writes held in memory, not yet in the database (0 in normal operation)."""
        return len(self._held)

    def flush(self, wait_s: float = FLUSH_BUSY_TIMEOUT_S) -> int:
        """Replay the held writes in one transaction; the number written (0 if none, or not yet)."""
        if not self._held:
            return 0  # the main loop's every-second call: no lock, no SQL
        with self._lock:
            held = list(self._held)
            if not held:
                return 0
            real: dict[int, int] = {}
            dropped: set[int] = set()
            recovered = 0
            self._set_busy_timeout(wait_s)
            self._flushing = True
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for op, target, values in held:
                    if op == "insert":
                        try:
                            real[target] = self._apply("insert", None, values)
                        except sqlite3.IntegrityError:
                            # Claimed meanwhile by someone else (another process): it aired there.
                            logger.error("as-run log: held claim of %s dropped: the slot has a row", values)
                            dropped.add(target)
                        continue
                    if op == "update":
                        target = real.get(target, self._real.get(target, target))
                        if target in dropped or target < 0:
                            continue
                    try:
                        recovered += self._apply(op, target, values)
                    except sqlite3.IntegrityError as exc:  # cannot happen today; must not wedge the queue
                        logger.error("as-run log: held %s of row %s dropped: %s", op, target, exc)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                now = time.monotonic()
                if now - self._flush_warned > 60:
                    self._flush_warned = now
                    logger.warning(
                        "as-run log: still cannot write (%s); %d write(s) held in memory", exc, len(held)
                    )
                return 0
            finally:
                self._flushing = False
                self._set_busy_timeout(self.busy_timeout_s)
            self._real.update(real)
            self._held.clear()
            self._rows.clear()
            self._overlay.clear()
        logger.warning("as-run log: %d held write(s) written to the database", len(held))
        if recovered:
            logger.warning("as-run log: %d play(s) marked interrupted after an unclean stop", recovered)
        return len(held)

    def _apply(self, op: str, target: int | None, values: dict[str, Any]) -> int:
        """One write, now.  Called with the lock held; raises sqlite3.Error."""
        try:
            if op == "insert":
                cols = list(values)
                cur = self._db.execute(
                    f"INSERT INTO plays ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                    tuple(values.values()),
                )
                return cur.lastrowid
            if op == "update":
                assignments = ", ".join(f"{k}=?" for k in values)
                self._db.execute(
                    f"UPDATE plays SET {assignments} WHERE id=?",  # noqa: S608
                    (*values.values(), target),
                )
                return 0
            cur = self._db.execute(  # recover
                "UPDATE plays SET status='interrupted', error=COALESCE(error, ?), updated_at=?"
                " WHERE status='playing'",
                (values["error"], values["updated_at"]),
            )
            return cur.rowcount
        except sqlite3.Error:
            if not self._flushing:
                self._rollback()  # a failed autocommit write must not leave a transaction open
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _hold(
        self, op: str, target: int | None, values: dict[str, Any], exc: Exception | None = None
    ) -> None:
        """Queue a write (lock held); update the in-memory view the readers merge."""
        self._held.append((op, target, values))
        if op == "update" and target is not None:
            if target < 0:
                self._rows[target].update(values)
            else:
                self._overlay.setdefault(target, {}).update(values)
        logger.warning(
            "as-run log: %s held in memory (%s): %d write(s) waiting; lost if the station stops first",
            op if op != "insert" else f"claim of {values['slot_key']}",
            exc or "earlier writes are waiting",
            len(self._held),
        )

    # -- reading --------------------------------------------------------------------------------------------

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """Rows from the database (lock held); none when it cannot be read, logged."""
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            logger.error("as-run log: cannot read: %s", exc)
            return []

    def _pending(self) -> tuple[list[dict], list[dict]]:
        """(rows as in the db, the same rows as they will be) for rows with held updates, plus held rows.

        Lock held.  The first list's rows are to be taken out of any figure from the database and the
        second's put in, so readers see the log as it will be once the writes are replayed.
        """
        before: list[dict] = []
        after: list[dict] = []
        if self._overlay:
            ids = list(self._overlay)
            rows = self._read(f"SELECT * FROM plays WHERE id IN ({','.join('?' * len(ids))})", tuple(ids))  # noqa: S608
            for r in rows:
                before.append(dict(r))
                after.append({**dict(r), **self._overlay[r["id"]]})
        after.extend(dict(r) for r in self._rows.values())
        return before, after

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
            if not self._held:
                return [dict(r) for r in self._read(sql, (*args, limit, offset))]
            # Held writes: enough rows from the db that the ones held updates move out still leave
            # the page full, then the merged rows filtered, ordered and paged here.
            rows = {
                r["id"]: dict(r) for r in self._read(sql, (*args, offset + limit + len(self._overlay), 0))
            }
            before, after = self._pending()
        for r in before:
            rows.pop(r["id"], None)
        since_s, until_s = iso(since), iso(until)
        for r in after:
            if (
                (since_s is None or r["scheduled_at"] >= since_s)
                and (until_s is None or r["scheduled_at"] < until_s)
                and (not status or r["status"] in status)
                and (not topic or r["topic"] == topic)
            ):
                rows[r["id"]] = r
        # Held claims have negative handles for ids; they are the newest, so they sort as the latest.
        ordered = sorted(rows.values(), key=lambda r: (r["scheduled_at"], _order(r["id"])), reverse=True)
        return ordered[offset : offset + limit]

    def settled_after(self, after_id: int, limit: int = 200) -> list[dict]:
        """Rows written to the database with ``id > after_id``, oldest first, up to the first still
        ``playing`` (its outcome is not known yet): what a centre may be sent, each once, in order.
        Held writes (a locked database) are not in it until they are flushed."""
        with self._lock:
            rows = self._read("SELECT * FROM plays WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))
        out = []
        for r in rows:
            if r["status"] == "playing":
                break
            out.append(dict(r))
        return out

    def play_counts(self) -> dict[str, int]:
        """How many times each bulletin has aired (rotation favours the least aired)."""
        with self._lock:
            rows = self._read(
                "SELECT bulletin_id, COUNT(*) FROM plays WHERE status='played' AND bulletin_id IS NOT NULL"
                " GROUP BY bulletin_id"
            )
            before, after = self._pending()
        counts = {r[0]: r[1] for r in rows}
        for sign, group in ((-1, before), (1, after)):
            for r in group:
                if r["status"] == "played" and r["bulletin_id"] is not None:
                    counts[r["bulletin_id"]] = counts.get(r["bulletin_id"], 0) + sign
        return {k: v for k, v in counts.items() if v > 0}

    def status_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._read("SELECT status, COUNT(*) FROM plays GROUP BY status")
            before, after = self._pending()
        counts = {r[0]: r[1] for r in rows}
        for sign, group in ((-1, before), (1, after)):
            for r in group:
                counts[r["status"]] = counts.get(r["status"], 0) + sign
        return {k: v for k, v in counts.items() if v > 0}

    def total_underruns(self) -> int:
        with self._lock:
            rows = self._read("SELECT COALESCE(SUM(underruns), 0) FROM plays")
            before, after = self._pending()
        total = int(rows[0][0]) if rows else 0
        total -= sum(r["underruns"] or 0 for r in before)
        return total + sum(r["underruns"] or 0 for r in after)

    def last(self) -> dict | None:
        rows = self.plays(limit=1)
        return rows[0] if rows else None

    def earliest(self) -> dt.datetime | None:
        """When the first slot in the log was scheduled (a station's history starts there), or None."""
        with self._lock:
            rows = self._read("SELECT MIN(scheduled_at) FROM plays")
        value = rows[0][0] if rows else None
        return dt.datetime.fromisoformat(value) if value else None


def _order(row_id: int) -> int:
    """Sort key for ids: held handles (-1, -2, …) after every real id, in the order they were made."""
    return row_id if row_id >= 0 else 2**62 - row_id


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
