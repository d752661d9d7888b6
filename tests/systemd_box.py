"""Test support: the shipped systemd unit, run by real systemd as PID 1 in a throwaway container.

The machines have no systemd running, but systemd-nspawn boots the host's own /usr on a volatile root in
about half a second (../shared/docs/testing-real-parts.md, "Real systemd as PID 1"). So the tests see
what a Pi would: Type=notify, the watchdog, Restart=always, ExecStopPost and the unit's hardening, with
the verdict read from systemd itself (NRestarts, Result, the journal).

    with StationService(tmp_path, {"windows": [...]}) as station:   # boots, installs, starts the unit
        station.wait_for(lambda rows: ..., 60, "a play")            # the as-run log, read from the host
        station.show("NRestarts", "Result")                        # {"NRestarts": "0", ...}
        station.http("GET", "/api/health")                         # (200, {...}) from inside the container
        station.journal()                                          # the unit's journal, as text

Layout inside the container:
  ROOT (this checkout, read-only, same path) and the base Python the .venv was made from (same path);
  /srv/station (read-write): schedule.yaml, lexicon.tsv, bulletins/, var/ (the as-run database). It is a
  folder of the test's tmp_path, so the test reads the database and edits the files from the host.

Set SYSTEMD_BOX_CODE=/path/to/other/tree to run another checkout's playout/tts/gpio packages (for
example an older commit in a `git worktree`) with this checkout's .venv: it is bind-mounted at
/opt/code and put first on the service's PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from playout.auth import hash_token

# -- a unit file, read as systemd reads it (shared by the station's and the centre's unit tests) --------

#: Where install.sh and install-centre.sh put the command the units run.
INSTALLED_PLAYOUT = "/opt/playout/.venv/bin/playout"


def directives(text: str) -> dict[str, list[str]]:
    """KEY -> every value it is given, in order (systemd allows repeats)."""
    out: dict[str, list[str]] = {}
    # A line ending in a backslash continues on the next (systemd replaces the pair with a space).
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def runnable_copy(unit: Path, folder: Path) -> Path:
    """``unit`` with its commands pointing at an executable that exists here, so verify can pass."""
    playout = Path(sys.executable).parent / "playout"
    exe = playout if playout.exists() else Path("/bin/true")
    text = unit.read_text(encoding="utf-8")
    assert INSTALLED_PLAYOUT in text
    copy = folder / unit.name
    copy.write_text(text.replace(INSTALLED_PLAYOUT, str(exe)), encoding="utf-8")
    return copy


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    from tests.conftest import require

    return subprocess.run(
        [require("systemd-analyze"), *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def exposure_level(unit: Path) -> tuple[float | None, str]:
    """``systemd-analyze security``'s overall exposure for a unit file (None if not found), and its output."""
    done = analyze("security", "--offline=true", unit.name, cwd=unit.parent)
    output = done.stdout + done.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
    return (float(found.group(1)) if found else None), output


ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
UNIT_FILE = ROOT / "systemd" / "playout.service"
UNIT = "playout.service"
#: Where the station's files live inside the container (bind-mounted from the test's tmp_path).
STATION_DIR = "/srv/station"
#: The playout user's fixed ids, so the host can hand it the data folder before the container boots.
PLAYOUT_UID = 4711
TOKEN = "test-token-for-the-daemon-api-0123"
TZ = dt.timezone(dt.timedelta(hours=7))  # Asia/Ho_Chi_Minh has no DST: a fixed offset is exact
_names = itertools.count(1)


def now() -> dt.datetime:
    return dt.datetime.now(TZ)


def clock(t: dt.datetime) -> str:
    return t.astimezone(TZ).strftime("%H:%M:%S")


def base_python_home() -> Path:
    """The installation the .venv's python links to (pyvenv.cfg's home is its bin/)."""
    cfg = (VENV / "pyvenv.cfg").read_text()
    home = next(line.split("=", 1)[1].strip() for line in cfg.splitlines() if line.startswith("home"))
    return Path(home).parent


def _cgroup_roots() -> list[Path]:
    """The hierarchies a container's cgroup must be made in: hybrid (v2 + named v1) or pure v2."""
    base = Path("/sys/fs/cgroup")
    if (base / "unified").is_dir():
        return [base / "unified", base / "systemd"]
    return [base]


