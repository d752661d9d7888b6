"""Kept for old imports: the station now lives in ``playout.station`` (lifecycle and main loop).

``from playout.daemon import Station`` keeps working.  Setting a constant here (a test's
``monkeypatch.setattr("playout.daemon.X", ...)``) changes nothing: patch it in the module that uses it.
"""

from __future__ import annotations

from playout.onair import NowPlaying, _Interrupted
from playout.planner import EMERGENCY_WINDOW, NOTHING_READY, SLOT_WAIT_S
from playout.station import MAX_API_CONNECTIONS, STUCK_MARGIN_S, Station

__all__ = [
    "EMERGENCY_WINDOW",
    "MAX_API_CONNECTIONS",
    "NOTHING_READY",
    "SLOT_WAIT_S",
    "STUCK_MARGIN_S",
    "NowPlaying",
    "Station",
    "_Interrupted",
]
