"""What one client on the ward LAN may cost the station: body size, connections, idle time, descriptors.

The process that keys the amplifier also serves the LAN, so nothing a client sends may starve the on-air
path of memory or file descriptors.  Three layers, outermost first::

    accept ──► StationProtocol (uvicorn's h11 protocol, bounded)
                 · at most ``max_connections`` open; when full, the oldest connection with no request in
                   flight is closed to make room, else the new one is closed at once (never queued)
                 · request headers within ``header_timeout_s`` of the connection (or the previous
                   response), the body within ``body_timeout_s``: a silent or dribbling client is cut off
           ──► BodyLimit (pure ASGI, before FastAPI parses anything)
                 · Content-Length over the cap: 413 before a byte of body is read
                 · no length (chunked): bytes counted as they arrive, 413 at the cap
                 · a route may add a gate (uploads: the caller's credentials) checked before the body
           ──► the app

``fd_budget()`` raises RLIMIT_NOFILE's soft limit toward the hard one and works out how many
connections fit while ``reserve`` descriptors stay free for the on-air path (WAV files, the database,
the audio device, renders); ``make_server`` builds the uvicorn server with all of the above.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Cap on every request body without a rule of its own: logins, reasons, forms are a few hundred bytes
#: (a 1024-character password, %-encoded, is 12 kB at worst).
DEFAULT_BODY_BYTES = 16 * 1024

# ------------------------------------------------------------------------------------------ bodies


@dataclass(frozen=True)
class Refusal:
    """An answer sent instead of running the app."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_refusal(status: int, detail: Any, headers: tuple[tuple[str, str], ...] = ()) -> Refusal:
    """The API's error shape (``{"detail": …}``, as FastAPI's HTTPException gives)."""
    return Refusal(status, json.dumps({"detail": detail}, ensure_ascii=False).encode(), headers=headers)


