"""What people and programs may do with the station: the one seam between the HTTP layer and the daemon.

    playout.http (api, web, metrics) ──► StationService ──► the station (playout.daemon.Station):
                                                            library, approval store, as-run log, relay,
                                                            clock, alarms, reports

The HTTP package sees only this class (and shared leaf modules: errors, auth, qr, reports, limits), never
the daemon, the library or the as-run log, so the web front can change, or move to another process,
without reaching into the parts that keep the station on air.  Each action exists once here and both doors
(the JSON API and the web page) call it: an upload, a decision, a report reads the same from either.

Every method is synchronous and may touch SQLite or the disk: an ``async`` caller runs it in a worker
thread (``run_in_threadpool``), never on the event loop.  Refusals are ``PlayoutError``s (see
``playout.errors``); each carries its HTTP status.

    service = StationService(station)
    app = playout.http.create_app(service)

The station is given, not imported: the command line wires the parts together (``Station._start_api``),
and this module never loads ``playout.daemon``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from playout import qr
from playout.asrun import OUTCOMES, STATUSES
from playout.auth import Authenticator, load_or_create_secret
from playout.errors import PlayoutError

if TYPE_CHECKING:
    from playout.config import StationConfig
    from playout.library import Bulletin
    from playout.reports import Report

__all__ = ["BULLETIN_STATES", "DECISIONS", "PLAY_STATUSES", "PUBLIC_HEALTH", "StationParts", "StationService"]

logger = logging.getLogger(__name__)

#: The as-run log's row states, for filters (``playing`` plus every outcome).
PLAY_STATUSES: tuple[str, ...] = STATUSES
#: The library's render states, in pipeline order.
BULLETIN_STATES = ("pending", "rendering", "ready", "failed")
#: What anyone may read of the health, without a role.
PUBLIC_HEALTH = ("status", "version", "time")
DECISIONS = ("approve", "reject", "withdraw")

Decision = Literal["approve", "reject", "withdraw"]


class StationParts(Protocol):
    """What the service reads and calls on the station (``playout.daemon.Station`` is the real one; tests
    may pass anything with these)."""

    config: StationConfig
    tz: dt.tzinfo
    library: Any  # playout.library.Library
    approvals: Any  # playout.approvals.ApprovalStore
    log: Any  # playout.asrun.AsRunLog
    relay: Any  # gpio.Relay

    @property
    def clock_synced(self) -> bool | None: ...

    def now(self) -> dt.datetime: ...
    def health(self) -> dict: ...
    def problems(self) -> list[dict]: ...
    def next_slot(self) -> tuple[str, dt.datetime] | None: ...
    def upcoming(self, days: int = 14) -> list[dict]: ...
    def report(self, kind: str, year: int, number: int) -> Report: ...
    def play_now(self, bulletin: Bulletin, who: str) -> str: ...
    def stop_playback(self, reason: str) -> bool: ...
    def confirm_clock(self, who: str) -> dict: ...
    def acknowledge_alarm(self, alarm_id: int, who: str) -> bool: ...
    def wake_library(self) -> None: ...


class StationService:
    """The station as the HTTP layer may use it.  Thread-safe as far as the station's parts are."""

    def __init__(self, station: StationParts):
        self._station = station
        self._auth: Authenticator | None = None
        self._auth_lock = threading.Lock()

    # -- who may do what ------------------------------------------------------------------------------

    @property
    def authenticator(self) -> Authenticator:
        """Accounts, tokens and sessions from ``schedule.yaml``'s ``auth:``; the signing secret is read (or
        created) the first time, so an unreadable one stops the app being built, not a request."""
        with self._auth_lock:
            if self._auth is None:
                cfg = self._station.config
                secret = load_or_create_secret(cfg.auth.secret_file or cfg.paths.data / "auth.secret")
                self._auth = Authenticator(cfg.auth, secret, revoked_file=cfg.paths.data / "auth.revoked")
            return self._auth

    # -- time -----------------------------------------------------------------------------------------

    @property
    def tz(self) -> dt.tzinfo:
        return self._station.tz

    def now(self) -> dt.datetime:
        return self._station.now()

    # -- bulletins (the library: what can air) -------------------------------------------------------

    def bulletins(self) -> list[dict]:
        """Every bulletin in the library, as both the API and the web page list them."""
        tz = self._station.tz
        return [
            {
                "id": b.id,
                "name": b.script.name,
                "title": b.title,
                "topic": b.topic,
                "priority": b.priority,
                "department": b.script.meta.department,
                "status": b.status,
                "error": b.error,
                "approved_at": b.approved_at.astimezone(tz).isoformat(timespec="seconds"),
                "duration_s": b.summary.get("duration_s"),
                "engine": b.summary.get("engine"),
                "voice": b.summary.get("voice"),
                "warnings": b.summary.get("warnings", []),
                "has_link": self._has_link(b),
            }
            for b in self._station.library.bulletins()
        ]

    def bulletin(self, bulletin_id: str) -> Bulletin | None:
        """The library's bulletin with this id, or None."""
        return next((b for b in self._station.library.bulletins() if b.id == bulletin_id), None)

    def link(self, bulletin: Bulletin) -> str:
        """The bulletin's QR link (its ``link:``, or the station's base URL); ValueError if it has none."""
        return qr.bulletin_link(bulletin, self._station.config.qr.base_url)

    def poster(self, bulletin: Bulletin) -> str:
        """The A5 poster (HTML) for a bulletin; ValueError if it has no link."""
        cfg = self._station.config
        return qr.poster_html(
            bulletin,
            self.link(bulletin),
            station_name=cfg.qr.station_name,
            programme=cfg.bulletin.programme_name,
        )

    def _has_link(self, bulletin: Bulletin) -> bool:
        try:
            return bool(self.link(bulletin))
        except ValueError:
            return False

    def play_now(self, bulletin: Bulletin, who: str) -> str:
        """Air a ready bulletin at once, outside the windows; the slot's key (in the audit trail)."""
        return self._station.play_now(bulletin, who)

    # -- scripts (versions waiting for, or past, a decision) ------------------------------------------

    def scripts(self, status: str | None = None) -> list[dict]:
        return [r.as_dict() for r in self._station.approvals.records(status)]

    def submit(self, data: bytes, filename: str, who: str) -> dict:
        """An uploaded script, checked like every door checks it, kept as ``pending``: its record and the
        warnings an operator should read.  ScriptRejected / ScriptFileTooLarge / StorageUnavailable."""
        try:
            record, script = self._station.approvals.submit(data, filename, who=who, source="upload")
        except PlayoutError as exc:
            logger.info("upload of %r by %s refused: %s", filename, who, exc.code)
            raise
        return {**record.as_dict(), "warnings": list(script.warnings)}

    def decide(self, action: Decision, sha256: str, who: str, reason: str = "") -> dict:
        """Approve, reject (with a reason for the sender) or withdraw exactly this version.

        BulletinNotFound, BulletinStateConflict or StorageUnavailable when it cannot; on success the
        library is woken, so an approved bulletin is read now and not at the next rescan.
        """
        store = self._station.approvals
        if action == "approve":
            record = store.approve(sha256, who=who)
        elif action == "reject":
            record = store.reject(sha256, who=who, reason=reason)
        elif action == "withdraw":
            record = store.withdraw(sha256, who=who)
        else:
            raise ValueError(f"not a decision: {action!r}")
        self._station.wake_library()
        return record.as_dict()

    def audit(self, limit: int = 200) -> list[dict]:
        return self._station.approvals.audit(limit)

    # -- on air ---------------------------------------------------------------------------------------

    def upcoming(self, days: int = 14) -> list[dict]:
        """The coming slots and the bulletin each will air (the daemon's own rotation, run forward)."""
        return self._station.upcoming(days)

    def stop(self, who: str) -> bool:
        """Cut the bulletin on air (the relay is unkeyed by the on-air sequence); False if none was."""
        return self._station.stop_playback(f"dừng bởi {who}")

    def relay_off(self, who: str) -> bool:
        """Stop whatever plays and unkey the amplifier now; whether the relay is (still) on afterwards."""
        self._station.stop_playback(f"tắt rơ-le bởi {who}")
        self._station.relay.off()
        return self._station.relay.is_on

    # -- as-run log and reports -----------------------------------------------------------------------

    def plays(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: Sequence[str] | None = None,
        topic: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict]:
        """Rows of the as-run log, newest first."""
        return self._station.log.plays(
            since=since, until=until, status=status, topic=topic, limit=limit, offset=offset
        )

    def report(self, kind: str, year: int, number: int) -> Report:
        """The monthly or quarterly report (ValueError for a period that does not exist)."""
        return self._station.report(kind, year, number)

    # -- health ---------------------------------------------------------------------------------------

    def health(self, *, full: bool = True) -> dict:
        """The station's state; without ``full``, only what anyone on the LAN may see."""
        state = self._station.health()
        return state if full else {k: state[k] for k in PUBLIC_HEALTH}

    def confirm_clock(self, who: str) -> dict:
        """A technician vouches for the time shown: scheduled slots air again until the next boot."""
        return self._station.confirm_clock(who)

    def acknowledge_alarm(self, alarm_id: int, who: str) -> bool:
        """Take a storage alarm off the health page; False if there is no such unacknowledged alarm."""
        return self._station.acknowledge_alarm(alarm_id, who)

    # -- readings for Prometheus ----------------------------------------------------------------------

    def relay_on(self) -> bool:
        return bool(self._station.relay.is_on)

    def slot_counts(self) -> dict[str, int]:
        """How many slots ended in each outcome, every outcome present (zero when none did)."""
        counts = self._station.log.status_counts()
        return {status: counts.get(status, 0) for status in OUTCOMES}

    def underruns(self) -> int:
        return self._station.log.total_underruns()

    def bulletin_counts(self) -> dict[str, int]:
        """Bulletins in the library by render state, every state present."""
        by_status = dict.fromkeys(BULLETIN_STATES, 0)
        for b in self._station.library.bulletins():
            if b.status in by_status:
                by_status[b.status] += 1
        return by_status

    def clock_synced(self) -> bool | None:
        return self._station.clock_synced

    def next_slot(self) -> tuple[str, dt.datetime] | None:
        return self._station.next_slot()

    def problems(self) -> list[dict]:
        return self._station.problems()
