"""The bulletin library: approved scripts, rendered ahead of time, and the rotation that picks one.

Two sources: versions approved over the web page (read from their immutable copies, see
``playout.approvals``), and scripts in ``bulletins/approved/``, a trusted drop on the Pi itself that
counts as approved, with its file time as its approval time.  A bulletin is identified by
the SHA-256 of its content: edit the file and it is a new bulletin.

Rendering is ordered here, in the background, never at air time: a slot only ever airs a bulletin whose
audio is already in the render cache.  A bulletin already in the cache is found here (no audio library
needed); the others are rendered by a worker process (``tts.worker``), so a render that runs out of
memory or hangs costs that bulletin a retry, never the station its audio.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from playout.approvals import ApprovalStore
from playout.config import StationConfig
from playout.errors import PlayoutError
from playout.intake import Script, is_script_file, parse_script, read_script
from tts.request import find_cached
from tts.worker import RenderJob, RenderOutcome

logger = logging.getLogger(__name__)

NO_SPACE = "Hết dung lượng đĩa: bản tin sẽ được dựng lại khi có chỗ trống"
#: A worker that died on a bulletin (memory, time, crash) is tried this many times before the bulletin
#: is marked failed; a lexicon or settings change tries it again.
WORKER_ATTEMPTS = 2


class Rendering(Protocol):
    """Renders jobs and reports each outcome (``tts.worker.RenderWorker`` or ``InProcessRendering``)."""

    def render_batch(self, config: StationConfig, jobs: list[RenderJob], stop=None): ...

    def close(self) -> None: ...


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
    # Render workers that died on this bulletin since it was last asked for (see WORKER_ATTEMPTS).
    worker_failures: int = 0

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
    def __init__(self, config: StationConfig, renderer: Rendering, approvals: ApprovalStore | None = None):
        self.config = config
        self.renderer = renderer
        self.approvals = approvals
        self.folder = config.paths.bulletins / "approved"
        self._by_path: dict[Path, Bulletin] = {}
        self._refused: dict[Path, tuple[float, str]] = {}
        # Versions waiting for approval, rendered as previews after the bulletins that can air: the
        # approver hears what will air, and approving it later finds the audio already in the cache.
        self._previews: dict[str, Bulletin] = {}
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
            self._scan_previews()
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

    def _scan_previews(self) -> None:
        """Previews follow the approval store's pending versions (lock held)."""
        pending = {r.sha256: r for r in self.approvals.records("pending")} if self.approvals else {}
        for sha in set(self._previews) - set(pending):
            del self._previews[sha]  # decided: approved ones air from the library (and the same audio)
        for sha, record in pending.items():
            if sha in self._previews:
                continue
            path = self.approvals.path_of(record)
            try:
                script = parse_script(path.read_bytes(), record.name)
            except (OSError, PlayoutError) as exc:
                logger.warning("pending script %s (%s) cannot be previewed: %s", record.name, sha[:12], exc)
                continue
            submitted = dt.datetime.fromisoformat(record.submitted_at)
            self._previews[sha] = Bulletin(id=sha, path=path, script=script, approved_at=submitted)

    def bulletins(self) -> list[Bulletin]:
        with self._lock:
            return list(self._by_path.values())

    def previews(self) -> list[Bulletin]:
        """Pending versions with their preview render (status, audio, summary), oldest first."""
        with self._lock:
            return sorted(self._previews.values(), key=lambda b: b.approved_at)

    def preview(self, sha256: str) -> Bulletin | None:
        with self._lock:
            return self._previews.get(sha256)

    def refused(self) -> dict[str, str]:
        with self._lock:
            return {p.name: why for p, (_, why) in self._refused.items()}

    # -- rendering ahead of time ----------------------------------------------------------------------------

    def mark_stale(self) -> None:
        """The way words are read changed (station lexicon): read every bulletin again, in the background."""
        for bulletin in [*self.bulletins(), *self.previews()]:
            if bulletin.status in ("ready", "rendering"):
                bulletin.stale = True  # one being rendered now may have been read with the old lexicon
            elif bulletin.status == "failed":
                # A new word may be what it lacked; a worker that died gets its attempts back.
                bulletin.status, bulletin.error, bulletin.worker_failures = "pending", None, 0

    def render_pending(self, stop: threading.Event | None = None) -> int:
        """Render every bulletin that has no audio yet (or a stale one); returns how many became ready."""
        became_ready = 0
        todo: dict[str, list[Bulletin]] = {}
        # What can air first; previews of pending versions after them (an approver can wait a minute).
        previews = {id(b) for b in self.previews()}
        for bulletin in [*self.bulletins(), *self.previews()]:
            if bulletin.status == "ready" and bulletin.stale:
                bulletin.stale = False
            elif bulletin.status == "pending":
                bulletin.status = "rendering"
            else:
                continue
            # The cache first, in this process: a restart finds every bulletin there and starts no worker.
            try:
                hit = find_cached(self.config, bulletin.script)
            except Exception:  # noqa: BLE001 - a damaged entry is rendered again, in the worker
                logger.exception("bulletin %s: render cache unreadable", bulletin.path.name)
                hit = None
            if hit is not None:
                ready = self._apply_audio(bulletin, str(hit.path), hit.summary)
                became_ready += 0 if id(bulletin) in previews else ready
            else:
                todo.setdefault(bulletin.id, []).append(bulletin)
        if todo:
            jobs = [RenderJob(id=i, path=str(bs[0].path), name=bs[0].script.name) for i, bs in todo.items()]
            for outcome in self.renderer.render_batch(self.config, jobs, stop):
                for bulletin in todo.pop(outcome.id, []):
                    ready = self._apply(bulletin, outcome)
                    became_ready += 0 if id(bulletin) in previews else ready
        for left in todo.values():  # the worker stopped before reaching them: still to do
            for bulletin in left:
                if bulletin.status == "rendering":
                    bulletin.status = "pending"
                else:
                    bulletin.stale = True
        return became_ready

    def _apply_audio(self, bulletin: Bulletin, path: str, summary: dict) -> int:
        """The bulletin has audio; 1 when it was not ready before."""
        if (
            bulletin.status == "ready"
            and bulletin.audio_path is not None
            and str(bulletin.audio_path) != path
        ):
            logger.info("bulletin %s read again with the new lexicon", bulletin.path.name)
        was_ready = bulletin.status == "ready"
        bulletin.audio_path, bulletin.summary = Path(path), summary
        bulletin.status, bulletin.error, bulletin.worker_failures = "ready", None, 0
        return 0 if was_ready else 1

    def _apply(self, bulletin: Bulletin, outcome: RenderOutcome) -> int:
        """Record one outcome of the worker; 1 when the bulletin became ready."""
        if outcome.ok:
            return self._apply_audio(bulletin, outcome.audio_path, outcome.summary)
        if bulletin.status == "ready":
            # A new reading failed: the audio it has keeps airing.
            logger.error(
                "bulletin %s: new reading failed, the previous audio stays (%s)",
                bulletin.path.name,
                outcome.error,
            )
            if outcome.worker_failed and bulletin.worker_failures + 1 < WORKER_ATTEMPTS:
                bulletin.worker_failures += 1
                bulletin.stale = True  # tried again at the next pass
            return 0
        if outcome.no_space:
            # Not the script's fault: tried again once the disk has room (retry_when_space).
            bulletin.status, bulletin.error, bulletin.no_space = "failed", NO_SPACE, True
            logger.error(
                "bulletin %s: no space left to store its audio (%s)", bulletin.path.name, outcome.detail
            )
            return 0
        if outcome.worker_failed:
            bulletin.worker_failures += 1
            if bulletin.worker_failures < WORKER_ATTEMPTS:
                bulletin.status, bulletin.error = "pending", outcome.error
                logger.warning(
                    "bulletin %s: %s; trying again (%d/%d)",
                    bulletin.path.name,
                    outcome.detail or outcome.code,
                    bulletin.worker_failures + 1,
                    WORKER_ATTEMPTS,
                )
                return 0
        bulletin.status, bulletin.error = "failed", outcome.error
        logger.error("bulletin %s cannot be rendered: %s", bulletin.path.name, bulletin.error)
        return 0

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
