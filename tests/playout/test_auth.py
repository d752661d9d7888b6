import json
import logging
import os
import stat
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.testclient import TestClient
from pydantic import ValidationError

from playout.auth import (
    COOKIE_NAME,
    PERMISSIONS,
    ROLES,
    Authenticator,
    AuthSettings,
    Principal,
    RateLimited,
    hash_password,
    hash_token,
    load_or_create_secret,
    new_token,
    optional_principal,
    require,
    set_session_cookie,
    verify_password,
    verify_token,
)
from playout.config import _describe

PASSWORD = "mật-khẩu-đúng"
SECRET = b"s" * 32


@pytest.fixture(scope="module")
def pw_hash():
    return hash_password(PASSWORD)  # scrypt is slow on purpose: hash once for the module


class Clock:
    def __init__(self, t=1_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def settings(pw_hash, tokens=(), **kw):
    return AuthSettings(
        accounts=[
            {"name": "lan", "password_hash": pw_hash, "roles": ["approver"]},
            {"name": "minh", "password_hash": pw_hash, "roles": ["technician"]},
        ],
        tokens=list(tokens),
        **kw,
    )


# ------------------------------------------------------------------ hashing


def test_password_round_trip_and_wrong_password(pw_hash):
    assert pw_hash.startswith("scrypt$16384$8$1$")
    assert verify_password(PASSWORD, pw_hash)
    assert not verify_password("mật-khẩu-sai", pw_hash)
    assert hash_password(PASSWORD) != pw_hash  # salted


def test_password_is_unicode_normalised(pw_hash):
    import unicodedata

    assert verify_password(unicodedata.normalize("NFD", PASSWORD), pw_hash)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "scrypt$",
        "plain",
        "scrypt$16384$8$1$!!!$abc",
        "scrypt$1000$8$1$AAAAAAAAAAA=$AAAA",
        "sha256$00",
        None,
    ],
)
def test_malformed_hash_is_false_not_an_error(stored):
    assert verify_password(PASSWORD, stored) is False


def test_absurd_scrypt_parameters_are_refused_without_trying(pw_hash):
    parts = pw_hash.split("$")
    parts[1] = str(2**24)  # 16 GiB of memory per login on a Pi
    assert verify_password(PASSWORD, "$".join(parts)) is False


def test_short_password_refused():
    with pytest.raises(ValueError, match="ít nhất"):
        hash_password("1234")


def test_token_round_trip():
    token = new_token()
    stored = hash_token(token)
    assert stored.startswith("sha256$") and len(stored) == 7 + 64
    assert verify_token(token, stored)
    assert not verify_token(token + "x", stored)
    assert not verify_token(token, "garbage")
    assert not verify_token(None, stored)


# ------------------------------------------------------------------ settings


def problems(exc: ValidationError) -> list[str]:
    return [_describe(e) for e in exc.errors()]


def test_settings_defaults():
    s = AuthSettings()
    assert s.accounts == [] and s.tokens == [] and s.session_hours == 12 and s.login_attempts_per_minute == 5


def test_duplicate_names_rejected(pw_hash):
    with pytest.raises(ValidationError) as err:
        AuthSettings(
            accounts=[{"name": "lan", "password_hash": pw_hash, "roles": ["admin"]}],
            tokens=[{"name": "lan", "token_hash": hash_token("t"), "roles": ["operator"]}],
        )
    assert any("trùng" in p for p in problems(err.value))


def test_bad_hash_formats_rejected_without_echoing_them():
    with pytest.raises(ValidationError) as err:
        AuthSettings(
            accounts=[{"name": "lan", "password_hash": "hunter2-plaintext", "roles": ["admin"]}],
            tokens=[{"name": "bot", "token_hash": "sha256$notHex", "roles": ["admin"]}],
        )
    text = problems(err.value)
    assert any(p.startswith("accounts.0.password_hash") and "scrypt" in p for p in text)
    assert any(p.startswith("tokens.0.token_hash") and "sha256" in p for p in text)
    assert "hunter2" not in str(err.value)  # ConfigError.detail carries str(exc) into logs


