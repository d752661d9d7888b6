"""The on-air daemon, end to end: `playout run` as a subprocess, real time, short bulletins.

Real parts: espeak-ng renders, gpiozero's MockFactory drives the relay (its transitions reach the test
through the as-run log and the daemon's log lines), PulseAudio's null sink receives the audio and its
monitor is recorded, libfaketime steps the daemon's wall clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import correlate

from tests.pulse import PulseSink
from tests.station import AUTH, DaemonRun, clock, faketime_library, now, write_script

SCRIPT = "Kính thưa bà con. Đây là bản tin thử của trạm. Xin cảm ơn bà con."
LENGTH_S, PRE_ROLL_S, TAIL_S = 11, 1.0, 0.5


@pytest.fixture(autouse=True)
def not_near_midnight():
    """Windows here are today's; a test started a minute before midnight would straddle two days."""
    t = now()
    left = (dt.datetime.combine(t.date() + dt.timedelta(days=1), dt.time(), t.tzinfo) - t).total_seconds()
    if left < 150:
        time.sleep(left + 2)
    if t.hour == 0 and t.minute < 2:
        time.sleep(120)


def ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def played(rows):
    return any(r["status"] == "played" for r in rows)


def window(name: str, start: dt.datetime, end: dt.datetime, **kw) -> dict:
    return {"name": name, "start": clock(start), "end": clock(end), **kw}


def cached_audio(root: Path, sha256: str) -> Path:
    for wav in (root / "var" / "cache").rglob("*.wav"):
        if hashlib.sha256(wav.read_bytes()).hexdigest() == sha256:
            return wav
    raise AssertionError("the aired audio is not in the render cache")


def test_a_window_airs_through_the_relay_into_the_sink(tmp_path, playout_cmd):
    write_script(
        tmp_path / "bulletins" / "approved", "tin.md", SCRIPT, title="Bản tin thử", topic="dich-vu-cong"
    )
    start = (now() + dt.timedelta(seconds=10)).replace(microsecond=0)
    config = {"windows": [window("thử", start, start + dt.timedelta(seconds=60))]}
    with PulseSink() as pulse:
        recording = pulse.record(tmp_path / "air.wav")
        with DaemonRun(tmp_path, playout_cmd, config, env=pulse.env) as run:
            rows = run.wait_for(played, 60, "the window's play")
            log = run.log()
        recording.stop()
    (row,) = rows
    assert (row["window"], row["title"], row["topic"], row["engine"]) == (
        "thử",
        "Bản tin thử",
        "dich-vu-cong",
        "espeak",
    )
    on, start_audio, end_audio, off = (
        ts(row[k]) for k in ("relay_on_at", "audio_start_at", "audio_end_at", "relay_off_at")
    )
    assert ts(row["scheduled_at"]) == start.replace(microsecond=0)
    assert 0 <= (on - start).total_seconds() < 0.5  # keyed on time
    assert (start_audio - on).total_seconds() == pytest.approx(PRE_ROLL_S, abs=0.05)
    assert (off - end_audio).total_seconds() == pytest.approx(TAIL_S, abs=0.05)
    assert (end_audio - start_audio).total_seconds() == pytest.approx(LENGTH_S, abs=0.3)
    assert row["underruns"] == 0
    # The relay's own transitions (mock pin, logged by the daemon) agree with the as-run log.
    assert f"relay ON at {on.isoformat(timespec='milliseconds')}" in log
    assert f"relay OFF at {off.isoformat(timespec='milliseconds')}" in log
    # What reached the loudspeaker is the rendered bulletin: same length, same waveform.
    rendered, rate = sf.read(cached_audio(tmp_path, row["audio_sha256"]), dtype="float32")
    heard, heard_rate = sf.read(tmp_path / "air.wav", dtype="float32")
    assert heard_rate == rate == 24000
    if heard.ndim > 1:
        heard = heard.mean(axis=1)
    lag = int(np.argmax(correlate(heard, rendered, mode="valid", method="fft")))
    segment = heard[lag : lag + len(rendered)]
    assert len(segment) == len(rendered)
    similarity = float(np.dot(segment, rendered) / (np.linalg.norm(segment) * np.linalg.norm(rendered)))
    assert similarity > 0.95

    def sounding_s(x: np.ndarray) -> float:
        loud = np.flatnonzero(np.abs(x) > 1e-3)
        return (loud[-1] - loud[0]) / rate

    assert sounding_s(heard) == pytest.approx(sounding_s(rendered), abs=0.05)


