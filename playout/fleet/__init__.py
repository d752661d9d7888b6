"""A province centre feeding many stations (issue 14): what the centre and its stations share.

The centre publishes bulletins as a TUF repository of static files (``tuf_repo``); each station pulls and
verifies them with python-tuf's ``ngclient`` (``tuf_client``).  A station airs only what an approver the
centre delegated to signed: a web server, a mirror or an MQTT broker in between can delay content, never
change it.

This module holds the vocabulary both sides use: the fleet's errors (``FleetError`` and its codes, in the
station's style: a Vietnamese ``message`` for people, a stable ``code`` for programs) and the rules a
bulletin's signed ``custom`` fields obey (``bulletin_meta``).  It imports nothing from tuf, so the MQTT side
and the web desk can use it cheaply.

    PlayoutError
    └── FleetError                 503  the centre's content could not be used as it is
        ├── (station side, returned as alarms by FleetClient.refresh, never raised to the caller)
        │   FLEET_OFFLINE, FLEET_STALE, FLEET_METADATA_EXPIRED, FLEET_ROLLBACK, FLEET_BAD_SIGNATURE,
        │   FLEET_METADATA_INVALID, FLEET_TARGET_MISMATCH, FLEET_BULLETIN_INVALID, FLEET_ROOT_INVALID,
        │   FLEET_CACHE_FAILED, FLEET_REFRESH_FAILED
        └── CentreError            422  the centre refuses a desk action (codes in ``tuf_repo``)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from playout.errors import PlayoutError

#: TT39's three levels: thông thường (the ward chooses), ưu tiên (first in the next window), khẩn cấp (now).
LEVELS = ("thuong", "uu_tien", "khan_cap")

#: Approver names become role names (``approver-<name>``) and folders (``bulletins/<name>/``).
APPROVER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")

#: Station ids as they appear in a bulletin's ``wards``.
STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

#: The keys every bulletin target's ``custom`` carries.
BULLETIN_FIELDS = ("title", "wards", "level", "air_from", "air_until", "approver", "approved_at", "sha256")


class FleetError(PlayoutError):
    """Content from the centre could not be used (station side) or a centre action was refused."""

    code = "FLEET_ERROR"
    http_status = 503


def role_name(approver: str) -> str:
    """The delegated targets role of one approver."""
    return f"approver-{approver}"


def bulletin_path(approver: str, sha256: str) -> str:
    """The target path of a script: content-addressed inside the approver's folder."""
    return f"bulletins/{approver}/{sha256}.md"


def parse_time(value: object, field: str) -> datetime:
    """An ISO 8601 time that carries its offset (a time without one means nothing across provinces)."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{field} is not an ISO 8601 time: {value!r}") from None
    else:
        raise ValueError(f"{field} must be an ISO 8601 time, got {type(value).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{field} has no UTC offset: {value!r}")
    return when


def bulletin_meta(custom: object) -> dict[str, object]:
    """Check a bulletin's ``custom`` fields; return them normalised (times as ISO strings).

    Raises ``ValueError`` (English, for logs) naming the first field that is wrong.  Used by the centre
    before it signs and by the station before it airs: both hold the same rules.
    """
    if not isinstance(custom, Mapping):
        raise ValueError("custom must be an object")
    missing = [k for k in BULLETIN_FIELDS if k not in custom]
    if missing:
        raise ValueError(f"missing fields: {', '.join(missing)}")
    title = custom["title"]
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title must be a non-empty string")
    wards = custom["wards"]
    if not isinstance(wards, list | tuple) or not wards:
        raise ValueError("wards must be a non-empty list of station ids")
    for ward in wards:
        if not isinstance(ward, str) or not STATION_ID.match(ward):
            raise ValueError(f"bad station id in wards: {ward!r}")
    level = custom["level"]
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    air_from = parse_time(custom["air_from"], "air_from")
    air_until = parse_time(custom["air_until"], "air_until")
    if air_until <= air_from:
        raise ValueError("air_until must be after air_from")
    approved_at = parse_time(custom["approved_at"], "approved_at")
    approver = custom["approver"]
    if not isinstance(approver, str) or not APPROVER_NAME.match(approver):
        raise ValueError(f"bad approver name: {approver!r}")
    sha256 = custom["sha256"]
    if not isinstance(sha256, str) or not SHA256_HEX.match(sha256):
        raise ValueError("sha256 must be 64 lower-case hex digits")
    out = {k: v for k, v in custom.items() if k not in BULLETIN_FIELDS}
    out.update(
        title=title.strip(),
        wards=sorted(set(wards)),
        level=level,
        air_from=air_from.isoformat(),
        air_until=air_until.isoformat(),
        approver=approver,
        approved_at=approved_at.isoformat(),
        sha256=sha256,
    )
    return out