def require_nspawn() -> None:
    if shutil.which("systemd-nspawn") is None or shutil.which("nsenter") is None:
        # `make setup` installs it: a missing binary is a broken setup, not a reason to skip.
        raise RuntimeError("systemd-nspawn is not installed: run `make setup` (package systemd-container)")
    if os.geteuid() != 0:
        raise RuntimeError("booting a container needs root (CI runs the tests as root)")


class SystemdBox:
    """A container with systemd as PID 1, torn down (processes, then cgroups) whatever happened."""

    def __init__(
        self, *, binds: list[tuple[str, str]] = (), binds_ro: list[str] = (), log: Path | None = None
    ):
        require_nspawn()
        self.name = f"pt{os.getpid()}n{next(_names)}"
        self.cgroup = f"sdtest-{self.name}"
        self.binds = list(binds)
        self.binds_ro = list(binds_ro)
        self.log_path = log
        self.proc: subprocess.Popen | None = None
        self.pid1: int | None = None
        self.boot_s: float | None = None

    # -- life cycle ---------------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> SystemdBox:
        args = [
            "systemd-nspawn",
            # Both needed where no systemd runs on the host (else "Failed to open system bus").
            "--register=no",
            "--keep-unit",
            "--console=passive",
            f"--machine={self.name}",
            "--directory=/",
            # Only /usr comes from the host; /etc, /var, /run, /tmp are a fresh tmpfs, gone at exit.
            "--volatile=yes",
            # The API listens inside; it never meets the host's ports or another container's.
            "--private-network",
        ]
        # A volatile /etc has no ld.so.cache (ctypes' find_library, hence PortAudio lookup, needs it) and no
        # alternatives (ffmpeg links libblas.so.3 through /etc/alternatives): lend the host's.
        for path in ["/etc/alternatives", "/etc/ld.so.cache", *self.binds_ro]:
            args.append(f"--bind-ro={path}")
        for host, inside in self.binds:
            args.append(f"--bind={host}:{inside}")
        # firstboot off: with an empty /etc it would wait for console input for ever.
        args += ["--boot", "systemd.firstboot=off", "systemd.unit=basic.target"]
        # Each container in its own cgroup, made before nspawn runs (two in one cgroup collide in /payload).
        setup = "; ".join(
            f"mkdir -p {root}/{self.cgroup} && echo $$ > {root}/{self.cgroup}/cgroup.procs"
            for root in _cgroup_roots()
        )
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        started = time.monotonic()
        self.proc = subprocess.Popen(
            ["sh", "-c", f"{setup} && exec {shlex.join(args)}"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        try:
            self._wait_booted(started + timeout)
        except BaseException:
            self.stop()
            raise
        self.boot_s = time.monotonic() - started
        return self

    def _wait_booted(self, deadline: float) -> None:
        state = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited ({self.proc.returncode}); see {self.log_path}")
            if self.pid1 is None:
                self.pid1 = self._find_pid1()
            if self.pid1 is not None:
                done = self.exec("systemctl", "is-system-running", check=False, timeout=10)
                state = done.stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"container {self.name} not booted (state {state!r}); see {self.log_path}")

    def _find_pid1(self) -> int | None:
        # nspawn forks the container's init; its comm becomes "systemd" once it execs.
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                    return int(child)
            except OSError:
                continue
        return None

    def stop(self, timeout: float = 20) -> None:
        """Halt the container cleanly (SIGTERM to nspawn), else kill what is left; remove the cgroups."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for root in _cgroup_roots():
            self._kill_cgroup(root / self.cgroup)
        self.pid1 = None

    @staticmethod
    def _kill_cgroup(top: Path) -> None:
        if not top.is_dir():
            return
        # Whatever outlived the halt (only this container's processes are in here), then the empty tree.
        for _ in range(50):
            pids = {int(p) for procs in top.rglob("cgroup.procs") for p in procs.read_text().split()}
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()

    def __enter__(self) -> SystemdBox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- talking to it ------------------------------------------------------------------------------------

    def path(self, inside: str) -> Path:
        """A path inside the container, as the host sees it (through PID 1's root)."""
        return Path(f"/proc/{self.pid1}/root") / inside.lstrip("/")

    def exec(
        self, *cmd: str, check: bool = True, timeout: float = 60, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all its namespaces: its /etc, its systemd, its network)."""
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-a", "--", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{shlex.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def net_cmd(self, *cmd: str) -> list[str]:
        """A host command line run in the container's network only: host files, the container's 127.0.0.1."""
        return ["nsenter", "-t", str(self.pid1), "-n", "--", *cmd]

    def systemctl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        return self.exec("systemctl", "--no-pager", *args, check=check, timeout=timeout).stdout

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", unit, *(f"--property={p}" for p in props))
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str | None = None, output: str = "short-precise") -> str:
        args = ["journalctl", "-b", "--no-pager", "-o", output]
        if unit:
            args += ["-u", unit]
        return self.exec(*args, check=False).stdout


def _http_script() -> str:
    # Runs in the container's network namespace with the host's python: stdlib only, answer as JSON.
    return r"""
import json, sys, urllib.error, urllib.request
method, url, headers, body, timeout = json.loads(sys.argv[1])
data = None if body is None else body.encode()
req = urllib.request.Request(url, data=data, method=method, headers=headers)
try:
    with urllib.request.urlopen(req, timeout=timeout) as r:
        status, text = r.status, r.read().decode("utf-8", "replace")
except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode("utf-8", "replace")
except Exception as e:
    status, text = 0, f"{type(e).__name__}: {e}"
print(json.dumps([status, text]))
"""


class StationService:
    """The shipped unit, adapted only where the test machine differs from a Pi, in a fresh container."""

    def __init__(
        self,
        root: Path,
        config: dict,
        *,
        watchdog_s: int = 4,
        port: int = 8080,
        environment: dict[str, str] | None = None,
        binds: list[tuple[str, str]] = (),
        clock_synced: bool = True,
        data_tmpfs_mb: int | None = None,
        pulse_dir: Path | None = None,
    ):
        self.root = root
        self.dir = root / "station"  # mounted at STATION_DIR
        self.port = port  # the container has its own network: no clash with the host or other tests
        self.watchdog_s = watchdog_s
        self.environment = {"GPIOZERO_PIN_FACTORY": "mock", **(environment or {})}
        base = {
            "bulletin": {"length_s": 11, "lead_in": "{title}", "outro": "Hết tin."},
            "relay": {"pre_roll_s": 1.0, "tail_s": 0.5, "max_on_s": 60},
            "tts": {"engines": ["espeak"]},
            "api": {"host": "127.0.0.1", "port": port},
            "daemon": {"rescan_s": 1},
            "auth": {"tokens": [{"name": "tests", "token_hash": hash_token(TOKEN), "roles": ["admin"]}]},
            "paths": {"data": f"{STATION_DIR}/var", "bulletins": f"{STATION_DIR}/bulletins"},
            "windows": [],
        }
        for key, value in config.items():
            base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
        self.config = base
        self.code = os.environ.get("SYSTEMD_BOX_CODE")
        extra = list(binds)
        binds_ro = [str(ROOT), str(base_python_home())]
        if self.code:
            extra.append((self.code, "/opt/code"))
        self.pulse_dir = pulse_dir
        if pulse_dir is not None:
            # A PulseAudio server on the host (tests/pulse.py), its socket folder lent to the container: the
            # station plays through ALSA's "pulse" device as on a desktop, and the test records the sink.
            # ALSA's pulse definitions live in /etc/alsa/conf.d, absent from the volatile /etc.
            extra.append((str(pulse_dir), "/run/air"))
            binds_ro.append("/etc/alsa")
        self.box = SystemdBox(
            binds=[(str(self.dir), STATION_DIR), *extra], binds_ro=binds_ro, log=root / "nspawn.log"
        )
        self.clock_synced = clock_synced
        #: paths.data on a tmpfs of this size (a disk that can fill up), else on the host's disk.
        self.data_tmpfs_mb = data_tmpfs_mb
        self._mounted = False
        self.dropins: dict[str, str] = {}
        self.start_s: float | None = None

    # -- files, from the host -----------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.dir / "schedule.yaml"

    @property
    def data(self) -> Path:
        """paths.data, as the host sees it."""
        return self.dir / "var"

    @property
    def db(self) -> Path:
        return self.data / "playout.db"

    def write_config(self, text: str | None = None) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text if text is not None else yaml.safe_dump(self.config, allow_unicode=True), "utf-8")
        os.replace(tmp, self.config_path)  # the daemon never reads half a file

    def chown(self, path: Path) -> None:
        """Give files the test made to the service's user (it writes next to them: inbox/, var/)."""
        for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(p, PLAYOUT_UID, PLAYOUT_UID)

    def rows(self) -> list[dict]:
        if not self.db.exists():
            return []
        # As root, SQLite gives a -wal/-shm file it creates to the database's owner: the daemon keeps
        # writing. A read-only URI anyway, so a test never changes the log it checks.
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)) as db:
                db.row_factory = sqlite3.Row
                return [dict(r) for r in db.execute("SELECT * FROM plays ORDER BY id")]
        except sqlite3.OperationalError:
            return []

    def wait_for(self, predicate: Callable[[list[dict]], bool], timeout: float, what: str = "") -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows()
            if predicate(rows):
                return rows
            time.sleep(0.2)
        raise AssertionError(
            f"timed out waiting for {what}; rows={self.rows()}\n{self.show()}\n{self.journal()[-6000:]}"
        )

    def wait_journal(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            journal = self.journal()
            if text in journal:
                return journal
            time.sleep(0.3)
        raise AssertionError(f"{text!r} not in the journal:\n{self.journal()[-6000:]}")

    # -- the unit -------------------------------------------------------------------------------------------

    def unit_text(self) -> str:
        """The shipped unit with only its two install paths moved to where this checkout has them."""
        text = UNIT_FILE.read_text("utf-8")
        installed, config = "/opt/playout/.venv/bin/playout", "/etc/playout/schedule.yaml"
        assert installed in text and config in text, "the shipped unit's paths changed: update the harness"
        # ExecStart= and ExecStopPost=: install.sh puts the venv in /opt/playout and the settings in
        # /etc/playout; here they are the checkout's own venv and the test's schedule.yaml.
        return text.replace(installed, str(VENV / "bin" / "playout")).replace(
            config, f"{STATION_DIR}/schedule.yaml"
        )

    def dropin_text(self) -> str:
        lines = [
            "# Test-only settings over the shipped unit; everything else (Type=notify, NotifyAccess=main,",
            "# Restart=always, ExecStopPost, the hardening) is the unit as shipped.",
            "[Service]",
            # 30 s would make every watchdog test wait 30 s; the daemon pings at half of whatever is set.
            f"WatchdogSec={self.watchdog_s}",
            # No GPIO here: gpiozero's MockFactory drives a simulated pin (the daemon logs each change).
            *(f"Environment={k}={v}" for k, v in self.environment.items()),
            # paths.data and paths.bulletins are under /srv/station, not the StateDirectory: the unit's own
            # comment says to add such a path to ReadWritePaths (ProtectSystem=strict).
            f"ReadWritePaths={STATION_DIR}",
        ]
        # The .venv's python is a pyenv build under /root, which ProtectHome=yes hides (on a Pi the venv
        # uses /usr/bin/python3); so would a checkout cloned under /root or /home (CI's may be). tmpfs keeps
        # /root and /home empty and read-only but for those read-only binds: the same protection of real
        # home directories.
        hidden = [
            p for p in (base_python_home(), ROOT) if p.is_relative_to("/root") or p.is_relative_to("/home")
        ]
        if hidden:
            lines += ["ProtectHome=tmpfs", *(f"BindReadOnlyPaths={p}" for p in dict.fromkeys(hidden))]
        if self.code:
            # Another tree's packages ahead of the editable install's (SYSTEMD_BOX_CODE).
            lines.append("Environment=PYTHONPATH=/opt/code")
        if self.pulse_dir is not None:
            lines.append("Environment=PULSE_SERVER=unix:/run/air/native")
        return "\n".join(lines) + "\n"

    def add_dropin(self, name: str, text: str) -> None:
        """Another drop-in (takes effect at the next start: call it before, or restart)."""
        self.dropins[name] = text
        if self.box.pid1 is not None:
            self.box.path(f"/etc/systemd/system/{UNIT}.d/{name}.conf").write_text(text)
            self.box.systemctl("daemon-reload")

    def remove_dropin(self, name: str) -> None:
        self.dropins.pop(name, None)
        if self.box.pid1 is not None:
            self.box.path(f"/etc/systemd/system/{UNIT}.d/{name}.conf").unlink(missing_ok=True)
            self.box.systemctl("daemon-reload")

    def sysusers_text(self) -> str:
        # The user install.sh creates (system user playout, its own group, in gpio and audio), made by
        # systemd-sysusers in the container's volatile /etc; a fixed uid so the host can chown the data.
        return (
            f"g playout {PLAYOUT_UID}\n"
            f'u playout {PLAYOUT_UID} "Ward loudspeaker station" /var/lib/playout /usr/sbin/nologin\n'
            "g gpio -\n"
            "m playout gpio\n"
            "m playout audio\n"
        )

    def install(self) -> None:
        box = self.box
        (box.path("/etc/sysusers.d")).mkdir(parents=True, exist_ok=True)
        box.path("/etc/sysusers.d/playout.conf").write_text(self.sysusers_text())
        box.exec("systemd-sysusers")
        # The container's only link is lo, so systemd-networkd-wait-online would hold network-online.target
        # (the unit's After=) for its 2-minute timeout; with no network to wait for, the target is reached
        # at once. The unit still orders itself after it, as on the Pi.
        box.path("/etc/systemd/system/systemd-networkd-wait-online.service").symlink_to("/dev/null")
        box.path(f"/etc/systemd/system/{UNIT}").write_text(self.unit_text())
        dropins = box.path(f"/etc/systemd/system/{UNIT}.d")
        dropins.mkdir(parents=True, exist_ok=True)
        (dropins / "test.conf").write_text(self.dropin_text())
        for name, text in self.dropins.items():
            (dropins / f"{name}.conf").write_text(text)
        box.systemctl("daemon-reload")
        self.set_clock_synced(self.clock_synced)

    def set_clock_synced(self, synced: bool) -> None:
        """What systemd-timesyncd says on a Pi once NTP has set the clock: its marker file (the container
        runs no timesyncd, and timedatectl there answers NTPSynchronized=no, an untrusted clock)."""
        marker = self.box.path("/run/systemd/timesync/synchronized")
        if synced:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    # -- life cycle -----------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """The station's folder on the host, owned by the service's user (before the container boots)."""
        for sub in ("bulletins/approved", "bulletins/inbox", "var"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if self.data_tmpfs_mb and not self._mounted:
            # On the host, not in the container: SQLite resolves /proc/PID/root/... to the host's own path,
            # so the test could not open a database that lives only in the container's mounts. nspawn's
            # --bind is recursive, so the container sees this tmpfs under /srv/station.
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={self.data_tmpfs_mb}m,mode=0750",
                    "tmpfs",
                    str(self.data),
                ],
                check=True,
            )
            self._mounted = True
        if not self.config_path.exists():
            self.write_config()
        self.chown(self.dir)

    def boot(self) -> StationService:
        self.prepare()
        self.box.start()
        self.install()
        return self

    def start_unit(self, timeout: float = 60) -> None:
        """`systemctl start`: returns once the daemon said READY=1 (Type=notify)."""
        started = time.monotonic()
        done = self.box.exec("systemctl", "start", UNIT, check=False, timeout=timeout)
        self.start_s = time.monotonic() - started
        if done.returncode != 0:
            raise AssertionError(f"systemctl start failed:\n{done.stderr}\n{self.journal()[-6000:]}")

    def start(self) -> StationService:
        self.boot()
        try:
            self.start_unit()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        try:
            if self.box.pid1 is not None:
                # Kept for the post-mortem of a failed test: the whole boot's journal, with the unit's.
                (self.root / "journal.txt").write_text(self.box.journal())
        except Exception:  # noqa: BLE001 - tearing down matters more than the copy
            pass
        finally:
            self.box.stop()
            if self._mounted:
                # The tmpfs goes: keep the database and whatever was set aside, for the post-mortem.
                out = self.root / "var-final"
                out.mkdir(exist_ok=True)
                for f in self.data.iterdir():
                    if f.is_file() and f.name.startswith("playout.db"):
                        with contextlib.suppress(OSError):
                            shutil.copy2(f, out / f.name)
                if subprocess.run(["umount", str(self.data)], check=False).returncode != 0:
                    # Still open somewhere (a test's own connection): detach it now, freed when closed.
                    subprocess.run(["umount", "--lazy", str(self.data)], check=False)
                self._mounted = False

    def __enter__(self) -> StationService:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- systemd's view -------------------------------------------------------------------------------------

    def show(self, *props: str) -> dict[str, str]:
        props = props or ("ActiveState", "SubState", "Result", "NRestarts", "MainPID", "ExecMainStatus")
        return self.box.show(UNIT, *props)

    def systemctl(self, *args: str, check: bool = True) -> str:
        return self.box.systemctl(*args, check=check)

    def journal(self, output: str = "short-precise") -> str:
        return self.box.journal(UNIT, output)

    def journal_entries(self) -> list[dict]:
        """The unit's journal as (realtime seconds, message) records: systemd's lines and the daemon's."""
        out = []
        for line in self.journal("json").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                message = entry.get("MESSAGE", "")
                if isinstance(message, list):  # journald gives non-UTF-8 text as a list of bytes
                    message = bytes(message).decode("utf-8", "replace")
                out.append({"t": int(entry["__REALTIME_TIMESTAMP"]) / 1e6, "message": message})
        return out

    def main_pid(self) -> int:
        """The daemon's pid as the host sees it (the container shares the host's pid numbers only by
        translation: read it from PID 1's view through /proc)."""
        inner = int(self.show("MainPID")["MainPID"])
        return host_pid(self.box.pid1, inner)

    # -- the API, inside the container's network -------------------------------------------------------------

    def http(
        self, method: str, path: str, body: str | dict | None = None, token: str | None = TOKEN, timeout=10
    ) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if isinstance(body, dict):
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        url = f"http://127.0.0.1:{self.port}{path}"
        done = subprocess.run(
            self.box.net_cmd(
                sys.executable, "-c", _http_script(), json.dumps([method, url, headers, body, timeout])
            ),
            capture_output=True,
            text=True,
            timeout=timeout + 10,
        )
        if done.returncode != 0:
            raise AssertionError(f"http helper failed: {done.stderr}")
        status, text = json.loads(done.stdout)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def net_popen(self, script: str, *args: str, **kw) -> subprocess.Popen:
        """A host python running ``script`` in the container's network (to reach the API on 127.0.0.1)."""
        return subprocess.Popen(self.box.net_cmd(sys.executable, "-c", script, *args), **kw)

    # -- watching systemd while a test runs ------------------------------------------------------------------

    @contextlib.contextmanager
    def watch(self, interval: float = 0.5) -> Iterator[list[dict]]:
        """Samples of ActiveState/SubState/NRestarts/MainPID every ``interval`` s while the block runs."""
        samples: list[dict] = []
        done = threading.Event()

        def poll() -> None:
            while not done.wait(interval):
                try:
                    samples.append(
                        {
                            "t": time.monotonic(),
                            **self.show("ActiveState", "SubState", "NRestarts", "MainPID"),
                        }
                    )
                except Exception as exc:  # noqa: BLE001 - a sample lost is reported, not fatal
                    samples.append({"t": time.monotonic(), "error": str(exc)})

        thread = threading.Thread(target=poll, name="systemd-watch", daemon=True)
        thread.start()
        try:
            yield samples
        finally:
            done.set()
            thread.join(timeout=10)


def host_pid(pid1: int, inner: int) -> int:
    """The host pid of the container's process ``inner`` (NSpid's last field is the innermost number)."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("NSpid:"):
                ids = [int(x) for x in line.split()[1:]]
                if len(ids) > 1 and ids[-1] == inner and _in_container(int(status.parent.name), pid1):
                    return int(status.parent.name)
    raise LookupError(f"pid {inner} of the container not found")


def _in_container(pid: int, pid1: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{pid1}/ns/pid")
    except OSError:
        return False
