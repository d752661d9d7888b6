"""`make bench`: the station's speed and memory, measured and printed.

Render (issue 2): our render of a ~350-word script with the espeak engine and a cold cache, against the
plain pipeline `espeak-ng -v vi -w | ffmpeg -af loudnorm` on the same text; and our peak memory.
Then Edge voices, the on-air daemon, the API, normalization, and faults (bench/faults.py: a damaged
database, a 300 MB body, 1 000 idle connections) and the lean on-air process (bench/lean.py: the daemon's
memory with renders in a worker, the paired render ratio, a cache hit, relay-off), and the province
fleet (bench/fleet.py: emergency latency to 10 stations, bytes per bulletin, the centre with 100 stations'
heartbeats).  `make bench BENCH=faults` runs one of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # playout, tts and tests, whatever the current directory

from bench.common import bench_token, fill_asrun, line  # noqa: E402 - needs the path above

SAMPLES = ROOT / "bulletins" / "approved"


def run_measured(cmd: list[str], **kw) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one command, from the kernel's own accounting (see measure.py)."""
    proc = subprocess.run(
        [sys.executable, "-S", str(Path(__file__).with_name("measure.py")), *cmd],
        capture_output=True,
        text=True,
        check=False,
        **kw,
    )
    try:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise SystemExit(f"benchmark launcher failed: {proc.stderr}") from None
    if result["exit"] != 0:
        raise SystemExit(f"benchmark command failed ({result['exit']}): {' '.join(cmd)}\n{proc.stderr}")
    return result["wall_s"], result["max_rss_mib"]


def script_of_words(n: int) -> str:
    """A realistic bulletin of about ``n`` words, from the shipped samples' bodies."""
    words: list[str] = []
    for path in sorted(SAMPLES.glob("*")):
        text = path.read_text("utf-8")
        if text.startswith("---"):
            text = text.split("---", 2)[2]
        words += text.split()
    while len(words) < n:
        words += words
    body = " ".join(words[:n])
    return body.rstrip(".,;:!?") + "."


