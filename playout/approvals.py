"""Approval of scripts, pinned to their content (SQLite, the station's database).

Three doors, one code path: an upload (``POST /api/bulletins``), a file in ``bulletins/inbox/`` (both
wait as ``pending``), or a file in ``bulletins/approved/`` (a trusted drop on the Pi itself, recorded as
approved by the local operator and handled by the library directly).  Every version is identified by the
SHA-256 of its bytes and stored as an immutable copy (``var/scripts/SHA.ext``): what was approved is
exactly what airs.  Editing a script makes a new pending version; the approved one keeps airing until the
new one is approved, which then supersedes it.  Every action is in the audit trail with who and which hash.

    store = ApprovalStore(Path("var/playout.db"), Path("var/scripts"), tz)
    record = store.submit(data, "tin.md", who="hoa", source="upload")
    store.approve(record.sha256, who="lan")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from playout.atomic import atomic_write_bytes
from playout.errors import (
    ApprovalError as ApprovalError,  # lives in the one error tree now; importable from here as before
)
from playout.errors import BulletinNotFound, BulletinStateConflict, ScriptFileTooLarge, StorageUnavailable
from playout.intake import MAX_SCRIPT_BYTES, Script, parse_script
from playout.storage import BUSY_TIMEOUT_S, STORAGE_BUSY_MESSAGE

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scripts (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    suffix TEXT NOT NULL,
    title TEXT,
    source TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','withdrawn','superseded')),
    submitted_by TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT,
    reason TEXT,
    checks TEXT
);
CREATE INDEX IF NOT EXISTS scripts_name ON scripts (name, status);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    name TEXT,
    detail TEXT
);
"""


@dataclass(frozen=True)
class ScriptRecord:
    sha256: str
    name: str
    suffix: str
    title: str | None
    source: str
    status: str
    submitted_by: str
    submitted_at: str
    decided_by: str | None
    decided_at: str | None
    reason: str | None
    #: What the station found when the script arrived (``StationService.check``): reading time, how much
    #: of the bulletin is speech, warnings.  JSON in the database; None for versions from before.
    checks: dict | None = None
    #: This call stored it (False: the same content was sent before, and this is its record).
    is_new: bool = field(default=False, compare=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "is_new"}

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ScriptRecord:
        values = dict(row)
        raw = values.pop("checks", None)
        try:
            checks = json.loads(raw) if raw else None
        except ValueError:
            checks = None
        return cls(**values, checks=checks if isinstance(checks, dict) else None)


