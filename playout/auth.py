"""Who may do what on the station's LAN API.

Anyone on the ward Wi-Fi can reach the API, so every write names an account (people, with a password
and a signed session cookie) or a token (scripts, with ``Authorization: Bearer …``), and every action
needs a role::

    browser ── POST /login (name, password) ──► Authenticator.alogin ──► Session
       ▲            429 per address · growing delay per account             │
       └──── Set-Cookie: playout_session=<payload>.<HMAC> ◄── session_cookie┘

    request ──► require("approve") ──► Bearer token?  ── yes ──► from_bearer ─────────────┐
                                        │ no                                               │
                                        └──► cookie ──► session_from_cookie ──► Principal ─┤
                                                                                           ▼
                           401 no/invalid credentials · 403 wrong role · 403 missing CSRF (cookie + write)

The cookie carries name, roles, expiry and a CSRF token, signed with a secret kept in a 0600 file so a
restart does not log everyone out.  A session dies when it expires, when it is logged out (its id goes on
a revocation list in a 0600 file, pruned as the sessions on it expire, so a copied cookie stays dead after
a restart too), when the account is removed from ``schedule.yaml``, when the account's password changes
(the cookie holds a fingerprint of the password hash) or when the secret file is deleted.

Wrong passwords are throttled per *address* (too many in a minute: 429 for the rest of it) and slowed per
*account* (a growing delay before the check, at most ``MAX_LOGIN_DELAY_S``), never locked per account:
anyone on the LAN could otherwise lock the technician out by typing wrong passwords for their name.

Passwords are stored as scrypt hashes, tokens as SHA-256 (a random 32-byte token needs no slow hash);
the hashing and the ``auth:`` settings models live in ``playout.accounts``, which does not import FastAPI.
Nothing here ever logs a password, token, hash or cookie: only account names and client addresses.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs

import anyio
from fastapi import HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

# The settings models and hashing live in playout.accounts (no FastAPI there, so reading schedule.yaml
# stays cheap); they are re-exported here so `from playout.auth import AuthSettings` keeps working.
from playout.accounts import (
    HASH_BYTES,
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    ROLES,
    SALT_BYTES,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    Account,
    ApiToken,
    AuthSettings,
    Role,
    hash_password,
    hash_token,
    new_token,
    verify_password,
    verify_token,
)
from playout.atomic import atomic_write_text
from playout.errors import ConfigError, RateLimited  # RateLimited: in the error tree, still exported here

__all__ = [
    "ACTION_LABELS_VI",
    "COOKIE_NAME",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "HASH_BYTES",
    "MAX_LOGIN_DELAY_S",
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "PERMISSIONS",
    "ROLES",
    "SALT_BYTES",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "UNSAFE_METHODS",
    "Account",
    "ApiToken",
    "AuthSettings",
    "Authenticator",
    "PageRefused",
    "Principal",
    "RateLimited",
    "Role",
    "Session",
    "clear_session_cookie",
    "end_session",
    "guarded_page",
    "hash_password",
    "hash_token",
    "load_or_create_secret",
    "new_token",
    "optional_principal",
    "require",
    "set_session_cookie",
    "verify_password",
    "verify_token",
]

logger = logging.getLogger(__name__)

_OPERATOR = frozenset({"operator", "admin"})
_APPROVER = frozenset({"approver", "admin"})
_TECHNICIAN = frozenset({"technician", "admin"})
_ADMIN = frozenset({"admin"})

#: action -> roles allowed to perform it.  ``admin`` may do everything.
PERMISSIONS: dict[str, frozenset[str]] = {
    "upload": _OPERATOR,
    "withdraw": _OPERATOR,
    "preview": _OPERATOR,
    # An approver hears what will air before approving it: the preview of a version waiting for them.
    "listen": _OPERATOR | _APPROVER,
    "qr": _OPERATOR,
    "approve": _APPROVER,
    "reject": _APPROVER,
    "log": _TECHNICIAN,
    "health_full": _TECHNICIAN,
    "reports": _TECHNICIAN,
    "stop": _TECHNICIAN,
    "relay_off": _TECHNICIAN,
    # Airing something right now bypasses the schedule and the approval queue: admin only.
    "play_now": _TECHNICIAN,  # a technician action in the ward plan: play a bulletin now (logged with who)
    # Vouching for the Pi's clock lets scheduled slots air without NTP or an RTC: whoever keeps the station.
    "confirm_clock": _TECHNICIAN,
    # Marking a storage alarm (a damaged database rebuilt) as seen: the technician who looked into it.
    "acknowledge_alarm": _TECHNICIAN,
    "admin": _ADMIN,
}

#: How each action reads in a refusal ("Tài khoản không có quyền …").
ACTION_LABELS_VI: dict[str, str] = {
    "upload": "tải bản tin lên",
    "withdraw": "rút bản tin",
    "preview": "nghe thử bản tin",
    "listen": "nghe thử kịch bản chờ duyệt",
    "qr": "in mã QR",
    "approve": "duyệt bản tin",
    "reject": "từ chối bản tin",
    "log": "xem nhật ký",
    "health_full": "xem tình trạng chi tiết",
    "reports": "xem báo cáo",
    "stop": "dừng phát",
    "relay_off": "tắt rơ-le loa",
    "play_now": "phát ngay",
    "confirm_clock": "xác nhận giờ của trạm",
    "acknowledge_alarm": "xác nhận đã xử lý cảnh báo",
    "admin": "quản trị",
}

COOKIE_NAME = "playout_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_WINDOW_S = 60.0  # per address: login_attempts_per_minute failures in this window, then 429
_ACCOUNT_WINDOW_S = 15 * 60.0  # per account: failures in this window slow every login to it down
_FREE_FAILURES = 3  # a person mistypes; the delay starts after this many failures
_FIRST_DELAY_S = 0.25
MAX_LOGIN_DELAY_S = 3.0
_SWEEP_S = 60.0
_MAX_FORM_BYTES = 64 * 1024


# ---------------------------------------------------------------- sessions and principals


@dataclass(frozen=True)
class Principal:
    """Who is making this request, and how they proved it."""

    name: str
    roles: frozenset[str]
    kind: Literal["session", "token"]
    csrf: str | None = None

    def can(self, action: str) -> bool:
        return bool(PERMISSIONS.get(action, frozenset()) & self.roles)


@dataclass(frozen=True)
class Session:
    name: str
    roles: frozenset[str]
    expires_at: float
    csrf: str

    def principal(self) -> Principal:
        return Principal(self.name, self.roles, "session", self.csrf)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Checks passwords, tokens and session cookies against one AuthSettings; thread-safe.

    ``clock`` returns wall-clock seconds (cookies carry absolute expiry times); tests pass a fake one.
    ``revoked_file`` keeps logged-out sessions dead across restarts (None: in memory only).
    """

    def __init__(
        self,
        settings: AuthSettings,
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        revoked_file: Path | None = None,
    ):
        if len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self.settings = settings
        self._secret = secret
        self._clock = clock
        self._accounts = {a.name: a for a in settings.accounts}
        self._lock = threading.Lock()
        # Failed (or in-flight) attempts: per IP in the last minute as (time, account), per account in the
        # last quarter hour as (time, ip), so a success can forget exactly its own failures and nobody else's.
        self._by_ip: dict[str, deque[tuple[float, str]]] = {}
        self._by_account: dict[str, deque[tuple[float, str]]] = {}
        self._swept = clock()
        # Logged-out sessions: id -> expiry (a session id is a hash of its CSRF token, never the token).
        self._revoked_file = Path(revoked_file) if revoked_file else None
        self._revoked: dict[str, int] = {}
        self._revoked_stamp: tuple[int, int] | None = None
        self._load_revoked()
        # Unknown names still cost one scrypt, so timing does not reveal which accounts exist.
        self._dummy_hash = hash_password(secrets.token_urlsafe(12))

    def reload(self, settings: AuthSettings) -> None:
        """Put edited accounts and tokens in force at once (schedule.yaml reloaded).

        A token removed from the file stops working with the next request; a session whose account was
        removed, or whose password changed, is refused (cookies carry a tag of the password hash).
        """
        with self._lock:
            self.settings = settings
            self._accounts = {a.name: a for a in settings.accounts}

    # -- login -------------------------------------------------------------------------------------

    @staticmethod
    def _key(name: str) -> str:
        return str(name)[:50].strip().lower()

    def check_address(self, client_ip: str) -> None:
        """RateLimited when this address has failed too often in the last minute."""
        with self._lock:
            retry = self._retry_after(self._by_ip, client_ip, self._clock())
        if retry:
            logger.warning("login rate-limited: ip=%s retry_after=%ss", client_ip, retry)
            raise RateLimited(retry)

    def login_delay_s(self, name: str) -> float:
        """How long a login to this account waits before its password is checked: nothing for the first
        few failures in a quarter hour, then doubling from a quarter second up to MAX_LOGIN_DELAY_S."""
        key = self._key(name)
        now = self._clock()
        with self._lock:
            bucket = self._by_account.get(key)
            failures = sum(1 for t, _ in bucket if t > now - _ACCOUNT_WINDOW_S) if bucket else 0
        if failures < _FREE_FAILURES:
            return 0.0
        return min(MAX_LOGIN_DELAY_S, _FIRST_DELAY_S * 2 ** min(failures - _FREE_FAILURES, 16))

    async def alogin(self, name: str, password: str, client_ip: str) -> Session | None:
        """``login`` for the HTTP doors: a throttled address is refused at once, the account's delay is
        waited out without holding a thread, and the slow password hash runs off the event loop."""
        self.check_address(client_ip)
        delay = self.login_delay_s(name)
        if delay:
            await anyio.sleep(delay)
        return await run_in_threadpool(self.login, name, password, client_ip)

    def login(self, name: str, password: str, client_ip: str) -> Session | None:
        """A new Session, or None for a wrong name/password; RateLimited when the address is over its limit.

        The attempt is counted *before* the slow password check, so parallel guesses cannot all slip
        in under the limit; a success then removes its own record.  (No delay here: see ``alogin``.)
        """
        key = self._key(name)
        now = self._clock()
        with self._lock:
            self._sweep(now)
            retry = self._retry_after(self._by_ip, client_ip, now)
            if retry:
                logger.warning("login rate-limited: account=%r ip=%s retry_after=%ss", key, client_ip, retry)
                raise RateLimited(retry)
            self._by_ip.setdefault(client_ip, deque()).append((now, key))
            # Only the recent count matters for the delay, so an account's record stays short however
            # long a guessing campaign runs.
            attempts = self._by_account.setdefault(key, deque(maxlen=64))
            while attempts and attempts[0][0] <= now - _ACCOUNT_WINDOW_S:
                attempts.popleft()
            attempts.append((now, client_ip))

        account = self._accounts.get(key)
        ok = verify_password(password, account.password_hash if account else self._dummy_hash)
        if not ok or account is None:
            logger.warning("login failed: account=%r ip=%s", key, client_ip)
            return None

        with self._lock:
            # Forget this IP's failures for this account only; other IPs' failures keep counting.
            self._forget(self._by_ip, client_ip, lambda item: item[1] == key)
            self._forget(self._by_account, key, lambda item: item[1] == client_ip)
        logger.info("login ok: account=%s ip=%s", key, client_ip)
        return Session(
            name=account.name,
            roles=frozenset(account.roles),
            expires_at=now + self.settings.session_hours * 3600,
            csrf=secrets.token_urlsafe(24),
        )

    def _sweep(self, now: float) -> None:
        # Names and addresses nobody tries again would otherwise stay in the tables for ever.
        if now - self._swept < _SWEEP_S:
            return
        self._swept = now
        for buckets, window in ((self._by_ip, _WINDOW_S), (self._by_account, _ACCOUNT_WINDOW_S)):
            for key in [k for k, b in buckets.items() if not b or b[-1][0] <= now - window]:
                del buckets[key]

    def _retry_after(self, buckets: dict[str, deque[tuple[float, str]]], key: str, now: float) -> int:
        bucket = buckets.get(key)
        if bucket is None:
            return 0
        while bucket and bucket[0][0] <= now - _WINDOW_S:
            bucket.popleft()
        if not bucket:
            del buckets[key]  # keeps the tables as small as the last minute's traffic
            return 0
        if len(bucket) < self.settings.login_attempts_per_minute:
            return 0
        return max(1, math.ceil(bucket[0][0] + _WINDOW_S - now))

    @staticmethod
    def _forget(buckets: dict[str, deque[tuple[float, str]]], key: str, match: Callable) -> None:
        bucket = buckets.get(key)
        if bucket is None:
            return
        kept = deque((item for item in bucket if not match(item)), maxlen=bucket.maxlen)
        if kept:
            buckets[key] = kept
        else:
            del buckets[key]

    # -- cookies -----------------------------------------------------------------------------------

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, b"playout-session-v1\0" + payload, hashlib.sha256).digest()

    def _password_tag(self, password_hash: str) -> str:
        return _b64u(hmac.new(self._secret, b"pw\0" + password_hash.encode(), hashlib.sha256).digest()[:9])

    def session_cookie(self, session: Session) -> str:
        """``<payload b64url>.<HMAC-SHA256 b64url>``; the payload is readable but cannot be altered."""
        account = self._accounts.get(session.name)
        payload = json.dumps(
            {
                "n": session.name,
                "r": sorted(session.roles),
                "e": int(session.expires_at),
                "c": session.csrf,
                "p": self._password_tag(account.password_hash) if account else "",
            },
            separators=(",", ":"),
        ).encode()
        return f"{_b64u(payload)}.{_b64u(self._sign(payload))}"

    def session_from_cookie(self, value: str | None) -> Session | None:
        """The Session a cookie carries, or None if it is forged, expired or its account has changed."""
        if not value or len(value) > 4096:
            return None
        try:
            body, sig = value.split(".", 1)
            payload = _b64u_decode(body)
            if not hmac.compare_digest(_b64u_decode(sig), self._sign(payload)):
                logger.warning("session cookie with a bad signature")
                return None
            data = json.loads(payload)
            name, roles, expires, csrf, tag = data["n"], data["r"], data["e"], data["c"], data["p"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if not isinstance(expires, int) or expires <= self._clock():
            return None
        account = self._accounts.get(name)
        # schedule.yaml is the authority: a removed account or a changed password ends its sessions,
        # and roles taken away since login are taken away now.
        if account is None or not hmac.compare_digest(tag, self._password_tag(account.password_hash)):
            return None
        current = frozenset(roles) & frozenset(account.roles)
        if not current or not isinstance(csrf, str):
            return None
        if self._is_revoked(csrf):
            logger.info("a logged-out session's cookie was presented for account %s", name)
            return None
        return Session(name=name, roles=current, expires_at=float(expires), csrf=csrf)

    def max_age_s(self) -> int:
        return int(self.settings.session_hours * 3600)

    # -- logout ------------------------------------------------------------------------------------

    @staticmethod
    def _session_id(csrf: str) -> str:
        return hashlib.sha256(b"playout-session-id\0" + csrf.encode("utf-8", "replace")).hexdigest()[:32]

    def revoke(self, session: Session) -> None:
        """Log ``session`` out for good: its cookie, wherever copied, is refused from now on."""
        now = self._clock()
        with self._lock:
            self._load_revoked()
            self._revoked[self._session_id(session.csrf)] = int(session.expires_at) + 1
            # Pruned at expiry: an expired cookie is refused anyway, so the list stays as small as the
            # logouts of the last session_hours.
            self._revoked = {k: e for k, e in self._revoked.items() if e > now}
            self._save_revoked()
        logger.info("logout: account=%s", session.name)

    def _is_revoked(self, csrf: str) -> bool:
        with self._lock:
            self._load_revoked()
            return self._session_id(csrf) in self._revoked

    def _load_revoked(self) -> None:
        # Re-read when the file changes, so every Authenticator on one data folder agrees.
        path = self._revoked_file
        if path is None:
            return
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.error("cannot read the logout list %s: %s", path, exc)
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._revoked_stamp:
            return
        try:
            data = json.loads(path.read_text("utf-8"))
            loaded = {str(k): int(v) for k, v in data.items()}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            logger.error("logout list %s unreadable (%s); keeping the one in memory", path, exc)
            return
        now = self._clock()
        self._revoked = {k: e for k, e in {**self._revoked, **loaded}.items() if e > now}
        self._revoked_stamp = stamp

    def _save_revoked(self) -> None:
        path = self._revoked_file
        if path is None:
            return
        try:
            atomic_write_text(path, json.dumps(self._revoked, sort_keys=True))
            os.chmod(path, 0o600)
            st = path.stat()
            self._revoked_stamp = (st.st_mtime_ns, st.st_size)
        except OSError as exc:
            # The logout still holds in memory until a restart; say so where the technician looks.
            logger.error("cannot write the logout list %s: %s", path, exc)

    # -- tokens ------------------------------------------------------------------------------------

    def from_bearer(self, token: str | None) -> Principal | None:
        if not token or len(token) > 512:
            return None
        found = None
        for t in self.settings.tokens:
            # Compare with every token, not stopping at a match: the time taken says nothing.
            if verify_token(token, t.token_hash):
                found = t
        if found is None:
            return None
        return Principal(found.name, frozenset(found.roles), "token", None)


# ---------------------------------------------------------------- secret file


def load_or_create_secret(path: Path) -> bytes:
    """The cookie-signing key at ``path``; 32 random bytes written there (mode 0600) if it is missing.

    Created through a temporary file and a hard link, so two processes starting at once cannot end up
    with different keys, and a power cut never leaves a half-written one.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)  # fails if another process got there first: keep theirs
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links (FAT on a USB stick)
                os.replace(tmp, path)
            else:
                logger.info("created session secret %s", path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            logger.warning("session secret %s was readable by others; restricting it to 0600", path)
            os.chmod(path, 0o600)
        secret = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"Không đọc được tệp khóa phiên {path}: {exc.strerror}", code="AUTH_SECRET_UNREADABLE"
        ) from None
    if len(secret) < 32:
        raise ConfigError(
            f"Tệp khóa phiên {path} bị hỏng (quá ngắn); xóa tệp để tạo lại (mọi người sẽ phải đăng nhập lại)",
            code="AUTH_SECRET_INVALID",
        )
    return secret


# ---------------------------------------------------------------- FastAPI glue


def set_session_cookie(response: Response, auth: Authenticator, session: Session) -> None:
    """Hand the browser its session: HttpOnly (scripts cannot read it), SameSite=Strict (other sites'
    pages do not send it; CSRF tokens remain the real defence).  Not ``Secure``: the LAN API is plain HTTP.
    """
    response.set_cookie(
        COOKIE_NAME, auth.session_cookie(session), max_age=auth.max_age_s(), httponly=True, samesite="strict"
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, httponly=True, samesite="strict")


def end_session(request: Request, response: Response) -> None:
    """Logout: the session is revoked on the station (a copied cookie dies too), then the cookie cleared."""
    auth = _authenticator(request)
    session = auth.session_from_cookie(request.cookies.get(COOKIE_NAME))
    if session is not None:
        auth.revoke(session)
    clear_session_cookie(response)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def _authenticator(request: Request) -> Authenticator:
    auth = getattr(request.app.state, "auth", None)
    if not isinstance(auth, Authenticator):
        # A wiring mistake must fail closed, not let writes through.
        logger.error("app.state.auth is not set; refusing %s %s", request.method, request.url.path)
        raise HTTPException(503, "Chưa cấu hình đăng nhập cho trạm")
    return auth


def _principal(request: Request, auth: Authenticator) -> Principal | None:
    """Bearer first (scripts), then the session cookie (browsers); a bad bearer does not fall back."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return auth.from_bearer(credentials.strip())
    session = auth.session_from_cookie(request.cookies.get(COOKIE_NAME))
    return session.principal() if session else None


async def _presented_csrf(request: Request) -> str | None:
    token = request.headers.get(CSRF_HEADER)
    if token:
        return token
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        # Parsed here rather than with request.form(), which needs python-multipart even for this case.
        body = await request.body()
        if len(body) <= _MAX_FORM_BYTES:
            values = parse_qs(body.decode("latin-1"), max_num_fields=200).get(CSRF_FIELD)
            return values[0] if values else None
    elif ctype == "multipart/form-data":
        try:
            value = (await request.form()).get(CSRF_FIELD)
        except Exception:  # python-multipart missing or a broken body: no token presented
            return None
        return value if isinstance(value, str) else None
    return None


async def optional_principal(request: Request) -> Principal | None:
    """The caller if they proved who they are, else None (for pages that show more to staff)."""
    return _principal(request, _authenticator(request))


class PageRefused(Exception):
    """A page's answer when the caller may not see it: a redirect to the login form or a 403 page."""

    def __init__(self, response: Response):
        self.response = response


def guarded_page(handler):
    """For a web page's route (the station's and the centre's): a PageRefused raised inside it becomes
    the answer, so a page checks its caller in one line and still answers with a page, not JSON."""

    @functools.wraps(handler)  # FastAPI reads the handler's parameters through __wrapped__
    async def run(request: Request, **kwargs):
        try:
            return await handler(request, **kwargs)
        except PageRefused as refused:
            return refused.response

    return run


def require(action: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting only callers whose roles allow ``action``; it returns their Principal.

    @app.post("/api/bulletins/{id}/approve")
    def approve(id: str, who: Annotated[Principal, Depends(require("approve"))]): ...
    """
    if action not in PERMISSIONS:
        raise ValueError(f"unknown action {action!r}")  # a typo in a route must fail at import, not open it

    async def dependency(request: Request) -> Principal:
        auth = _authenticator(request)
        ip = _client_ip(request)
        principal = _principal(request, auth)
        if principal is None:
            logger.info("unauthenticated %s %s from %s", request.method, request.url.path, ip)
            raise HTTPException(401, "Cần đăng nhập", headers={"WWW-Authenticate": "Bearer"})
        if not principal.can(action):
            logger.warning("forbidden: %s %s wants %s from %s", principal.kind, principal.name, action, ip)
            raise HTTPException(403, f"Tài khoản không có quyền {ACTION_LABELS_VI[action]}")
        # A cookie is sent by the browser whatever page asks; only our own pages know the CSRF token.
        # A bearer token is never sent implicitly, so it needs no such proof.
        if principal.kind == "session" and request.method.upper() in UNSAFE_METHODS:
            presented = await _presented_csrf(request)
            if not presented or not hmac.compare_digest(
                presented.encode("utf-8", "replace"), (principal.csrf or "").encode()
            ):
                logger.warning(
                    "CSRF check failed: account %s, %s %s from %s",
                    principal.name,
                    request.method,
                    request.url.path,
                    ip,
                )
                raise HTTPException(403, "Phiên làm việc không hợp lệ (CSRF)")
        return principal

    dependency.__name__ = f"require_{action}"
    return dependency
