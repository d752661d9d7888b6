"""The planner: when slots air and what each one airs.

Windows fire from APScheduler cron jobs in the station's time zone (``plan_jobs``, again after a clock
step or a reload).  A window airs its plays one after another (``air_window``), each only if it can still
end before the window closes; a slot that finds the clock untrusted or no audio ready waits while the
window has room for it, and is logged ``missed`` or ``skipped`` with the reason once it has not.  After a
start or a clock step, ``catch_up`` names today's windows still open and logs the slots of those already
closed as ``missed``.

What a slot airs comes from one place, ``Rotation``: the slot asks it when it airs, and the 14-day
schedule (``upcoming``) runs the same rotation forward, so the schedule shown is what will air.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.cron import CronTrigger

from playout.asrun import AsRunLog, Slot
from playout.clock import UNTRUSTED_REASON
from playout.config import StationConfig, Window
from playout.library import Bulletin, Library
from playout.onair import OnAir, slot_length_s

logger = logging.getLogger(__name__)

NOTHING_READY = "chưa có bản tin nào đã duyệt và sẵn sàng phát"
#: How often a slot that waits (for a trusted clock, for its audio) looks again.
SLOT_WAIT_S = 2.0
EMERGENCY_WINDOW = "khẩn cấp"
_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
#: Rows of a window's plays that took a bulletin on air (a ``missed`` or ``skipped`` one never keyed).
_TOOK_THE_AIR = ("playing", "played", "failed", "interrupted")


class Rotation:
    """Which bulletin a slot airs: priority first, then the one aired least, oldest approval first
    (``Library.pick``), and not one the same window already aired while there are others.

    Both a slot about to air (``next_for``) and the schedule (``forward``) read the as-run log the same
    way: play counts from the ``played`` rows, and the window's earlier plays from its own rows, so a
    window resumed after a restart, or shown while its first play is on air, picks as it airs.
    """

    def __init__(self, library: Library, log: AsRunLog):
        self.library = library
        self.log = log

    def pick(
        self, day: dt.date, counts: dict[str, int], aired: set[str], refused: set[str] = frozenset()
    ) -> Bulletin | None:
        """``refused``: bulletins whose audio failed its check, left out until rendered again."""
        bulletin = self.library.pick(day, counts, aired | refused)
        return None if bulletin is None or bulletin.id in refused else bulletin

    def aired_in(self, window: Window, start: dt.datetime) -> set[str]:
        """The bulletins the window's plays starting at ``start`` have taken on air so far."""
        keys = {Slot(window.name, start, i).key for i in range(window.plays)}
        rows = self.log.plays(since=start, until=start + dt.timedelta(milliseconds=1), limit=10_000)
        return {
            r["bulletin_id"]
            for r in rows
            if r["slot_key"] in keys and r["bulletin_id"] and r["status"] in _TOOK_THE_AIR
        }

    def next_for(
        self, window: Window, start: dt.datetime, refused: set[str] = frozenset()
    ) -> Bulletin | None:
        """The bulletin a play of this window airs now."""
        return self.pick(start.date(), self.log.play_counts(), self.aired_in(window, start), refused)

    def forward(self, starts: list[tuple[dt.datetime, Window]]) -> Iterator[tuple[Slot, Bulletin | None]]:
        """The rotation run forward over window starts in time order: each slot not yet in the log, with
        the bulletin it will air if every play before it airs as planned.  The first is ``next_for``."""
        counts = dict(self.log.play_counts())
        for start, window in starts:
            aired = self.aired_in(window, start)
            for i in range(window.plays):
                slot = Slot(window.name, start, i)
                if self.log.has_slot(slot.key):
                    continue
                bulletin = self.pick(start.date(), counts, aired)
                yield slot, bulletin
                if bulletin is not None:
                    counts[bulletin.id] = counts.get(bulletin.id, 0) + 1
                    aired.add(bulletin.id)