class ApprovalStore:
    def __init__(self, db_path: Path, folder: Path, tz: dt.tzinfo = dt.UTC):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tz = tz
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(scripts)")}
            if "checks" not in columns:  # a database from before upload checks were kept
                self._db.execute("ALTER TABLE scripts ADD COLUMN checks TEXT")
            # Every write is an operator's action waiting on an HTTP answer: refuse it with "try again"
            # after a short wait rather than hang the request (and the API thread) behind a stuck writer.
            self._db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _now(self) -> str:
        return dt.datetime.now(self.tz).isoformat(timespec="milliseconds")

    def path_of(self, record: ScriptRecord) -> Path:
        return self.folder / f"{record.sha256}{record.suffix}"

    # -- the doors ------------------------------------------------------------------------------------------

    def submit(
        self,
        data: bytes,
        filename: str,
        *,
        who: str,
        source: str,
        check: Callable[[Script], dict] | None = None,
    ) -> tuple[ScriptRecord, Script]:
        """Check a script like every door does and keep it as ``pending``; the same bytes twice are one.

        ``check`` looks at the parsed script before anything is stored: it raises to refuse it (a script
        too long for the bulletin is refused here, with the words to cut, never approved and then failed)
        or returns what to keep with the version (reading time, warnings).
        """
        if len(data) > MAX_SCRIPT_BYTES:
            raise ScriptFileTooLarge("Tệp quá lớn (tối đa 1 MB)", filename=filename)
        script = parse_script(data, filename)  # raises ScriptRejected with the operator's message
        suffix = Path(script.name).suffix.lower()
        existing = self.get(script.content_sha256)
        if existing is not None:
            return existing, script
        checks = check(script) if check is not None else None
        try:
            atomic_write_bytes(self.folder / f"{script.content_sha256}{suffix}", data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
                raise
            raise StorageUnavailable(STORAGE_BUSY_MESSAGE, detail=f"storing the script: {exc}") from None
        now = self._now()
        self._write(
            (
                "INSERT INTO scripts (sha256, name, suffix, title, source, status, submitted_by,"
                " submitted_at, checks) VALUES (?,?,?,?,?,'pending',?,?,?)",
                (
                    script.content_sha256,
                    script.name,
                    suffix,
                    script.display_title,
                    source,
                    who,
                    now,
                    json.dumps(checks, ensure_ascii=False) if checks is not None else None,
                ),
            ),
            self._audit_row(who, "submit", script.content_sha256, script.name, source),
        )
        logger.info(
            "script %s (%s) submitted by %s via %s", script.name, script.content_sha256[:12], who, source
        )
        return replace(self.get(script.content_sha256), is_new=True), script

    # -- decisions ------------------------------------------------------------------------------------------

    def approve(self, sha256: str, *, who: str) -> ScriptRecord:
        record = self._require(sha256, allowed=("pending", "rejected", "withdrawn"), action="duyệt")
        now = self._now()
        # One transaction: a supersede without its approval would leave nothing of this script on air.
        self._write(
            # The newly approved version replaces older approved versions of the same script name.
            (
                "UPDATE scripts SET status='superseded', decided_at=?, reason=?"
                " WHERE name=? AND status='approved'",
                (now, f"thay bằng bản {sha256[:12]}", record.name),
            ),
            (
                "UPDATE scripts SET status='approved', decided_by=?, decided_at=?, reason=NULL"
                " WHERE sha256=?",
                (who, now, sha256),
            ),
            self._audit_row(who, "approve", sha256, record.name),
        )
        return self.get(sha256)

    def reject(self, sha256: str, *, who: str, reason: str) -> ScriptRecord:
        record = self._require(sha256, allowed=("pending",), action="từ chối")
        self._decide(
            sha256, "rejected", who, reason, self._audit_row(who, "reject", sha256, record.name, reason)
        )
        return self.get(sha256)

    def withdraw(self, sha256: str, *, who: str) -> ScriptRecord:
        record = self._require(sha256, allowed=("pending", "approved"), action="rút")
        self._decide(sha256, "withdrawn", who, None, self._audit_row(who, "withdraw", sha256, record.name))
        return self.get(sha256)

    def _decide(self, sha256: str, status: str, who: str, reason: str | None, audit: tuple) -> None:
        self._write(
            (
                "UPDATE scripts SET status=?, decided_by=?, decided_at=?, reason=? WHERE sha256=?",
                (status, who, self._now(), reason, sha256),
            ),
            audit,
        )

    def _require(self, sha256: str, *, allowed: tuple[str, ...], action: str) -> ScriptRecord:
        record = self.get(sha256)
        if record is None:
            raise BulletinNotFound("Không có bản tin này")
        if record.status not in allowed:
            raise BulletinStateConflict(f"Không thể {action} bản tin đang ở trạng thái “{record.status}”")
        return record

    # -- reading --------------------------------------------------------------------------------------------

    def get(self, sha256: str) -> ScriptRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM scripts WHERE sha256=?", (sha256,)).fetchone()
        return ScriptRecord.from_row(row) if row else None

    def records(self, status: str | None = None) -> list[ScriptRecord]:
        sql, args = "SELECT * FROM scripts", ()
        if status:
            sql, args = sql + " WHERE status=?", (status,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY submitted_at DESC", args).fetchall()
        return [ScriptRecord.from_row(r) for r in rows]

    def audit(self, limit: int = 200) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]

    def record_action(
        self, who: str, action: str, sha256: str, name: str | None, detail: str | None = None
    ) -> None:
        """Put an action on a bulletin (play now, …) in the audit trail; StorageUnavailable if it cannot."""
        self._write(self._audit_row(who, action, sha256, name, detail))

    def _audit_row(
        self, who: str, action: str, sha256: str, name: str | None, detail: str | None = None
    ) -> tuple[str, tuple]:
        return (
            "INSERT INTO audit (at, who, action, sha256, name, detail) VALUES (?,?,?,?,?,?)",
            (self._now(), who, action, sha256, name, detail),
        )

    def _write(self, *statements: tuple[str, tuple]) -> None:
        """All the statements or none; StorageUnavailable when the database cannot take them now."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for sql, args in statements:
                    self._db.execute(sql, args)
                self._db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._rollback()
                raise
            except sqlite3.Error as exc:
                self._rollback()
                logger.warning("approvals: write refused, database unavailable: %s", exc)
                raise StorageUnavailable(STORAGE_BUSY_MESSAGE, detail=str(exc)) from None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
