"""Faults a station left alone meets: an untrusted clock, cached audio changed behind its back, a slot
that opens before its audio is ready.  In-process Station: mock relay pins, real SQLite, real espeak-ng
renders, audio discarded in real time; windows are placed around the current time."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from playout.audio_out import NullPlayer
from playout.clock import UNTRUSTED_REASON
from playout.station import Station
from tests.station import TZ, write_script

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def window(name: str, start: dt.datetime, end: dt.datetime) -> dict:
    return {
        "name": name,
        "start": start.strftime("%H:%M:%S"),
        "end": end.strftime("%H:%M:%S"),
        "days": ALL_DAYS,
    }


@pytest.fixture(autouse=True)
def _not_near_midnight():
    """Windows here are today's: just before midnight, wait for the new day rather than skip."""
    t = dt.datetime.now(TZ)
    if t.time() > dt.time(23, 58, 30):
        midnight = dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), TZ)
        time.sleep((midnight - t).total_seconds() + 1)


@pytest.fixture
def timedatectl(tmp_path, monkeypatch):
    """A `timedatectl` on PATH whose NTPSynchronized answer the test sets (as systemd's would say)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    answer = tmp_path / "ntp-answer"
    answer.write_text("no")
    tool = bin_dir / "timedatectl"
    tool.write_text(f"#!/bin/sh\ncat {answer}\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("PLAYOUT_CLOCK_SYNC_FILE", str(tmp_path / "no-such-marker"))
    monkeypatch.setenv("PLAYOUT_RTC_HCTOSYS", str(tmp_path / "no-rtc"))
    monkeypatch.setattr("playout.clock.CHECK_EVERY_S", 0.2)
    return answer


@pytest.fixture
def base(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setattr("playout.planner.SLOT_WAIT_S", 0.2)

    def make(windows=(), **extra):
        return make_config(
            bulletin={"length_s": 11, "lead_in": "", "outro": ""},
            relay={"pre_roll_s": 0.1, "tail_s": 0.1},
            windows=list(windows),
            **extra,
        )

    return make


def approved(tmp_path: Path, name: str, text: str, **meta) -> Path:
    return write_script(tmp_path / "bulletins" / "approved", name, text, **meta)


def started(config) -> Station:
    station = Station(config, player=NullPlayer(), serve_api=False)
    station.start()
    return station


def rows_when(station, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = station.log.plays()
        if predicate(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {station.log.plays()}")


def relay_ons(station) -> list:
    return [at for at, on in station.relay.history if on]


def test_an_untrusted_clock_keeps_scheduled_slots_off_air(tmp_path, base, timedatectl):
    approved(tmp_path, "tin.md", "Bà con chú ý lịch tiêm chủng. Xin cảm ơn.", title="Tiêm chủng")
    now = dt.datetime.now(TZ)
    station = started(base([window("thử", now - dt.timedelta(seconds=1), now + dt.timedelta(seconds=16))]))
    try:
        health = station.health()
        assert health["clock"]["state"] == "unsynchronized" and health["clock"]["trusted"] is False
        assert health["clock_synchronized"] is False
        assert "CLOCK_UNTRUSTED" in [p["code"] for p in health["problems"]]
        rows = rows_when(station, lambda rows: rows, 20, "the slot's row")
        assert [(r["status"], r["error"]) for r in rows] == [("missed", UNTRUSTED_REASON)]
        assert relay_ons(station) == []
    finally:
        station.close()


def test_a_confirmed_time_lets_the_waiting_slot_air(tmp_path, base, timedatectl):
    approved(tmp_path, "tin.md", "Bà con chú ý lịch tiêm chủng. Xin cảm ơn.", title="Tiêm chủng")
    now = dt.datetime.now(TZ)
    station = started(base([window("thử", now - dt.timedelta(seconds=1), now + dt.timedelta(seconds=40))]))
    try:
        time.sleep(2)
        assert station.log.plays() == [] and relay_ons(station) == []  # waiting, not logged, not aired
        clock = station.confirm_clock("lan")
        assert clock["state"] == "confirmed" and clock["confirmed_by"] == "lan"
        rows = rows_when(station, lambda rows: rows and rows[0]["status"] == "played", 30, "the play")
        assert len(rows) == 1 and len(relay_ons(station)) == 1
        assert ("confirm_clock", "lan") in {(a["action"], a["who"]) for a in station.approvals.audit(10)}
    finally:
        station.close()
    # A confirmation holds for this boot only: it names the boot it was made in.
    assert (tmp_path / "var" / "clock-confirmed.json").exists()


def test_an_rtc_that_set_the_clock_at_boot_is_trusted(tmp_path, timedatectl, monkeypatch):
    from playout.clock import StationClock

    hctosys = tmp_path / "hctosys"
    hctosys.write_text("1\n")
    monkeypatch.setenv("PLAYOUT_RTC_HCTOSYS", str(hctosys))
    assert StationClock(tmp_path).check().state == "rtc"
    hctosys.write_text("0\n")
    assert StationClock(tmp_path).check().state == "unsynchronized"
    timedatectl.write_text("yes")
    assert StationClock(tmp_path).check().state == "synchronized"


def test_a_failed_look_at_the_clock_never_trusts_an_unsynchronised_one(tmp_path, timedatectl):
    """timedatectl timing out on a busy Pi (seen in CI: a slot aired on an untrusted clock) says nothing
    new: the clock stays untrusted.  Only a station that could never tell trusts it ('unknown')."""
    from playout.clock import StationClock

    clock = StationClock(tmp_path)
    assert clock.check(fresh=True).state == "unsynchronized"
    timedatectl.write_text("?")  # an answer it cannot read: as good as a timeout
    assert clock.check(fresh=True).state == "unsynchronized" and not clock.check().trusted
    assert StationClock(tmp_path).check(fresh=True).state == "unknown"  # never knew: trusts, as before
    timedatectl.write_text("yes")
    assert clock.check(fresh=True).state == "synchronized"


def test_emergencies_air_on_an_untrusted_clock(tmp_path, base, timedatectl):
    approved(
        tmp_path,
        "lu.md",
        "Thông báo khẩn cấp. Bà con tránh xa khu vực ngập.",
        title="Khẩn",
        priority="emergency",
    )
    station = started(base())
    try:
        deadline = time.monotonic() + 30
        while not station.library.ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        station._check_emergencies()  # the main loop's job, every tick
        rows = rows_when(station, lambda rows: rows and rows[0]["status"] == "played", 30, "the emergency")
        assert rows[0]["window"] == "khẩn cấp"
    finally:
        station.close()


def _wait_ready(station, n, timeout=30):
    deadline = time.monotonic() + timeout
    while len(station.library.ready()) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(station.library.ready()) == n


def test_a_replaced_cached_wav_never_airs(tmp_path, base):
    """A 60 s tone put in place of a bulletin's cached WAV once aired 31 s past the window's end, logged
    with the old hash.  Now the file is checked before keying: the next ready bulletin airs instead,
    and the damaged one is rendered again."""
    approved(tmp_path, "a.md", "Bản tin thứ nhất về vệ sinh môi trường.", title="Thứ nhất")
    station = started(base())
    try:
        _wait_ready(station, 1)
        approved(tmp_path, "b.md", "Bản tin thứ hai về phòng cháy chữa cháy.", title="Thứ hai")
        station.wake_library()
        _wait_ready(station, 2)
        first = min(station.library.ready(), key=lambda b: b.approved_at)
        good_sha = first.summary["audio_sha256"]
        rate = first.summary["sample_rate"]
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(60 * rate) / rate) * 32767).astype(np.int16)
        sf.write(first.audio_path, tone, rate, subtype="PCM_16")

        now = dt.datetime.now(TZ)
        station.config.windows = []  # placed by hand below
        from playout.config import Window

        w = Window(
            name="thử",
            start=(now - dt.timedelta(seconds=1)).time(),
            end=(now + dt.timedelta(seconds=30)).time(),
        )
        station.air_window(w, dt.datetime.combine(now.date(), w.start, tzinfo=TZ))
        (row,) = station.log.plays()
        assert row["status"] == "played" and row["title"] == "Thứ hai"
        played = next(b for b in station.library.bulletins() if b.id == row["bulletin_id"])
        assert row["audio_sha256"] == played.summary["audio_sha256"]
        # The replaced one is rendered again from its script, to the very same audio as before.
        deadline = time.monotonic() + 30
        while not (first.status == "ready" and first.audio_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.summary["audio_sha256"] == good_sha
        info = sf.info(str(first.audio_path))
        assert info.frames == round(first.duration_s * info.samplerate)
    finally:
        station.close()


@pytest.fixture
def one_ready(tmp_path, base):
    """A started station with one bulletin rendered."""
    approved(tmp_path, "a.md", "Bản tin về vệ sinh môi trường.", title="Vệ sinh")
    station = started(base())
    try:
        _wait_ready(station, 1)
        yield station, station.library.ready()[0]
    finally:
        station.close()


def test_a_deleted_cached_wav_is_rendered_again_for_play_now(one_ready):
    station, b = one_ready
    b.audio_path.unlink()
    key = station.play_now(b, "lan")
    rows = rows_when(station, lambda rows: rows, 10, "play now's row")
    assert rows[0]["slot_key"] == key and rows[0]["status"] == "failed"
    assert "dựng lại" in rows[0]["error"] and relay_ons(station) == []
    _wait_ready(station, 1)
    key = station.play_now(station.library.ready()[0], "lan")
    rows_when(
        station,
        lambda rows: any(r["slot_key"] == key and r["status"] == "played" for r in rows),
        30,
        "replay",
    )


def test_no_play_runs_past_the_window_end(one_ready):
    station, b = one_ready
    from playout.asrun import Slot

    ends = dt.datetime.now(TZ) + dt.timedelta(seconds=2)
    with station._air_lock:
        outcome = station._air_locked(b, Slot("thử", dt.datetime.now(TZ)), ends_by=ends)
    assert outcome == "interrupted"
    (row,) = station.log.plays()
    off = dt.datetime.fromisoformat(row["relay_off_at"])
    assert row["error"] == "hết khung giờ phát" and off <= ends + dt.timedelta(seconds=0.5)


def test_a_slot_waits_for_a_script_approved_inside_the_window(tmp_path, base):
    """Approved at 06:01 for a window that opened at 06:00: it airs, it is not `skipped` at once."""
    now = dt.datetime.now(TZ)
    station = started(base([window("thử", now - dt.timedelta(seconds=1), now + dt.timedelta(seconds=40))]))
    try:
        time.sleep(1.5)
        assert station.log.plays() == []
        approved(tmp_path, "muon.md", "Bản tin được duyệt muộn. Xin cảm ơn.", title="Muộn")
        station.wake_library()
        rows = rows_when(
            station, lambda rows: rows and rows[0]["status"] == "played", 30, "the late bulletin"
        )
        assert rows[0]["title"] == "Muộn"
    finally:
        station.close()


# -- storage ---------------------------------------------------------------------------------------------


def with_main_loop(station: Station) -> Station:
    """The daemon's main loop (held log writes, disk checks, emergencies) in a thread, as `run` has it."""
    import threading

    threading.Thread(target=station._main_loop, name="main", daemon=True).start()
    return station


