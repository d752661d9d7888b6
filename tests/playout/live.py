"""Test support: the app on a real uvicorn server on 127.0.0.1, and a raw HTTP/1.1 client.

The raw client exists because the bugs it tests live below what httpx lets a test do: a request whose
headers promise 300 MB, a body that never arrives, a connection that never sends a byte.  Every wait in it
is bounded (socket timeouts and a deadline).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import uvicorn

LOCALHOST = "127.0.0.1"


@contextlib.contextmanager
def serve(app, *, server: uvicorn.Server | None = None) -> Iterator[int]:
    """Run ``server`` (default: the station's own ``make_server``) in a thread; yield its port."""
    if server is None:
        from playout.limits import make_server

        server = make_server(app, LOCALHOST, 0)
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Answer:
    status: int | None  # None: the server closed without answering
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    sent: int = 0  # body bytes the server let us send

    def json(self):
        return json.loads(self.body)


def _parse(raw: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterable[bytes] = b"",
    *,
    timeout: float = 5.0,
) -> Answer:
    """One request on a fresh connection; the body may be an iterable of chunks, sent until the server
    answers or closes.  Returns whatever the server said within ``timeout`` seconds."""
    start = time.monotonic()
    deadline = start + timeout
    head = [f"{method} {path} HTTP/1.1", f"Host: {LOCALHOST}:{port}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    chunks = [body] if isinstance(body, bytes) else body
    received = b""
    sent = 0
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sock.setblocking(False)
        closed = False
        for chunk in chunks:
            # Before each chunk, see whether the server has already answered (or hung up).
            try:
                data = sock.recv(65536)
                if data:
                    received += data
                    if b"\r\n\r\n" in received:
                        break
                else:
                    closed = True
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed = True
                break
            if time.monotonic() > deadline:
                break
            view = memoryview(chunk)
            try:
                while view and time.monotonic() < deadline:
                    try:
                        n = sock.send(view)
                        sent += n
                        view = view[n:]
                    except BlockingIOError:
                        time.sleep(0.001)
            except OSError:  # the server closed while we were still sending: expected for a refusal
                break  # its answer may already be in our receive queue: read it below
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        while not closed and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                break
            except OSError:  # reset: whatever was queued before it has been read
                break
            if not data:
                break
            received += data
            status, hdrs, rest = _parse(received)
            if status is not None and "content-length" in hdrs and len(rest) >= int(hdrs["content-length"]):
                break
    status, hdrs, rest = _parse(received)
    return Answer(status, hdrs, rest, time.monotonic() - start, sent)


def zeros(total: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """``total`` bytes in chunks, without ever holding more than one chunk."""
    block = b"0" * chunk
    left = total
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")
