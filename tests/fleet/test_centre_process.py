"""The centre as its administrator runs it: `playout centre …` commands and `playout centre serve --broker`
as a process, with a real Mosquitto. What the CLI changes while the centre runs takes effect in seconds,
and SIGTERM (systemd's stop) leaves no broker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from tests.station import free_port


def run(cmd: list[str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait(predicate, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(url: str, *, data: bytes | None = None, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_cli_changes_reach_a_running_centre_and_sigterm_stops_its_broker(tmp_path, playout_cmd):
    folder = tmp_path / "centre"
    http, mqtt = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    run(playout_cmd, "centre", "init", str(folder), "--broker-host", "127.0.0.1", "--broker-port", str(mqtt))
    run(playout_cmd, "centre", "station", str(folder), "dong-hai", "--centre-url", url + "/")
    log = open(tmp_path / "centre.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [*playout_cmd, "centre", "serve", str(folder), "--port", str(http), "--broker"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait(lambda: status_of(url + "/dang-nhap") == 200, 30, "the centre to answer")
        broker_pid = int((folder / "broker" / "mosquitto.pid").read_text())
        # An operator account made while the centre runs can log in within seconds.
        out = run(
            playout_cmd,
            "centre",
            "account",
            str(folder),
            "lan",
            "--role",
            "operator",
            stdin="mat-khau-cua-lan\n",
        )
        assert "lan" in out
        form = urllib.parse.urlencode({"name": "lan", "password": "mat-khau-cua-lan"}).encode()
        # (Tried every 2.5 s: five wrong logins a minute from one address are throttled, as they should be.)
        wait(
            lambda: status_of(url + "/dang-nhap", data=form) == 303,
            10,
            "the new account to log in",
            every=2.5,
        )
        # An approver account without a signing key is told how to get one.
        out = run(
            playout_cmd,
            "centre",
            "account",
            str(folder),
            "hoa",
            "--role",
            "approver",
            stdin="mat-khau-cua-hoa\n",
        )
        assert "playout centre approver" in out
        # A monitoring token, and a station registered while it runs: both accepted without a restart.
        token = (
            run(playout_cmd, "centre", "token", str(folder), "giam-sat", "--role", "technician")
            .split(": ")[1]
            .split()[0]
        )
        reader = {"Authorization": f"Bearer {token}"}
        wait(lambda: status_of(url + "/api/fleet/stations", headers=reader) == 200, 10, "the token")
        run(playout_cmd, "centre", "station", str(folder), "vinh-hai", "--centre-url", url + "/")
        station_token = (folder / "stations" / "vinh-hai" / "token").read_text().strip()
        rows = json.dumps(
            {
                "station": "vinh-hai",
                "rows": [{"id": 1, "scheduled_at": "2026-12-01T06:00:00+07:00", "status": "played"}],
            }
        ).encode()
        post = {"Authorization": f"Bearer {station_token}", "Content-Type": "application/json"}
        wait(
            lambda: status_of(url + "/api/fleet/asrun", data=rows, headers=post) == 200, 10, "the new station"
        )
        # An approver whose key file was copied gets a new key; the audit says so.
        run(playout_cmd, "centre", "approver", str(folder), "tinh")
        assert "đã đổi khóa ký của tinh" in run(
            playout_cmd, "centre", "approver", str(folder), "tinh", "--rotate"
        )
        # Anonymous readers get nothing.
        assert status_of(url + "/api/fleet/stations") == 401
        audit = urllib.request.urlopen(
            urllib.request.Request(url + "/api/centre/audit", headers=reader), timeout=5
        )
        actions = [(r["action"], r["subject"]) for r in json.loads(audit.read())["audit"]]
        assert (
            ("keys", "tinh") in actions
            and ("account", "lan") in actions
            and ("station", "vinh-hai") in actions
        )
        # systemd stops the service with SIGTERM: the centre exits and takes its Mosquitto with it.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        wait(
            lambda: not os.path.exists(f"/proc/{broker_pid}") or _zombie(broker_pid), 10, "mosquitto to stop"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
