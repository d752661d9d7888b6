"""Short commands import only what they use.

``playout relay-off`` runs after every stop or crash of the station (systemd ExecStopPost), and a Pi
Zero 2 W has 512 MB and a slow SD card: loading the web framework or the audio libraries there costs a
second and tens of megabytes for nothing.  Each command runs in a fresh interpreter, as the operator or
systemd would run it, and reports which heavy packages ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: Packages none of the cheap commands needs: the web stack, the DSP libraries, the network engines.
HEAVY = ("fastapi", "starlette", "uvicorn", "scipy", "pyloudnorm", "edge_tts", "aiohttp", "onnxruntime")

# Runs the CLI's main in-process, then writes what it returned and which heavy packages it loaded.
PROBE = """
import json, os, sys
from playout.cli import main
rc = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(os.environ["PROBE_HEAVY"])))
with open(os.environ["PROBE_OUT"], "w") as fh:
    json.dump({"rc": rc, "heavy": heavy}, fh)
"""

CONFIG = "relay: {pin: 22, active_high: false}\nbulletin: {length_s: 25}\ntts: {engines: [espeak]}\n"


def probe(
    tmp_path, *argv: str, heavy: tuple[str, ...] = HEAVY, stdin: str | None = None
) -> tuple[dict, subprocess.CompletedProcess]:
    out = tmp_path / "probe.json"
    env = {
        **os.environ,
        "GPIOZERO_PIN_FACTORY": "mock",
        "PROBE_OUT": str(out),
        "PROBE_HEAVY": json.dumps(heavy),
    }
    env.pop("PLAYOUT_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert out.exists(), proc.stderr
    return json.loads(out.read_text()), proc


@pytest.fixture
def station(tmp_path):
    cfg = tmp_path / "schedule.yaml"
    cfg.write_text(CONFIG + f"paths: {{data: {tmp_path / 'var'}}}\n", "utf-8")
    return cfg


def test_relay_off_drives_the_relay_without_the_web_stack(tmp_path, station):
    result, proc = probe(tmp_path, "relay-off", "--config", str(station))
    assert result["rc"] == 0, proc.stderr
    assert "GPIO22" in proc.stdout and "OFF" in proc.stdout and "HIGH" in proc.stdout
    assert result["heavy"] == []


def test_config_prints_settings_without_the_web_stack(tmp_path, station):
    result, proc = probe(tmp_path, "config", "--config", str(station))
    assert result["rc"] == 0, proc.stderr
    assert "pin: 22" in proc.stdout and "accounts: []" in proc.stdout
    assert result["heavy"] == []


def test_passwd_and_token_hash_without_the_web_stack(tmp_path):
    result, proc = probe(tmp_path, "passwd", stdin="mật-khẩu-đủ-dài\n")
    assert result["rc"] == 0, proc.stderr
    assert proc.stdout.startswith("scrypt$16384$8$1$")
    assert result["heavy"] == []
    result, proc = probe(tmp_path, "token", "may-do")
    assert result["rc"] == 0, proc.stderr
    assert "token_hash: 'sha256$" in proc.stdout
    assert result["heavy"] == []


def test_check_estimates_without_audio_libraries(tmp_path, station, write_script):
    script = write_script("tin.txt", "Kính thưa bà con. Hôm nay học cách quét mã QR.")
    result, proc = probe(tmp_path, "check", str(script), "--json", "--config", str(station))
    assert result["rc"] == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["engine"] == "espeak"
    assert result["heavy"] == []


def test_check_with_every_engine_in_the_chain_loads_none_of_their_clients(tmp_path, write_script):
    """The estimate needs each engine's name, voices and speed, not its client: Edge's (edge-tts, aiohttp)
    and Piper's (onnxruntime) load only when an engine speaks.  The daemon checks uploads the same way."""
    cfg = tmp_path / "all.yaml"
    cfg.write_text("tts: {engines: [edge, piper, espeak]}\n", "utf-8")
    script = write_script("tin.txt", "Kính thưa bà con. Hôm nay học cách quét mã QR.")
    env_url = "ws://127.0.0.1:9/edge/v1"
    os.environ["PLAYOUT_EDGE_WSS_URL"] = env_url
    try:
        result, proc = probe(tmp_path, "check", str(script), "--json", "--config", str(cfg))
    finally:
        del os.environ["PLAYOUT_EDGE_WSS_URL"]
    assert result["rc"] == 0, proc.stderr
    assert json.loads(proc.stdout)["engine"] == "edge" and result["heavy"] == []


