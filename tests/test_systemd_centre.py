"""The centre's systemd unit and its installer: systemd-analyze on the unit, the installer's dry run with
every command that changes the system stubbed out, and then both for real under systemd as PID 1 in a
throwaway container (tests/systemd_box.py): install, serve, add a station while running, re-install,
kill, stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.systemd_box import (
    INSTALLED_PLAYOUT,
    SystemdBox,
    analyze,
    base_python_home,
    directives,
    exposure_level,
    runnable_copy,
)

UNIT = ROOT / "systemd" / "playout-centre.service"
INSTALL = ROOT / "systemd" / "install-centre.sh"
DATA = "/var/lib/playout-centre"
# Measured 1.4 when written; the station's unit is held to 4.0. A centre holds every ward's signing keys
# and drives no hardware: it is held tighter.
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return directives(UNIT.read_text(encoding="utf-8"))


@pytest.fixture
def runnable_unit(tmp_path) -> Path:
    """The unit with its command pointing at an executable that exists here, so verify can pass."""
    return runnable_copy(UNIT, tmp_path)


# -- the unit, read by systemd-analyze -----------------------------------------------------------------


def test_systemd_analyze_verify_is_clean(runnable_unit):
    done = analyze("verify", runnable_unit.name, cwd=runnable_unit.parent)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    assert output == "", output


def test_hardening_exposure_is_low(runnable_unit):
    exposure, output = exposure_level(runnable_unit)
    assert exposure is not None, output
    print(f"systemd-analyze security: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, output


def test_exec_start_is_a_command_the_cli_accepts(unit):
    from playout.cli import build_parser

    (exec_start,) = unit["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == INSTALLED_PLAYOUT
    args = build_parser().parse_args(argv[1:])
    assert (args.command, args.centre_command) == ("centre", "serve")
    assert (args.dir, args.host, args.port, args.broker) == (DATA, "0.0.0.0", 8090, True)


def test_unit_contract(unit):
    # The centre sends no READY=1: Type=notify would have systemd kill it when the start times out.
    assert unit["Type"] == ["exec"]
    assert "NotifyAccess" not in unit and "WatchdogSec" not in unit
    assert unit["Restart"] == ["always"]
    assert unit["StartLimitIntervalSec"] == ["0"]
    assert unit["User"] == ["playout-centre"] and unit["Group"] == ["playout-centre"]
    assert unit["StateDirectory"] == ["playout-centre"]
    assert unit["WorkingDirectory"] == [DATA]
    assert DATA in unit["ReadWritePaths"]
    assert unit["ProtectSystem"] == ["strict"]
    # Mosquitto is a child in the unit's control group: a stop, or a crash of the centre, must take it
    # too (else its pid file names a live broker and the next start refuses), and before SIGKILL time.
    assert unit.get("KillMode", ["control-group"]) == ["control-group"]
    assert unit.get("SendSIGKILL", ["yes"]) == ["yes"]
    assert 10 <= int(unit["TimeoutStopSec"][0]) <= 60
    # One descriptor per station in Mosquitto, up to 1000 connections in the centre.
    assert int(unit["LimitNOFILE"][0]) >= 8192
    assert {"time-sync.target", "network-online.target"} <= set(unit["After"][0].split())
    assert "PYTHONUNBUFFERED=1" in unit["Environment"]
    assert unit["WantedBy"] == ["multi-user.target"]


def test_unit_has_no_devices_and_only_internet_and_local_sockets(unit):
    assert unit["PrivateDevices"] == ["yes"]
    assert "DeviceAllow" not in unit and "SupplementaryGroups" not in unit
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert unit.get("PrivateNetwork", ["no"]) == ["no"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["NoNewPrivileges"] == ["yes"]
    # A user namespace would hide the running broker from the CLI run as the same user outside it: new
    # stations' accounts would wait for the next restart (the container test below shows it).
    assert unit.get("PrivateUsers", ["no"]) == ["no"]


# -- the installer, dry run ----------------------------------------------------------------------------

# Commands install-centre.sh changes the system with. The tests shadow them with stubs that fail loudly,
# so a broken --dry-run can never install a package, create a user or write under /etc here (the tests
# run as root).
CHANGING_COMMANDS = [
    "apt-get",
    "useradd",
    "usermod",
    "install",
    "rsync",
    "tar",
    "find",
    "python3",
    "systemctl",
    "runuser",
    "chown",
    "chmod",
    "mv",
    "rm",
]


def stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def stubs(tmp_path) -> Path:
    folder = tmp_path / "stubs"
    folder.mkdir()
    for name in CHANGING_COMMANDS:
        stub(folder, name, f"echo 'install-centre.sh ran {name} in a dry run' >&2\nexit 99")
    return folder


def dry_run(stubs: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Only ever --dry-run here: the real thing installs packages and writes under /etc, /opt and /var.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PLAYOUT_CENTRE_")}
    environ.update(env, PATH=f"{stubs}:{os.environ['PATH']}")
    return subprocess.run(
        ["bash", str(INSTALL), "--dry-run", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environ,
        timeout=60,
    )


def fake_name(stubs: Path, name: str, addresses: list[str]) -> None:
    """This machine is called ``name`` and it resolves to ``addresses`` (other look-ups are real)."""
    stub(stubs, "hostname", f"echo {name}")
    lines = "\n".join(f"{a}      STREAM {name}" for a in addresses)
    real = "/usr/bin/getent"
    stub(
        stubs, "getent", f'if [ "$1" = ahosts ]; then printf "%s\\n" "{lines}"; exit 0; fi\nexec {real} "$@"'
    )


def fake_mosquitto_missing(stubs: Path) -> None:
    stub(stubs, "dpkg-query", "exit 1")


def test_install_script_parses():
    done = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_install_dry_run_shows_every_step_and_changes_nothing(stubs):
    fake_name(stubs, "centre.example.vn", ["203.0.113.7"])
    done = dry_run(stubs)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "dry run" in out
    assert re.search(r"useradd .*--shell /usr/sbin/nologin .*playout-centre|user playout-centre exists", out)
    assert "--require-hashes -r /opt/playout/requirements-runtime.lock" in out
    assert "--no-deps --no-build-isolation -e /opt/playout" in out
    assert f"install -d -o playout-centre -g playout-centre -m 0750 {DATA}" in out
    # init as the service's user (its files are 0600), with the machine's name for the stations.
    assert (
        f"runuser -u playout-centre -- {INSTALLED_PLAYOUT} centre init {DATA} "
        "--broker-host centre.example.vn --broker-port 8883 --broker-tls"
    ) in out
    assert f"{ROOT}/systemd/playout-centre.service /etc/systemd/system/playout-centre.service" in out
    assert "systemctl daemon-reload" in out
    assert "systemctl enable --now playout-centre.service" in out
    for excluded in (".venv", ".git", "var"):
        assert re.search(rf"--exclude=\.?/{re.escape(excluded)}\b", out), excluded
    # The next steps, in Vietnamese, with the commands run as the centre's user.
    assert f"sudo -u playout-centre {INSTALLED_PLAYOUT} centre account {DATA} TÊN --role admin" in out
    assert f"centre station {DATA} MÃ_TRẠM --centre-url http://centre.example.vn:8090/" in out
    assert "8090/tcp" in out and "8883/tcp" in out and "broker-ca.pem" in out


def test_mosquitto_service_is_disabled_only_when_the_installer_installed_the_package(stubs):
    fake_name(stubs, "centre.example.vn", ["203.0.113.7"])
    # This machine has mosquitto (make setup): left alone, Debian's service included.
    done = dry_run(stubs)
    assert done.returncode == 0, done.stderr
    assert "mosquitto is installed" in done.stdout
    assert "apt-get" not in done.stdout
    assert "mosquitto.service" not in "".join(line for line in done.stdout.splitlines() if line[:1] == "+")
    # A machine without it: installed, and the broker its package enables is switched off.
    fake_mosquitto_missing(stubs)
    done = dry_run(stubs)
    assert done.returncode == 0, done.stderr
    assert "apt-get install -y -qq --no-install-recommends mosquitto" in done.stdout
    assert "+ systemctl disable --now mosquitto.service" in done.stdout
    assert done.stdout.index("apt-get install") < done.stdout.index("disable --now mosquitto")


def test_broker_host_from_the_environment(stubs):
    fake_name(stubs, "centre.example.vn", ["203.0.113.7"])
    stub(
        stubs,
        "getent",
        'if [ "$1" = ahosts ]; then echo "198.51.100.9 STREAM $2"; exit 0; fi\nexec /usr/bin/getent "$@"',
    )
    done = dry_run(stubs, PLAYOUT_CENTRE_BROKER_HOST="mqtt.tinh.gov.vn", PLAYOUT_CENTRE_BROKER_PORT="9883")
    assert done.returncode == 0, done.stderr
    assert "--broker-host mqtt.tinh.gov.vn --broker-port 9883 --broker-tls" in done.stdout
    # Plain MQTT only when asked for (a closed network), on its usual port.
    done = dry_run(stubs, PLAYOUT_CENTRE_BROKER_HOST="mqtt.tinh.gov.vn", PLAYOUT_CENTRE_BROKER_TLS="0")
    assert done.returncode == 0, done.stderr
    assert "--broker-port 1883\n" in done.stdout and "--broker-tls" not in done.stdout
    done = dry_run(stubs, PLAYOUT_CENTRE_BROKER_TLS="yes")
    assert done.returncode == 2 and "PLAYOUT_CENTRE_BROKER_TLS=yes" in done.stderr


def test_a_name_that_resolves_only_to_loopback_is_refused_before_anything(stubs):
    # Debian's /etc/hosts maps the machine's name to 127.0.1.1: no station reaches a broker there.
    fake_name(stubs, "tram-tinh", ["127.0.1.1"])
    done = dry_run(stubs)
    assert done.returncode == 1
    assert "PLAYOUT_CENTRE_BROKER_HOST" in done.stderr and "127.0.1.1" in done.stderr
    assert "==> Mosquitto" not in done.stdout and "+ " not in done.stdout
    # 0.0.0.0 is where to listen, not where to connect: refused even when asked for.
    done = dry_run(stubs, PLAYOUT_CENTRE_BROKER_HOST="0.0.0.0")
    assert done.returncode == 1, done.stdout
    # Loopback asked for explicitly (a centre tried out on one machine): allowed, with a warning.
    done = dry_run(stubs, PLAYOUT_CENTRE_BROKER_HOST="127.0.0.1")
    assert done.returncode == 0, done.stderr
    assert "--broker-host 127.0.0.1" in done.stdout and "127.0.0.1" in done.stderr


def test_install_refuses_unknown_arguments(stubs):
    done = dry_run(stubs, "--frobnicate")
    assert done.returncode == 2
    assert "unknown argument" in done.stderr


# -- for real, under systemd as PID 1 --------------------------------------------------------------------

UNIT_NAME = "playout-centre.service"
STUBS_IN_BOX = "/opt/test-stubs"
PATH_IN_BOX = f"{STUBS_IN_BOX}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The venv install-centre.sh builds, as a test double: the container has no network for pip, so pip has
# nothing to do and everything else runs in this checkout's venv (the code is the checkout's, too).
VENV_PYTHON = f"""#!/bin/sh
if [ "$1" = -m ] && [ "$2" = pip ]; then echo "   (test: pip skipped, no network)"; exit 0; fi
exec {ROOT}/.venv/bin/python "$@"
"""
VENV_PLAYOUT = f"""#!/bin/sh
exec {ROOT}/.venv/bin/playout "$@"
"""

# Runs with the host's python in the container's network: a station that connects to the centre's broker
# over TLS with the files the running centre just made for it (fleet.yaml, mqtt.pw, broker-ca.pem), as
# the station's own code reads them, then what the centre's API says about it.
STATION_SCRIPT = r"""
import json, sys, time, urllib.request
from pathlib import Path
import yaml
from playout.config import parse_config
from playout.fleet.station_part import station_link
folder, token = Path(sys.argv[1]), sys.argv[2]
fleet = parse_config(yaml.safe_load((folder / "fleet.yaml").read_text()), base=folder).fleet
assert fleet.broker.tls and fleet.broker.port == 8883 and fleet.broker.ca_file.name == "broker-ca.pem"
link = station_link(fleet, on_doorbell=lambda ring: None)
link.start()
deadline = time.monotonic() + 15
while not link.state.connected and time.monotonic() < deadline:
    time.sleep(0.1)
