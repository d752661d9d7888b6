"""The centre's side: bulletins published as a TUF repository of static files.

The repository is a folder that any web server serves as it is (nginx, or uvicorn's StaticFiles in
``playout.fleet.centre_app``)::

    <folder>/metadata/1.root.json, 2.root.json, …   every root version (stations walk them in order)
    <folder>/metadata/root.json                      the current root (a copy, handy to install)
    <folder>/metadata/<v>.targets.json               the centre's targets role: who may approve what
    <folder>/metadata/<v>.approver-<name>.json       one per approver: their bulletins, signed by them
    <folder>/metadata/<v>.snapshot.json              the versions of every targets role
    <folder>/metadata/timestamp.json                 the only unversioned file: the latest snapshot
    <folder>/targets/bulletins/<name>/<sha256>.<sha256>.md    a script (consistent snapshots: the file
                                                     name starts with its hash, so files never change)

Roles and their expiry (``Expiry``, configurable): root 365 days (threshold ``root_threshold`` of
``root_keys``), targets 90, snapshot 7, timestamp 1 day (``refresh_timestamp()`` must run more often than
that: every few hours, from a timer), approver roles 90.  Every change signs a new version of what
changed, then a new snapshot, then a new timestamp, written in that order with atomic renames: a station
reading mid-change sees the previous state or the new one.

Keys (ed25519, PEM PKCS#8 files, mode 0600, in a 0700 folder):

* **Where they live.**  ``keys_dir`` (default: ``keys/`` next to the repository folder, never inside
  it: the web server must not serve it; the constructor refuses a keys folder inside the repository).
  A key for role R with key id K is ``<keys_dir>/R.K.pem``; replaced keys move to ``<keys_dir>/retired/``.
  The targets, snapshot and timestamp keys are online keys: the centre signs with them unattended.
  The root keys are needed only by ``init``, ``rotate_root`` and to renew root before it expires: after
  ``init``, copy ``root.*.pem`` to offline media (two USB sticks in the province's safe) and delete them
  here; ``rotate_root(old_signers=…)`` takes them back as ``load_signer(path)``.
* **Approvers.**  Each approver is a delegated role ``approver-<name>`` trusted for
  ``bulletins/<name>/*`` only, threshold 1, with the approver's own key.  The approver holds the private
  key (``generate_key(path, password=…)``: an encrypted PEM on their machine or token, unlocked for a
  session with ``load_signer(path, password=…)``); the centre gets only the public half
  (``add_approver(name, public_key)``).  A province that prefers a centre signing service keeps the
  approver's key in ``keys_dir`` instead (``create_approver(name)``), and its web desk decides who may use
  it (recording each use in its audit); ``withdraw`` without a signer uses that key.
* **How an approver signs.**  ``publish(approver, signer, script, meta)`` writes the script as a target
  whose ``custom`` carries the wards, level, air dates and approver, and signs a new version of the
  approver's role with ``signer``: the centre refuses a signer that is not the delegated key, and a
  station refuses a role that the delegated key did not sign.
* **Revoking and rotating.**  ``revoke_approver(name)`` removes the delegation (signed by the targets key):
  every station drops all of that approver's bulletins at its next refresh, and whatever the old key
  signs afterwards is never looked at.  ``rotate_approver_key(name, new_signer)`` swaps the delegated key
  and re-signs the approver's role with the new one (their bulletins stay; the old key stops counting).
  ``rotate_root()`` writes root N+1 with new root keys, signed by the old keys *and* the new ones, so a
  station that trusts root N follows to N+1 and then trusts only the new keys.
  ``rotate_online_keys(roles)`` does the same for the targets, snapshot and timestamp keys (root N+1 lists
  new ones, signed by the unchanged root keys; the affected metadata is re-signed, the old private keys
  are retired): after a leak, whatever the old keys sign is refused once a station has refreshed.
* **Pruning.**  Consistent snapshots never overwrite a version, so every publish leaves files behind.
  ``prune(keep_versions)`` deletes snapshot, targets and approver versions older than what the current
  snapshot and the few before it name, and scripts none of those lists; never a root version (stations
  walk them all from the one they were installed with).  ``refresh_timestamp`` prunes too (``auto_prune``).

Example::

    repo = CentreRepository("/var/lib/playout-centre/repo")
    root_file = repo.init()                     # install this file on every station (fleet.root)
    lan = generate_key("/home/lan/.playout/approver.pem", password=b"...")
    repo.add_approver("lan", lan.public_key)
    path = repo.publish("lan", lan, script_bytes, {"title": "…", "wards": ["phuong-1"], "level": "thuong",
                        "air_from": "2026-12-01T06:00:00+07:00", "air_until": "2026-12-08T18:00:00+07:00"})
    repo.withdraw(path, lan)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.signer import CryptoSigner, Key, Signer, SSlibKey
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)

from playout.atomic import atomic_write_bytes
from playout.fleet import APPROVER_NAME, FleetError, bulletin_meta, bulletin_path, parse_time, role_name

logger = logging.getLogger(__name__)

#: The centre takes scripts up to the size a station takes (playout.intake.MAX_SCRIPT_BYTES).
MAX_SCRIPT_BYTES = 1_000_000
ONLINE_ROLES = (Targets.type, Snapshot.type, Timestamp.type)
#: How many snapshot versions before the current one ``prune`` keeps, with what they reference: a station
#: that read the timestamp just before a change still finds the snapshot, roles and scripts it names.
DEFAULT_KEEP_VERSIONS = 5

_VERSIONED = re.compile(r"^([1-9][0-9]*)\.(.+)\.json$")
_HASH_PREFIXED = re.compile(r"^[0-9a-f]{64}\.")


@dataclass(frozen=True)
class Expiry:
    """How long each role's signature stays valid."""

    root: timedelta = timedelta(days=365)
    targets: timedelta = timedelta(days=90)
    snapshot: timedelta = timedelta(days=7)
    timestamp: timedelta = timedelta(days=1)
    approver: timedelta = timedelta(days=90)

    def of(self, role: str) -> timedelta:
        return getattr(self, role) if role in ("root", *ONLINE_ROLES) else self.approver


