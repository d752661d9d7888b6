"""The seam between the HTTP front and the station, and the one error tree it answers from.

The HTTP package (playout/http/) reaches the station only through ``StationService``: checked here on its
imports (in a fresh interpreter, and in its source), so a shortcut into the daemon cannot creep back.
The service itself is driven against a small stand-in station: no renders, no relay, no threads.
"""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import playout
from playout import errors
from playout.auth import hash_token
from playout.errors import (
    ApprovalError,
    AudioError,
    BulletinNotFound,
    BulletinStateConflict,
    ConfigError,
    EngineError,
    EngineUnavailable,
    PlayoutError,
    RateLimited,
    RelayError,
    RenderError,
    ScriptFileTooLarge,
    ScriptRejected,
    ScriptTooLong,
    StorageUnavailable,
)
from playout.service import StationService

HTTP_PACKAGE = Path(playout.__file__).resolve().parent / "http"
#: What the HTTP front may import from the station: the service, and leaf modules shared by every door.
ALLOWED = {
    "playout",
    "playout.service",
    "playout.errors",
    "playout.auth",
    "playout.limits",
    "playout.qr",
    "playout.reports",
    "playout.intake",
}
ALLOWED_FROM_PLAYOUT = {"__version__", "qr", "reports"}
TECH = "tech-token-0123456789abcdef"


# ---------------------------------------------------------------- imports


