"""The centre's HTTP side: the TUF repository as static files, the as-run inbox, the fleet and the report.

Stations only ever *pull* from here (metadata and targets, verified by their own TUF client against the
root they were installed with) and *push* their as-run rows; the centre never reaches into a station.
A compromised web server can withhold content or replay old files, which the stations' TUF clients
detect; it cannot make a station air anything, because it holds no signing key.

    app = create_centre_app(CentreState(repo_dir, store, station_tokens, fleet_status))
    uvicorn.run(app, host=..., port=...)

Routes (the web desk's pages are in ``playout.fleet.centre_web``):
    GET  /tuf/metadata/...           TUF metadata (static, as the repository wrote it)
    GET  /tuf/targets/...            targets (static)
    POST /api/fleet/asrun            a station's settled as-run rows (Bearer: the station's token)
    POST /api/centre/bulletins       an approver publishes (Bearer: the approver's desk token)
    GET  /api/fleet/stations         each station: last status (MQTT), last play        (reports role)
    GET  /api/fleet/report           plays per ward and per department in a period (JSON or CSV; reports)

Only the TUF files and the as-run inbox are open to stations; everything a person reads needs an account
or an API token with a role (``centre.yaml`` ``auth:``, the station's own rules): which wards are off the
air is not for anyone who finds the centre's address.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from playout.accounts import verify_token
from playout.auth import Authenticator, Principal, require
from playout.errors import PlayoutError
from playout.fleet.centre_store import CentreStore
from playout.limits import BodyLimit, BodyRule, Refusal, json_refusal

logger = logging.getLogger(__name__)

_STATUS_VI = {
    "played": "đã phát", "failed": "lỗi", "missed": "lỡ", "interrupted": "bị ngắt", "skipped": "bỏ qua",
    "playing": "đang phát",
}  # fmt: skip
_CLOCK_VI = {"synchronized": "đã đồng bộ", "rtc": "theo RTC", "confirmed": "đã xác nhận",
             "unsynchronized": "chưa đồng bộ", "unknown": "không rõ"}  # fmt: skip
#: Under this much free space a station's card says so: renders and the log need room.
LOW_DISK_BYTES = 1_000_000_000
#: A person or program with the ``reports`` role (technician, admin): the fleet's state is not public.
Reader = Annotated[Principal, Depends(require("reports"))]
#: An as-run post is read only up to this (a week offline is a few hundred rows, well under it).
MAX_ASRUN_BODY = 2 * 1024 * 1024
#: A script (1 MB at most, as JSON text with escapes) and its fields.
MAX_PUBLISH_BODY = 256 * 1024


@dataclass
class CentreState:
    """What the centre's HTTP side works with."""

    repo_dir: Path  # the TUF repository's folder: metadata/ and targets/
    store: CentreStore
    #: station id -> its token's hash (``sha256$…``, playout.accounts.hash_token)
    station_tokens: dict[str, str]
    #: station id -> its last MQTT status and when it came (filled by playout.fleet.mqtt.CentreLink)
    fleet_status: Callable[[], dict[str, dict]] = field(default=lambda: {})
    target_per_week: int = 12
    #: days in reports are the province's days
    tz: dt.tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    #: approver name -> their desk token's hash; they publish through ``publish`` (the centre signs with
    #: the key it holds for them, each signature in the audit log)
    approver_tokens: dict[str, str] = field(default_factory=dict)
    #: (approver, script, meta) -> target; and target -> None.  Each registers and audits what it did.
    publish: Callable[[str, bytes, dict], str] | None = None
    withdraw: Callable[[str, str], None] | None = None
    #: people and programs on the desk (None: every page and read API answers 503, never opens up)
    auth: Authenticator | None = None
    #: the desk (playout.fleet.centre_desk.CentreDesk); None: fleet pages only
    desk: Any = None
    #: the offline voice reading a bulletin (a WAV path), for the approver's "nghe thử"
    preview_audio: Callable[[dict], Path | None] | None = None


def _station_for(state: CentreState, authorization: str | None) -> str:
    token = (authorization or "").removeprefix("Bearer ").strip()
    for station, stored in state.station_tokens.items():
        if token and verify_token(token, stored):
            return station
    raise HTTPException(401, detail={"code": "AUTH_REQUIRED", "message": "Cần mã truy cập của trạm"})


def _approver_for(state: CentreState, authorization: str | None) -> str:
    token = (authorization or "").removeprefix("Bearer ").strip()
    for name, stored in state.approver_tokens.items():
        if token and verify_token(token, stored):
            return name
    raise HTTPException(401, detail={"code": "AUTH_REQUIRED", "message": "Cần mã truy cập của người duyệt"})


async def _read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise HTTPException(413, detail={"code": "REQUEST_TOO_LARGE", "message": "Dữ liệu gửi quá lớn"})
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise HTTPException(413, detail={"code": "REQUEST_TOO_LARGE", "message": "Dữ liệu gửi quá lớn"})
    return bytes(body)


