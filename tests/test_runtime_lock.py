"""What the Pi installs: the run-time locks, their wheels for Raspberry Pi OS, and the system packages.

``requirements.lock`` pins everything a developer and CI need (tests, browsers, fuzzers). A Pi gets
``requirements-runtime.lock`` only, plus ``requirements-piper.lock`` when the station reads with a Piper
voice: both must be exact extracts of ``requirements.lock`` (same versions, same hashes), so the Pi runs
what CI tested, and every pinned package must install from a wheel on a Pi (no compiler there).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.test_systemd_unit import CHANGING_COMMANDS, INSTALL

ROOT = Path(__file__).resolve().parent.parent
FULL_LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
PIPER_LOCK = ROOT / "requirements-piper.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def make_variable(name: str) -> list[str]:
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(rf"^{name}\s*:=(.*)$", makefile, re.MULTILINE).group(1).split()


#: The station's run-time dependencies that only a Piper voice needs (see systemd/install.sh).
PIPER_PACKAGES = set(make_variable("PIPER_PACKAGES"))
#: Raspberry Pi OS 64-bit: bookworm has Python 3.11 and glibc 2.36, trixie Python 3.13 and glibc 2.41.
PI_OS_GLIBC = {"3.11": 36, "3.13": 41}
#: Pinned packages PyPI has no wheel of for a Pi: pip builds them from source there (see the README).
NO_WHEEL = {
    ("3.13", "lgpio"): "lgpio 0.2.2.0 has wheels for CPython 3.9 to 3.12 only: on trixie pip builds it "
    "from its sdist, which needs swig, a C compiler, python3-dev and liblgpio-dev",
}


def parse_lock(path: Path) -> dict[tuple[str, str], tuple[str, frozenset[str]]]:
    """{(name, marker): (version, hashes)} of a `uv pip compile --generate-hashes` file."""
    pins = {}
    for entry in re.split(r"\n(?=\S)", path.read_text()):
        entry = re.sub(r"\s*#.*", "", entry).replace("\\\n", " ").strip()  # comments, continuations
        if not entry:
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)\s*(?:;\s*(.*?))?\s*((?:--hash=\S+\s*)+)", entry)
        assert m, f"{path.name}: not a hashed pin: {entry[:120]}"
        name, version, marker, hashes = m.groups()
        key = (canonicalize_name(name), marker or "")
        assert key not in pins, f"{path.name}: {name} pinned twice"
        pins[key] = (version, frozenset(re.findall(r"--hash=(\S+)", hashes)))
    return pins


def names(pins) -> set[str]:
    return {name for name, _ in pins}


def dev_tools() -> set[str]:
    return {
        canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, PIPER_LOCK], ids=lambda p: p.name)
def test_every_pin_is_the_full_locks_own(lock):
    full = parse_lock(FULL_LOCK)
    pins = parse_lock(lock)
    assert pins
    for (name, marker), (version, hashes) in pins.items():
        assert (name, marker) in full, f"{name} ({marker or 'no marker'}) is not pinned in requirements.lock"
        full_version, full_hashes = full[(name, marker)]
        assert version == full_version, f"{name}: {version} here, {full_version} in requirements.lock"
        assert hashes == full_hashes, f"{name}: its hashes differ from requirements.lock's"


def test_the_runtime_lock_holds_no_development_tool_and_no_piper():
    runtime = names(parse_lock(RUNTIME_LOCK))
    tools = dev_tools()
    assert {"pytest", "playwright", "schemathesis", "ruff", "hypothesis", "onnx"} <= tools
    assert not runtime & tools
    # What only the tools bring with them.
    assert not runtime & {"pluggy", "iniconfig", "greenlet", "rich", "requests", "werkzeug", "protobuf"}
    assert not runtime & PIPER_PACKAGES
    assert not names(parse_lock(PIPER_LOCK)) & tools


def test_every_runtime_dependency_is_locked_for_the_pi():
    # A dependency added to pyproject.toml without `make lock` would be missing on every Pi.
    runtime = names(parse_lock(RUNTIME_LOCK))
    piper = names(parse_lock(PIPER_LOCK))
    for spec in PYPROJECT["project"]["dependencies"]:
        name = canonicalize_name(Requirement(spec).name)
        assert name in (piper if name in PIPER_PACKAGES else runtime), f"{name} is not in the Pi's locks"
    assert "setuptools" in runtime  # the editable install of the station itself (--no-build-isolation)


def test_install_uses_the_runtime_lock(tmp_path):
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in CHANGING_COMMANDS:  # as in test_systemd_unit: a broken --dry-run fails, changes nothing
        (stubs / name).write_text(f"#!/bin/sh\necho 'install.sh ran {name} in a dry run' >&2\nexit 99\n")
        (stubs / name).chmod(0o755)
    done = subprocess.run(
        ["bash", str(INSTALL), "--dry-run"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--require-hashes -r /opt/playout/requirements-runtime.lock\n" in done.stdout
    assert "-r /opt/playout/requirements-piper.lock" in done.stdout
    assert "requirements.lock" not in done.stdout


# --- wheels for Raspberry Pi OS 64-bit ---------------------------------------------------------------------
def pypi_unreachable() -> str | None:
    for host in ("pypi.org", "files.pythonhosted.org"):
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError as exc:
            return f"PyPI unreachable ({host}:443: {exc}): wheel availability for the Pi not checked"
    return None


def pins_for(python: str) -> list[str]:
    """The hashed pins a Pi with this Python installs, markers evaluated for the Pi, not for this machine.

    `pip download -r LOCK --python-version X` would evaluate the markers for the Python running pip:
    it would check 3.11's numpy for 3.13 and skip lgpio (aarch64 only) altogether.
    """
    env = {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "platform_machine": "aarch64",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    lines = []
    for lock in (RUNTIME_LOCK, PIPER_LOCK):
        for (name, marker), (version, hashes) in parse_lock(lock).items():
            if marker and not Marker(marker).evaluate(env):
                continue
            lines.append(f"{name}=={version} " + " ".join(f"--hash={h}" for h in sorted(hashes)))
    return sorted(set(lines))


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    # One folder for both Pythons: pip reuses the pure-Python wheels it already has.
    return tmp_path_factory.mktemp("pi-wheels")


def download_wheels(pins: list[str], python: str, dest: Path) -> subprocess.CompletedProcess[str]:
    requirements = dest.parent / f"{dest.name}-{python}.txt"
    requirements.write_text("\n".join(pins) + "\n")
    # PyPI alone, as on a Pi: no local wheel folder, index or constraint from this machine's pip config.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env["PIP_CONFIG_FILE"] = os.devnull
    # pip takes the tags given, not the older ones they imply: every manylinux the OS's glibc runs.
    tags = [
        "manylinux2014_aarch64",
        *(f"manylinux_2_{m}_aarch64" for m in range(17, PI_OS_GLIBC[python] + 1)),
    ]
    platforms = [arg for tag in tags for arg in ("--platform", tag)]
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", *platforms, "--python-version", python, "--implementation", "cp",
         "--require-hashes", "-r", str(requirements), "-d", str(dest)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )  # fmt: skip


def wheel_names(folder: Path) -> set[str]:
    return {canonicalize_name(w.name.split("-")[0]) for w in folder.glob("*.whl")}


@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.11", "3.13"])
def test_every_pinned_runtime_package_has_a_wheel_for_raspberry_pi_os_64_bit(python, wheel_dir):
    reason = pypi_unreachable()
    if reason:
        # make setup installs from the same registry: unreachable is a broken machine, not a pass.
        pytest.fail(reason)
    pins = [p for p in pins_for(python) if (python, p.split("==")[0]) not in NO_WHEEL]
    assert len(pins) > 50
    done = download_wheels(pins, python, wheel_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert {p.split("==")[0] for p in pins} <= wheel_names(wheel_dir)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("python", "package"),
    [pytest.param(*gap, marks=pytest.mark.xfail(reason=why, strict=True)) for gap, why in NO_WHEEL.items()],
)
def test_a_package_known_to_have_no_wheel_still_has_none(python, package, tmp_path):
    # Strict: once a re-lock brings a version with a wheel, this passes, fails the run, and the gap (and
    # the README's note) must go.
    reason = pypi_unreachable()
    if reason:
        # make setup installs from the same registry: unreachable is a broken machine, not a pass.
        pytest.fail(reason)
    pins = [p for p in pins_for(python) if p.startswith(f"{package}==")]
    assert pins, f"{package} is no longer pinned for {python}"
    dest = tmp_path / "wheels"
    done = download_wheels(pins, python, dest)
    assert done.returncode == 0 and package in wheel_names(dest), done.stderr[-1000:]


# --- system packages ---------------------------------------------------------------------------------------
def base_system() -> set[str]:
    """Packages any Debian that runs the station has: apt's and python3's dependencies, and Essential ones."""
    essential = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Essential}\n"], capture_output=True, text=True, check=True
    ).stdout
    todo = ["apt", "python3", *(line.split()[0] for line in essential.splitlines() if line.endswith(" yes"))]
    seen: set[str] = set()
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        depends = subprocess.run(
            ["dpkg-query", "-W", "-f=${Pre-Depends}, ${Depends}", package], capture_output=True, text=True
        ).stdout
        todo += [
            re.match(r"\s*([^\s:(]+)", alt).group(1) for alt in re.split(r"[,|]", depends) if alt.strip()
        ]
    return seen


def test_playwright_driver_libraries_come_from_the_setup_packages():
    # Playwright's bundled node needs libatomic.so.1, which a fresh arm64 Debian does not have: `make setup`
    # must name every library package the driver needs that the base system does not bring.
    # The station targets Debian / Raspberry Pi OS, and requirements.lock pins Playwright: a machine
    # without them is a broken setup, never a reason to pass.
    assert shutil.which("dpkg-query") and shutil.which("dpkg") and shutil.which("ldd"), "not a Debian system"
    import playwright

    node = Path(playwright.__file__).parent / "driver" / "node"
    assert node.is_file(), f"no Playwright driver at {node}: run `make setup`"
    ldd = subprocess.run(["ldd", str(node)], capture_output=True, text=True, check=True).stdout
    libraries = re.findall(r"=>\s*(/\S+)", ldd)
    assert any("libatomic" in lib for lib in libraries), ldd
    provided = set(make_variable("RUNTIME_APT")) | set(make_variable("TEST_APT")) | base_system()
    for library in libraries:
        owner = None
        for path in (library, os.path.realpath(library)):
            found = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
            if found.returncode == 0:
                owner = found.stdout.split(":")[0].split(",")[0].strip()
                break
        assert owner, f"{library}: no Debian package owns it"
        assert owner in provided, f"{library} comes from {owner}, which `make setup` does not install"


def test_a_pi_gets_the_run_time_system_packages_only():
    """`make install` used to apt-get Chromium, PulseAudio, systemd-container and the rest of the tests'
    tools onto every Pi; `make -n install` shows what it would install now."""
    import subprocess

    dry = subprocess.run(
        ["make", "-n", "install"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    planned = re.search(r"for p in ([^;]*); do", dry).group(1).split()
    assert set(planned) == set(make_variable("RUNTIME_APT"))
    assert not set(planned) & {"chromium", "pulseaudio", "faketime", "systemd-container", "zbar-tools"}
    assert {"ffmpeg", "espeak-ng", "libportaudio2"} <= set(planned)
