"""What "healthy" means to systemd's watchdog: the long-lived parts alive and the on-air path not stuck.

An in-process Station (mock relay pins, real SQLite, real espeak renders, audio discarded in real time).
"""

from __future__ import annotations

import threading
import time

import pytest

from playout.audio_out import NullPlayer
from playout.station import Station
from tests.station import start_station, write_script


@pytest.fixture
def config(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    write_script(
        tmp_path / "bulletins" / "approved", "ngan.md", "Bà con chú ý. Xin cảm ơn.", title="Tin ngắn"
    )
    return make_config(
        bulletin={"length_s": 11, "lead_in": "", "outro": ""},
        relay={"pre_roll_s": 0.1, "tail_s": 0.1},
    )


def wait_rows(station, key, status, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [r for r in station.log.plays() if r["slot_key"] == key]
        if rows and rows[0]["status"] == status:
            return rows[0]
        time.sleep(0.1)
    raise AssertionError(f"{key} never became {status}: {station.log.plays()}")


def test_a_finished_one_off_play_keeps_the_station_healthy(config):
    """The bug: a play-now thread that had ended made healthy() False, so WATCHDOG=1 stopped and
    systemd killed the station about 30 s after every play."""
    station = start_station(config)
    try:
        assert station.healthy() and station.health()["status"] == "ok"
        (bulletin,) = station.library.ready()
        key = station.play_now(bulletin, "kiểm thử")
        wait_rows(station, key, "played")
        deadline = time.monotonic() + 5
        while any(t.name == key and t.is_alive() for t in station._threads) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert station.healthy()
        health = station.health()
        assert health["status"] == "ok" and health["problems"] == []
    finally:
        station.close()


def test_a_dead_worker_is_degraded_with_its_reason(config):
    station = start_station(config)
    try:
        # A worker that died (an uncaught error in its loop): stand in a finished thread for it.
        dead = threading.Thread(target=lambda: None, name="library")
        dead.start()
        dead.join()
        station._workers["library"] = dead
        assert not station.healthy()
        health = station.health()
        assert health["status"] == "degraded"
        assert [(p["code"], p["vital"]) for p in health["problems"]] == [("LIBRARY_WORKER_DEAD", True)]
        assert health["problems"][0]["message"]  # the operator is told why, in words
    finally:
        station.close()


class HungPlayer(NullPlayer):
    """A device that never drains: play() returns only when stopped."""

    def play(self, samples, rate, *, stop=None, on_start=None):
        stop.wait(120)
        return super().play(samples[:0], rate, stop=stop)


def test_an_on_air_path_stuck_past_its_slot_stops_the_watchdog(config, monkeypatch):
    monkeypatch.setattr("playout.station.STUCK_MARGIN_S", 0.5)
    station = Station(config, player=HungPlayer(), serve_api=False)
    station.start()
    try:
        deadline = time.monotonic() + 30
        while not station.library.ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        (bulletin,) = station.library.ready()
        station.play_now(bulletin, "kiểm thử")
        limit = station.slot_length_s(bulletin) + 0.5
        deadline = time.monotonic() + limit + 10
        while station.healthy() and time.monotonic() < deadline:
            time.sleep(0.1)
        codes = [p["code"] for p in station.problems()]
        assert codes == ["ON_AIR_STUCK"] and not station.healthy()
        assert station.relay.is_on  # still keyed: systemd's kill and ExecStopPost unkey it
        station.stop_playback("kiểm thử")
    finally:
        station.close()
    assert not station.relay.is_on


class FailingPlayer(NullPlayer):
    """A sound card that dies a moment into the play (USB unplugged, ALSA xrun it cannot recover)."""

    def play(self, samples, rate, *, stop=None, on_start=None):
        from playout.audio_out import AudioError

        super().play(samples[: rate // 2], rate, stop=stop, on_start=on_start)
        raise AudioError("Thiết bị âm thanh ngừng hoạt động giữa chừng", detail="device gone")


def test_a_sound_card_failing_mid_play_unkeys_logs_and_stays_healthy(config):
    station = Station(config, player=FailingPlayer(), serve_api=False)
    station.start()
    try:
        deadline = time.monotonic() + 30
        while not station.library.ready() and time.monotonic() < deadline:
            time.sleep(0.1)
        (bulletin,) = station.library.ready()
        key = station.play_now(bulletin, "kiểm thử")
        row = wait_rows(station, key, "failed")
        assert row["error"].startswith("[AUDIO_") and "giữa chừng" in row["error"]
        assert row["relay_on_at"] and row["relay_off_at"]
        assert [on for _, on in station.relay.history][-2:] == [True, False]
        assert not station.relay.is_on and station.healthy()
    finally:
        station.close()
