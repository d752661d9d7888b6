"""The station's small web page for people: server-rendered Vietnamese HTML, no JavaScript framework.

Mounted next to the JSON API by ``install(app, service)``.  Every page needs a session cookie (``/dang-nhap``
sets one); roles and CSRF are checked by the same ``playout.auth.require`` the API uses, and its refusals are
shown as pages here (401 → the login form, 403 → a Vietnamese explanation) instead of JSON.  A refused
action (a ``PlayoutError``) shows its message on the page, with the status its class carries, as the API
answers it.  Nothing is loaded from the Internet: the Pi may have none, and the CSS is inline in
``playout/templates/web/base.html`` (the templates stayed there, next to the poster's).

The pages are ``async`` (the CSRF check reads the form), so every call that reaches SQLite or the disk
(approval store, as-run log, reports, health) goes through ``run_in_threadpool``: one slow query must not
stall every other page and the API on the event loop.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
import unicodedata
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import ChainableUndefined, Environment, FileSystemLoader
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from playout import reports
from playout.auth import (
    CSRF_FIELD,
    Authenticator,
    PageRefused,
    Principal,
    end_session,
    guarded_page,
    optional_principal,
    require,
    set_session_cookie,
)
from playout.errors import PlayoutError, RateLimited
from playout.intake import MAX_SCRIPT_BYTES, TOPICS
from playout.service import PLAY_STATUSES, StationService

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "web"

#: Library states (rendering pipeline) and script-version states (approval), in Vietnamese.
BULLETIN_STATUS_VI = {"pending": "Chờ đọc", "rendering": "Đang đọc", "ready": "Sẵn sàng", "failed": "Lỗi"}
SCRIPT_STATUS_VI = {
    "pending": "Chờ duyệt",
    "approved": "Đã duyệt",
    "rejected": "Bị từ chối",
    "withdrawn": "Đã rút",
    "superseded": "Đã thay bằng bản mới",
}
NOTICES_VI = {
    "tai-len": "Đã tải kịch bản lên, đang chờ duyệt.",
    "duyet": "Đã duyệt. Bản tin đang được đọc thành âm thanh.",
    "tu-choi": "Đã từ chối kịch bản.",
    "rut": "Đã rút bản tin.",
    "dong-ho": "Đã xác nhận giờ của trạm. Các khung giờ theo lịch sẽ được phát.",
    "canh-bao": "Đã xác nhận xử lý cảnh báo.",
    "dung-phat": "Đã dừng bản tin đang phát; rơ-le loa đã tắt.",
    "khong-phat": "Không có bản tin nào đang phát.",
    "tat-loa": "Đã tắt rơ-le loa.",
    "phat-ngay": "Đã bắt đầu phát bản tin.",
}
#: A technician's actions that cut or start sound: each asks for a second click (the form's ``xac_nhan``).
CONFIRM_FIELD = "xac_nhan"
NEEDS_CONFIRMATION = "Hãy bấm nút xác nhận để thực hiện thao tác này."
#: Clock states (health["clock"]["state"]) in Vietnamese.
CLOCK_STATES_VI = {
    "synchronized": "Đã đồng bộ qua mạng",
    "rtc": "Theo đồng hồ RTC",
    "confirmed": "Đã được xác nhận",
    "unsynchronized": "Chưa đồng bộ",
    "unknown": "Không rõ",
}
#: (path, label, actions any of which shows the page)
PAGES = (
    ("/", "Tổng quan", ()),
    ("/ban-tin", "Bản tin", ("preview", "upload", "approve", "reject", "withdraw", "play_now")),
    ("/nhat-ky", "Nhật ký", ("log",)),
    ("/bao-cao", "Báo cáo", ("reports",)),
)
_CHECKS = {
    a: require(a)
    for a in (
        "preview",
        "upload",
        "approve",
        "reject",
        "withdraw",
        "log",
        "reports",
        "confirm_clock",
        "acknowledge_alarm",
        "stop",
        "relay_off",
        "play_now",
        "qr",
        "listen",
    )
}
_DECISIONS = {"duyet": "approve", "tu-choi": "reject", "rut": "withdraw"}
#: What a share page may do when the station serves it: show itself, its picture and its audio.
SHARE_CSP = (
    "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _seconds_vi(value: float | None) -> str:
    """A duration as people say it: "2 phút 35 giây", "48 giây"."""
    if value is None:
        return ""
    total = int(round(float(value)))
    minutes, secs = divmod(total, 60)
    if not minutes:
        return f"{secs} giây"
    return f"{minutes} phút" + (f" {secs} giây" if secs else "")


def _fold(text: str) -> str:
    """Lower case without diacritics or punctuation: "Dịch vụ công" and "dich-vu-cong" fold alike."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join("".join(c if c.isalnum() else " " for c in bare).split())


