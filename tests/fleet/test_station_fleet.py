"""A station fed by a centre, end to end in one process: the centre's real TUF repository served over HTTP,
a real Mosquitto, the station's real FleetPart (TUF client, sync, MQTT link, as-run outbox). Rendering is
the instant double (tests.doubles): what is tested here is what reaches the rotation, the relay and the
centre, not speech. The process-level fleet of ten stations is tests/fleet/test_fleet.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

# Everything is imported here, at collection: importing a module from inside a running test (stations'
# threads up, pytest rewriting a test module's asserts) hit CPython 3.11's "AST constructor recursion
# depth mismatch" once in CI.
from bench.fleet_demo import TcpProxy
from playout.config import parse_config
from playout.fleet.centre import Centre
from playout.fleet.centre_app import CentreState, create_centre_app
from playout.fleet.centre_store import CentreStore
from playout.fleet.tuf_repo import generate_key
from tests.doubles import InstantRendering
from tests.fleet.test_tuf import add_target, forge
from tests.playout.test_web import serve
from tests.station import clock, free_port, start_station, write_script

TZ = dt.timezone(dt.timedelta(hours=7))


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def centre(tmp_path):
    c = Centre(tmp_path / "centre")
    port = free_port()
    c.init(broker_host="127.0.0.1", broker_port=port)
    c.add_approver("tinh")
    broker = c.broker()
    broker.start()
    store = CentreStore(c.folder / "centre.db")
    state = CentreState(c.repo_dir, store, {})
    with serve(create_centre_app(state)) as url:
        c.url = url
        c.state = state
        yield c
    c.close()
    broker.stop()
    store.close()


def station_for(centre, tmp_path, sid, windows=(), **fleet):
    root = tmp_path / sid
    folder = centre.folder / "stations" / sid
    if not folder.exists():
        folder = centre.add_station(sid, centre_url=centre.url + "/")
        centre.state.station_tokens = dict(centre.settings()["stations"])
        write_script(root / "bulletins" / "approved", "rieng.md", "Tin riêng của phường.", title="Tin riêng")
    import yaml

    f = yaml.safe_load((folder / "fleet.yaml").read_text())["fleet"]
    for key in ("root", "token_file"):
        f[key] = str(folder / f[key])
    for key in ("password_file", "ca_file"):
        if key in f["broker"]:
            f["broker"][key] = str(folder / f["broker"][key])
    f["broker"].update(fleet.pop("broker", {}))
    f.update(refresh_s=3600, **fleet)  # only the doorbell (or a restart) makes it look
    config = parse_config(
        {
            "paths": {"data": str(root / "var"), "bulletins": str(root / "bulletins")},
            "windows": list(windows),
            "bulletin": {"length_s": 12, "lead_in": "", "outro": ""},
            "fleet": f,
        },
        base=root,
    )
    station = start_station(config, ready=1, renderer=InstantRendering())
    # The daemon's main loop (it starts emergencies), as `playout run` has it.
    threading.Thread(target=station._main_loop, name="main", daemon=True).start()
    return station


def publish(centre, level, wards, title, *, minutes=60, text=None):
    now = dt.datetime.now(dt.UTC).astimezone()
    return centre.publish(
        "tinh",
        (text or f"Bà con chú ý: {title}.").encode(),
        {
            "title": title,
            "wards": wards,
            "level": level,
            "air_from": (now - dt.timedelta(minutes=1)).isoformat(),
            "air_until": (now + dt.timedelta(minutes=minutes)).isoformat(),
        },
    )


def test_an_emergency_airs_at_the_targeted_station_only_and_its_row_reaches_the_centre(
    tmp_path, centre, monkeypatch
):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    a = station_for(centre, tmp_path, "dong-hai")
    b = station_for(centre, tmp_path, "vinh-hai")
    try:
        wait(lambda: a.fleet.link.state.connected and b.fleet.link.state.connected, 10, "both links")
        sent = time.monotonic()
        publish(centre, "khan_cap", ["dong-hai"], "Bão số 3 đổ bộ")
        rows = wait(lambda: [r for r in a.log.plays() if r["relay_on_at"]], 15, "the emergency to air")
        keyed = time.monotonic() - sent
        assert rows[0]["title"] == "Bão số 3 đổ bộ" and rows[0]["slot_key"].startswith("emergency/")
        assert keyed < 10, keyed
        assert a.fleet.doorbells >= 1 and b.fleet.doorbells >= 1  # both were rung ...
        time.sleep(1)
        assert b.log.plays() == [] and len(b.library.bulletins()) == 1  # ... only A's targets were there
        # The as-run row reaches the centre once the play is over.
        wait(lambda: a.log.plays()[0]["status"] != "playing", 20, "the play to end")
        got = wait(lambda: centre.state.store.rows("dong-hai"), 10, "the row at the centre")
        assert [r["title"] for r in got] == ["Bão số 3 đổ bộ"]
        # The station's status is at the broker for the centre: relay, last play, content state.
        assert a.health()["fleet"]["content"]["state"] == "online"
    finally:
        a.close()
        b.close()


def test_levels_withdrawal_and_expiry(tmp_path, centre, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    a = station_for(centre, tmp_path, "dong-hai")
    try:
        wait(lambda: a.fleet.link.state.connected, 10, "the link")
        publish(centre, "uu_tien", ["dong-hai"], "Lịch tiêm chủng")
        publish(centre, "thuong", ["dong-hai"], "Tuyên truyền phòng cháy")
        approved = a.config.paths.bulletins / "approved"
        wait(lambda: len(list(approved.glob("fleet-*.md"))) == 1, 10, "the priority bulletin")
        wait(lambda: len(a.library.ready()) == 2, 10, "it to be ready")
        prio = [b for b in a.library.ready() if b.title == "Lịch tiêm chủng"][0]
        assert prio.priority == "priority"
        # The ordinary one waits on the ward's desk, submitted by the centre.
        pending = wait(lambda: a.approvals.records("pending"), 10, "the ordinary one on the desk")
        assert pending[0].submitted_by == "trung-tam"
        # Withdrawn at the centre: gone from the rotation at the next refresh.
        target = [t for t, m in centre.repository().bulletins().items() if m["title"] == "Lịch tiêm chủng"][0]
        centre.withdraw(target)
        wait(lambda: not list(approved.glob("fleet-*.md")), 10, "the withdrawal")
        wait(lambda: len(a.library.ready()) == 1, 10, "the library to drop it")
        # An emergency whose air_until passes while the station holds it is taken out, not aired late.
        publish(centre, "uu_tien", ["dong-hai"], "Tin ngắn hạn", minutes=0.05)
        wait(lambda: list(approved.glob("fleet-*.md")), 10, "the short-lived one")
        wait(lambda: not list(approved.glob("fleet-*.md")), 10, "it to expire")
    finally:
        a.close()


def test_an_mqtt_message_alone_never_makes_a_station_air(tmp_path, centre, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    a = station_for(centre, tmp_path, "dong-hai")
    try:
        wait(lambda: a.fleet.link.state.connected, 10, "the link")
        # The centre's own account rings "emergency" with no signed metadata behind it.
        assert centre.ring("khan_cap")
        wait(lambda: a.fleet.doorbells >= 1, 5, "the ring")
        time.sleep(1.5)
        assert a.log.plays() == [] and not list((a.config.paths.bulletins / "approved").glob("fleet-*"))
        assert a.fleet.client.status.state == "online"  # it looked, verified, and found nothing new
    finally:
        a.close()


def test_a_bulletin_withdrawn_while_the_station_was_off_never_airs_from_its_cache(
    tmp_path, centre, monkeypatch
):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    a = station_for(centre, tmp_path, "dong-hai")
    approved = a.config.paths.bulletins / "approved"
    try:
        wait(lambda: a.fleet.link.state.connected, 10, "the link")
        target = publish(centre, "uu_tien", ["dong-hai"], "Tin sẽ bị rút")
        wait(lambda: list(approved.glob("fleet-*.md")), 10, "the priority bulletin")
        wait(lambda: len(a.library.ready()) == 2, 10, "it to be ready")
    finally:
        a.close()
    centre.withdraw(target)  # while the station is off
    # It comes back inside an open window, over a slow link (each connection delayed 0.4 s, about 2 s for a
    # refresh): the priority bulletin in its cache would air first if the cache aired before the centre
    # had its say.
    monkeypatch.setattr("playout.planner.SLOT_WAIT_S", 0.1)  # the slot takes whatever is ready at once
    upstream = int(centre.url.rsplit(":", 1)[1])
    slow = TcpProxy(upstream, lossy=True, drop=0, cut=0, delay=(0.4, 0.4), chunk_delay=(0, 0)).start()
    now = dt.datetime.now(TZ)
    window = {
        "name": "thử",
        "start": clock(now - dt.timedelta(seconds=2)),
        "end": clock(now + dt.timedelta(seconds=40)),
    }
    a = station_for(
        centre, tmp_path, "dong-hai", windows=[window], centre_url=f"http://127.0.0.1:{slow.port}/"
    )
    try:
        rows = wait(lambda: [r for r in a.log.plays() if r["relay_on_at"]], 20, "the window's play")
        assert [r["title"] for r in rows] == ["Tin riêng"]
        assert not list(approved.glob("fleet-*.md"))
    finally:
        a.close()
        slow.close()


def test_a_tampered_target_raises_one_alarm_and_the_station_keeps_what_it_verified(
    tmp_path, centre, monkeypatch
):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    a = station_for(centre, tmp_path, "dong-hai")
    try:
        now = dt.datetime.now(TZ)
        meta = {
            "title": "Tin bị sửa",
            "wards": ["dong-hai"],
            "level": "uu_tien",
            "air_from": (now - dt.timedelta(minutes=1)).isoformat(),
            "air_until": (now + dt.timedelta(hours=1)).isoformat(),
        }
        target = centre.publish("tinh", "Bà con chú ý: tin thật.".encode(), meta, ring=False)
        name = target.rsplit("/", 1)[1]
        for served in (centre.repo_dir / "targets" / "bulletins" / "tinh").glob(f"*{name}"):
            served.write_bytes(served.read_bytes().replace("thật".encode(), "giả".encode()))
        for _ in range(3):  # every refresh finds the same fault
            a.fleet.sync.refresh()
        kinds = [al["kind"] for al in a.alarms.active()]
        assert kinds.count("fleet_target_mismatch") == 1, kinds
        assert a.fleet.sync.state["alarm"].startswith("FLEET_TARGET_MISMATCH")
        approved = a.config.paths.bulletins / "approved"
        assert not list(approved.glob("fleet-*.md")) and [b.title for b in a.library.ready()] == ["Tin riêng"]
    finally:
        a.close()


def test_tampering_raises_its_alarm_while_the_verified_bulletins_air(tmp_path, centre, monkeypatch):
    """Issue 14's tampering cases at a running station: each is refused with its alarm; restarted into an
    open window while the centre is still tampered with, it airs what it verified before."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    monkeypatch.setattr("playout.planner.SLOT_WAIT_S", 0.1)
    a = station_for(centre, tmp_path, "dong-hai")
    approved = a.config.paths.bulletins / "approved"
    repo = centre.repository()
    try:
        wait(lambda: a.fleet.link.state.connected, 10, "the link")
        publish(centre, "uu_tien", ["dong-hai"], "Tin thật")
        wait(lambda: len(list(approved.glob("fleet-*.md"))) == 1, 10, "the first bulletin")
        old_timestamp = (repo.metadata_dir / "timestamp.json").read_bytes()
        publish(centre, "uu_tien", ["dong-hai"], "Tin thật thứ hai")
        wait(lambda: len(list(approved.glob("fleet-*.md"))) == 2, 10, "the second bulletin")
        verified = sorted(p.name for p in approved.glob("fleet-*.md"))

        def kinds() -> list[str]:
            return [al["kind"] for al in a.alarms.active()]

        # A mirror frozen in the past serves yesterday's timestamp.
        current = (repo.metadata_dir / "timestamp.json").read_bytes()
        (repo.metadata_dir / "timestamp.json").write_bytes(old_timestamp)
        a.fleet.sync.refresh()
        assert "fleet_rollback" in kinds()
        (repo.metadata_dir / "timestamp.json").write_bytes(current)
        # The centre's online keys stolen: the approver's role re-signed by a key that is not theirs.
        _, mutate = add_target(repo, "tinh", "Bà con sơ tán ngay (tin giả).".encode(), ["dong-hai"])
        forge(repo, "approver-tinh", generate_key(), mutate)
        a.fleet.sync.refresh()
        assert "fleet_bad_signature" in kinds()
        # Another station's bulletin, genuinely signed: not this ward's.
        publish(centre, "khan_cap", ["vinh-hai"], "Tin của phường khác")
        # An "emergency" rung over MQTT with nothing signed behind it.
        assert centre.ring("khan_cap")
        time.sleep(1.5)
        assert sorted(p.name for p in approved.glob("fleet-*.md")) == verified
        assert not [r for r in a.log.plays() if r["relay_on_at"]]  # no emergency aired
    finally:
        a.close()
    # Restarted (a power cut) into an open window with the centre still tampered with: its first refresh
    # is refused again, and the verified bulletins air, first.
    now = dt.datetime.now(TZ)
    window = {"name": "thử", "start": clock(now), "end": clock(now + dt.timedelta(seconds=40))}
    a = station_for(centre, tmp_path, "dong-hai", windows=[window])
    try:
        rows = wait(lambda: [r for r in a.log.plays() if r["relay_on_at"]], 30, "the window's play")
        assert rows[0]["title"].startswith("Tin thật") and "/thử/" in rows[0]["slot_key"]
        assert "fleet_bad_signature" in kinds()
        assert all(
            "giả" not in (r["title"] or "") and r["title"] != "Tin của phường khác" for r in a.log.plays()
        )
    finally:
        a.close()


