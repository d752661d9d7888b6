"""The station's side: the centre's bulletins for this station, verified by python-tuf's ngclient.

``FleetClient(centre_url, root, data_dir, station_id).refresh()`` returns the verified bulletins meant
for this station (its id in ``wards``, ``air_until`` not yet past), each with its bytes and the local file
they were verified into, plus the link's state and any alarms.  It never raises for the network or for
anything the centre (or whoever sits in between) serves: whatever goes wrong, the last verified set is
returned with an alarm, so the station keeps airing what it already trusted, and nothing unverified
reaches it.

Keys, from the station's side:

* **Where trust starts.**  The root file the station was installed with (``fleet.root``, a copy of the
  centre's ``metadata/1.root.json`` or of a later ``root.json``) is the only key material a station holds,
  and it is public.  Every refresh starts from it (ngclient's ``bootstrap``), so a tampered metadata cache
  on the SD card cannot move the station's trust anchor.
* **How it follows a key change.**  When the centre rotates its root keys it publishes root N+1 signed by
  the old keys and the new ones; the Updater walks 2.root.json, 3.root.json, … each verified by the one
  before, and caches them under ``<data>/fleet/tuf/metadata/root_history/``.  A changed timestamp, snapshot
  or targets key arrives the same way, inside a new root.
* **Approvers.**  A bulletin counts only if the approver role the centre's targets role delegates its
  folder to (``bulletins/<name>/*``) signed it with the delegated key.  A revoked approver (delegation
  removed) disappears with all of its bulletins at the next refresh; a rotated key makes the old key's
  signatures worthless.  No private key ever lives on a station.

Files under ``<data>/fleet/tuf/``: ``metadata/`` (ngclient's cache of verified metadata), ``targets/`` (the
verified scripts, named after their URL-quoted target path) and ``verified.json`` (the last verified set
and the link's state, written atomically, read back at start-up and whenever the centre cannot be used).

Alarms (``FleetAlarm(code, message)``, the message in Vietnamese): FLEET_METADATA_EXPIRED (the centre's
timestamp or snapshot is past its expiry: the centre stopped signing, or someone replays a frozen copy),
FLEET_ROLLBACK (an older timestamp, snapshot or role than the station already trusts), FLEET_BAD_SIGNATURE
(a signature missing, wrong, or by a key that is not delegated), FLEET_TARGET_MISMATCH (a script whose
bytes are not the signed ones), FLEET_METADATA_INVALID, FLEET_BULLETIN_INVALID, FLEET_ROOT_INVALID,
FLEET_CACHE_FAILED, FLEET_REFRESH_FAILED, and FLEET_STALE (offline longer than ``stale_after``).  Being
offline for a while is normal on 4G: it sets ``state="offline"`` and ``error="FLEET_OFFLINE"`` without
an alarm until it lasts longer than ``stale_after``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib import parse

import urllib3
from tuf.api import exceptions
from tuf.api.metadata import DelegatedRole, Metadata, Snapshot, TargetFile, Targets
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from playout.atomic import atomic_write_text
from playout.fleet import APPROVER_NAME, FleetError, bulletin_meta, parse_time

logger = logging.getLogger(__name__)

STATE_FORMAT = 1


# -- what goes wrong, for people (Vietnamese) and programs (the code) ---------------------------------


class FleetOffline(FleetError):
    code = "FLEET_OFFLINE"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Không kết nối được trung tâm; trạm phát nội dung đã xác thực lưu trên máy", detail=detail
        )


class FleetStale(FleetError):
    code = "FLEET_STALE"

    def __init__(self, since: str, detail: str = ""):
        super().__init__(
            f"Trạm đã lâu không cập nhật được nội dung từ trung tâm (lần cuối: {since}); "
            "kiểm tra đường truyền Internet của trạm",
            detail=detail,
        )


class FleetMetadataExpired(FleetError):
    code = "FLEET_METADATA_EXPIRED"

    def __init__(self, detail: str = "", *, offline_since: str | None = None):
        if offline_since is None:  # the centre served it so: it stopped signing, or a frozen copy is replayed
            message = (
                "Dữ liệu ký số của trung tâm đã hết hạn; trạm vẫn phát nội dung đã xác thực trước đó. "
                "Báo trung tâm kiểm tra việc ký lại"
            )
        else:  # the copy the station holds ran out while it could not reach the centre
            message = (
                "Dữ liệu ký số trạm đang giữ đã hết hạn vì không kết nối được trung tâm từ "
                f"{offline_since}; trạm vẫn phát nội dung đã xác thực. "
                "Kiểm tra đường truyền Internet của trạm"
            )
        super().__init__(message, detail=detail)


class FleetRollback(FleetError):
    code = "FLEET_ROLLBACK"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Máy chủ gửi lại dữ liệu cũ hơn dữ liệu trạm đã có (nghi bị tấn công phát lại); "
            "trạm từ chối và giữ nội dung đã xác thực. Báo trung tâm",
            detail=detail,
        )


class FleetBadSignature(FleetError):
    code = "FLEET_BAD_SIGNATURE"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Chữ ký số không hợp lệ hoặc khóa ký không được trung tâm ủy quyền; nội dung bị từ chối. "
            "Báo trung tâm",
            detail=detail,
        )


class FleetMetadataInvalid(FleetError):
    code = "FLEET_METADATA_INVALID"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Dữ liệu ký số nhận từ trung tâm không hợp lệ; nội dung bị từ chối. Báo trung tâm", detail=detail
        )


class FleetTargetMismatch(FleetError):
    code = "FLEET_TARGET_MISMATCH"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Tệp bản tin tải về không khớp với bản đã ký (bị sửa đổi trên đường truyền hoặc máy chủ); "
            "đã từ chối tệp này",
            detail=detail,
        )


class FleetBulletinInvalid(FleetError):
    code = "FLEET_BULLETIN_INVALID"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Một bản tin của trung tâm thiếu hoặc sai thông tin (phường, mức độ, thời gian phát); đã bỏ qua",
            detail=detail,
        )


class FleetRootInvalid(FleetError):
    code = "FLEET_ROOT_INVALID"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Tệp khóa gốc của trạm (fleet.root) không đọc được hoặc không hợp lệ; "
            "trạm không nhận nội dung mới từ trung tâm",
            detail=detail,
        )


class FleetCacheFailed(FleetError):
    code = "FLEET_CACHE_FAILED"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Không ghi hoặc đọc được bộ nhớ nội dung của trung tâm trên thẻ nhớ (đầy hoặc hỏng)",
            detail=detail,
        )


class FleetRefreshFailed(FleetError):
    code = "FLEET_REFRESH_FAILED"

    def __init__(self, detail: str = ""):
        super().__init__(
            "Cập nhật nội dung từ trung tâm gặp lỗi không lường trước; trạm giữ nội dung đã xác thực",
            detail=detail,
        )


class FleetAlarm(NamedTuple):
    """One thing the technician should know about (``code, message = alarm`` works)."""

    code: str
    message: str

    @classmethod
    def of(cls, error: FleetError) -> FleetAlarm:
        return cls(error.code, error.message)


def _classify(exc: BaseException, *, target: bool = False) -> FleetError:
    """ngclient's exception -> the station's refusal.  ``target``: while fetching a script's bytes."""
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, exceptions.DownloadLengthMismatchError | exceptions.LengthOrHashMismatchError):
        return FleetTargetMismatch(detail) if target else FleetMetadataInvalid(detail)
    if isinstance(
        exc, exceptions.DownloadError | urllib3.exceptions.HTTPError | ConnectionError | TimeoutError
    ):
        return FleetOffline(detail)
    if isinstance(exc, exceptions.ExpiredMetadataError):
        return FleetMetadataExpired(detail)
    if isinstance(exc, exceptions.BadVersionNumberError):
        return FleetRollback(detail)
    if isinstance(exc, exceptions.UnsignedMetadataError):
        return FleetBadSignature(detail)
    if isinstance(exc, exceptions.RepositoryError):
        return FleetMetadataInvalid(detail)
    if isinstance(exc, OSError):
        return FleetCacheFailed(detail)
    return FleetRefreshFailed(detail)


