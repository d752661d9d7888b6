"""The fleet's MQTT channel against a real Mosquitto on a free loopback port (issue 14).

Each test gets its own broker (config, accounts and ACL written in tmp_path by ``Broker``, ``mosquitto
-c`` started and waited for, killed at the end).  Attackers are plain paho clients.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from playout.fleet import mqtt as fleet_mqtt
from playout.fleet.mqtt import (
    LEVELS,
    Broker,
    BrokerFailed,
    BrokerTLS,
    BrokerUnavailable,
    CentreLink,
    Doorbell,
    LinkTLS,
    StationLink,
)

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
#: Short back-offs so reconnections happen within a test's patience.
FAST = {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


class Fleet:
    """A broker with the centre's account, and helpers that create accounts and links (closed at the end)."""

    def __init__(self, broker: Broker):
        self.broker = broker
        self.port = broker.port
        self.centre_password = broker.add_centre()
        self.passwords: dict[str, str] = {}
        self._links: list = []

    def account(self, station_id: str) -> str:
        self.passwords[station_id] = self.broker.add_station(station_id)
        return self.passwords[station_id]

    def station(self, station_id: str, on_doorbell=None, password: str | None = None, **kw) -> StationLink:
        if password is None:
            password = self.passwords.get(station_id) or self.account(station_id)
        link = StationLink(
            station_id,
            HOST,
            self.port,
            password,
            on_doorbell=on_doorbell or (lambda ring: None),
            **{**FAST, **kw},
        )
        self._links.append(link)
        link.start()
        return link

    def centre(self, **kw) -> CentreLink:
        link = CentreLink(HOST, self.port, self.centre_password, **{**FAST, **kw})
        self._links.append(link)
        link.start()
        assert wait_until(lambda: link.state.connected, 5), link.state
        return link

    def raw_client(self, username: str | None, password: str | None = None) -> tuple[mqtt.Client, dict]:
        """A bare paho client (an attacker's, or a misconfigured one); returns it and what it saw."""
        seen: dict = {"connack": None, "pubacks": {}}
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if username is not None:
            client.username_pw_set(username, password)

        def on_connect(c, u, flags, reason_code, props):
            seen["connack"] = reason_code

        def on_publish(c, u, mid, reason_code, props):
            seen["pubacks"][mid] = reason_code

        client.on_connect = on_connect
        client.on_publish = on_publish
        client.reconnect_delay_set(5, 5)
        client.connect(HOST, self.port)
        client.loop_start()
        self._links.append(client)
        return client, seen

    def close(self) -> None:
        for link in reversed(self._links):
            if isinstance(link, mqtt.Client):
                link.disconnect()
                link.loop_stop()
            else:
                link.close()


@pytest.fixture
def fleet(tmp_path):
    """A real mosquitto for this test: config in tmp_path, started with ``mosquitto -c``, killed after."""
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail("mosquitto is not installed: run `make setup`")
    broker = Broker(tmp_path / "broker", host=HOST, port=free_port())
    fleet = Fleet(broker)
    broker.start()
    with socket.create_connection((HOST, broker.port), timeout=1):  # it listens
        pass
    try:
        yield fleet
    finally:
        fleet.close()
        pid = broker.pid
        broker.stop(timeout=2)
        if pid is not None:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        print(broker.log_tail())  # pytest shows it only when the test failed


def centre_events(centre_kw: dict) -> list:
    events: list = []
    centre_kw["on_change"] = lambda station, record: events.append((station, record))
    return events


# --------------------------------------------------------------------------------------------- broker