def test_unknown_role_bad_name_and_missing_roles(pw_hash):
    with pytest.raises(ValidationError) as err:
        AuthSettings(
            accounts=[
                {"name": "lan", "password_hash": pw_hash, "roles": ["superuser"]},
                {"name": "Nguyễn Văn A", "password_hash": pw_hash, "roles": ["admin"]},
                {"name": "b", "password_hash": pw_hash, "roles": []},
                {"name": "c", "password_hash": pw_hash, "roles": ["admin"], "pasword": "x"},
            ]
        )
    paths = [p.split(":")[0] for p in problems(err.value)]
    assert {"accounts.0.roles.0", "accounts.1.name", "accounts.2.roles", "accounts.3.pasword"} <= set(paths)


def test_permissions_table():
    assert set(ROLES) == {"operator", "approver", "technician", "admin"}
    assert all("admin" in roles for roles in PERMISSIONS.values())
    op = Principal("x", frozenset({"operator"}), "session")
    assert op.can("upload") and op.can("qr") and not op.can("approve") and not op.can("relay_off")
    assert not op.can("no-such-action")
    tech = Principal("y", frozenset({"technician"}), "token")
    assert tech.can("stop") and tech.can("health_full") and not tech.can("upload")


# ------------------------------------------------------------------ sessions


def test_session_cookie_round_trip(pw_hash):
    clock = Clock()
    auth = Authenticator(settings(pw_hash), SECRET, clock=clock)
    session = auth.login("lan", PASSWORD, "10.0.0.5")
    assert session and session.roles == {"approver"} and session.csrf
    cookie = auth.session_cookie(session)
    back = auth.session_from_cookie(cookie)
    assert back == session.__class__(
        session.name, session.roles, float(int(session.expires_at)), session.csrf
    )
    assert PASSWORD not in cookie and pw_hash not in cookie


