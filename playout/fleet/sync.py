"""A station's share of the centre's bulletins, verified, merged into its own rotation.

The TUF client (playout.fleet.tuf_client) hands over only what it verified against the root the station
was installed with, for this station, within its air dates. This module turns that into what the rest of
the station already knows how to air, by level (TT 39/2020):

* ``khan_cap`` (emergency) and ``uu_tien`` (priority): written into ``bulletins/approved/`` as
  ``fleet-<hash>.md`` with front matter (title, priority, air dates, department), so the library reads
  them as approved bulletins; an emergency airs at once, a priority one first in the next window.
* ``thuong`` (ordinary): the ward decides. It goes to the local approval desk as a pending script,
  submitted by "trung-tam"; the ward's approver approves it or not, as for their own scripts.

A bulletin withdrawn at the centre, revoked with its approver's key, or past its ``air_until`` (checked
again every few seconds, not only at each refresh, so an emergency does not air late after a day offline)
disappears from ``approved/``. Files the station wrote are listed in ``<data>/fleet/manifest.json``; files
an operator dropped into ``approved/`` are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from playout.atomic import atomic_write_text

logger = logging.getLogger(__name__)

LEVEL_PRIORITY = {"khan_cap": "emergency", "uu_tien": "priority", "thuong": "normal"}
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)
#: Who submits a centre's ordinary bulletin to the ward's desk (the audit shows it).
CENTRE = "trung-tam"


def _parse_time(value: Any, tz: dt.tzinfo) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=tz)


def script_text(data: bytes, custom: dict, tz: dt.tzinfo) -> str:
    """The script as the station stores it: the centre's fields as front matter, then the body."""
    body = _FRONT_MATTER.sub("", data.decode("utf-8").lstrip("\ufeff"), count=1).strip()
    meta: dict[str, Any] = {"title": str(custom.get("title") or "Bản tin của trung tâm")[:200]}
    meta["priority"] = LEVEL_PRIORITY.get(custom.get("level", "thuong"), "normal")
    for key in ("air_from", "air_until"):
        t = _parse_time(custom.get(key), tz)
        if t is not None:
            meta[key] = t.astimezone(tz).date().isoformat()
    if custom.get("department"):
        meta["department"] = str(custom["department"])[:200]
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip()
    return f"---\n{front}\n---\n{body}\n"


