"""``playout centre``: a province or district content centre, in one folder.

    DIR/centre.yaml        stations (id -> token hash), approvers (name -> role on the desk), broker address
    DIR/repo/              the TUF repository, served as static files (metadata/, targets/)
    DIR/keys/              private keys, 0600 in a 0700 folder, never served: root, targets, snapshot,
                           timestamp, and the approvers' keys the centre holds for them (see below)
    DIR/broker/            Mosquitto's config, password file and ACL (playout.fleet.mqtt.Broker)
    DIR/centre.db          every station's as-run rows (playout.fleet.centre_store)
    DIR/stations/ID/       what to install on station ID: fleet-root.json, token, mqtt.pw (0600), fleet.yaml

Keys a ward can live with: the root key signs rarely (a new station key set, a rotation) and can be moved
off the machine after ``init``; the online keys (targets, snapshot, timestamp) stay, so the centre can
publish and renew the timestamp unattended. Each approver has a delegated role of their own; here the
centre holds the approver's key and signs for them when they publish on the desk with their own login (a
signing service with per-approver authorisation, each signature in the audit log). Revoking an approver
removes the delegation: every bulletin they signed stops airing at the stations' next refresh.
``playout centre approver DIR NAME --rotate`` gives them a new key.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from playout.accounts import hash_token
from playout.atomic import atomic_write_text

logger = logging.getLogger(__name__)


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)


class Centre:
    """The folder of one centre and what can be done with it."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.config_path = self.folder / "centre.yaml"
        self.repo_dir = self.folder / "repo"
        self.keys_dir = self.folder / "keys"
        self.broker_dir = self.folder / "broker"
        self._broker = None
        self._link = None

    # -- settings ----------------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.config_path.read_text("utf-8")) or {}
        except FileNotFoundError:
            data = {}
        data.setdefault("stations", {})
        data.setdefault("approvers", {})
        data.setdefault("broker", None)
        return data

    def _save(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.config_path, yaml.safe_dump(data, allow_unicode=True, sort_keys=True))

    def repository(self):
        from playout.fleet.tuf_repo import CentreRepository

        return CentreRepository(self.repo_dir, keys_dir=self.keys_dir)

    # -- set-up --------------------------------------------------------------------------------------------

    def init(self, *, broker_host: str | None = None, broker_port: int = 1883) -> Path:
        """A new centre: keys, the first TUF root, and (with a broker address) Mosquitto's files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        root = self.repository().init()
        data = self.settings()
        if broker_host:
            from playout.fleet.mqtt import Broker

            password = Broker(self.broker_dir, host=broker_host, port=broker_port).add_centre()
            _private(self.broker_dir / "centre.pw", password + "\n")
            data["broker"] = {"host": broker_host, "port": broker_port}
        self._save(data)
        logger.info("centre initialised in %s (root %s)", self.folder, root)
        return root

    def broker(self):
        """The centre's Mosquitto (one object per Centre, so accounts added while it runs reload it)."""
        from playout.fleet.mqtt import Broker

        b = self.settings()["broker"]
        if not b:
            return None
        if self._broker is None:
            self._broker = Broker(self.broker_dir, host=b["host"], port=b["port"])
        return self._broker

    def add_station(self, station_id: str, *, centre_url: str) -> Path:
        """Register a station; writes what to install on it under stations/ID/ and returns that folder."""
        from playout.fleet import STATION_ID

        if not STATION_ID.match(station_id):
            raise ValueError(f"mã trạm không hợp lệ: {station_id!r}")
        out = self.folder / "stations" / station_id
        out.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        _private(out / "token", token + "\n")
        data = self.settings()
        data["stations"][station_id] = hash_token(token)
        fleet: dict[str, Any] = {
            "station_id": station_id,
            "centre_url": centre_url,
            "root": "fleet-root.json",
            "token_file": "token",
        }
        broker = self.broker()
        if broker is not None:
            _private(out / "mqtt.pw", broker.add_station(station_id) + "\n")
            broker.reload()  # a broker this process runs takes the account at once
            fleet["broker"] = {
                "host": data["broker"]["host"],
                "port": data["broker"]["port"],
                "password_file": "mqtt.pw",
            }
        shutil.copyfile(self._current_root(), out / "fleet-root.json")
        (out / "fleet.yaml").write_text(yaml.safe_dump({"fleet": fleet}, allow_unicode=True, sort_keys=False))
        self._save(data)
        return out

    def _current_root(self) -> Path:
        meta = self.repo_dir / "metadata"
        versions = sorted(
            (int(p.name.split(".")[0]), p) for p in meta.glob("*.root.json") if p.name.split(".")[0].isdigit()
        )
        return versions[-1][1]

    def add_approver(self, name: str) -> str:
        """A new approver: their key (held here, 0600) and delegated role; returns their desk token."""
        self.repository().create_approver(name)
        token = secrets.token_urlsafe(32)
        data = self.settings()
        data["approvers"][name] = {
            "added_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "token_hash": hash_token(token),
        }
        self._save(data)
        return token

    def revoke_approver(self, name: str) -> None:
        self.repository().revoke_approver(name)
        data = self.settings()
        data["approvers"].pop(name, None)
        self._save(data)

    # -- content -----------------------------------------------------------------------------------------

    def publish(self, approver: str, script: bytes, meta: dict[str, Any], *, ring: bool = True) -> str:
        """Sign and publish (the centre holds the approver's key); ring the stations' doorbell."""
        path = self.repository().publish(approver, None, script, meta)
        if ring:
            self.ring(meta.get("level", "thuong"))
        return path

    def withdraw(self, target: str, *, ring: bool = True) -> None:
        self.repository().withdraw(target)
        if ring:
            self.ring("thuong")

    def link(self):
        """The centre's MQTT link (started once, kept): the fleet's statuses, and the doorbell."""
        b = self.settings()["broker"]
        if not b:
            return None
        if self._link is None:
            from playout.fleet.mqtt import CentreLink

            password = (self.broker_dir / "centre.pw").read_text("utf-8").strip()
            self._link = CentreLink(b["host"], b["port"], password)
            self._link.start()
        return self._link

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def ring(self, level: str, station: str | None = None, *, wait_s: float = 5.0) -> bool:
        """Tell the stations new metadata exists (advisory; they verify everything through TUF)."""
        from playout.fleet.sync import LEVEL_PRIORITY

        try:
            link = self.link()
            if link is None:
                return False
            deadline = time.monotonic() + wait_s
            while not link.state.connected and time.monotonic() < deadline:
                time.sleep(0.02)
            link.ring(LEVEL_PRIORITY.get(level, level), self._timestamp_version(), station)
        except Exception as exc:  # noqa: BLE001 - the stations still refresh on their own timer
            logger.warning("doorbell not rung (%s): stations pick the change up at their next refresh", exc)
            return False
        return True

    def _timestamp_version(self) -> int:
        try:
            return int(
                json.loads((self.repo_dir / "metadata" / "timestamp.json").read_text())["signed"]["version"]
            )
        except (OSError, ValueError, KeyError):
            return 0


