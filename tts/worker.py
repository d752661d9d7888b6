"""Rendering in a short-lived child process, so the process that holds the relay holds little else.

The daemon starts ``python -m tts.worker`` for each batch of bulletins to render, writes the batch (the
station's current settings and the jobs) as one JSON document on its stdin, and reads one JSON line per
event from its stdout.  The worker is niced, runs under an address-space limit (``tts.render_memory_mb``)
and is killed when a job takes longer than ``tts.render_timeout_s``: an out-of-memory, a hang in a
speech engine or a crash in a decoder ends the worker, never the station, and the daemon learns which
bulletin it was on.  The speech stack (the render's DSP, edge-tts/aiohttp, onnxruntime) is only ever
imported here.

Protocol (stdout, one JSON object per line):

    {"event": "begin", "id": SHA256}                       a job starts (the daemon times it)
    {"event": "done", "id": SHA256, "ok": true, "audio_path": ..., "summary": {...}}
    {"event": "done", "id": SHA256, "ok": false, "code": ..., "message": ..., "detail": ...,
     "no_space": bool}

The worker reads each script again from its file and refuses one whose content no longer hashes to the
bulletin it was asked for: what airs is what was approved.  State that must outlive a worker (the Edge
service's remembered outage) lives in a file (``tts.outages``).

    worker = RenderWorker(memory_mb=768, timeout_s=600)
    for outcome in worker.render_batch(config, [RenderJob(id, path, name)]):
        ...

``InProcessRendering`` answers the same calls in the caller's process (one-off commands, and tests that
exercise the library's bookkeeping without a child process).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from playout.notify import child_environment

if TYPE_CHECKING:
    from playout.config import StationConfig

logger = logging.getLogger(__name__)

#: The worker yields the CPU to the on-air audio callback and the API.
NICENESS = 10
#: Messages for the operator when the worker, not the script, failed.
DIED = "Bộ dựng âm thanh dừng đột ngột khi đang dựng bản tin này (hết bộ nhớ hoặc lỗi); sẽ thử lại"
TIMED_OUT = "Dựng bản tin quá {limit:.0f} giây nên đã bị dừng; sẽ thử lại"
OUT_OF_MEMORY = "Không đủ bộ nhớ để dựng bản tin này (giới hạn {limit} MB)"


@dataclass(frozen=True)
class RenderJob:
    """One bulletin to render: its content hash (the approval is pinned to it), its file, its name."""

    id: str
    path: str
    name: str


@dataclass
class RenderOutcome:
    id: str
    ok: bool
    audio_path: str | None = None
    summary: dict = field(default_factory=dict)
    code: str | None = None
    message: str | None = None
    detail: str = ""
    #: The disk was full: not the script's fault, tried again when space returns.
    no_space: bool = False
    #: The worker died or was stopped on this job (memory, time, crash): not necessarily the script's fault.
    worker_failed: bool = False

    @property
    def error(self) -> str:
        return f"[{self.code}] {self.message}"


def out_of_space(exc: BaseException | None) -> bool:
    """ENOSPC anywhere in the chain (a cache write, a temporary file of an engine, SQLite's 'full')."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc) or "No space left" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _batch(config: StationConfig, jobs: Iterable[RenderJob]) -> dict:
    return {
        # Accounts and tokens stay in the daemon: the worker needs none of them.
        "config": config.model_dump(mode="json", exclude={"auth"}),
        "jobs": [asdict(j) for j in jobs],
    }


# -- the daemon's side --------------------------------------------------------------------------------------


class RenderWorker:
    """Starts a worker process per batch and turns its answers (or its death) into outcomes."""

    def __init__(self, *, memory_mb: int, timeout_s: float, python: str | None = None):
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.python = python or sys.executable
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        #: The last worker's figures (pid, exit status, peak memory), for health and the benchmark.
        self.last: dict = {}

    def _start(self) -> subprocess.Popen:
        root = str(Path(__file__).resolve().parent.parent)
        env = child_environment(import_from=root)
        # One BLAS thread: the worker is niced and must leave the second core to the audio and the API.
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PLAYOUT_RENDER_MEMORY_MB"] = str(self.memory_mb)
        return subprocess.Popen(
            [self.python, "-m", "tts.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # its log lines go where the daemon's go (the journal)
            env=env,
            cwd=root,
            start_new_session=True,  # a Ctrl-C at the terminal is the daemon's to handle
        )

    def render_batch(
        self, config: StationConfig, jobs: list[RenderJob], stop: threading.Event | None = None
    ) -> Iterator[RenderOutcome]:
        """Render ``jobs`` in one worker; yields an outcome per job that finished or failed.

        Jobs the worker never reached (it died, or ``stop`` was set) yield nothing: they are still to do.
        """
        if not jobs:
            return
        with self._lock:  # one worker at a time: a Pi has the memory for one render, not two
            self.last = {}
            proc = self._proc = self._start()
            try:
                yield from self._converse(proc, config, jobs, stop)
            finally:
                self._finish(proc)
                self._proc = None

    def _converse(
        self,
        proc: subprocess.Popen,
        config: StationConfig,
        jobs: list[RenderJob],
        stop: threading.Event | None,
    ) -> Iterator[RenderOutcome]:
        try:
            proc.stdin.write(json.dumps(_batch(config, jobs)).encode("utf-8"))
            proc.stdin.close()
        except OSError as exc:  # it died at once (cannot even start Python)
            logger.error("render worker %d did not take its batch: %s", proc.pid, exc)
        pending = {j.id for j in jobs}
        current: str | None = None
        deadline = time.monotonic() + self.timeout_s
        buffer = b""
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        try:
            while pending:
                if stop is not None and stop.is_set():
                    logger.info("render worker %d stopped with the station", proc.pid)
                    self._kill(proc)
                    return
                if time.monotonic() > deadline:
                    logger.error(
                        "render worker %d: %s took longer than %.0fs; stopped",
                        proc.pid,
                        (current or "start-up")[:12],
                        self.timeout_s,
                    )
                    self._kill(proc)
                    if current is not None:
                        yield RenderOutcome(
                            current,
                            False,
                            code="RENDER_TIMEOUT",
                            message=TIMED_OUT.format(limit=self.timeout_s),
                            detail=f"killed after {self.timeout_s:.0f}s",
                            worker_failed=True,
                        )
                    return
                if not selector.select(timeout=0.2):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    status = proc.wait()
                    why = f"signal {-status}" if status < 0 else f"exit status {status}"
                    logger.error(
                        "render worker %d ended (%s) %s",
                        proc.pid,
                        why,
                        f"while rendering {current[:12]}" if current else "between jobs",
                    )
                    # On a job: that job failed.  Before any (it cannot start: a broken install, no memory
                    # for its imports): every job failed, so the bulletins say why instead of waiting.
                    for job_id in [current] if current is not None else sorted(pending):
                        yield RenderOutcome(
                            job_id,
                            False,
                            code="RENDER_WORKER_DIED",
                            message=DIED,
                            detail=why,
                            worker_failed=True,
                        )
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    event = _parse(line)
                    if event is None:
                        continue
                    if event.get("event") in ("started", "end"):
                        self.last.update({k: v for k, v in event.items() if k != "event"})
                        continue
                    if event.get("id") not in pending:
                        continue
                    if event.get("event") == "begin":
                        current = event["id"]
                        deadline = time.monotonic() + self.timeout_s
                    elif event.get("event") == "done":
                        pending.discard(event["id"])
                        current = None
                        deadline = time.monotonic() + self.timeout_s
                        yield _outcome(event)
            # Every job answered: read the worker's last words (its memory figures) until it exits.
            until = time.monotonic() + 5
            while time.monotonic() < until:
                if not selector.select(timeout=0.2):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
            for line in buffer.split(b"\n"):
                event = _parse(line) if line.strip() else None
                if event is not None and event.get("event") == "end":
                    self.last.update({k: v for k, v in event.items() if k != "event"})
        finally:
            selector.close()

    def _finish(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                proc.wait(timeout=5)  # it exits by itself after its last job
            except subprocess.TimeoutExpired:
                self._kill(proc)
        self.last.update(pid=proc.pid, returncode=proc.returncode)
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and any engine process it started
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.error("render worker %d does not die", proc.pid)

    def close(self) -> None:
        """Stop a worker in progress (the station is stopping); the jobs it had stay to do."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._kill(proc)


def _parse(line: bytes) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        logger.warning("render worker said something unexpected: %r", line[:200])
        return None
    return event if isinstance(event, dict) else None


def _outcome(event: dict) -> RenderOutcome:
    known = {k: event[k] for k in RenderOutcome.__dataclass_fields__ if k in event}
    return RenderOutcome(**known)


class InProcessRendering:
    """The same answers as ``RenderWorker``, rendered in this process (one-off commands, tests)."""

    def __init__(self):
        self.renderers: list = []

    def render_batch(
        self, config: StationConfig, jobs: list[RenderJob], stop: threading.Event | None = None
    ) -> Iterator[RenderOutcome]:
        from tts.render import Renderer

        renderer = Renderer(config)
        self.renderers.append(renderer)
        try:
            for job in jobs:
                if stop is not None and stop.is_set():
                    return
                yield render_one(renderer, job)
        finally:
            renderer.close()

    def close(self) -> None:
        pass


# -- the worker's side --------------------------------------------------------------------------------------


def render_one(renderer, job: RenderJob) -> RenderOutcome:
    """Read the script again, check it is the approved content, render it; every failure is an outcome."""
    from playout.errors import PlayoutError, ScriptRejected
    from playout.intake import MAX_SCRIPT_BYTES, parse_script

    try:
        try:
            with open(job.path, "rb") as fh:
                data = fh.read(MAX_SCRIPT_BYTES + 1)
        except OSError as exc:
            raise ScriptRejected(
                f"Không đọc được tệp {job.name}: {exc.strerror or exc}.",
                code="SCRIPT_UNREADABLE",
                detail=str(exc),
            ) from None
        # Parsed under the job's name: a web-approved version is stored under its hash, and the suffix
        # of the name it was sent with says how to read it.
        script = parse_script(data, job.name)
        if script.content_sha256 != job.id:
            raise ScriptRejected(
                "Nội dung tệp kịch bản đã thay đổi so với bản được duyệt; không dựng bản này",
                code="SCRIPT_CHANGED",
                detail=f"{job.path} hashes to {script.content_sha256[:12]}, approved {job.id[:12]}",
            )
        result = renderer.render(script)
    except MemoryError:
        limit = os.environ.get("PLAYOUT_RENDER_MEMORY_MB", "?")
        logger.error("%s: out of memory (limit %s MB)", job.name, limit)
        return RenderOutcome(
            job.id, False, code="RENDER_OUT_OF_MEMORY", message=OUT_OF_MEMORY.format(limit=limit)
        )
    except Exception as exc:  # noqa: BLE001 - every failure is reported to the daemon, none crashes it
        if isinstance(exc, PlayoutError):
            return RenderOutcome(
                job.id,
                False,
                code=exc.code,
                message=exc.message,
                detail=exc.detail,
                no_space=out_of_space(exc),
            )
        logger.exception("%s: render crashed", job.name)
        return RenderOutcome(
            job.id,
            False,
            code="RENDER_CRASHED",
            message=f"Lỗi khi dựng bản tin: {type(exc).__name__}",
            detail=f"{type(exc).__name__}: {exc}",
            no_space=out_of_space(exc),
        )
    return RenderOutcome(job.id, True, audio_path=str(result.path), summary=result.summary)


def _limit_self(memory_mb: int) -> None:
    import resource

    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    limit = memory_mb * 2**20
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ValueError, OSError) as exc:
        logger.warning("cannot limit the render worker's memory to %d MB: %s", memory_mb, exc)


def main() -> int:
    # The protocol gets its own copy of stdout; anything a library prints lands in the log instead.
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(levelname)s render-worker[{os.getpid()}] %(name)s: %(message)s",
    )
    _limit_self(int(os.environ.get("PLAYOUT_RENDER_MEMORY_MB", "0") or 0) or 1024)
    batch = json.load(sys.stdin)

    from playout.config import StationConfig
    from tts import outages
    from tts.normalize import load_station_lexicon

    config = StationConfig.model_validate(batch["config"])
    outages.use_file(config.paths.data / outages.FILE_NAME)
    load_station_lexicon(config.paths.lexicon)
    from tts.render import Renderer  # the speech stack, loaded under the limits set above

    renderer = Renderer(config)
    started = {"event": "started", "pid": os.getpid(), "nice": os.nice(0), **_limits()}
    started["loaded_vm_mb"] = _memory().get("vm_mb")
    protocol.write(json.dumps(started) + "\n")
    try:
        for raw in batch["jobs"]:
            job = RenderJob(**raw)
            protocol.write(json.dumps({"event": "begin", "id": job.id}) + "\n")
            outcome = render_one(renderer, job)
            protocol.write(json.dumps({"event": "done", **asdict(outcome)}, ensure_ascii=False) + "\n")
    finally:
        renderer.close()
    protocol.write(json.dumps({"event": "end", **_memory()}) + "\n")
    return 0


def _limits() -> dict:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return {"memory_limit_mb": None if soft == resource.RLIM_INFINITY else soft // 2**20}


def _memory() -> dict:
    """Peak figures of this worker (MiB), for the daemon's log and the benchmark."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            names = {"VmPeak": "peak_vm_mb", "VmHWM": "peak_rss_mb", "VmSize": "vm_mb"}
            if key in names:
                out[names[key]] = round(int(value.split()[0]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return out


if __name__ == "__main__":
    sys.exit(main())