def bench_render(repeats: int = 3) -> None:
    print("Render: ~350-word script, espeak engine, cold cache (180 s bulletin)")
    espeak, ffmpeg = shutil.which("espeak-ng"), shutil.which("ffmpeg")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-"))
    body = script_of_words(350)
    (work / "body.txt").write_text(body, "utf-8")
    (work / "script.md").write_text(f"---\ntitle: Bài đo tốc độ\n---\n{body}\n", "utf-8")
    (work / "schedule.yaml").write_text("tts: {engines: [espeak]}\npaths: {data: var}\n", "utf-8")
    print(f"  script: {len(body.split())} words")

    plain = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [espeak, "-v", "vi", "-f", str(work / "body.txt"), "-w", str(work / "a.wav")], check=True
        )
        subprocess.run(
            [
                ffmpeg,
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(work / "a.wav"),
                "-af",
                "loudnorm=I=-16:TP=-1",
                str(work / "b.wav"),
            ],
            check=True,
        )
        plain.append(time.perf_counter() - t0)

    # In-process: what the daemon pays per bulletin (libraries already loaded).
    from playout.config import load_config
    from playout.intake import read_script
    from tts.render import Renderer

    inproc = []
    for i in range(repeats):
        config = load_config(work / "schedule.yaml")
        config = config.model_copy(
            update={"paths": config.paths.model_copy(update={"data": work / f"var{i}"})}
        )
        renderer = Renderer(config)
        t0 = time.perf_counter()
        renderer.render(read_script(work / "script.md"))
        inproc.append(time.perf_counter() - t0)

    # Whole command: what an operator waits for, interpreter start and imports included.
    cli, rss = [], []
    for i in range(repeats):
        shutil.rmtree(work / "var", ignore_errors=True)
        wall, peak = run_measured(
            [
                str(Path(sys.executable).parent / "playout"),
                "render",
                str(work / "script.md"),
                "-o",
                str(work / f"out{i}.wav"),
                "--config",
                str(work / "schedule.yaml"),
            ],
        )
        cli.append(wall)
        rss.append(peak)
    _, import_rss = run_measured([sys.executable, "-c", "import tts.render"], cwd=ROOT)

    p, r, c = statistics.median(plain), statistics.median(inproc), statistics.median(cli)
    line("plain pipeline (espeak-ng | ffmpeg loudnorm)", f"{p:.2f} s", f"(median of {repeats})")
    line("our render, in the daemon (libraries loaded)", f"{r:.2f} s")
    line("our `playout render` command, whole process", f"{c:.2f} s")
    line(
        "ratio, in the daemon (one run)",
        f"{inproc[0] / plain[0]:.2f}",
        "target <= 1.5",
        inproc[0] / plain[0] <= 1.5,
    )
    line("ratio, in the daemon (medians)", f"{r / p:.2f}", "target <= 1.5", r / p <= 1.5)
    line("ratio, whole command incl. Python start (medians)", f"{c / p:.2f}", "target <= 1.5", c / p <= 1.5)
    line("peak RSS of `playout render`", f"{max(rss):.0f} MiB", "target <= 150 MiB", max(rss) <= 150)
    line("  of which Python + the render's libraries loaded", f"{import_rss:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)


def bench_edge() -> None:
    """Edge engine through the local fake service (real edge-tts client), and giving up on a stall."""
    print("\nEdge voices: the real edge-tts client against the local fake service")
    from playout.config import parse_config
    from playout.errors import PlayoutError
    from playout.intake import parse_script
    from tests.fake_edge import FakeEdge
    from tts.engines import edge as edge_engine
    from tts.render import Renderer

    work = Path(tempfile.mkdtemp(prefix="playout-bench-edge-"))
    script = parse_script(f"---\ntitle: Bài đo\n---\n{script_of_words(350)}\n".encode(), "bench.md")
    timeout_s, retries, backoff_s = 3.0, 1, 0.5

    def render(engines: list[str], tag: str) -> tuple[float, dict]:
        config = parse_config(
            {
                "tts": {
                    "engines": engines,
                    "edge_attempt_timeout_s": timeout_s,
                    "edge_retries": retries,
                    "edge_backoff_s": backoff_s,
                },
                "paths": {"data": str(work / tag)},
            },
            base=work,
        )
        edge_engine.reset_outages()
        t0 = time.perf_counter()
        summary = Renderer(config).render(script).summary
        return time.perf_counter() - t0, summary

    espeak_s = statistics.median(render(["espeak"], f"espeak{i}")[0] for i in range(3))
    with FakeEdge("ok") as fake:
        os.environ[edge_engine.URL_ENV] = fake.url
        edge_s, summary = render(["edge"], "edge")
        requests = len(fake.requests)
    with FakeEdge("stall") as fake:
        os.environ[edge_engine.URL_ENV] = fake.url
        t0 = time.perf_counter()
        with contextlib.suppress(PlayoutError):  # giving up is the point of this measurement
            render(["edge"], "giveup")
        giveup_s = time.perf_counter() - t0
        stall_s, stalled = render(["edge", "espeak"], "stall")
    os.environ.pop(edge_engine.URL_ENV, None)
    attempts_bound = timeout_s * (retries + 1) + backoff_s
    line("espeak render (cold cache, median of 3)", f"{espeak_s:.2f} s")
    line(f"edge render via the fake ({requests} request(s), cold cache)", f"{edge_s:.2f} s")
    line("edge / espeak", f"{edge_s / espeak_s:.2f}")
    line(
        "stalled service: time to give up on Edge",
        f"{giveup_s:.2f} s",
        f"bound {attempts_bound:.1f} s",
        giveup_s < attempts_bound + 0.3,
    )
    line(
        f"stalled service: give up and render offline ({stalled['engine']})",
        f"{stall_s:.2f} s",
        f"target < {attempts_bound + espeak_s:.1f} s",
        stall_s < attempts_bound + espeak_s,
    )
    print(
        f"    (bound: {timeout_s:.0f} s per attempt x {retries + 1} attempts + {backoff_s} s backoff; "
        "then the espeak render)"
    )
    shutil.rmtree(work, ignore_errors=True)


def bench_daemon(plays: int = 20, idle_s: float = 60.0) -> None:
    """The on-air daemon as systemd runs it: timing of 20 short plays, start-up, idle cost, API load."""
    import datetime as dt
    import socket
    import threading
    import urllib.error
    import urllib.request

    from tests.pulse import PulseSink
    from tests.station import DaemonRun, clock, now, write_script

    print(f"\nDaemon: {plays} short plays into a PulseAudio null sink, then {idle_s:.0f} s idle")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-daemon-"))
    write_script(
        work / "bulletins" / "approved", "tin.txt", "Kính thưa bà con. Đây là bản tin đo. Xin cảm ơn."
    )
    pre_roll, tail, length, gap = 0.5, 0.2, 11, 13
    first = (now() + dt.timedelta(seconds=20)).replace(microsecond=0)
    windows = [
        {
            "name": f"w{i:02d}",
            "start": clock(first + dt.timedelta(seconds=gap * i)),
            "end": clock(first + dt.timedelta(seconds=gap * i + gap - 0.5)),
        }
        for i in range(plays)
    ]
    auth_section, auth_headers = bench_token()
    config = {
        "windows": windows,
        "relay": {"pre_roll_s": pre_roll, "tail_s": tail},
        "bulletin": {"length_s": length},
        # Authenticated load: without a token every request is a cheap 401 that never reads the as-run log.
        "auth": auth_section,
    }
    notify_path = work / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    sock.settimeout(60)
    cmd = [str(Path(sys.executable).parent / "playout")]
    with PulseSink() as pulse:
        run = DaemonRun(work, cmd, config, env={**pulse.env, "NOTIFY_SOCKET": str(notify_path)})
        t0 = time.monotonic()
        run.start()
        while "READY=1" not in sock.recv(4096).decode():
            pass
        ready_s = time.monotonic() - t0
        loaded = plays // 2
        requests = {"sent": 0, "ok": 0, "non200": 0, "failed": 0}
        statuses: dict[int, int] = {}

        def hammer(stop: threading.Event) -> None:
            # 100 requests a second at the as-run log while a bulletin is on air, as the admin token.
            request = urllib.request.Request(
                f"http://127.0.0.1:{run.port}/api/plays?limit=50", headers=auth_headers
            )
            next_at = time.monotonic()
            deadline = next_at + 120  # bounded even if the play never ends
            while not stop.is_set() and requests["sent"] < 12_000 and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(request, timeout=2) as r:
                        r.read()
                        status = r.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                    exc.close()
                except OSError:
                    status = None
                    requests["failed"] += 1
                if status is not None:
                    statuses[status] = statuses.get(status, 0) + 1
                    requests["ok" if status == 200 else "non200"] += 1
                requests["sent"] += 1
                next_at += 0.01
                stop.wait(max(0.0, next_at - time.monotonic()))

        run.wait_for(
            lambda rows: len(rows) >= loaded and rows[loaded - 1]["status"] != "playing", 600, "plays"
        )
        stop = threading.Event()
        load = threading.Thread(target=hammer, args=(stop,), daemon=True)
        load.start()
        run.wait_for(
            lambda rows: len(rows) > loaded and rows[loaded]["status"] != "playing", 120, "loaded play"
        )
        stop.set()
        load.join()
        rows = run.wait_for(
            lambda rows: len(rows) == plays and rows[-1]["status"] != "playing", 600, "all plays"
        )
        pid = run.proc.pid

        def cpu_ticks() -> int:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])

        ticks0, t_idle = cpu_ticks(), time.monotonic()
        time.sleep(idle_s)
        cpu = (cpu_ticks() - ticks0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t_idle) * 100
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024
        hwm = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024
        run.stop()
    sock.close()

    def t(row: dict, key: str) -> dt.datetime:
        return dt.datetime.fromisoformat(row[key])

    played = [r for r in rows if r["status"] == "played"]
    keyed = [abs((t(r, "relay_on_at") - t(r, "scheduled_at")).total_seconds()) * 1000 for r in played]
    audio = [
        abs((t(r, "audio_start_at") - t(r, "relay_on_at")).total_seconds() - pre_roll) * 1000 for r in played
    ]
    tails = [abs((t(r, "relay_off_at") - t(r, "audio_end_at")).total_seconds() - tail) * 1000 for r in played]
    line("plays aired", f"{len(played)}/{plays}", "", len(played) == plays)
    line(
        "relay ON vs scheduled: median / worst",
        f"{statistics.median(keyed):.0f} / {max(keyed):.0f} ms",
        "target worst < 50 ms",
        max(keyed) < 50,
    )
    line(
        "audio start vs relay ON + pre-roll: median / worst",
        f"{statistics.median(audio):.0f} / {max(audio):.0f} ms",
        "target worst < 50 ms",
        max(audio) < 50,
    )
    line(
        "relay OFF vs audio end + tail: median / worst",
        f"{statistics.median(tails):.0f} / {max(tails):.0f} ms",
    )
    for r in rows:
        if r["status"] != "played":  # say why, or a MISSED above is a riddle
            print(f"    {r['window']}: {r['status']}: {(r['error'] or '')[:120]}")
    line("underruns, all plays", f"{sum(r['underruns'] or 0 for r in played)}")
    line(
        f"underruns during the play under API load ({requests['sent']} req)",
        f"{rows[loaded]['underruns']}",
        "target 0",
        rows[loaded]["underruns"] == 0,
    )
    line(
        "API requests under load: 200 / non-200 / failed",
        f"{requests['ok']} / {requests['non200']} / {requests['failed']}",
        "" if not requests["non200"] else f"statuses {statuses}",
        requests["ok"] == requests["sent"],
    )
    line("daemon start to READY", f"{ready_s:.2f} s")
    line(f"idle CPU over {idle_s:.0f} s", f"{cpu:.2f} %", "target < 1 %", cpu < 1)
    line("idle RSS", f"{rss:.0f} MiB", "target <= 80 MiB", rss <= 80)
    line("  peak RSS over the run (renders included)", f"{hwm:.0f} MiB")
    shutil.rmtree(work, ignore_errors=True)


