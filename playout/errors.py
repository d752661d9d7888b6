"""Everything the station refuses, in one tree.

Operators read ``message`` (Vietnamese); programs read ``code`` (stable, upper-case, never renamed);
logs get ``detail`` (English, may hold paths and numbers).  Nothing below ``PlayoutError`` ever escapes
to crash the daemon: every door (folder, upload, CLI) catches it and reports it.

    PlayoutError
    ├── ConfigError            schedule.yaml is unreadable or invalid (all problems listed)
    ├── ScriptRejected         a script cannot be accepted (encoding, front matter, size, …)
    │   └── ScriptTooLong      the speech does not fit even at the fastest allowed rate
    ├── RenderError            synthesis or verification failed; nothing was written
    │   └── EngineError        one speech engine failed (the chain may try the next)
    │       └── EngineUnavailable  the engine cannot run here at all (missing binary, model, network)
    └── StorageUnavailable     the database or the disk cannot take a write now (locked, full): retry
"""

from __future__ import annotations


class PlayoutError(Exception):
    """Base of every refusal the station reports instead of crashing."""

    code = "PLAYOUT_ERROR"

    def __init__(self, message: str, *, code: str | None = None, detail: str = "", **context: object):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail = detail
        self.context = context

    def to_dict(self) -> dict[str, object]:
        """The JSON shape used by the CLI and the API."""
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.detail:
            out["detail"] = self.detail
        out.update({k: v for k, v in self.context.items() if v is not None})
        return out

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(PlayoutError):
    code = "CONFIG_INVALID"

    def __init__(self, message: str, *, problems: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.problems = problems or []

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["problems"] = self.problems
        return out


class ScriptRejected(PlayoutError):
    code = "SCRIPT_REJECTED"


class ScriptTooLong(ScriptRejected):
    code = "SCRIPT_TOO_LONG"


class RenderError(PlayoutError):
    code = "RENDER_FAILED"


class EngineError(RenderError):
    code = "ENGINE_FAILED"


class EngineUnavailable(EngineError):
    code = "ENGINE_UNAVAILABLE"


class StorageUnavailable(PlayoutError):
    """A write the operator asked for could not be stored now; nothing was changed.  HTTP 503."""

    code = "STORAGE_UNAVAILABLE"