def html_refusal(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Refusal:
    """A bare Vietnamese page for the web forms (the message is ours, never the client's text)."""
    page = (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Lỗi – Loa phường</title>'
        f'</head><body><p>{message}</p><p><a href="/">Về trang Tổng quan</a></p></body></html>'
    )
    return Refusal(status, page.encode(), "text/html; charset=utf-8", headers)


Gate = Callable[[Scope], Awaitable[Refusal | None]]


@dataclass(frozen=True)
class BodyRule:
    """A route whose body may be larger than the default, or must pass a gate before it is read."""

    method: str
    path: str
    max_bytes: int
    too_large: Callable[[int], Refusal]
    gate: Gate | None = None


def too_large_refusal(path: str, limit: int) -> Refusal:
    """The default 413: JSON for the API, a page for the web forms."""
    kb = max(1, limit // 1024)
    message = f"Dữ liệu gửi lên quá lớn (tối đa {kb} KB)."
    if path.startswith("/api/") or path in ("/metrics", "/openapi.json"):
        return json_refusal(413, {"code": "REQUEST_TOO_LARGE", "message": message, "limit_bytes": limit})
    return html_refusal(413, message)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: every request body is capped before the app reads it (see the module docstring).

    FastAPI reads a form or JSON body *before* it runs the dependencies that check credentials, so the
    caps and gates live here, below it.
    """

    def __init__(
        self, app: ASGIApp, *, rules: tuple[BodyRule, ...] = (), default_max: int = DEFAULT_BODY_BYTES
    ):
        self.app = app
        self.rules = {(r.method.upper(), r.path): r for r in rules}
        self.default_max = default_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        rule = self.rules.get((scope.get("method", "GET").upper(), path))
        limit = rule.max_bytes if rule else self.default_max

        def refusal_for_size() -> Refusal:
            return rule.too_large(limit) if rule else too_large_refusal(path, limit)

        if rule is not None and rule.gate is not None:
            refused = await rule.gate(scope)
            if refused is not None:
                await _answer(send, refused)
                return

        length = _content_length(scope)
        if length is not None and length > limit:
            logger.info("refused a %d-byte body for %s (cap %d)", length, path, limit)
            await _answer(send, refusal_for_size())
            return

        received = 0
        answered = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if started:  # too late for a 413: the app has begun its answer; drop the connection
                        raise _TooLarge
                    logger.info("cut off a body over %d bytes for %s", limit, path)
                    answered = True
                    await _answer(send, refusal_for_size())
                    # The app sees the client gone and stops reading; whatever it answers is dropped.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not answered:
                raise
            # The app tripped over the disconnect we handed it after answering 413: nothing to report.


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed length before we ever see it
    return None


async def _answer(send: Send, refusal: Refusal) -> None:
    # Connection: close, because the body we did not read is still on its way.
    headers = [
        (b"content-type", refusal.content_type.encode()),
        (b"content-length", str(len(refusal.body)).encode()),
        (b"connection", b"close"),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in refusal.headers]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": refusal.body, "more_body": False})


# ------------------------------------------------------------------------------------- connections


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 200
    header_timeout_s: float = 5.0  # connection (or last response) → complete request headers
    body_timeout_s: float = 60.0  # headers → complete body (a 1 MB upload on weak Wi-Fi: 17 kB/s)
    keep_alive_s: int = 5  # uvicorn's own timer between requests on one connection
    # The kernel's queue before accept.  asyncio accepts up to this many per loop pass, and a socket
    # closed to make room is released only on the next pass: twice this is what a flood adds to the cap.
    backlog: int = 32
    max_header_bytes: int = 16 * 1024  # h11 refuses larger request heads (cookie 4 kB, URL 2 kB)

    @classmethod
    def within(cls, budget: FdBudget, **overrides: Any) -> ConnectionLimits:
        """Limits that fit the descriptor budget ``fd_budget`` worked out."""
        return cls(max_connections=budget.max_connections, backlog=budget.backlog, **overrides)


@dataclass
class ConnectionStats:
    """Counters for health and metrics; updated on the server's event loop only."""

    open: int = 0
    refused: int = 0  # closed at accept: full, and every open connection had a request in flight
    evicted: int = 0  # idle connections closed to make room for a new one
    timed_out: int = 0  # silent or dribbling clients cut off
    peak: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Registry:
    limits: ConnectionLimits
    stats: ConnectionStats = field(default_factory=ConnectionStats)
    # Oldest first; a connection moves to the end each time it completes a request (LRU).
    open: collections.OrderedDict = field(default_factory=collections.OrderedDict)
    last_warning: float = 0.0


class StationProtocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and request deadlines.

    uvicorn (0.54, h11) arms no timer for a connection until it has answered a request on it: a client
    that connects and sends nothing, or sends one header byte a minute, holds its socket for ever.  Its
    ``limit_concurrency`` answers 503 only once a request has arrived, and counts idle connections too.
    """

    registry: _Registry  # set on the subclass make_server builds, one per server

    def connection_made(self, transport) -> None:  # type: ignore[override]
        reg = self.registry
        self._deadline: Any = None
        self._phase = "headers"
        if len(reg.open) >= reg.limits.max_connections and not self._make_room():
            reg.stats.refused += 1
            self._warn("connection cap reached (%d, all busy): refusing new connections")
            transport.close()
            self.transport = None  # type: ignore[assignment]
            return
        super().connection_made(transport)
        reg.open[self] = None
        reg.stats.open = len(reg.open)
        reg.stats.peak = max(reg.stats.peak, reg.stats.open)
        self._arm(reg.limits.header_timeout_s)

    def _make_room(self) -> bool:
        for victim in self.registry.open:
            if victim._idle():
                self.registry.stats.evicted += 1
                self._warn("connection cap reached (%d): closing the oldest idle connections")
                victim._close()
                return True
        return False

    def _idle(self) -> bool:
        if self.transport is None or self.transport.is_closing():
            return True
        busy = self.cycle is not None and not self.cycle.response_complete
        return not busy and self.conn.their_state in (h11.IDLE, h11.DONE, h11.MUST_CLOSE)

    def _close(self) -> None:
        self._disarm()
        self.registry.open.pop(self, None)
        self.registry.stats.open = len(self.registry.open)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _warn(self, message: str) -> None:
        # A flood would log one line per connection: one line a minute, with the totals, is enough.
        reg = self.registry
        now = time.monotonic()
        if now - reg.last_warning >= 60:
            reg.last_warning = now
            logger.warning(message + " (so far: %s)", reg.limits.max_connections, reg.stats.as_dict())

    # -- deadlines ----------------------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        self.registry.stats.timed_out += 1
        logger.debug("closing %s: no complete request %s in time", self.client, self._phase)
        self._close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport is None or self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # Waiting for (the rest of) a request head: a deadline runs from the first byte if none does.
            if self._deadline is None:
                self._phase = "headers"
                self._arm(self.registry.limits.header_timeout_s)
        elif state is h11.SEND_BODY:
            if self._phase != "body":
                self._phase = "body"
                self._arm(self.registry.limits.body_timeout_s)
        else:  # the whole request is in: the app takes its time, the client is not to blame
            self._phase = "app"
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self in self.registry.open:
            self.registry.open.move_to_end(self)
        # uvicorn's keep-alive timer covers the silence before the next request; ours starts with its
        # first byte (data_received), so a dribbled second request is bounded like the first.
        self._phase = "headers"
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.transport is None:  # refused in connection_made: uvicorn never saw it
            return
        self.registry.open.pop(self, None)
        self.registry.stats.open = len(self.registry.open)
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self.transport is not None:
            super().shutdown()


class StationServer(uvicorn.Server):
    """uvicorn.Server whose connections are bounded (see ``make_server``); ``stats()`` for health."""

    registry: _Registry

    def stats(self) -> dict[str, int]:
        return {**self.registry.stats.as_dict(), "max_connections": self.registry.limits.max_connections}


def make_server(
    app: ASGIApp, host: str, port: int, *, limits: ConnectionLimits | None = None
) -> StationServer:
    """The station's uvicorn server: bounded connections, deadlines, a small backlog, logs to the root
    logger (so the daemon's log safety applies to uvicorn's and asyncio's messages too).

    server = make_server(create_app(station), "0.0.0.0", 8080, limits=ConnectionLimits.within(fd_budget()))
    threading.Thread(target=server.run).start()
    """
    limits = limits or ConnectionLimits()
    registry = _Registry(limits)
    protocol = type("StationProtocol", (StationProtocol,), {"registry": registry})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        # Our cap counts connections itself; uvicorn's would also count idle ones and answer a real
        # request 503 while idle sockets sit open, so it sits one above ours, as a backstop on tasks.
        limit_concurrency=limits.max_connections + 1,
        timeout_keep_alive=limits.keep_alive_s,
        backlog=limits.backlog,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        log_config=None,  # no handler of uvicorn's own: its records reach the root logger's filters
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    server = StationServer(config)
    server.registry = registry
    return server


# ------------------------------------------------------------------------------------- descriptors


@dataclass(frozen=True)
class FdBudget:
    soft: int  # RLIMIT_NOFILE soft limit after raising it
    hard: int
    open_at_start: int  # descriptors already open when the budget was made
    reserve: int  # kept free for the on-air path
    per_connection: int  # a socket, plus a file it may open (a WAV preview, a spooled upload)
    backlog: int  # a flood holds up to twice this above the cap: accepted, or closed but not yet released
    max_connections: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _open_fds() -> int:
    with contextlib.suppress(OSError):
        return len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself opened
    return 64  # not Linux: a guess on the safe side


def fd_budget(
    wanted_connections: int = 200,
    *,
    reserve: int = 64,
    per_connection: int = 2,
    backlog: int = 32,
    target_soft: int = 4096,
) -> FdBudget:
    """Raise the soft descriptor limit toward the hard one (up to ``target_soft``) and work out how many
    connections fit while ``reserve`` descriptors stay free.  Never lowers a limit.

    The Pi's default is 1024 soft (systemd), where 1 100 idle connections used to take every descriptor
    and the next slot could not open its WAV.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = target_soft if hard == resource.RLIM_INFINITY else min(hard, target_soft)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError) as exc:
            logger.warning("could not raise the open-file limit from %d to %d: %s", soft, ceiling, exc)
    usable = (soft if soft != resource.RLIM_INFINITY else target_soft) - _open_fds() - reserve - 2 * backlog
    fits = max(1, usable // per_connection)
    budget = FdBudget(
        soft=int(soft if soft != resource.RLIM_INFINITY else target_soft),
        hard=int(hard if hard != resource.RLIM_INFINITY else -1),
        open_at_start=_open_fds(),
        reserve=reserve,
        per_connection=per_connection,
        backlog=backlog,
        max_connections=min(wanted_connections, fits),
    )
    if budget.max_connections < min(wanted_connections, 32):
        logger.warning(
            "only %d API connections fit in the open-file limit: %s", budget.max_connections, budget
        )
    return budget
