"""The centre's desk: what its web pages, API and CLI decide, in one place (no FastAPI here).

A bulletin's way through the desk, with the station's roles (``playout.auth.PERMISSIONS``)::

    operator ── upload (file or typed text, targeting) ──► pending ──┬─ approver: approve ──► published
                                                                    └─ approver: reject (reason)
    published ── operator or approver: withdraw ──► withdrawn

Approval is pinned to the content: the approve form carries the SHA-256 the approver was shown, and the
desk signs only if the stored script still has that hash; the TUF target it publishes carries the same
hash, so a station airs exactly the bytes that were approved.  The approver signs with their own
delegated TUF key (the centre holds it for them; a login whose name has no delegation cannot approve),
and every step is written to the audit table with who, when and from which address.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from playout.errors import PlayoutError
from playout.fleet import LEVELS
from playout.fleet.centre_store import CentreStore

logger = logging.getLogger(__name__)

LEVELS_VI = {"thuong": "Thông thường", "uu_tien": "Ưu tiên", "khan_cap": "Khẩn cấp"}
STATUS_VI = {"pending": "chờ duyệt", "approving": "đang ký", "published": "đã phát hành",
             "rejected": "bị từ chối", "withdrawn": "đã rút"}  # fmt: skip
#: How long a bulletin stays on air when the desk is not told (an emergency is news for hours, not weeks).
DEFAULT_AIR_DAYS = {"thuong": 7, "uu_tien": 7}
DEFAULT_EMERGENCY_HOURS = 6
#: A reason is for a person to read, not a document.
MAX_REASON_CHARS = 500
MAX_DEPARTMENT_CHARS = 200


class DeskError(PlayoutError):
    code = "DESK_REFUSED"
    http_status = 422


class BulletinNotFound(DeskError):
    code = "BULLETIN_NOT_FOUND"
    http_status = 404

    def __init__(self, bulletin_id: object):
        super().__init__(f"Không có bản tin số {bulletin_id}", bulletin=str(bulletin_id))


class BulletinChanged(DeskError):
    """The approver approved a version they were shown; the stored one is not it."""

    code = "BULLETIN_CHANGED"
    http_status = 409

    def __init__(self):
        super().__init__(
            "Nội dung bản tin đã khác với bản anh/chị được xem. Hãy mở lại bản tin và duyệt lại."
        )


class BulletinDecided(DeskError):
    code = "BULLETIN_ALREADY_DECIDED"
    http_status = 409

    def __init__(self, status: str):
        super().__init__(f"Bản tin này đã {STATUS_VI.get(status, status)}; không thể làm lại thao tác này.")


class NoSigningKey(DeskError):
    code = "APPROVER_KEY_MISSING"
    http_status = 403

    def __init__(self, name: str):
        super().__init__(
            f"Tài khoản {name} chưa có khóa ký của người duyệt tại trung tâm; "
            f"quản trị viên chạy: playout centre approver <thư mục> {name}"
        )


class TargetingInvalid(DeskError):
    code = "TARGETING_INVALID"
    http_status = 422

    def __init__(self, problems: list[str]):
        super().__init__("Thông tin gửi tin chưa đúng: " + "; ".join(problems), problems=problems)


class CentreDesk:
    """Drafts, approvals, withdrawals and the audit, over one centre folder and its store."""

    def __init__(
        self,
        centre: Any,  # playout.fleet.centre.Centre
        store: CentreStore,
        *,
        tz: dt.tzinfo,
        clock: Callable[[], dt.datetime] | None = None,
        ring: bool = True,
    ):
        self.centre = centre
        self.store = store
        self.tz = tz
        self._clock = clock or (lambda: dt.datetime.now(tz))
        self._ring = ring

    # -- what the desk offers ----------------------------------------------------------------------------

    def stations(self) -> list[str]:
        return sorted(self.centre.settings()["stations"])

    def signers(self) -> set[str]:
        """Names that hold a delegated approver key at this centre."""
        return set(self.centre.repository().approvers())

    def targeting(self, form: Mapping[str, Any], script_meta: Any = None) -> dict[str, Any]:
        """Wards, level and air dates from a form (or the script's own front matter); every problem at once.

        ``form``: ``wards`` (list of station ids) or ``all_wards`` (truthy), ``level``, ``air_from`` and
        ``air_until`` (``YYYY-MM-DDTHH:MM`` in the province's time, or a date), ``department``."""
        problems: list[str] = []
        stations = self.stations()
        if form.get("all_wards"):
            wards = list(stations)
        else:
            wards = sorted({str(w).strip() for w in form.get("wards") or [] if str(w).strip()})
        unknown = [w for w in wards if w not in stations]
        if unknown:
            problems.append(f"không có trạm {', '.join(unknown[:5])}")
        if not wards:
            problems.append("chưa chọn trạm nhận tin")
        level = str(form.get("level") or "").strip()
        if not level and script_meta is not None:
            level = {"urgent": "khan_cap", "high": "uu_tien"}.get(getattr(script_meta, "priority", ""), "")
        level = level or "thuong"
        if level not in LEVELS:
            problems.append(f"mức độ {level!r} không có (thuong, uu_tien, khan_cap)")
        now = self._clock().astimezone(self.tz).replace(second=0, microsecond=0)
        air_from = self._when(form.get("air_from"), "thời gian bắt đầu", problems, start=True)
        air_until = self._when(form.get("air_until"), "thời gian kết thúc", problems, start=False)
        if air_from is None and script_meta is not None and getattr(script_meta, "air_from", None):
            air_from = dt.datetime.combine(script_meta.air_from, dt.time(), self.tz)
        if air_until is None and script_meta is not None and getattr(script_meta, "air_until", None):
            air_until = dt.datetime.combine(script_meta.air_until + dt.timedelta(days=1), dt.time(), self.tz)
        air_from = air_from or now
        if air_until is None:
            if level == "khan_cap":
                air_until = air_from + dt.timedelta(hours=DEFAULT_EMERGENCY_HOURS)
            else:
                end_day = air_from.date() + dt.timedelta(days=DEFAULT_AIR_DAYS.get(level, 7) + 1)
                air_until = dt.datetime.combine(end_day, dt.time(), self.tz)
        if air_until <= air_from:
            problems.append("thời gian kết thúc phải sau thời gian bắt đầu")
        elif air_until <= now:
            problems.append("thời gian kết thúc đã qua")
        department = str(form.get("department") or getattr(script_meta, "department", None) or "").strip()
        if len(department) > MAX_DEPARTMENT_CHARS:
            problems.append(f"tên đơn vị dài quá {MAX_DEPARTMENT_CHARS} ký tự")
        if problems:
            raise TargetingInvalid(problems)
        return {
            "wards": wards,
            "level": level,
            "air_from": air_from.isoformat(),
            "air_until": air_until.isoformat(),
            "department": department or None,
        }

    def _when(self, value: Any, label: str, problems: list[str], *, start: bool) -> dt.datetime | None:
        text = str(value or "").strip()
        if not text:
            return None
        try:
            if len(text) == 10:  # a date: the start of that day, or the end of it
                day = dt.date.fromisoformat(text)
                return dt.datetime.combine(day if start else day + dt.timedelta(days=1), dt.time(), self.tz)
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            problems.append(f"{label} không đúng dạng ngày giờ: {text[:40]!r}")
            return None
        return when.replace(tzinfo=self.tz) if when.tzinfo is None else when

    # -- the way of a bulletin ---------------------------------------------------------------------------

    def upload(
        self, data: bytes, filename: str, who: str, form: Mapping[str, Any], *, address: str | None = None
    ) -> dict:
        """A script (file or typed text) with its targeting, waiting for an approver; the register's row.

        The file is read as the station reads it (``playout.intake``: .txt/.md/.docx/.doc/.pdf, front
        matter, encodings), so what the centre approves is what the station would accept."""
        from playout.intake import parse_script

        script = parse_script(data, filename)
        target = self.targeting(form, script.meta)
        title = str(form.get("title") or "").strip()[:200] or script.display_title
        body = script.body.strip() + "\n"
        fields = {
            "sha256": hashlib.sha256(body.encode("utf-8")).hexdigest(),
            "title": title,
            "body": body,
            "filename": script.name,
            "uploaded_by": who,
            **target,
        }
        bulletin_id = self.store.add_bulletin(fields)
        self.store.audit(who, "upload", f"#{bulletin_id}", f"{title} ({target['level']}, "
                         f"{len(target['wards'])} trạm) sha256 {fields['sha256'][:16]}", address)  # fmt: skip
        logger.info("audit: %s uploaded bulletin #%d %r for %d ward(s)", who, bulletin_id, title,
                    len(target["wards"]))  # fmt: skip
        return {**self.store.bulletin(bulletin_id), "warnings": list(script.warnings)}

    def get(self, bulletin_id: int) -> dict:
        row = self.store.bulletin(bulletin_id)
        if row is None:
            raise BulletinNotFound(bulletin_id)
        return row

    def approve(self, bulletin_id: int, sha256: str, who: str, *, address: str | None = None) -> dict:
        """Sign and publish a pending bulletin with ``who``'s delegated key, if it is the version shown."""
        row = self.get(bulletin_id)
        if row["status"] != "pending":
            raise BulletinDecided(row["status"])
        if who not in self.signers():
            raise NoSigningKey(who)
        body = row["body"].encode("utf-8")
        # Pinned twice: to the hash the approver's page showed, and to the stored bytes themselves.
        if sha256 != row["sha256"] or hashlib.sha256(body).hexdigest() != row["sha256"]:
            self.store.audit(who, "approve-refused", f"#{bulletin_id}", "content differs from the one shown",
                             address)  # fmt: skip
            raise BulletinChanged()
        meta = {k: row[k] for k in ("title", "wards", "level", "air_from", "air_until")}
        if row["department"]:
            meta["department"] = row["department"]
        # Claim the row before signing, so two approvers clicking at once publish it once.
        if not self.store.decide(bulletin_id, "pending", "approving", who):
            raise BulletinDecided(self.get(bulletin_id)["status"])
        try:
            target = self.centre.publish(who, body, meta, ring=self._ring, via=None)
        except BaseException:
            self.store.decide(bulletin_id, "approving", "pending", who)
            raise
        self.store.decide(bulletin_id, "approving", "published", who, target=target,
                          station_sha=self._station_sha(target, body))  # fmt: skip
        self.store.audit(who, "approve", f"#{bulletin_id}", f"signed {target}", address)
        logger.info("audit: %s approved bulletin #%d and signed %s", who, bulletin_id, target)
        return self.get(bulletin_id)

    def recover(self) -> int:
        """After a crash between claiming a bulletin and recording its signature: each bulletin left
        ``approving`` becomes ``published`` if the repository holds its target, else ``pending`` again."""
        from playout.fleet import bulletin_path

        published = self.centre.repository().bulletins()
        fixed = 0
        for row in self.store.bulletins("approving"):
            target = bulletin_path(row["decided_by"], row["sha256"])
            if target in published:
                body = row["body"].encode("utf-8")
                sha = self._station_sha(target, body)
                fixed += self.store.decide(
                    row["id"], "approving", "published", row["decided_by"], target=target, station_sha=sha
                )
                self.store.audit(
                    row["decided_by"], "approve", f"#{row['id']}", f"signed {target} (recovered)"
                )
            else:
                fixed += self.store.decide(row["id"], "approving", "pending", row["decided_by"])
        if fixed:
            logger.warning("desk: %d bulletin(s) left mid-approval by a crash put right", fixed)
        return fixed

    def reject(self, bulletin_id: int, who: str, reason: str, *, address: str | None = None) -> dict:
        reason = reason.strip()[:MAX_REASON_CHARS]
        if not reason:
            raise DeskError("Cần ghi lý do từ chối.", code="REASON_REQUIRED")
        row = self.get(bulletin_id)
        if not self.store.decide(bulletin_id, "pending", "rejected", who, reason=reason):
            raise BulletinDecided(row["status"])
        self.store.audit(who, "reject", f"#{bulletin_id}", reason, address)
        return self.get(bulletin_id)

    def withdraw(self, bulletin_id: int, who: str, *, address: str | None = None) -> dict:
        """Remove a published bulletin: the stations stop airing it at their next refresh (rung now)."""
        from playout.fleet.tuf_repo import TargetUnknown

        row = self.get(bulletin_id)
        if row["status"] != "published":
            raise BulletinDecided(row["status"])
        # Already gone from the repository (withdrawn from the CLI): the register catches up.
        with contextlib.suppress(TargetUnknown):
            self.centre.withdraw(row["target"], ring=self._ring, via=None)
        self.store.decide(bulletin_id, "published", "withdrawn", who)
        self.store.audit(who, "withdraw", f"#{bulletin_id}", row["target"], address)
        logger.info("audit: %s withdrew bulletin #%d (%s)", who, bulletin_id, row["target"])
        return self.get(bulletin_id)

    def published_directly(self, approver: str, script: bytes, meta: Mapping[str, Any], target: str,
                           via: str, *, address: str | None = None) -> None:  # fmt: skip
        """Register (and audit) a bulletin published from the CLI or the API, not through a draft."""
        body = script.decode("utf-8")
        self.store.add_bulletin(
            {
                "sha256": hashlib.sha256(script).hexdigest(),
                "title": str(meta.get("title") or "")[:200] or "(không tên)",
                "body": body,
                "wards": list(meta.get("wards") or []),
                "level": meta.get("level", "thuong"),
                "air_from": str(meta.get("air_from")),
                "air_until": str(meta.get("air_until")),
                "department": meta.get("department"),
                "uploaded_by": approver,
                "decided_by": approver,
                "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "target": target,
                "station_sha": self._station_sha(target, script),
            },
            status="published",
        )
        self.store.audit(approver, "publish", target, f"through the {via}", address)

    def withdrawn_directly(self, target: str, who: str, via: str, *, address: str | None = None) -> None:
        row = self.store.published_by_target(target)
        if row is not None:
            self.store.decide(row["id"], "published", "withdrawn", who)
        self.store.audit(who, "withdraw", target, f"through the {via}", address)

    def _station_sha(self, target: str, script: bytes) -> str | None:
        """The hash of the file a station writes for this bulletin (its as-run ``bulletin_id``), so the
        report can name the department of each play.  Stations write it in the province's time zone."""
        from playout.fleet.sync import script_text

        custom = self.centre.repository().bulletins().get(target)
        if custom is None:
            return None
        return hashlib.sha256(script_text(script, custom, self.tz).encode("utf-8")).hexdigest()

    # -- what an approver sees before approving ------------------------------------------------------------

    def preview(self, bulletin_id: int) -> dict:
        """How stations will read it (the normalizer's readings, unsure ones flagged) and how long it runs."""
        from playout.config import StationConfig
        from playout.intake import parse_script
        from tts.plan import Planner
        from tts.readings import readings

        row = self.get(bulletin_id)
        out: dict[str, Any] = {"readings": readings(row["body"]), "estimate": None, "estimate_error": None}
        try:
            script = parse_script(row["body"].encode("utf-8"), "ban-tin.txt")
            # The offline voice: what every station can fall back to, and what needs no network here.
            out["estimate"] = Planner(StationConfig(), engines=["espeak"]).estimate(script).as_dict()
        except PlayoutError as exc:
            out["estimate_error"] = exc.message
        return out