class Planner:
    """Cron jobs from the windows, catch-up, and each window's slots through to their outcome.

    ``settings`` gives the config in force (windows and blackout dates are read at each decision, so a
    reloaded ``schedule.yaml`` applies at once); ``clock_trusted`` says whether scheduled slots may air.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], StationConfig],
        tz: dt.tzinfo,
        scheduler: BaseScheduler,
        library: Library,
        log: AsRunLog,
        onair: OnAir,
        stopping: threading.Event,
        clock_trusted: Callable[[], bool],
        in_service_since: dt.datetime | None = None,
    ):
        self._settings = settings
        self.tz = tz
        self.scheduler = scheduler
        self.library = library
        self.log = log
        self.onair = onair
        self.stopping = stopping
        self.clock_trusted = clock_trusted
        #: Windows that closed before the station went into service were never its to air: not missed.
        self.in_service_since = in_service_since
        self.rotation = Rotation(library, log)
        self._windows_lock = threading.Lock()
        self._windows_busy: set[tuple[str, dt.date]] = set()

    @property
    def config(self) -> StationConfig:
        return self._settings()

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def slot_length_s(self, bulletin: Bulletin | None = None) -> float:
        return slot_length_s(self.config, bulletin)

    # -- cron jobs -----------------------------------------------------------------------------------------

    def plan_jobs(self) -> None:
        for job in self.scheduler.get_jobs():
            job.remove()
        for window in self.config.windows:
            trigger = CronTrigger(
                day_of_week=",".join(str(_DAYS[d]) for d in window.days),
                hour=window.start.hour,
                minute=window.start.minute,
                second=window.start.second,
                timezone=self.tz,
            )
            # A late start still airs while the window has room for a bulletin (air_window checks).
            self.scheduler.add_job(
                self._window_job,
                trigger,
                args=[window.name],
                id=f"window:{window.name}",
                misfire_grace_time=max(1, int(window.length_s)),
                replace_existing=True,
            )

    def _window(self, name: str) -> Window | None:
        return next((w for w in self.config.windows if w.name == name), None)

    def _window_job(self, name: str) -> None:
        window = self._window(name)
        if window is None:
            return
        start = dt.datetime.combine(self.now().date(), window.start, tzinfo=self.tz)
        self.air_window(window, start)

    def next_slot(self) -> tuple[str, dt.datetime] | None:
        now = self.now()
        upcoming = []
        for job in self.scheduler.get_jobs():
            # Jobs added before the scheduler starts have no run time yet: ask their trigger.
            at = getattr(job, "next_run_time", None) or job.trigger.get_next_fire_time(None, now)
            if at is not None:
                upcoming.append((at, job.id.split(":", 1)[1]))
        if not upcoming:
            return None
        at, name = min(upcoming)
        return name, at.astimezone(self.tz)

    # -- catch-up ------------------------------------------------------------------------------------------

    def catch_up(self) -> list[tuple[Window, dt.datetime]]:
        """After a start or a clock step: today's windows still open, to air now (with their start); the
        slots of those already closed that have no row are logged ``missed``."""
        now = self.now()
        blackout = set(self.config.blackout_dates)
        still_open = []
        for window in self.config.windows:
            if not window.airs_on(now.date(), blackout):
                continue
            start = dt.datetime.combine(now.date(), window.start, tzinfo=self.tz)
            end = dt.datetime.combine(now.date(), window.end, tzinfo=self.tz)
            if now < start:
                continue
            if now < end:
                still_open.append((window, start))
                continue
            if self.in_service_since is not None and end <= self.in_service_since:
                continue  # the station did not exist yet (installed at 10:00: the morning is not missed)
            for i in range(window.plays):
                slot = Slot(window.name, start, i)
                if not self.log.has_slot(slot.key):
                    self.log.record(slot, "missed", error="trạm không hoạt động trong khung giờ này")
        return still_open

    # -- a window's slots ----------------------------------------------------------------------------------

    def air_window(self, window: Window, start: dt.datetime) -> None:
        """Air the window's plays, each only if it can still end before the window closes.

        One thread per window and day (the cron job, a catch-up or a finished render may all ask).  A slot
        whose bulletin is still being rendered, or that finds the clock untrusted, waits while the window
        still has room for it, and is logged ``missed`` with the reason once it has not.
        """
        day = start.date()
        busy = (window.name, day)
        with self._windows_lock:
            if busy in self._windows_busy:
                return
            self._windows_busy.add(busy)
        try:
            self._air_window(window, start)
        finally:
            with self._windows_lock:
                self._windows_busy.discard(busy)

    def _air_window(self, window: Window, start: dt.datetime) -> None:
        day = start.date()
        end = dt.datetime.combine(day, window.end, tzinfo=self.tz)
        if day in set(self.config.blackout_dates):
            for i in range(window.plays):
                self.log.record(Slot(window.name, start, i), "skipped", error="ngày nghỉ phát sóng")
            return
        if not window.airs_on(day):
            return
        for i in range(window.plays):
            self._air_slot(window, Slot(window.name, start, i), end)
            if self.stopping.is_set():
                return

    def _air_slot(self, window: Window, slot: Slot, end: dt.datetime) -> None:
        """Wait until the slot can air (trusted clock, audio ready), air it, or log why it did not."""
        said: set[str] = set()
        # Bulletins whose audio failed its check before keying, until they are rendered again.
        refused: dict[str, Bulletin] = {}
        nothing_ready = False

        def wait(reason: str) -> None:
            if reason not in said:
                said.add(reason)
                logger.info("slot %s waits: %s", slot.key, reason)
            self.stopping.wait(SLOT_WAIT_S)

        while not self.stopping.is_set():
            if self.log.has_slot(slot.key):
                return
            trusted = self.clock_trusted()
            if self.now() + dt.timedelta(seconds=self.slot_length_s()) > end:
                if not trusted:
                    self.log.record(slot, "missed", error=UNTRUSTED_REASON)
                elif nothing_ready:
                    self.log.record(slot, "skipped", error=NOTHING_READY)
                else:
                    self.log.record(slot, "missed", error="không còn đủ thời gian trong khung giờ")
                return
            if not trusted:
                wait("the clock is not trusted yet")
                continue
            for bid, b in list(refused.items()):
                if b.status == "ready" and b.audio_path is not None:
                    del refused[bid]  # rendered again (its audio is checked again before keying)
            bulletin = self.rotation.next_for(window, slot.scheduled_at, set(refused))
            nothing_ready = bulletin is None
            if bulletin is None:
                # Audio may be on its way (the station just started, a script was approved at 06:01) or
                # an approval may still come: the slot stays open while the window has room for it.
                wait(
                    "bulletins are still being rendered" if self.library.rendering() else "no bulletin ready"
                )
                continue
            with self.onair.lock:  # an emergency may be on air: wait for it, then check the clock again
                if self.now() + dt.timedelta(seconds=self.slot_length_s(bulletin)) > end:
                    self.log.record(
                        slot, "missed", error="không còn đủ thời gian trong khung giờ", bulletin=bulletin
                    )
                    return
                outcome = self.onair.air_locked(bulletin, slot, ends_by=end)
            if outcome == "unverified":
                refused[bulletin.id] = bulletin  # air the next ready bulletin; this one is rendered again
                continue
            return

    # -- the schedule ahead --------------------------------------------------------------------------------

    def upcoming(self, days: int = 14) -> list[dict]:
        """The coming slots and the bulletin each will air: the slots' own rotation, run forward."""
        now = self.now()
        blackout = set(self.config.blackout_dates)
        starts: list[tuple[dt.datetime, Window]] = []
        for offset in range(days):
            day = now.date() + dt.timedelta(days=offset)
            starts += sorted(
                (
                    (dt.datetime.combine(day, w.start, tzinfo=self.tz), w)
                    for w in self.config.windows
                    if w.airs_on(day, blackout) and dt.datetime.combine(day, w.end, tzinfo=self.tz) > now
                ),
                key=lambda sw: sw[0],
            )
        return [
            {
                "window": slot.window,
                "at": slot.scheduled_at.isoformat(timespec="seconds"),
                "play": slot.index,
                "bulletin_id": b.id if b else None,
                "title": b.title if b else None,
            }
            for slot, b in self.rotation.forward(starts)
        ]

    # -- emergencies ---------------------------------------------------------------------------------------

    def emergencies_due(self) -> list[tuple[str, Bulletin]]:
        """Emergency bulletins ready today that have not aired, each with the key its play is logged by."""
        due = []
        for bulletin in self.library.emergencies(self.now().date()):
            key = f"emergency/{bulletin.id}"
            if not self.log.has_slot(key):
                due.append((key, bulletin))
        return due
