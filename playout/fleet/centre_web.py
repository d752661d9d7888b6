"""The centre's web desk: log in, send a bulletin to wards, approve and sign it, withdraw it, read the audit.

The same accounts, roles and session rules as a station's web page (``playout.auth``): an operator
uploads and targets, an approver previews, approves (signing with their own delegated key) or rejects,
a technician watches the fleet and the report, an admin may do all of it.  Every form posts a CSRF token;
every body is capped before it is read, and an upload's credentials are checked before its body is
(``playout.limits.BodyLimit`` with a gate).  Pages and messages are Vietnamese.

    GET  /dang-nhap, POST /dang-nhap, POST /dang-xuat
    GET  /                        the fleet and the week's report                      (any account)
    GET  /ban-tin                 the desk: new bulletin form, pending, published, decided
    POST /ban-tin/tai-len         upload (file or typed text) with targeting                  (upload)
    GET  /ban-tin/{id}            preview: readings, flagged unsure ones, estimated length, script
    GET  /ban-tin/{id}/nghe-thu.wav  the offline voice reading it (rendered once, on first request)
    POST /ban-tin/{id}/duyet      approve: sign with the approver's key, publish, ring     (approve)
    POST /ban-tin/{id}/tu-choi    reject with a reason                                       (reject)
    POST /ban-tin/{id}/rut        withdraw (confirmed)                                     (withdraw)
    GET  /nhat-ky                 the audit table                                               (log)
    GET  /api/centre/audit        the audit as JSON                                             (log)
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from playout.auth import (
    ACTION_LABELS_VI,
    CSRF_FIELD,
    Authenticator,
    PageRefused,
    Principal,
    RateLimited,
    end_session,
    guarded_page,
    optional_principal,
    require,
    set_session_cookie,
)
from playout.errors import PlayoutError
from playout.fleet.centre_desk import LEVELS_VI, STATUS_VI, CentreDesk, TargetingInvalid
from playout.fleet.centre_store import CentreStore
from playout.intake import MAX_SCRIPT_BYTES
from playout.limits import BodyRule, Refusal, html_refusal

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
PAGES = (
    ("/", "Các trạm", ()),
    ("/ban-tin", "Bản tin", ("upload", "approve", "reject", "withdraw")),
    ("/nhat-ky", "Nhật ký thao tác", ("log",)),
)
UPLOAD_PATH = "/ban-tin/tai-len"
#: A script's 1 MB, plus the typed text field and the form around it.
MAX_UPLOAD_BODY_BYTES = 2 * MAX_SCRIPT_BYTES + 64 * 1024
#: Module level: FastAPI resolves the (string) annotations of the routes in this module's globals.
BulletinId = Annotated[int, FastApiPath(ge=1, le=2**62)]
_DECISIONS = {"duyet": "approve", "tu-choi": "reject", "rut": "withdraw"}
NOTICES_VI = {
    "tai-len": "Đã gửi bản tin, đang chờ người duyệt.",
    "duyet": "Đã duyệt và ký bản tin; các trạm được báo để cập nhật ngay.",
    "tu-choi": "Đã từ chối bản tin.",
    "rut": "Đã rút bản tin; các trạm ngừng phát ở lần cập nhật tới.",
}
AUDIT_ACTIONS_VI = {
    "upload": "gửi bản tin", "approve": "duyệt và ký", "approve-refused": "duyệt bị từ chối",
    "reject": "từ chối", "withdraw": "rút bản tin", "publish": "đăng (CLI/API)", "login": "đăng nhập",
    "login-failed": "đăng nhập sai", "station": "thêm trạm", "approver": "thêm người duyệt",
    "approver-revoked": "thu hồi người duyệt", "account": "tài khoản", "keys": "đổi khóa",
    "expire": "hết hạn, gỡ khỏi kho",
}  # fmt: skip


def templates_environment() -> Environment:
    """The centre's pages, with the station's shared style (``web/_style.html``)."""
    return Environment(loader=FileSystemLoader([TEMPLATES / "centre", TEMPLATES / "web"]), autoescape=True)


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


def upload_rule() -> BodyRule:
    """The upload's cap, and its gate: credentials and role are checked before a byte of the body."""

    async def gate(scope: dict) -> Refusal | None:
        who = await optional_principal(Request(scope))
        if who is None:
            return Refusal(303, b"", "text/plain", (("Location", "/dang-nhap"),))
        if not who.can("upload"):
            return html_refusal(403, f"Tài khoản không có quyền {ACTION_LABELS_VI['upload']}")
        return None

    def too_large(limit: int) -> Refusal:
        return html_refusal(413, "Tệp kịch bản quá lớn (tối đa 1 MB).")

    return BodyRule("POST", UPLOAD_PATH, MAX_UPLOAD_BODY_BYTES, too_large, gate)


