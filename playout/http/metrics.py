"""Prometheus metrics, read from the station's own state at each scrape (prometheus-client).

Nothing is counted twice or kept in memory: the as-run log is the source of truth, so the figures
survive restarts and agree with the reports.

    GET /metrics   (technician role; Prometheus sends the token as a bearer token; see playout.http.api)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from playout.service import StationService


class StationCollector:
    def __init__(self, service: StationService):
        self.service = service

    def collect(self):
        st = self.service
        relay = GaugeMetricFamily("playout_relay_on", "1 while the amplifier relay is keyed")
        relay.add_metric([], 1.0 if st.relay_on() else 0.0)
        yield relay
        slots = CounterMetricFamily("playout_slots", "Slot outcomes in the as-run log", labels=["status"])
        for status, count in st.slot_counts().items():
            slots.add_metric([status], count)
        yield slots
        underruns = CounterMetricFamily("playout_underruns", "Audio underruns reported during plays")
        underruns.add_metric([], st.underruns())
        yield underruns
        library = GaugeMetricFamily(
            "playout_bulletins", "Bulletins in the library by render status", labels=["status"]
        )
        for status, count in st.bulletin_counts().items():
            library.add_metric([status], count)
        yield library
        clock = GaugeMetricFamily("playout_clock_synchronized", "1 synchronised, 0 not, -1 unknown")
        clock.add_metric([], {True: 1.0, False: 0.0, None: -1.0}[st.clock_synced()])
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


def registry_for(service: StationService) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(service))
    return registry
