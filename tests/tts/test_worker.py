"""The render worker: a real child process per batch, real espeak-ng, the real edge-tts client against the
local fake service.  What matters is what the daemon sees: every job answered or clearly failed, and a
worker that dies, hangs or runs out of memory costs one job, never the caller."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from playout.intake import read_script
from tests.fake_edge import FakeEdge
from tts import outages
from tts.engines import edge as edge_engine
from tts.readiness import engines_ready
from tts.worker import RenderJob, RenderWorker

BULLETIN = {"length_s": 12, "lead_in": "", "outro": ""}


def job(path) -> RenderJob:
    return RenderJob(read_script(path).content_sha256, str(path), path.name)


@pytest.fixture
def fake(monkeypatch):
    started = []

    def start(mode="ok"):
        f = FakeEdge(mode).__enter__()
        started.append(f)
        monkeypatch.setenv(edge_engine.URL_ENV, f.url)  # the worker inherits it
        return f

    yield start
    for f in started:
        f.__exit__(None, None, None)


def test_a_batch_renders_in_a_niced_memory_limited_child(make_config, write_script):
    config = make_config(bulletin=BULLETIN)
    a = write_script("a.txt", "Bà con chú ý. Chiều nay phun thuốc muỗi. Xin cảm ơn.")
    b = write_script("b.txt", "Thông báo lịch tiêm chủng tháng 12. Xin cảm ơn.")
    worker = RenderWorker(memory_mb=700, timeout_s=120)
    outcomes = list(worker.render_batch(config, [job(a), job(b)]))
    assert [o.ok for o in outcomes] == [True, True], outcomes
    for o in outcomes:
        assert os.path.isfile(o.audio_path) and o.summary["duration_s"] == pytest.approx(12.0, abs=0.01)
    # The child lowered its priority, ran under the address-space limit, and reported its peak memory.
    assert worker.last["pid"] != os.getpid() and worker.last["returncode"] == 0
    assert worker.last["nice"] >= 10 and worker.last["memory_limit_mb"] == 700
    assert 0 < worker.last["peak_rss_mb"] <= 700


def test_the_worker_renders_only_the_approved_content(make_config, write_script):
    config = make_config(bulletin=BULLETIN)
    path = write_script("a.txt", "Bản đã duyệt. Xin cảm ơn.")
    approved = job(path)
    path.write_text("Bản đã bị sửa sau khi duyệt. Xin cảm ơn.", "utf-8")
    gone = RenderJob("0" * 64, str(path.parent / "missing.txt"), "missing.txt")
    by_id = {
        o.id: o for o in RenderWorker(memory_mb=700, timeout_s=120).render_batch(config, [approved, gone])
    }
    assert by_id[approved.id].code == "SCRIPT_CHANGED" and not by_id[approved.id].ok
    assert by_id[gone.id].code == "SCRIPT_UNREADABLE"
    assert not list((config.cache_dir).glob("**/*.wav"))  # nothing was rendered from the edited file


def test_a_worker_killed_mid_render_fails_that_job_only(make_config, write_script, fake):
    service = fake("stall")  # the worker waits on the service: a render in progress, for as long as we like
    config = make_config(
        bulletin=BULLETIN,
        tts={"engines": ["edge", "espeak"], "edge_attempt_timeout_s": 300, "edge_retries": 0},
    )
    first = write_script("a.txt", "Tin thứ nhất. Xin cảm ơn.")
    second = write_script("b.txt", "Tin thứ hai. Xin cảm ơn.")
    worker = RenderWorker(memory_mb=700, timeout_s=120)

    def kill_when_busy():
        deadline = time.monotonic() + 60
        while not service.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(worker._proc.pid, signal.SIGKILL)  # what the kernel's OOM killer does

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    started = time.monotonic()
    outcomes = list(worker.render_batch(config, [job(first), job(second)]))
    killer.join()
    assert time.monotonic() - started < 60
    (died,) = outcomes  # the second job was never reached: it is still to do, not failed
    assert died.id == job(first).id and not died.ok and died.worker_failed
    assert died.code == "RENDER_WORKER_DIED" and "signal 9" in died.detail
    assert "Bộ dựng âm thanh" in died.message


def test_a_hung_render_is_stopped_at_the_time_limit(make_config, write_script, fake):
    fake("stall")
    config = make_config(
        bulletin=BULLETIN,
        tts={"engines": ["edge", "espeak"], "edge_attempt_timeout_s": 300, "edge_retries": 0},
    )
    path = write_script("a.txt", "Tin treo. Xin cảm ơn.")
    worker = RenderWorker(memory_mb=700, timeout_s=4)
    started = time.monotonic()
    (outcome,) = worker.render_batch(config, [job(path)])
    took = time.monotonic() - started
    assert outcome.code == "RENDER_TIMEOUT" and outcome.worker_failed and "4 giây" in outcome.message
    assert 4 <= took < 20
    assert worker.last["returncode"] == -signal.SIGKILL


def test_a_worker_out_of_memory_is_a_clear_failure(make_config, write_script):
    path = write_script("a.txt", "Bà con chú ý. Xin cảm ơn.")
    # What the worker needs with its libraries loaded, measured here; then a 30-minute bulletin (the
    # longest the settings allow) with only 30 MB more than that: the render must fail and say why.
    probe = RenderWorker(memory_mb=700, timeout_s=120)
    list(probe.render_batch(make_config(bulletin=BULLETIN), [job(path)]))
    tight = int(probe.last["loaded_vm_mb"]) + 30
    config = make_config(bulletin={**BULLETIN, "length_s": 1800})
    worker = RenderWorker(memory_mb=tight, timeout_s=120)
    (outcome,) = worker.render_batch(config, [job(path)])
    assert not outcome.ok, outcome
    assert outcome.code == "RENDER_OUT_OF_MEMORY" and f"{tight} MB" in outcome.message
    assert worker.last["returncode"] == 0  # the worker itself survived to report it


def test_an_edge_outage_is_remembered_across_workers(make_config, write_script, fake):
    service = fake("refuse")
    config = make_config(bulletin=BULLETIN, tts={"engines": ["edge", "espeak"], "edge_attempt_timeout_s": 5})
    first = write_script("a.txt", "Tin thứ nhất. Xin cảm ơn.")
    second = write_script("b.txt", "Tin thứ hai. Xin cảm ơn.")
    assert engines_ready(config.tts, config.paths.data)["edge"] is True
    (a,) = RenderWorker(memory_mb=700, timeout_s=120).render_batch(config, [job(first)])
    assert a.ok and a.summary["engine"] == "espeak" and a.summary["fallback"]
    # The daemon, which never loads the engine, sees the outage in the file the worker left.
    assert outages.OutageMemory(config.paths.data / outages.FILE_NAME).remaining() > 250
    assert engines_ready(config.tts, config.paths.data) == {"edge": False, "espeak": True}
    service.mode = "ok"  # the service is back, but the station waits out the outage it recorded
    (b,) = RenderWorker(memory_mb=700, timeout_s=120).render_batch(config, [job(second)])
    assert b.ok and b.summary["engine"] == "espeak" and service.connections == 0