def test_kill_mid_play_then_restart_relay_off_interrupted_no_double_play(tmp_path, playout_cmd):
    write_script(tmp_path / "bulletins" / "approved", "tin.txt", SCRIPT)
    start = now() + dt.timedelta(seconds=6)
    run = DaemonRun(
        tmp_path, playout_cmd, {"windows": [window("thử", start, start + dt.timedelta(seconds=90))]}
    )
    with run:
        run.wait_for(lambda rows: rows and rows[0]["audio_start_at"], 40, "audio to start")
        time.sleep(2)
        run.stop(signal.SIGKILL)
    assert [r["status"] for r in run.rows()] == ["playing"]
    with run:  # the same station, restarted by systemd
        rows = run.wait_for(lambda rows: rows[0]["status"] == "interrupted", 30, "the interrupted row")
        run.wait_log("ready", 30)
        time.sleep(3)  # the window is still open: the slot must not air again
        rows = run.rows()
        log = run.log()
    assert len(rows) == 1 and rows[0]["status"] == "interrupted" and rows[0]["error"]
    assert log.index("relay OFF") < log.index("marked interrupted") < log.index("ready")


def test_missed_window_recovery_at_start(tmp_path, playout_cmd):
    write_script(tmp_path / "bulletins" / "approved", "tin.txt", SCRIPT)
    t = now()
    config = {
        "windows": [
            window("đang mở", t - dt.timedelta(seconds=20), t + dt.timedelta(seconds=60)),  # airs now
            window(
                "sắp hết", t - dt.timedelta(seconds=20), t + dt.timedelta(seconds=12)
            ),  # too little time left
            window("đã qua", t - dt.timedelta(seconds=90), t - dt.timedelta(seconds=40)),  # over before start
        ]
    }
    # A station in service since yesterday, down for a while: the window that passed meanwhile was missed.
    (tmp_path / "var").mkdir()
    since = (t - dt.timedelta(days=1)).isoformat()
    (tmp_path / "var" / "in-service.json").write_text(json.dumps({"since": since}))
    with DaemonRun(tmp_path, playout_cmd, config) as run:
        rows = run.wait_for(lambda rows: played(rows) and len(rows) == 3, 60, "one play and two missed slots")
    by_window = {r["window"]: r for r in rows}
    assert by_window["đang mở"]["status"] == "played"
    assert by_window["sắp hết"]["status"] == "missed" and "thời gian" in by_window["sắp hết"]["error"]
    assert by_window["đã qua"]["status"] == "missed"


def test_a_station_installed_after_a_window_does_not_count_it_missed(tmp_path, playout_cmd):
    """Installed at 10:00: the morning window was never this station's to air, nor any day before."""
    write_script(tmp_path / "bulletins" / "approved", "tin.txt", SCRIPT)
    t = now()
    config = {
        "windows": [
            window("đang mở", t - dt.timedelta(seconds=20), t + dt.timedelta(seconds=60)),
            window("đã qua", t - dt.timedelta(seconds=90), t - dt.timedelta(seconds=40)),
        ]
    }
    with DaemonRun(tmp_path, playout_cmd, config) as run:
        rows = run.wait_for(played, 60, "the open window's play")
        time.sleep(1)
        rows = run.rows()
        request = urllib.request.Request(f"http://127.0.0.1:{run.port}/api/health", headers=AUTH)
        with urllib.request.urlopen(request, timeout=5) as answer:
            health = json.loads(answer.read())
    assert [(r["window"], r["status"]) for r in rows] == [("đang mở", "played")]
    since = dt.datetime.fromisoformat(health["in_service_since"])
    assert abs((since - t).total_seconds()) < 30
    record = json.loads((tmp_path / "var" / "in-service.json").read_text())
    assert dt.datetime.fromisoformat(record["since"]) == since


