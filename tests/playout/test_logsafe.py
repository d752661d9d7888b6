"""Log safety: nothing a client names can forge a log line, and no flood of one message fills the card."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from playout.cli import setup_logging
from playout.logsafe import RepeatFilter, SafeFormatter, escape

FORGED = "tin.txt\nrelay OFF (forged line)"


@pytest.fixture
def daemon_log():
    """The daemon's own logging setup (playout.cli), writing to a buffer; removed afterwards."""
    stream = io.StringIO()
    handler = setup_logging(logging.INFO, stream)
    yield stream, handler
    logging.getLogger().removeHandler(handler)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_newline_in_a_logged_name_cannot_forge_a_line(daemon_log):
    stream, _ = daemon_log
    log = logging.getLogger("playout.daemon")
    log.warning("inbox file %s refused", FORGED)
    log.warning("inbox file %r refused", FORGED)
    log.warning("inbox file %s refused", Path(FORGED))  # not a str: str() of it is escaped too
    log.warning("by %(who)s", {"who": FORGED})
    log.error(ValueError(FORGED))  # logging an exception object: its text is anyone's
    log.info("slot %d at %.1f s, %s", 3, 1.5, None)  # numbers keep their formats
    out = lines(stream)
    assert len(out) == 6, out
    assert not any(line.startswith("relay OFF") for line in out)
    assert out[0].endswith("inbox file tin.txt\\nrelay OFF (forged line) refused")
    assert out[1].endswith("inbox file 'tin.txt\\nrelay OFF (forged line)' refused")  # repr's own escape
    assert out[5].endswith("slot 3 at 1.5 s, None")


def test_other_control_and_reordering_characters_are_escaped_vietnamese_is_not():
    assert escape("Kính thưa bà con – phường Đông Hải") == "Kính thưa bà con – phường Đông Hải"
    assert escape("a\rb\x1b[31mc\x00d\u2028e\u202ef\tg") == "a\\rb\\x1b[31mc\\x00d\\u2028e\\u202ef\\tg"
    assert escape("e\u0301") == "e\u0301"  # a combining accent (NFD Vietnamese) is text, not control


def test_a_traceback_continues_on_indented_lines(daemon_log):
    stream, _ = daemon_log
    try:
        raise RuntimeError(FORGED)
    except RuntimeError:
        logging.getLogger("playout.api").exception("upload of %s failed", "a.txt")
    out = lines(stream)
    assert out[0].endswith("upload of a.txt failed")
    assert all(line.startswith("    ") for line in out[1:]) and len(out) > 2
    assert any(line.strip() == "relay OFF (forged line)" for line in out)  # visibly a continuation


def test_a_flood_of_one_message_is_collapsed(daemon_log):
    stream, handler = daemon_log
    log = logging.getLogger("asyncio")
    for i in range(10_000):
        log.error("socket.accept() out of system resource: %s", f"[Errno 24] {i}")
    logging.getLogger("playout.daemon").warning("relay ON")  # another place is not held back
    out = lines(stream)
    assert len(out) == 11 and out[-1].endswith("relay ON"), out[-3:]
    assert len(stream.getvalue()) < 2_000
    (repeats,) = [f for f in handler.filters if isinstance(f, RepeatFilter)]
    repeats.flush()  # at shutdown, or at the next interval: the count is written
    summary = lines(stream)[-1]
    assert "socket.accept() out of system resource" in summary and "repeated 9990 more times" in summary


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_the_summary_comes_after_the_interval_and_the_message_passes_again():
    clock = Clock()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    repeats = RepeatFilter(burst=3, interval_s=60, clock=clock)
    repeats.sink = handler.handle
    handler.addFilter(repeats)
    log = logging.getLogger("tests.logsafe.interval")
    log.propagate = False
    log.addHandler(handler)
    try:
        for _ in range(50):
            log.warning("client %s sent junk", "10.0.0.9\nforged")
        assert len(lines(stream)) == 3
        clock.t += 61
        log.warning("client %s sent junk", "10.0.0.9")
        out = lines(stream)
        assert (
            out[3] == "WARNING client 10.0.0.9\\nforged sent junk (repeated 47 more times in 61 s, not shown)"
        )
        assert out[4] == "WARNING client 10.0.0.9 sent junk" and len(out) == 5
        # A flood that stops still gets its count written, by the sweep any later record runs (another
        # call site is another place: 10 records, 3 shown).
        for _ in range(10):
            log.warning("client %s sent junk", "x")
        clock.t += 61
        logging.getLogger("tests.logsafe.interval").error("something else")
        assert any("repeated 7 more times in 61 s" in line for line in lines(stream))
    finally:
        log.removeHandler(handler)


def test_setup_logging_replaces_its_own_handler():
    first = setup_logging(logging.INFO, io.StringIO())
    second = setup_logging(logging.INFO, io.StringIO())
    try:
        root = logging.getLogger().handlers
        assert second in root and first not in root
    finally:
        logging.getLogger().removeHandler(second)
