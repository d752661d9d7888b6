"""The station's link to its centre, as one part of the station's lifecycle (``fleet:`` in schedule.yaml).

One thread does the work, so nothing here can hold the on-air path:

* **Content** (playout.fleet.tuf_client + playout.fleet.sync): a TUF refresh every ``fleet.refresh_s``
  seconds, and at once when the MQTT doorbell rings; what verifies is merged into the station's own
  rotation (priority and emergency into ``approved/``, ordinary ones to the ward's desk). Every second,
  bulletins past their ``air_until`` are taken out, so nothing airs late after a day offline.
* **Status** (playout.fleet.mqtt.StationLink): the retained status (relay, now playing, last play, clock,
  disk, version, fleet state) on change and as a heartbeat; the broker publishes the last will if the
  station dies.
* **As-run** (playout.fleet.outbox): settled rows to the centre after each play and every minute.

The doorbell is advisory: it only makes the refresh happen sooner. Nothing received over MQTT alone can
make the station air; only what the TUF client verified does.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: As-run rows are sent at least this often (and right after a play), and sooner after a failed send.
OUTBOX_EVERY_S = 60.0
OUTBOX_RETRY_S = 10.0
#: How often the loop looks at expiry, status changes and the outbox.
TICK_S = 1.0
#: How often bulletins past their air_until are taken out, whatever the network is doing.
EXPIRE_EVERY_S = 1.0
#: At start, how long the station waits for the centre before airing its verified cache.
FIRST_REFRESH_S = 3.0


def _read_secret(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text("utf-8").strip() or None
    except OSError as exc:
        logger.error("fleet: cannot read %s: %s", path, exc)
        return None


def _free_bytes(path: Any) -> int | None:
    """Free space where the station keeps its log and audio: a full disk is what silences a ward."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def station_link(fleet: Any, *, on_doorbell, disk_path: str | None = None, **kw: Any):
    """The MQTT link ``fleet.broker`` describes (not started): its account, and TLS with its CA if set."""
    from playout.fleet.mqtt import LinkTLS, StationLink

    broker = fleet.broker
    # Back from an outage, a station should hear the next doorbell soon: retry within 20 s.
    kw.setdefault("reconnect_max_s", 20.0)
    return StationLink(
        broker.username or fleet.station_id,
        broker.host,
        broker.port,
        _read_secret(broker.password_file) or "",
        on_doorbell=on_doorbell,
        tls=LinkTLS(ca_file=broker.ca_file) if broker.tls else None,
        disk_path=disk_path,
        **kw,
    )