def test_broker_files_are_private_and_the_acl_names_every_account(fleet):
    broker = fleet.broker
    fleet.account("dong-hai")
    password = fleet.passwords["dong-hai"]
    assert stat.S_IMODE(broker.directory.stat().st_mode) == 0o700
    for path in (broker.config_path, broker.password_path, broker.acl_path, broker.log_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in broker.directory.iterdir():  # hashed by mosquitto_passwd; the plain text went nowhere
        text = path.read_text(errors="replace")
        assert password not in text and fleet.centre_password not in text, path
    hashes = [line.split(":")[1] for line in broker.password_path.read_text().splitlines()]
    assert [h[:3] for h in hashes] == ["$7$", "$7$"]  # PBKDF2-SHA512
    config = broker.config_path.read_text()
    assert "allow_anonymous false" in config
    assert f"password_file {broker.password_path}" in config and f"acl_file {broker.acl_path}" in config
    # Listener options come after the listener: nothing listens on mosquitto's default port by accident.
    assert config.index(f"listener {broker.port} {HOST}") < config.index("use_username_as_clientid true")
    assert "port 1883" not in broker.log_tail(limit=None) or broker.port == 1883
    acl = broker.acl_path.read_text()
    assert "user dong-hai\ntopic write playout/station/dong-hai/#\ntopic read playout/centre/#" in acl
    assert "user centre\ntopic read #\ntopic write playout/centre/#" in acl
    assert broker.users() == ["centre", "dong-hai"]
    with pytest.raises(ValueError):
        broker.add_station("../etc")
    with pytest.raises(ValueError):
        broker.add_station("centre")


def test_a_broker_that_cannot_listen_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        broker = Broker(tmp_path / "broker", port=taken.getsockname()[1])
        with pytest.raises(BrokerFailed) as failed:
            broker.start(timeout=5)
    assert failed.value.code == "FLEET_BROKER_FAILED" and "mosquitto" in failed.value.message
    assert "Address already in use" in failed.value.detail
    assert not broker.running


# ---------------------------------------------------------------------------------------------- status


def test_a_stations_status_reaches_the_centre_rate_limited_and_its_goodbye(fleet):
    kw: dict = {}
    events = centre_events(kw)
    centre = fleet.centre(**kw)
    station = fleet.station("dong-hai", min_interval_s=0.4, disk_path=fleet.broker.directory)
    assert wait_until(lambda: events, 5)  # the callback, which runs just after the state is visible
    first = centre.stations["dong-hai"].status
    assert first["online"] is True and first["version"] and first["disk_free_bytes"] > 0
    assert first["time"][-6] in "+-" and first["time"][10] == "T"  # ISO 8601 with its offset
    assert set(fleet_mqtt.STATUS_FIELDS) <= set(first)

    before = len(events)
    for n in range(5):  # a burst of changes is one message (the newest), not five
        station.publish_status(
            {"relay": n % 2 == 0, "now_playing": {"title": f"Bản tin {n}"}, "clock": "synced"}
        )
    assert centre.wait_for(lambda s: s["dong-hai"].status.get("now_playing") == {"title": "Bản tin 4"}, 3)
    time.sleep(0.5)
    assert 1 <= len(events) - before <= 2, events[before:]
    record = centre.stations["dong-hai"]
    assert record.online and record.status["relay"] is True and record.status["clock"] == "synced"
    assert station.state.connected and station.state.code is None and station.state.connections == 1

    station.close()
    assert centre.wait_for(lambda s: not s["dong-hai"].online, 3)
    goodbye = centre.stations["dong-hai"]
    assert goodbye.status["reason"] == "stopped"
    assert goodbye.last_online["now_playing"] == {"title": "Bản tin 4"}  # what it said last, kept


def test_a_heartbeat_republishes_the_status(fleet):
    kw: dict = {}
    events = centre_events(kw)
    centre = fleet.centre(**kw)
    fleet.station("dong-hai", heartbeat_s=0.2)
    assert centre.wait_for(lambda s: "dong-hai" in s, 5)
    time.sleep(1.0)
    assert len([e for e in events if e[0] == "dong-hai"]) >= 4


CHILD = """
import sys, time
from playout.fleet.mqtt import StationLink
station, port = sys.argv[1], int(sys.argv[2])
link = StationLink(station, "127.0.0.1", port, sys.stdin.readline().strip(), on_doorbell=lambda ring: None)
link.start()
link.publish_status({"relay": True, "now_playing": {"title": "Bản tin chiều"}})
print("started", flush=True)
time.sleep(60)
"""


def test_a_killed_station_leaves_its_will_with_the_centre(fleet):
    centre = fleet.centre()
    password = fleet.account("phu-loi")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, "phu-loi", str(fleet.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        child.stdin.write(password + "\n")
        child.stdin.flush()
        assert centre.wait_for(lambda s: "phu-loi" in s and s["phu-loi"].status.get("relay") is True, 10)
        killed = time.monotonic()
        child.send_signal(signal.SIGKILL)  # no goodbye, no DISCONNECT: the broker speaks for it
        assert centre.wait_for(lambda s: not s["phu-loi"].online, 5)
        print(
            f"\nwill of a SIGKILLed station at the centre after {(time.monotonic() - killed) * 1000:.0f} ms"
        )
    finally:
        child.kill()
        child.wait()
    record = centre.stations["phu-loi"]
    assert record.status == {"online": False}
    assert record.last_online["now_playing"] == {"title": "Bản tin chiều"}
    # A centre that starts later still finds the will (retained).
    late = fleet.centre()
    assert late.wait_for(lambda s: "phu-loi" in s, 5)
    assert late.stations["phu-loi"].status == {"online": False} and late.stations["phu-loi"].retained


def test_a_dropped_socket_also_publishes_the_will(fleet):
    centre = fleet.centre()
    station = fleet.station("an-phu")
    assert centre.wait_for(lambda s: "an-phu" in s and s["an-phu"].online, 5)
    station._client.socket().close()  # the link dies without a DISCONNECT
    assert centre.wait_for(lambda s: not s["an-phu"].online, 5)
    # ... and the station comes back by itself
    assert centre.wait_for(lambda s: s["an-phu"].online, 5)
    assert station.state.connections == 2


# ------------------------------------------------------------------------------------------------- ACL


def test_a_station_cannot_speak_for_another_or_ring(fleet):
    kw: dict = {}
    events = centre_events(kw)
    centre = fleet.centre(**kw)
    rings: list[Doorbell] = []
    fleet.station("b", on_doorbell=rings.append)
    assert centre.wait_for(lambda s: "b" in s, 5)
    b_status = dict(centre.stations["b"].status)

    attacker, seen = fleet.raw_client("a", fleet.account("a"))
    assert wait_until(lambda: seen["connack"] is not None, 5) and not seen["connack"].is_failure
    forged = attacker.publish(
        "playout/station/b/status", json.dumps({**b_status, "relay": True}), qos=1, retain=True
    )
    fake_ring = attacker.publish(
        "playout/centre/doorbell", json.dumps({"level": "emergency", "version": 9}), qos=1
    )
    own = attacker.publish("playout/station/a/status", json.dumps({"online": True, "relay": False}), qos=1)
    for info in (forged, fake_ring, own):
        info.wait_for_publish(5)
    assert str(seen["pubacks"][forged.mid]) == "Not authorized"
    assert str(seen["pubacks"][fake_ring.mid]) == "Not authorized"
    assert not seen["pubacks"][own.mid].is_failure
    # a's own status went through after the forged one, on the same connection: had the forged one been
    # delivered, the centre would have it by now.
    assert centre.wait_for(lambda s: "a" in s, 5)
    assert [station for station, _ in events].count("b") == 1
    assert centre.stations["b"].status == b_status
    time.sleep(0.2)
    assert rings == []  # the forged "emergency" reached nobody


def test_anonymous_and_wrong_passwords_are_refused(fleet):
    centre = fleet.centre()
    _, seen = fleet.raw_client(None)
    assert wait_until(lambda: seen["connack"] is not None, 5)
    assert seen["connack"].is_failure, seen["connack"]

    fleet.account("dong-hai")
    wrong = fleet.station("dong-hai", password="not-the-password")
    assert wait_until(lambda: wrong.state.code == "FLEET_LINK_REFUSED", 5), wrong.state
    state = wrong.state
    assert not state.connected and "refused" in state.last_error and state.connections == 0
    assert state.message.startswith("Trung tâm từ chối")
    wrong.publish_status({"relay": True})  # harmless, and it never raises
    time.sleep(0.3)
    assert "dong-hai" not in centre.stations


def test_a_revoked_station_is_dropped_at_once(fleet):
    centre = fleet.centre()
    station = fleet.station("dong-hai")
    assert centre.wait_for(lambda s: "dong-hai" in s and s["dong-hai"].online, 5)
    fleet.broker.remove_station("dong-hai")
    assert wait_until(lambda: station.state.code == "FLEET_LINK_REFUSED", 5), station.state
    assert "dong-hai" not in fleet.broker.users() and "dong-hai" not in fleet.broker.acl_path.read_text()


# -------------------------------------------------------------------------------------------- doorbell


def test_a_ring_reaches_ten_stations_within_two_seconds_and_a_targeted_one_only_its_station(fleet):
    centre = fleet.centre()
    ids = [f"s{n:02d}" for n in range(10)]
    received: dict[str, list[tuple[float, Doorbell]]] = {i: [] for i in ids}
    lock = threading.Lock()

    def recorder(station_id):
        def on_doorbell(ring):
            with lock:
                received[station_id].append((time.monotonic(), ring))

        return on_doorbell

    for station_id in ids:
        fleet.station(station_id, on_doorbell=recorder(station_id))
    assert centre.wait_for(lambda s: all(i in s for i in ids), 10)

    rung = time.monotonic()
    centre.ring("normal", 7)
    assert wait_until(lambda: all(received[i] for i in ids), 2.0), {i: len(r) for i, r in received.items()}
    latency = max(received[i][0][0] for i in ids) - rung
    print(f"\ndoorbell to 10 stations: last one called back {latency * 1000:.0f} ms after ring()")
    assert latency < 2.0
    assert all(
        r[0][1].level == "normal" and r[0][1].version == 7 and r[0][1].station is None
        for r in received.values()
    )
    assert not any(r[0][1].retained for r in received.values())

    centre.ring("priority", 8, station="s03")
    centre.ring("normal", 9)  # after the targeted ring on the same connection: a barrier for everyone
    assert wait_until(lambda: all(any(d.version == 9 for _, d in received[i]) for i in ids), 2.0)
    time.sleep(0.1)
    got_8 = [i for i in ids if any(d.version == 8 for _, d in received[i])]
    assert got_8 == ["s03"]
    ring_8 = next(d for _, d in received["s03"] if d.version == 8)
    assert ring_8.station == "s03" and ring_8.level == "priority"


def test_an_emergency_ring_only_asks_for_a_refresh(fleet):
    kw: dict = {}
    events = centre_events(kw)
    centre = fleet.centre(**kw)
    rings: list[Doorbell] = []
    station = fleet.station("dong-hai", on_doorbell=rings.append)
    station.publish_status({"relay": False})
    # Wait for the centre's callback, not its state: the state is visible a moment before on_change runs.
    assert wait_until(lambda: any(r and r.status.get("relay") is False for _, r in list(events)), 5)
    status_before, events_before = station.status, len(events)

    sent = centre.ring("emergency", 12, station="dong-hai")
    assert wait_until(lambda: rings, 2)
    time.sleep(0.5)
    assert len(rings) == 1
    ring = rings[0]
    assert (ring.level, ring.version, ring.station, ring.retained) == ("emergency", 12, "dong-hai", False)
    assert ring.ring_id == sent["id"] and dict(ring.payload) == sent
    # Nothing else happened: the station's status is as it was and it sent nothing in answer.
    assert station.status == status_before and len(events) == events_before

    # Junk is still only a ring: no level, no version, a refresh at most.
    centre._client.publish(fleet_mqtt.STATION_DOORBELL_TOPIC.format(station="dong-hai"), b"\xff" * 10, qos=1)
    assert wait_until(lambda: len(rings) == 2, 2)
    assert (rings[1].level, rings[1].version, dict(rings[1].payload)) == (None, None, {})

    # A ring is retained: a station that connects later gets it at once, marked as a replay.
    centre.ring("emergency", 13)
    assert wait_until(lambda: len(rings) == 3, 2)
    late: list[Doorbell] = []
    fleet.station("dong-hai-2", on_doorbell=late.append)
    assert wait_until(lambda: late, 3)
    assert (late[0].retained, late[0].version, late[0].station) == (True, 13, None)


def test_the_module_has_no_path_to_the_air():
    """Nothing received over MQTT alone may make a station air: the module cannot even reach the relay."""
    tree = ast.parse(Path(fleet_mqtt.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    ours = {name for name in imported if name.split(".")[0] in ("playout", "tts", "gpio")}
    assert ours == {"playout", "playout.atomic", "playout.errors"}, ours
    from playout.intake import PRIORITIES

    assert LEVELS == PRIORITIES


def test_a_ring_without_a_broker_is_refused_in_vietnamese(fleet):
    centre = fleet.centre()
    fleet.broker.stop()
    assert wait_until(lambda: not centre.state.connected, 5)
    with pytest.raises(BrokerUnavailable) as refused:
        centre.ring("emergency", 3)
    assert refused.value.code == "FLEET_BROKER_UNAVAILABLE" and refused.value.http_status == 503
    assert "chuông báo" in refused.value.message
    with pytest.raises(ValueError):
        centre.ring("urgent", 3)


# --------------------------------------------------------------------------------------- resilience


def test_the_station_reconnects_and_republishes_after_a_broker_restart(fleet):
    kw: dict = {}
    events = centre_events(kw)
    centre = fleet.centre(**kw)
    station = fleet.station("dong-hai")
    assert centre.wait_for(lambda s: "dong-hai" in s, 5)

    fleet.broker.stop()  # no persistence: the restarted broker has forgotten every retained status
    assert wait_until(lambda: not station.state.connected, 5)
    started = time.monotonic()
    station.publish_status({"relay": True, "last_play": {"title": "Bản tin sáng", "outcome": "played"}})
    assert time.monotonic() - started < 0.05  # it only records the status
    assert wait_until(
        lambda: station.state.code == "FLEET_LINK_DOWN" and "cannot reach" in station.state.last_error, 3
    )
    assert station.state.message.startswith("Mất kết nối")

    restarted = time.time()
    fleet.broker.start()
    assert wait_until(lambda: events and events[-1][1] and events[-1][1].received_at > restarted, 5)
    record = centre.stations["dong-hai"]
    assert (
        record.online
        and record.status["relay"] is True
        and record.status["last_play"]["title"] == "Bản tin sáng"
    )
    assert station.state.connected and station.state.connections == 2
    assert events[-1][1].status["relay"] is True


def test_a_station_without_a_broker_never_blocks_or_raises(tmp_path):
    port = free_port()  # nobody listens here
    started = time.monotonic()
    link = StationLink("dong-hai", HOST, port, "secret", on_doorbell=lambda ring: None, **FAST)
    link.start()
    link.publish_status({"relay": True})
    assert time.monotonic() - started < 0.2
    assert wait_until(lambda: link.state.last_error is not None, 3)
    assert link.state.code == "FLEET_LINK_DOWN" and not link.state.connected
    closing = time.monotonic()
    link.close()
    assert time.monotonic() - closing < 2.0

    broken = StationLink(
        "x", HOST, port, "secret", on_doorbell=print, tls=LinkTLS(ca_file=tmp_path / "none.pem")
    )
    broken.start()  # unusable TLS settings are reported, not raised
    assert broken.state.code == "FLEET_LINK_TLS" and "TLS" in broken.state.last_error
    broken.close()


def test_tls_on_the_listener(tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed")
    request = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1"
    request += " -addext subjectAltName=IP:127.0.0.1"
    for name in ("centre", "impostor"):
        out = ["-keyout", tmp_path / f"{name}.key", "-out", tmp_path / f"{name}.crt"]
        subprocess.run([openssl, *request.split(), *out], check=True, capture_output=True)
    cert, key = tmp_path / "centre.crt", tmp_path / "centre.key"
    broker = Broker(tmp_path / "broker", port=free_port(), tls=BrokerTLS(cert, key))
    password = broker.add_station("dong-hai")
    centre_password = broker.add_centre()
    with broker:
        centre = CentreLink(HOST, broker.port, centre_password, tls=LinkTLS(ca_file=cert), **FAST)
        station = StationLink(
            "dong-hai", HOST, broker.port, password, on_doorbell=print, tls=LinkTLS(ca_file=cert)
        )
        plain = StationLink("dong-hai", HOST, broker.port, password, on_doorbell=print, **FAST)
        fooled = StationLink(
            "dong-hai", HOST, broker.port, password, on_doorbell=print, tls=LinkTLS(tmp_path / "impostor.crt")
        )
        try:
            centre.start()
            station.start()
            assert centre.wait_for(lambda s: "dong-hai" in s and s["dong-hai"].online, 5)
            plain.start()  # a plain connection to a TLS listener never gets in
            fooled.start()  # nor does one that trusts another certificate than the broker's
            assert wait_until(lambda: fooled.state.code == "FLEET_LINK_TLS", 3), fooled.state
            assert "certificate verify failed" in fooled.state.last_error
            time.sleep(0.3)
            assert not plain.state.connected and plain.state.connections == 0
            assert station.state.connections == 1  # (nobody took its session over)
        finally:
            fooled.close()
            plain.close()
            station.close()
            centre.close()


# ------------------------------------------------------------------------------- another process's broker


def test_an_account_added_through_another_broker_object_reaches_the_running_broker(fleet):
    broker = fleet.broker
    assert int(broker.pid_path.read_text()) == broker.pid == broker.running_pid()
    # What `playout centre station` builds in a second shell: the same folder, a broker it did not start.
    other = Broker(broker.directory, host=HOST, port=broker.port)
    assert not other.running and other.running_pid() == broker.pid
    with pytest.raises(BrokerFailed) as twice:
        other.start()
    assert f"pid {broker.pid}" in twice.value.message and not other.running

    centre = fleet.centre()
    password = other.add_station("dong-hai")  # writes the account, then reloads the running broker
    station = fleet.station("dong-hai", password=password)
    assert centre.wait_for(lambda s: "dong-hai" in s and s["dong-hai"].online, 5), station.state
    assert station.state.connections == 1

    other.remove_station("dong-hai")
    assert wait_until(lambda: station.state.code == "FLEET_LINK_REFUSED", 5), station.state
    assert broker.running and other.reload() is True


def test_a_stale_pid_file_signals_nothing_else(fleet, tmp_path):
    stale = Broker(tmp_path / "stale", host=HOST, port=free_port())
    stale.write_config()
    started: list[subprocess.Popen] = []
    try:
        # A broker killed long ago left its pid file; the pid now belongs to something else.
        sleeper = subprocess.Popen(["sleep", "60"])
        started.append(sleeper)
        # Something that merely calls itself mosquitto and names our config.
        impostor = subprocess.Popen(
            ["mosquitto", "-c", "sleep 60; :", "-c", str(stale.config_path)],
            executable=shutil.which("bash"),
            start_new_session=True,
        )
        started.append(impostor)
        assert wait_until(
            lambda: Path(f"/proc/{impostor.pid}/cmdline").read_bytes().startswith(b"mosquitto\0-c"), 5
        )
        gone = subprocess.Popen(["true"])
        gone.wait()
        # And a real mosquitto, but another centre's (the fleet's broker runs another config).
        offset = fleet.broker.log_path.stat().st_size
        for pid in (sleeper.pid, impostor.pid, gone.pid, fleet.broker.pid, os.getpid(), 1):
            stale.pid_path.write_text(f"{pid}\n")
            assert stale.running_pid() is None, pid
            assert stale.reload(timeout=0.3) is False, pid
        time.sleep(0.2)  # a SIGHUP would have ended sleep and bash by now
        assert sleeper.poll() is None and impostor.poll() is None
        assert fleet.broker.running and "Reloading config" not in fleet.broker.log_tail(offset, None)
        stale.pid_path.unlink()
        assert stale.reload() is False  # no pid file at all: nothing to do
    finally:
        for proc in started:
            if proc is impostor:
                os.killpg(proc.pid, signal.SIGKILL)  # bash and its sleep, the session this test made
            else:
                proc.kill()
            proc.wait()


def test_a_station_added_in_a_second_shell_reaches_the_serving_broker(tmp_path):
    """`playout centre serve --broker` in one process, `playout centre station` in another."""
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.fail("mosquitto is not installed: run `make setup`")
    folder = tmp_path / "centre"
    mqtt_port, http_port = free_port(), free_port()
    playout = [sys.executable, "-m", "playout", "centre"]
    init = [*playout, "init", str(folder), "--broker-host", HOST, "--broker-port", str(mqtt_port)]
    subprocess.run(init, check=True, capture_output=True, timeout=60, cwd=ROOT)
    serve_log = tmp_path / "serve.log"
    broker = Broker(folder / "broker", host=HOST, port=mqtt_port)
    mosquitto_pid = None
    with open(serve_log, "wb") as log:
        serve = subprocess.Popen(
            [*playout, "serve", str(folder), "--host", HOST, "--port", str(http_port), "--broker"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            assert wait_until(lambda: broker.running_pid() is not None, 30, 0.05), serve_log.read_text()
            mosquitto_pid = broker.running_pid()
            added = subprocess.run(
                [*playout, "station", str(folder), "dong-hai", "--centre-url", f"http://{HOST}:{http_port}/"],
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            assert added.returncode == 0, added.stderr
            password = (folder / "stations" / "dong-hai" / "mqtt.pw").read_text().strip()
            link = StationLink("dong-hai", HOST, mqtt_port, password, on_doorbell=lambda ring: None, **FAST)
            link.start()
            try:
                assert wait_until(lambda: link.state.connected, 5), (link.state, broker.log_tail())
            finally:
                link.close()
            assert serve.poll() is None and broker.running_pid() == mosquitto_pid  # reloaded, not restarted
        finally:
            # Ctrl-C, as in the operator's shell.  (Not SIGTERM: uvicorn re-raises it once it has shut
            # down, and its default action ends the process before `serve` stops its broker.)
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
            # The serving process stops its broker on the way out; if it could not, this test does.
            if mosquitto_pid is not None and not wait_until(lambda: broker.running_pid() is None, 5):
                os.kill(mosquitto_pid, signal.SIGTERM)
                pytest.fail(f"mosquitto {mosquitto_pid} outlived `playout centre serve`")


def test_the_broker_log_is_rotated_and_the_broker_keeps_logging(tmp_path):
    """Years of 4G reconnects must not fill the centre's disk through mosquitto.log."""
    from playout.fleet.mqtt import Broker

    broker = Broker(tmp_path / "broker", host="127.0.0.1", port=free_port())
    broker.start()
    try:
        with open(broker.log_path, "ab") as fh:
            fh.write(b"x" * 5000)
        assert not broker.rotate_log(max_bytes=1_000_000)  # under the cap: left alone
        assert broker.rotate_log(max_bytes=4000)
        old = broker.log_path.with_name("mosquitto.log.1")
        assert old.stat().st_size > 5000 and broker.log_path.stat().st_size < 1000
        assert oct(old.stat().st_mode & 0o777) == "0o600"
        # Still the same broker, still logging where the centre reads it: a reload is seen.
        broker.add_station("dong-hai")
        assert broker.reload()
        assert "Reloading config" in broker.log_tail()
        assert broker.log_path.stat().st_size < 5000
    finally:
        broker.stop()


def test_a_centre_behind_nat_listens_on_every_address_and_gives_stations_its_public_name(tmp_path):
    """A centre's public name (what stations dial) need not be an address of the machine itself."""
    import yaml

    from playout.fleet.centre import Centre

    port = free_port()
    centre = Centre(tmp_path / "centre")
    centre.init(broker_host="centre.example.vn", broker_port=port, broker_listen="0.0.0.0")
    out = centre.add_station("dong-hai", centre_url="https://centre.example.vn/")
    fleet = yaml.safe_load((out / "fleet.yaml").read_text())["fleet"]
    assert fleet["broker"]["host"] == "centre.example.vn" and fleet["broker"]["port"] == port
    broker = centre.broker()
    broker.start()
    try:
        assert f"listener {port} 0.0.0.0" in broker.config_path.read_text()
        # Its own link goes to 127.0.0.1: the public name does not even resolve here.
        assert centre.ring("khan_cap", wait_s=10) and centre.link().state.connected
    finally:
        centre.close()
        broker.stop()