def bench_api(rows: int = 100_000, rate: int = 100, seconds: float = 10.0) -> None:
    """GET /api/plays over a year-sized as-run log at 100 requests/s; the daemon's memory with the web app."""
    import threading
    import urllib.request

    from tests.station import AUTH, DaemonRun

    print(f"\nAPI: GET /api/plays with {rows:,} as-run rows at {rate} requests/s for {seconds:.0f} s")
    work = Path(tempfile.mkdtemp(prefix="playout-bench-api-"))
    fill_asrun(work / "var" / "playout.db", rows)
    cmd = [str(Path(sys.executable).parent / "playout")]
    with DaemonRun(work, cmd, {"windows": []}) as run:
        run.wait_log("ready", 60)
        url = f"http://127.0.0.1:{run.port}/api/plays?limit=100"
        latencies: list[float] = []
        failures = [0]

        def client(offset: float, per_thread: int) -> None:
            # Open-loop pacing: each request has its slot, a slow answer does not slow the schedule down.
            t0 = time.perf_counter() + offset
            for i in range(per_thread):
                delay = t0 + i * (threads / rate) - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                began = time.perf_counter()
                try:
                    with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH), timeout=5) as r:
                        r.read()
                    latencies.append((time.perf_counter() - began) * 1000)
                except OSError:
                    failures[0] += 1

        threads = 4
        per_thread = int(rate * seconds / threads)
        workers = [
            threading.Thread(target=client, args=(k / rate, per_thread), daemon=True) for k in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        status = Path(f"/proc/{run.proc.pid}/status").read_text()
        rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1]) / 1024
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    line("requests answered / failed", f"{len(latencies)} / {failures[0]}")
    line("GET /api/plays p50", f"{p50:.1f} ms")
    line("GET /api/plays p99", f"{p99:.1f} ms", "target < 50 ms", p99 < 50)
    line("daemon RSS with the API and web app", f"{rss:.0f} MiB", "target <= 100 MiB", rss <= 100)
    shutil.rmtree(work, ignore_errors=True)