# -- errors: what the centre refuses (Vietnamese for the desk, a stable code for programs) -------------


class CentreError(FleetError):
    code = "CENTRE_REFUSED"
    http_status = 422


class CentreNotInitialised(CentreError):
    code = "CENTRE_NOT_INITIALISED"
    http_status = 409

    def __init__(self, detail: str = ""):
        super().__init__("Kho nội dung của trung tâm chưa được khởi tạo", detail=detail)


class CentreAlreadyInitialised(CentreError):
    code = "CENTRE_ALREADY_INITIALISED"
    http_status = 409

    def __init__(self, detail: str = ""):
        super().__init__("Kho nội dung của trung tâm đã được khởi tạo trước đó", detail=detail)


class ApproverUnknown(CentreError):
    code = "APPROVER_UNKNOWN"
    http_status = 404

    def __init__(self, name: str):
        super().__init__(f"Không có người duyệt “{name}” (chưa được ủy quyền hoặc đã bị thu hồi)", name=name)


class ApproverExists(CentreError):
    code = "APPROVER_EXISTS"
    http_status = 409

    def __init__(self, name: str):
        super().__init__(f"Người duyệt “{name}” đã được ủy quyền", name=name)


class ApproverNameInvalid(CentreError):
    code = "APPROVER_NAME_INVALID"

    def __init__(self, name: str):
        super().__init__(
            "Tên người duyệt chỉ gồm chữ thường không dấu, chữ số và dấu gạch ngang (tối đa 40 ký tự)",
            name=name,
        )


class ApproverKeyMismatch(CentreError):
    code = "APPROVER_KEY_MISMATCH"
    http_status = 403

    def __init__(self, name: str, detail: str = ""):
        super().__init__(
            f"Khóa ký không phải khóa đã đăng ký của người duyệt “{name}”; bản tin không được ký",
            name=name,
            detail=detail,
        )


class BulletinMetaInvalid(CentreError):
    code = "BULLETIN_META_INVALID"

    def __init__(self, detail: str):
        super().__init__(
            "Thông tin bản tin chưa đúng (tiêu đề, danh sách phường, mức độ, thời gian phát có múi giờ)",
            detail=detail,
        )


class TargetUnknown(CentreError):
    code = "TARGET_UNKNOWN"
    http_status = 404

    def __init__(self, path: str):
        super().__init__("Không có bản tin này trong kho của trung tâm", target=path)


class SignerRequired(CentreError):
    code = "SIGNER_REQUIRED"
    http_status = 409

    def __init__(self, name: str, detail: str = ""):
        super().__init__(
            f"Cần chữ ký của người duyệt “{name}” cho thao tác này "
            "(hoặc thu hồi người duyệt để gỡ mọi bản tin của họ)",
            name=name,
            detail=detail,
        )


class OnlineRoleInvalid(CentreError):
    code = "ONLINE_ROLE_INVALID"

    def __init__(self, roles: Sequence[str]):
        super().__init__(
            "Chỉ đổi được khóa của các vai trò trực tuyến: targets, snapshot, timestamp "
            "(khóa gốc đổi bằng thao tác đổi khóa gốc)",
            roles=list(roles),
        )


class SigningKeyMissing(CentreError):
    code = "SIGNING_KEY_MISSING"
    http_status = 500

    def __init__(self, role: str, detail: str = ""):
        super().__init__(
            f"Không tìm thấy khóa ký của vai trò “{role}” trong thư mục khóa của trung tâm",
            role=role,
            detail=detail,
        )


# -- keys --------------------------------------------------------------------------------------------


def _write_private(path: Path, pem: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path.parent, 0o700)
    atomic_write_bytes(path, pem)  # mkstemp creates the temporary file 0600 already
    os.chmod(path, 0o600)


def generate_key(path: Path | str | None = None, *, password: bytes | None = None) -> CryptoSigner:
    """A new ed25519 signing key; written to ``path`` (PEM PKCS#8, 0600, encrypted if ``password``)."""
    signer = CryptoSigner.generate_ed25519()
    if path is not None:
        pem = signer.private_bytes
        if password:
            pem = load_pem_private_key(pem, None).private_bytes(
                Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(password)
            )
        _write_private(Path(path), pem)
    return signer


