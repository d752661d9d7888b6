"""Whether the station may trust its clock to air scheduled slots.

A Raspberry Pi has no real-time clock: after a power cut with the Internet down it boots with the time it
last saved (fake-hwclock) or 1970, and a station that trusted it would air the morning bulletin in the
evening, then air again when NTP steps the clock.  Scheduled slots therefore air only on a trusted clock:

* ``synchronized``: NTP has set it (systemd-timesyncd's marker file, or ``timedatectl``);
* ``rtc``: a battery-backed real-time clock (a DS3231 module) set the system time at boot
  (``/sys/class/rtc/rtc0/hctosys`` reads 1);
* ``confirmed``: a technician looked at the time on the web page and confirmed it, for this boot;
* ``unknown``: the machine cannot tell (a server, a container, CI, ``make run`` on a laptop): the station
  behaves as it always did, and says so;
* ``unsynchronized``: none of the above on a machine that can tell: scheduled slots wait, and are logged
  ``missed`` if the window ends first.  Emergencies and a technician's "play now" still air.

    clock = StationClock(data_dir)
    state = clock.check()          # ClockState(state="synchronized", trusted=True, …)
    clock.confirm("lan")           # a technician vouches for the time until the next boot
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from playout import notify
from playout.atomic import atomic_writer

logger = logging.getLogger(__name__)

#: How long one look at the clock's state is reused: ``timedatectl`` asks timedated over D-Bus.
CHECK_EVERY_S = 10.0

MESSAGES = {
    "synchronized": "Đồng hồ đã đồng bộ qua mạng (NTP)",
    "rtc": "Đồng hồ lấy giờ từ mô-đun đồng hồ thời gian thực (RTC) khi khởi động",
    "confirmed": "Giờ đã được kỹ thuật viên xác nhận",
    "unknown": "Không xác định được đồng hồ đã đồng bộ hay chưa; trạm vẫn phát theo giờ máy",
    "unsynchronized": (
        "Đồng hồ chưa đồng bộ: các khung giờ chưa được phát cho đến khi đồng bộ hoặc xác nhận giờ"
    ),
}
#: What systemd passes to the daemon alone, never to be inherited by the commands it runs.
#: The reason written into the as-run log for a slot that could not air on an untrusted clock.
UNTRUSTED_REASON = "đồng hồ chưa đồng bộ"


@dataclass(frozen=True)
class ClockState:
    state: str
    trusted: bool
    message: str
    confirmed_by: str | None = None
    confirmed_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def ntp_synchronized() -> bool | None:
    """True if NTP has set the clock, False if the machine says it has not, None if it cannot tell."""
    marker = Path(os.environ.get("PLAYOUT_CLOCK_SYNC_FILE", "/run/systemd/timesync/synchronized"))
    if marker.exists():
        return True
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=3,
                check=False,
                # systemd's tools write to $NOTIFY_SOCKET when they find it: timedatectl then blocks on a
                # socket nobody reads for it (seen: every other slot missed, 3 s late, under a supervisor).
                env=notify.child_environment(),
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
            return out.stdout.strip() == "yes"
    return None


def rtc_set_the_clock() -> bool:
    """True when a real-time clock set the system time at boot (the kernel's hctosys)."""
    path = Path(os.environ.get("PLAYOUT_RTC_HCTOSYS", "/sys/class/rtc/rtc0/hctosys"))
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return False


def boot_id() -> str | None:
    """This boot's identity: a confirmation of the time holds until the machine restarts."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


class StationClock:
    def __init__(self, data_dir: Path, tz: dt.tzinfo = dt.UTC):
        self.path = Path(data_dir) / "clock-confirmed.json"
        self.tz = tz
        self._state: ClockState | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self._refreshing: threading.Thread | None = None

    def check(self, *, fresh: bool = False) -> ClockState:
        """The clock's state: looked at now if ``fresh`` (or never before), else the last look.

        A stale look is refreshed in the background: a slot about to air must never wait on
        ``timedatectl`` (it asks timedated over D-Bus, and may take seconds on a busy Pi).
        """
        if fresh or self._state is None:
            return self._refresh()
        if time.monotonic() - self._checked_at >= CHECK_EVERY_S:
            with self._lock:
                start = self._refreshing is None or not self._refreshing.is_alive()
                if start:
                    self._refreshing = threading.Thread(target=self._refresh, name="clock-check", daemon=True)
                    self._refreshing.start()
        return self._state

    def _refresh(self) -> ClockState:
        state = self._look()
        previous = self._state
        if state.state == "unknown" and previous is not None and not previous.trusted:
            # A look that failed (timedatectl timed out on a busy Pi) is no news: a clock known to be
            # unsynchronised stays untrusted until a look says otherwise, never trusted by default.
            logger.warning("clock: could not check the synchronisation now; still %s", previous.state)
            state = previous
        if previous is not None and state.state != previous.state:
            log = logger.info if state.trusted else logger.warning
            log("clock: %s (was %s)", state.state, previous.state)
        self._state, self._checked_at = state, time.monotonic()
        return state

    def _look(self) -> ClockState:
        ntp = ntp_synchronized()
        if ntp:
            return ClockState("synchronized", True, MESSAGES["synchronized"])
        if rtc_set_the_clock():
            return ClockState("rtc", True, MESSAGES["rtc"])
        confirmed = self._confirmation()
        if confirmed is not None:
            return ClockState(
                "confirmed",
                True,
                MESSAGES["confirmed"],  # who and when are fields of their own (the page formats them)
                confirmed["who"],
                confirmed["at"],
            )
        if ntp is None:
            return ClockState("unknown", True, MESSAGES["unknown"])
        return ClockState("unsynchronized", False, MESSAGES["unsynchronized"])

    def _confirmation(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("boot_id") != boot_id():
            return None  # confirmed before the last restart: the clock may have been lost since
        return data

    def confirm(self, who: str) -> ClockState:
        """A technician vouches for the current time, until the next boot."""
        at = dt.datetime.now(self.tz).isoformat(timespec="seconds")
        with atomic_writer(self.path, "w") as fh:
            json.dump({"who": who, "at": at, "boot_id": boot_id()}, fh, ensure_ascii=False)
        logger.warning("clock: %s confirmed the time %s", who, at)
        return self.check(fresh=True)
