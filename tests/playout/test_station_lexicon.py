"""The station lexicon in a running station: read at start, re-read on change, bulletins read again."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tests.station import start_station, write_script


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def running(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("KDL\tkhu du lịch\n", "utf-8")
    write_script(
        tmp_path / "bulletins" / "approved",
        "kdl.md",
        "Ban quản lý KDL nhắc bà con giữ vệ sinh chung.",
        title="Vệ sinh khu du lịch",
    )
    config = make_config(
        bulletin={"length_s": 12, "lead_in": "{title}", "outro": "Hết tin."}, paths={"lexicon": str(lexicon)}
    )
    station = start_station(config)
    loop = threading.Thread(target=station._main_loop, daemon=True)
    loop.start()
    yield station, lexicon
    station.stop()
    loop.join(10)
    station.close()


def test_an_edited_lexicon_is_applied_and_the_bulletin_read_again_while_the_old_audio_stays(running):
    station, lexicon = running
    assert station.health()["lexicon"] == {
        "path": str(lexicon),
        "entries": 1,
        "applied": True,
        "problems": [],
    }
    (bulletin,) = station.library.ready()
    first_key, first_audio = bulletin.summary["cache_key"], bulletin.audio_path

    seen_statuses = set()
    stop_watching = threading.Event()

    def watch():
        while not stop_watching.is_set():
            seen_statuses.add(bulletin.status)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lexicon.write_text("KDL\tkhu du lịch sinh thái\nXE\t\n", "utf-8")
    wait_until(lambda: bulletin.summary["cache_key"] != first_key, 30, "the bulletin read again")
    stop_watching.set()
    watcher.join()

    health = station.health()["lexicon"]
    assert health["entries"] == 1 and health["applied"]
    assert [(p["line"], p["code"]) for p in health["problems"]] == [(2, "LEXICON_ENTRY_INVALID")]
    assert seen_statuses == {"ready"}  # never off the air while it was read again
    assert bulletin.audio_path != first_audio and bulletin.audio_path.is_file() and first_audio.is_file()
    assert bulletin.summary["duration_s"] == pytest.approx(12.0)

    # Saved in the wrong encoding: reported, the entries in force stay, nothing is read again.
    key = bulletin.summary["cache_key"]
    lexicon.write_bytes("KDL\tkhu dân cư\n".encode("cp1258", "ignore"))
    wait_until(lambda: not station.health()["lexicon"]["applied"], 15, "the encoding problem")
    assert station.health()["lexicon"]["problems"][0]["code"] == "LEXICON_ENCODING"
    time.sleep(1.5)
    assert bulletin.summary["cache_key"] == key and bulletin.status == "ready"


def test_normalize_command_uses_the_station_lexicon_and_reports_bad_lines(tmp_path, playout_cmd):
    (tmp_path / "lexicon.tsv").write_text("KDL = khu du lịch\nhỏng\n", "utf-8")
    (tmp_path / "schedule.yaml").write_text("paths: {lexicon: lexicon.tsv}\n", "utf-8")
    out = subprocess.run(
        [*playout_cmd, "normalize", "--config", str(tmp_path / "schedule.yaml"), "KDL tổ 5 họp lúc 19h30"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "khu du lịch tổ năm họp lúc mười chín giờ ba mươi"
    assert "lexicon.tsv: [LEXICON_ENTRY_INVALID] dòng 2:" in out.stderr

    # A broken schedule.yaml still lets an operator check a sentence with the shipped lexicon.
    (tmp_path / "schedule.yaml").write_text("paths: [\n", "utf-8")
    out = subprocess.run(
        [*playout_cmd, "normalize", "--config", str(tmp_path / "schedule.yaml"), "UBND phường"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ủy ban nhân dân phường"
    assert "CONFIG_SYNTAX" in out.stderr