def load_signer(path: Path | str, *, password: bytes | None = None) -> CryptoSigner:
    """The signing key in a PEM file (``generate_key``'s), unlocked with ``password`` if it has one."""
    return CryptoSigner(load_pem_private_key(Path(path).read_bytes(), password))


def public_key_pem(key: Key | Signer) -> bytes:
    """The public half as PEM, to hand to the centre (``load_public_key`` reads it back)."""
    if isinstance(key, Signer):
        key = key.public_key
    if key.keytype != "ed25519":
        raise ValueError(f"unsupported key type {key.keytype}")
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.keyval["public"]))
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> SSlibKey:
    """An approver's public key from PEM."""
    return SSlibKey.from_crypto(load_pem_public_key(pem))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _State:
    """The published state, as read from the files (the files are the truth, nothing is cached)."""

    root: Metadata[Root]
    targets: Metadata[Targets]
    snapshot: Metadata[Snapshot]
    timestamp: Metadata[Timestamp]
    #: Keys that sign alongside the root's during a key rotation only (see ``rotate_online_keys``).
    extra_signers: dict[str, list[Signer]] = field(default_factory=dict)

    def role_version(self, role: str) -> int:
        meta = self.snapshot.signed.meta.get(f"{role}.json")
        return meta.version if meta else 0

    def delegation(self, name: str) -> DelegatedRole:
        delegations = self.targets.signed.delegations
        role = delegations.roles.get(role_name(name)) if delegations and delegations.roles else None
        if role is None:
            raise ApproverUnknown(name)
        return role


