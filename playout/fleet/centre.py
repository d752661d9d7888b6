"""``playout centre``: a province or district content centre, in one folder.

    DIR/centre.yaml        stations (id -> token hash), approvers (name -> desk token hash), broker address,
                           ``auth:`` the desk's accounts and API tokens (the station's AuthSettings)
    DIR/repo/              the TUF repository, served as static files (metadata/, targets/)
    DIR/keys/              private keys, 0600 in a 0700 folder, never served: root, targets, snapshot,
                           timestamp, and the approvers' keys the centre holds for them (see below)
    DIR/broker/            Mosquitto's config, password file and ACL (playout.fleet.mqtt.Broker)
    DIR/broker/tls/        with ``init --broker-tls``: the broker's own CA and certificate (broker_tls)
    DIR/centre.db          every station's as-run rows, the desk's bulletins, the audit (centre_store)
    DIR/stations/ID/       what to install on station ID: fleet-root.json, token, mqtt.pw (0600), fleet.yaml,
                           broker-ca.pem with TLS

Keys a ward can live with: the root key signs rarely (a new station key set, a rotation) and can be moved
off the machine after ``init``; the online keys (targets, snapshot, timestamp) stay, so the centre can
publish and renew the timestamp unattended. Each approver has a delegated role of their own; here the
centre holds the approver's key and signs for them when they publish on the desk with their own login (a
signing service with per-approver authorisation: an approver's web login or token of the same name is
what unlocks their key, and each signature is a row in the audit table). Revoking an approver
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

#: Stations hold no connection open (they poll and post), so this is bursts of refreshes after a doorbell.
MAX_CENTRE_CONNECTIONS = 1000


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
        self._store = None

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

    def expiry(self):
        """How long each role's signature lasts: ``expiry_hours:`` in centre.yaml over the defaults.

        A shorter timestamp narrows how long a frozen mirror can go unnoticed, and makes a station cut
        off for that long raise its alarm sooner; the centre renews it at a quarter of it."""
        from datetime import timedelta

        from playout.fleet.tuf_repo import Expiry

        hours = self.settings().get("expiry_hours") or {}
        if not isinstance(hours, dict):
            raise ValueError("expiry_hours phải là bảng vai trò: số giờ (timestamp, snapshot, targets, …)")
        fields = {}
        for role in ("root", "targets", "snapshot", "timestamp", "approver"):
            if role in hours:
                value = hours[role]
                if not isinstance(value, int | float) or not 1 <= value <= 24 * 3650:
                    raise ValueError(
                        f"expiry_hours.{role} phải là số giờ từ 1 đến 87600, không phải {value!r}"
                    )
                fields[role] = timedelta(hours=value)
        unknown = set(hours) - {"root", "targets", "snapshot", "timestamp", "approver"}
        if unknown:
            raise ValueError(f"expiry_hours: không có vai trò {', '.join(sorted(map(str, unknown)))}")
        return Expiry(**fields)

    def repository(self):
        from playout.fleet.tuf_repo import CentreRepository

        return CentreRepository(self.repo_dir, keys_dir=self.keys_dir, expiry=self.expiry())

    # -- set-up --------------------------------------------------------------------------------------------

    def init(
        self,
        *,
        broker_host: str | None = None,
        broker_port: int | None = None,
        broker_listen: str | None = None,
        broker_tls: bool = False,
    ) -> Path:
        """A new centre: keys, the first TUF root, and (with a broker address) Mosquitto's files.

        ``broker_tls`` makes the broker's own CA and certificate (playout.fleet.broker_tls) and listens
        with TLS, on 8883 unless ``broker_port`` says otherwise: station passwords then never cross the
        link in clear."""
        if broker_tls and not broker_host:
            raise ValueError("--broker-tls cần --broker-host: địa chỉ các trạm gọi tới Mosquitto")
        self.folder.mkdir(parents=True, exist_ok=True)
        root = self.repository().init()
        data = self.settings()
        if broker_host:
            from playout.fleet.mqtt import Broker

            port = broker_port or (8883 if broker_tls else 1883)
            password = Broker(self.broker_dir, host=broker_listen or broker_host, port=port).add_centre()
            _private(self.broker_dir / "centre.pw", password + "\n")
            # host: the name stations are given; listen: where Mosquitto binds (e.g. 0.0.0.0 behind NAT,
            # where the public name is not an address of this machine). Without it, the same.
            data["broker"] = {"host": broker_host, "port": port}
            if broker_listen:
                data["broker"]["listen"] = broker_listen
        self._save(data)
        if broker_host and broker_tls:
            self.make_broker_tls()
        logger.info("centre initialised in %s (root %s)", self.folder, root)
        return root

    def broker(self):
        """The centre's Mosquitto (one object per Centre, so accounts added while it runs reload it)."""
        from playout.fleet.mqtt import Broker, BrokerTLS

        b = self.settings()["broker"]
        if not b:
            return None
        if self._broker is None:
            tls = self.broker_tls()
            self._broker = Broker(
                self.broker_dir,
                host=b.get("listen") or b["host"],
                port=b["port"],
                tls=None if tls is None else BrokerTLS(tls["certfile"], tls["keyfile"]),
            )
        return self._broker

    def make_broker_tls(self, *, port: int | None = None):
        """Make the broker's own CA and certificate (playout.fleet.broker_tls), and use them from now on.

        Also for an existing centre: turning TLS on, or replacing keys that leaked. Certificates already
        there are moved to ``broker/tls.retired-<time>/``; every station folder gets the new
        ``broker-ca.pem`` and a fleet.yaml that uses it, to install on the station again. A running broker
        keeps its old certificate until the centre restarts."""
        from playout.fleet.broker_tls import make_broker_certificates

        data = self.settings()
        b = data["broker"]
        if not b:
            raise ValueError("trung tâm chưa có máy chủ MQTT (init --broker-host): không có gì để bật TLS")
        tls_dir = self.broker_dir / "tls"
        if tls_dir.exists():
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            tls_dir.rename(self.broker_dir / f"tls.retired-{stamp}")
        made = make_broker_certificates(tls_dir, b["host"], listen=b.get("listen"))
        b["tls"] = {
            "certfile": str(made.certfile.relative_to(self.folder)),
            "keyfile": str(made.keyfile.relative_to(self.folder)),
            "ca_file": str(made.ca_file.relative_to(self.folder)),
        }
        if port is not None:
            b["port"] = port
        self._save(data)
        if self._broker is not None:  # its next config (a restart) has the new certificate
            from playout.fleet.mqtt import BrokerTLS

            self._broker.tls = BrokerTLS(made.certfile, made.keyfile)
        updated = []
        for station_id in sorted(data["stations"]):
            folder = self.folder / "stations" / station_id
            fleet_yaml = folder / "fleet.yaml"
            if not fleet_yaml.exists():
                continue
            settings = yaml.safe_load(fleet_yaml.read_text("utf-8")) or {}
            broker = (settings.get("fleet") or {}).get("broker")
            if not isinstance(broker, dict):
                continue
            shutil.copyfile(made.ca_file, folder / "broker-ca.pem")
            broker.update(tls=True, ca_file="broker-ca.pem", port=b["port"])
            atomic_write_text(fleet_yaml, yaml.safe_dump(settings, allow_unicode=True, sort_keys=False))
            updated.append(station_id)
        self.audit(
            "cli",
            "broker_tls",
            b["host"],
            f"new broker CA and certificate; {len(updated)} station folders updated",
        )
        return made, updated

    def broker_tls(self) -> dict[str, Path | None] | None:
        """``broker.tls`` in centre.yaml with its paths anchored at the centre's folder; None: plain MQTT.

        ``certfile``/``keyfile``: the listener's; ``ca_file``: what stations are given to trust it (left
        out for a certificate from a public CA, which stations trust through their system's store)."""
        b = self.settings()["broker"] or {}
        tls = b.get("tls")
        if not tls:
            return None
        if not isinstance(tls, dict) or not tls.get("certfile") or not tls.get("keyfile"):
            raise ValueError("broker.tls trong centre.yaml cần certfile và keyfile (và ca_file nếu CA riêng)")
        unknown = set(tls) - {"certfile", "keyfile", "ca_file"}
        if unknown:
            raise ValueError(f"broker.tls: không có mục {', '.join(sorted(map(str, unknown)))}")

        def anchor(value: Any) -> Path | None:
            if not value:
                return None
            path = Path(os.path.expanduser(str(value)))
            return path if path.is_absolute() else (self.folder / path).resolve()

        return {key: anchor(tls.get(key)) for key in ("certfile", "keyfile", "ca_file")}

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
            tls = self.broker_tls()
            if tls is not None:
                fleet["broker"]["tls"] = True
                if tls["ca_file"] is not None:  # installed with the station, like its TUF root
                    shutil.copyfile(tls["ca_file"], out / "broker-ca.pem")
                    fleet["broker"]["ca_file"] = "broker-ca.pem"
        shutil.copyfile(self._current_root(), out / "fleet-root.json")
        (out / "fleet.yaml").write_text(yaml.safe_dump({"fleet": fleet}, allow_unicode=True, sort_keys=False))
        self._save(data)
        self.audit("cli", "station", station_id, f"installed files in {out}")
        return out

    def _current_root(self) -> Path:
        meta = self.repo_dir / "metadata"
        versions = sorted(
            (int(p.name.split(".")[0]), p) for p in meta.glob("*.root.json") if p.name.split(".")[0].isdigit()
        )
        return versions[-1][1]

    # -- the desk's accounts ------------------------------------------------------------------------------

    def auth_settings(self):
        """The desk's accounts and tokens (``auth:`` in centre.yaml), validated as a station's are."""
        from playout.accounts import AuthSettings

        raw = self.settings().get("auth") or {}
        settings = AuthSettings.model_validate(raw)
        if settings.secret_file is None:
            settings = settings.model_copy(update={"secret_file": self.keys_dir / "session.secret"})
        return settings

    def add_account(self, name: str, password: str, roles: list[str]) -> None:
        """A person on the desk (replaces an account of that name: a new password, new roles)."""
        from playout.accounts import Account, AuthSettings, hash_password

        account = Account(name=name, password_hash=hash_password(password), roles=roles)
        data = self.settings()
        auth = dict(data.get("auth") or {})
        auth["accounts"] = [a for a in auth.get("accounts", []) if a.get("name") != name]
        auth["accounts"].append(account.model_dump(mode="json"))
        AuthSettings.model_validate(auth)  # a clash with a token's name is refused before anything is saved
        data["auth"] = auth
        self._save(data)
        self.audit("cli", "account", name, f"roles {', '.join(roles)}")

    def add_token(self, name: str, roles: list[str]) -> str:
        """An API token for a program (a monitoring script reading the report); returns the token."""
        from playout.accounts import ApiToken, AuthSettings, hash_token, new_token

        token = new_token()
        entry = ApiToken(name=name, token_hash=hash_token(token), roles=roles)
        data = self.settings()
        auth = dict(data.get("auth") or {})
        auth["tokens"] = [t for t in auth.get("tokens", []) if t.get("name") != name]
        auth["tokens"].append(entry.model_dump(mode="json"))
        AuthSettings.model_validate(auth)
        data["auth"] = auth
        self._save(data)
        self.audit("cli", "account", name, f"API token, roles {', '.join(roles)}")
        return token

    def remove_account(self, name: str) -> bool:
        data = self.settings()
        auth = dict(data.get("auth") or {})
        before = len(auth.get("accounts", [])) + len(auth.get("tokens", []))
        auth["accounts"] = [a for a in auth.get("accounts", []) if a.get("name") != name]
        auth["tokens"] = [t for t in auth.get("tokens", []) if t.get("name") != name]
        if len(auth["accounts"]) + len(auth["tokens"]) == before:
            return False
        data["auth"] = auth
        self._save(data)
        self.audit("cli", "account", name, "removed")
        return True

    def store(self):
        """The centre's database (opened once per Centre)."""
        from playout.fleet.centre_store import CentreStore

        if self._store is None:
            self._store = CentreStore(self.folder / "centre.db")
        return self._store

    def audit(self, who: str, action: str, subject: str | None = None, detail: str | None = None) -> None:
        """A row in the audit table; a centre that cannot write it says so in the log, and carries on."""
        try:
            self.store().audit(who, action, subject, detail)
        except Exception:  # noqa: BLE001 - the action itself succeeded; its log line still records it
            logger.exception("audit row not written: %s %s %s", who, action, subject)

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
        self.audit("cli", "approver", name, "delegated signing key created")
        return token

    def rotate_approver(self, name: str) -> str:
        """A new centre-held key for an approver (theirs was exposed, or they asked): their role is re-signed
        with it, every bulletin they signed keeps airing, and the old key signs nothing stations accept.
        Returns the new key id."""
        signer = self.repository().rotate_held_approver_key(name)
        self.audit("cli", "keys", name, f"approver key rotated to {signer.public_key.keyid[:16]}")
        return signer.public_key.keyid

    def revoke_approver(self, name: str) -> None:
        self.repository().revoke_approver(name)
        data = self.settings()
        data["approvers"].pop(name, None)
        self._save(data)
        self.audit("cli", "approver-revoked", name, "delegation removed: their bulletins stop airing")

    # -- content -----------------------------------------------------------------------------------------

    @property
    def tz(self) -> dt.tzinfo:
        """The province's time zone (``timezone:`` in centre.yaml): its days in reports, its air dates."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(str(self.settings().get("timezone") or "Asia/Ho_Chi_Minh"))

    def desk(self):
        from playout.fleet.centre_desk import CentreDesk

        return CentreDesk(self, self.store(), tz=self.tz)

    def publish(
        self,
        approver: str,
        script: bytes,
        meta: dict[str, Any],
        *,
        ring: bool = True,
        via: str | None = "CLI",
    ) -> str:
        """Sign and publish (the centre holds the approver's key); ring the stations' doorbell.

        ``via`` names the way it came (CLI, API) for the desk's register and the audit; the desk's own
        approval passes None, having registered it already."""
        path = self.repository().publish(approver, None, script, meta)
        if via is not None:
            try:
                self.desk().published_directly(approver, script, meta, path, via)
            except Exception:  # noqa: BLE001 - published and signed; only the register missed it
                logger.exception("bulletin %s published but not registered on the desk", path)
        if ring:
            self.ring(meta.get("level", "thuong"))
        return path

    def withdraw(self, target: str, *, ring: bool = True, who: str = "cli", via: str | None = "CLI") -> None:
        self.repository().withdraw(target)
        if via is not None:
            try:
                self.desk().withdrawn_directly(target, who, via)
            except Exception:  # noqa: BLE001 - withdrawn; only the register missed it
                logger.exception("bulletin %s withdrawn but not marked on the desk", target)
        if ring:
            self.ring("thuong")

    def link(self):
        """The centre's MQTT link (started once, kept): the fleet's statuses, and the doorbell."""
        b = self.settings()["broker"]
        if not b:
            return None
        if self._link is None:
            from playout.fleet.mqtt import CentreLink, LinkTLS

            password = (self.broker_dir / "centre.pw").read_text("utf-8").strip()
            # The centre reaches its own broker locally: the public name may only work from outside.
            # (With TLS the certificate must name that address: the one `init --broker-tls` makes names
            # loopback; for another certificate, broker.local in centre.yaml is a name it carries.)
            listen = b.get("listen") or b["host"]
            loopback = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
            local = b.get("local") or loopback.get(listen, listen)
            tls = self.broker_tls()
            self._link = CentreLink(
                local, b["port"], password, tls=None if tls is None else LinkTLS(ca_file=tls["ca_file"])
            )
            self._link.start()
        return self._link

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        if self._store is not None:
            self._store.close()
            self._store = None

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


def desk_state(centre: Centre, fleet_status=None, *, previews: bool = True):
    """Everything the centre's HTTP side works with, from a centre folder (``serve`` and the tests)."""
    from playout.auth import Authenticator, load_or_create_secret
    from playout.fleet.centre_app import CentreState
    from playout.fleet.centre_preview import PreviewRenderer

    settings = centre.settings()
    auth_settings = centre.auth_settings()
    auth = Authenticator(
        auth_settings,
        load_or_create_secret(auth_settings.secret_file),
        revoked_file=centre.keys_dir / "sessions-revoked.json",
    )
    if not auth_settings.accounts:
        logger.warning(
            "the desk has no accounts yet: playout centre account %s NAME --role admin", centre.folder
        )
    desk = centre.desk()
    desk.recover()
    return CentreState(
        centre.repo_dir,
        centre.store(),
        dict(settings["stations"]),
        fleet_status or (lambda: {}),
        tz=centre.tz,
        approver_tokens={n: a["token_hash"] for n, a in settings["approvers"].items() if a.get("token_hash")},
        publish=lambda approver, script, meta: centre.publish(approver, script, meta, via="API"),
        withdraw=lambda target, who: centre.withdraw(target, who=who, via="API"),
        auth=auth,
        desk=desk,
        preview_audio=PreviewRenderer(centre.folder / "previews").wav_for if previews else None,
    )


def follow_settings(centre: Centre, state, stop, every_s: float = 2.0) -> None:
    """Stations, approvers and accounts added from the CLI while the centre runs take effect in seconds:
    a new station's as-run posts are not refused until a restart, a new account can log in."""
    seen = None
    while not stop.wait(every_s):
        try:
            stamp = centre.config_path.stat().st_mtime_ns
            if stamp == seen:
                continue
            seen = stamp
            now = centre.settings()
            state.station_tokens = dict(now["stations"])
            state.approver_tokens = {
                n: a["token_hash"] for n, a in now["approvers"].items() if a.get("token_hash")
            }
            state.auth.reload(centre.auth_settings())
        except Exception:  # noqa: BLE001 - a half-edited file: the settings in force stay
            logger.exception("centre.yaml not reloaded; the settings in force stay")


def serve(folder: Path | str, *, host: str = "127.0.0.1", port: int = 8090, run_broker: bool = False) -> None:
    """Run the centre: its HTTP side and desk, the MQTT fleet view, the timestamp renewed every hour."""
    import signal
    import threading

    from playout.fleet.centre_app import create_centre_app
    from playout.limits import ConnectionLimits, fd_budget, make_server

    centre = Centre(folder)
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

    # A quarter of the timestamp's life, at most hourly: three renewals can fail before a station alarms.
    every_s = max(60.0, min(3600.0, centre.expiry().timestamp.total_seconds() / 4))

    def renew() -> None:
        while not stop.wait(every_s):
            try:
                for target in centre.repository().remove_expired():
                    centre.audit("centre", "expire", target, "past its air dates for a day")
            except Exception:  # noqa: BLE001 - logged; the metadata only stays larger for an hour more
                logger.exception("taking expired bulletins out failed")
            try:
                centre.repository().refresh_timestamp()
            except Exception:  # noqa: BLE001 - logged; the next hour tries again (expiry is a day)
                logger.exception("renewing the timestamp failed")
            if broker is not None:
                broker.rotate_log()

    state = desk_state(centre, fleet_status)
    centre.repository().refresh_timestamp()
    threading.Thread(target=renew, name="timestamp", daemon=True).start()
    threading.Thread(target=follow_settings, args=(centre, state, stop), name="settings", daemon=True).start()
    logger.info("centre %s serving on http://%s:%d", centre.folder, host, port)
    # The station's bounded server: a centre faces every station's 4G link and the desk's browsers, so a
    # flood of idle or dribbling connections is cut off rather than taking its descriptors.
    budget = fd_budget(MAX_CENTRE_CONNECTIONS, target_soft=8192)
    server = make_server(create_centre_app(state), host, port, limits=ConnectionLimits.within(budget))

    def stopped(signum: int, frame: object) -> None:
        raise SystemExit(0)

    # uvicorn shuts down on SIGTERM, then raises the signal again with the handler it found; the default
    # one would end the process before the ``finally`` below, leaving the centre's Mosquitto running.
    signal.signal(signal.SIGTERM, stopped)
    try:
        server.run()
    finally:
        stop.set()
        centre.close()
        if broker is not None:
            broker.stop()
