"""The `playout` command, run as an operator would, in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import urllib.parse
import urllib.request

import pytest
import soundfile as sf

from tests.conftest import SAMPLES


@pytest.fixture
def station(tmp_path):
    cfg = tmp_path / "schedule.yaml"
    cfg.write_text("bulletin: {length_s: 25}\ntts: {engines: [espeak]}\npaths: {data: var}\n", "utf-8")
    return cfg


def run(cmd, *args, stdin=None, cwd=None):
    return subprocess.run([*cmd, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_render_writes_the_wav_and_prints_the_summary(playout_cmd, station, write_script, tmp_path):
    script = write_script("tin.md", "---\ntitle: Thử\n---\nKính thưa bà con. Hôm nay học cách quét mã QR.\n")
    out = tmp_path / "out" / "tin.wav"
    proc = run(playout_cmd, "render", str(script), "-o", str(out), "--config", str(station))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    for key in (
        "duration_s",
        "speech_s",
        "engine",
        "voice",
        "rate",
        "lufs",
        "true_peak_dbtp",
        "fill_s",
        "warnings",
    ):
        assert key in summary
    assert summary["engine"] == "espeak" and summary["output"] == str(out)
    assert sf.info(out).frames == 25 * 24000 and sf.info(out).subtype == "PCM_16"


def test_refusal_exits_non_zero_with_code_on_stderr(playout_cmd, station, write_script):
    empty = write_script("rong.txt", "   \n")
    proc = run(playout_cmd, "render", str(empty), "-o", "x.wav", "--config", str(station))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "[SCRIPT_EMPTY]" in proc.stderr


def test_several_scripts_show_progress_and_one_json_line_each(playout_cmd, station, write_script, tmp_path):
    a = write_script("a.txt", "Bà con chú ý. Đây là tin thứ nhất.")
    b = write_script("b.txt", "Bà con chú ý. Đây là tin thứ hai.")
    proc = run(playout_cmd, "render", str(a), str(b), "-o", str(tmp_path / "out"), "--config", str(station))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["output"].rsplit("/", 1)[1] for x in lines] == ["a.wav", "b.wav"]
    assert "2/2" in proc.stderr  # the progress bar


def test_check_estimates_without_rendering(playout_cmd, station, tmp_path):
    proc = run(playout_cmd, "check", str(SAMPLES / "ngan.txt"), "--json", "--config", str(station))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] and report["speech_s"] > 3
    assert not (tmp_path / "var").exists()  # nothing synthesized, nothing cached
    human = run(playout_cmd, "check", str(SAMPLES / "ngan.txt"), "--config", str(station))
    assert "ĐẠT" in human.stdout and "giây" in human.stdout


def test_check_flags_too_long(playout_cmd, tmp_path, write_script):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("bulletin: {length_s: 15}\ntts: {engines: [espeak]}\n", "utf-8")
    long = write_script("dai.txt", "Bà con mở ứng dụng ngân hàng rồi chọn mục thanh toán hóa đơn. " * 20)
    proc = run(playout_cmd, "check", str(long), "--config", str(cfg))
    assert proc.returncode == 1
    assert "KHÔNG ĐẠT" in proc.stdout and "SCRIPT_TOO_LONG" in proc.stdout


def test_normalize_reads_stdin_line_by_line(playout_cmd):
    proc = run(playout_cmd, "normalize", stdin="Năm 2024\n15%\n")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == ["năm hai nghìn không trăm hai mươi tư", "mười lăm phần trăm"]
    one = run(playout_cmd, "normalize", "105 người")
    assert one.stdout.strip() == "một trăm linh năm người"


def test_config_prints_effective_settings_and_errors_with_paths(playout_cmd, tmp_path):
    good = run(playout_cmd, "config", "--config", str(tmp_path / "none.yaml"))
    assert good.returncode == 2 and "CONFIG_UNREADABLE" in good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("bulletin: {length_s: -1}\nrelay: {pin: x}\n", "utf-8")
    proc = run(playout_cmd, "config", "--config", str(bad))
    assert proc.returncode == 2
    assert "bulletin.length_s" in proc.stderr and "relay.pin" in proc.stderr
    ok = tmp_path / "ok.yaml"
    ok.write_text("relay: {pin: 27}\n", "utf-8")
    shown = run(playout_cmd, "config", "--config", str(ok))
    assert shown.returncode == 0 and "pin: 27" in shown.stdout and "length_s: 180" in shown.stdout


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def http_error_303(self, req, fp, code, msg, headers):
        return fp


def test_demo_starts_the_station_with_a_slot_a_minute_ahead(playout_cmd, tmp_path):
    import os
    import signal
    import time

    (tmp_path / "bulletins" / "approved").mkdir(parents=True)
    (tmp_path / "bulletins" / "README.md").write_text("# notes for people, not a script\n", "utf-8")
    approved = tmp_path / "bulletins" / "approved"
    (approved / "a.txt").write_text("Kính thưa bà con. Đây là bản tin thử.", "utf-8")
    (approved / ".~lock.b.docx#").write_text("x", "utf-8")
    port = free_port()
    cfg = tmp_path / "schedule.yaml"
    from playout.auth import hash_token

    token = "demo-test-token-0123456789"
    cfg.write_text(
        f"bulletin: {{length_s: 20}}\ntts: {{engines: [espeak]}}\napi: {{port: {port}}}\nwindows: []\n"
        f"auth: {{tokens: [{{name: t, token_hash: '{hash_token(token)}', roles: [technician]}}]}}\n",
        "utf-8",
    )
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*playout_cmd, "demo", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    printed = []
    # The log goes to stderr: drained all along, so the daemon never blocks on a full pipe.
    logged: list[str] = []
    drain = threading.Thread(target=lambda: logged.extend(proc.stderr), daemon=True)
    drain.start()
    try:
        # What a newcomer reads first: the page's address and a login that works.
        while proc.poll() is None and not any("đăng nhập: tài khoản" in line for line in printed):
            printed.append(proc.stdout.readline())
        login = next(line for line in printed if "đăng nhập: tài khoản" in line)
        name, password = re.search(r"tài khoản (\S+), mật khẩu (\S+)", login).groups()
        health = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/health", headers={"Authorization": f"Bearer {token}"}
                )
                with urllib.request.urlopen(request, timeout=2) as r:
                    health = json.loads(r.read())
                # The API answers before the library thread has loaded the (already cached) render.
                if health["library"]["ready"] == 1:
                    break
                time.sleep(0.3)
            except OSError:
                time.sleep(0.3)
        assert health is not None, proc.stderr.read() if proc.poll() is not None else "no API"
        # The demo window is named after its start: a second `make run` the same day is a new slot that airs.
        started = re.search(r"Khung giờ trình diễn: (\d\d:\d\d:\d\d)", "".join(printed)).group(1)
        assert health["next_slot"]["window"] == f"trình diễn {started}"
        form = urllib.parse.urlencode({"name": name, "password": password}).encode()
        opener = urllib.request.build_opener(_NoRedirect)
        with opener.open(f"http://127.0.0.1:{port}/dang-nhap", data=form, timeout=10) as answer:
            assert answer.status == 303 and "playout_session" in answer.headers["set-cookie"]
        assert health["relay"]["on"] is False and health["library"]["ready"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        # Not communicate(): it reads the pipe's descriptor and would miss what readline() buffered.
        out = proc.stdout.read()
        proc.wait(timeout=30)
        drain.join(timeout=10)
    err = "".join(logged)
    assert proc.returncode == 0, err
    out = "".join(printed) + out
    assert "a.txt" in out and "một phút nữa" in out and f"127.0.0.1:{port}" in out
    assert "Mã truy cập thử cho phiên này:" in out
    assert "README" not in out
    assert "relay OFF" in err


def test_relay_off_for_systemd_exec_stop_post(playout_cmd, tmp_path):
    import os

    cfg = tmp_path / "s.yaml"
    cfg.write_text("relay: {pin: 22, active_high: false}\n", "utf-8")
    proc = subprocess.run(
        [*playout_cmd, "relay-off", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "GPIO22" in proc.stdout and "OFF" in proc.stdout and "HIGH" in proc.stdout


def _relay_off(playout_cmd, cfg):
    import os

    return subprocess.run(
        [*playout_cmd, "relay-off", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )


def test_relay_off_still_switches_off_when_schedule_yaml_is_broken(playout_cmd, tmp_path):
    """ExecStopPost after an operator's typo: the amplifier must still go off (it used to stay keyed)."""
    cfg = tmp_path / "s.yaml"
    cfg.write_text("relay: {pin: 22}\nwindows:\n  - {name: sáng, start: '25:00', end: '06:30'}\n", "utf-8")
    proc = _relay_off(playout_cmd, cfg)
    assert proc.returncode == 0, proc.stderr
    assert "GPIO22" in proc.stdout and "OFF" in proc.stdout
    assert "CONFIG_INVALID" in proc.stderr and "vẫn tắt rơ-le ở chân GPIO22" in proc.stderr

    # Not even YAML any more: the pin the station recorded when it claimed it.
    from playout.config import RelaySettings, record_relay

    record_relay(tmp_path / "var", RelaySettings(pin=23))
    cfg.write_text("relay: {pin: 22\n  windows: [", "utf-8")
    proc = _relay_off(playout_cmd, cfg)
    assert proc.returncode == 0, proc.stderr
    assert "GPIO23" in proc.stdout and "CONFIG_SYNTAX" in proc.stderr

    # Nothing to go by: say so, never guess a pin.
    (tmp_path / "var" / "relay.json").unlink()
    proc = _relay_off(playout_cmd, cfg)
    assert proc.returncode == 2 and "không biết rơ-le ở chân nào" in proc.stderr and proc.stdout == ""


def test_a_bad_account_name_is_refused_before_any_password_or_file(playout_cmd, station, tmp_path):
    before = station.read_text("utf-8")
    proc = run(playout_cmd, "account", "add", "Lan Anh", "--role", "operator", "--config", str(station))
    assert proc.returncode == 2 and "tên chỉ gồm 1–50 ký tự" in proc.stderr
    assert station.read_text("utf-8") == before
    centre = tmp_path / "centre"
    proc = run(playout_cmd, "centre", "account", str(centre), "Lan/Anh", "--role", "operator")
    assert proc.returncode == 2 and "tên chỉ gồm 1–50 ký tự" in proc.stderr
    assert not (centre / "centre.yaml").exists()