def _ended(value: str) -> bool:
    try:
        return dt.datetime.fromisoformat(value) <= dt.datetime.now(dt.UTC)
    except (TypeError, ValueError):
        return False


def _local(value: str, tz: dt.tzinfo, fmt: str = "%H:%M %d/%m/%Y") -> str:
    try:
        return dt.datetime.fromisoformat(value).astimezone(tz).strftime(fmt)
    except (TypeError, ValueError):
        return str(value or "")


def install_desk(
    app: FastAPI,
    store: CentreStore,
    desk: CentreDesk | None,
    *,
    fleet_context: Callable[[str], dict[str, Any]],
    preview_audio: Callable[[dict], Path | None] | None = None,
) -> None:
    """Add the pages to the centre's app; ``app.state.auth`` must hold the Authenticator.

    Without a ``desk`` (a centre folder), only logging in and the fleet page are served."""
    templates = Jinja2Templates(env=templates_environment())
    router = APIRouter(include_in_schema=False)
    checks = {a: require(a) for a in ("upload", "approve", "reject", "withdraw", "log", "listen")}
    tz = desk.tz if desk is not None else dt.UTC

    def page(request: Request, template: str, who: Principal | None, status_code: int = 200, **context):
        nav = [
            (p, label) for p, label, actions in PAGES if who and (not actions or any(map(who.can, actions)))
        ]
        context.setdefault("notice", None)
        context.setdefault("error", None)
        return templates.TemplateResponse(
            request,
            template,
            {"who": who, "nav": nav, "csrf_field": CSRF_FIELD, "path": request.url.path, **context},
            status_code=status_code,
        )

    async def check(request: Request, *actions: str) -> Principal:
        """The caller if any of ``actions`` is allowed (for a POST, with the CSRF token); else a refusal."""
        who = await optional_principal(request)
        if who is None:
            raise PageRefused(RedirectResponse("/dang-nhap", status_code=303))
        if not actions:
            return who
        # The first action the roles allow; its check adds the CSRF proof for a POST (and logs a refusal).
        action = next((a for a in actions if who.can(a)), actions[0])
        try:
            return await checks[action](request)
        except HTTPException as exc:
            raise PageRefused(page(request, "403.html", who, 403, message=str(exc.detail))) from None

    # -- sessions ------------------------------------------------------------------------------------------

    @router.get("/dang-nhap")
    async def login_form(request: Request):
        auth: Authenticator = request.app.state.auth
        return page(request, "login.html", None, name="", no_accounts=not auth.settings.accounts)

    @router.post("/dang-nhap")
    async def login(request: Request):
        form = await request.form()
        name, password = str(form.get("name") or "")[:50], str(form.get("password") or "")
        auth: Authenticator = request.app.state.auth
        try:
            session = await auth.alogin(name, password, _address(request))
        except RateLimited as exc:
            return page(request, "login.html", None, exc.http_status, error=exc.message, name=name)
        if session is None:
            await run_in_threadpool(store.audit, name, "login-failed", None, None, _address(request))
            return page(request, "login.html", None, 401, error="Sai tên đăng nhập hoặc mật khẩu.", name=name)
        await run_in_threadpool(store.audit, name, "login", None, None, _address(request))
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
        end_session(request, response)
        return response

    # -- the fleet -----------------------------------------------------------------------------------------

    @router.get("/")
    @guarded_page
    async def fleet(
        request: Request, loc: Annotated[str, Query(pattern="^(all|trouble|online|offline|on-air)$")] = "all"
    ):
        who = await check(request)
        return page(request, "fleet.html", who, **await run_in_threadpool(fleet_context, loc))

    if desk is None:
        app.include_router(router)
        return

    # -- the desk ------------------------------------------------------------------------------------------

    def decorate(b: dict) -> dict:
        status_vi = STATUS_VI.get(b["status"], b["status"])
        if b["status"] == "published" and _ended(b["air_until"]):
            status_vi = "đã hết hạn phát"  # stations dropped it on their own; the centre tidies it later
        return {
            **b,
            "level_vi": LEVELS_VI.get(b["level"], b["level"]),
            "status_vi": status_vi,
            "when": _local(b["uploaded_at"], tz),
            "from_vi": _local(b["air_from"], tz),
            "until_vi": _local(b["air_until"], tz),
        }

    async def desk_page(request: Request, who: Principal, status_code: int = 200, **context):
        rows = await run_in_threadpool(lambda: [decorate(b) for b in desk.store.bulletins(limit=300)])
        groups: dict[str, list] = {"pending": [], "published": [], "decided": []}
        for b in rows:
            groups[b["status"] if b["status"] in ("pending", "published") else "decided"].append(b)
        now = dt.datetime.now(tz).replace(second=0, microsecond=0, tzinfo=None)
        form = {"title": "", "text": "", "level": "thuong", "wards": [], "all_wards": False,
                "air_from": now.isoformat(timespec="minutes"), "air_until": "", "department": "",
                **context.pop("form", {})}  # fmt: skip
        return page(
            request,
            "desk.html",
            who,
            status_code,
            groups=groups,
            sections=[
                ("pending", "Chờ duyệt"),
                ("published", "Đã phát hành"),
                ("decided", "Đã rút hoặc từ chối"),
            ],
            stations=await run_in_threadpool(desk.stations),
            levels=list(LEVELS_VI.items()),
            form=form,
            **context,
        )

    @router.get("/ban-tin")
    @guarded_page
    async def bulletins(request: Request):
        who = await check(request, *PAGES[1][2])
        return await desk_page(request, who, notice=NOTICES_VI.get(request.query_params.get("xong", "")))

    @router.post(UPLOAD_PATH)
    @guarded_page
    async def upload(request: Request):
        who = await check(request, "upload")
        form = await request.form()
        typed = str(form.get("text") or "")
        file = form.get("file")
        fields = {
            "title": str(form.get("title") or "")[:200],
            "level": str(form.get("level") or "")[:20],
            "wards": [str(w)[:64] for w in form.getlist("wards")][:1000],
            "all_wards": bool(form.get("all_wards")),
            "air_from": str(form.get("air_from") or "")[:40],
            "air_until": str(form.get("air_until") or "")[:40],
            "department": str(form.get("department") or "")[:300],
        }
        if isinstance(file, UploadFile) and file.filename:
            data, filename = await file.read(MAX_SCRIPT_BYTES + 1), file.filename
        elif typed.strip():
            data, filename = typed.encode("utf-8"), "ban-tin.txt"
        else:
            return await desk_page(request, who, 422, error="Chưa có nội dung: gõ kịch bản hoặc chọn tệp.",
                                   form={**fields, "text": typed}, open_form=True)  # fmt: skip
        try:
            row = await run_in_threadpool(
                desk.upload, data, filename, who.name, fields, address=_address(request)
            )
        except TargetingInvalid as exc:
            return await desk_page(request, who, exc.http_status, problems=exc.context.get("problems"),
                                   form={**fields, "text": typed}, open_form=True)  # fmt: skip
        except PlayoutError as exc:
            return await desk_page(request, who, exc.http_status, error=exc.message,
                                   form={**fields, "text": typed}, open_form=True)  # fmt: skip
        if row.get("warnings"):
            return await desk_page(request, who, 201, notice=NOTICES_VI["tai-len"], warnings=row["warnings"])
        return RedirectResponse(f"/ban-tin/{row['id']}?xong=tai-len", status_code=303)

    async def bulletin_page(
        request: Request, who: Principal, bulletin_id: int, status_code: int = 200, **ctx
    ):
        try:
            row = await run_in_threadpool(desk.get, bulletin_id)
        except PlayoutError as exc:
            return page(request, "403.html", who, exc.http_status, message=exc.message)
        preview = await run_in_threadpool(desk.preview, bulletin_id)
        listen = preview_audio is not None and who.can("listen")
        return page(request, "bulletin.html", who, status_code, b=decorate(row), preview=preview,
                    listen=listen, **ctx)  # fmt: skip

    @router.get("/ban-tin/{bulletin_id}")
    @guarded_page
    async def bulletin(request: Request, bulletin_id: BulletinId):
        who = await check(request, *PAGES[1][2])
        notice = NOTICES_VI.get(request.query_params.get("xong", ""))
        return await bulletin_page(request, who, bulletin_id, notice=notice)

    @router.get("/ban-tin/{bulletin_id}/nghe-thu.wav")
    @guarded_page
    async def listen(request: Request, bulletin_id: BulletinId):
        await check(request, "listen")
        if preview_audio is None:
            raise HTTPException(404)
        try:
            row = await run_in_threadpool(desk.get, bulletin_id)
        except PlayoutError as exc:
            raise HTTPException(exc.http_status, detail=exc.http_detail()) from None
        wav = await run_in_threadpool(preview_audio, row)
        if wav is None:
            raise HTTPException(
                503, detail={"code": "PREVIEW_FAILED", "message": "Không dựng được bản nghe thử"}
            )
        return FileResponse(wav, media_type="audio/wav")

    @router.post("/ban-tin/{bulletin_id}/{verb}")
    @guarded_page
    async def decide(request: Request, bulletin_id: BulletinId, verb: str):
        action = _DECISIONS.get(verb)
        if action is None:
            raise HTTPException(404)
        who = await check(request, action)
        form = await request.form()
        address = _address(request)
        try:
            if action == "approve":
                sha = str(form.get("sha256") or "")[:64]
                await run_in_threadpool(desk.approve, bulletin_id, sha, who.name, address=address)
            elif action == "reject":
                reason = str(form.get("reason") or "")[:1000]
                await run_in_threadpool(desk.reject, bulletin_id, who.name, reason, address=address)
            else:
                if form.get("xac_nhan") != "co":
                    return await bulletin_page(request, who, bulletin_id, 422,
                                               error="Hãy bấm nút xác nhận để rút bản tin.")  # fmt: skip
                await run_in_threadpool(desk.withdraw, bulletin_id, who.name, address=address)
        except PlayoutError as exc:
            return await bulletin_page(request, who, bulletin_id, exc.http_status, error=exc.message)
        return RedirectResponse(f"/ban-tin/{bulletin_id}?xong={verb}", status_code=303)

    # -- the audit -----------------------------------------------------------------------------------------

    @router.get("/nhat-ky")
    @guarded_page
    async def audit(request: Request, truoc: Annotated[int | None, Query(ge=1, le=2**62)] = None):
        who = await check(request, "log")
        rows = await run_in_threadpool(store.audit_rows, limit=100, before=truoc)
        shown = [
            {**r, "when": _local(r["at"], tz, "%d/%m/%Y %H:%M:%S"),
             "action_vi": AUDIT_ACTIONS_VI.get(r["action"], r["action"])}
            for r in rows
        ]  # fmt: skip
        older = rows[-1]["id"] if len(rows) == 100 else None
        return page(request, "audit.html", who, rows=shown, older=older)

    app.include_router(router)

    @app.get("/api/centre/audit", summary="Nhật ký thao tác của trung tâm (mới nhất trước)")
    async def audit_json(
        request: Request,
        before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> dict:
        await checks["log"](request)
        return {"audit": await run_in_threadpool(store.audit_rows, limit=limit, before=before)}
