"""The approver's "nghe thử" at the centre: the bulletin read by the offline voice every station has.

Rendered by ``playout render`` in a child process (the station's own pipeline, fitted to its 3 minutes),
so a render that crashes or eats memory takes the child with it, never the centre; one render at a time
(the centre is a small machine too), each WAV kept under ``DIR/previews/<sha256>.wav`` and reused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playout.fleet import SHA256_HEX

logger = logging.getLogger(__name__)

#: A 3-minute bulletin renders in seconds with espeak-ng; a child that takes this long is stuck.
RENDER_TIMEOUT_S = 300
ENGINE = "espeak"


class PreviewRenderer:
    def __init__(self, folder: Path | str, *, engine: str = ENGINE, timeout_s: float = RENDER_TIMEOUT_S):
        self.folder = Path(folder)
        self.engine = engine
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def wav_for(self, bulletin: dict) -> Path | None:
        """The preview of ``bulletin`` (a desk row: ``sha256``, ``body``); None when it cannot be made."""
        sha = str(bulletin["sha256"])
        if not SHA256_HEX.match(sha):
            return None
        wav = self.folder / f"{sha}.wav"
        with self._lock:
            if wav.is_file():
                return wav
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.folder, prefix=".render-") as work:
                script = Path(work) / f"{sha[:16]}.txt"
                script.write_text(bulletin["body"], "utf-8")
                out = Path(work) / "out.wav"
                env = {k: v for k, v in os.environ.items() if k != "PLAYOUT_CONFIG"}
                try:
                    # cwd: an empty folder, so the render uses the embedded defaults, never a schedule.yaml
                    # lying next to the centre, and its caches stay inside the work folder.
                    done = subprocess.run(
                        [sys.executable, "-m", "playout", "render", "--engine", self.engine, str(script),
                         "-o", str(out)],
                        cwd=work, env=env, capture_output=True, text=True, timeout=self.timeout_s,
                    )  # fmt: skip
                except subprocess.TimeoutExpired:
                    logger.error("preview of %s: render timed out after %.0f s", sha[:16], self.timeout_s)
                    return None
                if done.returncode != 0 or not out.is_file():
                    logger.error(
                        "preview of %s failed (%d): %s", sha[:16], done.returncode, done.stderr[-500:]
                    )
                    return None
                os.replace(out, wav)
                with contextlib.suppress(OSError):
                    os.chmod(wav, 0o644)
            logger.info("preview of %s rendered (%d bytes)", sha[:16], wav.stat().st_size)
            return wav
