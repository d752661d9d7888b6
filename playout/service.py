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
import hmac
import logging
import re
import secrets
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
    config_path: Any  # pathlib.Path | None: the schedule.yaml it runs from (None: embedded defaults)
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
    def reload_config(self) -> bool: ...


class StationService:
    """The station as the HTTP layer may use it.  Thread-safe as far as the station's parts are."""

    def __init__(self, station: StationParts):
        self._station = station
        self._auth: Authenticator | None = None
        self._auth_lock = threading.Lock()
        # First run: a station with a config file but no web account gets a one-time link that creates
        # the first admin.  Only someone who can read the station's log (the console, the journal) has it.
        self._setup_code: str | None = None
        if getattr(station, "config_path", None) is not None and not station.config.auth.accounts:
            self._setup_code = secrets.token_urlsafe(24)
            api = station.config.api
            host = "IP-CỦA-TRẠM" if api.host in ("0.0.0.0", "::") else api.host
            logger.warning(
                "no web account yet: open http://%s:%d/thiet-lap?ma=%s to create the first admin "
                "(or run: playout account add NAME --role admin)",
                host,
                api.port,
                self._setup_code,
            )

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

    # -- first run ------------------------------------------------------------------------------------

    def has_accounts(self) -> bool:
        return bool(self._station.config.auth.accounts)

    def setup_open(self, code: str) -> bool:
        """Whether ``code`` is the first-run link's and no account exists yet."""
        want = self._setup_code
        return bool(want and not self.has_accounts() and hmac.compare_digest(code.encode(), want.encode()))

    def create_first_admin(self, code: str, name: str, password: str) -> None:
        """The first-run link's form: an admin account written into schedule.yaml and put in force now.

        ValueError (Vietnamese) for a bad name or password; PlayoutError when the link is no longer valid
        or the file cannot take it.
        """
        from playout.accounts import Account, hash_password
        from playout.config_edit import add_account

        if not self.setup_open(code):
            closed = "Liên kết thiết lập không còn hiệu lực (trạm đã có tài khoản). Hãy đăng nhập."
            raise PlayoutError(closed, code="SETUP_CLOSED")
        if not re.fullmatch(r"[a-z0-9._-]{1,50}", name):
            raise ValueError("Tên đăng nhập chỉ gồm 1–50 ký tự a-z, 0-9, dấu chấm, gạch dưới, gạch ngang.")
        digest = hash_password(password)  # ValueError (Vietnamese) for a password too short or too long
        Account(name=name, password_hash=digest, roles=["admin"])
        add_account(self._station.config_path, name, digest, ["admin"])
        self._setup_code = None
        self._station.reload_config()  # the account works at once, not at the next file check
        logger.warning("first admin account %r created from the setup link", name)

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

    # -- share pages: a bulletin's public "listen again" folder (playout.export) ---------------------

    def share_root(self) -> Any:
        """Where exported share pages are kept (a ``pathlib.Path``): ``<paths.data>/share/``."""
        return self._station.config.paths.data / "share"

    def share(self, bulletin: Bulletin, who: str) -> dict:
        """Export a ready bulletin's share page (page, MP3, Opus, QR code) into ``share_root()/<slug>/``,
        replacing an older export; what was written, with the station's own addresses for each file.

        ShareRefused (409) when its audio is not ready or its QR code has no target; ShareError (500)
        when ffmpeg is missing, fails or hangs; StorageUnavailable when the disk is full.  Takes seconds
        (two encodes): an ``async`` caller runs it in a worker thread.
        """
        from playout import export  # jinja2 and the encoder settings, only when someone shares

        cfg = self._station.config
        page = export.export_bulletin(
            bulletin,
            self.share_root(),
            base_url=cfg.qr.base_url,
            station_name=cfg.qr.station_name,
            programme=cfg.bulletin.programme_name,
            tz=self._station.tz,
        )
        logger.info("share page %s exported by %s", page.slug, who)
        out = page.as_dict()
        out["url"] = f"/share/{page.slug}/"
        out["files"] = [{**f, "url": f"/share/{page.slug}/{f['name']}"} for f in out["files"]]
        return out

    def shared_file(self, slug: str, name: str) -> tuple[Any, str] | None:
        """(path, media type) of one file of an exported share page, for anyone to read; None unless
        ``slug`` belongs to a bulletin in the library now (a withdrawn bulletin's page is no longer
        served), ``name`` is one of the files an export writes, and it is a regular file (no symlink)
        right in that folder.  Nothing else under the data folder can be reached this way."""
        from playout import export

        if len(slug) > export.MAX_SLUG_CHARS or not export.SLUG_RE.fullmatch(slug):
            return None
        if name not in export.share_files(slug):
            return None
        if not any(export.share_slug(b) == slug for b in self._station.library.bulletins()):
            return None
        root = self.share_root()
        path = root / slug / name
        try:
            if (root / slug).is_symlink() or path.is_symlink() or not path.is_file():
                return None
            if path.resolve().parent != root.resolve() / slug:
                return None
        except OSError:
            return None
        return path, export.MEDIA_TYPES[path.suffix]

    # -- scripts (versions waiting for, or past, a decision) ------------------------------------------

    def scripts(self, status: str | None = None) -> list[dict]:
        """Every version (or those in ``status``); a pending one carries its preview's state."""
        out = []
        for record in self._station.approvals.records(status):
            item = record.as_dict()
            if record.status == "pending":
                item["preview"] = self._preview_state(record.sha256)
            out.append(item)
        return out

    def _preview_state(self, sha256: str) -> dict:
        preview = self._station.library.preview(sha256)
        if preview is None:
            return {"status": "pending", "error": None, "readings": []}
        summary = preview.summary or {}
        from tts.readings import readings

        return {
            # What will air, as written, and where the station's reading differs (6h00 → sáu giờ).
            "text": preview.script.body,
            "readings": readings(preview.script.body),
            "status": preview.status,
            "error": preview.error,
            "speech_s": summary.get("speech_s"),
            "repeated": summary.get("repeated"),
            "engine": summary.get("engine"),
            "warnings": summary.get("warnings", []),
        }

    def preview_audio(self, sha256: str):
        """The rendered preview of a pending version (its WAV path), or None if not (yet) there."""
        preview = self._station.library.preview(sha256)
        if preview is None or preview.status != "ready" or preview.audio_path is None:
            return None
        return preview.audio_path

    def submit(self, data: bytes, filename: str, who: str) -> dict:
        """An uploaded script, checked like every door checks it, kept as ``pending``: its record and the
        warnings an operator should read.  ScriptRejected / ScriptFileTooLarge / StorageUnavailable."""
        try:
            record, script = self._station.approvals.submit(
                data, filename, who=who, source="upload", check=self.check
            )
        except PlayoutError as exc:
            logger.info("upload of %r by %s refused: %s", filename, who, exc.code)
            raise
        checks = record.checks or {}
        warnings = list(checks.get("warnings", script.warnings))
        return {**record.as_dict(), "warnings": warnings, "new": record.is_new}

    def check(self, script) -> dict:
        """What the station finds in an arriving script (``tts.plan.arrival_checks``): ScriptTooLong refuses
        it; otherwise reading time, share of speech and warnings, kept with the version."""
        from tts import outages
        from tts.plan import arrival_checks

        config = self._station.config
        # The render workers remember an Edge outage in a file: the estimate should know it too.
        outages.use_file(config.paths.data / outages.FILE_NAME)
        return arrival_checks(config, script)

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
            from playout import export

            export.remove_share(self.share_root(), sha256)  # its public page goes with it
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