class FleetPart:
    """Started by the station when ``fleet:`` is set; ``close()`` stops it."""

    def __init__(self, station: Any):
        from playout.fleet.outbox import AsRunOutbox
        from playout.fleet.sync import FleetSync
        from playout.fleet.tuf_client import FleetClient
        from playout.service import StationService

        self.station = station
        cfg = station.config
        fleet = cfg.fleet
        self.settings = fleet
        base = fleet.centre_url.rstrip("/")
        data = cfg.paths.data / "fleet"
        data.mkdir(parents=True, exist_ok=True)
        self.client = FleetClient(f"{base}/tuf", fleet.root, cfg.paths.data, fleet.station_id)
        service = StationService(station)
        self.sync = FleetSync(
            client=self.client,
            approved_dir=cfg.paths.bulletins / "approved",
            state_dir=data,
            tz=station.tz,
            submit=lambda text, name, who: service.submit(text, name, who),
            withdraw=lambda sha: service.decide("withdraw", sha, "trung-tam"),
            wake=station.wake_library,
            alarm=lambda kind, message, detail: station.alarms.raise_alarm(kind, message, detail),
        )
        self.outbox = AsRunOutbox(
            station.log, data, fleet.station_id, f"{base}/api/fleet/asrun", _read_secret(fleet.token_file)
        )
        self.link = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_row: int | None = None
        self.doorbells = 0
        if fleet.broker is not None:
            self.link = station_link(fleet, on_doorbell=self._doorbell, disk_path=str(cfg.paths.data))
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        # Its own thread: the loop above waits on the network (a refresh or a send can hang for tens of
        # seconds on a 2G link), and a bulletin must leave the rotation at its air_until, not after.
        self._expiry = threading.Thread(target=self._expire_loop, name="fleet-expiry", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        # Before the planner looks at an open window, give the centre a moment to say what changed while
        # the station was off (a bulletin withdrawn then must not air from the cache on the way up). Off
        # line, the refresh returns the last verified set at once and that airs; a link that hangs costs
        # FIRST_REFRESH_S at most, then the cache airs while the refresh goes on in the background.
        self._first = threading.Thread(target=self.sync.refresh, name="fleet-first", daemon=True)
        self._first.start()
        self._first.join(FIRST_REFRESH_S)
        if self._first.is_alive():
            logger.warning(
                "fleet: the centre did not answer within %.0f s at start: airing the verified cache",
                FIRST_REFRESH_S,
            )
        else:
            self.station.library.scan()  # what the refresh removed is out of the rotation before any slot
        if self.link is not None:
            self.link.start()
        self._thread.start()
        self._expiry.start()
        logger.info("fleet: station %s of %s", self.settings.station_id, self.settings.centre_url)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        if self._expiry.is_alive():
            self._expiry.join(timeout=5)
        if self.link is not None:
            self.link.close()

    def _doorbell(self, ring: Any) -> None:
        # Advisory: the refresh below decides, from signed metadata, whether anything new exists.
        self.doorbells += 1
        logger.info("fleet: doorbell (%s): refreshing now", getattr(ring, "level", "?"))
        self._wake.set()

    def refresh_now(self) -> None:
        self._wake.set()

    # -- the loops ---------------------------------------------------------------------------------------

    def _expire_loop(self) -> None:
        while not self._stop.wait(EXPIRE_EVERY_S):
            try:
                self.sync.expire()
            except Exception:  # noqa: BLE001 - tried again next second; the station keeps airing
                logger.exception("fleet expiry")

    def _run(self) -> None:
        self._first.join()
        next_refresh = time.monotonic() + self.settings.refresh_s
        next_outbox = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if self._wake.is_set() or now >= next_refresh:
                    self._wake.clear()
                    self.sync.refresh()
                    next_refresh = time.monotonic() + self.settings.refresh_s
                last = self.station.log.last()
                row = last["id"] if last and last.get("status") != "playing" else None
                if row != self._last_row or now >= next_outbox:
                    self._last_row = row
                    self.outbox.send_pending()
                    # A failed send is tried again soon (a flaky link), a quiet one only every minute.
                    wait = OUTBOX_EVERY_S if self.outbox.state.get("ok") else OUTBOX_RETRY_S
                    next_outbox = time.monotonic() + wait
                if self.link is not None:
                    self.link.publish_status(self.status_fields())
            except Exception:  # noqa: BLE001 - the station keeps airing whatever the link does
                logger.exception("fleet loop")
            self._wake.wait(TICK_S)

    def status_fields(self) -> dict[str, Any]:
        st = self.station
        last = st.log.last()
        current = st.now_playing
        clock = st.clock.check().to_dict() if st.clock else None
        return {
            "relay": "on" if st.relay.is_on else "off",
            "now_playing": None if current is None else current.bulletin.title,
            "last_play": None
            if last is None
            else {k: last.get(k) for k in ("scheduled_at", "status", "title", "relay_on_at")},
            "clock": None if clock is None else clock.get("state"),
            "disk_free_bytes": _free_bytes(st.config.paths.data),
            "fleet": self.sync.state.get("alarm") or self.client.status.state,
            "outbox_backlog": self.outbox.backlog(),
        }

    def health(self) -> dict[str, Any]:
        verified = self.client.status.last_refresh
        return {
            "station_id": self.settings.station_id,
            # verified_at: when the centre's metadata last verified end to end (content.last_refresh is
            # the last attempt, which an offline station also makes).
            "content": {
                **self.client.status.to_dict(),
                **self.sync.state,
                "verified_at": verified.astimezone(self.station.tz).isoformat(timespec="seconds")
                if verified
                else None,
            },
            "link": None if self.link is None else dataclasses.asdict(self.link.state),
            "outbox": {"acked": self.outbox.acked, "backlog": self.outbox.backlog(), **self.outbox.state},
            "doorbells": self.doorbells,
        }
