"""Station accounts and API tokens as ``schedule.yaml`` declares them, and how their secrets are hashed.

Kept apart from ``playout.auth`` (sessions, login throttling, the FastAPI dependencies) so that reading
the settings does not load the web framework: ``playout.config`` needs these models, and so does every
short command (``playout relay-off`` runs after each stop or crash, on a Pi where importing FastAPI costs
a second and tens of megabytes).  ``playout.auth`` re-exports every name here.

Passwords are stored as scrypt hashes, tokens as SHA-256 (a random 32-byte token needs no slow hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["operator", "approver", "technician", "admin"]
ROLES: tuple[str, ...] = ("operator", "approver", "technician", "admin")

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_CHARS = 8
# A password longer than this is not a password; refusing it bounds the work one request can cause.
MAX_PASSWORD_CHARS = 1024
# scrypt needs 128·n·r bytes; stored parameters above this would exhaust a Pi's memory on every login.
_SCRYPT_MAXMEM = 64 * 1024 * 1024

_NAME_RE = re.compile(r"[a-z0-9._-]{1,50}")
_B64 = r"[A-Za-z0-9+/]+={0,2}"
_SCRYPT_RE = re.compile(rf"scrypt\$(\d{{1,8}})\$(\d{{1,3}})\$(\d{{1,3}})\$({_B64})\$({_B64})")
_TOKEN_RE = re.compile(r"sha256\$[0-9a-f]{64}")


# ---------------------------------------------------------------- hashing


def _b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _normalise(password: str) -> bytes:
    # Vietnamese keyboards differ: Unikey sends "ệ" precomposed, macOS may send e + two combining marks.
    # The same typed password must give the same bytes, so hash the NFC form.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _parse_scrypt(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """Split a stored scrypt hash; ValueError (English, for the caller to translate) when malformed."""
    m = _SCRYPT_RE.fullmatch(stored)
    if not m:
        raise ValueError("not scrypt$N$r$p$salt$hash")
    n, r, p = (int(g) for g in m.group(1, 2, 3))
    salt, digest = _b64d(m.group(4)), _b64d(m.group(5))
    if n < 2 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or 128 * n * r > _SCRYPT_MAXMEM:
        raise ValueError("scrypt parameters out of range")
    if len(salt) < 8 or not 16 <= len(digest) <= 64:
        raise ValueError("salt or hash has the wrong length")
    return n, r, p, salt, digest


def hash_password(password: str) -> str:
    """``scrypt$16384$8$1$<salt b64>$<hash b64>``; ValueError (Vietnamese) for an unusable password."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"Mật khẩu phải có ít nhất {MIN_PASSWORD_CHARS} ký tự")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"Mật khẩu quá dài (tối đa {MAX_PASSWORD_CHARS} ký tự)")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(
        _normalise(password), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches; False for a wrong password *or* a malformed hash (never raises)."""
    try:
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
            return False
        # The stored parameters are used, so hashes made with older settings keep working.
        n, r, p, salt, digest = _parse_scrypt(stored)
        got = hashlib.scrypt(
            _normalise(password), salt=salt, n=n, r=r, p=p, dklen=len(digest), maxmem=_SCRYPT_MAXMEM + 2**20
        )
        return hmac.compare_digest(got, digest)
    except (ValueError, TypeError, MemoryError, UnicodeError, binascii.Error):
        return False


def new_token() -> str:
    """A fresh API token (32 random bytes, URL-safe); shown once, only its hash is stored."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_token(token: str, stored: str) -> bool:
    """Constant-time comparison of a presented token with a stored ``sha256$<hex>``; never raises."""
    try:
        return hmac.compare_digest(hash_token(token).encode("ascii"), stored.encode("ascii"))
    except (AttributeError, TypeError, UnicodeError):
        return False


# ---------------------------------------------------------------- settings


class _Section(BaseModel):
    # Same rules as playout.config, plus: a validation error must not echo a hash back into a log.
    model_config = ConfigDict(extra="forbid", validate_default=True, hide_input_in_errors=True)


def _check_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError("tên chỉ gồm 1–50 ký tự a-z, 0-9, dấu chấm, gạch dưới, gạch ngang")
    return value


class Account(_Section):
    """A person who logs in with a password (``playout passwd`` prints the hash)."""

    name: str
    password_hash: str = Field(repr=False)
    roles: list[Role] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_chars(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("password_hash")
    @classmethod
    def _scrypt_format(cls, value: str) -> str:
        try:
            _parse_scrypt(value)
        except (ValueError, binascii.Error):
            raise ValueError(
                "password_hash phải có dạng scrypt$N$r$p$<salt>$<hash> (dùng playout passwd)"
            ) from None
        return value


class ApiToken(_Section):
    """A script or device that calls the API with ``Authorization: Bearer <token>``."""

    name: str
    token_hash: str = Field(repr=False)
    roles: list[Role] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name_chars(cls, value: str) -> str:
        return _check_name(value)

    @field_validator("token_hash")
    @classmethod
    def _sha256_format(cls, value: str) -> str:
        if not _TOKEN_RE.fullmatch(value):
            raise ValueError("token_hash phải có dạng sha256$<64 chữ số hex>")
        return value


class AuthSettings(_Section):
    """The ``auth:`` section of ``schedule.yaml``."""

    accounts: list[Account] = Field(default_factory=list)
    tokens: list[ApiToken] = Field(default_factory=list)
    session_hours: float = Field(12.0, gt=0, le=24 * 30)
    login_attempts_per_minute: int = Field(5, ge=1, le=100)
    secret_file: Path | None = Field(None, description="signing key for session cookies (0600)")

    @model_validator(mode="after")
    def _unique_names(self) -> AuthSettings:
        # Accounts and tokens share one namespace: the name is what the as-run log and audit trail record.
        seen: set[str] = set()
        for item in [*self.accounts, *self.tokens]:
            if item.name in seen:
                raise ValueError(f"tên tài khoản/token bị trùng: {item.name!r}")
            seen.add(item.name)
        return self