def test_the_http_package_loads_without_the_daemon():
    code = (
        "import sys, playout.http, playout.api\n"
        "print(sorted(m for m in sys.modules if m in ('playout.daemon', 'playout.station', 'playout.planner',"
        " 'playout.onair', 'playout.library', 'tts.render')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]", proc.stdout


def test_the_service_does_not_import_the_daemon_at_run_time():
    code = (
        "import sys, playout.service\n"
        "print([m for m in ('playout.daemon', 'playout.station', 'playout.planner', 'playout.onair')"
        " if m in sys.modules])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


def imports_of(path: Path) -> list[tuple[str, int, str | None]]:
    """(module, line, name imported from it) for every import in a file, wherever it sits (functions and
    TYPE_CHECKING blocks included: a type-only shortcut into the daemon is still a shortcut)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}:{node.lineno}: relative import"
            found += [(node.module or "", node.lineno, alias.name) for alias in node.names]
    return found


def test_no_module_of_the_http_package_reaches_past_the_service():
    files = sorted(HTTP_PACKAGE.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "api.py", "web.py", "metrics.py"}
    wrong = []
    for path in files:
        for module, line, name in imports_of(path):
            if module.split(".")[0] not in ("playout", "gpio", "tts"):
                continue  # the standard library and third-party packages
            if module == "playout.http" or module.startswith("playout.http."):
                continue
            if module not in ALLOWED or (module == "playout" and name not in ALLOWED_FROM_PLAYOUT):
                wrong.append(f"{path.name}:{line}: {module}{'.' + name if name else ''}")
    listed = "\n".join(wrong)
    assert not wrong, f"the HTTP layer imports station parts directly (use StationService):\n{listed}"


def test_the_moved_errors_keep_their_old_homes():
    from gpio import RelayError as gpio_relay_error
    from gpio.relay import RelayError as relay_module_error
    from playout.approvals import ApprovalError as approvals_error
    from playout.audio_out import AudioError as audio_error
    from playout.auth import RateLimited as auth_rate_limited

    assert approvals_error is ApprovalError and audio_error is AudioError
    assert gpio_relay_error is relay_module_error is RelayError and auth_rate_limited is RateLimited


# ---------------------------------------------------------------- one error tree, one handler

#: Every class of the tree and the HTTP status it answers with (changing one is an API contract change).
STATUSES = {
    PlayoutError: 422,
    ConfigError: 500,
    ScriptRejected: 422,
    ScriptTooLong: 422,
    ApprovalError: 409,
    BulletinNotFound: 404,
    BulletinStateConflict: 409,
    ScriptFileTooLarge: 413,
    RenderError: 500,
    EngineError: 500,
    EngineUnavailable: 500,
    AudioError: 503,
    RelayError: 503,
    RateLimited: 429,
    StorageUnavailable: 422,
}


def test_the_table_covers_the_whole_tree():
    tree = {v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, PlayoutError)}
    assert tree == set(STATUSES)
    doc = errors.__doc__
    for cls, status in STATUSES.items():
        assert cls.http_status == status, cls
        assert f"{cls.__name__} " in doc and str(status) in doc, f"{cls.__name__} missing from the drawn tree"


def refusal(cls: type[PlayoutError]) -> PlayoutError:
    if cls is RateLimited:
        return RateLimited(12)
    return cls("Không được <phép>", detail="/var/lib/playout/secret path", filename="a.txt")


@pytest.fixture
def handler_app():
    """A bare app with the handler create_app registers: one route raising whichever class it is asked."""
    from playout.http import api

    app = FastAPI()
    app.add_exception_handler(PlayoutError, api.playout_error)
    by_name = {cls.__name__: cls for cls in STATUSES}

    @app.get("/raise/{name}")
    def raise_(name: str):
        raise refusal(by_name[name])

    return app


@pytest.mark.parametrize("cls", list(STATUSES), ids=lambda c: c.__name__)
def test_each_error_class_answers_with_its_status_through_the_one_handler(handler_app, cls):
    resp = TestClient(handler_app).get(f"/raise/{cls.__name__}")
    assert resp.status_code == STATUSES[cls]
    if cls is RateLimited:
        # The login door's answer since it exists: text, and when to come back (one second to spare).
        assert resp.json() == {"detail": refusal(cls).message}
        assert resp.headers["retry-after"] == "13"
        return
    # The code for programs, the message for people; never the detail or context (paths, for the logs).
    assert resp.json() == {"detail": {"code": cls.code, "message": "Không được <phép>"}}
    assert "retry-after" not in resp.headers


# ---------------------------------------------------------------- the service against a stand-in station


class FakeStore:
    def __init__(self):
        self.calls = []
        self.refuse: PlayoutError | None = None

    def _decide(self, action, sha256, **kw):
        self.calls.append((action, sha256, kw))
        if self.refuse is not None:
            raise self.refuse
        return SimpleNamespace(as_dict=lambda: {"sha256": sha256, "status": action})

    def approve(self, sha256, *, who):
        return self._decide("approve", sha256, who=who)

    def reject(self, sha256, *, who, reason):
        return self._decide("reject", sha256, who=who, reason=reason)

    def withdraw(self, sha256, *, who):
        return self._decide("withdraw", sha256, who=who)

    def records(self, status=None):
        return [SimpleNamespace(as_dict=lambda: {"sha256": "ab", "status": "pending"})]


class FakeRelay:
    is_on = True

    def off(self):
        self.is_on = False


def bulletin(bid: str, status: str, link: str | None = None):
    return SimpleNamespace(
        id=bid,
        title=f"Tin {bid}",
        topic=None,
        priority="normal",
        status=status,
        error=None,
        approved_at=dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.UTC),
        summary={"duration_s": 11.0},
        script=SimpleNamespace(name=f"{bid}.md", meta=SimpleNamespace(department="Công an", link=link)),
    )


class FakeStation:
    """Only what StationService reads (playout.service.StationParts)."""

    def __init__(self, config):
        self.config = config
        self.tz = dt.timezone(dt.timedelta(hours=7))
        self.approvals = FakeStore()
        self.relay = FakeRelay()
        self.library = SimpleNamespace(
            bulletins=lambda: [bulletin("a1", "ready", "https://example.vn/a"), bulletin("b2", "failed")]
        )
        self.log = SimpleNamespace(status_counts=lambda: {"played": 3}, total_underruns=lambda: 0)
        self.woken = 0
        self.stops: list[str] = []
        self.clock_synced = None

    def wake_library(self):
        self.woken += 1

    def stop_playback(self, reason):
        self.stops.append(reason)
        return True

    def health(self):
        return {"status": "ok", "version": "1", "time": "2026-11-21T07:00:00+07:00", "relay": {"on": True}}


@pytest.fixture
def fake(make_config):
    return FakeStation(
        make_config(
            auth={"tokens": [{"name": "kt", "token_hash": hash_token(TECH), "roles": ["technician"]}]}
        )
    )


def test_a_decision_exists_once_and_wakes_the_library_only_when_it_is_made(fake):
    service = StationService(fake)
    assert service.decide("reject", "ab", "lan", "trùng") == {"sha256": "ab", "status": "reject"}
    assert fake.approvals.calls == [("reject", "ab", {"who": "lan", "reason": "trùng"})] and fake.woken == 1
    fake.approvals.refuse = BulletinStateConflict("Không thể duyệt")
    with pytest.raises(BulletinStateConflict):
        service.decide("approve", "ab", "lan")
    assert fake.woken == 1
    with pytest.raises(ValueError):
        service.decide("publish", "ab", "lan")  # type: ignore[arg-type]


def test_the_listing_and_the_readings(fake):
    service = StationService(fake)
    listing = {b["id"]: b for b in service.bulletins()}
    assert listing["a1"]["has_link"] is True and listing["b2"]["has_link"] is False
    assert listing["a1"]["approved_at"] == "2026-11-21T07:00:00+07:00"  # in the station's zone
    assert service.bulletin("b2").status == "failed" and service.bulletin("zz") is None
    assert service.bulletin_counts() == {"pending": 0, "rendering": 0, "ready": 1, "failed": 1}
    assert service.slot_counts()["played"] == 3 and service.slot_counts()["missed"] == 0
    assert service.health(full=False) == {"status": "ok", "version": "1", "time": "2026-11-21T07:00:00+07:00"}
    assert service.relay_off("lan") is False and fake.stops == ["tắt rơ-le bởi lan"]


def test_create_app_takes_a_station_or_a_service(fake):
    from playout.api import create_app

    for target in (fake, StationService(fake)):
        client = TestClient(create_app(target))
        assert set(client.get("/api/health").json()) == {"status", "version", "time"}
        full = client.get("/api/health", headers={"Authorization": f"Bearer {TECH}"}).json()
        assert full["relay"] == {"on": True}
        listing = client.get("/api/bulletins", headers={"Authorization": f"Bearer {TECH}"})
        assert listing.status_code == 403  # a technician does not preview: roles still apply


def test_create_app_registers_the_one_handler(fake):
    from playout.http import api, create_app

    app = create_app(StationService(fake))
    assert app.exception_handlers[PlayoutError] is api.playout_error
    assert app.state.auth is app.state.service.authenticator  # the daemon reloads accounts through it
