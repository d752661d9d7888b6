"""Tell systemd how the daemon is doing: the sd_notify protocol, with no dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a datagram socket: a path, or an abstract name
written with a leading ``@``) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``).
The daemon sends newline-separated ``KEY=value`` assignments in one datagram:

* ``READY=1`` once the relay is off and the scheduler runs (systemd holds back ``After=`` units
  and reports "activating" until then);
* ``WATCHDOG=1`` at least every :func:`watchdog_interval` seconds, from the loop that would hang,
  so a stuck daemon is killed and restarted (and ``ExecStopPost`` unkeys the relay);
* ``STATUS=…`` free text for ``systemctl status playout``;
* ``STOPPING=1`` when shutting down.

Example::

    from playout import notify

    notify.notify("READY=1", "STATUS=Chờ khung giờ sáng 06:00")
    interval = notify.watchdog_interval()   # None: no watchdog wanted
    ...
    notify.notify("WATCHDOG=1")

Outside systemd (a terminal, the tests, ``playout demo``) every call is a quiet no-op returning False.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)

__all__ = ["notify", "watchdog_interval"]


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        # Abstract namespace: systemd's "@name" is the socket name "\0name".
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock:… and the like: not used by the systemd versions we target


def notify(*lines: str) -> bool:
    """Send ``lines`` (``"READY=1"``, ``"STATUS=…"``, …) to systemd as one datagram.

    Returns True if the datagram was sent, False when not under systemd or when sending failed
    (logged at DEBUG/WARNING): a notification is never worth crashing the daemon for.
    """
    target = os.environ.get("NOTIFY_SOCKET", "")
    if not target or not lines:
        return False
    address = _address(target)
    if address is None:
        logger.warning("NOTIFY_SOCKET=%r: unsupported address; systemd not notified", target)
        return False
    # One assignment per line: a newline inside a value (a multi-line status) would start a new one.
    message = "\n".join(" ".join(line.splitlines()) for line in lines).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # Never block: the on-air thread reports status, and a busy or stuck reader must not keep a
            # bulletin from ending.  A full queue drops this message; the next one says the same.
            sock.setblocking(False)
            sock.sendto(message, address)
    except BlockingIOError:
        logger.debug("systemd's notify queue is full; status dropped")
        return False
    except OSError as exc:
        logger.warning("could not notify systemd at %s: %s", target, exc)
        return False
    logger.debug("sd_notify: %s", message.decode("utf-8").replace("\n", " | "))
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half systemd's timeout), or None if no watchdog applies.

    None when ``$WATCHDOG_USEC`` is unset, not a positive integer, or ``$WATCHDOG_PID`` names another
    process (the variables were inherited, e.g. by a child of the daemon).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            logger.warning("WATCHDOG_PID=%r is not a number; watchdog ignored", pid)
            return None
    try:
        timeout_us = int(usec)
    except ValueError:
        if usec:
            logger.warning("WATCHDOG_USEC=%r is not a number; watchdog ignored", usec)
        return None
    if timeout_us <= 0:
        return None
    # systemd's own advice (sd_watchdog_enabled(3)): ping at half the timeout, so one late ping is
    # not yet a restart.
    return timeout_us / 2_000_000


#: What systemd hands the daemon to speak for it; a child process given these could speak for it too.
SUPERVISOR_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")


def child_environment(*, import_from: str | None = None) -> dict[str, str]:
    """The environment for a child process (a render worker, a file reader, ``timedatectl``): the
    daemon's, without the supervisor's variables.  systemd's tools write to ``$NOTIFY_SOCKET`` when they
    find it and then block on a socket nobody reads for them; and a child's READY or WATCHDOG would be
    taken for the daemon's.  ``import_from``: a folder put first on the child's ``PYTHONPATH`` (the
    station's own packages, for ``python -m``)."""
    env = {k: v for k, v in os.environ.items() if k not in SUPERVISOR_VARS}
    if import_from:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (import_from, env.get("PYTHONPATH")) if p)
    return env
