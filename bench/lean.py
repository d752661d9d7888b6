"""Issue 11: a lean on-air process.  `make bench BENCH=lean`.

* the daemon as systemd runs it: start → READY, then two 180 s bulletins rendered cold (in the render
  worker), then its idle RSS and whether the speech stack ever entered it;
* a heavy script rendered while a bulletin is on air: API p99 at 100 requests/s and underruns of the play;
* the cold whole-command render against the plain ``espeak-ng | ffmpeg loudnorm`` pipeline padded to
  180 s, paired (each pair run back to back, ratio per pair), its peak RSS, and a cache hit;
* ``playout relay-off`` (the unit's ExecStopPost): time and memory.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.common import line

ROOT = Path(__file__).resolve().parents[1]
SPEECH_STACK = ("scipy", "pyloudnorm", "edge_tts", "aiohttp", "onnxruntime")


def _status(pid: int, key: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in text.splitlines() if x.startswith(key + ":")).split()[1]) / 1024


def _maps_mention(pid: int, names: tuple[str, ...]) -> list[str]:
    """Which of the packages have a shared object mapped into the process (what sys.modules would say)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted(n for n in names if f"/site-packages/{n}/" in maps)


def bench_daemon_lean(words: int = 330) -> None:
    from bench.__main__ import script_of_words
    from tests.pulse import PulseSink
    from tests.station import AUTH, DaemonRun, clock, now, write_script

    print("\nLean daemon: start, two cold 180 s renders, idle; a heavy render during a play under API load")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-lean-"))
    approved = work / "bulletins" / "approved"
    write_script(approved, "a.md", script_of_words(words), title="Bản tin A")
    write_script(approved, "b.md", script_of_words(words - 20), title="Bản tin B")
    notify_path = work / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(60)
    cmd = [str(Path(sys.executable).parent / "playout")]
    # One window, opening once the two renders are done and the idle figures taken.
    opens = (now() + dt.timedelta(seconds=25)).replace(microsecond=0)
    config = {
        "bulletin": {"length_s": 180, "lead_in": "{title}", "outro": "Hết tin."},
        "windows": [{"name": "do", "start": clock(opens), "end": clock(opens + dt.timedelta(seconds=200))}],
    }
    with PulseSink() as pulse:
        run = DaemonRun(work, cmd, config, env={**pulse.env, "NOTIFY_SOCKET": str(notify_path)})
        t0 = time.monotonic()
        run.start()
        while "READY=1" not in sock.recv(4096).decode():
            pass
        ready_s = time.monotonic() - t0
        pid = run.proc.pid
        rss_ready = _status(pid, "VmRSS")
        deadline = time.monotonic() + 300
        while run.log().count("tts.render: rendered ") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        rendered_s = time.monotonic() - t0
        time.sleep(5)
        rss_idle, hwm = _status(pid, "VmRSS"), _status(pid, "VmHWM")
        anon = _status(pid, "RssAnon")
        stack = _maps_mention(pid, SPEECH_STACK)

        # While the window's bulletin is on air, three more full scripts arrive (rendered by a worker at
        # once, on the other core) and the API is asked 100 times a second until the play ends.
        run.wait_for(lambda rows: len(rows) >= 1, 120, "the play to start")
        for i in range(3):
            write_script(approved, f"heavy{i}.md", script_of_words(words - 10 * i), title=f"Bản tin nặng {i}")
        latencies: list[float] = []
        failed = [0]
        stop = threading.Event()

        def hammer() -> None:
            request = urllib.request.Request(f"http://127.0.0.1:{run.port}/api/plays?limit=50", headers=AUTH)
            next_at = time.monotonic()
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=5) as r:
                        r.read()
                    latencies.append((time.perf_counter() - began) * 1000)
                except (OSError, urllib.error.HTTPError):
                    failed[0] += 1
                next_at += 0.01
                stop.wait(max(0.0, next_at - time.monotonic()))

        load = threading.Thread(target=hammer, daemon=True)
        load.start()
        rows = run.wait_for(lambda rows: rows and rows[0]["status"] != "playing", 260, "the play to end")
        stop.set()
        load.join()
        heavy_rendered = sum(f"heavy{i}.md with" in run.log() for i in range(3))
        run.stop()
    sock.close()
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else float("nan")
    play = rows[0]
    line("start to READY", f"{ready_s:.2f} s", "target < 1 s", ready_s < 1)
    line("RSS at READY", f"{rss_ready:.0f} MiB")
    line("two cold 180 s renders done (in the worker) after", f"{rendered_s:.1f} s")
    line("idle RSS after the two renders", f"{rss_idle:.0f} MiB", "target <= 80 MiB", rss_idle <= 80)
    line("  of which anonymous (the rest: shared libraries)", f"{anon:.0f} MiB")
    line("  peak RSS of the daemon so far", f"{hwm:.0f} MiB")
    line("speech stack mapped in the daemon", ", ".join(stack) or "none", "target none", not stack)
    line("full scripts rendered during the play", f"{heavy_rendered}/3")
    line("the play during those renders", f"{play['status']} {play['error'] or ''}".strip())
    line(
        "  underruns",
        f"{play['underruns'] or 0}",
        "target 0",
        play["status"] == "played" and not play["underruns"],
    )
    line(
        f"API p99 during it ({len(latencies)} answered, {failed[0]} failed)",
        f"{p99:.1f} ms",
        "target < 50 ms",
        p99 < 50 and not failed[0],
    )
    shutil.rmtree(work, ignore_errors=True)


