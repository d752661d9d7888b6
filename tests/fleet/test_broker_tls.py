"""MQTT over TLS between a centre and its stations: the centre's own CA, installed with each station.

Real parts: certificates made by playout.fleet.broker_tls, a real Mosquitto started by the centre, the
station's link built from the fleet.yaml the centre wrote for it, and a TCP proxy on the link that keeps
every byte the station sends (what anyone on the ward Wi-Fi or the carrier's network could read).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import stat
import subprocess
import sys

import pytest
import yaml
from cryptography import x509

from bench.fleet_demo import TcpProxy
from playout.config import parse_config
from playout.errors import ConfigError
from playout.fleet.broker_tls import make_broker_certificates
from playout.fleet.centre import Centre
from playout.fleet.station_part import station_link
from tests.fleet.test_mqtt import wait_until
from tests.station import free_port


def test_the_centres_certificates_name_its_addresses_and_keep_their_keys_private(tmp_path):
    made = make_broker_certificates(tmp_path / "tls", "mqtt.tinh.gov.vn", listen="10.0.0.5")
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    assert stat.S_IMODE(made.keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(made.certfile.stat().st_mode) == 0o644

    ca = x509.load_pem_x509_certificate(made.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(made.certfile.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mqtt.tinh.gov.vn", "localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5", "127.0.0.1", "::1"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    server.verify_directly_issued_by(ca)
    now = dt.datetime.now(dt.UTC)
    # Backdated a day (a station whose clock is behind still accepts it), and long-lived: no field visit
    # for a certificate that ran out.
    assert server.not_valid_before_utc < now - dt.timedelta(hours=23)
    assert server.not_valid_after_utc > now + dt.timedelta(days=9 * 365)


def _centre(tmp_path, *, tls: bool) -> tuple[Centre, int]:
    port = free_port()
    centre = Centre(tmp_path / "centre")
    centre.init(broker_host="127.0.0.1", broker_port=port, broker_tls=tls)
    return centre, port


def _station_over(proxy: TcpProxy, out, events: list):
    """The station's link, as station_part builds it from the fleet.yaml the centre wrote, via the proxy."""
    fleet_yaml = yaml.safe_load((out / "fleet.yaml").read_text("utf-8"))
    fleet_yaml["fleet"]["broker"]["port"] = proxy.port
    cfg = parse_config(fleet_yaml, base=out)
    return station_link(cfg.fleet, on_doorbell=events.append, reconnect_max_s=0.5)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_a_stations_password_crosses_the_link_only_encrypted_with_tls(tmp_path, tls):
    centre, port = _centre(tmp_path, tls=tls)
    broker = centre.broker()
    broker.start()
    proxy = TcpProxy(port, record=True).start()
    try:
        out = centre.add_station("dong-hai", centre_url="http://127.0.0.1:9")
        settings = yaml.safe_load((out / "fleet.yaml").read_text("utf-8"))["fleet"]["broker"]
        password = (out / "mqtt.pw").read_text().strip()
        link = centre.link()
        assert wait_until(lambda: link.state.connected, 10), link.state
        rings: list = []
        station = _station_over(proxy, out, rings)
        station.start()
        try:
            assert wait_until(lambda: station.state.connected, 10), station.state
            # The whole path works: status up to the centre, a ring down to the station.
            station.publish_status({"relay": False})
            assert link.wait_for(lambda s: "dong-hai" in s and s["dong-hai"].online, 5)
            centre.ring("uu_tien", "dong-hai")
            assert wait_until(lambda: rings, 5)
        finally:
            station.close()
        seen = bytes(proxy.sent_up)
        assert len(seen) > 200
        if tls:
            assert settings["tls"] is True and settings["ca_file"] == "broker-ca.pem"
            assert (out / "broker-ca.pem").read_bytes() == centre.broker_tls()["ca_file"].read_bytes()
            assert seen[:1] == b"\x16"  # a TLS handshake record, not an MQTT CONNECT
            assert password.encode() not in seen and b"dong-hai" not in seen
        else:  # the control: without TLS anyone on the link reads it
            assert "tls" not in settings
            assert seen[:1] == b"\x10" and password.encode() in seen
    finally:
        proxy.close()
        centre.close()
        broker.stop()


def test_a_station_trusting_only_the_centres_ca_refuses_another_broker(tmp_path):
    """A broker with another certificate (an impostor on the ward's Wi-Fi) never gets the password."""
    centre, _ = _centre(tmp_path, tls=True)
    out = centre.add_station("dong-hai", centre_url="http://127.0.0.1:9")
    impostor, impostor_port = _centre(tmp_path / "impostor", tls=True)
    broker = impostor.broker()
    broker.start()
    proxy = TcpProxy(impostor_port, record=True).start()
    try:
        station = _station_over(proxy, out, [])
        station.start()
        try:
            assert wait_until(lambda: station.state.code == "FLEET_LINK_TLS", 10), station.state
            assert "certificate verify failed" in station.state.last_error
            assert "TLS" in station.state.message  # the operator's Vietnamese line names it
            password = (out / "mqtt.pw").read_text().strip()
            assert password.encode() not in bytes(proxy.sent_up)
            assert not station.state.connected
        finally:
            station.close()
    finally:
        proxy.close()
        broker.stop()