PEER_PYTHON = ROOT / ".venv-peer" / "bin" / "python"


def bench_normalize(repeats: int = 5) -> None:
    """Issues 6 and 13: exact-match score per category on both sets, ours against vietnormalizer."""
    from bench import normset

    _bench_normalize_set(
        normset.SET_PATH, "written alongside the normalizer (issue 6)", repeats, throughput=True
    )
    _bench_normalize_set(normset.REAL_SET_PATH, "quoted from real public pages (issue 13)", repeats)


def _bench_normalize_set(path: Path, what: str, repeats: int, *, throughput: bool = False) -> None:
    from bench import normset
    from tts.normalize import load_station_lexicon, to_spoken

    print(f"normalize: tests/tts/data/{path.name}, {what}; words compared (bench/normset.py)")
    load_station_lexicon(None)  # the shipped lexicon only: a station's own words are not the product
    cases = normset.load(path)
    texts = [c.text for c in cases]
    ours = [to_spoken(t) for t in texts]
    ours_s = float("inf")
    for _ in range(repeats if throughput else 0):
        t0 = time.perf_counter()
        for t in texts:
            to_spoken(t)
        ours_s = min(ours_s, time.perf_counter() - t0)

    peer, peer_s = None, None
    if PEER_PYTHON.exists():
        proc = subprocess.run(
            [str(PEER_PYTHON), str(Path(__file__).with_name("peer_normalizer.py")), str(repeats)],
            input=json.dumps(texts, ensure_ascii=False),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            result = json.loads(proc.stdout)
            peer, peer_s = result["outputs"], result["seconds"]
        else:
            print(f"  vietnormalizer failed: {proc.stderr.strip()[-300:]}")
    else:
        print("  vietnormalizer not installed (make bench installs it into .venv-peer)")

    ours_score = normset.score(cases, ours)
    peer_score = normset.score(cases, peer) if peer is not None else {}
    print(f"  {'category':<20} {'n':>4} {'ours':>8} {'vietnormalizer':>15}")
    ahead = True
    for category in dict.fromkeys(c.category for c in cases):
        right, n = ours_score[category]
        p_right = peer_score.get(category, (None, n))[0]
        peer_text = "-" if p_right is None else f"{100 * p_right / n:.1f} %"
        if p_right is not None and right < p_right:
            ahead = False
        print(f"  {category:<20} {n:>4} {100 * right / n:>6.1f} % {peer_text:>15}")
    total = len(cases)
    right = sum(r for r, _ in ours_score.values())
    line(
        "exact match, ours",
        f"{right}/{total} {100 * right / total:.1f} %",
        "target >= 97 %",
        right / total >= 0.97,
    )
    if peer is not None:
        p_right = sum(r for r, _ in peer_score.values())
        line("exact match, vietnormalizer 0.2.3", f"{p_right}/{total} {100 * p_right / total:.1f} %")
        line("at least level with the peer in every category", "yes" if ahead else "no", "", ahead)
    if throughput:
        line("throughput, ours", f"{total / ours_s:,.0f} sent/s")
        if peer_s:
            line(
                "throughput, vietnormalizer", f"{total / peer_s:,.0f} sent/s", f"ratio {peer_s / ours_s:.2f}"
            )
    misses = [(c, o) for c, o in zip(cases, ours, strict=True) if not normset.matches(c, o)]
    for case, spoken in misses:
        print(f"  miss [{case.category}] line {case.line}: {case.text}")
        print(f"       got: {spoken}\n  expected: {case.expected[0]}")
    print()


def bench_faults() -> None:
    from bench.faults import bench_faults as run

    run()


def bench_lean() -> None:
    from bench.lean import bench_lean as run

    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")  # relay-off off the Pi
    run()


def bench_fleet() -> None:
    from bench.fleet import bench_fleet as run

    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    run()


def main() -> None:
    # Failures are provoked on purpose here (a stalled service); their warnings are expected noise.
    logging.basicConfig(level=logging.ERROR)
    print(f"playout benchmarks on {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    only = set(sys.argv[1:])
    for name, fn in (
        ("render", bench_render),
        ("edge", bench_edge),
        ("daemon", bench_daemon),
        ("api", bench_api),
        ("normalize", bench_normalize),
        ("faults", bench_faults),
        ("lean", bench_lean),
        ("fleet", bench_fleet),
    ):
        if not only or name in only:
            fn()


if __name__ == "__main__":
    main()