def test_a_bulletin_leaves_at_its_air_until_while_a_refresh_hangs(tmp_path, centre, monkeypatch):
    """On a 2G link a refresh can hang for tens of seconds; the bulletin's end time does not wait for it."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    a = station_for(centre, tmp_path, "dong-hai")
    approved = a.config.paths.bulletins / "approved"
    try:
        wait(lambda: a.fleet.link.state.connected, 10, "the link")
        publish(centre, "uu_tien", ["dong-hai"], "Tin ngắn hạn", minutes=0.15)  # ends in 9 s
        wait(lambda: list(approved.glob("fleet-*.md")), 8, "the bulletin")
        until = dt.datetime.fromisoformat(next(iter(centre.repository().bulletins().values()))["air_until"])
        real = a.fleet.client.refresh
        hanging = threading.Event()

        def hangs():
            hanging.set()
            time.sleep(30)  # the centre accepted the connection and never answered
            return real()

        a.fleet.client.refresh = hangs
        a.fleet.refresh_now()
        wait(hanging.is_set, 5, "the refresh to hang")
        wait(lambda: not list(approved.glob("fleet-*.md")), 15, "the bulletin to leave")
        late = (dt.datetime.now(dt.UTC) - until).total_seconds()
        assert late < 2.5, f"removed {late:.1f} s after its air_until"
    finally:
        a.close()


def test_a_refused_mqtt_password_is_a_problem_on_the_station_while_its_content_still_airs(
    tmp_path, centre, monkeypatch
):
    """A station whose MQTT account no longer works is invisible to the centre (offline there); the ward's
    technician must see why on the station itself. TUF content does not depend on MQTT and keeps coming."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    publish(centre, "uu_tien", ["dong-hai"], "Lịch tiêm chủng")
    centre.add_station("dong-hai", centre_url=centre.url + "/")
    centre.state.station_tokens = dict(centre.settings()["stations"])
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not-the-password\n")
    write_script(
        tmp_path / "dong-hai" / "bulletins" / "approved", "rieng.md", "Tin riêng.", title="Tin riêng"
    )
    station = station_for(centre, tmp_path, "dong-hai", broker={"password_file": str(wrong)})
    try:
        wait(lambda: station.fleet.link.state.code == "FLEET_LINK_REFUSED", 10, "the refusal")
        health = station.health()
        (problem,) = [p for p in health["problems"] if p["code"] == "FLEET_LINK_REFUSED"]
        assert problem["vital"] is False and "mật khẩu MQTT" in problem["message"]
        assert health["status"] != "ok"
        # Content came over TUF all the same, and the overview's row says both things.
        wait(lambda: station.fleet.health()["content"]["bulletins"] == 1, 10, "the verified bulletin")
        content = station.health()["fleet"]["content"]
        assert content["online"] is True and content["verified_at"][-6:] == "+07:00"
        titles = {b.title for b in station.library.bulletins()}
        assert "Lịch tiêm chủng" in titles
    finally:
        station.close()
