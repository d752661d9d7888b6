"""The station: its parts started in order and stopped in reverse, and the main loop that watches them.

    relay (off first) → as-run log (recover) → audio out → renderer → approvals and library → on air
    → clock → scheduler and planner → API → library and inbox workers

Each part ``start`` brings up is registered with an ExitStack, so ``close`` stops exactly the parts that
started, in reverse, and the relay is off at the end whatever failed before.  The other modules hold the
work; this one holds the parts and the threads they run in:

    playout.onair     the on-air sequence: key, pre-roll, play, tail, unkey (released in ``finally``)
    playout.planner   cron jobs, catch-up, a window's slots, the one rotation behind slots and schedule
    playout.service   what the HTTP front may do with the station (``_start_api`` hands it over)

A slot is claimed in the as-run log before the relay is keyed, so a slot never airs twice, across
restarts, crashes and clock steps alike.

Time: a Pi has no real-time clock: it may boot with a stale clock that NTP later steps.  The main loop
compares the wall clock with the monotonic clock every second; on a step it re-plans the jobs from the
new time and catches up (airs a slot still inside its window if the bulletin still fits, logs it
``missed`` otherwise).  The main loop also pings systemd's watchdog while ``healthy``, starts emergency
bulletins, writes what a busy database held back, and reloads ``schedule.yaml`` and the lexicon.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import watchfiles
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler

from gpio import Relay
from playout import __version__, notify, reports
from playout.approvals import ApprovalStore
from playout.asrun import AsRunLog, Slot
from playout.audio_out import Player, open_player
from playout.clock import StationClock
from playout.config import StationConfig, Window, load_config, record_relay
from playout.errors import ConfigError, PlayoutError
from playout.http import create_app
from playout.intake import MAX_SCRIPT_BYTES, is_script_file
from playout.library import Bulletin, Library
from playout.limits import ConnectionLimits, fd_budget, make_server
from playout.onair import NowPlaying, OnAir, slot_length_s
from playout.planner import EMERGENCY_WINDOW, Planner
from playout.service import StationService
from playout.storage import Alarms, disk_status, in_service_since, open_station_db
from tts.normalize import StationLexicon, load_station_lexicon
from tts.readiness import engines_ready
from tts.worker import RenderWorker

logger = logging.getLogger(__name__)

#: A wall-clock jump larger than this (against the monotonic clock) is a clock step.
CLOCK_STEP_S = 5.0
TICK_S = 0.5
#: Settings read once at start (the relay pin, the sound card, the API socket, where data lives).
RESTART_SECTIONS = ("relay", "audio", "api", "paths")
#: ... except these, which the daemon reads each time it needs them.
APPLIED_AT_ONCE = {"paths.lexicon", "relay.pre_roll_s", "relay.tail_s"}
#: How often free disk space is measured, and how much a render needs before a no-space one is retried.
DISK_CHECK_S = 10.0
RENDER_ROOM_MB = 50
#: Open API connections at most (fewer if the descriptor limit is low); a phone needs a handful.
MAX_API_CONNECTIONS = 200
#: A play on air longer than its slot by this much is stuck (a hung audio device): the watchdog stops.
STUCK_MARGIN_S = 30.0


class Station:
    def __init__(
        self,
        config: StationConfig,
        *,
        config_path: Path | None = None,
        relay=None,
        player: Player | None = None,
        renderer=None,
        serve_api: bool = True,
    ):
        self.config = config
        self.config_path = config_path
        self.tz = config.tz
        self._relay = relay
        self._player = player
        # Renders: a worker process per batch unless a test hands in another (tts.worker.InProcessRendering).
        self._renderer = renderer
        self.serve_api = serve_api
        self.stopping = threading.Event()
        # What close() runs, in reverse: each part start() brought up registers how it stops.
        self._parts = ExitStack()
        # One-off threads (catch-up, play now, emergencies): joined at stop, never a health criterion.
        self._threads: list[threading.Thread] = []
        # Long-lived workers whose death is a problem the watchdog reports.
        self._workers: dict[str, threading.Thread] = {}
        self._api_thread: threading.Thread | None = None
        self.started_at: dt.datetime | None = None
        #: Files in bulletins/inbox/ the station refused (or that repeat a rejected version), with why.
        self.inbox_refused: dict[str, str] = {}
        self.clock: StationClock | None = None
        self.last_error: str | None = None
        self._config_mtime = self._mtime()
        self._lexicon_stamp: tuple | None = None
        self.lexicon: StationLexicon | None = None
        self.api_server = None
        self.api_app = None
        self.fd_budget = None
        self.disk: dict | None = None
        self._disk_checked_at = float("-inf")
        self.db_check = None
        #: What the last schedule.yaml reload did: applied sections, settings needing a restart, errors.
        self.reload_state: dict = {"at": None, "changed": [], "restart_needed": [], "error": None}
        self._reload_requested = threading.Event()
        self._library_wake = threading.Event()

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    @property
    def clock_synced(self) -> bool | None:
        """True on a trusted clock (NTP, RTC or confirmed), False when untrusted, None when unknown."""
        if self.clock is None:
            return None
        state = self.clock.check().state
        return None if state == "unknown" else state != "unsynchronized"

    def clock_trusted(self) -> bool:
        return self.clock is None or self.clock.check().trusted

    def confirm_clock(self, who: str) -> dict:
        """A technician vouches for the time shown (web page): scheduled slots air again until reboot."""
        if self.clock is None:
            self.clock = StationClock(self.config.paths.data, self.tz)
        state = self.clock.confirm(who)
        try:
            self.approvals.record_action(
                who, "confirm_clock", "-", None, self.now().isoformat(timespec="seconds")
            )
        except PlayoutError as exc:  # the confirmation stands; only its audit line is missing
            logger.error("clock confirmed by %s not in the audit trail: [%s] %s", who, exc.code, exc.message)
        return state.to_dict()

    # -- start and stop ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bring the parts up in order (see the module's doc); close() stops those that started."""
        cfg = self.config
        # The relay first: whatever state a crash left the pin in, the amplifier is off from here on.
        self.relay = self._relay or Relay(cfg.relay, on_change=self._relay_changed)
        self._parts.callback(self.relay.close)  # the last part to stop; an error here reaches the caller
        self.relay.off()
        try:
            record_relay(
                cfg.paths.data, self.relay.settings if hasattr(self.relay, "settings") else cfg.relay
            )
        except OSError as exc:  # a full disk: relay-off still has schedule.yaml
            logger.warning("could not record the relay's pin for relay-off: %s", exc)
        db = cfg.paths.data / "playout.db"
        # Before anything opens it: a damaged database is moved aside and rescued, never a reason to stay
        # silent (it used to stop the station at every start).
        self.db_check = open_station_db(db, self.tz)
        if self.db_check.damaged:
            logger.error("as-run log: %s", self.db_check.detail)
        self.log = AsRunLog(db, self.tz)
        self._on_stop("as-run log", self.log.close)
        self.in_service_since = in_service_since(cfg.paths.data, self.tz, self.log.earliest())
        self.alarms = Alarms(db, self.tz)
        if self.db_check.alarm and not self.db_check.alarm_stored:
            self.alarms.raise_alarm("database_damaged", self.db_check.alarm, self.db_check.detail)
        self.log.recover()
        self.disk = disk_status(cfg.paths.data)
        self.player = self._player or open_player(cfg.audio)
        self._on_stop("audio out", self.player.close)
        logger.info("audio out: %s", self.player.describe())
        logger.info("speech engines: %s (rendered in a worker process)", " → ".join(cfg.tts.engines))
        self.load_lexicon()
        # Renders run in a child process (tts.worker): this process never loads the speech stack.
        self.renderer = self._renderer or RenderWorker(
            memory_mb=cfg.tts.render_memory_mb, timeout_s=cfg.tts.render_timeout_s
        )
        self._on_stop("renderer", self.renderer.close)
        self.approvals = ApprovalStore(cfg.paths.data / "playout.db", cfg.paths.data / "scripts", self.tz)
        self._on_stop("approvals", self.approvals.close)
        self.library = Library(cfg, self.renderer, self.approvals)
        self.library.scan()
        self.onair = OnAir(
            settings=lambda: self.config,
            relay=self.relay,
            player=self.player,
            log=self.log,
            tz=self.tz,
            stopping=self.stopping,
            rerender=self.wake_library,
            next_slot_text=self.next_slot_text,
        )
        self.clock = StationClock(cfg.paths.data, self.tz)
        state = self.clock.check(fresh=True)
        if state.state == "unsynchronized":
            logger.warning("the system clock is not synchronised: scheduled slots wait until it is trusted")
        elif state.state == "unknown":
            logger.warning("cannot tell whether the system clock is synchronised: trusting it")
        else:
            logger.info("clock: %s", state.state)
        # Threads are joined once the scheduler, whose events start catch-ups, has stopped.
        self._on_stop("threads", self._join_threads)
        self.scheduler = BackgroundScheduler(
            timezone=self.tz,
            job_defaults={"coalesce": True, "max_instances": 1},
            executors={"default": {"type": "threadpool", "max_workers": 4}},
        )
        self._on_stop("scheduler", lambda: self.scheduler.running and self.scheduler.shutdown(wait=False))
        self.scheduler.add_listener(self._job_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        self.planner = Planner(
            settings=lambda: self.config,
            tz=self.tz,
            scheduler=self.scheduler,
            library=self.library,
            log=self.log,
            onair=self.onair,
            stopping=self.stopping,
            clock_trusted=self.clock_trusted,
            in_service_since=self.in_service_since,
        )
        self.planner.plan_jobs()
        self.fleet = None
        if cfg.fleet is not None:
            from playout.fleet.station_part import FleetPart  # tuf and paho only where a centre feeds us

            self.fleet = FleetPart(self)
            self._on_stop("fleet", self.fleet.close)
            self.fleet.start()
        if self.serve_api:
            self._on_stop("api", self._stop_api)
            self._start_api()  # before the worker threads: it finishes its own imports while starting
        self._workers["library"] = self._spawn("library", self._library_loop)
        self._workers["inbox"] = self._spawn("inbox", self._inbox_loop)
        self.scheduler.start()
        self.started_at = self.now()
        self.catch_up()
        notify.notify("READY=1", f"STATUS=on duty; next slot {self.next_slot_text()}")
        logger.info("station %s ready: %s", __version__, self.next_slot_text())

    def stop(self, reason: str = "dừng dịch vụ") -> None:
        self.stopping.set()
        self._library_wake.set()
        self.stop_playback(reason)

    def close(self) -> None:
        """Stop every part that started, in reverse order; the relay is off at the end, whatever failed."""
        notify.notify("STOPPING=1")
        self.stopping.set()
        self._library_wake.set()
        self.stop_playback("dừng dịch vụ")
        self._parts.close()

    def _on_stop(self, name: str, step: Callable[[], object]) -> None:
        """Have close() run ``step`` before the parts started earlier; a failure is logged and the other
        parts still stop."""

        def guarded() -> None:
            try:
                step()
            except Exception:  # noqa: BLE001 - keep stopping the other parts
                logger.exception("stopping %s failed", name)

        self._parts.callback(guarded)

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop.  Returns the process exit status."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop("nhận lệnh dừng (SIGTERM)"))
        signal.signal(signal.SIGINT, lambda *_: self.stop("nhận lệnh dừng (Ctrl-C)"))
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self._reload_requested.set())
        try:
            self.start()
            self._main_loop()
        finally:
            self.close()
        return 0

    # -- the main loop: watchdog, clock steps, emergencies, config reloads --------------------------------

    def _main_loop(self) -> None:
        interval = notify.watchdog_interval()
        last_ping = 0.0
        wall, mono = time.time(), time.monotonic()
        next_reload_check = 0.0
        while not self.stopping.wait(TICK_S):
            w, m = time.time(), time.monotonic()
            step = (w - wall) - (m - mono)
            wall, mono = w, m
            if abs(step) > CLOCK_STEP_S:
                self.clock_stepped(step)
            if interval and m - last_ping >= interval and self.healthy():
                notify.notify("WATCHDOG=1")
                last_ping = m
            self._check_emergencies()
            self._look_after_storage(m)
            if self._reload_requested.is_set() or m >= next_reload_check:
                next_reload_check = m + 5.0
                if self._reload_requested.is_set() or self._mtime() != self._config_mtime:
                    self._reload_requested.clear()
                    self.reload_config()
                if self._lexicon_file_stamp() != self._lexicon_stamp:
                    self.load_lexicon()

    def _look_after_storage(self, mono: float) -> None:
        """Write what a locked or full database held back; notice the disk filling or freeing up."""
        if self.log.held():
            self.log.flush()
        if mono - self._disk_checked_at >= DISK_CHECK_S:
            self._disk_checked_at = mono
            was_low = bool(self.disk and self.disk.get("low"))
            self.disk = disk_status(self.config.paths.data)
            if self.disk["low"] and not was_low:
                logger.warning(
                    "disk space low: %s MB free in %s", self.disk["free_mb"], self.config.paths.data
                )
            if self.disk["free_mb"] >= RENDER_ROOM_MB and self.library.retry_when_space():
                self.wake_library()

    def problems(self) -> list[dict]:
        """What is wrong right now, each with a stable code and an operator's message (Vietnamese).

        ``vital`` problems are the ones a restart cures: a long-lived part (scheduler, library worker,
        inbox watcher) died, or the on-air path is stuck past the longest a play may take.  Only those stop
        the systemd watchdog; the others (a dead API, say) are shown but the station keeps its watch, since
        killing it mid-window would cost a bulletin.  One-off threads (a catch-up, play now, an emergency)
        ending is normal and never a problem: that mistake had systemd kill the station after every play.
        """
        out: list[dict] = []

        def add(code: str, message: str, vital: bool) -> None:
            out.append({"code": code, "message": message, "vital": vital})

        sched = getattr(self, "scheduler", None)
        thread = getattr(sched, "_thread", None)
        if sched is not None and not (sched.running and thread is not None and thread.is_alive()):
            add("SCHEDULER_DEAD", "Bộ lập lịch đã dừng: các khung giờ sẽ không được phát", True)
        for name, label in (("library", "Luồng dựng bản tin"), ("inbox", "Luồng theo dõi thư mục inbox")):
            worker = self._workers.get(name)
            if worker is not None and not worker.is_alive() and not self.stopping.is_set():
                add(f"{name.upper()}_WORKER_DEAD", f"{label} đã dừng", True)
        current = self.now_playing
        if current is not None:
            on_for = time.monotonic() - current.since
            limit = self.slot_length_s(current.bulletin) + STUCK_MARGIN_S
            if on_for > limit:
                add(
                    "ON_AIR_STUCK",
                    f"Bản tin đang phát đã quá {on_for:.0f} giây (tối đa {limit:.0f} giây): "
                    "đường phát bị treo",
                    True,
                )
        log = getattr(self, "log", None)
        if log is not None and log.held():
            add(
                "LOG_WRITES_HELD",
                f"{log.held()} dòng nhật ký chưa ghi được vào đĩa (cơ sở dữ liệu bận hoặc đầy); "
                "đang giữ trong bộ nhớ",
                False,
            )
        if self.disk and self.disk.get("low"):
            add("DISK_LOW", self.disk.get("message") or "Sắp hết dung lượng đĩa", False)
        for alarm in self._active_alarms():
            add(f"ALARM_{alarm['kind'].upper()}", alarm["message"], False)
        link = getattr(getattr(self, "fleet", None), "link", None)
        if link is not None:
            # A refused password or an untrusted certificate does not heal by retrying: the centre sees the
            # station offline until someone fixes its settings. (A link that is merely down is the network's,
            # shown on the overview, and the station keeps airing either way.)
            state = link.state
            if state.code in ("FLEET_LINK_REFUSED", "FLEET_LINK_TLS"):
                add(state.code, state.message or state.code, False)
        if self.clock is not None:
            clock = self.clock.check()
            if not clock.trusted:
                add("CLOCK_UNTRUSTED", clock.message, False)
        api = self.api_server
        thread_down = self._api_thread is not None and not self._api_thread.is_alive()
        if api is not None and thread_down and not self.stopping.is_set():
            add("API_DOWN", "Máy chủ web/API đã dừng; trạm vẫn phát theo lịch", False)
        return out

    def _active_alarms(self) -> list[dict]:
        alarms = getattr(self, "alarms", None)
        if alarms is None:
            return []
        try:
            return alarms.active()
        except Exception:  # noqa: BLE001 - a locked database must not take health down with it
            logger.debug("alarms unreadable", exc_info=True)
            return []

    def acknowledge_alarm(self, alarm_id: int, who: str) -> bool:
        """A technician has looked into an alarm: it leaves health and the web page (kept in the table)."""
        done = self.alarms.acknowledge(alarm_id, who)
        if done:
            logger.warning("alarm %d acknowledged by %s", alarm_id, who)
            try:
                self.approvals.record_action(who, "acknowledge_alarm", "-", None, str(alarm_id))
            except PlayoutError as exc:
                logger.error("alarm acknowledgement not in the audit trail: [%s] %s", exc.code, exc.message)
        return done

    def healthy(self) -> bool:
        """Pinged to systemd's watchdog only while the long-lived parts are alive and not stuck."""
        return not any(p["vital"] for p in self.problems())

    def clock_stepped(self, step_s: float) -> None:
        logger.warning("system clock stepped by %+.1f s: re-planning the schedule", step_s)
        if self.clock is not None:
            self.clock.check(fresh=True)
        self.planner.plan_jobs()
        self.catch_up()

    # -- the planner (playout.planner): slots, catch-up, the schedule ahead ---------------------------------

    def _job_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning("scheduler missed %s at %s; catching up", event.job_id, event.scheduled_run_time)
            self._spawn_once("catch-up", self.catch_up)
        elif event.exception is not None:
            self.last_error = f"{type(event.exception).__name__}: {event.exception}"
            logger.error("scheduled job %s failed: %s", event.job_id, self.last_error)

    def catch_up(self) -> None:
        """After a start or a clock step: air today's windows still open, log the slots of the rest missed."""
        for window, start in self.planner.catch_up():
            self._spawn_once(f"window {window.name}", lambda w=window, s=start: self.air_window(w, s))

    def air_window(self, window: Window, start: dt.datetime) -> None:
        """Air a window's plays (in the calling thread), each only if it still fits the window."""
        self.planner.air_window(window, start)

    def upcoming(self, days: int = 14) -> list[dict]:
        """The coming slots and the bulletin each will air: the slots' own rotation, run forward."""
        return self.planner.upcoming(days)

    def next_slot(self) -> tuple[str, dt.datetime] | None:
        planner = getattr(self, "planner", None)
        return planner.next_slot() if planner is not None else None

    def next_slot_text(self) -> str:
        nxt = self.next_slot()
        return f"{nxt[0]} at {nxt[1].isoformat(timespec='seconds')}" if nxt else "none"

    # -- on air (playout.onair) ----------------------------------------------------------------------------

    def air(self, bulletin: Bulletin, slot: Slot, key: str | None = None) -> str:
        """Air a bulletin now under its own key, after whatever is on air; the outcome."""
        return self.onair.air(bulletin, slot, key)

    def stop_playback(self, reason: str) -> bool:
        onair = getattr(self, "onair", None)
        return onair.stop(reason) if onair is not None else False

    @property
    def now_playing(self) -> NowPlaying | None:
        onair = getattr(self, "onair", None)
        return onair.now_playing if onair is not None else None

    def slot_length_s(self, bulletin: Bulletin | None = None) -> float:
        return slot_length_s(self.config, bulletin)

    # What a test reaches for to air a slot by hand (the planner holds the lock the same way).
    @property
    def _air_lock(self) -> threading.Lock:
        return self.onair.lock

    def _air_locked(
        self, bulletin: Bulletin, slot: Slot, key: str | None = None, ends_by: dt.datetime | None = None
    ) -> str:
        return self.onair.air_locked(bulletin, slot, key, ends_by)

    def play_now(self, bulletin: Bulletin, who: str) -> str:
        """Air a bulletin at once, outside the windows (an admin's action, in the audit trail)."""
        at = self.now()
        # Milliseconds: a second press within the same second (after a failed first try) is its own play.
        key = f"manual/{at.isoformat(timespec='milliseconds')[:23]}/{bulletin.id[:12]}"
        logger.warning("play now requested by %s: %s", who, bulletin.title)
        try:
            self.approvals.record_action(who, "play_now", bulletin.id, bulletin.script.name)
        except PlayoutError as exc:  # a locked or full database: the technician's request still airs
            logger.error("play now by %s not in the audit trail: [%s] %s", who, exc.code, exc.message)
        self._spawn(key, lambda: self.air(bulletin, Slot("phát ngay", at), key))
        return key

    def report(self, kind: str, year: int, number: int) -> reports.Report:
        """The monthly or quarterly report from the as-run log and the library (raises ValueError)."""
        start, end = reports.period_bounds(kind, year, number, self.tz)
        # Quarterly quotas count from the quarter's start even in a month's report.
        quarter_start, _ = reports.period_bounds("quarter", year, (start.month - 1) // 3 + 1, self.tz)
        received = [
            {
                "department": b.script.meta.department,
                "received_at": b.approved_at.astimezone(self.tz),
                "title": b.title,
                "topic": b.topic,
            }
            for b in self.library.bulletins()
        ]
        rows = self.log.plays(since=min(start, quarter_start), until=end, limit=1_000_000)
        since = getattr(self, "in_service_since", None)
        return reports.build_report(
            kind,
            year,
            number,
            plays=rows,
            received=received,
            settings=self.config.reports,
            tz=self.tz,
            in_service_since=since.date() if since else None,
        )

    # -- emergencies ---------------------------------------------------------------------------------------

    def _check_emergencies(self) -> None:
        if not hasattr(self, "planner"):
            return
        for key, bulletin in self.planner.emergencies_due():
            if any(t.name == key and t.is_alive() for t in self._threads):
                continue
            if self.config.daemon.emergency_cuts:
                self.stop_playback("cắt để phát tin khẩn cấp")
            slot = Slot(EMERGENCY_WINDOW, self.now())
            logger.warning("emergency bulletin %s: airing now", bulletin.title)
            self._spawn(key, lambda b=bulletin, s=slot, k=key: self.air(b, s, k))

    # -- background work -----------------------------------------------------------------------------------

    def _library_loop(self) -> None:
        """Render new bulletins ahead of time and pick up changes, so a slot never waits on TTS."""
        while not self.stopping.is_set():
            try:
                self.library.scan()
                if self.library.render_pending(self.stopping):
                    self.catch_up()  # a window may be open and waiting for these
            except Exception:  # noqa: BLE001 - the station keeps airing what it has
                logger.exception("library update failed")
            self._library_wake.wait(self.config.daemon.rescan_s)
            self._library_wake.clear()

    def wake_library(self) -> None:
        """Render and pick up changes now (an approval), not at the next rescan."""
        self._library_wake.set()

    def _inbox_loop(self) -> None:
        """Scripts dropped into bulletins/inbox/ wait for approval, like uploads (watchfiles, no polling)."""
        inbox = self.config.paths.bulletins / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        for path in sorted(inbox.iterdir()):
            self._submit_from_inbox(path)
        try:
            for changes in watchfiles.watch(
                inbox, stop_event=self.stopping, rust_timeout=1000, yield_on_timeout=False
            ):
                for change, name in sorted(changes, key=lambda c: c[1]):
                    if change != watchfiles.Change.deleted:
                        self._submit_from_inbox(Path(name))
                    else:
                        self.inbox_refused.pop(Path(name).name, None)  # taken away: nothing to report
        except Exception:  # noqa: BLE001 - a broken watcher must not take the station down
            logger.exception("watching %s failed; inbox scripts are picked up at the next start", inbox)

    def _submit_from_inbox(self, path: Path) -> None:
        if not is_script_file(path):
            return
        from tts import outages
        from tts.plan import arrival_checks

        def check(script):
            outages.use_file(self.config.paths.data / outages.FILE_NAME)
            return arrival_checks(self.config, script)

        try:
            record, _ = self.approvals.submit(
                path.read_bytes()[: MAX_SCRIPT_BYTES + 1],
                path.name,
                who="thư mục inbox",
                source="inbox",
                check=check,  # the same door checks as an upload: too long is refused here
            )
        except PlayoutError as exc:
            logger.error("inbox script %s refused: [%s] %s", path.name, exc.code, exc.message)
            self.inbox_refused[path.name] = f"[{exc.code}] {exc.message}"
        except OSError as exc:
            logger.warning("inbox script %s unreadable: %s", path.name, exc)
        else:
            logger.info("inbox script %s is %s (%s)", path.name, record.status, record.sha256[:12])
            if record.status == "rejected" and not record.is_new:
                # Dropped again after its rejection: the page says so, with the reason, instead of silence.
                reason = f" (lý do: {record.reason})" if record.reason else ""
                self.inbox_refused[path.name] = f"đã bị từ chối trước đây{reason}; hãy sửa rồi gửi lại"
            else:
                self.inbox_refused.pop(path.name, None)

    def _spawn(self, name: str, target) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        return thread

    def _spawn_once(self, name: str, target) -> None:
        if not any(t.name == name and t.is_alive() for t in self._threads):
            self._spawn(name, target)

    def _join_threads(self) -> None:
        for t in [*self._threads, *self._workers.values()]:
            t.join(timeout=5)

    # -- config reload -------------------------------------------------------------------------------------

    def _mtime(self) -> float | None:
        try:
            return self.config_path.stat().st_mtime if self.config_path else None
        except OSError:
            return None

    def reload_config(self) -> bool:
        """Apply an edited schedule.yaml; a broken one is reported and the last good config keeps running.

        Every setting either applies at once or is named as needing a restart (log and health say which):
        accounts and tokens at once (a revoked token fails its next request); windows, blackout dates,
        reports, QR and daemon settings at the next decision; bulletin and TTS settings re-render every
        bulletin in the background, the audio already made airing until its new version is ready.
        """
        self._config_mtime = self._mtime()
        if self.config_path is None:
            return False
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            self.last_error = exc.message
            self.reload_state = {**self.reload_state, "error": exc.message}
            logger.error("schedule.yaml not applied, the last good settings stay in force:\n%s", exc.message)
            return False
        old = self.config
        changed = [k for k in type(new).model_fields if getattr(new, k) != getattr(old, k)]
        restart = sorted(
            f"{section}.{key}"
            for section in RESTART_SECTIONS
            for key in type(getattr(new, section)).model_fields
            if getattr(getattr(new, section), key) != getattr(getattr(old, section), key)
            and f"{section}.{key}" not in APPLIED_AT_ONCE
        )
        if new.timezone != old.timezone:
            restart.append("timezone")
        self.config = new
        self.library.config = new
        if new.auth != old.auth and self.api_app is not None:
            self.api_app.state.auth.reload(new.auth)
        if isinstance(self.renderer, RenderWorker):
            self.renderer.memory_mb = new.tts.render_memory_mb
            self.renderer.timeout_s = new.tts.render_timeout_s
        if new.bulletin != old.bulletin or new.tts != old.tts:
            # Each worker batch is given the settings in force, so the next one reads with the new ones;
            # bulletins are read again in the background, the audio already made airing until then.
            self.library.mark_stale()
            self.wake_library()
        self.planner.plan_jobs()
        if new.paths.lexicon != old.paths.lexicon:
            self.load_lexicon()
        self.last_error = None
        self.reload_state = {
            "at": self.now().isoformat(timespec="seconds"),
            "changed": changed,
            "restart_needed": restart,
            "error": None,
        }
        logger.info(
            "schedule.yaml reloaded (changed: %s): %s", ", ".join(changed) or "nothing", self.next_slot_text()
        )
        if restart:
            logger.warning("schedule.yaml: these settings apply at the next restart: %s", ", ".join(restart))
        return True

    # -- station lexicon ------------------------------------------------------------------------------------

    def _lexicon_file_stamp(self) -> tuple | None:
        try:
            st = self.config.paths.lexicon.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load_lexicon(self) -> StationLexicon:
        """Put the operators' lexicon in force; bulletins whose spoken form it changes are read again.

        Called at start and whenever the file changes. The audio already rendered keeps airing until the
        new one is ready, and a lexicon that cannot be read leaves the previous entries in force.
        """
        self._lexicon_stamp = self._lexicon_file_stamp()
        before = self.lexicon.digest if self.lexicon else None
        state = load_station_lexicon(self.config.paths.lexicon)
        self.lexicon = state
        for problem in state.problems:
            logger.warning("station lexicon %s: %s", state.path, problem)
        if before is not None and state.digest != before:
            logger.info("station lexicon changed (%d entries): re-reading bulletins", state.entries)
            if hasattr(self, "library"):
                self.library.mark_stale()
                self.wake_library()
        return state

    # -- status --------------------------------------------------------------------------------------------

    def engines_ready(self) -> dict[str, bool]:
        """Whether each engine of the chain can read now, without synthesizing or touching the network:
        espeak-ng installed, the Piper model present, the Edge service not in a remembered outage."""
        return engines_ready(self.config.tts, self.config.paths.data)

    def health(self) -> dict:
        nxt = self.next_slot()
        current = self.now_playing
        usage = shutil.disk_usage(self.config.paths.data)
        last = self.log.last() if hasattr(self, "log") else None
        problems = self.problems()
        alarms = self._active_alarms()
        return {
            # Degraded always says why: every problem, vital (the watchdog stops) or not.
            "status": "degraded" if problems else "ok",
            "problems": problems,
            "version": __version__,
            "time": self.now().isoformat(timespec="seconds"),
            "started_at": self.started_at.isoformat(timespec="seconds") if self.started_at else None,
            "in_service_since": (
                self.in_service_since.isoformat(timespec="seconds")
                if getattr(self, "in_service_since", None)
                else None
            ),
            "clock_synchronized": self.clock_synced,
            "clock": self.clock.check().to_dict() if self.clock else None,
            "relay": {
                "on": self.relay.is_on,
                "pin": getattr(self.relay, "settings", self.config.relay).pin,
                "factory": getattr(self.relay, "factory_name", None),
                "last_change": _last_change(self.relay),
            },
            "now_playing": None
            if current is None
            else {
                "bulletin_id": current.bulletin.id,
                "title": current.bulletin.title,
                "slot": current.slot.key,
            },
            "next_slot": None
            if nxt is None
            else {"window": nxt[0], "at": nxt[1].isoformat(timespec="seconds")},
            "last_result": None
            if last is None
            else {k: last[k] for k in ("slot_key", "status", "title", "error")},
            "audio": self.player.describe(),
            "tts_engines": self.engines_ready(),
            "library": {
                "ready": len(self.library.ready()),
                "total": len(self.library.bulletins()),
                "refused": self.library.refused(),
                "inbox_refused": dict(self.inbox_refused),
            },
            "lexicon": self.lexicon.to_dict() if self.lexicon else None,
            "fleet": self.fleet.health() if getattr(self, "fleet", None) is not None else None,
            "config": self.reload_state,
            "api": None
            if self.api_server is None
            else {**self.fd_budget.as_dict(), **self.api_server.stats()},
            "disk_free_mb": round(usage.free / 2**20),
            "storage": {
                "disk_free_mb": round((self.disk or {}).get("free_mb", usage.free / 2**20)),
                "low_space": bool((self.disk or {}).get("low")),
                "held_rows": self.log.held() if hasattr(self, "log") else 0,
                "alarms": alarms,
                "database_alarm": next(
                    (a["message"] for a in alarms if a["kind"] == "database_damaged"), None
                ),
                "database": self.db_check.as_dict() if self.db_check else None,
            },
            "last_error": self.last_error,
        }

    # -- API -----------------------------------------------------------------------------------------------

    def _start_api(self) -> None:
        cfg = self.config.api
        # The HTTP front sees the station only through the service (playout.service).
        self.api_app = create_app(StationService(self))
        # Bounded connections and idle time, within a descriptor budget that always leaves a reserve
        # for the on-air path: 1 100 idle LAN connections once kept the next slot from opening its WAV.
        self.fd_budget = fd_budget(MAX_API_CONNECTIONS)
        self.api_server = make_server(
            self.api_app, cfg.host, cfg.port, limits=ConnectionLimits.within(self.fd_budget)
        )
        thread = threading.Thread(target=self.api_server.run, name="api", daemon=True)
        self._api_thread = thread
        thread.start()
        deadline = time.monotonic() + 10
        pause = (
            threading.Event()
        )  # Event.wait, not time.sleep: the latter fails under a stepped clock (faketime)
        while not self.api_server.started and thread.is_alive() and time.monotonic() < deadline:
            pause.wait(0.05)
        if self.api_server.started:
            logger.info("API on http://%s:%d/api/health", cfg.host, cfg.port)
        else:
            logger.error(
                "the API could not start on %s:%d (port in use?); the station airs anyway", cfg.host, cfg.port
            )

    def _stop_api(self) -> None:
        if self.api_server is not None:
            self.api_server.should_exit = True

    def _relay_changed(self, on: bool, at: dt.datetime) -> None:
        # Off the Pi the relay is simulated: say what it does so an operator watching `make run` sees it.
        logger.info(
            "relay %s at %s", "ON" if on else "OFF", at.astimezone(self.tz).isoformat(timespec="milliseconds")
        )


def _last_change(relay) -> str | None:
    history = getattr(relay, "history", None)
    return history[-1][0].isoformat(timespec="milliseconds") if history else None