def test_a_plain_client_cannot_use_the_tls_listener(tmp_path):
    centre, port = _centre(tmp_path, tls=True)
    broker = centre.broker()
    broker.start()
    try:
        context = ssl.create_default_context(cafile=str(centre.broker_tls()["ca_file"]))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"\x10\x10\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00")  # an MQTT CONNECT in clear
            raw.settimeout(5)
            try:
                answer = raw.recv(64)
            except ConnectionResetError:
                answer = b""
            assert not answer.startswith(b"\x20")  # no CONNACK
    finally:
        broker.stop()
        centre.close()


def test_a_ca_file_without_tls_is_refused_in_the_stations_settings(tmp_path):
    data = {
        "fleet": {
            "station_id": "dong-hai",
            "centre_url": "https://centre.example.vn",
            "broker": {"host": "centre.example.vn", "port": 8883, "ca_file": "broker-ca.pem"},
        }
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(data, base=tmp_path)
    assert "ca_file chỉ dùng với tls: true" in str(refused.value)
    data["fleet"]["broker"]["tls"] = True
    cfg = parse_config(data, base=tmp_path)
    assert cfg.fleet.broker.ca_file == tmp_path / "broker-ca.pem"  # anchored at the settings' folder


def test_init_with_tls_from_the_command_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cli = [sys.executable, "-m", "playout"]
    refused = subprocess.run([*cli, "centre", "init", str(tmp_path / "a"), "--broker-tls"], env=env,
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 2 and "--broker-tls cần --broker-host" in refused.stderr
    assert not (tmp_path / "a").exists()  # nothing half-made
    done = subprocess.run(
        [*cli, "centre", "init", str(tmp_path / "b"), "--broker-host", "mqtt.tinh.gov.vn", "--broker-tls"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "MQTT qua TLS" in done.stdout and "ca.crt" in done.stdout
    settings = yaml.safe_load((tmp_path / "b" / "centre.yaml").read_text())
    assert settings["broker"]["port"] == 8883
    assert settings["broker"]["tls"] == {
        "certfile": "broker/tls/server.crt",
        "keyfile": "broker/tls/server.key",
        "ca_file": "broker/tls/ca.crt",
    }
    config = Centre(tmp_path / "b").broker().config_text()
    assert f"certfile {tmp_path / 'b' / 'broker/tls/server.crt'}" in config
    assert config.index("listener 8883") < config.index("certfile")


def test_an_existing_centre_turns_tls_on_then_replaces_its_keys(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cli = [sys.executable, "-m", "playout", "centre", "broker-tls"]
    centre, _ = _centre(tmp_path, tls=False)
    out = centre.add_station("dong-hai", centre_url="http://127.0.0.1:9")
    port = free_port()
    done = subprocess.run([*cli, str(centre.folder), "--port", str(port)], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert f"cổng {port}" in done.stdout and "1 trạm: dong-hai" in done.stdout
    fleet = yaml.safe_load((out / "fleet.yaml").read_text())["fleet"]["broker"]
    assert (fleet["tls"], fleet["ca_file"], fleet["port"]) == (True, "broker-ca.pem", port)
    centre = Centre(centre.folder)  # as the restarted centre reads it
    first_ca = (out / "broker-ca.pem").read_bytes()
    assert first_ca == centre.broker_tls()["ca_file"].read_bytes()

    def connects(ca: bytes) -> str:
        """Run the broker, connect the station with this CA; its link's code (None: connected)."""
        (out / "broker-ca.pem").write_bytes(ca)
        broker = Centre(centre.folder).broker()
        broker.start()
        proxy = TcpProxy(port, record=True).start()
        station = _station_over(proxy, out, [])
        try:
            station.start()
            assert wait_until(lambda: station.state.connected or station.state.code == "FLEET_LINK_TLS", 10)
            assert bytes(proxy.sent_up)[:1] == b"\x16"
            return station.state.code
        finally:
            station.close()
            proxy.close()
            broker.stop()

    assert connects(first_ca) is None
    # The keys leaked: a new CA and certificate; the old CA no longer gets a station in.
    made, updated = centre.make_broker_tls()
    assert updated == ["dong-hai"] and list((centre.folder / "broker").glob("tls.retired-*/ca.key"))
    new_ca = (out / "broker-ca.pem").read_bytes()
    assert new_ca != first_ca and new_ca == made.ca_file.read_bytes()
    assert connects(first_ca) == "FLEET_LINK_TLS"
    assert connects(new_ca) is None
    assert [row["action"] for row in centre.store().audit_rows(limit=10)].count("broker_tls") == 2
    centre.close()

    bare = Centre(tmp_path / "bare")
    bare.init()
    refused = subprocess.run([*cli, str(bare.folder)], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "chưa có máy chủ MQTT" in refused.stderr