def _api_rules() -> tuple[BodyRule, ...]:
    """The API bodies larger than the default cap: a week of as-run rows, a published script."""

    def too_large(limit: int) -> Refusal:
        message = f"Dữ liệu gửi quá lớn (tối đa {limit // 1024} KB)"
        return json_refusal(413, {"code": "REQUEST_TOO_LARGE", "message": message, "limit_bytes": limit})

    return (
        BodyRule("POST", "/api/fleet/asrun", MAX_ASRUN_BODY, too_large),
        BodyRule("POST", "/api/centre/bulletins", MAX_PUBLISH_BODY, too_large),
    )


def create_centre_app(state: CentreState) -> FastAPI:
    from playout.fleet.centre_web import install_desk, upload_rule

    app = FastAPI(title="Trung tâm thông tin nguồn", docs_url=None, redoc_url=None)
    app.state.auth = state.auth
    # Every body is capped before anything reads it; the desk's upload gets a script's size and a gate.
    app.add_middleware(BodyLimit, rules=(upload_rule(), *_api_rules()))
    (state.repo_dir / "metadata").mkdir(parents=True, exist_ok=True)
    (state.repo_dir / "targets").mkdir(parents=True, exist_ok=True)
    app.mount("/tuf/metadata", StaticFiles(directory=state.repo_dir / "metadata"), name="tuf-metadata")
    app.mount("/tuf/targets", StaticFiles(directory=state.repo_dir / "targets"), name="tuf-targets")

    @app.post("/api/fleet/asrun")
    async def asrun(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
        station = _station_for(state, authorization)
        body = await _read_capped(request, MAX_ASRUN_BODY)
        try:
            data = json.loads(body)
            if data.get("station") != station:
                raise ValueError("a station posts its own rows only")
            rows = data["rows"]
            if not isinstance(rows, list):
                raise ValueError("rows must be a list")
            added, acked = state.store.add_rows(station, rows)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HTTPException(
                422, detail={"code": "ASRUN_INVALID", "message": f"Dữ liệu phát sóng không hợp lệ: {exc}"}
            ) from None
        if added:
            logger.info("as-run: %d new row(s) from %s (up to #%d)", added, station, acked)
        return {"acked": acked, "added": added}

    @app.post("/api/centre/bulletins")
    async def publish(request: Request, authorization: Annotated[str | None, Header()] = None) -> dict:
        """An approver publishes: ``{"title", "text", "wards", "level", "air_from", "air_until"}``."""
        approver = _approver_for(state, authorization)
        if state.publish is None:
            raise HTTPException(
                503, detail={"code": "CENTRE_READ_ONLY", "message": "Trung tâm không nhận đăng tin"}
            )
        try:
            data = json.loads(await _read_capped(request, MAX_PUBLISH_BODY))
            text = data.pop("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text must be the script")
            meta = {k: data[k] for k in ("title", "wards", "level", "air_from", "air_until") if k in data}
            if "department" in data:
                meta["department"] = data["department"]
            target = await run_in_threadpool(state.publish, approver, text.encode("utf-8"), meta)
        except PlayoutError as exc:
            raise HTTPException(exc.http_status, detail=exc.to_dict()) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HTTPException(
                422, detail={"code": "BULLETIN_META_INVALID", "message": f"Bản tin không hợp lệ: {exc}"}
            ) from None
        logger.info("audit: %s published %s through the desk", approver, target)
        return {"target": target}

    @app.delete("/api/centre/bulletins/{approver}/{name}")
    async def withdraw(
        approver: str, name: str, authorization: Annotated[str | None, Header()] = None
    ) -> dict:
        who = _approver_for(state, authorization)
        if who != approver or state.withdraw is None:
            raise HTTPException(
                403, detail={"code": "FORBIDDEN", "message": "Chỉ người duyệt bản tin được rút"}
            )
        target = f"bulletins/{approver}/{name}"
        try:
            await run_in_threadpool(state.withdraw, target, who)
        except PlayoutError as exc:
            raise HTTPException(exc.http_status, detail=exc.to_dict()) from None
        logger.info("audit: %s withdrew %s", who, target)
        return {"withdrawn": target}

    @app.get("/api/fleet/stations")
    def stations(who: Reader) -> dict:
        status = state.fleet_status()
        last = state.store.last_plays()
        ids = sorted(set(state.station_tokens) | set(status) | set(last))
        return {"stations": [{"id": s, "status": status.get(s), "last_play": last.get(s)} for s in ids]}

    def fleet_context(loc: str) -> dict[str, Any]:
        """The fleet at a glance, phone-sized: each station's state and last play, and the week's report."""
        status, last = state.fleet_status(), state.store.last_plays()
        end = dt.datetime.now(state.tz).date() + dt.timedelta(days=1)
        start = end - dt.timedelta(days=7)
        rows = state.store.weekly_report(
            dt.datetime.combine(start, dt.time(), state.tz),
            dt.datetime.combine(end, dt.time(), state.tz),
            state.target_per_week,
        )
        week = {r["station"]: r for r in rows}
        stations = []
        for sid in sorted(set(state.station_tokens) | set(status) | set(last)):
            st = status.get(sid) or {}
            play = last.get(sid)
            heard = st.get("received_at")
            free = st.get("disk_free_bytes")
            missed = week.get(sid, {}).get("missed", 0) + week.get(sid, {}).get("failed", 0)
            entry = {
                "id": sid,
                "online": bool(st.get("online")),
                "relay": st.get("relay"),
                "version": st.get("version"),
                "content": {"online": "trực tuyến", "offline": "mất kết nối"}.get(
                    st.get("fleet"), st.get("fleet")
                ),
                "clock": _CLOCK_VI.get(st.get("clock"), st.get("clock")),
                "clock_bad": st.get("clock") == "unsynchronized",
                "disk": None if not isinstance(free, int) else f"{free / 1e9:.1f} GB trống",
                "disk_low": isinstance(free, int) and free < LOW_DISK_BYTES,
                "missed": missed,
                "heard": dt.datetime.fromtimestamp(heard, state.tz).strftime("%d/%m %H:%M:%S")
                if isinstance(heard, int | float)
                else None,
                "last": None
                if play is None
                else {
                    **play,
                    "status_vi": _STATUS_VI.get(play["status"], play["status"]),
                    "when": dt.datetime.fromisoformat(play["scheduled_at"])
                    .astimezone(state.tz)
                    .strftime("%d/%m %H:%M"),
                },
            }
            entry["trouble"] = bool(
                not entry["online"] or missed or entry["clock_bad"] or entry["disk_low"]
                or str(st.get("fleet") or "").startswith("FLEET_")
            )  # fmt: skip
            stations.append(entry)
        shown = [
            s
            for s in stations
            if loc == "all"
            or (loc == "online" and s["online"])
            or (loc == "offline" and not s["online"])
            or (loc == "on-air" and s["relay"] == "on")
            or (loc == "trouble" and s["trouble"])
        ]
        filters = [
            ("all", "Tất cả"),
            ("trouble", "Có sự cố"),
            ("online", "Trực tuyến"),
            ("offline", "Mất kết nối"),
            ("on-air", "Đang phát"),
        ]
        return dict(
            stations=stations,
            shown=shown,
            filters=filters,
            current=loc,
            report={
                "since": start.strftime("%d/%m"),
                "until": end.strftime("%d/%m"),
                "target": state.target_per_week,
                "rows": rows,
                "departments": state.store.department_report(
                    dt.datetime.combine(start, dt.time(), state.tz),
                    dt.datetime.combine(end, dt.time(), state.tz),
                ),
            },
        )

    if state.desk is not None or state.auth is not None:
        install_desk(
            app, state.store, state.desk, fleet_context=fleet_context, preview_audio=state.preview_audio
        )

    @app.get("/api/fleet/report")
    def report(
        who: Reader,
        since: Annotated[dt.date | None, Query()] = None,
        until: Annotated[dt.date | None, Query()] = None,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
        table: Annotated[str, Query(pattern="^(stations|departments)$")] = "stations",
    ) -> Any:
        """``format=csv`` gives one table: ``table=stations`` (plays per ward) or ``table=departments``."""
        end = until or dt.datetime.now(state.tz).date() + dt.timedelta(days=1)
        start = since or end - dt.timedelta(days=7)
        if start >= end:
            raise HTTPException(422, detail={"code": "RANGE_INVALID", "message": "Khoảng ngày không hợp lệ"})
        rows = state.store.weekly_report(
            dt.datetime.combine(start, dt.time(), state.tz),
            dt.datetime.combine(end, dt.time(), state.tz),
            state.target_per_week,
        )
        departments = state.store.department_report(
            dt.datetime.combine(start, dt.time(), state.tz), dt.datetime.combine(end, dt.time(), state.tz)
        )
        if format == "csv":
            out = io.StringIO()
            if table == "departments":
                writer = csv.DictWriter(out, ["department", "plays", "stations", "bulletins"])
                writer.writeheader()
                writer.writerows(departments)
            else:
                writer = csv.DictWriter(
                    out,
                    [
                        "station",
                        "played",
                        "target",
                        "target_met",
                        "failed",
                        "missed",
                        "interrupted",
                        "skipped",
                    ],
                )
                writer.writeheader()
                writer.writerows(rows)
            return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
        return JSONResponse(
            {
                "since": start.isoformat(),
                "until": end.isoformat(),
                "stations": rows,
                "departments": departments,
            }
        )

    return app