# -- what the station gets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetBulletin:
    """A verified bulletin for this station: its target path, its bytes, its signed fields."""

    path: str
    data: bytes
    custom: dict[str, Any]
    local_path: Path

    @property
    def title(self) -> str:
        return self.custom["title"]

    @property
    def level(self) -> str:
        return self.custom["level"]

    @property
    def wards(self) -> list[str]:
        return list(self.custom["wards"])

    @property
    def approver(self) -> str:
        return self.custom["approver"]

    @property
    def air_from(self) -> datetime:
        return parse_time(self.custom["air_from"], "air_from")

    @property
    def air_until(self) -> datetime:
        return parse_time(self.custom["air_until"], "air_until")

    def over(self, now: datetime) -> bool:
        """Past its ``air_until``: never aired again."""
        return now >= self.air_until


@dataclass(frozen=True)
class FleetStatus:
    """The link to the centre: ``state`` online/offline, when the centre's metadata last verified end
    to end (``last_refresh``), the last attempt, and the code of what went wrong then (None: nothing)."""

    state: str
    last_refresh: datetime | None
    last_attempt: datetime | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "last_refresh": self.last_refresh.isoformat() if self.last_refresh else None,
            "last_attempt": self.last_attempt.isoformat() if self.last_attempt else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class FleetRefresh:
    """What a refresh hands to the station: bulletins to air (verified, for it, not over), the link's
    status, and the alarms to raise."""

    bulletins: list[FleetBulletin]
    status: FleetStatus
    alarms: list[FleetAlarm] = field(default_factory=list)

    @property
    def online(self) -> bool:
        return self.status.state == "online"

    @property
    def state(self) -> str:
        return self.status.state


