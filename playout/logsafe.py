"""Logs that no client can flood or forge.

The journal lives on the Pi's SD card, and much of what the station logs is named by someone else: an
inbox file's name, an account name typed at the login form, a client's address.  Two guards, installed on
the daemon's log handler by ``install`` (``playout.cli`` does it):

``RepeatFilter``
    Lets the first ``burst`` records from one place (logger, level, call site, message template) through
    per ``interval_s``, then holds the rest back and says once how many it held: ``… (repeated 1234 more
    times in 60 s)``.  1 100 idle connections once made asyncio log an accept error many times a second and
    grew the log by 318 MB in 80 s.

``SafeFormatter``
    Escapes control characters (``\\n``, ``\\r``, ESC, NUL, Unicode line separators, bidi overrides) in every
    value interpolated into a message, so a file named ``tin.txt\\nrelay OFF (forged line)`` cannot write a
    line of its own; any newline left (a traceback) starts an indented continuation, never a fresh line.
"""

from __future__ import annotations

import logging
import numbers
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONTINUATION = "\n    "

# C0 and C1 controls, DEL, and the invisible characters that move or reorder what a terminal shows.
_UNSAFE = {c: None for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}
_UNSAFE.update({c: None for c in (0x2028, 0x2029, 0x200E, 0x200F, 0x061C, *range(0x202A, 0x202F))})
_UNSAFE.update({c: None for c in range(0x2066, 0x206A)})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every control or reordering character written as an escape (Vietnamese untouched)."""
    if text.isprintable():  # every character _UNSAFE lists is non-printable: the common case, no copy
        return text
    out = []
    for c in text:
        if ord(c) in _UNSAFE:
            out.append(_NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"))
        else:
            out.append(c)
    return "".join(out)


class _Escaped:
    """Stands in for a logged value: formats as the value would (%s, %r), escaped."""

    __slots__ = ("value",)

    def __init__(self, value: object):
        self.value = value

    def __str__(self) -> str:
        return escape(str(self.value))

    def __repr__(self) -> str:
        return escape(repr(self.value))

    def __format__(self, spec: str) -> str:
        return escape(format(self.value, spec))


def _safe_arg(value: object) -> object:
    # Numbers stay numbers so %d and %.1f keep working; they cannot carry a newline anyway.
    if value is None or isinstance(value, (numbers.Number, _Escaped)):
        return value
    return _Escaped(value)


def escape_args(args: Any) -> Any:
    if isinstance(args, Mapping):
        return {k: _safe_arg(v) for k, v in args.items()}
    if isinstance(args, tuple):
        return tuple(_safe_arg(a) for a in args)
    return args


class SafeFormatter(logging.Formatter):
    """A Formatter whose output is always one line per record as far as a reader can tell."""

    def format(self, record: logging.LogRecord) -> str:
        args, msg = record.args, record.msg
        try:
            if args:
                record.args = escape_args(args)
            elif not isinstance(msg, str):
                record.msg = _Escaped(msg)  # logger.error(exc): the exception's text may be anyone's
            text = super().format(record)
        finally:
            record.args, record.msg = args, msg
        # Tracebacks and deliberate multi-line messages: every further line is indented, so nothing
        # after a newline can pass for a record of its own.
        if "\n" in text or "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", CONTINUATION)
        return text


class RepeatFilter(logging.Filter):
    """Collapse repeated records: ``burst`` per ``interval_s`` from one place, then one summary.

    Attach to a handler; ``sink`` is where summaries go (``install`` points it at the handler).  The
    summary for a place is written when its next record arrives after the interval, or by the sweep that
    any record triggers once an interval, so a flood that stops still gets its count written.
    """

    def __init__(
        self,
        burst: int = 10,
        interval_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_places: int = 4096,
    ):
        super().__init__()
        self.burst = burst
        self.interval_s = interval_s
        self.clock = clock
        self.max_places = max_places
        self.sink: Callable[[logging.LogRecord], object] | None = None
        self._lock = threading.Lock()
        # place -> [window start, records in window, held back, first held record]
        self._places: dict[tuple, list] = {}
        self._swept = clock()

    @staticmethod
    def _place(record: logging.LogRecord) -> tuple:
        # The call site makes a place finite even when a message was formatted before logging (an
        # f-string); the template separates the rare call site that logs different templates.
        template = record.msg if isinstance(record.msg, str) and record.args else ""
        return (record.name, record.levelno, record.pathname, record.lineno, template)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "playout_summary", False):
            return True
        now = self.clock()
        summaries: list[logging.LogRecord] = []
        with self._lock:
            place = self._place(record)
            state = self._places.get(place)
            if state is not None and now - state[0] >= self.interval_s:
                if state[2]:
                    summaries.append(self._summary(state, now))
                state = None
            if state is None:
                if len(self._places) >= self.max_places:
                    self._sweep(now, summaries, force=True)
                state = self._places[place] = [now, 0, 0, None]
            state[1] += 1
            passed = state[1] <= self.burst
            if not passed:
                state[2] += 1
                if state[3] is None:
                    state[3] = record
            if now - self._swept >= self.interval_s:
                self._sweep(now, summaries)
        for summary in summaries:
            self._emit(summary)
        return passed

    def _sweep(self, now: float, summaries: list, force: bool = False) -> None:
        self._swept = now
        for place, state in list(self._places.items()):
            if force or now - state[0] >= self.interval_s:
                if state[2]:
                    summaries.append(self._summary(state, now))
                del self._places[place]

    def _summary(self, state: list, now: float) -> logging.LogRecord:
        first: logging.LogRecord = state[3]
        summary = logging.makeLogRecord(first.__dict__)
        summary.exc_info = summary.exc_text = summary.stack_info = None
        summary.msg = "%s (repeated %d more times in %d s, not shown)"
        summary.args = (first.getMessage()[:500], state[2], max(1, round(now - state[0])))
        summary.playout_summary = True
        summary.created = time.time()
        return summary

    def flush(self) -> None:
        """Write the summaries still pending (at shutdown)."""
        summaries: list[logging.LogRecord] = []
        with self._lock:
            self._sweep(self.clock(), summaries, force=True)
        for summary in summaries:
            self._emit(summary)

    def _emit(self, record: logging.LogRecord) -> None:
        if self.sink is not None:
            self.sink(record)


def install(handlers: Iterable[logging.Handler], fmt: str = DEFAULT_FORMAT, **repeat: Any) -> None:
    """Give each handler the SafeFormatter and a RepeatFilter of its own (summaries go to that handler)."""
    for handler in handlers:
        handler.setFormatter(SafeFormatter(fmt))
        repeats = RepeatFilter(**repeat)
        repeats.sink = handler.handle
        handler.addFilter(repeats)
