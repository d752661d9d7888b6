"""Everything the station refuses, in one tree.

Operators read ``message`` (Vietnamese); programs read ``code`` (stable, upper-case, never renamed);
logs get ``detail`` (English, may hold paths and numbers).  Nothing below ``PlayoutError`` ever escapes
to crash the daemon: every door (folder, upload, CLI) catches it and reports it.

Each class also says how the HTTP doors answer it (``http_status``): the API turns any ``PlayoutError`` a
route lets through into that status with ``{"detail": {"code", "message"}}`` (one handler, in
``playout.http.api``), and the web page shows ``message`` on the page with the same status.  This module
imports nothing: ``playout relay-off`` loads it through the relay, and must stay cheap.

    PlayoutError                   422  (a refusal of what was asked)
    ├── ConfigError                500  schedule.yaml is unreadable or invalid (all problems listed)
    ├── ScriptRejected             422  a script cannot be accepted (encoding, front matter, size, …)
    │   └── ScriptTooLong          422  the speech does not fit even at the fastest allowed rate
    ├── ApprovalError              409  the approval store refuses a decision or an upload
    │   ├── BulletinNotFound       404  no script version with this SHA-256
    │   ├── BulletinStateConflict  409  its state does not allow this (approve a withdrawn one, …)
    │   └── ScriptFileTooLarge     413  an upload over MAX_SCRIPT_BYTES, refused before it is parsed
    ├── RenderError                500  synthesis or verification failed; nothing was written
    │   └── EngineError            500  one speech engine failed (the chain may try the next)
    │       └── EngineUnavailable  500  the engine cannot run here at all (missing binary, model, network)
    ├── AudioError                 503  the sound system failed (no device, refused stream, died mid-play)
    ├── RelayError                 503  the relay cannot be driven (pin in use, no GPIO access, closed)
    ├── RateLimited                429  too many failed logins from one address (with Retry-After)
    └── StorageUnavailable         422  the database or the disk cannot take a write now (locked, full): retry

The classes that moved here keep their old homes as re-exports (``playout.approvals.ApprovalError``,
``playout.audio_out.AudioError``, ``gpio.RelayError``, ``playout.auth.RateLimited``).
"""

from __future__ import annotations


class PlayoutError(Exception):
    """Base of every refusal the station reports instead of crashing."""

    code = "PLAYOUT_ERROR"
    #: The HTTP answer to this refusal.  422 is what the API has always answered a refused request with.
    http_status = 422

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

    def http_detail(self) -> object:
        """The API's ``detail`` for this refusal: the code for programs, the message for people.  (Not
        ``to_dict``: ``detail`` and the context may hold paths, which stay in the logs.)"""
        return {"code": self.code, "message": self.message}

    def http_headers(self) -> dict[str, str]:
        """Headers the HTTP answer carries (none, unless a class says when to come back)."""
        return {}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(PlayoutError):
    code = "CONFIG_INVALID"
    # The station's own settings are wrong, not the caller's request.
    http_status = 500

    def __init__(self, message: str, *, problems: list[str] | None = None, **kw):
        super().__init__(message, **kw)
        self.problems = problems or []

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["problems"] = self.problems
        return out


class ScriptRejected(PlayoutError):
    code = "SCRIPT_REJECTED"
    http_status = 422


class ScriptTooLong(ScriptRejected):
    code = "SCRIPT_TOO_LONG"


class ApprovalError(PlayoutError):
    """The approval store refuses: the version is missing, or its state does not allow the action."""

    code = "APPROVAL_REFUSED"
    http_status = 409


class BulletinNotFound(ApprovalError):
    code = "BULLETIN_NOT_FOUND"
    http_status = 404


class BulletinStateConflict(ApprovalError):
    code = "BULLETIN_STATE_CONFLICT"
    http_status = 409


class ScriptFileTooLarge(ApprovalError):
    """An upload over the size cap, refused before a byte of it is parsed (intake would say the same,
    later, as a ScriptRejected with the same code)."""

    code = "SCRIPT_TOO_LARGE"
    http_status = 413


class RenderError(PlayoutError):
    code = "RENDER_FAILED"
    http_status = 500


class EngineError(RenderError):
    code = "ENGINE_FAILED"


class EngineUnavailable(EngineError):
    code = "ENGINE_UNAVAILABLE"


class AudioError(PlayoutError):
    """The sound system failed: no such device, it refused the stream, or it stopped mid-bulletin."""

    code = "AUDIO_DEVICE_FAILED"
    # The station's hardware cannot do it now; the request itself was fine.
    http_status = 503


class RelayError(PlayoutError):
    """The relay cannot be driven: pin in use or invalid, no access to the GPIO chip, relay closed."""

    code = "RELAY_UNAVAILABLE"
    http_status = 503


class RateLimited(PlayoutError):
    """Too many failed logins from this address; the API answers 429 with ``Retry-After``."""

    code = "LOGIN_RATE_LIMITED"
    http_status = 429

    def __init__(self, retry_after_s: int):
        super().__init__(
            f"Đăng nhập sai quá nhiều lần từ máy này, vui lòng thử lại sau {retry_after_s} giây",
            retry_after_s=retry_after_s,
        )
        self.retry_after_s = retry_after_s

    def http_detail(self) -> object:
        # The login door answers in text, like the other credential refusals (401, 403) next to it.
        return self.message

    def http_headers(self) -> dict[str, str]:
        # One second more than the window still has to run: a client retrying at once is refused again.
        return {"Retry-After": str(int(self.retry_after_s) + 1)}


class StorageUnavailable(PlayoutError):
    """A write the operator asked for could not be stored now; nothing was changed.

    HTTP 422, as the API has answered it since the store first refused this way; 503 (with Retry-After)
    would say "try again" better, but changes the contract (and the documented statuses) of every write.
    """

    code = "STORAGE_UNAVAILABLE"
    http_status = 422