def test_a_corrupt_database_is_set_aside_and_the_station_airs(tmp_path, base):
    var = tmp_path / "var"
    var.mkdir()
    (var / "playout.db").write_bytes(b"not a database, a power cut mid-write " * 200)
    approved(tmp_path, "a.md", "Bà con chú ý. Xin cảm ơn.", title="Tin")
    station = started(base())
    try:
        health = station.health()
        assert health["storage"]["database"]["damaged"] is True
        assert health["storage"]["database_alarm"] and "hỏng" in health["storage"]["database_alarm"]
        assert "ALARM_DATABASE_DAMAGED" in [p["code"] for p in health["problems"]]
        aside = [p for p in var.iterdir() if p.name.startswith("playout.db.damaged-")]
        assert aside and aside[0].read_bytes().startswith(b"not a database")
        _wait_ready(station, 1)
        key = station.play_now(station.library.ready()[0], "lan")
        rows_when(
            station,
            lambda rows: any(r["slot_key"] == key and r["status"] == "played" for r in rows),
            30,
            "a play",
        )
    finally:
        station.close()
    # The alarm outlives a restart, until a technician acknowledges it (or a week passes).
    from fastapi.testclient import TestClient

    from playout.api import create_app
    from playout.auth import hash_token

    tokens = [
        {
            "name": "ky-thuat",
            "token_hash": hash_token("tech-token-0123456789abcdef"),
            "roles": ["technician"],
        },
        {"name": "van-hanh", "token_hash": hash_token("oper-token-0123456789abcdef"), "roles": ["operator"]},
    ]
    again = started(base(auth={"tokens": tokens}))
    try:
        health = again.health()
        assert health["storage"]["database_alarm"] and health["storage"]["database"]["damaged"] is False
        (alarm,) = health["storage"]["alarms"]
        client = TestClient(create_app(again))
        url = f"/api/alarms/{alarm['id']}/acknowledge"
        assert (
            client.post(url, headers={"Authorization": "Bearer oper-token-0123456789abcdef"}).status_code
            == 403
        )
        tech = {"Authorization": "Bearer tech-token-0123456789abcdef"}
        assert client.post(url, headers=tech).status_code == 200
        assert client.post(url, headers=tech).status_code == 404
        health = again.health()
        assert health["storage"]["database_alarm"] is None and health["status"] == "ok"
    finally:
        again.close()


