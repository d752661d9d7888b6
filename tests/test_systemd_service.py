"""The shipped unit under real systemd (PID 1 of a throwaway container): systemd's own verdict.

Every way a bulletin reaches the air (a catch-up at start, a scheduled window, play now, an emergency),
with a config reload and a lexicon edit on the way, must leave the station running: not one watchdog kill
(NRestarts=0, Result=success, active throughout, one main PID). And a daemon that really hangs must be
killed by the watchdog, restarted, and have its relay driven off by ExecStopPost.

The harness (tests/systemd_box.py) runs systemd/playout.service as shipped but for its install paths, a
short WatchdogSec (4 s: the daemon pings every 2 s) and the mock GPIO factory.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from tests.systemd_box import StationService, clock, now

# Short enough to fit the 11 s bulletin; "Zalo" is there for the lexicon edit to change how it is read.
SCRIPT = "Kính thưa bà con. Trạm thử loa Zalo. Xin cảm ơn bà con."
EMERGENCY = "Thông báo khẩn cấp. Bà con chú ý tránh xa khu vực ngập lụt."
SLOT_S = 1.0 + 11 + 0.5  # pre-roll + bulletin + tail


@pytest.fixture(autouse=True)
def not_near_midnight():
    """Windows here are today's: a test started just before midnight would straddle two days."""
    t = now()
    left = (dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), t.tzinfo) - t).total_seconds()
    if left < 150:
        time.sleep(left + 2)


def window(name: str, start: dt.datetime, end: dt.datetime) -> dict:
    return {"name": name, "start": clock(start), "end": clock(end)}


def script(station: StationService, name: str, text: str, **meta) -> None:
    front = "".join(f"{k}: {v}\n" for k, v in meta.items())
    path = station.dir / "bulletins" / "approved" / name
    path.write_text(f"---\n{front}---\n{text}", "utf-8")
    station.chown(path)


def assert_never_killed(station: StationService, after: str) -> None:
    """systemd's own record: still the first process, never a watchdog kill or any other failure."""
    state = station.show()
    journal = station.journal()
    kills = [line for line in journal.splitlines() if "Watchdog timeout" in line or "Failed with" in line]
    assert (state["ActiveState"], state["NRestarts"], state["Result"]) == ("active", "0", "success"), (
        f"after {after}: {state}\n" + "\n".join(kills) + f"\n{journal[-5000:]}"
    )
    assert not kills, f"after {after}:\n" + "\n".join(kills)


