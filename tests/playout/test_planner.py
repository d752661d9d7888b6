"""The planner's one rotation: the 14-day schedule names what each slot then really airs.

First the rotation alone (real as-run log, bulletins standing in for the library's), then an in-process
Station (mock relay pins, real SQLite, real espeak renders) airing a window of two plays.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

import pytest

from playout.asrun import AsRunLog, Slot
from playout.audio_out import NullPlayer
from playout.config import Window
from playout.library import Library
from playout.planner import Rotation
from playout.station import Station
from tests.station import TZ, write_script

NOW = dt.datetime(2026, 3, 2, 6, 0, 30, tzinfo=TZ)


def bulletin(name: str, priority: str = "normal", age_s: int = 0):
    return SimpleNamespace(
        id=f"id-{name}",
        title=name,
        topic=None,
        priority=priority,
        approved_at=NOW - dt.timedelta(seconds=age_s),
        summary={},
    )


class Shelf:
    """Every bulletin ready, in the library's own order (``Library.pick``)."""

    pick = Library.pick

    def __init__(self, *bulletins):
        self.items = list(bulletins)

    def ready(self, day=None):
        return list(self.items)


URGENT, OLD, NEW = bulletin("urgent", "priority"), bulletin("old", age_s=200), bulletin("new", age_s=100)
MORNING = Window(name="sáng", start=dt.time(6), end=dt.time(6, 30), plays=2)
EVENING = Window(name="chiều", start=dt.time(17), end=dt.time(17, 30), plays=2)


@pytest.fixture
def log(tmp_path):
    log = AsRunLog(tmp_path / "playout.db", TZ)
    yield log
    log.close()


def starts(*days: int):
    return [
        (dt.datetime.combine(NOW.date() + dt.timedelta(days=d), w.start, tzinfo=TZ), w)
        for d in days
        for w in (MORNING, EVENING)
    ]


@pytest.mark.parametrize(
    "before",
    [
        [],  # nothing aired yet
        [("playing", URGENT)],  # the window's first play is on air now
        [("played", URGENT)],  # ... has aired
        [("failed", URGENT)],  # ... broke off (the sound card died): the window moves on all the same
        [("missed", None)],  # the window's first play never aired
    ],
)
def test_the_schedule_starts_with_what_the_next_slot_airs(log, before):
    rotation = Rotation(Shelf(URGENT, OLD, NEW), log)
    plan = starts(0, 1)
    start, window = plan[0]
    for i, (status, b) in enumerate(before):
        row = log.start(Slot(window.name, start, i), b)
        if status != "playing":
            log.finish(row, status)
    schedule = list(rotation.forward(plan))
    slot, first = schedule[0]
    assert slot == Slot(window.name, start, len(before))
    assert first is rotation.next_for(window, start)


def test_a_window_does_not_air_one_bulletin_twice_while_others_are_ready(log):
    """Worked out from the log, so a window resumed after a restart (or shown while its first play is
    on air) picks as the window's own thread would."""
    rotation = Rotation(Shelf(URGENT, OLD, NEW), log)
    start, window = starts(0)[0]
    assert rotation.next_for(window, start) is URGENT  # priority first
    log.start(Slot(window.name, start, 0), URGENT)  # on air
    assert rotation.next_for(window, start) is OLD  # not URGENT again: the oldest approval
    # The priority bulletin opens every window; the second plays share out the others.
    assert [b.title for _, b in rotation.forward(starts(0, 1))] == [
        "old",  # this window's second play
        "urgent",  # this evening
        "new",
        "urgent",  # tomorrow morning
        "old",  # old and new have aired once each: the older approval first
        "urgent",  # tomorrow evening
        "new",
    ]
    # Another window (or another day) may air it again.
    assert rotation.next_for(EVENING, starts(0)[1][0]) is URGENT


def test_with_one_bulletin_a_window_airs_it_in_every_play(log):
    only = bulletin("only")
    rotation = Rotation(Shelf(only), log)
    start, window = starts(0)[0]
    log.start(Slot(window.name, start, 0), only)
    assert rotation.next_for(window, start) is only
    assert rotation.next_for(window, start, refused={only.id}) is None  # its audio failed its check


# -- a real station -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _not_near_midnight(request):
    """The station's window is today's: just before midnight, wait for the new day rather than skip."""
    if "station" not in request.fixturenames:
        return
    t = dt.datetime.now(TZ)
    if t.time() > dt.time(23, 58, 30):
        midnight = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), TZ)
        time.sleep((midnight - t).total_seconds() + 1)


class GatedPlayer(NullPlayer):
    """Holds the first play on air until the test lets it go; every play is short."""

    def __init__(self):
        self.gate = threading.Event()
        self.plays = 0

    def play(self, samples, rate, *, stop=None, on_start=None):
        self.plays += 1
        if self.plays == 1:
            self.gate.wait(60)
        return super().play(samples[: rate // 10], rate, stop=stop, on_start=on_start)


@pytest.fixture
def station(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    folder = tmp_path / "bulletins" / "approved"
    write_script(
        folder, "khan.md", "Bà con chú ý lịch cắt điện. Xin cảm ơn.", title="Cắt điện", priority="priority"
    )
    write_script(folder, "thuong.md", "Bà con chú ý lịch tiêm chủng. Xin cảm ơn.", title="Tiêm chủng")
    config = make_config(
        bulletin={"length_s": 11, "lead_in": "", "outro": ""}, relay={"pre_roll_s": 0.1, "tail_s": 0.1}
    )
    player = GatedPlayer()
    station = Station(config, player=player, serve_api=False)
    station.start()
    deadline = time.monotonic() + 30
    while len(station.library.ready()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(station.library.ready()) == 2
    try:
        yield station, player
    finally:
        player.gate.set()
        station.close()


def test_the_14_day_schedule_names_what_the_next_slot_then_airs(station):
    station, player = station
    now = dt.datetime.now(TZ).replace(microsecond=0)
    window = Window(
        name="thử",
        start=(now - dt.timedelta(seconds=1)).time(),
        end=(now + dt.timedelta(seconds=60)).time(),
        plays=2,
    )
    start = dt.datetime.combine(now.date(), window.start, tzinfo=TZ)
    station.config.windows = [window]  # placed by hand: aired below, not by the cron job

    first = station.upcoming(14)[0]
    assert (first["window"], first["play"], first["title"]) == ("thử", 0, "Cắt điện")  # priority first
    airing = threading.Thread(target=station.air_window, args=(window, start), daemon=True)
    airing.start()
    deadline = time.monotonic() + 10
    while station.now_playing is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert station.now_playing is not None and station.now_playing.bulletin.title == "Cắt điện"

    # The first play is on air: the schedule's first entry is now the second play.  It is not the
    # priority bulletin again (the window has another), which is what the window then airs.
    first = station.upcoming(14)[0]
    assert (first["window"], first["play"], first["title"]) == ("thử", 1, "Tiêm chủng")
    player.gate.set()
    airing.join(30)
    assert not airing.is_alive()
    rows = sorted(station.log.plays(), key=lambda r: r["slot_key"])
    assert [(r["slot_key"].split("/", 1)[1], r["status"], r["title"]) for r in rows] == [
        ("thử/0", "played", "Cắt điện"),
        ("thử/1", "played", "Tiêm chủng"),
    ]
    assert rows[1]["bulletin_id"] == first["bulletin_id"]