def test_a_database_locked_across_a_slot_start_still_airs_and_logs(tmp_path, base):
    import subprocess
    import sys

    approved(tmp_path, "a.md", "Bà con chú ý. Xin cảm ơn.", title="Tin")
    station = started(base())
    try:
        _wait_ready(station, 1)
        with_main_loop(station)
        db = tmp_path / "var" / "playout.db"
        locker = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sqlite3,sys,time; db=sqlite3.connect(sys.argv[1], isolation_level=None);"
                " db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(8);"
                " db.execute('COMMIT')",
                str(db),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert locker.stdout.readline().strip() == "locked"
        now = dt.datetime.now(TZ)
        from playout.config import Window

        w = Window(
            name="thử",
            start=(now - dt.timedelta(seconds=1)).time(),
            end=(now + dt.timedelta(seconds=40)).time(),
        )
        import threading

        t0 = time.monotonic()
        airing = threading.Thread(
            target=station.air_window, args=(w, dt.datetime.combine(now.date(), w.start, tzinfo=TZ))
        )
        airing.start()
        held_seen = 0
        while locker.poll() is None and time.monotonic() - t0 < 20:
            held_seen = max(held_seen, station.health()["storage"]["held_rows"])
            time.sleep(0.2)
        assert held_seen > 0  # the claim and the relay times waited in memory, the play went on
        airing.join(timeout=30)
        assert len(relay_ons(station)) == 1 and time.monotonic() - t0 > 11  # it aired in full
        locker.wait(timeout=20)
        deadline = time.monotonic() + 10
        while station.log.held() and time.monotonic() < deadline:
            time.sleep(0.1)
        with __import__("sqlite3").connect(db) as check:
            rows = check.execute("SELECT slot_key, status, relay_on_at, relay_off_at FROM plays").fetchall()
        assert [(r[0].split("/", 1)[1], r[1]) for r in rows] == [("thử/0", "played")]
        assert rows[0][2] and rows[0][3]
    finally:
        station.close()


