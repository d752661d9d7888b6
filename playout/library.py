"""The bulletin library: approved scripts, rendered ahead of time, and the rotation that picks one.

Two sources: versions approved over the web page (read from their immutable copies, see
``playout.approvals``), and scripts in ``bulletins/approved/``, a trusted drop on the Pi itself that
counts as approved, with its file time as its approval time.  A bulletin is identified by
the SHA-256 of its content: edit the file and it is a new bulletin.

Rendering happens here, in the background, never at air time: a slot only ever airs a bulletin whose
audio is already in the render cache.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from playout.approvals import ApprovalStore
from playout.config import StationConfig
from playout.errors import PlayoutError
from playout.intake import Script, is_script_file, parse_script, read_script
from tts.render import Renderer

logger = logging.getLogger(__name__)

NO_SPACE = "Hết dung lượng đĩa: bản tin sẽ được dựng lại khi có chỗ trống"


def _out_of_space(exc: BaseException | None) -> bool:
    """ENOSPC anywhere in the chain (a cache write, a temporary file of an engine, SQLite's 'full')."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "database or disk is full" in str(exc) or "No space left" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


#: Rotation order: priority (and emergency) bulletins before normal ones.
PRIORITY_RANK = {"emergency": 0, "priority": 0, "normal": 1}


@dataclass
class Bulletin:
    id: str
    path: Path
    script: Script
    approved_at: dt.datetime
    mtime: float = 0.0  # the file's own time, compared exactly (a datetime round trip loses nanoseconds)
    status: str = "pending"  # pending → rendering → ready | failed
    audio_path: Path | None = None
    summary: dict = field(default_factory=dict)
    error: str | None = None
    # The audio is ready but was read with an older station lexicon: it keeps airing while a new reading
    # is made, and is replaced only when that succeeds.
    stale: bool = False
    # The last render failed because the disk was full: tried again when space returns.
    no_space: bool = False

    @property
    def title(self) -> str:
        return self.script.display_title

    @property
    def topic(self) -> str | None:
        return self.script.meta.topic

    @property
    def priority(self) -> str:
        return self.script.meta.priority

    @property
    def duration_s(self) -> float:
        return float(self.summary.get("duration_s", 0.0))

    def airs_on(self, day: dt.date) -> bool:
        meta = self.script.meta
        return (meta.air_from is None or day >= meta.air_from) and (
            meta.air_until is None or day <= meta.air_until
        )


class Library:
    def __init__(self, config: StationConfig, renderer: Renderer, approvals: ApprovalStore | None = None):
        self.config = config
        self.renderer = renderer
        self.approvals = approvals
        self.folder = config.paths.bulletins / "approved"
        self._by_path: dict[Path, Bulletin] = {}
        self._refused: dict[Path, tuple[float, str]] = {}
        self._lock = threading.RLock()

    # -- reading the folder ---------------------------------------------------------------------------------

    def scan(self) -> list[Bulletin]:
        """Pick up new, changed and removed scripts; returns the bulletins that are new."""
        found = sorted(p for p in self.folder.glob("*") if is_script_file(p)) if self.folder.is_dir() else []
        # Versions approved over the web, read from their immutable content-addressed copies.
        records = (
            {self.approvals.path_of(r): r for r in self.approvals.records("approved")}
            if self.approvals
            else {}
        )
        new: list[Bulletin] = []
        with self._lock:
            for path, record in records.items():
                if path in self._by_path:
                    continue
                try:
                    script = parse_script(path.read_bytes(), record.name)
                except (OSError, PlayoutError) as exc:
                    logger.error(
                        "approved script %s (%s) unreadable: %s", record.name, record.sha256[:12], exc
                    )
                    continue
                approved = dt.datetime.fromisoformat(record.decided_at or record.submitted_at)
                bulletin = Bulletin(id=record.sha256, path=path, script=script, approved_at=approved)
                self._by_path[path] = bulletin
                new.append(bulletin)
                logger.info(
                    "bulletin %s approved by %s: %s", record.sha256[:12], record.decided_by, bulletin.title
                )
            for gone in set(self._by_path) - set(found) - set(records):
                logger.info("bulletin withdrawn: %s", gone.name)
                del self._by_path[gone]
            for path in found:
                try:
                    mtime = path.stat().st_mtime
                except OSError:
                    continue
                known = self._by_path.get(path)
                if known is not None and known.mtime == mtime:
                    continue
                if self._refused.get(path, (None,))[0] == mtime:
                    continue
                try:
                    script = read_script(path)
                except PlayoutError as exc:
                    # Bad input never stops the station: say why once, keep airing what we have.
                    logger.error("script %s refused: [%s] %s", path.name, exc.code, exc.message)
                    self._refused[path] = (mtime, f"[{exc.code}] {exc.message}")
                    continue
                if known is not None and known.id == script.content_sha256:
                    known.mtime = mtime  # touched, not changed: same bulletin, same approval
                    continue
                bulletin = Bulletin(
                    id=script.content_sha256,
                    path=path,
                    script=script,
                    approved_at=dt.datetime.fromtimestamp(mtime, dt.UTC),
                    mtime=mtime,
                )
                self._by_path[path] = bulletin
                self._refused.pop(path, None)
                new.append(bulletin)
                logger.info("bulletin %s (%s) added: %s", bulletin.id[:12], bulletin.priority, bulletin.title)
        return new

    def bulletins(self) -> list[Bulletin]:
        with self._lock:
            return list(self._by_path.values())

    def refused(self) -> dict[str, str]:
        with self._lock:
            return {p.name: why for p, (_, why) in self._refused.items()}

    # -- rendering ahead of time ----------------------------------------------------------------------------

    def mark_stale(self) -> None:
        """The way words are read changed (station lexicon): read every bulletin again, in the background."""
        for bulletin in self.bulletins():
            if bulletin.status in ("ready", "rendering"):
                bulletin.stale = True  # one being rendered now may have been read with the old lexicon
            elif bulletin.status == "failed":
                bulletin.status, bulletin.error = "pending", None  # a new word may be what it lacked

    def render_pending(self, stop: threading.Event | None = None) -> int:
        """Render every bulletin that has no audio yet; returns how many became ready."""
        done = 0
        for bulletin in self.bulletins():
            if stop is not None and stop.is_set():
                break
            if bulletin.status == "ready" and bulletin.stale:
                self._refresh(bulletin)
                continue
            if bulletin.status not in ("pending",):
                continue
            bulletin.status = "rendering"
            try:
                result = self.renderer.render(bulletin.script)
            except Exception as exc:  # noqa: BLE001 - a render bug must not stop the station
                if isinstance(exc, PlayoutError) and not _out_of_space(exc):
                    bulletin.status, bulletin.error = "failed", f"[{exc.code}] {exc.message}"
                    logger.error("bulletin %s cannot be rendered: %s", bulletin.path.name, bulletin.error)
                    continue
                if _out_of_space(exc):
                    # Not the script's fault: tried again once the disk has room (retry_when_space).
                    bulletin.status, bulletin.error, bulletin.no_space = "failed", NO_SPACE, True
                    logger.error(
                        "bulletin %s: no space left to store its audio (%s)", bulletin.path.name, exc
                    )
                    continue
                bulletin.status, bulletin.error = "failed", f"{type(exc).__name__}: {exc}"
                logger.exception("bulletin %s: render crashed", bulletin.path.name)
                continue
            bulletin.audio_path, bulletin.summary = result.path, result.summary
            bulletin.status = "ready"
            done += 1
        return done

    def retry_when_space(self) -> int:
        """Renders that failed for lack of disk space go back in the queue (the disk has room again)."""
        again = 0
        for bulletin in self.bulletins():
            if bulletin.status == "failed" and bulletin.no_space:
                bulletin.status, bulletin.error, bulletin.no_space = "pending", None, False
                again += 1
        if again:
            logger.info("disk has room again: %d bulletin(s) queued for rendering", again)
        return again

    def _refresh(self, bulletin: Bulletin) -> None:
        bulletin.stale = False
        try:
            result = self.renderer.render(bulletin.script)
        except Exception as exc:  # noqa: BLE001 - the audio it has keeps airing
            logger.error(
                "bulletin %s: new reading failed, the previous audio stays (%s)", bulletin.path.name, exc
            )
            return
        if result.path != bulletin.audio_path:
            logger.info("bulletin %s read again with the new lexicon", bulletin.path.name)
        bulletin.audio_path, bulletin.summary = result.path, result.summary

    # -- rotation -------------------------------------------------------------------------------------------

    def ready(self, day: dt.date | None = None) -> list[Bulletin]:
        out = [b for b in self.bulletins() if b.status == "ready" and b.audio_path is not None]
        return [b for b in out if day is None or b.airs_on(day)]

    def pick(
        self, day: dt.date, play_counts: dict[str, int], exclude: set[str] = frozenset()
    ) -> Bulletin | None:
        """The next bulletin to air: priority first, then the one aired least, oldest approval first.

        ``exclude`` keeps a window with several plays from airing the same bulletin twice when there are
        others to choose from.
        """
        candidates = self.ready(day)
        fresh = [b for b in candidates if b.id not in exclude] or candidates
        if not fresh:
            return None
        return min(
            fresh,
            key=lambda b: (PRIORITY_RANK.get(b.priority, 1), play_counts.get(b.id, 0), b.approved_at, b.id),
        )

    def rendering(self) -> bool:
        """Whether bulletins are still waiting for their audio (start-up, or just approved)."""
        return any(b.status in ("pending", "rendering") for b in self.bulletins())

    def emergencies(self, day: dt.date) -> list[Bulletin]:
        return [b for b in self.ready(day) if b.priority == "emergency"]