def test_a_stepped_clock_neither_skips_nor_double_airs(tmp_path, playout_cmd):
    """A Pi booting with a stale clock: NTP steps it forward to just before a window, later back."""
    write_script(tmp_path / "bulletins" / "approved", "tin.txt", SCRIPT)
    day = now().date().isoformat()
    fake = tmp_path / "faketime"
    fake.write_text(f"@{day} 16:50:00\n")
    env = {
        "LD_PRELOAD": faketime_library(),
        "FAKETIME_TIMESTAMP_FILE": str(fake),
        "FAKETIME_NO_CACHE": "1",
        "DONT_FAKE_MONOTONIC": "1",
        "TZ": "Asia/Ho_Chi_Minh",
    }
    config = {"windows": [{"name": "chiều", "start": "17:00:06", "end": "17:01:00"}]}
    run = DaemonRun(tmp_path, playout_cmd, config, env=env)
    run.write_config()
    # Rendered beforehand, without faketime: libfaketime breaks Python's time.sleep (clock_nanosleep on
    # the monotonic clock), which subprocess.wait uses; the daemon then finds the audio in its cache.
    subprocess.run(
        [
            *playout_cmd,
            "render",
            str(tmp_path / "bulletins" / "approved" / "tin.txt"),
            "-o",
            str(tmp_path / "pre.wav"),
            "--config",
            str(run.config_path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with run:
        run.wait_log("ready", 30)
        assert "17:00:06" in run.log()  # planned for later today
        fake.write_text(f"@{day} 17:00:00\n")  # NTP steps the clock ten minutes forward
        rows = run.wait_for(played, 40, "the window after the step")
        fake.write_text(f"@{day} 17:00:01\n")  # and back again, across the window's start
        run.wait_log("stepped by -", 10)
        time.sleep(10)
        rows = run.rows()
        log = run.log()
    assert [r["status"] for r in rows] == ["played"]
    assert ts(rows[0]["relay_on_at"]).strftime("%H:%M:%S") >= "17:00:06"
    assert "stepped by +" in log


def test_emergency_empty_library_and_broken_config_reload(tmp_path, playout_cmd):
    approved = tmp_path / "bulletins" / "approved"
    approved.mkdir(parents=True)
    start = now() + dt.timedelta(seconds=3)
    config = {"windows": [window("thử", start, start + dt.timedelta(seconds=30))]}
    with DaemonRun(tmp_path, playout_cmd, config) as run:
        rows = run.wait_for(lambda rows: rows and rows[0]["status"] == "skipped", 30, "a skipped slot")
        assert "chưa có bản tin" in rows[0]["error"]
        run.write_config("windows: [ {name: x, start: '07:00'\nrelay: {pin: gpio17}\n")  # an operator's typo
        run.wait_log("not applied", 15)
        write_script(
            approved,
            "khan-cap.md",
            "Thông báo khẩn cấp. Bà con chú ý tránh xa khu vực ngập lụt.",
            priority="emergency",
            title="Khẩn cấp",
        )
        rows = run.wait_for(
            lambda rows: any(r["window"] == "khẩn cấp" and r["status"] == "played" for r in rows),
            60,
            "the emergency bulletin",
        )
        assert run.proc.poll() is None  # the last good config kept the station running
        api = f"http://127.0.0.1:{run.port}/api"
        with urllib.request.urlopen(
            urllib.request.Request(f"{api}/plays?status=played", headers=AUTH), timeout=5
        ) as r:
            api_rows = json.loads(r.read())
        with urllib.request.urlopen(urllib.request.Request(f"{api}/health", headers=AUTH), timeout=5) as r:
            health = json.loads(r.read())
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(
                urllib.request.Request(f"{api}/plays?status=bogus", headers=AUTH), timeout=5
            )
        assert bad.value.code == 422
        with pytest.raises(urllib.error.HTTPError) as anonymous:
            urllib.request.urlopen(f"{api}/plays", timeout=5)
        assert anonymous.value.code == 401
    emergency = next(r for r in rows if r["window"] == "khẩn cấp")
    assert emergency["title"] == "Khẩn cấp"
    assert [(r["window"], r["status"]) for r in api_rows] == [("khẩn cấp", "played")]
    assert api_rows[0]["relay_on_at"].endswith("+07:00")  # ISO 8601 with the station's offset
    assert health["relay"]["on"] is False and health["library"]["ready"] == 1
    assert health["last_result"]["status"] == "played" and "next_slot" in health
    assert run.proc.returncode == 0


def test_a_broken_config_at_start_is_a_clear_error(tmp_path, playout_cmd):
    cfg = tmp_path / "schedule.yaml"
    cfg.write_text("windows:\n  - {name: sáng, start: '25:00', end: '06:30'}\nrelay: {pin: x}\n", "utf-8")
    proc = subprocess.run(
        [*playout_cmd, "run", "--config", str(cfg)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "windows.0.start" in proc.stderr and "relay.pin" in proc.stderr


def test_daemon_tells_systemd_ready_pings_the_watchdog_and_says_stopping(tmp_path, playout_cmd):
    import socket

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(30)
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}  # ping every second
    messages: list[str] = []
    run = DaemonRun(
        tmp_path,
        playout_cmd,
        {"windows": [window("thử", now() + dt.timedelta(hours=1), now() + dt.timedelta(hours=1, minutes=1))]},
        env=env,
    )
    started = time.monotonic()
    with run:
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        ready_s = time.monotonic() - started
        pings = 0
        while pings < 2:
            msg = sock.recv(4096).decode()
            messages.append(msg)
            pings += "WATCHDOG=1" in msg
        run.stop()
        sock.settimeout(2)
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    sock.close()
    text = "\n".join(messages)
    assert "STATUS=on duty; next slot thử at" in text
    assert "STOPPING=1" in text and ready_s < 20