@dataclass(frozen=True)
class KeyRotation:
    """What ``rotate_online_keys`` did: the new root file and version, each role's new key id, and the
    key ids retired."""

    root_path: Path
    root_version: int
    new_keys: dict[str, str]
    retired: dict[str, list[str]]


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` removed (or would, with ``dry_run``): paths relative to the repository folder."""

    files: list[str]
    bytes: int

    @property
    def count(self) -> int:
        return len(self.files)


class CentreRepository:
    """The centre's TUF repository in ``folder``; keys in ``keys_dir`` (see the module docstring)."""

    def __init__(
        self,
        folder: Path | str,
        *,
        keys_dir: Path | str | None = None,
        expiry: Expiry | None = None,
        clock: Callable[[], datetime] = _now,
        auto_prune: int | None = DEFAULT_KEEP_VERSIONS,
    ):
        """``auto_prune``: ``refresh_timestamp`` also prunes, keeping that many previous versions (see
        ``prune``); None: only an explicit ``prune`` deletes anything."""
        self.folder = Path(folder)
        self.metadata_dir = self.folder / "metadata"
        self.targets_dir = self.folder / "targets"
        self.keys_dir = Path(keys_dir) if keys_dir is not None else self.folder.parent / "keys"
        if self.keys_dir.resolve().is_relative_to(self.folder.resolve()):
            raise ValueError(f"keys folder {self.keys_dir} is inside the served folder {self.folder}")
        self.expiry = expiry or Expiry()
        self._clock = clock
        self.auto_prune = auto_prune

    # -- reading -------------------------------------------------------------------------------------

    def _read(self, role: str, version: int | None = None) -> Metadata:
        name = f"{role}.json" if version is None else f"{version}.{role}.json"
        return Metadata.from_file(str(self.metadata_dir / name))

    def _root_version(self) -> int:
        versions = [
            int(p.name.split(".", 1)[0])
            for p in self.metadata_dir.glob("*.root.json")
            if p.name.split(".", 1)[0].isdigit()
        ]
        return max(versions, default=0)

    def _state(self) -> _State:
        if not (self.metadata_dir / "timestamp.json").exists():
            raise CentreNotInitialised(str(self.metadata_dir))
        timestamp = self._read(Timestamp.type)
        snapshot = self._read(Snapshot.type, timestamp.signed.snapshot_meta.version)
        targets = self._read(Targets.type, snapshot.signed.meta["targets.json"].version)
        return _State(self._read(Root.type, self._root_version()), targets, snapshot, timestamp)

    def _role(self, st: _State, name: str) -> Metadata[Targets]:
        """The approver's newest role metadata that verifies under the delegation, else empty.

        The current version may not verify: signed by a key since replaced (start afresh: what that key
        signed must stop airing), or forged by someone who got hold of the online keys.  Then the newest
        genuine version before it is carried over, so the next publish does not silently withdraw every
        bulletin the approver really signed.  (``_commit`` numbers the new version after the current one.)
        """
        role = role_name(name)
        current = st.role_version(role)
        for version in range(current, 0, -1):
            try:
                md = self._read(role, version)
            except FileNotFoundError:
                break  # pruned: nothing older to look at
            except Exception as exc:  # noqa: BLE001 - unreadable: look further back
                logger.warning("role %s v%d unreadable: %s", role, version, exc)
                continue
            try:
                st.targets.signed.verify_delegate(role, md.signed_bytes, md.signatures)
            except Exception as exc:  # noqa: BLE001 - not signed by the delegated key: look further back
                logger.warning("role %s v%d not carried over: %s", role, version, exc)
                continue
            if version != current:
                logger.warning("role %s: v%d does not verify; carrying over v%d, the newest genuine one",
                               role, current, version)  # fmt: skip
            return md
        return Metadata(Targets(version=max(current, 1)))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One change at a time (the desk's threads, a timer, the command line)."""
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.keys_dir, 0o700)
        with open(self.keys_dir / ".lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- keys on disk --------------------------------------------------------------------------------

    def _key_path(self, role: str, keyid: str) -> Path:
        return self.keys_dir / f"{role}.{keyid}.pem"

    def _save_key(self, role: str, signer: CryptoSigner) -> None:
        _write_private(self._key_path(role, signer.public_key.keyid), signer.private_bytes)

    def _stored_signers(self, keyids: Sequence[str]) -> list[CryptoSigner]:
        signers = []
        for keyid in keyids:
            for path in self.keys_dir.glob(f"*.{keyid}.pem"):
                signers.append(load_signer(path))
                break
        return signers

    def _top_signers(self, st: _State, role: str) -> list[Signer]:
        spec = st.root.signed.roles[role]
        signers = self._stored_signers(spec.keyids)
        if len(signers) < spec.threshold:
            raise SigningKeyMissing(role, detail=f"{len(signers)}/{spec.threshold} keys in {self.keys_dir}")
        return [*signers, *st.extra_signers.get(role, [])]

    def _retire(self, keyids: Sequence[str]) -> None:
        retired = self.keys_dir / "retired"
        for keyid in keyids:
            for path in self.keys_dir.glob(f"*.{keyid}.pem"):
                retired.mkdir(mode=0o700, exist_ok=True)
                os.replace(path, retired / path.name)

    # -- writing -------------------------------------------------------------------------------------

    def _expires(self, role: str) -> datetime:
        return (self._clock() + self.expiry.of(role)).replace(microsecond=0)

    def _write(self, md: Metadata, name: str) -> None:
        atomic_write_bytes(self.metadata_dir / name, md.to_bytes())

    @staticmethod
    def _sign(md: Metadata, signers: Sequence[Signer]) -> None:
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)

    def _commit(self, st: _State, changed: Mapping[str, tuple[Metadata[Targets], Sequence[Signer]]]) -> None:
        """Sign and write a new version of each changed targets role, then snapshot, then timestamp."""
        for role, (md, signers) in changed.items():
            md.signed.version = st.role_version(role) + 1
            md.signed.expires = self._expires(Targets.type if role == Targets.type else "approver")
            self._sign(md, signers)
            self._write(md, f"{md.signed.version}.{role}.json")
            st.snapshot.signed.meta[f"{role}.json"] = MetaFile(version=md.signed.version)
            if role == Targets.type:
                st.targets = md
        self._new_snapshot(st)

    def _new_snapshot(self, st: _State) -> None:
        snap = st.snapshot
        snap.signed.version += 1
        snap.signed.expires = self._expires(Snapshot.type)
        self._sign(snap, self._top_signers(st, Snapshot.type))
        self._write(snap, f"{snap.signed.version}.snapshot.json")
        self._new_timestamp(st)

    def _new_timestamp(self, st: _State) -> None:
        ts = st.timestamp
        ts.signed.version += 1
        # Version only (no hashes): a replayed snapshot then fails as the rollback it is on the stations.
        ts.signed.snapshot_meta = MetaFile(version=st.snapshot.signed.version)
        ts.signed.expires = self._expires(Timestamp.type)
        self._sign(ts, self._top_signers(st, Timestamp.type))
        self._write(ts, "timestamp.json")

    def _write_root(self, root: Metadata[Root]) -> Path:
        path = self.metadata_dir / f"{root.signed.version}.root.json"
        data = root.to_bytes()
        atomic_write_bytes(path, data)
        atomic_write_bytes(self.metadata_dir / "root.json", data)
        return path

    # -- the desk's API ------------------------------------------------------------------------------

    def init(self, *, root_keys: int = 1, root_threshold: int = 1) -> Path:
        """Create the repository: keys for every role, version 1 of each.  Returns the root file that
        every station is installed with (``fleet.root``)."""
        if not 1 <= root_threshold <= root_keys:
            raise ValueError("root_threshold must be between 1 and root_keys")
        with self._locked():
            if (self.metadata_dir / "timestamp.json").exists() or self._root_version():
                raise CentreAlreadyInitialised(str(self.metadata_dir))
            self.metadata_dir.mkdir(parents=True, exist_ok=True)
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            root = Metadata(Root(expires=self._expires(Root.type), consistent_snapshot=True))
            signers: dict[str, list[CryptoSigner]] = {}
            for role, count in (("root", root_keys), *((r, 1) for r in ONLINE_ROLES)):
                signers[role] = []
                for _ in range(count):
                    signer = generate_key()
                    self._save_key(role, signer)
                    root.signed.add_key(signer.public_key, role)
                    signers[role].append(signer)
            root.signed.roles["root"].threshold = root_threshold
            targets = Metadata(Targets(expires=self._expires(Targets.type)))
            snapshot = Metadata(Snapshot(expires=self._expires(Snapshot.type)))
            timestamp = Metadata(Timestamp(expires=self._expires(Timestamp.type)))
            for md in (root, targets, snapshot, timestamp):
                self._sign(md, signers[md.signed.type])
            self._write(targets, "1.targets.json")
            self._write(snapshot, "1.snapshot.json")
            self._write(timestamp, "timestamp.json")
            path = self._write_root(root)
        logger.info("centre repository created in %s (keys in %s)", self.folder, self.keys_dir)
        return path

    def approvers(self) -> dict[str, list[str]]:
        """Each delegated approver and the key ids it signs with."""
        delegations = self._state().targets.signed.delegations
        roles = delegations.roles if delegations and delegations.roles else {}
        return {r.name.removeprefix("approver-"): list(r.keyids) for r in roles.values()}

    def bulletins(self) -> dict[str, dict]:
        """Every published bulletin: target path -> its custom fields."""
        st = self._state()
        out: dict[str, dict] = {}
        for name in self.approvers():
            for path, target in self._role(st, name).signed.targets.items():
                out[path] = dict(target.custom or {})
        return out

    def add_approver(self, name: str, public_key: Key, *, signer: Signer | None = None) -> None:
        """Delegate ``bulletins/<name>/*`` to ``public_key`` (threshold 1), signed by the targets key.

        ``signer`` (the approver's, matching ``public_key``) also writes their first, empty role: needed
        when the name was used before (its old role is signed by a key that no longer counts); without
        it the role first appears with the approver's first bulletin."""
        if not isinstance(name, str) or not APPROVER_NAME.match(name):
            raise ApproverNameInvalid(str(name))
        if signer is not None and signer.public_key.keyid != public_key.keyid:
            raise ApproverKeyMismatch(name, detail="signer does not match public_key")
        with self._locked():
            st = self._state()
            role = role_name(name)
            targets = st.targets
            if targets.signed.delegations is None:
                targets.signed.delegations = Delegations(keys={}, roles={})
            if role in targets.signed.delegations.roles:
                raise ApproverExists(name)
            if st.role_version(role) and signer is None:
                raise SignerRequired(name, detail=f"{role} was used before: its first version must be signed")
            targets.signed.delegations.roles[role] = DelegatedRole(
                role, [], 1, terminating=True, paths=[f"bulletins/{name}/*"]
            )
            targets.signed.add_key(public_key, role)
            changed: dict = {Targets.type: (targets, self._top_signers(st, Targets.type))}
            if signer is not None:
                changed[role] = (Metadata(Targets()), [signer])
            self._commit(st, changed)
        logger.info("audit: approver %s added (key %s)", name, public_key.keyid)

    def create_approver(self, name: str) -> CryptoSigner:
        """A centre-held approver key (signing-service mode): generated into ``keys_dir``, delegated."""
        signer = generate_key()
        self._save_key(role_name(name), signer)
        try:
            self.add_approver(name, signer.public_key, signer=signer)
        except BaseException:
            self._retire([signer.public_key.keyid])
            raise
        return signer

    def revoke_approver(self, name: str) -> None:
        """Remove the delegation: stations drop all of the approver's bulletins at their next refresh."""
        with self._locked():
            st = self._state()
            delegation = st.delegation(name)
            targets = st.targets
            for keyid in list(delegation.keyids):
                targets.signed.revoke_key(keyid, delegation.name)
            del targets.signed.delegations.roles[delegation.name]
            # The snapshot keeps the role's entry: TUF clients refuse a snapshot that drops one.
            self._commit(st, {Targets.type: (targets, self._top_signers(st, Targets.type))})
            self._retire(delegation.keyids)
            shutil.rmtree(self.targets_dir / "bulletins" / name, ignore_errors=True)
        logger.info("audit: approver %s revoked", name)

    def rotate_approver_key(self, name: str, new_signer: Signer) -> None:
        """Replace the approver's key; their role is re-signed with the new one, bulletins kept."""
        with self._locked():
            st = self._state()
            delegation = st.delegation(name)
            md = self._role(st, name)
            old = list(delegation.keyids)
            for keyid in old:
                st.targets.signed.revoke_key(keyid, delegation.name)
            st.targets.signed.add_key(new_signer.public_key, delegation.name)
            self._commit(
                st,
                {
                    Targets.type: (st.targets, self._top_signers(st, Targets.type)),
                    delegation.name: (md, [new_signer]),
                },
            )
            self._retire(old)
        logger.info("audit: approver %s key rotated to %s", name, new_signer.public_key.keyid)

    def rotate_held_approver_key(self, name: str) -> CryptoSigner:
        """A new centre-held key for ``name`` (signing-service mode), generated into ``keys_dir``; the old
        one is retired.  For an approver who keeps their own key: ``rotate_approver_key``."""
        signer = generate_key()
        self._save_key(role_name(name), signer)
        try:
            self.rotate_approver_key(name, signer)
        except BaseException:
            self._retire([signer.public_key.keyid])
            raise
        return signer

    def renew_approver(self, name: str, signer: Signer | None = None) -> None:
        """Re-sign the approver's role unchanged, before it expires (``Expiry.approver``)."""
        with self._locked():
            st = self._state()
            self._commit(
                st, {role_name(name): (self._role(st, name), self._approver_signers(st, name, signer))}
            )

    def _approver_signers(self, st: _State, name: str, signer: Signer | None) -> list[Signer]:
        delegation = st.delegation(name)
        if signer is None:
            signers: list[Signer] = list(self._stored_signers(delegation.keyids))
            if not signers:
                raise SignerRequired(name, detail="no centre-held key for this approver")
            return signers
        if signer.public_key.keyid not in delegation.keyids:
            raise ApproverKeyMismatch(name, detail=f"key {signer.public_key.keyid} is not delegated")
        return [signer]

    def publish(self, approver: str, signer: Signer | None, script: bytes, meta: Mapping[str, object]) -> str:
        """Publish a script signed by ``approver``; returns its target path.

        ``meta``: ``title``, ``wards`` (station ids), ``level`` (thuong, uu_tien, khan_cap), ``air_from``,
        ``air_until`` (ISO 8601 with offset, or aware datetimes), optionally ``approved_at`` (default now)
        and fields of the desk's own (``department``).  ``approver`` and ``sha256`` are filled in.
        Publishing the same script again replaces its fields (new wards, new dates)."""
        if not isinstance(script, bytes | bytearray) or not script:
            raise BulletinMetaInvalid("the script is empty")
        if len(script) > MAX_SCRIPT_BYTES:
            raise BulletinMetaInvalid(f"the script is {len(script)} bytes, over {MAX_SCRIPT_BYTES}")
        try:
            bytes(script).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BulletinMetaInvalid(f"the script is not UTF-8: {exc}") from None
        script = bytes(script)
        sha256 = hashlib.sha256(script).hexdigest()
        fields = {**meta, "approver": approver, "sha256": sha256}
        fields.setdefault("approved_at", self._clock().replace(microsecond=0))
        try:
            custom = bulletin_meta(fields)
        except ValueError as exc:
            raise BulletinMetaInvalid(str(exc)) from None
        path = bulletin_path(approver, sha256)
        target = TargetFile.from_data(path, script, ["sha256"])
        target.unrecognized_fields["custom"] = custom
        with self._locked():
            st = self._state()
            signers = self._approver_signers(st, approver, signer)
            for prefixed in target.get_prefixed_paths():
                atomic_write_bytes(self.targets_dir / prefixed, script)
            md = self._role(st, approver)
            md.signed.targets[path] = target
            self._commit(st, {role_name(approver): (md, signers)})
        logger.info("audit: %s published %s (%s) for %s", approver, path, custom["level"], custom["wards"])
        return path

    def withdraw(self, target_path: str, signer: Signer | None = None) -> None:
        """Remove a bulletin; stations stop airing it at their next refresh.  Needs the approver's
        signature (``signer``, or the centre-held key); without either, ``revoke_approver`` is the way."""
        parts = target_path.split("/")
        if len(parts) != 3 or parts[0] != "bulletins":
            raise TargetUnknown(target_path)
        name = parts[1]
        with self._locked():
            st = self._state()
            try:
                st.delegation(name)
            except ApproverUnknown:
                raise TargetUnknown(target_path) from None
            md = self._role(st, name)
            target = md.signed.targets.pop(target_path, None)
            if target is None:
                raise TargetUnknown(target_path)
            self._commit(st, {role_name(name): (md, self._approver_signers(st, name, signer))})
            # The script file stays until ``prune`` finds no kept version listing it: a station in the
            # middle of an update against the previous snapshot must not get a 404 for it.
        logger.info("audit: %s withdrawn", target_path)

    def remove_expired(self, grace: timedelta = timedelta(days=1)) -> list[str]:
        """Take out of the metadata every bulletin whose ``air_until`` passed more than ``grace`` ago,
        for the approvers whose keys the centre holds; the removed target paths.

        Stations already ignore them (they never air a bulletin past its dates); without this each
        approver's metadata, which every station downloads on each change, would grow for ever."""
        removed: list[str] = []
        with self._locked():
            st = self._state()
            cutoff = self._clock() - grace
            changed: dict[str, tuple[Metadata[Targets], Sequence[Signer]]] = {}
            for name in self.approvers():
                md = self._role(st, name)
                old = []
                for path, target in md.signed.targets.items():
                    try:
                        until = parse_time((target.custom or {}).get("air_until"), "air_until")
                    except ValueError:
                        continue  # not ours to judge: left for a person
                    if until < cutoff:
                        old.append(path)
                if not old:
                    continue
                try:
                    signers = self._approver_signers(st, name, None)
                except SignerRequired:
                    continue  # the approver keeps their own key: they tidy their role when they sign
                for path in old:
                    del md.signed.targets[path]
                changed[role_name(name)] = (md, signers)
                removed += old
            if changed:
                self._commit(st, changed)
        if removed:
            logger.info("%d expired bulletin(s) taken out of the metadata", len(removed))
        return removed

    def refresh_timestamp(self) -> int:
        """A new timestamp (run it every few hours); snapshot and targets are re-signed too when half
        their lifetime has gone.  Returns the timestamp's new version."""
        with self._locked():
            st = self._state()
            now = self._clock()
            if st.targets.signed.expires - now < self.expiry.targets / 2:
                self._commit(st, {Targets.type: (st.targets, self._top_signers(st, Targets.type))})
            elif st.snapshot.signed.expires - now < self.expiry.snapshot / 2:
                self._new_snapshot(st)
            else:
                self._new_timestamp(st)
            if st.root.signed.expires - now < timedelta(days=30):
                logger.warning("root expires %s: run rotate_root with the root keys", st.root.signed.expires)
            # The hourly renewal is the centre's unattended chore, so old versions go here rather than on
            # the desk's publish path; a failed prune must never cost the stations their timestamp.
            if self.auto_prune is not None:
                try:
                    self._prune(self.auto_prune, dry_run=False)
                except Exception:  # noqa: BLE001 - logged; the timestamp is written, the next hour retries
                    logger.exception("pruning old metadata failed")
            return st.timestamp.signed.version

    def rotate_root(
        self,
        *,
        old_signers: Sequence[Signer] | None = None,
        new_signers: Sequence[Signer] | None = None,
        threshold: int | None = None,
    ) -> Path:
        """Root N+1 with new root keys, signed by the old ones (their threshold) and all the new ones.

        ``old_signers``: the current root keys (default: those in ``keys_dir``).  ``new_signers``:
        default as many new keys as there are now, saved in ``keys_dir`` (the old files move to
        ``retired/``).  Also renews root's expiry.  Returns the new root file."""
        with self._locked():
            st = self._state()
            old_root = st.root
            spec = old_root.signed.roles[Root.type]
            if old_signers is None:
                old_signers = self._stored_signers(spec.keyids)
            generated = new_signers is None
            if new_signers is None:
                new_signers = [generate_key() for _ in spec.keyids]
            new_root = self._next_root(st)
            for keyid in list(spec.keyids):
                new_root.signed.revoke_key(keyid, Root.type)
            for signer in new_signers:
                new_root.signed.add_key(signer.public_key, Root.type)
            new_root.signed.roles[Root.type].threshold = threshold or min(spec.threshold, len(new_signers))
            self._sign_root(old_root, new_root, [*old_signers, *new_signers])
            if generated:  # only once the new root verifies: a refused rotation leaves no stray keys
                for signer in new_signers:
                    self._save_key(Root.type, signer)
            path = self._write_root(new_root)
            new_ids = {s.public_key.keyid for s in new_signers}
            self._retire([k for k in spec.keyids if k not in new_ids])
        logger.info("audit: root rotated to version %d", new_root.signed.version)
        return path

    def _next_root(self, st: _State) -> Metadata[Root]:
        """The current root as version N+1 with a renewed expiry, to change and sign."""
        new_root = Metadata.from_bytes(st.root.to_bytes())  # a deep copy: to_dict shares lists
        new_root.signed.version += 1
        new_root.signed.expires = self._expires(Root.type)
        return new_root

    def _sign_root(
        self, old_root: Metadata[Root], new_root: Metadata[Root], signers: Sequence[Signer]
    ) -> None:
        """Sign root N+1 and check that a station can walk to it: TUF takes root N+1 only when the
        threshold of root N's keys *and* of its own root keys signed it."""
        self._sign(new_root, signers)
        payload, sigs = new_root.signed_bytes, new_root.signatures
        try:
            old_root.signed.verify_delegate(Root.type, payload, sigs)
        except Exception as exc:
            raise SigningKeyMissing(Root.type, detail=f"old root keys: {exc}") from None
        try:
            new_root.signed.verify_delegate(Root.type, payload, sigs)
        except Exception as exc:
            raise SigningKeyMissing(Root.type, detail=f"new root keys: {exc}") from None

    def rotate_online_keys(
        self,
        roles: Sequence[str] = ONLINE_ROLES,
        *,
        root_signers: Sequence[Signer] | None = None,
    ) -> KeyRotation:
        """New keys for the online ``roles`` (targets, snapshot, timestamp): a key copied off the centre's
        disk (a stolen backup, a machine seized and returned) stops counting at the stations' next refresh.

        Writes root N+1 listing the new keys instead of the old ones, signed by the root keys
        (``root_signers``, default those in ``keys_dir``; the root keys themselves do not change), then
        re-signs the affected metadata with the new keys, and moves the old private keys to ``retired/``.
        Stations walk to root N+1 by themselves (nothing to reinstall) and from then on refuse whatever
        the old keys sign.

        The metadata signed during the rotation carries the old keys' signatures as well as the new
        ones: it is written before root N+1, so a station refreshing in between (root N still its
        newest) verifies it too, and one that already has root N+1 counts only the new keys."""
        roles = list(dict.fromkeys(roles))
        if not roles or any(r not in ONLINE_ROLES for r in roles):
            raise OnlineRoleInvalid(roles)
        with self._locked():
            st = self._state()
            old_root = st.root
            if root_signers is None:
                root_signers = self._stored_signers(old_root.signed.roles[Root.type].keyids)
            new_root = self._next_root(st)
            old_keyids: dict[str, list[str]] = {}
            new_signers: dict[str, CryptoSigner] = {}
            for role in roles:
                old_keyids[role] = list(new_root.signed.roles[role].keyids)
                for keyid in old_keyids[role]:
                    new_root.signed.revoke_key(keyid, role)
                new_signers[role] = generate_key()
                new_root.signed.add_key(new_signers[role].public_key, role)
            self._sign_root(old_root, new_root, root_signers)
            for role, signer in new_signers.items():
                self._save_key(role, signer)
            st.extra_signers = {role: list(self._stored_signers(old_keyids[role])) for role in roles}
            st.root = new_root  # _top_signers now finds the new keys
            # Targets, then snapshot, then timestamp: whichever changed key signs first, and the rest of
            # the chain after it (a new targets version needs a new snapshot, which needs a timestamp).
            if Targets.type in roles:
                self._commit(st, {Targets.type: (st.targets, self._top_signers(st, Targets.type))})
            elif Snapshot.type in roles:
                self._new_snapshot(st)
            else:
                self._new_timestamp(st)
            path = self._write_root(new_root)
            self._retire([keyid for keyids in old_keyids.values() for keyid in keyids])
        rotation = KeyRotation(
            path, new_root.signed.version, {r: s.public_key.keyid for r, s in new_signers.items()}, old_keyids
        )
        for role in roles:
            logger.info(
                "audit: %s key rotated %s -> %s (root version %d)",
                role,
                ",".join(old_keyids[role]),
                rotation.new_keys[role],
                rotation.root_version,
            )
        return rotation

    def key_status(self) -> dict[str, dict]:
        """Each top-level role: its key ids, threshold, which of its private keys are in ``keys_dir``;
        plus ``version`` and ``expires`` of the current root (under ``"root"``)."""
        root = self._state().root.signed
        out: dict[str, dict] = {}
        for role in (Root.type, *ONLINE_ROLES):
            spec = root.roles[role]
            held = {s.public_key.keyid for s in self._stored_signers(spec.keyids)}
            out[role] = {
                "keyids": list(spec.keyids),
                "threshold": spec.threshold,
                "held": [k for k in spec.keyids if k in held],
            }
        out[Root.type].update(version=root.version, expires=root.expires)
        return out

    # -- pruning -------------------------------------------------------------------------------------

    def prune(self, keep_versions: int | None = None, *, dry_run: bool = False) -> Pruned:
        """Delete what no station can ask for any more: snapshot versions older than the current one and
        the ``keep_versions`` before it (default ``DEFAULT_KEEP_VERSIONS``), role versions (targets,
        approvers) older than every version those snapshots name, and hash-prefixed script files that
        none of those role versions lists.

        Never deleted: any root version (a station installed with root 1 walks 2.root.json, 3.root.json,
        … up to the current one, however old its install), ``root.json``, ``timestamp.json``, and
        anything the kept snapshots (the current timestamp's above all) reference.  Versions newer than
        the current chain and metadata no snapshot names are left alone.  Everything is worked out first
        and only then deleted: a file that cannot be read stops the prune before anything goes."""
        keep = DEFAULT_KEEP_VERSIONS if keep_versions is None else int(keep_versions)
        if keep < 0:
            raise ValueError("keep_versions must be 0 or more")
        with self._locked():
            return self._prune(keep, dry_run=dry_run)

    def _prune(self, keep: int, *, dry_run: bool) -> Pruned:
        st = self._state()
        current = st.snapshot.signed.version
        versioned: dict[str, dict[int, Path]] = {}
        for path in self.metadata_dir.iterdir():
            match = _VERSIONED.match(path.name)
            if match and path.is_file() and not path.is_symlink():
                versioned.setdefault(match[2], {})[int(match[1])] = path
        versioned.pop(Root.type, None)  # never: every root version stays for the stations that walk them

        snapshots = versioned.get(Snapshot.type, {})
        kept_snapshots = sorted(v for v in snapshots if v < current)[-keep:] if keep else []
        kept_snapshots.append(current)
        referenced: dict[str, set[int]] = {}
        for version in kept_snapshots:
            snap = st.snapshot if version == current else self._read(Snapshot.type, version)
            for name, meta in snap.signed.meta.items():
                referenced.setdefault(name.removesuffix(".json"), set()).add(meta.version)

        doomed = [p for v, p in snapshots.items() if v < kept_snapshots[0]]
        scripts: set[str] = set()
        for role, versions in referenced.items():
            on_disk = versioned.get(role, {})
            doomed += [p for v, p in on_disk.items() if v < min(versions)]
            for version in versions:
                if version in on_disk:
                    md = Metadata.from_file(str(on_disk[version]))
                    if isinstance(md.signed, Targets):
                        for target in md.signed.targets.values():
                            scripts.update(target.get_prefixed_paths())
        if self.targets_dir.is_dir():
            for path in sorted(self.targets_dir.rglob("*")):
                if (
                    _HASH_PREFIXED.match(path.name)
                    and path.is_file()
                    and not path.is_symlink()
                    and path.relative_to(self.targets_dir).as_posix() not in scripts
                ):
                    doomed.append(path)

        removed: list[str] = []
        size = 0
        for path in doomed:
            try:
                length = path.stat().st_size
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path.relative_to(self.folder).as_posix())
            size += length
        if removed and not dry_run:
            logger.info("pruned %d old files (%d bytes) from %s", len(removed), size, self.folder)
        return Pruned(sorted(removed), size)