class FleetSync:
    """Refreshes from the centre and keeps ``approved/fleet-*.md`` and the desk in step with it."""

    def __init__(
        self,
        *,
        client: Any,
        approved_dir: Path,
        state_dir: Path,
        tz: dt.tzinfo,
        submit: Callable[[bytes, str, str], Any],
        withdraw: Callable[[str], Any],
        wake: Callable[[], None],
        alarm: Callable[[str, str, str | None], Any],
        now: Callable[[], dt.datetime] | None = None,
    ):
        self.client = client
        self.approved_dir = approved_dir
        self.manifest_path = state_dir / "manifest.json"
        self.tz = tz
        self._submit = submit
        self._withdraw = withdraw
        self._wake = wake
        self._alarm = alarm
        self._now = now or (lambda: dt.datetime.now(tz))
        self._lock = threading.Lock()
        self.manifest = self._load()
        self._raised: set[str] = set()
        #: What health shows: online, last refresh, the last alarm, counts.
        self.state: dict[str, Any] = {"online": None, "last_refresh": None, "alarm": None, "bulletins": 0}

    def _load(self) -> dict[str, dict]:
        try:
            data = json.loads(self.manifest_path.read_text("utf-8"))
            return data if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("fleet manifest unreadable (%s): starting afresh", exc)
            return {}

    def _save(self) -> None:
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.manifest_path, json.dumps(self.manifest, ensure_ascii=False, indent=1))

    def _expired(self, entry: dict) -> bool:
        until = _parse_time(entry.get("air_until"), self.tz)
        return until is not None and self._now() >= until

    def refresh(self) -> dict[str, Any]:
        """Ask the TUF client for the verified set and apply it; never raises for the network or centre."""
        try:
            result = self.client.refresh()
        except Exception as exc:  # noqa: BLE001 - whatever the client did, the station keeps airing
            logger.exception("fleet refresh failed")
            self.state.update(online=False, alarm=f"FLEET_REFRESH_FAILED: {exc}")
            return self.state
        alarms = list(getattr(result, "alarms", None) or [])
        for code, message in alarms:
            # One alarm per fault, not one per refresh: a station offline or fed stale metadata for a day
            # would otherwise fill the alarm list every few minutes. It is raised again once it has cleared.
            if code not in self._raised:
                self._alarm(code.lower(), message, code)
            self.state["alarm"] = f"{code}: {message}"
        self._raised = {code for code, _ in alarms}
        if not alarms:
            self.state["alarm"] = None
        self.apply(result.bulletins)
        self.state.update(
            online=getattr(result, "online", None),
            last_refresh=self._now().isoformat(timespec="seconds"),
            bulletins=len(self.manifest),
        )
        return self.state

    def apply(self, bulletins: list[Any]) -> bool:
        """Make ``approved/`` and the desk match ``bulletins`` (each with ``path``, ``data``, ``custom``)."""
        changed = False
        with self._lock:
            wanted: dict[str, tuple[Any, str]] = {}
            for b in bulletins:
                sha = hashlib.sha256(b.data).hexdigest()
                wanted[sha] = (b, b.custom.get("level", "thuong"))
            for sha, (b, level) in wanted.items():
                entry = self.manifest.get(sha)
                custom = dict(b.custom)
                if entry is not None or self._expired(custom):
                    continue
                text = script_text(b.data, custom, self.tz)
                name = f"fleet-{sha[:16]}.md"
                entry = {"target": b.path, "level": level, "air_until": custom.get("air_until"), "file": None}
                if level == "thuong":
                    try:
                        self._submit(text.encode("utf-8"), name, CENTRE)
                        entry["submitted"] = True
                        entry["desk_sha"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
                    except Exception as exc:  # noqa: BLE001 - e.g. refused as too long: the desk's reason
                        logger.warning("centre bulletin %s not taken to the desk: %s", b.path, exc)
                        entry["submitted"] = False
                        entry["error"] = str(exc)[:300]
                else:
                    self.approved_dir.mkdir(parents=True, exist_ok=True)
                    atomic_write_text(self.approved_dir / name, text)
                    entry["file"] = name
                    logger.info("centre bulletin %s (%s) added: %s", b.path, level, custom.get("title"))
                self.manifest[sha] = entry
                changed = True
            for sha in [s for s in self.manifest if s not in wanted]:
                changed |= self._remove(sha, "withdrawn or no longer verified")
            if changed:
                self._save()
        if changed:
            self._wake()
        return changed

    def expire(self) -> bool:
        """Remove what is past its ``air_until`` now (called every few seconds): never air it late."""
        with self._lock:
            gone = [s for s, e in self.manifest.items() if e.get("file") and self._expired(e)]
            changed = False
            for sha in gone:
                changed |= self._remove(sha, "past its air_until")
            if changed:
                self._save()
        if changed:
            self._wake()
        return changed

    def _remove(self, sha: str, why: str) -> bool:
        entry = self.manifest.pop(sha, None)
        if entry is None:
            return False
        if entry.get("file"):
            path = self.approved_dir / entry["file"]
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            logger.info("centre bulletin %s removed: %s", entry.get("target"), why)
        if entry.get("desk_sha"):
            # An ordinary bulletin the ward may have approved: withdrawn at the centre, withdrawn here.
            try:
                self._withdraw(entry["desk_sha"])
            except Exception as exc:  # noqa: BLE001 - not approved (pending or rejected): nothing airs anyway
                logger.info("centre bulletin %s: desk copy not withdrawn (%s)", entry.get("target"), exc)
            logger.info("centre bulletin %s withdrawn from the desk: %s", entry.get("target"), why)
        return True