def serve(folder: Path | str, *, host: str = "127.0.0.1", port: int = 8090, run_broker: bool = False) -> None:
    """Run the centre: its HTTP side, the MQTT fleet view, the timestamp renewed every hour."""
    import threading

    import uvicorn

    from playout.fleet.centre_app import CentreState, create_centre_app
    from playout.fleet.centre_store import CentreStore

    centre = Centre(folder)
    settings = centre.settings()
    stop = threading.Event()
    broker = centre.broker() if run_broker else None
    if broker is not None:
        broker.start()
    link = centre.link()

    def fleet_status() -> dict[str, dict]:
        if link is None:
            return {}
        return {
            sid: {**(st.status or {}), "online": st.online, "received_at": st.received_at}
            for sid, st in link.stations.items()
        }

    def renew() -> None:
        while not stop.wait(3600):
            try:
                centre.repository().refresh_timestamp()
            except Exception:  # noqa: BLE001 - logged; the next hour tries again (expiry is a day)
                logger.exception("renewing the timestamp failed")

    state = CentreState(
        centre.repo_dir,
        CentreStore(centre.folder / "centre.db"),
        dict(settings["stations"]),
        fleet_status,
        approver_tokens={n: a["token_hash"] for n, a in settings["approvers"].items() if a.get("token_hash")},
        publish=lambda approver, script, meta: centre.publish(approver, script, meta),
        withdraw=lambda target: centre.withdraw(target),
    )
    centre.repository().refresh_timestamp()
    threading.Thread(target=renew, name="timestamp", daemon=True).start()
    logger.info("centre %s serving on http://%s:%d", centre.folder, host, port)
    try:
        uvicorn.run(create_centre_app(state), host=host, port=port, log_level="warning", access_log=False)
    finally:
        stop.set()
        centre.close()
        if broker is not None:
            broker.stop()
        state.store.close()
