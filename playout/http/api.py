"""The station's JSON API under ``/api`` (and ``/metrics``), mounted by ``playout.http.create_app``.

Everything but a minimal ``GET /api/health`` needs a role (see ``playout.auth``): programs send
``Authorization: Bearer TOKEN``; the web page logs in and sends its session cookie plus the CSRF token.
Times are ISO 8601 with the station's offset.  OpenAPI at ``/docs``.

Every route reaches the station through ``StationService``.  A refusal (``PlayoutError``) a route lets
through is answered by ``playout_error``, the one place that turns an error class into an HTTP answer.
"""

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, UploadFile
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from playout import qr, reports
from playout.auth import (
    ACTION_LABELS_VI,
    Authenticator,
    Principal,
    end_session,
    optional_principal,
    require,
    set_session_cookie,
)
from playout.errors import PlayoutError
from playout.http import metrics
from playout.intake import MAX_SCRIPT_BYTES
from playout.limits import BodyRule, Refusal, html_refusal, json_refusal
from playout.service import StationService

logger = logging.getLogger(__name__)

Status = Literal["playing", "played", "failed", "interrupted", "skipped", "missed"]


class ErrorBody(BaseModel):
    detail: Any = Field(
        description="thông báo lỗi (tiếng Việt), hoặc {code, message} cho kịch bản bị từ chối"
    )


