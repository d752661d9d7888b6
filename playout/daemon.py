"""Kept for old imports: the daemon is now three modules.

    playout.station   Station: parts started in order and stopped in reverse, the main loop, health
    playout.onair     OnAir: the on-air sequence (relay on → pre-roll → play → tail → relay off)
    playout.planner   Planner and Rotation: cron jobs, catch-up, slots, the 14-day schedule

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
