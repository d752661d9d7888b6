"""sd_notify against real datagram sockets, as systemd would listen."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from playout.notify import notify, watchdog_interval


@pytest.fixture
def listener(tmp_path, monkeypatch):
    """A bound AF_UNIX datagram socket at a path, with NOTIFY_SOCKET pointing at it."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_notify_sends_one_datagram(listener):
    assert notify("READY=1", "STATUS=Chờ khung giờ sáng 06:00") is True
    assert listener.recv(4096) == "READY=1\nSTATUS=Chờ khung giờ sáng 06:00".encode()


def test_each_call_is_its_own_datagram(listener):
    assert notify("WATCHDOG=1")
    assert notify("STOPPING=1")
    assert listener.recv(4096) == b"WATCHDOG=1"
    assert listener.recv(4096) == b"STOPPING=1"


def test_a_newline_inside_a_value_cannot_start_a_new_assignment(listener):
    assert notify("STATUS=dòng một\nREADY=1")
    assert listener.recv(4096) == "STATUS=dòng một READY=1".encode()


def test_abstract_socket(monkeypatch):
    name = f"playout-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"


def test_not_under_systemd_is_a_quiet_no(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False


def test_nothing_to_say_sends_nothing(listener):
    assert notify() is False


@pytest.mark.parametrize("target", ["relative/path", "vsock:2:1234"])
def test_unsupported_addresses_are_not_errors(monkeypatch, target):
    monkeypatch.setenv("NOTIFY_SOCKET", target)
    assert notify("READY=1") is False


def test_a_gone_socket_is_not_an_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert notify("WATCHDOG=1") is False
    assert "could not notify systemd" in caplog.text


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 15.0),
        ("30000000", "self", 15.0),
        ("500000", "self", 0.25),
        ("30000000", "other", None),
        ("30000000", "abc", None),
        (None, None, None),
        ("", None, None),
        ("0", None, None),
        ("-5", None, None),
        ("thirty", None, None),
    ],
)
def test_watchdog_interval(monkeypatch, usec, pid, expected):
    for name, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            value = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}.get(value, value)
            monkeypatch.setenv(name, value)
    assert watchdog_interval() == expected


def test_a_reader_that_stops_reading_never_blocks_the_sender(tmp_path, monkeypatch):
    import socket
    import threading

    from playout.notify import notify

    path = tmp_path / "full.sock"
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(str(path))  # bound, never read: the queue fills up
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    done = threading.Event()

    def flood():
        for i in range(5000):
            notify(f"STATUS=message {i} " + "x" * 200)
        done.set()

    threading.Thread(target=flood, daemon=True).start()
    assert done.wait(10), "notify() blocked on a full queue"
    reader.close()


def test_a_child_process_never_gets_the_supervisors_socket(monkeypatch):
    """A render worker or timedatectl handed $NOTIFY_SOCKET would speak for the daemon, or block on it."""
    from playout.notify import child_environment

    monkeypatch.setenv("NOTIFY_SOCKET", "@playout-test")
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = child_environment(import_from="/opt/playout")
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env
    assert env["PYTHONPATH"].split(":") == ["/opt/playout", "/elsewhere"] and env["PATH"]