def test_every_way_to_air_leaves_the_station_running(tmp_path):
    t = now()
    # Open since 10 s ago: the station starts inside it and catches up.
    config = {"windows": [window("đang mở", t - dt.timedelta(seconds=10), t + dt.timedelta(seconds=40))]}
    started = time.monotonic()
    station = StationService(tmp_path, config)
    station.prepare()
    script(station, "tin.md", SCRIPT, title="Bản tin thử")
    with station, station.watch() as samples:
        print(f"container booted in {station.box.boot_s:.2f} s, READY=1 after {station.start_s:.2f} s")
        main_pid = station.show()["MainPID"]

        # 1. Catch-up: the window was already open when the station started.
        station.wait_for(lambda rows: any(r["status"] == "played" for r in rows), 40, "the catch-up play")
        # Longer than WatchdogSec: had the pings stopped with the catch-up thread, systemd has killed it by
        # now. Each later step takes longer than that itself, so it needs no wait of its own.
        time.sleep(4.5)
        assert_never_killed(station, "the catch-up play")

        # 2. Play now, over the API, with a lexicon edit while it airs (the bulletin is read again).
        status, bulletins = station.http("GET", "/api/bulletins")
        assert status == 200, bulletins
        (bulletin,) = bulletins
        status, answer = station.http("POST", f"/api/bulletins/{bulletin['id']}/play-now")
        assert status == 200, answer
        (station.dir / "lexicon.tsv").write_text("Zalo\tda lô\n", "utf-8")
        station.wait_for(lambda rows: len(rows) == 2 and rows[1]["status"] == "played", 40, "play now")
        station.wait_journal("station lexicon changed", 10)
        assert_never_killed(station, "play now and a lexicon change")

        # 3. An emergency: dropped into approved/, aired at once.
        script(station, "khan-cap.md", EMERGENCY, title="Khẩn cấp", priority="emergency")
        station.wait_for(lambda rows: len(rows) == 3 and rows[2]["status"] == "played", 40, "the emergency")
        assert_never_killed(station, "the emergency")

        # 4. `systemctl reload` (SIGHUP) with a new window that opens a few seconds from now.
        t = now()
        station.config["windows"].append(
            window("mới", t + dt.timedelta(seconds=6), t + dt.timedelta(seconds=40))
        )
        station.write_config()
        station.systemctl("reload", "playout.service")
        station.wait_journal("schedule.yaml reloaded", 10)

        # 5. The scheduled slot, fired by the scheduler while the station runs.
        rows = station.wait_for(
            lambda rows: len(rows) == 4 and rows[3]["status"] == "played", 40, "the window"
        )
        time.sleep(4.5)
        assert_never_killed(station, "the scheduled window")
        journal = station.journal()
        assert station.show()["MainPID"] == main_pid

    assert [(r["window"], r["status"]) for r in rows] == [
        ("đang mở", "played"),
        ("phát ngay", "played"),
        ("khẩn cấp", "played"),
        ("mới", "played"),
    ]
    assert all(r["underruns"] == 0 for r in rows)
    # Active the whole time, one process: sampled every half second by the watcher. "reloading" is the
    # moment of `systemctl reload` (SIGHUP sent, not yet acknowledged): the same process, still on duty.
    states = {(s.get("ActiveState"), s.get("NRestarts"), s.get("MainPID")) for s in samples}
    assert states - {("reloading", "0", main_pid)} == {("active", "0", main_pid)}, states
    # The relay keyed once per play and released each time (the daemon logs every change of the pin).
    assert len(re.findall(r"relay ON at ", journal)) == 4
    assert "Watchdog timeout" not in journal
    print(f"whole test {time.monotonic() - started:.0f} s, {len(samples)} samples of systemd's state")


def test_the_watchdog_kills_a_hung_daemon_and_exec_stop_post_unkeys(tmp_path):
    t = now()
    config = {"windows": [window("đang mở", t - dt.timedelta(seconds=5), t + dt.timedelta(seconds=60))]}
    started = time.monotonic()
    station = StationService(tmp_path, config)
    station.prepare()
    script(station, "tin.md", SCRIPT, title="Bản tin thử")
    with station:
        first_pid = station.show()["MainPID"]
        station.wait_for(lambda rows: rows and rows[0]["audio_start_at"], 40, "audio to start")
        # Hung mid-bulletin, relay keyed: the main loop stops pinging (so does everything else).
        station.box.exec("kill", "-STOP", first_pid)
        hung = time.monotonic()
        journal = station.wait_journal("Watchdog timeout", 15)
        killed_after = time.monotonic() - hung
        journal = station.wait_journal("forced OFF", 15)
        deadline = time.monotonic() + 30
        while station.show()["NRestarts"] == "0" or station.show()["ActiveState"] != "active":
            assert time.monotonic() < deadline, station.show()
            time.sleep(0.5)
        # The restarted station closes the interrupted row and does not air the slot again.
        rows = station.wait_for(lambda rows: rows[0]["status"] == "interrupted", 30, "the interrupted row")
        time.sleep(3)
        rows = station.rows()
        state = station.show()
        journal = station.journal()

    assert killed_after < 4 + 3, f"watchdog fired {killed_after:.1f} s after the hang"
    assert int(state["NRestarts"]) >= 1 and state["MainPID"] != first_pid
    assert "Failed with result 'watchdog'" in journal
    # ExecStopPost ran `playout relay-off` after the kill, and only then did the station start again.
    timeout_at = journal.index("Watchdog timeout")
    forced_off_at = journal.index("forced OFF", timeout_at)
    assert forced_off_at < journal.index("ready", forced_off_at)
    assert len(rows) == 1 and rows[0]["status"] == "interrupted"
    print(f"watchdog kill {killed_after:.1f} s after SIGSTOP; whole test {time.monotonic() - started:.0f} s")