def test_a_refused_script_is_refused_before_loading_audio_libraries(tmp_path, station, write_script):
    empty = write_script("rong.txt", "   \n")
    # Intake refuses it before anything audio is needed, not even numpy or soundfile for the cache.
    result, proc = probe(
        tmp_path, "render", str(empty), "--config", str(station), heavy=(*HEAVY, "numpy", "soundfile")
    )
    assert result["rc"] == 1
    assert "[SCRIPT_EMPTY]" in proc.stderr and proc.stdout == ""
    assert result["heavy"] == []


def test_a_cache_hit_render_copies_the_file_without_audio_libraries(
    tmp_path, station, write_script, playout_cmd
):
    script = write_script("tin.txt", "Kính thưa bà con. Hôm nay học cách quét mã QR.")
    first = subprocess.run(
        [*playout_cmd, "render", str(script), "--config", str(station)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    rendered = json.loads(first.stdout)
    assert rendered["cached"] is False

    out = tmp_path / "out.wav"
    result, proc = probe(tmp_path, "render", str(script), "-o", str(out), "--config", str(station))
    assert result["rc"] == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["cached"] is True and again["cache_key"] == rendered["cache_key"]
    assert again["output"] == str(out)
    assert out.read_bytes() == open(rendered["output"], "rb").read()  # noqa: PTH123, SIM115
    assert result["heavy"] == []


def test_a_damaged_cache_entry_is_rendered_again(tmp_path, station, write_script, playout_cmd):
    # The cheap path must keep the cache's guarantee: a changed file never passes as a hit.
    script = write_script("tin.txt", "Kính thưa bà con. Hôm nay học cách quét mã QR.")
    cmd = [*playout_cmd, "render", str(script), "--config", str(station)]
    first = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)
    wav = open(first["output"], "r+b")  # noqa: PTH123, SIM115
    with wav:
        wav.seek(-2, os.SEEK_END)
        wav.write(b"\x01\x02")
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)
    assert again["cached"] is False and again["audio_sha256"] == first["audio_sha256"]


def test_an_engine_is_loaded_only_when_asked_for(tmp_path):
    code = (
        "import sys\n"
        "from playout.config import TtsSettings\n"
        "from tts.engines import get_engine, available_engines\n"
        "get_engine('espeak', TtsSettings())\n"
        "print('edge_tts' in sys.modules, 'aiohttp' in sys.modules)\n"
        "print(available_engines())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "False False"
    # The daemon still loads every engine at start-up (in its main thread) through available_engines.
    assert lines[1] == "['edge', 'espeak', 'piper']"


def test_the_settings_module_does_not_import_the_web_framework():
    code = "import sys, playout.config; print(sorted({'fastapi', 'starlette'} & set(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


def test_reading_the_settings_loads_no_station_part_beyond_them():
    """relay-off runs after every stop: the config needs the reports' settings, not the reports (which
    bring the as-run log, script intake and CSV code, ~6 MiB)."""
    code = "import sys, playout.config; print(sorted(m for m in sys.modules if m.startswith('playout.')))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(eval(proc.stdout))  # noqa: S307 - our own repr of a list of module names
    assert not loaded & {"playout.reports", "playout.asrun", "playout.intake", "playout.auth"}, loaded