@dataclass
class _Record:
    """A verified bulletin as ``verified.json`` keeps it: the signed TargetFile (hashes and custom), the
    role it came from and that role's delegation when it verified."""

    role: str
    delegation: dict[str, Any]
    target: TargetFile

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "delegation": self.delegation, "target": self.target.to_dict()}

    @classmethod
    def from_dict(cls, path: str, data: dict[str, Any]) -> _Record:
        return cls(data["role"], data["delegation"], TargetFile.from_dict(dict(data["target"]), path))


def _delegation(role: DelegatedRole) -> dict[str, Any]:
    return {"keyids": sorted(role.keyids), "threshold": role.threshold, "paths": list(role.paths or [])}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FleetClient:
    """Pulls the centre's bulletins for ``station_id`` from ``centre_url`` (``…/metadata/`` and
    ``…/targets/`` under it), trusting only ``root`` (the pinned root file)."""

    def __init__(
        self,
        centre_url: str,
        root: Path | str,
        data_dir: Path | str,
        station_id: str,
        *,
        fetcher: FetcherInterface | None = None,
        socket_timeout: int = 15,
        stale_after: timedelta = timedelta(days=1),
        clock: Callable[[], datetime] = _utcnow,
    ):
        base = centre_url.rstrip("/")
        self.metadata_url = f"{base}/metadata/"
        self.targets_url = f"{base}/targets/"
        self.root = Path(root)
        self.station_id = station_id
        self.folder = Path(data_dir) / "fleet" / "tuf"
        self.metadata_dir = self.folder / "metadata"
        self.target_dir = self.folder / "targets"
        self.state_file = self.folder / "verified.json"
        self.stale_after = stale_after
        self._clock = clock
        self._fetcher = fetcher or Urllib3Fetcher(
            socket_timeout=socket_timeout, app_user_agent="playout-station"
        )
        self._lock = threading.Lock()

    # -- the verified set on disk --------------------------------------------------------------------

    def _load_state(self, alarms: list[FleetAlarm]) -> tuple[dict[str, _Record], dict[str, Any]]:
        try:
            data = json.loads(self.state_file.read_text("utf-8"))
            if data.get("format") != STATE_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            records = {p: _Record.from_dict(p, r) for p, r in data.get("records", {}).items()}
            return records, data
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            err = FleetCacheFailed(f"{self.state_file}: {exc}")
            logger.error("fleet: verified set unreadable, starting empty: %s", err.detail)
            alarms.append(FleetAlarm.of(err))
            return {}, {}

    def _save_state(self, records: dict[str, _Record], status: FleetStatus) -> None:
        data = {
            "format": STATE_FORMAT,
            "station": self.station_id,
            **status.to_dict(),
            "records": {p: r.to_dict() for p, r in sorted(records.items())},
        }
        atomic_write_text(self.state_file, json.dumps(data, ensure_ascii=False, indent=1))

    def _local_path(self, path: str) -> Path:
        # The name ngclient's Updater gives a target in target_dir (download_target without filepath).
        return self.target_dir / parse.quote(path, "")

    def _bulletins(self, records: dict[str, _Record], now: datetime, alarms: list[FleetAlarm]) -> list:
        """The records as bulletins to air: bytes re-checked against the signed hashes, this station's,
        not over."""
        out = []
        for path, record in sorted(records.items()):
            custom = dict(record.target.custom or {})
            try:
                if self.station_id not in custom.get("wards", []) or now >= parse_time(
                    custom.get("air_until"), "air_until"
                ):
                    continue
            except ValueError:
                continue
            local = self._local_path(path)
            try:
                data = local.read_bytes()
                record.target.verify_length_and_hashes(data)
            except (OSError, exceptions.LengthOrHashMismatchError) as exc:
                err = FleetCacheFailed(f"{local}: {exc}")
                logger.error("fleet: cached %s unusable: %s", path, err.detail)
                alarms.append(FleetAlarm.of(err))
                continue
            out.append(FleetBulletin(path, data, custom, local))
        return out

    def _status(self, saved: dict[str, Any]) -> FleetStatus:
        def when(key: str) -> datetime | None:
            try:
                return datetime.fromisoformat(saved[key]) if saved.get(key) else None
            except (TypeError, ValueError):
                return None

        return FleetStatus(
            saved.get("state", "offline"), when("last_refresh"), when("last_attempt"), saved.get("error")
        )

    # -- public --------------------------------------------------------------------------------------

    @property
    def status(self) -> FleetStatus:
        _, saved = self._load_state([])
        return self._status(saved)

    def bulletins(self) -> FleetRefresh:
        """The last verified set, without touching the network (start-up, or between refreshes)."""
        with self._lock:
            alarms: list[FleetAlarm] = []
            records, saved = self._load_state(alarms)
            return FleetRefresh(self._bulletins(records, self._clock(), alarms), self._status(saved), alarms)

    def refresh(self) -> FleetRefresh:
        """Update from the centre; return what to air.  Never raises (see the module docstring)."""
        with self._lock:
            try:
                return self._refresh()
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop the station airing
                logger.exception("fleet refresh failed")
                alarms = [FleetAlarm.of(FleetRefreshFailed(f"{type(exc).__name__}: {exc}"))]
                records, saved = self._load_state(alarms)
                return FleetRefresh(
                    self._bulletins(records, self._clock(), alarms), self._status(saved), alarms
                )

    def _refresh(self) -> FleetRefresh:
        now = self._clock()
        alarms: list[FleetAlarm] = []
        previous, saved = self._load_state(alarms)
        last_refresh = self._status(saved).last_refresh

        try:
            updater = self._updater()
        except Exception as exc:  # noqa: BLE001 - unreadable or invalid pinned root
            err = FleetRootInvalid(f"{self.root}: {type(exc).__name__}: {exc}")
            return self._keep(previous, err, now, last_refresh, alarms, online=False)
        try:
            updater.refresh()
        except Exception as exc:  # noqa: BLE001 - classified: offline, expired, rollback, signature, …
            err = _classify(exc)
            return self._keep(
                previous, err, now, last_refresh, alarms, online=not isinstance(err, FleetOffline)
            )

        # The centre's top-level metadata verified: walk the approvers it delegates to.
        records, offline, error = self._collect(updater, previous, alarms, now)
        status = FleetStatus("offline" if offline else "online", now, now, error)
        try:
            self._save_state(records, status)
            self._prune(records)
        except OSError as exc:
            err = FleetCacheFailed(f"{self.state_file}: {exc}")
            alarms.append(FleetAlarm.of(err))
            status = FleetStatus(status.state, now, now, err.code)
        return FleetRefresh(self._bulletins(records, now, alarms), status, alarms)

    def _keep(
        self,
        previous: dict[str, _Record],
        err: FleetError,
        now: datetime,
        last_refresh: datetime | None,
        alarms: list[FleetAlarm],
        *,
        online: bool,
    ) -> FleetRefresh:
        """Nothing new could be trusted: the last verified set, the state, an alarm unless merely offline
        for a short while."""
        if isinstance(err, FleetOffline):
            logger.info("fleet: centre unreachable (%s)", err.detail)
            # The time now, after the network gave up: a refresh that hung for a minute must not put
            # the alarm a minute late.
            now = self._clock()
            since = last_refresh.isoformat(timespec="minutes") if last_refresh else "chưa lần nào"
            expires = self._trusted_timestamp_expiry()
            if expires is not None and now >= expires:
                # The signed timestamp the station holds is past its expiry: what TUF calls a freeze,
                # here from the link, not an attacker. An alarm, never silence: the verified set airs.
                detail = f"trusted timestamp expired {expires.isoformat()}; {err.detail}"
                alarms.append(FleetAlarm.of(FleetMetadataExpired(detail, offline_since=since)))
            elif last_refresh is None or now - last_refresh > self.stale_after:
                alarms.append(FleetAlarm.of(FleetStale(since, detail=err.detail)))
        else:
            logger.error("fleet: refused [%s] %s", err.code, err.detail)
            alarms.append(FleetAlarm.of(err))
        status = FleetStatus("online" if online else "offline", last_refresh, now, err.code)
        with contextlib.suppress(OSError):
            self._save_state(previous, status)
        return FleetRefresh(self._bulletins(previous, now, alarms), status, alarms)

    def _trusted_timestamp_expiry(self) -> datetime | None:
        """When the timestamp this station last verified expires (ngclient keeps only verified copies)."""
        try:
            signed = json.loads((self.metadata_dir / "timestamp.json").read_text("utf-8"))["signed"]
            return datetime.fromisoformat(signed["expires"].replace("Z", "+00:00"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def _updater(self) -> Updater:
        root = self.root.read_bytes()
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.target_dir.mkdir(parents=True, exist_ok=True)
        return Updater(
            str(self.metadata_dir),
            self.metadata_url,
            str(self.target_dir),
            self.targets_url,
            fetcher=self._fetcher,
            config=UpdaterConfig(app_user_agent="playout-station"),
            bootstrap=root,
        )

    def _verified(self, role: str) -> Metadata:
        # ngclient keeps each role's metadata in metadata_dir as "<url-quoted role>.json", written only
        # after it verified, and reads it back only if it still verifies against the trusted snapshot.
        return Metadata.from_file(str(self.metadata_dir / f"{parse.quote(role, '')}.json"))

    def _collect(
        self, updater: Updater, previous: dict[str, _Record], alarms: list[FleetAlarm], now: datetime
    ) -> tuple[dict[str, _Record], bool, str | None]:
        """Every bulletin for this station in every approver role the verified targets role delegates.

        ngclient has no public "list a role's targets".  The clean way with its public API: after
        ``refresh()`` (and after ``get_targetinfo()`` of a path inside an approver's folder, which makes
        the Updater load and verify that role), the Updater's own metadata cache holds exactly the
        metadata it verified; it is read here only for the *names* of the targets.  Every fact the
        station uses (hashes, length, custom fields) then comes from ``get_targetinfo(path)``, which walks
        the verified delegation tree, and every byte from ``download_target``/``find_cached_target``,
        which check length and hashes.  A cached file that does not match the trusted snapshot's version
        is refused rather than trusted.
        """
        top = self._verified(Targets.type).signed
        snapshot = self._verified(Snapshot.type).signed
        records: dict[str, _Record] = {}
        offline = False
        error: str | None = None

        def refuse(err: FleetError, what: str) -> None:
            nonlocal offline, error
            if isinstance(err, FleetOffline):
                offline = True
                logger.info("fleet: %s not fetched (%s)", what, err.detail)
            else:
                logger.error("fleet: %s refused [%s] %s", what, err.code, err.detail)
                alarms.append(FleetAlarm.of(err))
            error = error or err.code

        roles = top.delegations.roles if top.delegations and top.delegations.roles else {}
        for role in roles.values():
            name = role.name.removeprefix("approver-")
            if (
                not role.name.startswith("approver-")
                or not APPROVER_NAME.match(name)
                or role.paths != [f"bulletins/{name}/*"]
            ):
                logger.warning(
                    "fleet: delegation %s (%s) is not an approver's: ignored", role.name, role.paths
                )
                continue
            delegation = _delegation(role)
            # What this role gave last time, under the same delegation: kept while the role is unusable.
            kept = {p: r for p, r in previous.items() if r.role == role.name and r.delegation == delegation}
            meta = snapshot.meta.get(f"{role.name}.json")
            if meta is None:
                continue  # delegated, nothing published yet
            try:
                updater.get_targetinfo(f"bulletins/{name}/.role")  # loads and verifies the role
                listed = self._verified(role.name).signed
                if listed.version != meta.version:
                    raise exceptions.RepositoryError(
                        f"cached {role.name} v{listed.version}, snapshot says v{meta.version}"
                    )
            except Exception as exc:  # noqa: BLE001 - classified
                refuse(_classify(exc), role.name)
                records.update(kept)
                continue
            for path in sorted(listed.targets):
                if not path.startswith(f"bulletins/{name}/"):
                    continue
                try:
                    record = self._fetch(updater, path, name, role.name, delegation, now)
                except ValueError as exc:
                    refuse(FleetBulletinInvalid(f"{path}: {exc}"), path)
                    continue
                except Exception as exc:  # noqa: BLE001 - classified
                    err = _classify(exc, target=True)
                    refuse(err, path)
                    if isinstance(err, FleetOffline) and path in kept:
                        records[path] = kept[path]
                    continue
                if record is not None:
                    records[path] = record
        return records, offline, error

    def _fetch(
        self, updater: Updater, path: str, name: str, role: str, delegation: dict, now: datetime
    ) -> _Record | None:
        """One target through the Updater: verified info, this station's?, bytes verified on disk."""
        info = updater.get_targetinfo(path)
        if info is None:
            return None
        custom = bulletin_meta(info.custom)
        if custom["approver"] != name:
            raise ValueError(f"approver {custom['approver']!r} in {name}'s folder")
        sha256 = info.hashes.get("sha256")
        if sha256 != custom["sha256"] or path != f"bulletins/{name}/{sha256}.md":
            raise ValueError("sha256 in custom, hashes and path disagree")
        if self.station_id not in custom["wards"]:
            return None  # another station's: never downloaded
        if now >= parse_time(custom["air_until"], "air_until"):
            return None  # over: never aired again, so not fetched either
        local = updater.find_cached_target(info)
        if local is None:
            local = updater.download_target(info)
            logger.info("fleet: %s (%s) verified for %s", path, custom["level"], self.station_id)
        return _Record(role, delegation, info)

    def _prune(self, records: dict[str, _Record]) -> None:
        """Scripts no longer in the verified set (withdrawn, revoked, another station's) leave the disk."""
        keep = {self._local_path(p).name for p in records}
        for path in self.target_dir.iterdir():
            if path.is_file() and path.name not in keep:
                with contextlib.suppress(OSError):
                    os.unlink(path)
