"""The centre's TUF repository and a station's client, over real HTTP on 127.0.0.1.

Real parts only: the repository is written by ``CentreRepository`` with the metadata API, served by a
``http.server`` thread, and read by python-tuf's own ``ngclient`` inside ``FleetClient``.  Attacks are
played as an attacker would: by changing the served files (a compromised web server or mirror), or by
signing with keys an attacker could hold (the centre's online snapshot/timestamp keys, a rogue key, a
revoked approver's key, a retired root key).  An attacker never holds an approver's current key.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import stat
import threading
from datetime import UTC, datetime, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tuf.api.metadata import DelegatedRole, Metadata, MetaFile, TargetFile, Targets
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from playout import cli
from playout.fleet import bulletin_path
from playout.fleet.tuf_client import FleetClient
from playout.fleet.tuf_repo import (
    DEFAULT_KEEP_VERSIONS,
    ApproverKeyMismatch,
    ApproverUnknown,
    BulletinMetaInvalid,
    CentreRepository,
    Expiry,
    OnlineRoleInvalid,
    SignerRequired,
    SigningKeyMissing,
    generate_key,
    load_public_key,
    load_signer,
    public_key_pem,
)

NOW = datetime.now(UTC).replace(microsecond=0)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """The repository folder over HTTP, as any static web server would serve it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        handler = functools.partial(_Quiet, directory=str(self.folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def repo(tmp_path):
    centre = CentreRepository(tmp_path / "centre" / "repo")
    centre.root_file = centre.init()
    return centre


@pytest.fixture
def server(repo):
    srv = Server(repo.folder)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def lan(repo):
    """An approver holding her own key (the centre has only the public half)."""
    signer = generate_key()
    repo.add_approver("lan", signer.public_key)
    return signer


@pytest.fixture
def station(tmp_path, repo, server):
    """A station installed with the centre's first root, its own data folder."""

    def make(station_id: str, *, home: str | None = None, **kw) -> FleetClient:
        home = tmp_path / f"station-{home or station_id}"
        home.mkdir(exist_ok=True)
        pinned = home / "fleet-root.json"
        if not pinned.exists():
            shutil.copy(repo.metadata_dir / "1.root.json", pinned)
        return FleetClient(server.url, pinned, home / "var", station_id, socket_timeout=2, **kw)

    return make


def meta(
    *wards: str, level: str = "thuong", until: timedelta = timedelta(days=7), title: str = "Bản tin"
) -> dict:
    return {
        "title": title,
        "wards": list(wards),
        "level": level,
        "air_from": (NOW - timedelta(hours=1)).isoformat(),
        "air_until": (NOW + until).isoformat(),
        "department": "Sở Khoa học và Công nghệ",
    }


def script(n: int) -> bytes:
    return f"Bản tin số {n}: cảnh giác lừa đảo trực tuyến, không bấm vào đường link lạ.\n".encode()


def paths(result) -> set[str]:
    return {b.path for b in result.bulletins}


def codes(result) -> list[str]:
    return [code for code, _message in result.alarms]


def forge(repo: CentreRepository, role: str, signer, mutate) -> None:
    """Publish a new version of ``role`` signed by ``signer``, with a snapshot and timestamp that really
    are the centre's: what an attacker who stole the centre's online keys (not the approvers') can do."""
    md_dir = repo.metadata_dir
    ts = Metadata.from_file(str(md_dir / "timestamp.json"))
    snap = Metadata.from_file(str(md_dir / f"{ts.signed.snapshot_meta.version}.snapshot.json"))
    old = snap.signed.meta.get(f"{role}.json")
    md = Metadata.from_file(str(md_dir / f"{old.version}.{role}.json")) if old else Metadata(Targets())
    mutate(md.signed)
    md.signed.version = (old.version if old else 0) + 1
    md.signed.expires = NOW + timedelta(days=30)
    md.sign(signer)
    md.to_file(str(md_dir / f"{md.signed.version}.{role}.json"))
    snap.signed.meta[f"{role}.json"] = MetaFile(version=md.signed.version)
    snap.signed.version += 1
    snap.sign(load_signer(next(repo.keys_dir.glob("snapshot.*.pem"))))
    snap.to_file(str(md_dir / f"{snap.signed.version}.snapshot.json"))
    ts.signed.snapshot_meta = MetaFile(version=snap.signed.version)
    ts.signed.version += 1
    ts.sign(load_signer(next(repo.keys_dir.glob("timestamp.*.pem"))))
    ts.to_file(str(md_dir / "timestamp.json"))


def add_target(repo: CentreRepository, approver: str, data: bytes, wards: list[str]):
    """A mutation for ``forge``: a bulletin (file served too) in ``approver``'s folder."""
    sha = hashlib.sha256(data).hexdigest()
    target = TargetFile.from_data(bulletin_path(approver, sha), data, ["sha256"])
    custom = {**meta(*wards), "approver": approver, "approved_at": NOW.isoformat(), "sha256": sha}
    target.unrecognized_fields["custom"] = custom
    for prefixed in target.get_prefixed_paths():
        (repo.targets_dir / prefixed).parent.mkdir(parents=True, exist_ok=True)
        (repo.targets_dir / prefixed).write_bytes(data)

    def mutate(signed: Targets) -> None:
        signed.targets[target.path] = target

    return target.path, mutate


def test_each_station_gets_its_own_bulletins_verified(repo, lan, station):
    only_a = repo.publish("lan", lan, script(1), meta("A", title="Cho phường A"))
    only_b = repo.publish("lan", lan, script(2), meta("B"))
    both = repo.publish("lan", lan, script(3), meta("A", "B", level="khan_cap"))
    over = repo.publish(
        "lan",
        lan,
        script(4),
        {
            **meta("A"),
            "air_from": (NOW - timedelta(days=2)).isoformat(),
            "air_until": (NOW - timedelta(minutes=1)).isoformat(),
        },
    )

    a = station("A").refresh()
    assert paths(a) == {only_a, both}  # B's never, and nothing past its air_until
    assert a.state == "online" and a.online and a.alarms == [] and a.status.error is None
    assert a.status.last_refresh is not None
    mine = {b.path: b for b in a.bulletins}[only_a]
    assert mine.data == script(1)
    assert mine.local_path.read_bytes() == script(1)
    assert mine.title == "Cho phường A" and mine.level == "thuong" and mine.approver == "lan"
    assert mine.custom["sha256"] == hashlib.sha256(script(1)).hexdigest()
    assert mine.custom["department"] == "Sở Khoa học và Công nghệ"
    assert mine.air_until.tzinfo is not None
    assert {b.path: b for b in a.bulletins}[both].level == "khan_cap"

    b_client = station("B")
    b = b_client.refresh()
    assert paths(b) == {only_b, both}
    assert not b_client._local_path(only_a).exists()  # another station's script is never downloaded
    assert not station("A")._local_path(over).exists()


def test_centre_refuses_bad_requests(repo, lan):
    with pytest.raises(BulletinMetaInvalid):
        repo.publish("lan", lan, script(1), {**meta("A"), "air_until": "2026-12-01T18:00:00"})  # no offset
    with pytest.raises(BulletinMetaInvalid):
        repo.publish("lan", lan, script(1), {**meta("A"), "level": "gap"})
    with pytest.raises(ApproverKeyMismatch) as refused:
        repo.publish("lan", generate_key(), script(1), meta("A"))
    assert refused.value.code == "APPROVER_KEY_MISMATCH" and "người duyệt" in refused.value.message
    with pytest.raises(ApproverUnknown):
        repo.publish("hoa", lan, script(1), meta("A"))
    assert repo.bulletins() == {}


def test_keys_live_outside_the_served_folder_owner_only(tmp_path, repo):
    assert not repo.keys_dir.resolve().is_relative_to(repo.folder.resolve())
    pems = list(repo.keys_dir.glob("*.pem"))
    assert {p.name.split(".")[0] for p in pems} == {"root", "targets", "snapshot", "timestamp"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pems)
    assert stat.S_IMODE(repo.keys_dir.stat().st_mode) == 0o700
    assert not list(repo.folder.rglob("*.pem"))
    with pytest.raises(ValueError):
        CentreRepository(repo.folder, keys_dir=repo.folder / "keys")

    # An approver's own key, locked with a passphrase; the centre gets the public half as PEM.
    key_file = tmp_path / "lan" / "approver.pem"
    signer = generate_key(key_file, password=b"mat khau phien")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in key_file.read_bytes()
    assert load_signer(key_file, password=b"mat khau phien").public_key == signer.public_key
    with pytest.raises((TypeError, ValueError)):
        load_signer(key_file)
    assert load_public_key(public_key_pem(signer)).keyid == signer.public_key.keyid


def test_a_changed_byte_is_refused_and_the_last_good_set_kept(repo, lan, station):
    good = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {good}

    tampered = repo.publish("lan", lan, script(2), meta("A"))
    sha = tampered.rsplit("/", 1)[1].removesuffix(".md")
    served = repo.targets_dir / "bulletins" / "lan" / f"{sha}.{sha}.md"
    data = bytearray(served.read_bytes())
    data[10] ^= 0x01
    served.write_bytes(bytes(data))

    result = a.refresh()
    assert paths(result) == {good}
    assert "FLEET_TARGET_MISMATCH" in codes(result)
    assert not a._local_path(tampered).exists()
    message = dict(result.alarms)["FLEET_TARGET_MISMATCH"]
    assert "không khớp" in message

    fresh = station("A", home="A-new").refresh()  # a station that never saw either: same refusal
    assert paths(fresh) == {good} and "FLEET_TARGET_MISMATCH" in codes(fresh)


def test_unknown_and_undelegated_keys_are_refused(repo, lan, station):
    good = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {good}
    rogue = generate_key()

    # Lan's role re-signed by a key that is not hers (the centre's online keys stolen, not hers).
    forged, mutate = add_target(repo, "lan", script(66), ["A"])
    forge(repo, "approver-lan", rogue, mutate)
    result = a.refresh()
    assert paths(result) == {good}  # her verified bulletin keeps airing, the forged one never does
    assert forged not in paths(result)
    assert "FLEET_BAD_SIGNATURE" in codes(result)
    assert not a._local_path(forged).exists()

    # A role nobody delegated, signed by its own key and listed in a genuine snapshot: never looked at.
    mallory = generate_key()
    path, mutate = add_target(repo, "mallory", script(67), ["A"])
    forge(repo, "approver-mallory", mallory, mutate)
    result = station("A", home="A-new").refresh()
    assert path not in paths(result)
    assert "FLEET_BAD_SIGNATURE" in codes(result)  # lan's forged role is still served

    # The centre's targets role re-signed by a rogue key to delegate to mallory: refused outright.
    def delegate(signed: Targets) -> None:
        signed.delegations.roles["approver-mallory"] = DelegatedRole(
            "approver-mallory", [], 1, True, paths=["bulletins/mallory/*"]
        )
        signed.add_key(mallory.public_key, "approver-mallory")

    forge(repo, "targets", rogue, delegate)
    result = a.refresh()
    assert paths(result) == {good}
    assert codes(result) == ["FLEET_BAD_SIGNATURE"]
    assert result.status.error == "FLEET_BAD_SIGNATURE"


def test_replayed_timestamp_or_snapshot_is_a_rollback(repo, lan, station):
    first = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {first}
    old_timestamp = (repo.metadata_dir / "timestamp.json").read_bytes()

    second = repo.publish("lan", lan, script(2), meta("A"))
    assert paths(a.refresh()) == {first, second}
    current_timestamp = (repo.metadata_dir / "timestamp.json").read_bytes()
    trusted_snapshot = sorted(
        repo.metadata_dir.glob("*.snapshot.json"), key=lambda p: int(p.name.split(".")[0])
    )

    # The old timestamp served again (a mirror frozen in the past).
    (repo.metadata_dir / "timestamp.json").write_bytes(old_timestamp)
    result = a.refresh()
    assert paths(result) == {first, second}
    assert codes(result) == ["FLEET_ROLLBACK"]
    assert "cũ" in result.alarms[0].message
    (repo.metadata_dir / "timestamp.json").write_bytes(current_timestamp)

    # A new snapshot announced, an older one served in its place.
    third = repo.publish("lan", lan, script(3), meta("A"))
    newest = max(repo.metadata_dir.glob("*.snapshot.json"), key=lambda p: int(p.name.split(".")[0]))
    genuine = newest.read_bytes()
    newest.write_bytes(trusted_snapshot[-2].read_bytes())
    result = a.refresh()
    assert paths(result) == {first, second}
    assert codes(result) == ["FLEET_ROLLBACK"]

    newest.write_bytes(genuine)
    result = a.refresh()
    assert paths(result) == {first, second, third} and result.alarms == []


def test_a_revoked_approver_is_gone_new_and_old(repo, lan, station):
    hoa = generate_key()
    repo.add_approver("hoa", hoa.public_key)
    kept = repo.publish("lan", lan, script(1), meta("A"))
    revoked = repo.publish("hoa", hoa, script(2), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {kept, revoked}

    repo.revoke_approver("hoa")
    assert "hoa" not in repo.approvers()
    with pytest.raises(ApproverUnknown):
        repo.publish("hoa", hoa, script(3), meta("A"))
    result = a.refresh()
    assert paths(result) == {kept} and result.alarms == []
    assert not a._local_path(revoked).exists()

    # Whatever the revoked key signs later (through stolen online keys) is never looked at.
    late, mutate = add_target(repo, "hoa", script(4), ["A"])
    forge(repo, "approver-hoa", hoa, mutate)
    result = a.refresh()
    assert paths(result) == {kept} and result.alarms == []

    # Rotating Lan's key: her bulletins stay, her old key stops counting.
    new_lan = generate_key()
    repo.rotate_approver_key("lan", new_lan)
    assert paths(a.refresh()) == {kept}
    sneaked, mutate = add_target(repo, "lan", script(5), ["A"])
    forge(repo, "approver-lan", lan, mutate)
    result = a.refresh()
    assert paths(result) == {kept}
    assert codes(result) == ["FLEET_BAD_SIGNATURE"]


def test_an_expired_timestamp_alarms_and_the_verified_set_still_airs(repo, lan, station):
    good = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    first = a.refresh()
    assert paths(first) == {good}

    # The centre's timestamp as a frozen mirror would serve it a day later: valid but expired.
    CentreRepository(repo.folder, expiry=Expiry(timestamp=timedelta(minutes=-5))).refresh_timestamp()
    result = a.refresh()
    assert paths(result) == {good}
    assert codes(result) == ["FLEET_METADATA_EXPIRED"]
    assert "hết hạn" in result.alarms[0].message
    assert result.status.error == "FLEET_METADATA_EXPIRED"
    assert result.status.last_refresh == first.status.last_refresh  # nothing new was trusted

    repo.refresh_timestamp()
    result = a.refresh()
    assert paths(result) == {good} and result.alarms == []


def test_centre_down_the_station_airs_its_cache(repo, lan, station, server):
    good = repo.publish("lan", lan, script(1), meta("A"))
    assert paths(station("A").refresh()) == {good}
    server.stop()

    # A new client on the same data folder (the station restarted while the link is down).
    result = station("A").refresh()
    assert paths(result) == {good}
    assert result.state == "offline" and not result.online
    assert result.status.error == "FLEET_OFFLINE"
    assert result.alarms == []  # offline for minutes is normal on 4G
    assert [b.data for b in result.bulletins] == [script(1)]

    # A day cut off: the signed timestamp the station holds runs out. An alarm that says why (the link,
    # not the centre), and the verified set keeps airing. The hour before, nothing to alarm about.
    assert station("A", clock=lambda: NOW + timedelta(hours=20)).refresh().alarms == []
    later = station("A", clock=lambda: NOW + timedelta(days=2)).refresh()
    assert codes(later) == ["FLEET_METADATA_EXPIRED"] and paths(later) == {good}
    assert "không kết nối được trung tâm" in later.alarms[0].message
    # A centre that signs its timestamp for a week: still valid, but two days without news is stale.
    server.start()
    CentreRepository(repo.folder, expiry=Expiry(timestamp=timedelta(days=7))).refresh_timestamp()
    assert station("A").refresh().alarms == []
    server.stop()
    later = station("A", clock=lambda: NOW + timedelta(days=2)).refresh()
    assert codes(later) == ["FLEET_STALE"] and paths(later) == {good}

    never = station("C").refresh()
    assert never.bulletins == [] and codes(never) == ["FLEET_STALE"]

    server.start()  # same port
    back = station("A").refresh()
    assert back.state == "online" and back.alarms == [] and paths(back) == {good}


def test_a_withdrawn_bulletin_is_gone_after_refresh(repo, lan, station):
    stays = repo.publish("lan", lan, script(1), meta("A"))
    goes = repo.publish("lan", lan, script(2), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {stays, goes}

    with pytest.raises(SignerRequired):
        repo.withdraw(goes)  # Lan's key is hers, not the centre's
    repo.withdraw(goes, lan)
    assert set(repo.bulletins()) == {stays}
    result = a.refresh()
    assert paths(result) == {stays} and result.alarms == []
    assert not a._local_path(goes).exists()

    # Signing-service mode: the centre holds the approver's key and withdraws with it.
    tam = repo.create_approver("tam")
    held = repo.publish("tam", tam, script(3), meta("A"))
    assert paths(a.refresh()) == {stays, held}
    repo.withdraw(held)
    assert paths(a.refresh()) == {stays}


def test_stations_follow_a_root_rotation(repo, lan, station):
    before = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {before}
    old_root_key = load_signer(next(repo.keys_dir.glob("root.*.pem")))

    new_root = repo.rotate_root()
    assert new_root.name == "2.root.json"
    assert old_root_key.public_key.keyid not in Metadata.from_file(str(new_root)).signed.roles["root"].keyids
    assert (repo.keys_dir / "retired" / f"root.{old_root_key.public_key.keyid}.pem").exists()
    after = repo.publish("lan", lan, script(2), meta("A"))

    result = a.refresh()
    assert paths(result) == {before, after} and result.alarms == []
    assert (a.metadata_dir / "root_history" / "2.root.json").exists()
    newly_installed = station("A", home="A-new")  # pinned to root 1 too
    assert paths(newly_installed.refresh()) == {before, after}

    # The retired root key alone can no longer make a root.
    root = Metadata.from_file(str(new_root))
    root.signed.version = 3
    root.signed.add_key(generate_key().public_key, "timestamp")
    root.sign(old_root_key)
    root.to_file(str(repo.metadata_dir / "3.root.json"))
    result = a.refresh()
    assert paths(result) == {before, after}
    assert codes(result) == ["FLEET_BAD_SIGNATURE"]


# -- rotating the online keys --------------------------------------------------------------------------


def test_stations_follow_an_online_key_rotation_and_refuse_the_old_keys(tmp_path, repo, lan, station):
    before = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {before}
    # Someone copies the online keys off the centre's disk (a backup, a repaired machine) before the rotation.
    stolen = {}
    for role in ("targets", "snapshot", "timestamp"):
        stolen[role] = tmp_path / f"stolen-{role}.pem"
        shutil.copy(next(repo.keys_dir.glob(f"{role}.*.pem")), stolen[role])
    old_ids = {role: load_signer(path).public_key.keyid for role, path in stolen.items()}
    root_keys = sorted(p.name for p in repo.keys_dir.glob("root.*.pem"))

    rotation = repo.rotate_online_keys()
    assert rotation.root_version == 2 and rotation.root_path == repo.metadata_dir / "2.root.json"
    assert rotation.retired == {role: [keyid] for role, keyid in old_ids.items()}
    root = Metadata.from_file(str(rotation.root_path)).signed
    for role, old in old_ids.items():
        assert root.roles[role].keyids == [rotation.new_keys[role]] and old not in root.keys
        assert (repo.keys_dir / "retired" / f"{role}.{old}.pem").exists()
        assert not (repo.keys_dir / f"{role}.{old}.pem").exists()
        new_file = repo.keys_dir / f"{role}.{rotation.new_keys[role]}.pem"
        assert stat.S_IMODE(new_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in repo.keys_dir.glob("root.*.pem")) == root_keys  # root keys unchanged

    # A station refreshing in the instant between the re-signed metadata and root 2 (root 1 is still
    # the newest it finds): the metadata signed during the rotation carries the old keys' signatures too.
    aside = repo.metadata_dir / "2.root.json.aside"
    os.replace(rotation.root_path, aside)
    between = station("A", home="A-between").refresh()
    assert paths(between) == {before} and between.alarms == []
    os.replace(aside, rotation.root_path)

    after = repo.publish("lan", lan, script(2), meta("A"))  # signed with the new keys only
    result = a.refresh()
    assert paths(result) == {before, after} and result.alarms == []
    assert (a.metadata_dir / "root_history" / "2.root.json").exists()
    assert paths(station("A", home="A-between").refresh()) == {before, after}
    assert paths(station("A", home="A-new").refresh()) == {before, after}  # installed with root 1
    repo.refresh_timestamp()
    trusted = a.refresh()
    assert paths(trusted) == {before, after} and trusted.alarms == []

    # The kept timestamp key signs a newer timestamp (say, naming an older snapshot): refused, and the
    # station keeps airing what it verified.
    ts = Metadata.from_file(str(repo.metadata_dir / "timestamp.json"))
    ts.signed.version += 1
    ts.signed.snapshot_meta = MetaFile(version=ts.signed.snapshot_meta.version - 1)
    ts.signed.expires = NOW + timedelta(days=1)
    ts.sign(load_signer(stolen["timestamp"]))
    ts.to_file(str(repo.metadata_dir / "timestamp.json"))
    result = a.refresh()
    assert paths(result) == {before, after}
    assert codes(result) == ["FLEET_BAD_SIGNATURE"]
    assert result.status.last_refresh == trusted.status.last_refresh  # nothing new was trusted
    assert sorted(b.data for b in result.bulletins) == [script(1), script(2)]
    fresh = station("A", home="A-fresh").refresh()
    assert fresh.bulletins == [] and codes(fresh) == ["FLEET_BAD_SIGNATURE"]


def test_rotating_only_the_timestamp_key_with_the_root_key_brought_back(tmp_path, repo, lan, station):
    kept = repo.publish("lan", lan, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {kept}
    # After init the root key went to offline media, as the module says it should.
    usb = tmp_path / "usb"
    usb.mkdir()
    root_pem = next(repo.keys_dir.glob("root.*.pem"))
    shutil.move(root_pem, usb / root_pem.name)
    keys_before = sorted(p.name for p in repo.keys_dir.glob("*.pem"))
    before = Metadata.from_file(str(repo.metadata_dir / "1.root.json")).signed

    with pytest.raises(SigningKeyMissing) as refused:
        repo.rotate_online_keys(["timestamp"])
    assert refused.value.code == "SIGNING_KEY_MISSING" and "root" in refused.value.message
    with pytest.raises(OnlineRoleInvalid):
        repo.rotate_online_keys(["root"])
    with pytest.raises(OnlineRoleInvalid):
        repo.rotate_online_keys([])
    # Refused before anything was written: no root 2, no stray key.
    assert sorted(p.name for p in repo.keys_dir.glob("*.pem")) == keys_before
    assert not (repo.metadata_dir / "2.root.json").exists()

    rotation = repo.rotate_online_keys(["timestamp"], root_signers=[load_signer(usb / root_pem.name)])
    assert set(rotation.new_keys) == {"timestamp"} and rotation.root_version == 2
    root = Metadata.from_file(str(rotation.root_path)).signed
    assert root.roles["timestamp"].keyids == [rotation.new_keys["timestamp"]]
    for role in ("root", "targets", "snapshot"):
        assert root.roles[role].keyids == before.roles[role].keyids
    status = repo.key_status()
    assert status["root"]["version"] == 2 and status["root"]["held"] == []
    assert status["timestamp"]["held"] == [rotation.new_keys["timestamp"]]

    after = repo.publish("lan", lan, script(2), meta("A"))
    result = a.refresh()
    assert paths(result) == {kept, after} and result.alarms == []


# -- pruning -------------------------------------------------------------------------------------------


def _files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


class _CentreChangesMidUpdate(Urllib3Fetcher):
    """The station's fetcher, with the centre changing (``change``) just after the station has read the
    timestamp and before it asks for the snapshot that timestamp named."""

    def __init__(self, change):
        super().__init__(socket_timeout=2)
        self.change = change

    def _fetch(self, url: str):
        if self.change is not None and url.endswith(".snapshot.json"):
            change, self.change = self.change, None
            change()
        return super()._fetch(url)


def test_prune_removes_old_versions_and_stations_still_update(tmp_path, repo, lan, station, capsys):
    tam = repo.create_approver("tam")
    a = station("A")
    early = repo.publish("lan", lan, script(0), meta("A"))
    assert paths(a.refresh()) == {early}
    repo.rotate_root()  # root 2
    repo.rotate_online_keys()  # root 3: a station installed with root 1 must walk both
    for n in range(1, 31):
        path = repo.publish("lan" if n % 3 else "tam", lan if n % 3 else tam, script(n), meta("A", "B"))
        if n % 2:
            repo.withdraw(path, lan if n % 3 else tam)
    # A script written just before a crash that never got signed: no metadata names it.
    orphan = repo.targets_dir / "bulletins" / "lan" / f"{'0' * 64}.{'0' * 64}.md"
    orphan.write_bytes(b"never signed")
    (repo.targets_dir / "README").write_text("not a target: left alone")
    current = repo.bulletins()
    for_a = {p for p, custom in current.items() if "A" in custom["wards"]}
    assert len(for_a) == 16

    fresh_station = station("A", home="A-fresh")  # installed long ago: its fleet-root.json is root 1
    before = _files(repo.folder)
    roots = sorted(p for p in before if p.endswith(".root.json"))
    assert roots == [f"metadata/{n}.root.json" for n in (1, 2, 3)]
    preview = repo.prune(keep_versions=2, dry_run=True)
    assert _files(repo.folder) == before  # a dry run deletes nothing
    pruned = repo.prune(keep_versions=2)
    assert pruned == preview and pruned.count > 0
    after = _files(repo.folder)
    assert set(before) - set(after) == set(pruned.files)
    assert pruned.bytes == sum(before[p] for p in pruned.files)
    print(f"prune: {pruned.count} of {len(before)} files, {pruned.bytes} of {sum(before.values())} bytes")
    assert roots == sorted(p for p in after if p.endswith(".root.json"))  # every root version stays
    assert {"metadata/root.json", "metadata/timestamp.json", "targets/README"} <= set(after)
    assert f"targets/bulletins/lan/{orphan.name}" in pruned.files
    snapshots = sorted(int(p.split("/")[1].split(".")[0]) for p in after if p.endswith(".snapshot.json"))
    ts = Metadata.from_file(str(repo.metadata_dir / "timestamp.json")).signed
    assert snapshots == [ts.snapshot_meta.version - 2, ts.snapshot_meta.version - 1, ts.snapshot_meta.version]
    assert len([p for p in after if p.endswith(".approver-lan.json")]) <= 3
    assert repo.bulletins() == current

    # A station installed with the first root, updating from nothing against the pruned repository.
    assert Metadata.from_file(str(fresh_station.root)).signed.version == 1
    fresh = fresh_station.refresh()
    assert paths(fresh) == for_a and fresh.alarms == [] and fresh.online
    assert (fresh_station.metadata_dir / "root_history" / "3.root.json").exists()
    # One that updated before it all, across the prune.
    result = a.refresh()
    assert paths(result) == for_a and result.alarms == []
    assert repo.prune(keep_versions=2).count == 0  # nothing more to take

    # A station mid-update when the centre publishes and prunes: the snapshot its timestamp named, and
    # what that snapshot names, are still there.
    newest: list[str] = []

    def publish_and_prune() -> None:
        newest.append(repo.publish("lan", lan, script(99), meta("A")))
        assert repo.prune(keep_versions=1).count > 0

    mid = station("A", home="A-mid", fetcher=_CentreChangesMidUpdate(publish_and_prune)).refresh()
    assert newest and mid.alarms == [] and mid.online
    assert paths(mid) == for_a  # what the timestamp it read said; the new bulletin comes next time
    assert paths(station("A", home="A-mid").refresh()) == for_a | set(newest)


def test_the_hourly_renewal_prunes_and_a_failed_prune_still_renews(repo, lan, station, caplog):
    for n in range(DEFAULT_KEEP_VERSIONS + 5):
        repo.publish("lan", lan, script(n), meta("A"))
    snapshots = lambda: sorted(repo.metadata_dir.glob("*.snapshot.json"))  # noqa: E731
    many = len(snapshots())
    CentreRepository(repo.folder, auto_prune=None).refresh_timestamp()
    assert len(snapshots()) == many  # off: nothing deleted

    repo.refresh_timestamp()
    assert len(snapshots()) == DEFAULT_KEEP_VERSIONS + 1
    assert sorted(repo.metadata_dir.glob("*.root.json")) == [repo.metadata_dir / "1.root.json"]

    # A damaged snapshot among those kept stops the prune (nothing deleted), never the new timestamp.
    for n in range(3):
        repo.publish("lan", lan, script(100 + n), meta("A"))
    by_version = sorted(snapshots(), key=lambda p: int(p.name.split(".")[0]))
    by_version[-2].write_text("{")
    count = len(list(repo.metadata_dir.iterdir()))
    version = Metadata.from_file(str(repo.metadata_dir / "timestamp.json")).signed.version
    assert repo.refresh_timestamp() == version + 1
    assert "pruning old metadata failed" in caplog.text
    assert len(list(repo.metadata_dir.iterdir())) == count
    assert len(station("A").refresh().bulletins) == DEFAULT_KEEP_VERSIONS + 8


# -- the operator's commands ---------------------------------------------------------------------------


@pytest.fixture
def playout_cli():
    """``playout`` run in this process; the logging handler it installs is taken off afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield cli.main
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_centre_keys_and_prune_commands(tmp_path, capsys, playout_cli):
    folder = tmp_path / "centre"
    assert playout_cli(["centre", "init", str(folder)]) == 0
    assert playout_cli(["centre", "approver", str(folder), "tinh"]) == 0
    bulletin = tmp_path / "bao.txt"
    for n in range(4):
        bulletin.write_bytes(script(n))
        publish = ["centre", "publish", str(folder), str(bulletin), "--approver", "tinh", "--title", "Bão"]
        assert playout_cli([*publish, "--wards", "A"]) == 0
    capsys.readouterr()

    assert playout_cli(["centre", "keys", str(folder)]) == 0
    listing = capsys.readouterr().out
    assert "gốc tin cậy phiên bản 1" in listing and "timestamp" in listing

    assert playout_cli(["centre", "keys", str(folder), "--rotate", "snapshot,timestamp"]) == 0
    out = capsys.readouterr().out
    assert "snapshot, timestamp" in out and "phiên bản 2" in out and "lần cập nhật kế tiếp" in out
    assert (folder / "repo" / "metadata" / "2.root.json").exists()
    assert playout_cli(["centre", "keys", str(folder), "--rotate", "root"]) != 0
    assert "targets, snapshot, timestamp" in capsys.readouterr().err

    # The root key kept offline: named on the command line.
    usb = tmp_path / "usb"
    usb.mkdir()
    root_key = next((folder / "keys").glob("root.*.pem"))
    shutil.move(root_key, usb / root_key.name)
    assert playout_cli(["centre", "keys", str(folder), "--rotate", "targets"]) != 0
    assert "SIGNING_KEY_MISSING" in capsys.readouterr().err
    rotate = ["centre", "keys", str(folder), "--rotate", "targets", "--root-key"]
    assert playout_cli([*rotate, str(usb / "x.pem")]) == 2
    assert "không đọc được khóa gốc" in capsys.readouterr().err
    assert playout_cli([*rotate, str(usb / root_key.name)]) == 0
    assert "phiên bản 3" in capsys.readouterr().out
    assert playout_cli(["centre", "keys", str(folder)]) == 0
    assert "không có trên máy" in capsys.readouterr().out  # the root key

    assert playout_cli(["centre", "prune", str(folder), "--keep", "1"]) == 0
    out = capsys.readouterr().out
    count = int(out.split("đã xóa ", 1)[1].split(" ", 1)[0])
    assert count > 0 and "byte" in out
    assert len(list((folder / "repo" / "metadata").glob("*.snapshot.json"))) == 2
    assert playout_cli(["centre", "prune", str(folder), "--keep", "1"]) == 0
    assert "không có tệp cũ" in capsys.readouterr().out


def test_bulletins_long_past_their_dates_leave_the_metadata(repo, lan, station):
    """The metadata every station downloads on each change does not grow for ever."""
    repo.create_approver("tinh")  # a key the centre holds: it may tidy this role unattended

    def ended(hours_ago: int) -> dict:
        return {**meta("A"), "air_from": (NOW - timedelta(hours=48)).isoformat(),
                "air_until": (NOW - timedelta(hours=hours_ago)).isoformat()}  # fmt: skip

    old = repo.publish("tinh", None, script(1), ended(30))
    recent = repo.publish("tinh", None, script(2), ended(2))
    current = repo.publish("tinh", None, script(3), meta("A"))
    hers = repo.publish("lan", lan, script(4), ended(30))
    a = station("A")
    assert paths(a.refresh()) == {current}  # stations never air past its dates anyway
    before = (repo.metadata_dir / "timestamp.json").read_bytes()
    # Only what passed its dates more than a day ago, and only where the centre holds the key: Lan
    # keeps her own key, so her role changes only when she signs it.
    assert repo.remove_expired() == [old]
    assert set(repo.bulletins()) == {recent, current, hers}
    assert repo.remove_expired() == []  # nothing more to do: no new version written
    result = a.refresh()
    assert paths(result) == {current} and result.alarms == []
    assert (repo.metadata_dir / "timestamp.json").read_bytes() != before
    assert station("A", home="A-fresh").refresh().alarms == []


def test_an_exposed_centre_held_approver_key_is_replaced_and_their_bulletins_keep_airing(repo, station):
    """`playout centre approver DIR NAME --rotate`: the approver's bulletins stay; the old key is dead."""
    repo.create_approver("tam")
    kept = repo.publish("tam", None, script(1), meta("A"))
    a = station("A")
    assert paths(a.refresh()) == {kept}
    (old_file,) = repo.keys_dir.glob("approver-tam.*.pem")
    stolen = load_signer(old_file)  # what whoever copied the key file holds

    new = repo.rotate_held_approver_key("tam")
    assert new.public_key.keyid != stolen.public_key.keyid and not old_file.exists()
    result = a.refresh()
    assert paths(result) == {kept} and result.alarms == []
    assert repo.publish("tam", None, script(2), meta("A")) in paths(
        a.refresh()
    )  # the centre signs with the new

    forged, mutate = add_target(repo, "tam", script(66), ["A"])
    forge(repo, "approver-tam", stolen, mutate)
    result = a.refresh()
    assert forged not in paths(result) and "FLEET_BAD_SIGNATURE" in codes(result)
    assert kept in paths(result)