link.publish_status({"relay": False, "clock": "synced"})
seen = None
while time.monotonic() < deadline:
    req = urllib.request.Request("http://127.0.0.1:8090/api/fleet/stations",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            stations = {s["id"]: s for s in json.load(r)["stations"]}
    except OSError as exc:
        seen = str(exc)
        time.sleep(0.3)
        continue
    seen = stations.get("dong-hai")
    if seen and (seen.get("status") or {}).get("online"):
        break
    time.sleep(0.3)
print(json.dumps({"connected": link.state.connected, "error": link.state.last_error, "seen": seen}))
link.close()
"""


def http_get(box: SystemdBox, url: str, timeout: float = 5) -> tuple[int, str]:
    script = (
        "import sys, urllib.request\n"
        "try:\n"
        f"    r = urllib.request.urlopen(sys.argv[1], timeout={timeout})\n"
        "    print(r.status); print(r.read().decode())\n"
        "except Exception as e:\n"
        "    print(0); print(e)\n"
    )
    done = subprocess.run(
        box.net_cmd(sys.executable, "-c", script, url), capture_output=True, text=True, timeout=timeout + 10
    )
    status, _, body = done.stdout.partition("\n")
    return int(status or 0), body


class Centre:
    """The installed centre in a container, as systemd and the processes inside see it."""

    def __init__(self, box: SystemdBox):
        self.box = box

    def show(self, *props: str) -> dict[str, str]:
        return self.box.show(UNIT_NAME, *props)

    def install(self) -> str:
        done = self.box.exec(
            "env",
            f"PATH={PATH_IN_BOX}",
            "PLAYOUT_CENTRE_BROKER_HOST=127.0.0.1",
            "bash",
            str(INSTALL),
            check=False,
            timeout=180,
        )
        assert done.returncode == 0, f"install-centre.sh failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def mosquittos(self) -> list[int]:
        done = self.box.exec("pgrep", "-x", "mosquitto", check=False)
        return [int(p) for p in done.stdout.split()]

    def wait_serving(self, timeout: float, what: str) -> dict:
        """Until the centre serves its TUF timestamp and runs one broker; returns the timestamp."""
        deadline = time.monotonic() + timeout
        status, body = 0, ""
        while time.monotonic() < deadline:
            status, body = http_get(self.box, "http://127.0.0.1:8090/tuf/metadata/timestamp.json")
            if status == 200 and len(self.mosquittos()) == 1 and self.port_open(8883):
                return json.loads(body)
            time.sleep(0.3)
        raise AssertionError(
            f"{what}: not serving ({status} {body[:200]}), mosquitto {self.mosquittos()}, {self.show()}\n"
            + self.journal()[-5000:]
        )

    def port_open(self, port: int) -> bool:
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2).close()"
        done = subprocess.run(self.box.net_cmd(sys.executable, "-c", probe), capture_output=True, timeout=15)
        return done.returncode == 0

    def wait_state(self, predicate, timeout: float, what: str) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        state: dict[str, str] = {}
        while time.monotonic() < deadline:
            state = self.show("ActiveState", "SubState", "Result", "NRestarts", "MainPID")
            if predicate(state):
                return state
            time.sleep(0.2)
        raise AssertionError(f"{what}: {state}\n{self.journal()[-5000:]}")

    def as_user(self, *cmd: str) -> str:
        """A CLI command as the next steps tell the operator to run it: as the service's user."""
        done = self.box.exec("runuser", "-u", "playout-centre", "--", INSTALLED_PLAYOUT, *cmd, check=False)
        assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def proc(self, pid: int, name: str) -> str:
        return self.box.exec("cat", f"/proc/{pid}/{name}").stdout

    def journal(self) -> str:
        return self.box.journal(UNIT_NAME)


def prepare(box: SystemdBox) -> None:
    """What the container lacks and a Debian server has, and the test doubles for pip and apt-get."""
    # network-online.target (the unit's After=) is reached at once: no network to wait for here.
    box.path("/etc/systemd/system/systemd-networkd-wait-online.service").symlink_to("/dev/null")
    # The checkout's python is a pyenv build under /root: the centre's user (init, the CLI) must reach it.
    box.exec("chmod", "0755", "/root")
    venv_bin = box.path("/opt/playout/.venv/bin")
    venv_bin.mkdir(parents=True)
    for name, text in (("python", VENV_PYTHON), ("playout", VENV_PLAYOUT)):
        (venv_bin / name).write_text(text)
        (venv_bin / name).chmod(0o755)
    stubs = box.path(STUBS_IN_BOX)
    stubs.mkdir(parents=True)
    # The container's dpkg database is empty: the installer "installs" mosquitto (its binaries are the
    # host's /usr) and so takes the path that disables Debian's mosquitto.service.
    stub(stubs, "apt-get", 'echo "apt-get $*" >> /run/apt-get.log')
    # ProtectHome=yes hides /root, where the checkout's python lives (on a server the venv uses
    # /usr/bin/python3): an empty /root with only that bound in, as tests/systemd_box.py does for the station.
    hidden = [p for p in (base_python_home(), ROOT) if p.is_relative_to("/root") or p.is_relative_to("/home")]
    if hidden:
        dropins = box.path(f"/etc/systemd/system/{UNIT_NAME}.d")
        dropins.mkdir(parents=True)
        (dropins / "test.conf").write_text(
            "[Service]\nProtectHome=tmpfs\n" + "".join(f"BindReadOnlyPaths={p}\n" for p in hidden)
        )


@pytest.fixture
def centre_box(tmp_path):
    box = SystemdBox(
        # PAM's runuser config and login.defs for the installer's runuser and useradd (the container's /etc
        # is empty but for what systemd makes).
        binds_ro=[str(ROOT), str(base_python_home()), "/etc/pam.d", "/etc/security", "/etc/login.defs"],
        log=tmp_path / "nspawn.log",
    )
    box.start()
    try:
        prepare(box)
        yield Centre(box)
    finally:
        with contextlib.suppress(Exception):
            (tmp_path / "journal.txt").write_text(box.journal())
        box.stop()


def test_installed_centre_serves_restarts_and_stops_with_its_broker(centre_box, tmp_path):
    centre = centre_box
    started = time.monotonic()

    # 1. Installed from nothing: mosquitto "installed", Debian's broker disabled, the centre made as its
    # user, the service enabled and started.
    out = centre.install()
    assert (
        "apt-get install -y -qq --no-install-recommends mosquitto"
        in centre.box.path("/run/apt-get.log").read_text()
    )
    assert "+ systemctl disable --now mosquitto.service" in out
    assert "trung tâm đã tạo" in out
    assert centre.show("UnitFileState")["UnitFileState"] == "enabled"
    first = centre.wait_serving(30, "after install")
    assert first["signed"]["_type"] == "timestamp"
    print(f"installed and serving after {time.monotonic() - started:.1f} s")
    state = centre.show("ActiveState", "MainPID", "NRestarts")
    assert (state["ActiveState"], state["NRestarts"]) == ("active", "0"), state
    (broker,) = centre.mosquittos()
    # The broker is the centre's child, in the unit's control group, as the centre's user, with the
    # unit's descriptor limit.
    assert centre.proc(broker, "cgroup").strip().endswith(f"/{UNIT_NAME}"), centre.proc(broker, "cgroup")
    assert re.search(r"^PPid:\s+" + state["MainPID"] + r"$", centre.proc(broker, "status"), re.M)
    uid = centre.box.exec("id", "-u", "playout-centre").stdout.strip()
    assert re.search(rf"^Uid:\s+{uid}\s", centre.proc(broker, "status"), re.M)
    assert re.search(r"^Max open files\s+8192\s+8192", centre.proc(broker, "limits"), re.M)
    root_json = centre.box.path(f"{DATA}/repo/metadata/1.root.json").read_bytes()

    # 2. A station added with the CLI while the centre runs (as the next steps say): the running broker
    # rereads its accounts through the hardening, the station connects, and the centre sees it.
    centre.as_user("centre", "station", DATA, "dong-hai", "--centre-url", "http://127.0.0.1:8090/")
    printed = centre.as_user("centre", "token", DATA, "giam-sat", "--role", "technician")
    token = printed.split(":", 1)[1].split()[0]
    # Copied off the centre, as a technician carries them to the station (a path through /proc/PID/root
    # would not do: the station's settings resolve their paths, and that link resolves to the host's /).
    installed = shutil.copytree(centre.box.path(f"{DATA}/stations/dong-hai"), tmp_path / "dong-hai")
    assert (installed / "broker-ca.pem").read_bytes() == centre.box.path(
        f"{DATA}/broker/tls/ca.crt"
    ).read_bytes()
    time.sleep(3)  # the centre rereads centre.yaml (the new token) within seconds
    done = subprocess.run(
        centre.box.net_cmd(sys.executable, "-c", STATION_SCRIPT, str(installed), token),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["connected"], seen
    assert (seen["seen"] or {}).get("status", {}).get("online") is True, seen

    # 3. Installed again: the centre is kept (same root, same station) and restarted on the new code.
    out = centre.install()
    assert "centre.yaml exists: the centre is kept" in out
    assert "trung tâm đã tạo" not in out
    centre.wait_serving(30, "after the second install")
    assert centre.box.path(f"{DATA}/repo/metadata/1.root.json").read_bytes() == root_json
    assert "dong-hai" in centre.box.path(f"{DATA}/centre.yaml").read_text()
    state = centre.show("ActiveState", "MainPID", "NRestarts")
    assert state["ActiveState"] == "active"
    restarted_pid = state["MainPID"]

    # 4. The centre alone killed: systemd kills the orphaned broker too, then restarts both (a broker left
    # running would hold port 8883 and its pid file would make the new centre refuse to start).
    centre.box.systemctl("kill", "--kill-who=main", "--signal=KILL", UNIT_NAME)
    state = centre.wait_state(
        lambda s: s["NRestarts"] == "1" and s["ActiveState"] == "active",
        30,
        "restart after the centre's kill",
    )
    assert state["MainPID"] != restarted_pid
    centre.wait_serving(30, "after the centre was killed")
    assert len(centre.mosquittos()) == 1

    # 5. Everything killed at once.
    centre.box.systemctl("kill", "--signal=KILL", UNIT_NAME)
    centre.wait_state(
        lambda s: s["NRestarts"] == "2" and s["ActiveState"] == "active", 30, "restart after killing all"
    )
    centre.wait_serving(30, "after everything was killed")

    # 6. Stopped: the centre and its broker end on SIGTERM, before any SIGKILL.
    before = len(centre.journal())
    stop_started = time.monotonic()
    centre.box.systemctl("stop", UNIT_NAME)
    stop_s = time.monotonic() - stop_started
    state = centre.show("ActiveState", "Result")
    journal = centre.journal()[before:]
    assert (state["ActiveState"], state["Result"]) == ("inactive", "success"), f"{state}\n{journal[-4000:]}"
    assert centre.mosquittos() == []
    assert not centre.port_open(8883) and not centre.port_open(8090)
    assert "timed out" not in journal and "Killing process" not in journal, journal[-4000:]
    print(f"stopped in {stop_s:.1f} s; whole test {time.monotonic() - started:.0f} s")
