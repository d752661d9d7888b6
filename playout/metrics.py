"""Prometheus metrics, read from the station's own state at each scrape (prometheus-client).

Nothing is counted twice or kept in memory: the as-run log is the source of truth, so the figures
survive restarts and agree with the reports.

    GET /metrics   (technician role; Prometheus sends the token as a bearer token)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from playout.asrun import OUTCOMES

if TYPE_CHECKING:
    from playout.daemon import Station


class StationCollector:
    def __init__(self, station: Station):
        self.station = station

    def collect(self):
        st = self.station
        relay = GaugeMetricFamily("playout_relay_on", "1 while the amplifier relay is keyed")
        relay.add_metric([], 1.0 if st.relay.is_on else 0.0)
        yield relay
        slots = CounterMetricFamily("playout_slots", "Slot outcomes in the as-run log", labels=["status"])
        counts = st.log.status_counts()
        for status in OUTCOMES:
            slots.add_metric([status], counts.get(status, 0))
        yield slots
        underruns = CounterMetricFamily("playout_underruns", "Audio underruns reported during plays")
        underruns.add_metric([], st.log.total_underruns())
        yield underruns
        library = GaugeMetricFamily(
            "playout_bulletins", "Bulletins in the library by render status", labels=["status"]
        )
        by_status: dict[str, int] = {}
        for b in st.library.bulletins():
            by_status[b.status] = by_status.get(b.status, 0) + 1
        for status in ("pending", "rendering", "ready", "failed"):
            library.add_metric([status], by_status.get(status, 0))
        yield library
        clock = GaugeMetricFamily("playout_clock_synchronized", "1 synchronised, 0 not, -1 unknown")
        clock.add_metric([], {True: 1.0, False: 0.0, None: -1.0}[st.clock_synced])
        yield clock
        nxt = st.next_slot()
        if nxt is not None:
            g = GaugeMetricFamily("playout_next_slot_timestamp_seconds", "When the next window starts")
            g.add_metric([], nxt[1].timestamp())
            yield g
        problems = st.problems()
        healthy = GaugeMetricFamily(
            "playout_healthy", "1 while the long-lived parts are alive and the on-air path is not stuck"
        )
        healthy.add_metric([], 0.0 if any(p["vital"] for p in problems) else 1.0)
        yield healthy
        problem = GaugeMetricFamily(
            "playout_problem", "1 for each problem the station reports (health: problems)", labels=["code"]
        )
        for p in problems:
            problem.add_metric([p["code"]], 1.0)
        yield problem


def registry_for(station: Station) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(station))
    return registry