_ERRORS = {
    401: "Cần đăng nhập",
    403: "Không có quyền (hoặc thiếu mã CSRF)",
    404: "Không có bản tin này",
    409: "Trạng thái hiện tại không cho phép",
    413: "Tệp quá lớn (tối đa 1 MB)",
    429: "Thử đăng nhập quá nhiều lần",
    422: "Kịch bản bị từ chối: {code, message} (hoặc lỗi dữ liệu gửi lên)",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give (schemathesis holds us to them)."""
    # The content type is spelled out: FastAPI would otherwise document an HTML or WAV route's errors in
    # that route's media type, but errors are always JSON.
    body = {"application/json": {"schema": ErrorBody.model_json_schema()}}
    return {code: {"description": _ERRORS[code], "content": body} for code in codes}


def media(media_type: str, *codes: int) -> dict[str, Any]:
    """Route options for a non-JSON answer, so OpenAPI says what a client really gets."""
    return {
        "response_class": Response,
        "responses": {200: {"content": {media_type: {}}, "description": "OK"}, **errors(*codes)},
    }


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="lý do từ chối, cho người gửi")


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    password: str = Field(min_length=1, max_length=1024)


def invalid(loc: tuple[str, ...], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors, so clients parse one format."""
    return HTTPException(422, detail=[{"loc": list(loc), "msg": message, "type": "value_error"}])


#: An upload's body: the script's 1 MB plus the form around it (boundaries, part headers, the CSRF field).
MAX_UPLOAD_BODY_BYTES = MAX_SCRIPT_BYTES + 64 * 1024
UPLOAD_PATHS = ("/api/bulletins", "/ban-tin/tai-len")  # the API's and the web page's


def _upload_too_large(path: str) -> Callable[[int], Refusal]:
    message = "Tệp kịch bản quá lớn (tối đa 1 MB). Một bản tin 3 phút chỉ dài khoảng 1/3 trang A4."

    def refusal(limit: int) -> Refusal:
        if path.startswith("/api/"):
            detail = {"code": "SCRIPT_TOO_LARGE", "message": message, "limit_bytes": MAX_SCRIPT_BYTES}
            return json_refusal(413, detail)
        return html_refusal(413, message)

    return refusal


def _upload_gate(path: str):
    """Credentials and role, checked from the headers before a byte of the upload is read: FastAPI would
    otherwise parse (and spool to disk) the whole form before its dependencies ran."""

    async def gate(scope: dict) -> Refusal | None:
        request = Request(scope)
        who = await optional_principal(request)
        client = scope.get("client") or ("?", 0)
        if who is None:
            logger.info("unauthenticated upload to %s from %s refused before its body", path, client[0])
            if path.startswith("/api/"):
                return json_refusal(401, "Cần đăng nhập", (("WWW-Authenticate", "Bearer"),))
            return Refusal(303, b"", "text/plain", (("Location", "/dang-nhap"),))
        if not who.can("upload"):
            logger.warning("forbidden: %s %s wants upload from %s", who.kind, who.name, client[0])
            message = f"Tài khoản không có quyền {ACTION_LABELS_VI['upload']}"
            return json_refusal(403, message) if path.startswith("/api/") else html_refusal(403, message)
        return None

    return gate


async def playout_error(request: Request, exc: PlayoutError) -> JSONResponse:
    """The one answer to every refusal a route lets through: the class's status, ``{detail: {code,
    message}}`` (``http_detail``), and its headers (Retry-After for a throttled login)."""
    headers = exc.http_headers()
    return JSONResponse({"detail": exc.http_detail()}, status_code=exc.http_status, headers=headers)


def upload_rules() -> tuple[BodyRule, ...]:
    """The body caps for the two upload doors (the API's and the web page's): the script's size, and the
    credentials gate that runs before a byte of the body is read."""
    return tuple(
        BodyRule("POST", path, MAX_UPLOAD_BODY_BYTES, _upload_too_large(path), _upload_gate(path))
        for path in UPLOAD_PATHS
    )


def _aware(since: dt.datetime | None, until: dt.datetime | None) -> None:
    for name, t in (("since", since), ("until", until)):
        if t is not None and t.tzinfo is None:
            raise invalid(("query", name), "Thời điểm phải có múi giờ, ví dụ 2026-11-21T06:00:00+07:00")


#: The library's listing as the API has always shown it (the web page reads more of the same rows).
BULLETIN_FIELDS = (
    "id",
    "name",
    "title",
    "topic",
    "priority",
    "department",
    "status",
    "error",
    "approved_at",
    "duration_s",
    "engine",
    "voice",
    "warnings",
)


def install(app: FastAPI, service: StationService) -> None:
    """Add the JSON routes (and ``/metrics``) to ``app``; ``create_app`` does this."""

    def bulletin(bulletin_id: str):
        """The library's bulletin, or the API's 404 (text, as this answer has always been)."""
        found = service.bulletin(bulletin_id)
        if found is None:
            raise HTTPException(404, detail="Không có bản tin này")
        return found

    # -- sessions -------------------------------------------------------------------------------------------

    @app.post("/api/login", summary="Đăng nhập (trang web); trả về mã CSRF", responses=errors(429))
    async def login(body: Login, request: Request, response: Response) -> dict:
        auth: Authenticator = request.app.state.auth
        # A throttled address raises RateLimited: 429 with Retry-After, from playout_error.
        session = await auth.alogin(body.name, body.password, request.client.host if request.client else "?")
        if session is None:
            raise HTTPException(401, detail="Sai tên đăng nhập hoặc mật khẩu")
        set_session_cookie(response, auth, session)
        return {"name": session.name, "roles": sorted(session.roles), "csrf_token": session.csrf}

    @app.post("/api/logout", summary="Đăng xuất (phiên bị hủy trên trạm, không chỉ xóa cookie)")
    def logout(request: Request, response: Response) -> dict:
        end_session(request, response)
        return {"ok": True}

    # -- health and the as-run log -----------------------------------------------------------------------

    @app.get("/api/health", summary="Tình trạng trạm (chi tiết khi có quyền kỹ thuật)")
    def health(who: Annotated[Principal | None, Depends(optional_principal)]) -> dict:
        return service.health(full=who is not None and who.can("health_full"))

    @app.get("/api/plays", summary="Nhật ký phát sóng (mới nhất trước)")
    def plays(
        who: Annotated[Principal, Depends(require("log"))],
        since: Annotated[dt.datetime | None, Query(description="từ thời điểm (ISO 8601)")] = None,
        until: Annotated[dt.datetime | None, Query(description="đến trước thời điểm (ISO 8601)")] = None,
        status: Annotated[list[Status] | None, Query(description="lọc theo trạng thái")] = None,
        topic: Annotated[str | None, Query(max_length=50)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[dict]:
        _aware(since, until)
        return service.plays(since=since, until=until, status=status, topic=topic, limit=limit, offset=offset)

    @app.get("/api/plays.csv", summary="Nhật ký phát sóng, CSV (UTF-8 có BOM cho Excel)", **media("text/csv"))
    def plays_csv(
        who: Annotated[Principal, Depends(require("log"))],
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: Annotated[list[Status] | None, Query()] = None,
        topic: Annotated[str | None, Query(max_length=50)] = None,
    ) -> Response:
        _aware(since, until)
        rows = service.plays(since=since, until=until, status=status, topic=topic, limit=1_000_000)
        return Response(
            reports.plays_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="nhat-ky-phat-song.csv"'},
        )

    # -- reports ---------------------------------------------------------------------------------------------

    def build(kind: str, year: int, number: int) -> reports.Report:
        try:
            return service.report(kind, year, number)
        except ValueError as exc:
            raise invalid(("path", "number"), str(exc)) from None

    # One set of routes per period kind, so the schema itself says which numbers exist (1–12, 1–4).
    Year = Annotated[int, FastApiPath(ge=2000, le=2100, description="năm")]
    for kind, label, most in (("month", "tháng", 12), ("quarter", "quý", 4)):
        Number = Annotated[int, FastApiPath(ge=1, le=most, description=label)]

        def routes(kind: str = kind, label: str = label, Number=Number) -> None:  # noqa: N803 - a type
            base = f"/api/reports/{kind}/{{year}}/{{number}}"
            Who = Annotated[Principal, Depends(require("reports"))]

            # The .csv and chart routes first: "{number}" would also match "4.csv".
            @app.get(f"{base}.csv", summary=f"Báo cáo {label}, CSV", **media("text/csv"))
            def report_csv(year: Year, number: Number, who: Who) -> Response:
                return Response(
                    reports.report_csv(build(kind, year, number)),
                    media_type="text/csv; charset=utf-8",
                    headers={
                        "Content-Disposition": f'attachment; filename="bao-cao-{kind}-{year}-{number}.csv"'
                    },
                )

            @app.get(
                f"{base}/chart.svg",
                summary=f"Biểu đồ số lần phát mỗi tuần ({label})",
                **media("image/svg+xml"),
            )
            def report_chart(year: Year, number: Number, who: Who) -> Response:
                return Response(
                    reports.weekly_chart_svg(build(kind, year, number)), media_type="image/svg+xml"
                )

            @app.get(base, summary=f"Báo cáo {label}")
            def report(year: Year, number: Number, who: Who) -> dict:
                return build(kind, year, number).model_dump(mode="json")

        routes()

    # -- bulletins, preview and QR codes ---------------------------------------------------------------------

    @app.get("/api/bulletins", summary="Bản tin trong thư viện")
    def bulletins(who: Annotated[Principal, Depends(require("preview"))]) -> list[dict]:
        return [{k: b[k] for k in BULLETIN_FIELDS} for b in service.bulletins()]

    @app.get(
        "/api/bulletins/{bulletin_id}/audio",
        summary="Nghe thử bản tin đã đọc",
        **media("audio/wav", 404, 409),
    )
    def audio(bulletin_id: str, who: Annotated[Principal, Depends(require("preview"))]) -> Response:
        b = bulletin(bulletin_id)
        if b.status != "ready" or b.audio_path is None:
            raise HTTPException(409, detail=f"Bản tin chưa sẵn sàng ({b.status})")
        return FileResponse(b.audio_path, media_type="audio/wav", filename=f"{b.path.stem}.wav")

    def link_of(b) -> str:
        try:
            return service.link(b)
        except ValueError as exc:
            raise HTTPException(409, detail=str(exc)) from None

    @app.get("/api/bulletins/{bulletin_id}/qr.png", summary="Mã QR (PNG)", **media("image/png", 404, 409))
    def qr_png(bulletin_id: str, who: Annotated[Principal, Depends(require("qr"))]) -> Response:
        return Response(qr.qr_png(link_of(bulletin(bulletin_id))), media_type="image/png")

    @app.get("/api/bulletins/{bulletin_id}/qr.svg", summary="Mã QR (SVG)", **media("image/svg+xml", 404, 409))
    def qr_svg(bulletin_id: str, who: Annotated[Principal, Depends(require("qr"))]) -> Response:
        return Response(qr.qr_svg(link_of(bulletin(bulletin_id))), media_type="image/svg+xml")

    @app.get(
        "/api/bulletins/{bulletin_id}/poster",
        summary="Áp phích A5 để in",
        response_class=HTMLResponse,
        responses=errors(404, 409),
    )
    def poster(bulletin_id: str, who: Annotated[Principal, Depends(require("qr"))]) -> str:
        b = bulletin(bulletin_id)
        try:
            return service.poster(b)
        except ValueError as exc:  # no link to print
            raise HTTPException(409, detail=str(exc)) from None

    share_failed = {
        "description": "Không tạo được tệp âm thanh (ffmpeg) hoặc không ghi được thư mục",
        "content": {"application/json": {"schema": ErrorBody.model_json_schema()}},
    }

    @app.post(
        "/api/bulletins/{bulletin_id}/share",
        summary="Xuất trang chia sẻ (nghe lại MP3/Opus, mã QR, các bước) để đưa lên cổng thông tin, Zalo",
        responses={**errors(404, 409, 422), 500: share_failed},
    )
    def share(
        bulletin_id: Annotated[str, FastApiPath(max_length=64)],
        who: Annotated[Principal, Depends(require("qr"))],
    ) -> dict:
        # Sync route: FastAPI runs it in a worker thread, so the two encodes never block the event loop.
        # 409 (not ready, no QR target), 500 (ffmpeg), 422 (disk full) come from playout_error.
        return service.share(bulletin(bulletin_id), who.name)

    # -- uploads and approval (pinned to the content's SHA-256) ---------------------------------------------

    @app.post(
        "/api/bulletins", summary="Tải kịch bản lên (chờ duyệt)", responses=errors(413, 422), status_code=201
    )
    async def upload(file: UploadFile, who: Annotated[Principal, Depends(require("upload"))]) -> dict:
        # Read one byte past the cap: enough to refuse an oversize file without holding all of it.
        data = await file.read(MAX_SCRIPT_BYTES + 1)
        # In a worker thread: parsing a Word file takes a while, and the event loop serves everyone.
        return await run_in_threadpool(service.submit, data, file.filename or "kich-ban.txt", who.name)

    @app.get("/api/scripts", summary="Các phiên bản kịch bản và trạng thái duyệt")
    def scripts(
        who: Annotated[Principal, Depends(require("preview"))],
        status: Annotated[
            Literal["pending", "approved", "rejected", "withdrawn", "superseded"] | None, Query()
        ] = None,
    ) -> list[dict]:
        return service.scripts(status)

    @app.get(
        "/api/scripts/{sha256}/preview",
        summary="Nghe thử kịch bản chờ duyệt (âm thanh sẽ phát)",
        **media("audio/wav", 404),
    )
    def preview(
        sha256: Annotated[str, FastApiPath(max_length=64)],
        who: Annotated[Principal, Depends(require("listen"))],
    ) -> Response:
        path = service.preview_audio(sha256)
        if path is None:
            raise HTTPException(404, detail="Bản nghe thử chưa có (đang dựng, hoặc kịch bản không chờ duyệt)")
        return FileResponse(path, media_type="audio/wav", filename=f"{sha256[:12]}.wav")

    @app.post(
        "/api/scripts/{sha256}/approve",
        summary="Duyệt đúng phiên bản này (theo mã SHA-256)",
        responses=errors(404, 409),
    )
    def approve(sha256: str, who: Annotated[Principal, Depends(require("approve"))]) -> dict:
        return service.decide("approve", sha256, who.name)

    @app.post("/api/scripts/{sha256}/reject", summary="Từ chối", responses=errors(404, 409))
    def reject(sha256: str, body: Reason, who: Annotated[Principal, Depends(require("reject"))]) -> dict:
        return service.decide("reject", sha256, who.name, body.reason)

    @app.post("/api/scripts/{sha256}/withdraw", summary="Rút bản tin", responses=errors(404, 409))
    def withdraw(sha256: str, who: Annotated[Principal, Depends(require("withdraw"))]) -> dict:
        return service.decide("withdraw", sha256, who.name)

    @app.get("/api/audit", summary="Ai đã tải lên, duyệt, từ chối, rút bản tin nào")
    def audit(
        who: Annotated[Principal, Depends(require("log"))], limit: Annotated[int, Query(ge=1, le=5000)] = 200
    ):
        return service.audit(limit)

    @app.get("/api/schedule", summary="Các khung giờ sắp tới (14 ngày) và bản tin sẽ phát")
    def schedule(
        who: Annotated[Principal, Depends(require("preview"))], days: Annotated[int, Query(ge=1, le=31)] = 14
    ) -> list[dict]:
        return service.upcoming(days)

    @app.post(
        "/api/bulletins/{bulletin_id}/play-now",
        summary="Phát ngay bản tin (ngoài khung giờ)",
        responses=errors(404, 409),
    )
    def play_now(bulletin_id: str, who: Annotated[Principal, Depends(require("play_now"))]) -> dict:
        b = bulletin(bulletin_id)
        if b.status != "ready":
            raise HTTPException(409, detail=f"Bản tin chưa sẵn sàng ({b.status})")
        return {"slot": service.play_now(b, who.name)}

    registry = metrics.registry_for(service)

    @app.get("/metrics", summary="Chỉ số cho Prometheus", **media("text/plain"))
    def prometheus(who: Annotated[Principal, Depends(require("health_full"))]) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # -- technician actions ----------------------------------------------------------------------------------

    @app.post("/api/playback/stop", summary="Dừng bản tin đang phát")
    def stop(who: Annotated[Principal, Depends(require("stop"))]) -> dict:
        stopped = service.stop(who.name)
        logger.warning("playback stop requested by %s %s: %s", who.kind, who.name, stopped)
        return {"stopped": stopped}

    @app.post("/api/relay/off", summary="Tắt rơ-le loa (dừng phát nếu đang phát)")
    def relay_off(who: Annotated[Principal, Depends(require("relay_off"))]) -> dict:
        relay_on = service.relay_off(who.name)
        logger.warning("relay off requested by %s %s", who.kind, who.name)
        return {"relay_on": relay_on}

    @app.post(
        "/api/clock/confirm",
        summary="Xác nhận giờ hiện tại của trạm là đúng (khi không có NTP hay đồng hồ RTC)",
        responses=errors(409),
    )
    def confirm_clock(who: Annotated[Principal, Depends(require("confirm_clock"))]) -> dict:
        state = service.confirm_clock(who.name)
        logger.warning("clock confirmed by %s %s", who.kind, who.name)
        return state

    @app.post(
        "/api/alarms/{alarm_id}/acknowledge",
        summary="Xác nhận đã xử lý một cảnh báo (ví dụ cơ sở dữ liệu bị hỏng và đã khôi phục)",
        responses=errors(404),
    )
    def acknowledge_alarm(
        # SQLite's INTEGER range: a larger number is a 422, not an OverflowError (schemathesis found it).
        alarm_id: Annotated[int, FastApiPath(ge=1, le=2**63 - 1)],
        who: Annotated[Principal, Depends(require("acknowledge_alarm"))],
    ) -> dict:
        if not service.acknowledge_alarm(alarm_id, who.name):
            raise HTTPException(404, detail="Không có cảnh báo này, hoặc đã được xác nhận")
        return {"acknowledged": alarm_id}
