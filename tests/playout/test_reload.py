"""schedule.yaml edited while the station runs: every setting applies at once or is named as needing a
restart.  In-process Station behind its real FastAPI app (TestClient), real renders."""

from __future__ import annotations

import time

import pytest
import soundfile as sf
import yaml
from fastapi.testclient import TestClient

from playout.api import create_app
from playout.audio_out import NullPlayer
from playout.auth import hash_token
from playout.config import load_config
from playout.station import Station
from tests.station import write_script

KEEP, GONE = "token-that-stays-0123456789abc", "token-to-revoke-0123456789abc"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    write_script(tmp_path / "bulletins" / "approved", "a.md", "Bà con chú ý. Xin cảm ơn.", title="Tin")
    data = {
        "windows": [],
        "bulletin": {"length_s": 11, "lead_in": "", "outro": ""},
        "tts": {"engines": ["espeak"]},
        "paths": {"data": "var", "bulletins": "bulletins"},
        "auth": {
            "tokens": [
                {"name": "giu", "token_hash": hash_token(KEEP), "roles": ["technician"]},
                {"name": "thu-hoi", "token_hash": hash_token(GONE), "roles": ["technician"]},
            ]
        },
    }
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    station = Station(load_config(path), config_path=path, player=NullPlayer(), serve_api=False)
    station.start()
    station.api_app = create_app(station)  # what _start_api does, without a socket
    deadline = time.monotonic() + 30
    while not station.library.ready() and time.monotonic() < deadline:
        time.sleep(0.1)
    yield station, path, data
    station.close()


def rewrite(path, data):
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")


def test_a_revoked_token_fails_its_next_request(setup):
    station, path, data = setup
    client = TestClient(station.api_app)
    assert client.get("/api/plays", headers={"Authorization": f"Bearer {GONE}"}).status_code == 200
    data["auth"]["tokens"] = data["auth"]["tokens"][:1]
    rewrite(path, data)
    assert station.reload_config()
    assert client.get("/api/plays", headers={"Authorization": f"Bearer {GONE}"}).status_code == 401
    assert client.get("/api/plays", headers={"Authorization": f"Bearer {KEEP}"}).status_code == 200
    assert station.health()["config"]["changed"] == ["auth"]


def test_bulletin_settings_rerender_in_the_background(setup):
    station, path, data = setup
    (b,) = station.library.ready()
    old_path = b.audio_path
    assert sf.info(str(old_path)).duration == pytest.approx(11, abs=0.01)
    data["bulletin"]["length_s"] = 14
    rewrite(path, data)
    assert station.reload_config()
    assert b.status == "ready"  # the old audio stays on air meanwhile
    deadline = time.monotonic() + 30
    while b.audio_path == old_path and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sf.info(str(b.audio_path)).duration == pytest.approx(14, abs=0.01)
    assert b.duration_s == pytest.approx(14, abs=0.01)
    assert station.health()["config"]["restart_needed"] == []


def test_settings_read_at_start_are_named_as_needing_a_restart(setup):
    station, path, data = setup
    data["relay"] = {"pin": 27, "tail_s": 1.0}
    data["api"] = {"port": 8181}
    rewrite(path, data)
    assert station.reload_config()
    state = station.health()["config"]
    assert state["restart_needed"] == ["api.port", "relay.pin"]
    assert station.health()["relay"]["pin"] == 17  # the relay still on the pin it claimed
    assert station.config.relay.tail_s == 1.0  # read at each play: in force now