def test_tampered_and_foreign_cookies_rejected(pw_hash):
    import base64
    import json

    auth = Authenticator(settings(pw_hash), SECRET, clock=Clock())
    cookie = auth.session_cookie(auth.login("lan", PASSWORD, "10.0.0.5"))
    body, sig = cookie.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["r"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    assert auth.session_from_cookie(f"{forged}.{sig}") is None
    assert auth.session_from_cookie(cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")) is None
    assert auth.session_from_cookie("garbage") is None
    assert auth.session_from_cookie("") is None
    other = Authenticator(settings(pw_hash), b"o" * 32, clock=Clock())
    assert other.session_from_cookie(cookie) is None  # another secret


def test_expired_cookie_rejected(pw_hash):
    clock = Clock()
    auth = Authenticator(settings(pw_hash, session_hours=1), SECRET, clock=clock)
    cookie = auth.session_cookie(auth.login("lan", PASSWORD, "10.0.0.5"))
    clock.t += 3599
    assert auth.session_from_cookie(cookie)
    clock.t += 2
    assert auth.session_from_cookie(cookie) is None


def test_password_change_or_removal_ends_sessions(pw_hash):
    auth = Authenticator(settings(pw_hash), SECRET, clock=Clock())
    cookie = auth.session_cookie(auth.login("lan", PASSWORD, "10.0.0.5"))
    changed = AuthSettings(
        accounts=[{"name": "lan", "password_hash": hash_password("mật-khẩu-mới"), "roles": ["approver"]}]
    )
    assert Authenticator(changed, SECRET, clock=Clock()).session_from_cookie(cookie) is None
    assert Authenticator(AuthSettings(), SECRET, clock=Clock()).session_from_cookie(cookie) is None


# ------------------------------------------------------------------ rate limit


def test_rate_limit_per_ip(pw_hash):
    clock = Clock()
    auth = Authenticator(settings(pw_hash, login_attempts_per_minute=3), SECRET, clock=clock)
    for name in ("lan", "minh", "ai-do"):  # spraying different accounts from one address
        assert auth.login(name, "sai", "10.0.0.9") is None
        clock.t += 1
    with pytest.raises(RateLimited) as err:
        auth.login("minh", PASSWORD, "10.0.0.9")  # even the right password is not tried
    assert err.value.retry_after_s == 57
    assert auth.login("minh", PASSWORD, "10.0.0.10")  # another address is unaffected
    clock.t += 57  # sliding window: the first failure has left it
    assert auth.login("minh", PASSWORD, "10.0.0.9")


def test_wrong_passwords_slow_the_account_down_but_never_lock_it(pw_hash):
    from playout.auth import MAX_LOGIN_DELAY_S

    clock = Clock()
    auth = Authenticator(settings(pw_hash, login_attempts_per_minute=3), SECRET, clock=clock)
    assert auth.login_delay_s("lan") == 0
    for i in range(20):  # a guessing campaign from 20 addresses, none of them throttled
        assert auth.login("lan", "sai", f"10.0.1.{i}") is None
        clock.t += 1
    delay = auth.login_delay_s("LAN")  # names are case-folded
    assert delay == MAX_LOGIN_DELAY_S  # slowed down…
    session = auth.login("lan", PASSWORD, "10.0.1.99")  # …but the owner, from a clean address, gets in
    assert session is not None and session.name == "lan"
    assert auth.login_delay_s("minh") == 0  # other accounts are unaffected
    clock.t += 15 * 60
    assert auth.login_delay_s("lan") == 0  # and the delay wears off


def test_the_delay_grows_from_a_quarter_second(pw_hash):
    clock = Clock()
    auth = Authenticator(settings(pw_hash, login_attempts_per_minute=100), SECRET, clock=clock)
    delays = []
    for _ in range(8):
        auth.login("minh", "sai", "10.0.2.1")
        delays.append(auth.login_delay_s("minh"))
    assert delays == [0, 0, 0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_alogin_refuses_a_throttled_address_at_once_and_waits_out_the_delay(pw_hash):
    import asyncio
    import time

    auth = Authenticator(settings(pw_hash, login_attempts_per_minute=3), SECRET)

    async def scenario():
        for _ in range(3):
            assert await auth.alogin("lan", "sai", "10.0.3.1") is None
        start = time.monotonic()
        with pytest.raises(RateLimited):
            await auth.alogin("lan", PASSWORD, "10.0.3.1")
        assert time.monotonic() - start < 0.1  # no waiting, no password check for a throttled address
        start = time.monotonic()
        assert await auth.alogin("lan", PASSWORD, "10.0.3.2") is not None
        assert 0.25 <= time.monotonic() - start < 2  # three failures: a quarter second before the check

    asyncio.run(scenario())


def test_logout_revokes_the_session_across_restarts(pw_hash, tmp_path):
    clock = Clock()
    path = tmp_path / "auth.revoked"
    auth = Authenticator(settings(pw_hash), SECRET, clock=clock, revoked_file=path)
    kept, ended = auth.login("lan", PASSWORD, "10.0.0.1"), auth.login("lan", PASSWORD, "10.0.0.1")
    cookie, copy = auth.session_cookie(kept), auth.session_cookie(ended)
    auth.revoke(ended)
    assert auth.session_from_cookie(copy) is None
    assert auth.session_from_cookie(cookie) == kept  # only that session ended
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ended.csrf not in path.read_text()  # ids are hashes, not the tokens themselves
    restarted = Authenticator(settings(pw_hash), SECRET, clock=clock, revoked_file=path)
    assert restarted.session_from_cookie(copy) is None
    # Pruned once the sessions on it have expired anyway.
    clock.t += 13 * 3600
    restarted.revoke(restarted.login("minh", PASSWORD, "10.0.0.1"))
    assert len(json.loads(path.read_text())) == 1


def test_success_forgets_only_its_own_failures(pw_hash):
    clock = Clock()
    auth = Authenticator(settings(pw_hash, login_attempts_per_minute=3), SECRET, clock=clock)
    auth.login("lan", "sai", "10.0.0.1")  # the attacker
    auth.login("lan", "sai", "10.0.0.2")  # the owner mistypes…
    assert auth.login("lan", PASSWORD, "10.0.0.2")  # …then gets it right
    auth.login("lan", "sai", "10.0.0.1")
    auth.login("lan", "sai", "10.0.0.1")
    with pytest.raises(RateLimited):  # the attacker's three failures still count
        auth.login("lan", "sai", "10.0.0.1")


# ------------------------------------------------------------------ tokens, secret file


def test_bearer_tokens(pw_hash):
    token = new_token()
    auth = Authenticator(
        settings(pw_hash, tokens=[{"name": "bot", "token_hash": hash_token(token), "roles": ["technician"]}]),
        SECRET,
    )
    p = auth.from_bearer(token)
    assert p == Principal("bot", frozenset({"technician"}), "token", None)
    assert auth.from_bearer("wrong") is None and auth.from_bearer("") is None


def test_secret_file_created_0600_and_kept(tmp_path):
    path = tmp_path / "var" / "auth.secret"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["auth.secret"]  # no temporary left behind


def test_secret_file_too_short_is_an_error(tmp_path):
    from playout.errors import ConfigError

    path = tmp_path / "auth.secret"
    path.write_bytes(b"short")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError):
        load_or_create_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# ------------------------------------------------------------------ FastAPI


@pytest.fixture
def app_and_token(pw_hash):
    token = new_token()
    app = FastAPI()
    app.state.auth = Authenticator(
        settings(pw_hash, tokens=[{"name": "bot", "token_hash": hash_token(token), "roles": ["technician"]}]),
        SECRET,
    )

    @app.post("/login")
    def login(body: dict, response: Response) -> dict:  # JSON: Form() would need python-multipart
        session = app.state.auth.login(body["name"], body["password"], "testclient")
        if session is None:
            raise HTTPException(401, "Sai tên hoặc mật khẩu")
        set_session_cookie(response, app.state.auth, session)
        return {"csrf": session.csrf}

    @app.post("/approve")
    def approve(who: Annotated[Principal, Depends(require("approve"))]) -> dict:
        return {"by": who.name}

    @app.get("/log")
    def log(who: Annotated[Principal, Depends(require("log"))]) -> dict:
        return {"by": who.name}

    @app.post("/stop")
    def stop(who: Annotated[Principal, Depends(require("stop"))]) -> dict:
        return {"by": who.name}

    @app.get("/health")
    def health(who: Annotated[Principal | None, Depends(optional_principal)]) -> dict:
        return {"full": bool(who and who.can("health_full"))}

    return app, token


def test_require_unknown_action_fails_at_import():
    with pytest.raises(ValueError):
        require("aprove")


def test_api_without_or_with_bad_credentials_is_401(app_and_token):
    app, _ = app_and_token
    client = TestClient(app)
    r = client.get("/log")
    assert r.status_code == 401 and r.json()["detail"] == "Cần đăng nhập"
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.get("/log", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    client.cookies.set(COOKIE_NAME, "forged.cookie")
    assert client.get("/log").status_code == 401


def test_api_bearer_roles(app_and_token):
    app, token = app_and_token
    client = TestClient(app)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/log", headers=bearer).json() == {"by": "bot"}
    assert client.post("/stop", headers=bearer).status_code == 200  # no CSRF needed for tokens
    r = client.post("/approve", headers=bearer)
    assert r.status_code == 403 and r.json()["detail"].startswith("Tài khoản không có quyền")
    assert client.get("/health", headers=bearer).json() == {"full": True}
    assert client.get("/health").json() == {"full": False}


def test_api_cookie_session_and_csrf(app_and_token, caplog, pw_hash):
    app, token = app_and_token
    caplog.set_level(logging.DEBUG)
    client = TestClient(app)
    assert client.post("/login", json={"name": "lan", "password": "sai"}).status_code == 401
    r = client.post("/login", json={"name": "lan", "password": PASSWORD})
    assert r.status_code == 200
    csrf = r.json()["csrf"]
    cookie = client.cookies[COOKIE_NAME]
    assert (
        "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    )

    assert client.post("/approve").status_code == 403  # cookie alone: could be another site's form
    r = client.post("/approve", headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert client.post("/approve", headers={"X-CSRF-Token": csrf}).json() == {"by": "lan"}
    r = client.post(
        "/approve",
        content=f"csrf_token={csrf}&x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json() == {"by": "lan"}
    assert client.post("/stop", headers={"X-CSRF-Token": csrf}).status_code == 403  # approver cannot stop
    assert client.get("/log").status_code == 403

    logged = caplog.text
    assert "lan" in logged  # names are logged…
    for secret in (PASSWORD, "sai'", token, csrf, cookie, pw_hash, hash_token(token)):
        assert secret not in logged  # …secrets never


def test_missing_authenticator_fails_closed():
    app = FastAPI()

    @app.post("/approve")
    def approve(who: Annotated[Principal, Depends(require("approve"))]) -> dict:
        return {}

    assert TestClient(app).post("/approve").status_code == 503
