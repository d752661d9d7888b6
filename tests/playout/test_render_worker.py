"""The on-air process renders nothing itself: bulletins are rendered by worker processes (tts.worker).

What the station must show: the process holding the relay never loads the speech stack, and a worker
that dies on a bulletin costs that bulletin a retry, never the station its health or its audio.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

from tests.fake_edge import FakeEdge
from tests.station import start_station, write_script
from tts.engines import edge as edge_engine

#: What the daemon must never import: rendering's DSP, loudness and network engines.
SPEECH_STACK = ("scipy", "pyloudnorm", "edge_tts", "aiohttp", "onnxruntime")
#: Nor the array stack (about 18 MiB of RSS, issue 11): it reads 16-bit PCM WAVs and hands PortAudio bytes.
ARRAY_STACK = ("numpy", "soundfile")

# A station started in a fresh interpreter, as systemd starts it; reports what it loaded.  It airs one
# bulletin through PortAudio into the test's sound server (``SoundDevicePlayer("pulse")``).
PROBE = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from playout.asrun import Slot
    from playout.audio_out import SoundDevicePlayer
    from playout.config import parse_config
    from playout.daemon import Station

    root = Path(sys.argv[1])
    config = parse_config(json.loads(sys.argv[2]), base=root)
    stack = set(json.loads(sys.argv[3]))

    def loaded():
        return sorted({m.split(".")[0] for m in sys.modules} & stack)

    station = Station(config, player=SoundDevicePlayer("pulse"), serve_api=True)
    station.start()
    loaded_at_start = loaded()
    deadline = time.monotonic() + 120
    while len(station.library.ready()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    after_render = loaded()
    # On air: the cached WAV verified, PortAudio started at relay-on, the bulletin played to its end.
    bulletin = station.library.ready()[0]
    aired = station.air(bulletin, Slot("probe", station.now()), "probe/1")
    after_air = loaded()
    # An upload is checked in this process too (estimate, warnings), still without the speech stack.
    from playout.service import StationService
    upload = "Bà con chú ý lịch tiêm chủng. Xin cảm ơn.".encode()
    checked = StationService(station).submit(upload, "tiem.txt", "hoa")
    out = {
        "checks": checked["checks"],
        "at_start": loaded_at_start,
        "after_render": after_render,
        "after_air": after_air,
        "after_upload": loaded(),
        "aired": aired,
        "aired_s": bulletin.duration_s,
        "play": station.log.last(),
        "ready": len(station.library.ready()),
        "worker": station.renderer.last,
        "pid": __import__("os").getpid(),
        "rss_mb": int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024,
    }
    station.close()
    print(json.dumps(out, default=str))
    """
)


def test_the_on_air_process_never_loads_the_speech_stack(tmp_path):
    from tests.pulse import PulseSink
    from tests.station import free_port

    approved = tmp_path / "bulletins" / "approved"
    write_script(approved, "a.md", "Bà con chú ý. Chiều nay phun thuốc muỗi. Xin cảm ơn.", title="Tin A")
    write_script(approved, "b.md", "Lịch tiêm chủng tháng 12 tại trạm y tế. Xin cảm ơn.", title="Tin B")
    config = {
        "paths": {"data": str(tmp_path / "var"), "bulletins": str(tmp_path / "bulletins")},
        "tts": {"engines": ["edge", "espeak"]},  # Edge in the chain: its client must still stay out
        "bulletin": {"length_s": 12, "lead_in": "", "outro": ""},
        "relay": {"pre_roll_s": 0.2, "tail_s": 0.1},
        "windows": [],
        "api": {"port": free_port()},
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_") and k != "XDG_RUNTIME_DIR"}
    env = {**clean, "GPIOZERO_PIN_FACTORY": "mock", edge_engine.URL_ENV: "ws://127.0.0.1:9/edge?x=1"}
    with PulseSink() as sink:
        recording = sink.record(tmp_path / "air.wav")
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                PROBE,
                str(tmp_path),
                json.dumps(config),
                json.dumps(SPEECH_STACK + ARRAY_STACK),
            ],
            capture_output=True,
            text=True,
            timeout=180,
            env={**env, **sink.env},
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        )
        recording.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ready"] == 2
    # Neither the speech stack nor the array stack: not at start, not for two renders, not on air.
    assert out["at_start"] == [] and out["after_render"] == [] and out["after_air"] == [], out
    # Checking an upload estimates with the engines' classes: their modules load numpy only to make samples.
    assert out["after_upload"] == [], out
    assert out["checks"]["speech_s"] > 0 and out["checks"]["engine"] == "espeak"  # Edge is down here
    # The renders happened, in another process that did load the stack.
    assert out["worker"]["pid"] != out["pid"] and out["worker"]["returncode"] == 0
    assert "render-worker[" in proc.stderr
    # The bulletin aired whole through PortAudio, and the sound server heard it.
    play = out["play"]
    assert out["aired"] == "played" and play["status"] == "played" and not play["underruns"], play
    import soundfile as sf

    heard, rate = sf.read(tmp_path / "air.wav", dtype="int16")
    loud = abs(heard.astype(int)) > 300
    assert rate == 24000 and loud.any()
    first, last = loud.argmax(), len(loud) - loud[::-1].argmax()
    assert 1.0 < (last - first) / rate <= out["aired_s"] + 0.05