def topic_slug(typed: str) -> str | None:
    """The topic a person means by what they typed: its slug, its name, or a unique part of the name."""
    if not typed:
        return None
    if typed in TOPICS:
        return typed
    want = _fold(typed)
    exact = [slug for slug, name in TOPICS.items() if want in (_fold(name), _fold(slug))]
    if exact:
        return exact[0]
    partial = [slug for slug, name in TOPICS.items() if len(want) >= 3 and want in _fold(name)]
    return partial[0] if len(partial) == 1 else None


def _time(value: str | None, fmt: str = "%H:%M:%S") -> str:
    if not value:
        return ""
    try:
        return dt.datetime.fromisoformat(value).strftime(fmt)
    except ValueError:
        return value


def environment() -> Environment:
    """The Jinja2 environment of the station's pages (cached: one per process is enough)."""
    return _environment()


@functools.cache
def _environment() -> Environment:
    # ChainableUndefined: a key missing from health() (an older or half-started station) shows as blank
    # instead of failing the whole page, which is the page a technician opens when something is wrong.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=ChainableUndefined,
    )
    env.filters["clock"] = _time
    env.filters["when"] = lambda v: _time(v, "%d/%m/%Y %H:%M")
    env.filters["when_seconds"] = lambda v: _time(v, "%H:%M:%S ngày %d/%m/%Y")
    env.filters["seconds"] = _seconds_vi
    # Operators read topic names, not slugs.
    env.filters["topic_name"] = lambda slug: TOPICS.get(slug, slug) if slug else ""
    env.tests["ackable_alarm"] = _is_alarm_among
    return env


def _is_alarm_among(problem: object, alarms: list) -> bool:
    """Is this health problem one of these stored alarms (health lists each as ALARM_<KIND>)?"""
    if not isinstance(problem, dict):
        return False
    return any(
        problem.get("code") == f"ALARM_{str(a.get('kind', '')).upper()}"
        and problem.get("message") == a.get("message")
        for a in alarms
        if isinstance(a, dict)
    )


