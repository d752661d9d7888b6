"""Test doubles for the render seam (``Station(renderer=...)``), in the spirit of Mopidy's dummy audio.

``InstantRendering`` answers a batch at once, without a worker process or a speech engine: each bulletin
gets a valid air-ready WAV (a quiet 440 Hz tone of exactly ``bulletin.length_s``) in the real render
cache, under the key the real renderer would use, with a summary the on-air checks accept.  Tests of the
API, the web page and the daemon's bookkeeping use it so they stop waiting for real renders; the render
pipeline itself keeps its real-part tests (tests/tts, tests/playout/test_render_worker.py).

It injects the faults a test asks for, by script file name:

    rendering = InstantRendering(refuse={"bad.md": "SCRIPT_TOO_LONG"}, die={"oom.md"})

``refuse``: the job fails as a script would (code and a Vietnamese message); ``die``: the job fails as a
worker killed mid-render does (``worker_failed``, retried by the library).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading

import numpy as np
import soundfile as sf

from playout.intake import MAX_SCRIPT_BYTES, parse_script
from tts.cache import RenderCache, cache_key
from tts.request import render_request, spoken_script
from tts.worker import DIED, RenderOutcome


class InstantRendering:
    def __init__(self, *, refuse: dict[str, str] | None = None, die: set[str] | frozenset = frozenset()):
        self.refuse = dict(refuse or {})
        self.die = set(die)
        #: Every job asked for, in order (file names).
        self.jobs: list[str] = []
        self.last: dict = {"pid": None}

    def render_batch(self, config, jobs, stop: threading.Event | None = None):
        for job in jobs:
            if stop is not None and stop.is_set():
                return
            self.jobs.append(job.name)
            if job.name in self.die:
                died = {"code": "RENDER_WORKER_DIED", "message": DIED, "detail": "signal 9"}
                yield RenderOutcome(job.id, False, worker_failed=True, **died)
                continue
            if job.name in self.refuse:
                code = self.refuse[job.name]
                yield RenderOutcome(job.id, False, code=code, message=f"Bản tin bị từ chối ({code})")
                continue
            yield self._render(config, job)

    def _render(self, config, job) -> RenderOutcome:
        with open(job.path, "rb") as fh:
            script = parse_script(fh.read(MAX_SCRIPT_BYTES + 1), job.name)
        chain = list(config.tts.engines)
        key = cache_key(render_request(config, chain, script, spoken_script(script, config)))
        b = config.bulletin
        frames = round(b.length_s * b.sample_rate)
        t = np.arange(frames) / b.sample_rate
        tone = (0.1 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
        out = io.BytesIO()
        sf.write(out, tone, b.sample_rate, format="WAV", subtype="PCM_16")
        wav = out.getvalue()
        summary = {
            "duration_s": float(b.length_s),
            "speech_s": float(b.length_s),
            "pauses_s": 0.0,
            "fill_s": 0.0,
            "engine": "instant",
            "voice": "tone",
            "rate": 0,
            "lufs": float(b.loudness_lufs),
            "true_peak_dbtp": -20.0,
            "longest_silence_s": 0.0,
            "frames": frames,
            "sample_rate": b.sample_rate,
            "sentences": 1,
            "syllables": 1,
            "warnings": [],
            "script": script.name,
            "title": script.display_title,
            "content_sha256": script.content_sha256,
            "audio_sha256": hashlib.sha256(wav).hexdigest(),
            "rendered_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cache_key": key,
            "fallback": False,
        }
        path = RenderCache(config.cache_dir).put(key, wav, summary)
        return RenderOutcome(job.id, True, audio_path=str(path), summary={**summary, "cached": False})

    def close(self) -> None:
        pass