def test_a_worker_killed_mid_render_is_retried_and_the_station_stays_healthy(
    make_config, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    with FakeEdge("stall") as service:
        monkeypatch.setenv(edge_engine.URL_ENV, service.url)
        write_script(tmp_path / "bulletins" / "approved", "a.md", "Tin quan trọng. Xin cảm ơn.", title="Tin")
        config = make_config(
            bulletin={"length_s": 12, "lead_in": "", "outro": ""},
            tts={"engines": ["edge", "espeak"], "edge_attempt_timeout_s": 300, "edge_retries": 0},
            daemon={"rescan_s": 1},
        )
        killed = []

        def kill_the_worker_when_busy():
            deadline = time.monotonic() + 60
            while not service.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            service.mode = "ok"  # the next worker finds the service answering
            proc = station.renderer._proc
            killed.append(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)  # what the kernel's OOM killer does to a worker

        from playout.audio_out import NullPlayer
        from playout.daemon import Station

        station = Station(config, player=NullPlayer(), serve_api=False)
        killer = threading.Thread(target=kill_the_worker_when_busy)
        killer.start()
        station.start()
        try:
            killer.join(70)
            deadline = time.monotonic() + 60
            while not station.library.ready() and time.monotonic() < deadline:
                assert station.healthy(), station.problems()  # the station never suffers for it
                time.sleep(0.1)
            (bulletin,) = station.library.ready()
            assert bulletin.summary["engine"] == "edge"  # the second worker rendered it properly
            assert killed and station.renderer.last["pid"] != killed[0]
            assert station.healthy() and station.relay.is_on is False
        finally:
            station.close()
    text = caplog.text
    assert f"render worker {killed[0]} ended (signal 9) while rendering" in text
    assert "RENDER_WORKER_DIED" in text or "trying again (2/2)" in text


def test_a_bulletin_whose_worker_keeps_dying_is_failed_with_the_reason(make_config, tmp_path, monkeypatch):
    with FakeEdge("stall") as service:
        monkeypatch.setenv(edge_engine.URL_ENV, service.url)
        write_script(tmp_path / "bulletins" / "approved", "a.md", "Tin treo. Xin cảm ơn.", title="Tin")
        config = make_config(
            bulletin={"length_s": 12, "lead_in": "", "outro": ""},
            tts={
                "engines": ["edge", "espeak"],
                "edge_attempt_timeout_s": 300,
                "edge_retries": 0,
                "render_timeout_s": 10,
            },
            daemon={"rescan_s": 1},
        )
        station = start_station(config, ready=0)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                (bulletin,) = station.library.bulletins()
                if bulletin.status == "failed":
                    break
                time.sleep(0.2)
            assert bulletin.status == "failed", bulletin
            assert bulletin.error.startswith("[RENDER_TIMEOUT]") and "10 giây" in bulletin.error
            assert station.healthy()
            assert len(service.requests) == 2  # tried twice (a worker each), then given up until a change
        finally:
            station.close()


# -- the daemon's side of render failures, with the instant double (no worker, no engine) -------------------


def test_render_outcomes_reach_the_library_and_the_station_keeps_airing_what_it_has(make_config, tmp_path):
    from tests.doubles import InstantRendering

    approved = tmp_path / "bulletins" / "approved"
    write_script(approved, "good.md", "Tin tốt. Xin cảm ơn.", title="Tin tốt")
    write_script(approved, "long.md", "Tin quá dài. Xin cảm ơn.", title="Tin dài")
    write_script(approved, "oom.md", "Tin làm hết bộ nhớ. Xin cảm ơn.", title="Tin nặng")
    rendering = InstantRendering(refuse={"long.md": "SCRIPT_TOO_LONG"}, die={"oom.md"})
    config = make_config(
        bulletin={"length_s": 11, "lead_in": "", "outro": ""},
        relay={"pre_roll_s": 0.1, "tail_s": 0.1},
        daemon={"rescan_s": 1},
    )
    station = start_station(config, renderer=rendering)
    try:
        deadline = time.monotonic() + 20
        by_name = {}
        while time.monotonic() < deadline:
            by_name = {b.path.name: b for b in station.library.bulletins()}
            if by_name["oom.md"].status == "failed":
                break
            time.sleep(0.1)
        assert by_name["good.md"].status == "ready" and by_name["good.md"].summary["engine"] == "instant"
        too_long = by_name["long.md"]
        assert too_long.status == "failed" and too_long.error.startswith("[SCRIPT_TOO_LONG]")
        # A worker that dies is given a second chance, then the bulletin says why.
        assert rendering.jobs.count("oom.md") == 2 and rendering.jobs.count("long.md") == 1
        assert by_name["oom.md"].error.startswith("[RENDER_WORKER_DIED]")
        assert station.healthy() and [b.path.name for b in station.library.ready()] == ["good.md"]
        # The one good bulletin airs (the double's WAV passes the on-air checks).
        from playout.asrun import Slot

        assert station.air(by_name["good.md"], Slot("thử", station.now())) == "played"
        # A lexicon or settings change gives the failed ones another try.
        station.library.mark_stale()
        assert station.library.render_pending() == 0
        assert rendering.jobs.count("oom.md") == 3 and rendering.jobs.count("long.md") == 2
    finally:
        station.close()