def install(app: FastAPI, service: StationService) -> None:
    templates = Jinja2Templates(env=_environment())
    router = APIRouter(include_in_schema=False)

    def page(request: Request, template: str, who: Principal | None, status_code: int = 200, **context):
        nav = [
            (path, label)
            for path, label, actions in PAGES
            if who and (not actions or any(map(who.can, actions)))
        ]
        return templates.TemplateResponse(
            request,
            template,
            {"who": who, "nav": nav, "csrf_field": CSRF_FIELD, "path": request.url.path, **context},
            status_code=status_code,
        )

    def forbidden(request: Request, who: Principal | None, message: str) -> PageRefused:
        return PageRefused(page(request, "403.html", who, status_code=403, message=message))

    async def check(request: Request, *actions: str) -> Principal:
        """The caller if any of ``actions`` is allowed (and, for a POST, the CSRF token matches)."""
        who = await optional_principal(request)
        if who is None:
            raise PageRefused(RedirectResponse("/dang-nhap", status_code=303))
        if not actions:
            return who
        refusal = None
        for action in actions:
            try:
                return await _CHECKS[action](request)
            except HTTPException as exc:
                refusal = refusal or exc.detail
                if "CSRF" in str(exc.detail):
                    break
        raise forbidden(request, who, str(refusal))

    # -- sessions --------------------------------------------------------------------------------------------

    @router.get("/dang-nhap")
    async def login_form(request: Request):
        notice = "Đã tạo tài khoản quản trị. Hãy đăng nhập." if request.query_params.get("xong") else None
        first_run = not service.has_accounts()
        return page(request, "login.html", None, error=None, name="", notice=notice, no_accounts=first_run)

    # -- first run: the one-time link from the station's log creates the first admin ------------------------

    @router.get("/thiet-lap")
    async def setup_form(request: Request):
        code = request.query_params.get("ma", "")[:100]
        if not service.setup_open(code):
            return page(request, "setup.html", None, 404, closed=True, code="")
        return page(request, "setup.html", None, code=code, name="", error=None)

    @router.post("/thiet-lap")
    async def setup(request: Request):
        form = await request.form()
        code = str(form.get("ma") or "")[:100]
        name = str(form.get("name") or "").strip()[:50]
        password, again = str(form.get("password") or ""), str(form.get("password2") or "")
        if not service.setup_open(code):
            return page(request, "setup.html", None, 404, closed=True, code="")
        if password != again:
            error = "Hai lần nhập mật khẩu không khớp."
            return page(request, "setup.html", None, 422, code=code, name=name, error=error)
        try:
            await run_in_threadpool(service.create_first_admin, code, name, password)
        except ValueError as exc:
            return page(request, "setup.html", None, 422, code=code, name=name, error=str(exc))
        except PlayoutError as exc:
            return page(request, "setup.html", None, exc.http_status, code=code, name=name, error=exc.message)
        return RedirectResponse("/dang-nhap?xong=tai-khoan", status_code=303)

    @router.post("/dang-nhap")
    async def login(request: Request):
        form = await request.form()
        name, password = str(form.get("name") or ""), str(form.get("password") or "")
        auth: Authenticator = request.app.state.auth
        try:
            session = await auth.alogin(name, password, request.client.host if request.client else "?")
        except RateLimited as exc:
            return page(request, "login.html", None, exc.http_status, error=exc.message, name=name)
        if session is None:
            error = "Sai tên đăng nhập hoặc mật khẩu."
            return page(request, "login.html", None, 401, error=error, name=name)
        response = RedirectResponse("/", status_code=303)
        set_session_cookie(response, auth, session)
        return response

    @router.post("/dang-xuat")
    async def logout(request: Request):
        who = await optional_principal(request)
        if who is not None:
            token = str((await request.form()).get(CSRF_FIELD) or "")
            if not hmac.compare_digest(token.encode(), (who.csrf or "").encode()):
                return page(request, "403.html", who, 403, message="Phiên làm việc không hợp lệ (CSRF)")
        response = RedirectResponse("/dang-nhap", status_code=303)
        end_session(request, response)  # revoked on the station: a copied cookie is refused from now on
        return response

    # -- overview --------------------------------------------------------------------------------------------

    async def overview_page(request: Request, who: Principal, *, notice=None, error=None, status_code=200):
        # health() reads the as-run log and the alarms; upcoming() runs the rotation over the log.
        health, upcoming = await run_in_threadpool(lambda: (service.health(), service.upcoming(14)))
        last = health.get("last_result")
        if last:
            last = {**last, "status_vi": reports.STATUS_NAMES.get(last["status"], last["status"])}
        return page(
            request,
            "overview.html",
            who,
            status_code,
            health=health,
            last=last,
            upcoming=upcoming,
            notice=notice,
            error=error,
            clock_states=CLOCK_STATES_VI,
        )

    @router.get("/")
    @guarded_page
    async def overview(request: Request):
        who = await check(request)
        notice = NOTICES_VI.get(request.query_params.get("xong", ""))
        return await overview_page(request, who, notice=notice)

    @router.post("/dong-ho/xac-nhan")
    @guarded_page
    async def confirm_clock(request: Request):
        who = await check(request, "confirm_clock")
        try:
            await run_in_threadpool(service.confirm_clock, who.name)
        except PlayoutError as exc:
            return await overview_page(request, who, error=exc.message, status_code=exc.http_status)
        logger.warning("clock confirmed on the web page by %s", who.name)
        return RedirectResponse("/?xong=dong-ho", status_code=303)

    @router.post("/canh-bao/{alarm_id}/da-xu-ly")
    @guarded_page
    async def acknowledge_alarm(request: Request, alarm_id: Annotated[int, FastApiPath(ge=1, le=2**63 - 1)]):
        who = await check(request, "acknowledge_alarm")
        try:
            done = await run_in_threadpool(service.acknowledge_alarm, alarm_id, who.name)
        except PlayoutError as exc:  # the database is locked or full: say so, and that trying again is fine
            return await overview_page(request, who, error=exc.message, status_code=exc.http_status)
        if not done:
            return await overview_page(
                request, who, error="Không có cảnh báo này, hoặc đã được xác nhận", status_code=404
            )
        return RedirectResponse("/?xong=canh-bao", status_code=303)

    # -- bulletins -------------------------------------------------------------------------------------------

    async def bulletins_page(
        request: Request, who: Principal, *, notice=None, error=None, warnings=(), status_code=200
    ):
        records, library = await run_in_threadpool(lambda: (service.scripts(), service.bulletins()))
        return page(
            request,
            "bulletins.html",
            who,
            status_code,
            library=[{**b, "status_vi": BULLETIN_STATUS_VI.get(b["status"], b["status"])} for b in library],
            records=[{**r, "status_vi": SCRIPT_STATUS_VI.get(r["status"], r["status"])} for r in records],
            notice=notice,
            error=error,
            warnings=list(warnings),
        )

    @router.get("/ban-tin")
    @guarded_page
    async def bulletins(request: Request):
        who = await check(request, *PAGES[1][2])
        notice = NOTICES_VI.get(request.query_params.get("xong", ""))
        return await bulletins_page(request, who, notice=notice)

    @router.post("/ban-tin/tai-len")
    @guarded_page
    async def upload(request: Request):
        who = await check(request, "upload")
        file = (await request.form()).get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return await bulletins_page(request, who, error="Chưa chọn tệp kịch bản.", status_code=422)
        data = await file.read(MAX_SCRIPT_BYTES + 1)
        try:
            # In a worker thread: parsing a Word file takes a while, and the event loop serves everyone.
            record = await run_in_threadpool(service.submit, data, file.filename, who.name)
        except PlayoutError as exc:
            return await bulletins_page(request, who, error=exc.message, status_code=exc.http_status)
        # Shown at once, on this answer: what the station found in the script, and whether this exact
        # version was already decided (a file sent again after a rejection says so).
        status = record.get("status")
        if record.get("new"):
            notice = "Đã tải kịch bản lên, đang chờ duyệt."
        else:
            state = SCRIPT_STATUS_VI.get(status, status)
            notice = f"Kịch bản này đã được gửi trước đây và đang ở trạng thái: {state}."
            if status == "rejected" and record.get("reason"):
                notice += f" Lý do từ chối: {record['reason']}"
        return await bulletins_page(
            request, who, notice=notice, warnings=record.get("warnings") or [], status_code=201
        )

    @router.post("/ban-tin/{sha256}/{verb}")
    @guarded_page
    async def decide(request: Request, sha256: str, verb: str):
        action = _DECISIONS.get(verb)
        if action is None:
            raise HTTPException(404)
        who = await check(request, action)
        reason = ""
        if action == "withdraw" and not await confirmed(request):
            return await bulletins_page(request, who, error=NEEDS_CONFIRMATION, status_code=422)
        if action == "reject":
            reason = str((await request.form()).get("reason") or "").strip()[:500]
            if not reason:
                return await bulletins_page(request, who, error="Cần ghi lý do từ chối.", status_code=422)
        try:
            await run_in_threadpool(service.decide, action, sha256, who.name, reason)
        except PlayoutError as exc:
            return await bulletins_page(request, who, error=exc.message, status_code=exc.http_status)
        return RedirectResponse(f"/ban-tin?xong={verb}", status_code=303)

    # -- a technician's buttons: stop, relay off, play now (each confirmed by a second click) ---------------

    async def confirmed(request: Request) -> bool:
        return (await request.form()).get(CONFIRM_FIELD) == "co"

    @router.post("/phat/dung")
    @guarded_page
    async def stop(request: Request):
        who = await check(request, "stop")
        if not await confirmed(request):
            return await overview_page(request, who, error=NEEDS_CONFIRMATION, status_code=422)
        stopped = await run_in_threadpool(service.stop, who.name)
        logger.warning("playback stop on the web page by %s: %s", who.name, stopped)
        return RedirectResponse(f"/?xong={'dung-phat' if stopped else 'khong-phat'}", status_code=303)

    @router.post("/loa/tat")
    @guarded_page
    async def relay_off(request: Request):
        who = await check(request, "relay_off")
        if not await confirmed(request):
            return await overview_page(request, who, error=NEEDS_CONFIRMATION, status_code=422)
        still_on = await run_in_threadpool(service.relay_off, who.name)
        logger.warning("relay off on the web page by %s (still on: %s)", who.name, still_on)
        if still_on:
            return await overview_page(
                request,
                who,
                error="Rơ-le loa vẫn bật: kiểm tra dây nối và nhật ký hệ thống.",
                status_code=503,
            )
        return RedirectResponse("/?xong=tat-loa", status_code=303)

    @router.post("/phat/ngay/{bulletin_id}")
    @guarded_page
    async def play_now(request: Request, bulletin_id: Annotated[str, FastApiPath(max_length=64)]):
        who = await check(request, "play_now")
        if not await confirmed(request):
            return await bulletins_page(request, who, error=NEEDS_CONFIRMATION, status_code=422)
        bulletin = service.bulletin(bulletin_id)
        if bulletin is None:
            return await bulletins_page(request, who, error="Không có bản tin này.", status_code=404)
        if bulletin.status != "ready":
            return await bulletins_page(
                request,
                who,
                error="Bản tin chưa sẵn sàng để phát (chưa đọc xong hoặc bị lỗi).",
                status_code=409,
            )
        slot = await run_in_threadpool(service.play_now, bulletin, who.name)
        logger.warning("play now on the web page by %s: %s (%s)", who.name, bulletin.title, slot)
        return RedirectResponse("/?xong=phat-ngay", status_code=303)

    # -- share pages: export one (operator), then anyone on the LAN may open it ------------------------------

    @router.post("/chia-se/{bulletin_id}")
    @guarded_page
    async def share(request: Request, bulletin_id: Annotated[str, FastApiPath(max_length=64)]):
        who = await check(request, "qr")
        bulletin = service.bulletin(bulletin_id)
        if bulletin is None:
            return await bulletins_page(request, who, error="Không có bản tin này.", status_code=404)
        try:
            shared = await run_in_threadpool(service.share, bulletin, who.name)  # two encodes: seconds
        except PlayoutError as exc:
            return await bulletins_page(request, who, error=exc.message, status_code=exc.http_status)
        return RedirectResponse(shared["url"], status_code=303)

    def shared(slug: str, name: str) -> Response:
        found = service.shared_file(slug, name)
        if found is None:  # not exported, not a bulletin any more, or not a file an export writes
            raise HTTPException(404)
        path, media_type = found
        # Revalidated on every open (a new export replaces the files); nothing runs in the page, even
        # opened straight from the station.
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        headers["Content-Security-Policy"] = SHARE_CSP
        return FileResponse(path, media_type=media_type, headers=headers)

    # Plain ``def``: FastAPI runs these in a worker thread, as they look at the disk.

    @router.get("/share/{slug}")
    def share_folder(slug: Annotated[str, FastApiPath(max_length=80)]):
        shared(slug, "index.html")  # 404 unless it exists
        # The page's addresses are relative to its folder: /share/x/x.mp3, not /share/x.mp3.
        return RedirectResponse(f"/share/{slug}/", status_code=308)

    @router.get("/share/{slug}/")
    def share_page(slug: Annotated[str, FastApiPath(max_length=80)]):
        return shared(slug, "index.html")

    @router.get("/share/{slug}/{name}")
    def share_file(
        slug: Annotated[str, FastApiPath(max_length=80)], name: Annotated[str, FastApiPath(max_length=100)]
    ):
        return shared(slug, name)

    # -- as-run log ------------------------------------------------------------------------------------------

    @router.get("/nhat-ky")
    @guarded_page
    async def log(request: Request):
        who = await check(request, "log")
        q = request.query_params
        errors, since, until = [], None, None
        try:
            if q.get("tu"):
                since = dt.datetime.combine(dt.date.fromisoformat(q["tu"]), dt.time(), tzinfo=service.tz)
            if q.get("den"):
                day = dt.date.fromisoformat(q["den"]) + dt.timedelta(days=1)
                until = dt.datetime.combine(day, dt.time(), tzinfo=service.tz)
        except ValueError:
            errors.append("Ngày không hợp lệ (dạng năm-tháng-ngày).")
        if since and until and since >= until:
            errors.append("Ngày bắt đầu đang sau ngày kết thúc: không có lượt phát nào trong khoảng này.")
        status = q.get("trang_thai") if q.get("trang_thai") in PLAY_STATUSES else None
        typed = (q.get("chu_de") or "").strip()[:100]
        topic = topic_slug(typed)
        if typed and topic is None:
            errors.append(f"Không có chủ đề “{typed}”. Chọn một chủ đề trong danh sách.")
            topic = typed[:50]  # still filtered: nothing matches, which is what the message says
        statuses = [status] if status else None
        rows = await run_in_threadpool(
            lambda: service.plays(since=since, until=until, status=statuses, topic=topic, limit=300)
        )
        for row in rows:
            row["status_vi"] = reports.STATUS_NAMES.get(row["status"], row["status"])
        params = {"since": since and since.isoformat(), "until": until and until.isoformat()}
        params |= {"status": status, "topic": topic}
        csv_url = "/api/plays.csv?" + urlencode({k: v for k, v in params.items() if v})
        return page(
            request,
            "log.html",
            who,
            rows=rows,
            csv_url=csv_url.rstrip("?"),
            statuses=reports.STATUS_NAMES,
            filters={"tu": q.get("tu", ""), "den": q.get("den", ""), "trang_thai": status, "chu_de": typed},
            topics=TOPICS,
            errors=errors,
        )

    # -- monthly report --------------------------------------------------------------------------------------

    @router.get("/bao-cao")
    @guarded_page
    async def report(request: Request):
        who = await check(request, "reports")
        now = service.now()
        year, month = now.year, now.month
        chosen = request.query_params.get("thang", "")
        error = None
        try:
            if chosen:
                year, month = (int(part) for part in chosen.split("-", 1))
            result = await run_in_threadpool(service.report, "month", year, month)
        except ValueError:  # a bad ?thang= shows the current month, and says so
            error = f"Tháng “{chosen[:20]}” không hợp lệ (dạng năm-tháng, vd. 2026-11): đang xem tháng này."
            year, month = now.year, now.month
            result = await run_in_threadpool(service.report, "month", year, month)
        return page(
            request,
            "report.html",
            who,
            report=result,
            month=f"{year:04d}-{month:02d}",
            chart=Markup(reports.weekly_chart_svg(result)),  # built with every text escaped
            statuses=reports.STATUS_NAMES,
            csv_url=f"/api/reports/month/{year}/{month}.csv",
            error=error,
        )

    app.include_router(router)
