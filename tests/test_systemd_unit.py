"""The systemd unit and its installer, checked with the real systemd-analyze and bash (no systemd running)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.systemd_box import INSTALLED_PLAYOUT, analyze, directives, exposure_level, runnable_copy

UNIT = ROOT / "systemd" / "playout.service"
INSTALL = ROOT / "systemd" / "install.sh"
MAX_EXPOSURE = 4.0


@pytest.fixture(scope="module")
def unit() -> dict[str, list[str]]:
    return directives(UNIT.read_text(encoding="utf-8"))


@pytest.fixture
def runnable_unit(tmp_path) -> Path:
    """The unit with its commands pointing at an executable that exists here, so verify can pass."""
    return runnable_copy(UNIT, tmp_path)


def test_systemd_analyze_verify_is_clean(runnable_unit):
    done = analyze("verify", runnable_unit.name, cwd=runnable_unit.parent)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, output
    assert output == "", output


def test_hardening_exposure_is_at_most_4(runnable_unit):
    exposure, output = exposure_level(runnable_unit)
    assert exposure is not None, output
    print(f"systemd-analyze security: exposure {exposure}")
    assert exposure <= MAX_EXPOSURE, output


def test_unit_contract(unit):
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["30"]
    assert unit["Restart"] == ["always"]
    assert unit["RestartSec"] == ["5"]
    assert unit["ExecStart"] == [f"{INSTALLED_PLAYOUT} run --config /etc/playout/schedule.yaml"]
    assert unit["ExecStopPost"] == [f"{INSTALLED_PLAYOUT} relay-off --config /etc/playout/schedule.yaml"]
    after = unit["After"][0].split()
    assert {"time-sync.target", "sound.target", "network-online.target"} <= set(after)
    assert {"time-sync.target", "network-online.target"} <= set(unit["Wants"][0].split())
    assert unit["User"] == ["playout"] and unit["Group"] == ["playout"]
    assert {"gpio", "audio"} <= set(unit["SupplementaryGroups"][0].split())
    assert unit["WorkingDirectory"] == ["/var/lib/playout"]
    assert unit["StateDirectory"] == ["playout"]
    assert "PYTHONUNBUFFERED=1" in unit["Environment"]
    assert unit["WantedBy"] == ["multi-user.target"]


def test_unit_lets_the_station_reach_gpio_and_sound_and_nothing_else(unit):
    assert unit["DevicePolicy"] == ["closed"]
    allowed = unit["DeviceAllow"]
    assert "char-gpiochip rw" in allowed
    assert "/dev/gpiomem rw" in allowed
    assert "char-alsa rw" in allowed
    assert unit.get("PrivateDevices", ["no"]) == ["no"]  # would hide /dev/gpiochip* and /dev/snd
    assert "AF_INET" in unit["RestrictAddressFamilies"][0].split()  # the LAN API listens on TCP
    assert unit.get("PrivateNetwork", ["no"]) == ["no"]
    assert "ProcSubset" not in unit  # gpiozero reads /proc/cpuinfo and /proc/device-tree
    assert unit["CapabilityBoundingSet"] == [""]
    assert unit["ProtectSystem"] == ["strict"]
    assert "/var/lib/playout" in unit["ReadWritePaths"]


# Commands install.sh changes the system with. The tests shadow them with stubs that fail loudly, so a
# broken --dry-run can never create a user or write under /etc here (the tests run as root).
CHANGING_COMMANDS = [
    "useradd",
    "groupadd",
    "usermod",
    "install",
    "rsync",
    "tar",
    "find",
    "python3",
    "systemctl",
    "chown",
    "chmod",
    "mv",
    "mktemp",
    "rm",
]


@pytest.fixture
def guarded_env(tmp_path) -> dict[str, str]:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in CHANGING_COMMANDS:
        stub = stubs / name
        stub.write_text(f"#!/bin/sh\necho 'install.sh ran {name} in a dry run' >&2\nexit 99\n")
        stub.chmod(0o755)
    return {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"}


def test_install_script_parses():
    done = subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_install_dry_run_shows_every_step_and_changes_nothing(guarded_env):
    # Only ever --dry-run here: the real thing creates a system user and writes under /etc and /opt.
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=guarded_env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "dry run" in out
    assert "system user playout" in out
    assert re.search(r"useradd .*--shell /usr/sbin/nologin .*playout|user playout exists", out)
    assert "usermod --append --groups gpio,audio playout" in out
    assert "python3 -m venv /opt/playout/.venv" in out or "/opt/playout/.venv/bin/python -m pip" in out
    assert "--require-hashes -r /opt/playout/requirements-runtime.lock" in out
    assert "--no-deps --no-build-isolation -e /opt/playout" in out
    assert "/etc/playout/schedule.yaml" in out
    assert f"{ROOT}/systemd/playout.service /etc/systemd/system/playout.service" in out
    assert "systemctl daemon-reload" in out
    assert "systemctl enable --now playout.service" in out
    for excluded in (".venv", ".git", "var"):
        assert re.search(rf"--exclude=\.?/{re.escape(excluded)}\b", out), excluded


def test_install_refuses_unknown_arguments(guarded_env):
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run", "--frobnicate"],
        capture_output=True,
        text=True,
        env=guarded_env,
        timeout=10,
    )
    assert done.returncode == 2
    assert "unknown argument" in done.stderr
