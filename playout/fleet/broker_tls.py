"""The centre broker's own small certificate authority, so station passwords never cross the link in clear.

A province's stations reach the broker over carrier NAT and ward Wi-Fi; MQTT on 1883 would send each
station's password as plain text in its CONNECT packet.  A centre without a public certificate (most of
them: the broker is often reached by an IP address, or from a private APN) gets one from
``playout centre init --broker-tls``:

- ``ca.crt`` / ``ca.key``: a private CA that signs nothing but this broker's certificate.  ``ca.crt`` goes to
  every station with its TUF root (``broker-ca.pem``) and is the only certificate the station trusts for
  the broker: like the root, it is installed, never learned from the network.
- ``server.crt`` / ``server.key``: the listener's certificate, naming the address stations are given and
  the loopback addresses the centre itself connects by.

Keys are ECDSA P-256 (small handshakes on a 2G link, supported by every OpenSSL Mosquitto builds with),
written 0600.  The certificates are made with ``cryptography``, which the centre already needs for TUF.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import os
from pathlib import Path

from playout.atomic import atomic_write_bytes

#: The CA outlives any station's installation; the server certificate is renewed from it.
CA_DAYS = 20 * 365
SERVER_DAYS = 10 * 365
#: The centre's own link reaches a broker listening on every interface through loopback.
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclasses.dataclass(frozen=True)
class BrokerCertificates:
    ca_file: Path
    certfile: Path
    keyfile: Path
    names: tuple[str, ...]
    not_after: dt.datetime


def _private_key_bytes(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    atomic_write_bytes(path, data)  # (its temporary file is 0600 from the start: a key is never readable)
    os.chmod(path, mode)


def _alt_name(name: str):
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def server_names(host: str, listen: str | None = None) -> tuple[str, ...]:
    """The names the certificate must carry: the stations' address, where it listens, and loopback."""
    names: list[str] = []
    for name in (host, listen, *LOOPBACK_NAMES):
        if name and name not in ("0.0.0.0", "::") and name not in names:
            names.append(name)
    return tuple(names)


def make_broker_certificates(
    directory: Path, host: str, *, listen: str | None = None, now: dt.datetime | None = None
) -> BrokerCertificates:
    """Create (or replace) the CA and the server certificate in ``directory`` (0700); returns their paths.

    Replacing them means every station needs the new ``ca.crt``: the CLI only calls this for a new
    centre, or when asked to."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    now = now or dt.datetime.now(dt.UTC)
    names = server_names(host, listen)
    # Backdated a day: a station whose clock runs behind (no RTC, no NTP yet) must still accept it.
    start = now - dt.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "playout centre"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"playout centre broker CA ({host})"),
        ]
    )
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        # path length 0: this CA can sign the broker's certificate and nothing that signs further.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    not_after = now + dt.timedelta(days=SERVER_DAYS)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    from cryptography.hazmat.primitives import serialization

    paths = BrokerCertificates(
        ca_file=directory / "ca.crt",
        certfile=directory / "server.crt",
        keyfile=directory / "server.key",
        names=names,
        not_after=not_after,
    )
    _write(directory / "ca.key", _private_key_bytes(ca_key), 0o600)
    _write(paths.keyfile, _private_key_bytes(server_key), 0o600)
    _write(paths.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(paths.certfile, server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths
