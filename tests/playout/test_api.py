"""The LAN API with roles: a real Station (mock relay pins, real SQLite, real renders) behind TestClient."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from playout.api import create_app
from playout.auth import hash_password, hash_token
from playout.errors import RateLimited, StorageUnavailable
from playout.intake import MAX_SCRIPT_BYTES
from tests.station import start_station, write_script

ADMIN = "admin-token-0123456789abcdef"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NOT_TODAY = [
    d for i, d in enumerate(DAYS) if i != dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).weekday()
]
TECH, OPER, APPR = "tech-token-0123456789abcdef", "oper-token-0123456789abcdef", "appr-token-0123456789abcdef"


@pytest.fixture
def station(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    write_script(
        tmp_path / "bulletins" / "approved",
        "dvc.md",
        "Bà con truy cập Cổng Dịch vụ công. Xin cảm ơn.",
        title="Dịch vụ công <trực tuyến>",
        topic="dich-vu-cong",
        department="Công an phường",
        link="https://dichvucong.gov.vn/p/home/dvc-trang-chu.html?tu-khoa=khai-sinh",
    )
    config = make_config(
        bulletin={"length_s": 12, "lead_in": "", "outro": "Hết."},
        relay={"pre_roll_s": 0.2, "tail_s": 0.1},
        # Never today's weekday: the station must not air during the test, whatever the hour.
        windows=[
            {"name": "sáng", "start": "06:00", "end": "06:30", "days": NOT_TODAY},
            {"name": "chiều", "start": "17:00", "end": "17:30", "days": NOT_TODAY},
        ],
        auth={
            "accounts": [
                {"name": "lan", "password_hash": hash_password("mat-khau-cua-lan"), "roles": ["technician"]},
                {"name": "hoa", "password_hash": hash_password("mat-khau-cua-hoa"), "roles": ["operator"]},
            ],
            "tokens": [
                {"name": "giam-sat", "token_hash": hash_token(TECH), "roles": ["technician"]},
                {"name": "may-quet", "token_hash": hash_token(OPER), "roles": ["operator"]},
                {"name": "lanh-dao", "token_hash": hash_token(APPR), "roles": ["approver"]},
                {"name": "quan-tri", "token_hash": hash_token(ADMIN), "roles": ["admin"]},
            ],
        },
        qr={"station_name": "Đài truyền thanh phường Đông Hải"},
    )
    st = start_station(config)
    yield st
    st.close()


@pytest.fixture
def client(station):
    return TestClient(create_app(station))


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_health_is_minimal_without_a_role_and_full_with_one(client):
    open_ = client.get("/api/health").json()
    assert set(open_) == {"status", "version", "time"}
    full = client.get("/api/health", headers=bearer(TECH)).json()
    assert full["relay"]["on"] is False and full["library"]["ready"] == 1
    assert full["tts_engines"] == {"espeak": True}


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("get", "/api/plays", TECH),
        ("get", "/api/plays.csv", TECH),
        ("get", "/api/reports/month/2026/11", TECH),
        ("get", "/api/bulletins", OPER),
        ("post", "/api/playback/stop", TECH),
        ("post", "/api/relay/off", TECH),
    ],
)
def test_every_route_needs_the_right_role(client, method, path, allowed):
    call = getattr(client, method)
    missing = call(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert call(path, headers=bearer("not-a-token")).status_code == 401
    wrong = OPER if allowed == TECH else TECH
    forbidden = call(path, headers=bearer(wrong))
    assert forbidden.status_code == 403 and "không có quyền" in forbidden.json()["detail"]
    assert call(path, headers=bearer(allowed)).status_code == 200


def test_login_session_csrf_and_rate_limit(client, station):
    assert client.post("/api/login", json={"name": "lan", "password": "sai-mat-khau"}).status_code == 401
    ok = client.post("/api/login", json={"name": "lan", "password": "mat-khau-cua-lan"})
    assert ok.status_code == 200 and ok.json()["roles"] == ["technician"]
    csrf = ok.json()["csrf_token"]
    assert client.get("/api/plays").status_code == 200  # the cookie is enough to read
    assert client.post("/api/relay/off").status_code == 403  # but a write needs the CSRF token too
    assert client.post("/api/relay/off", headers={"X-CSRF-Token": csrf}).json() == {"relay_on": False}
    other = TestClient(create_app(station))
    codes = [
        other.post("/api/login", json={"name": "hoa", "password": "doan-sai"}).status_code for _ in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[-1] == 429


def test_as_run_log_csv_opens_in_excel(client):
    body = client.get("/api/plays.csv", headers=bearer(TECH)).content
    assert body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel shows Vietnamese correctly
    assert "\r\n" in body.decode("utf-8-sig")


def test_preview_qr_and_poster(client, station, tmp_path):
    (b,) = client.get("/api/bulletins", headers=bearer(OPER)).json()
    assert b["status"] == "ready" and b["engine"] == "espeak" and b["department"] == "Công an phường"
    wav = client.get(f"/api/bulletins/{b['id']}/audio", headers=bearer(OPER))
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"
    png = client.get(f"/api/bulletins/{b['id']}/qr.png", headers=bearer(OPER))
    (tmp_path / "qr.png").write_bytes(png.content)
    zbar = shutil.which("zbarimg")
    assert zbar, "zbar-tools is installed by make setup"
    decoded = subprocess.run([zbar, "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True)
    assert decoded.stdout.strip() == "https://dichvucong.gov.vn/p/home/dvc-trang-chu.html?tu-khoa=khai-sinh"
    poster = client.get(f"/api/bulletins/{b['id']}/poster", headers=bearer(OPER)).text
    assert "Nghe – Quét – Thực hành" in poster and "Đài truyền thanh phường Đông Hải" in poster
    assert "Dịch vụ công &lt;trực tuyến&gt;" in poster  # the title is text, never markup
    assert client.get("/api/bulletins/nope/qr.png", headers=bearer(OPER)).status_code == 404


def test_reports(client):
    month = client.get("/api/reports/month/2026/11", headers=bearer(TECH)).json()
    assert month["plays_per_week_target"] == 12 and len(month["topics"]) >= 6
    assert client.get("/api/reports/quarter/2026/4.csv", headers=bearer(TECH)).content.startswith(
        b"\xef\xbb\xbf"
    )
    assert (
        client.get("/api/reports/month/2026/11/chart.svg", headers=bearer(TECH))
        .text.lstrip()
        .startswith("<svg")
    )
    assert client.get("/api/reports/month/2026/13", headers=bearer(TECH)).status_code == 422


def upload(client, name, data, token=OPER):
    return client.post("/api/bulletins", files={"file": (name, data, "text/plain")}, headers=bearer(token))


def wait_library(client, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = {b["id"]: b["status"] for b in client.get("/api/bulletins", headers=bearer(OPER)).json()}
        if predicate(ids):
            return ids
        time.sleep(0.2)
    raise AssertionError(f"library never matched: {ids}")


def test_upload_abuse_is_refused_clearly(client):
    assert upload(client, "x.txt", "Xin chào.".encode(), token=TECH).status_code == 403
    big = upload(client, "to.txt", b"a " * 600_000)
    assert big.status_code == 413 and big.json()["detail"]["code"] == "SCRIPT_TOO_LARGE"
    escaped = upload(client, "../../etc/passwd.txt", "Kính thưa bà con. Xin cảm ơn.".encode())
    assert escaped.status_code == 201 and escaped.json()["name"] == "passwd.txt"
    exe = upload(client, "virus.exe", b"MZ\x90\x00")
    assert exe.status_code == 422 and exe.json()["detail"]["code"] == "SCRIPT_TYPE_UNSUPPORTED"
    junk = upload(client, "rac.txt", bytes(range(256)) * 20)
    assert junk.status_code == 422 and junk.json()["detail"]["code"] == "SCRIPT_NOT_TEXT"
    assert "message" in junk.json()["detail"]  # Vietnamese, for the operator


def test_approval_is_pinned_to_the_content(client, station):
    v1 = upload(client, "thong-bao.md", "Bà con nhớ cập nhật ứng dụng VNeID. Xin cảm ơn.".encode()).json()
    assert v1["status"] == "pending"
    assert client.post(f"/api/scripts/{v1['sha256']}/approve", headers=bearer(OPER)).status_code == 403
    ok = client.post(f"/api/scripts/{v1['sha256']}/approve", headers=bearer(APPR))
    assert ok.json()["status"] == "approved" and ok.json()["decided_by"] == "lanh-dao"
    wait_library(client, lambda ids: ids.get(v1["sha256"]) == "ready")
    # Edited after approval: a new pending version; the approved one keeps airing meanwhile.
    v2 = upload(
        client, "thong-bao.md", "Bà con nhớ cập nhật ứng dụng VNeID mới nhất. Xin cảm ơn.".encode()
    ).json()
    assert v2["status"] == "pending" and v2["sha256"] != v1["sha256"]
    ids = wait_library(client, lambda ids: v1["sha256"] in ids)
    assert v2["sha256"] not in ids
    client.post(f"/api/scripts/{v2['sha256']}/approve", headers=bearer(APPR))
    wait_library(client, lambda ids: ids.get(v2["sha256"]) == "ready" and v1["sha256"] not in ids)
    old = {r["sha256"]: r["status"] for r in client.get("/api/scripts", headers=bearer(OPER)).json()}
    assert old[v1["sha256"]] == "superseded"
    # Reject and withdraw; a decision on the wrong state is a conflict, not a crash.
    v3 = upload(client, "khac.md", "Một bản tin khác. Xin cảm ơn.".encode()).json()
    rejected = client.post(
        f"/api/scripts/{v3['sha256']}/reject", json={"reason": "trùng nội dung"}, headers=bearer(APPR)
    )
    assert rejected.json()["status"] == "rejected"
    assert client.post(f"/api/scripts/{v3['sha256']}/withdraw", headers=bearer(OPER)).status_code == 409
    client.post(f"/api/scripts/{v2['sha256']}/withdraw", headers=bearer(OPER))
    wait_library(client, lambda ids: v2["sha256"] not in ids)
    assert client.post("/api/scripts/khong-co/approve", headers=bearer(APPR)).status_code == 404
    trail = [
        (a["action"], a["who"], a["sha256"]) for a in client.get("/api/audit", headers=bearer(TECH)).json()
    ]
    assert trail[::-1][:4] == [
        ("submit", "may-quet", v1["sha256"]),
        ("approve", "lanh-dao", v1["sha256"]),
        ("submit", "may-quet", v2["sha256"]),
        ("approve", "lanh-dao", v2["sha256"]),
    ]


def test_each_refusal_takes_its_status_from_its_error_class(client, station, monkeypatch):
    """One handler answers every refusal a route lets through: the class's status, ``{code, message}``."""
    v = upload(client, "mot.md", "Một bản tin để từ chối. Xin cảm ơn.".encode()).json()
    url = f"/api/scripts/{v['sha256']}"
    assert client.post(f"{url}/reject", json={"reason": "trùng"}, headers=bearer(APPR)).status_code == 200
    answers = {
        "BulletinStateConflict": client.post(f"{url}/withdraw", headers=bearer(OPER)),
        "BulletinNotFound": client.post("/api/scripts/khong-co/approve", headers=bearer(APPR)),
        # One byte over: under the body cap (script + form), so the store itself refuses it.
        "ScriptFileTooLarge": upload(client, "to.txt", b"a" * (MAX_SCRIPT_BYTES + 1)),
        "ScriptRejected": upload(client, "rong.txt", b"   \n"),
    }
    expected = {
        "BulletinStateConflict": (409, "BULLETIN_STATE_CONFLICT"),
        "BulletinNotFound": (404, "BULLETIN_NOT_FOUND"),
        "ScriptFileTooLarge": (413, "SCRIPT_TOO_LARGE"),
        "ScriptRejected": (422, "SCRIPT_EMPTY"),
    }
    for name, resp in answers.items():
        detail = resp.json()["detail"]
        assert (resp.status_code, detail["code"]) == expected[name], (name, resp.text)
        assert set(detail) == {"code", "message"} and detail["message"], name  # nothing from the logs

    def locked(*args, **kwargs):
        raise StorageUnavailable("Cơ sở dữ liệu đang bận, vui lòng thử lại", detail="database is locked")

    monkeypatch.setattr(station.approvals, "withdraw", locked)
    busy = client.post(f"{url}/withdraw", headers=bearer(OPER))
    assert busy.status_code == 422
    assert busy.json() == {
        "detail": {"code": "STORAGE_UNAVAILABLE", "message": "Cơ sở dữ liệu đang bận, vui lòng thử lại"}
    }

    def throttled(ip):
        raise RateLimited(7)

    monkeypatch.setattr(client.app.state.auth, "check_address", throttled)
    limited = client.post("/api/login", json={"name": "lan", "password": "mat-khau-cua-lan"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "8"
    assert "thử lại sau 7 giây" in limited.json()["detail"]  # text, as the login door has always answered


def test_the_inbox_folder_is_a_door_too(client, station, tmp_path):
    inbox = tmp_path / "bulletins" / "inbox"
    write_script(inbox, "tu-thu-muc.txt", "Bản tin thả vào thư mục chờ duyệt. Xin cảm ơn.")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pending = client.get("/api/scripts?status=pending", headers=bearer(OPER)).json()
        if any(r["name"] == "tu-thu-muc.txt" for r in pending):
            break
        time.sleep(0.2)
    (record,) = [r for r in pending if r["name"] == "tu-thu-muc.txt"]
    assert record["source"] == "inbox" and record["submitted_by"] == "thư mục inbox"
    assert record["checks"]["speech_s"] > 0  # checked at that door as at the upload's
    # A file the station refuses, and the same content dropped again after its rejection, are listed
    # by name with the reason (health, and the overview page), not just counted.
    long_body = " ".join(["Bà con khu phố chú ý thực hiện đúng hướng dẫn của phường."] * 20)
    write_script(inbox, "qua-dai.txt", long_body)
    client.post(f"/api/scripts/{record['sha256']}/reject", json={"reason": "sai ngày"}, headers=bearer(APPR))
    write_script(inbox, "gui-lai.txt", "Bản tin thả vào thư mục chờ duyệt. Xin cảm ơn.")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        refused = client.get("/api/health", headers=bearer(TECH)).json()["library"]["inbox_refused"]
        if {"qua-dai.txt", "gui-lai.txt"} <= set(refused):
            break
        time.sleep(0.2)
    assert "[SCRIPT_TOO_LONG]" in refused["qua-dai.txt"] and "Cần bớt khoảng" in refused["qua-dai.txt"]
    assert "đã bị từ chối trước đây (lý do: sai ngày)" in refused["gui-lai.txt"]
    (inbox / "qua-dai.txt").unlink()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "qua-dai.txt" in refused:
        refused = client.get("/api/health", headers=bearer(TECH)).json()["library"]["inbox_refused"]
        time.sleep(0.2)
    assert "qua-dai.txt" not in refused


def test_upcoming_slots_follow_the_rotation(client, station):
    upcoming = client.get("/api/schedule", headers=bearer(OPER)).json()
    assert len(upcoming) == 24  # two windows a day for 14 days, less the two days that are today's weekday
    assert {u["window"] for u in upcoming} == {"sáng", "chiều"}
    assert all(u["title"] == "Dịch vụ công <trực tuyến>" for u in upcoming)  # the only bulletin
    assert upcoming == sorted(upcoming, key=lambda u: u["at"])


def test_metrics_for_prometheus(client):
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers=bearer(TECH)).text
    assert "playout_relay_on 0.0" in text
    assert 'playout_slots_total{status="played"}' in text
    assert 'playout_bulletins{status="ready"} 1.0' in text


def test_play_now_airs_outside_windows_and_says_who(client, station):
    (b,) = client.get("/api/bulletins", headers=bearer(OPER)).json()
    assert client.post(f"/api/bulletins/{b['id']}/play-now", headers=bearer(OPER)).status_code == 403
    slot = client.post(f"/api/bulletins/{b['id']}/play-now", headers=bearer(TECH)).json()["slot"]
    deadline = time.monotonic() + 30
    rows = []
    while time.monotonic() < deadline:
        rows = [r for r in station.log.plays() if r["slot_key"] == slot]
        if rows and rows[0]["status"] == "played":
            break
        time.sleep(0.2)
    assert rows and rows[0]["status"] == "played" and rows[0]["window"] == "phát ngay"
    trail = client.get("/api/audit", headers=bearer(TECH)).json()
    assert ("play_now", "giam-sat") in {(a["action"], a["who"]) for a in trail}


# ---------------------------------------------------------------- the LAN without logging in (issue 10 §5)


@pytest.fixture
def live(station):
    from tests.playout.live import serve

    with serve(create_app(station)) as port:
        yield port


def test_a_huge_login_body_is_refused_before_it_is_read(live):
    from tests.playout.live import request, rss_mib, zeros

    before = rss_mib()
    # Headers that promise 300 MB: refused on the promise, before a byte of body is read.
    promised = request(
        live,
        "POST",
        "/api/login",
        {"Content-Type": "application/json", "Content-Length": "300000000"},
        zeros(300_000_000),
        timeout=5,
    )
    assert promised.status == 413 and promised.seconds < 2, promised
    assert promised.json()["detail"]["code"] == "REQUEST_TOO_LARGE"
    assert "quá lớn" in promised.json()["detail"]["message"]
    assert promised.headers.get("connection") == "close"
    # No length at all (chunked): counted as it arrives and cut off at the cap.
    chunked = request(
        live,
        "POST",
        "/api/login",
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        (b"100000\r\n" + b"0" * 0x100000 + b"\r\n" for _ in range(300)),
        timeout=5,
    )
    assert chunked.status == 413 and chunked.json()["detail"]["code"] == "REQUEST_TOO_LARGE", chunked
    assert chunked.sent < 64 * 2**20  # cut off long before the 300 MB were sent
    print(f"RSS {before:.0f} -> {rss_mib():.0f} MiB; sent {promised.sent} + {chunked.sent} bytes")
    assert rss_mib() - before < 64, f"RSS grew from {before:.0f} to {rss_mib():.0f} MiB"


def test_an_anonymous_upload_is_refused_before_its_body_is_read(live):
    from tests.playout.live import request, zeros

    form = {"Content-Type": "multipart/form-data; boundary=xyz", "Content-Length": "900000"}
    # Only the headers are sent: FastAPI used to wait for (and spool) the whole form before checking auth.
    anonymous = request(live, "POST", "/api/bulletins", form, b"", timeout=3)
    assert anonymous.status == 401 and anonymous.seconds < 2, anonymous
    assert anonymous.json()["detail"] == "Cần đăng nhập"
    wrong_role = request(live, "POST", "/api/bulletins", {**form, **bearer(TECH)}, b"", timeout=3)
    assert wrong_role.status == 403, wrong_role
    web = request(live, "POST", "/ban-tin/tai-len", form, b"", timeout=3)
    assert web.status == 303 and web.headers["location"] == "/dang-nhap", web
    # An operator may upload, but not 300 MB: refused on the promise, with the upload's own code.
    huge = request(
        live,
        "POST",
        "/api/bulletins",
        {**form, **bearer(OPER), "Content-Length": "300000000"},
        zeros(300_000_000),
        timeout=5,
    )
    assert huge.status == 413 and huge.json()["detail"]["code"] == "SCRIPT_TOO_LARGE", huge
    web_login = request(
        live,
        "POST",
        "/dang-nhap",
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": "300000000"},
        zeros(300_000_000),
        timeout=5,
    )
    assert web_login.status == 413 and "quá lớn" in web_login.body.decode(), web_login
    assert web_login.headers["content-type"].startswith("text/html")


def test_logout_ends_the_session_on_the_server(client, station):
    ok = client.post("/api/login", json={"name": "lan", "password": "mat-khau-cua-lan"})
    csrf = ok.json()["csrf_token"]
    copied = client.cookies["playout_session"]
    assert client.get("/api/plays").status_code == 200
    assert client.post("/api/logout").json() == {"ok": True}
    thief = TestClient(create_app(station))
    thief.cookies.set("playout_session", copied)
    assert thief.get("/api/plays").status_code == 401
    assert thief.post("/api/relay/off", headers={"X-CSRF-Token": csrf}).status_code == 401
    assert thief.get("/", follow_redirects=False).status_code == 303  # the web page refuses it too
    # A restarted daemon (a new app on the same data folder) still refuses it.
    again = TestClient(create_app(station))
    again.cookies.set("playout_session", copied)
    assert again.get("/api/plays").status_code == 401


def test_login_throttles_the_address_not_the_account(station):
    app = create_app(station)
    attacker = TestClient(app, client=("192.168.1.66", 40000))
    codes = []
    for _ in range(20):
        codes.append(attacker.post("/api/login", json={"name": "lan", "password": "doan-bua"}).status_code)
    assert set(codes) <= {401, 429} and codes[-1] == 429
    owner = TestClient(app, client=("192.168.1.20", 40001))
    start = time.monotonic()
    ok = owner.post("/api/login", json={"name": "lan", "password": "mat-khau-cua-lan"})
    assert ok.status_code == 200, ok.text
    assert time.monotonic() - start < 5  # slowed down, never locked out
    # The attacker's address stays throttled, even with the right password.
    limited = attacker.post("/api/login", json={"name": "lan", "password": "mat-khau-cua-lan"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_a_technician_confirms_the_clock(client):
    assert client.post("/api/clock/confirm", headers=bearer(OPER)).status_code == 403
    done = client.post("/api/clock/confirm", headers=bearer(TECH))
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "confirmed" and done.json()["trusted"] is True
    trail = client.get("/api/audit", headers=bearer(TECH)).json()
    assert ("confirm_clock", "giam-sat") in {(a["action"], a["who"]) for a in trail}


def docx_with_paragraphs(n: int) -> bytes:
    import io
    import zipfile

    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    template = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    head = template.read("word/document.xml")
    start = head[: head.index(b"<w:body>") + len(b"<w:body>")]
    body = start + b"<w:p><w:r><w:t>Tin.</w:t></w:r></w:p>" * n + b"</w:body></w:document>"
    result = io.BytesIO()
    with zipfile.ZipFile(result, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in template.infolist():
            data = body if info.filename == "word/document.xml" else template.read(info.filename)
            archive.writestr(info.filename, data)
    return result.getvalue()


def test_a_docx_bomb_is_refused_quickly_and_the_api_keeps_answering(live):
    import threading

    import httpx

    bomb = docx_with_paragraphs(60_000)
    assert len(bomb) < 100_000
    base = f"http://127.0.0.1:{live}"
    answer: dict = {}

    def send():
        with httpx.Client(base_url=base, timeout=60) as c:
            start = time.monotonic()
            r = c.post("/api/bulletins", files={"file": ("bom.docx", bomb)}, headers=bearer(OPER))
            answer.update(status=r.status_code, body=r.json(), seconds=time.monotonic() - start)

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    slowest = 0.0
    with httpx.Client(base_url=base, timeout=5) as c:
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            start = time.monotonic()
            assert c.get("/api/health").status_code == 200
            slowest = max(slowest, time.monotonic() - start)
            time.sleep(0.02)
    worker.join(5)
    assert answer["status"] == 422 and answer["body"]["detail"]["code"] == "SCRIPT_TEXT_TOO_LONG", answer
    assert answer["seconds"] < 3, answer
    assert slowest < 0.5, f"/api/health took {slowest:.2f} s while the upload was parsed"


def test_uploads_are_parsed_off_the_event_loop(live):
    import threading

    import httpx

    # A long but acceptable Word file: parsing takes a while, and the API must keep answering meanwhile.
    legit = docx_with_paragraphs(1_900)
    base = f"http://127.0.0.1:{live}"
    answer: dict = {}

    def send():
        with httpx.Client(base_url=base, timeout=60) as c:
            r = c.post("/api/bulletins", files={"file": ("dai.docx", legit)}, headers=bearer(OPER))
            answer.update(status=r.status_code)

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    slowest, polls = 0.0, 0
    with httpx.Client(base_url=base, timeout=5) as c:
        deadline = time.monotonic() + 60
        while worker.is_alive() and time.monotonic() < deadline:
            start = time.monotonic()
            assert c.get("/api/health").status_code == 200
            slowest = max(slowest, time.monotonic() - start)
            polls += 1
            time.sleep(0.01)
    worker.join(5)
    assert answer.get("status") in (201, 422), answer
    assert slowest < 0.3, f"/api/health took {slowest:.2f} s while the upload was parsed ({polls} polls)"