def test_the_only_bulletin_with_a_replaced_wav_airs_once_rendered_again(one_ready):
    """With one bulletin, refusing its audio must not cost the window: it airs after its new render."""
    station, b = one_ready
    rate = b.summary["sample_rate"]
    noise = (np.random.default_rng(1).uniform(-0.5, 0.5, 11 * rate) * 32767).astype(np.int16)
    sf.write(b.audio_path, noise, rate, subtype="PCM_16")  # same length: only the hash tells
    now = dt.datetime.now(TZ)
    from playout.config import Window

    end = (now + dt.timedelta(seconds=30)).time()
    w = Window(name="thử", start=(now - dt.timedelta(seconds=1)).time(), end=end)
    station.air_window(w, dt.datetime.combine(now.date(), w.start, tzinfo=TZ))
    (row,) = station.log.plays()
    assert row["status"] == "played" and row["audio_sha256"] == b.summary["audio_sha256"]
    assert sf.read(b.audio_path, dtype="int16")[0].std() < noise.std()  # the speech, not the noise


def test_the_clock_check_never_blocks_a_slot_nor_talks_to_the_supervisor(tmp_path, monkeypatch):
    """Under a supervisor, timedatectl inherited NOTIFY_SOCKET and blocked writing to it: every other
    slot was logged missed, 3 s late.  The check now runs without the supervisor's variables, and a slow
    one runs in the background while slots use the last answer."""
    import os
    import threading

    from playout.clock import StationClock

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gate = tmp_path / "gate"
    seen_env = tmp_path / "env"
    tool = bin_dir / "timedatectl"
    # Answers at once unless the gate file exists; then waits until the test removes it.
    tool.write_text(f"#!/bin/sh\nenv > {seen_env}\nwhile [ -e {gate} ]; do sleep 0.05; done\necho no\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("PLAYOUT_CLOCK_SYNC_FILE", str(tmp_path / "no-marker"))
    monkeypatch.setenv("PLAYOUT_RTC_HCTOSYS", str(tmp_path / "no-rtc"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "systemd-notify.sock"))
    monkeypatch.setattr("playout.clock.CHECK_EVERY_S", 0.0)

    clock = StationClock(tmp_path)
    assert clock.check().state == "unsynchronized"
    assert "NOTIFY_SOCKET" not in seen_env.read_text()

    gate.touch()  # timedatectl hangs from now on
    answered = threading.Event()
    threading.Thread(target=lambda: clock.check() and answered.set(), daemon=True).start()
    assert answered.wait(10), "a slot waited on timedatectl"
    assert clock.check().state == "unsynchronized"  # the last answer, while the new look is stuck
    gate.unlink()