def _core_alsa_config(work: Path) -> Path:
    """alsa.conf without its hooks: the ALSA a Pi has with `make install` (no libasound2-plugins, whose
    conf.d files make PortAudio's device scan load the pulse, jack, a52/libavcodec… plugins here)."""
    text = Path("/usr/share/alsa/alsa.conf").read_text()
    start = text.index("@hooks [")
    depth, i = 0, start
    while True:
        depth += {"[": 1, "]": -1}.get(text[i], 0)
        if depth == 0 and text[i] == "]":
            break
        i += 1
    out = work / "alsa-core.conf"
    out.write_text(text[:start] + text[i + 1 :])
    return out


def bench_daemon_idle_runtime_alsa(words: int = 330) -> None:
    from bench.__main__ import script_of_words
    from tests.station import DaemonRun, write_script

    print("\nLean daemon with only the run-time ALSA configuration (as on a Pi after `make install`)")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-lean-alsa-"))
    approved = work / "bulletins" / "approved"
    write_script(approved, "a.md", script_of_words(words), title="Bản tin A")
    write_script(approved, "b.md", script_of_words(words - 20), title="Bản tin B")
    cmd = [str(Path(sys.executable).parent / "playout")]
    env = {"ALSA_CONFIG_PATH": str(_core_alsa_config(work)), "PULSE_SERVER": "none"}
    config = {"bulletin": {"length_s": 180}, "windows": []}
    with DaemonRun(work, cmd, config, env=env) as run:
        deadline = time.monotonic() + 300
        while run.log().count("tts.render: rendered ") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)
        rss, anon = _status(run.proc.pid, "VmRSS"), _status(run.proc.pid, "RssAnon")
        audio = next((x for x in run.log().splitlines() if "audio out:" in x), "").split("audio out:")[-1]
    line("audio out", audio.strip()[:40])
    line("idle RSS after two cold 180 s renders", f"{rss:.0f} MiB", "target <= 80 MiB", rss <= 80)
    line("  of which anonymous", f"{anon:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)


def bench_render_paired(words: int = 324, pairs: int = 5) -> None:
    from bench.__main__ import run_measured, script_of_words

    print(f"\nRender, whole command vs plain pipeline padded to 180 s ({words} words, {pairs} pairs)")
    espeak, ffmpeg = shutil.which("espeak-ng"), shutil.which("ffmpeg")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-render-"))
    body = script_of_words(words)
    (work / "body.txt").write_text(body, "utf-8")
    (work / "script.md").write_text(f"---\ntitle: Bài đo tốc độ\n---\n{body}\n", "utf-8")
    (work / "schedule.yaml").write_text("tts: {engines: [espeak]}\npaths: {data: var}\n", "utf-8")
    playout = str(Path(sys.executable).parent / "playout")
    render = [playout, "render", str(work / "script.md"), "-o", str(work / "out.wav")]
    render += ["--config", str(work / "schedule.yaml")]
    plain_s, ours_s, ratios, peaks = [], [], [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        subprocess.run(
            [espeak, "-v", "vi", "-f", str(work / "body.txt"), "-w", str(work / "a.wav")], check=True
        )
        subprocess.run(
            [ffmpeg, "-loglevel", "error", "-y", "-i", str(work / "a.wav")]
            + ["-af", "loudnorm=I=-16:TP=-1,apad=whole_dur=180", str(work / "b.wav")],
            check=True,
        )
        plain = time.perf_counter() - t0
        shutil.rmtree(work / "var", ignore_errors=True)
        wall, peak = run_measured(render)
        plain_s.append(plain)
        ours_s.append(wall)
        ratios.append(wall / plain)
        peaks.append(peak)
    hits = [run_measured(render) for _ in range(3)]
    hit_s, hit_rss = statistics.median(h[0] for h in hits), max(h[1] for h in hits)
    line("plain pipeline, padded to 180 s (median)", f"{statistics.median(plain_s):.2f} s")
    line("`playout render`, cold cache (median)", f"{statistics.median(ours_s):.2f} s")
    line(
        "ratio per pair: median (min–max)",
        f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})",
        "target <= 1.0",
        statistics.median(ratios) <= 1.0,
    )
    line("peak RSS of `playout render`", f"{max(peaks):.0f} MiB", "target <= 150 MiB", max(peaks) <= 150)
    line("cache hit, whole command (median of 3)", f"{hit_s:.2f} s", "target < 0.5 s", hit_s < 0.5)
    line("  its peak RSS", f"{hit_rss:.0f} MiB")
    relay = [run_measured([playout, "relay-off", "--config", str(work / "schedule.yaml")]) for _ in range(3)]
    r_s, r_rss = statistics.median(r[0] for r in relay), max(r[1] for r in relay)
    line("`playout relay-off` (median of 3)", f"{r_s:.2f} s", "target < 0.3 s", r_s < 0.3)
    line("  its peak RSS", f"{r_rss:.0f} MiB", "target < 40 MiB", r_rss < 40)
    shutil.rmtree(work, ignore_errors=True)


def bench_lean() -> None:
    bench_render_paired()
    bench_daemon_lean()
    bench_daemon_idle_runtime_alsa()
