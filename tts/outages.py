"""Remembered outages of an online speech service, shared by the render worker and the daemon.

When the Edge service fails, renders skip it for ``tts.edge_outage_s`` instead of waiting for its
timeouts once per bulletin.  Renders run in short-lived worker processes, so the memory cannot live in
one process: it is a small JSON file in the data folder (``edge-outage.json``), written atomically,
read by every worker at its next request and by the daemon for health ("is Edge usable now?").

Times in the file are wall-clock seconds (a monotonic clock does not survive a process).  A clock step
cannot make an outage last longer than it was recorded for: an entry further ahead than its own length
is treated as expired.

    memory = OutageMemory(Path("var/edge-outage.json"))
    memory.record(url, 300)
    memory.remaining(url)    # 299.9…, 0.0 once it is over
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from playout.atomic import atomic_write_text

logger = logging.getLogger(__name__)

#: Where the station keeps the file, relative to ``paths.data``.
FILE_NAME = "edge-outage.json"


class OutageMemory:
    """Outages by service address; in memory only when ``path`` is None (tests, one-off commands)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._entries: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, float]]:
        if self.path is None:
            return self._entries
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # A damaged memory only costs one more wait for the service: never a reason to fail a render.
            logger.warning("outage memory %s unreadable (%s): forgetting it", self.path, exc)
            return {}
        out = {}
        for url, entry in raw.items() if isinstance(raw, dict) else ():
            try:
                out[str(url)] = {"until": float(entry["until"]), "for_s": float(entry["for_s"])}
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def remaining(self, url: str | None = None) -> float:
        """Seconds left of the outage remembered for ``url`` (None: any address; 0.0: none).

        The daemon asks without an address: it does not load the client that knows the default one, and
        a station only ever talks to one service.
        """
        with self._lock:
            entries = self._load()
        now = time.time()
        left = 0.0
        for where, entry in entries.items():
            if url is not None and where != url:
                continue
            ahead = entry["until"] - now
            if 0 < ahead <= entry["for_s"] + 1:  # else over, or recorded before the clock stepped back
                left = max(left, ahead)
        return left

    def record(self, url: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            entries = self._load()
            entries[url] = {"until": time.time() + seconds, "for_s": float(seconds)}
            self._store(entries)

    def clear(self) -> None:
        with self._lock:
            self._store({})

    def _store(self, entries: dict[str, dict[str, float]]) -> None:
        if self.path is None:
            self._entries = entries
            return
        try:
            atomic_write_text(self.path, json.dumps(entries, sort_keys=True))
        except OSError as exc:  # a full disk: the next worker waits once more for the service, no worse
            logger.warning("could not store the outage memory in %s: %s", self.path, exc)


#: The memory in force in this process; the render worker points it at the station's file.
current = OutageMemory()


def use_file(path: Path | None) -> OutageMemory:
    global current
    if current.path != path:
        current = OutageMemory(path)
    return current
