"""The web page for people: TestClient for roles/CSRF, then a real Chromium against a real uvicorn.

One Station (real SQLite, real espeak renders, mock relay pins) serves the whole module.  Screenshots at a
phone's size go to tests/artifacts/web/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from playout.api import create_app
from playout.asrun import Slot
from playout.auth import hash_password
from playout.config import parse_config
from tests.station import start_station, write_script

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
PHONE = {"width": 390, "height": 844}
PASSWORDS = {"hoa": "mat-khau-cua-hoa", "duyet": "mat-khau-cua-duyet", "lan": "mat-khau-cua-lan"}
SCRIPT = """---
title: Cài đặt ứng dụng VNeID
topic: dich-vu-cong
department: Công an phường
link: https://vneid.gov.vn/huong-dan
---
Kính thưa bà con. Bà con hãy cài đặt ứng dụng VNeID để làm thủ tục trực tuyến. Xin cảm ơn.
"""


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    root = tmp_path_factory.mktemp("web")
    write_script(
        root / "bulletins" / "approved",
        "dvc.md",
        "Bà con truy cập Cổng Dịch vụ công. Xin cảm ơn.",
        title="Dịch vụ công <trực tuyến>",
        topic="dich-vu-cong",
        department="Công an phường",
        link="https://dichvucong.gov.vn/p/home/dvc-trang-chu.html",
    )
    (root / "lexicon.tsv").write_text("KDL\tkhu du lịch\nOTP\tô tê 4\n", "utf-8")  # line 2: a digit
    roles = {"hoa": "operator", "duyet": "approver", "lan": "technician"}
    config = parse_config(
        {
            "paths": {
                "data": str(root / "var"),
                "bulletins": str(root / "bulletins"),
                "lexicon": str(root / "lexicon.tsv"),
            },
            "tts": {"engines": ["espeak"]},
            "windows": [],  # the station must not air during the test, whatever the hour
            "bulletin": {"length_s": 12, "lead_in": "", "outro": "Hết."},
            "auth": {
                "accounts": [
                    {"name": n, "password_hash": hash_password(PASSWORDS[n]), "roles": [r]}
                    for n, r in roles.items()
                ]
            },
            "qr": {"station_name": "Đài truyền thanh phường Đông Hải"},
        },
        base=root,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPIOZERO_PIN_FACTORY", "mock")
        st = start_station(config)
        # Two rows in the as-run log: one aired three hours ago, then one missed.
        (bulletin,) = st.library.ready()
        morning = st.now().replace(microsecond=0) - dt.timedelta(hours=3)
        row = st.log.start(Slot("sang", morning), bulletin)
        st.log.finish(row, "played", relay_on_at=morning, relay_off_at=morning + dt.timedelta(seconds=20))
        missed = st.log.start(Slot("chieu", morning + dt.timedelta(hours=2)))
        st.log.finish(missed, "missed", error="Trạm khởi động lại muộn")
        yield st
        st.close()


def logged_in(station, name):
    client = TestClient(create_app(station))
    resp = client.post("/dang-nhap", data={"name": name, "password": PASSWORDS[name]}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    return client, csrf


def test_anonymous_visitors_are_sent_to_the_login_form(station):
    client = TestClient(create_app(station))
    for path in ("/", "/ban-tin", "/nhat-ky", "/bao-cao"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"] == "/dang-nhap"
    form = client.get("/dang-nhap")
    assert form.status_code == 200 and '<html lang="vi">' in form.text
    assert 'name="viewport"' in form.text and "Đăng nhập" in form.text
    assert "http://" not in form.text and "https://" not in form.text  # nothing from the Internet


def test_wrong_password_shows_the_form_again_then_rate_limits(station):
    client = TestClient(create_app(station))
    wrong = client.post("/dang-nhap", data={"name": "hoa", "password": "doan-sai-roi"})
    assert wrong.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in wrong.text
    assert 'value="hoa"' in wrong.text and "playout_session" not in wrong.headers.get("set-cookie", "")
    codes = [client.post("/dang-nhap", data={"name": "hoa", "password": "sai"}).status_code for _ in range(5)]
    limited = client.post("/dang-nhap", data={"name": "hoa", "password": "sai"})
    assert codes[-1] == 429 and limited.status_code == 429 and "thử lại sau" in limited.text


@pytest.mark.parametrize(
    "name, allowed, refused",
    [
        ("hoa", ["/", "/ban-tin"], ["/nhat-ky", "/bao-cao"]),
        ("duyet", ["/", "/ban-tin"], ["/nhat-ky", "/bao-cao"]),
        ("lan", ["/", "/nhat-ky", "/bao-cao", "/ban-tin"], []),  # bulletins: to play one now
    ],
)
def test_each_role_sees_its_pages_and_a_vietnamese_403_elsewhere(station, name, allowed, refused):
    client, _ = logged_in(station, name)
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in refused:
        resp = client.get(path)
        assert resp.status_code == 403 and "Tài khoản không có quyền" in resp.text, path
        assert f'href="{path}"' not in resp.text  # not offered in the menu either


def test_pages_show_the_station_and_escape_office_text(station):
    oper, _ = logged_in(station, "hoa")
    home = oper.get("/").text
    assert "Rơ-le loa" in home and "Đồng hồ" in home and "Thư viện" in home and "Bị lỡ" in home
    # the operators see what in their lexicon file the station could not use, and where
    assert "Từ điển của trạm" in home and "1 mục" in home and "Dòng 2: bỏ qua: cách đọc của" in home
    page = oper.get("/ban-tin").text
    assert "Dịch vụ công &lt;trực tuyến&gt;" in page and "<trực tuyến>" not in page
    assert 'action="/ban-tin/tai-len"' in page and "Duyệt</button>" not in page
    approver = logged_in(station, "duyet")[0].get("/ban-tin").text
    assert 'action="/ban-tin/tai-len"' not in approver and "<audio" not in approver
    tech, _ = logged_in(station, "lan")
    log = tech.get("/nhat-ky", params={"trang_thai": "missed"}).text
    assert "Bị lỡ" in log and "Trạm khởi động lại muộn" in log and "&lt;trực tuyến&gt;" not in log
    assert 'href="/api/plays.csv?status=missed"' in log
    report = tech.get("/bao-cao").text
    assert "<svg" in report and "Số lần phát mỗi tuần" in report
    assert re.search(r'href="/api/reports/month/\d{4}/\d{1,2}\.csv"', report)


def test_forms_need_the_csrf_token_and_the_role(station):
    oper, csrf = logged_in(station, "hoa")
    file = {"file": ("thong-bao.md", "Thông báo thử. Xin cảm ơn.".encode(), "text/markdown")}
    missing = oper.post("/ban-tin/tai-len", files=file, follow_redirects=False)
    assert missing.status_code == 403 and "CSRF" in missing.text
    wrong = oper.post("/ban-tin/tai-len", files=file, data={"csrf_token": "x"}, follow_redirects=False)
    assert wrong.status_code == 403
    ok = oper.post("/ban-tin/tai-len", files=file, data={"csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 201 and "Đã tải kịch bản lên, đang chờ duyệt" in ok.text
    (record,) = [r for r in station.approvals.records("pending") if r.name == "thong-bao.md"]
    # What the station found is kept with the version and shown to the approver.
    assert record.checks["speech_s"] > 0 and record.checks["length_s"] == 12
    assert "lời chiếm" in ok.text
    exe = {"file": ("virus.exe", b"MZ\x90\x00", "application/octet-stream")}
    refused = oper.post("/ban-tin/tai-len", files=exe, data={"csrf_token": csrf})
    assert refused.status_code == 422 and 'class="msg err"' in refused.text
    # An operator may not approve; an approver must send the token; a rejection needs a reason.
    assert oper.post(f"/ban-tin/{record.sha256}/duyet", data={"csrf_token": csrf}).status_code == 403
    approver, token = logged_in(station, "duyet")
    assert approver.post(f"/ban-tin/{record.sha256}/tu-choi", data={"reason": "trùng"}).status_code == 403
    assert approver.post(f"/ban-tin/{record.sha256}/tu-choi", data={"csrf_token": token}).status_code == 422
    done = approver.post(
        f"/ban-tin/{record.sha256}/tu-choi", data={"csrf_token": token, "reason": "trùng nội dung"}
    )
    assert done.status_code == 200 and "Đã từ chối" in done.text and "Lý do: trùng nội dung" in done.text
    again = approver.post(
        f"/ban-tin/{record.sha256}/tu-choi", data={"csrf_token": token, "reason": "lần nữa"}
    )
    assert again.status_code == 409 and "Không thể từ chối" in again.text
    # The same file sent again after its rejection says so, with the reason.
    resent = oper.post("/ban-tin/tai-len", files=file, data={"csrf_token": csrf})
    assert "đã được gửi trước đây" in resent.text and "Lý do từ chối: trùng nội dung" in resent.text
    assert oper.post("/dang-xuat", follow_redirects=False).status_code == 403
    out = oper.post("/dang-xuat", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and oper.get("/", follow_redirects=False).status_code == 303


def test_logging_out_ends_the_session_for_a_copied_cookie_too(station):
    client, csrf = logged_in(station, "lan")
    copied = client.cookies["playout_session"]
    out = client.post("/dang-xuat", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    thief = TestClient(create_app(station))
    thief.cookies.set("playout_session", copied)
    assert thief.get("/", follow_redirects=False).headers["location"] == "/dang-nhap"
    assert thief.get("/api/plays").status_code == 401


def degraded_health(station, **keys):
    """The real health, with the keys the overview must show forced to a bad state."""
    real = station.health

    def health():
        return {**real(), **keys}

    return health


CLOCK_UNTRUSTED = {
    "state": "unsynchronized",
    "trusted": False,
    "message": "Đồng hồ chưa đồng bộ qua mạng và không có RTC: các khung giờ theo lịch đang tạm dừng.",
    "confirmed_by": None,
    "confirmed_at": None,
}


def test_the_overview_shows_problems_clock_and_storage_alarms(station, monkeypatch):
    monkeypatch.setattr(
        station,
        "health",
        degraded_health(
            station,
            status="degraded",
            problems=[{"code": "SCHEDULER_DEAD", "message": "Bộ lập lịch đã dừng <ngay>", "vital": True}],
            clock=CLOCK_UNTRUSTED,
            storage={
                "disk_free_mb": 42,
                "low_space": True,
                "held_rows": 3,
                "database_alarm": "Không ghi được CSDL",
            },
        ),
    )
    tech, _ = logged_in(station, "lan")
    home = tech.get("/").text
    assert "Trạm đang có sự cố" in home and "Bộ lập lịch đã dừng &lt;ngay&gt;" in home
    assert "các khung giờ theo lịch đang tạm dừng" in home
    assert 'action="/dong-ho/xac-nhan"' in home and "Xác nhận giờ hiện tại là đúng" in home
    assert "Thẻ nhớ sắp đầy (còn 42 MB trống)" in home and "Không ghi được CSDL" in home and "3 dòng" in home
    oper, _ = logged_in(station, "hoa")  # sees the alarm, not the button
    home = oper.get("/").text
    assert "các khung giờ theo lịch đang tạm dừng" in home and 'action="/dong-ho/xac-nhan"' not in home
    # A health() without the new keys (an older station) still renders.
    monkeypatch.setattr(station, "health", lambda: {"status": "ok", "time": "2026-11-21T06:00:00+07:00"})
    bare = tech.get("/")
    assert bare.status_code == 200 and "Tổng quan" in bare.text and "sự cố" not in bare.text


def test_a_technician_confirms_the_clock_from_the_overview(station, monkeypatch):
    calls = []
    monkeypatch.setattr(station, "health", degraded_health(station, clock=CLOCK_UNTRUSTED))
    monkeypatch.setattr(
        station, "confirm_clock", lambda who: calls.append(who) or {**CLOCK_UNTRUSTED, "trusted": True}
    )
    tech, csrf = logged_in(station, "lan")
    assert tech.post("/dong-ho/xac-nhan", follow_redirects=False).status_code == 403  # no CSRF token
    done = tech.post("/dong-ho/xac-nhan", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/?xong=dong-ho" and calls == ["lan"]
    assert "Đã xác nhận giờ của trạm" in tech.get("/?xong=dong-ho").text
    oper, token = logged_in(station, "hoa")
    refused = oper.post("/dong-ho/xac-nhan", data={"csrf_token": token})
    assert refused.status_code == 403 and calls == ["lan"]


FLEET_HEALTH = {
    "station_id": "dong-hai",
    "content": {
        "online": False,
        "alarm": "FLEET_METADATA_EXPIRED: Chưa nhận được tin mới của trung tâm từ 06:00",
        "bulletins": 3,
        "verified_at": "2026-11-28T17:05:00+07:00",
    },
    "link": {
        "connected": False,
        "code": "FLEET_LINK_TLS",
        "message": "Kết nối bảo mật (TLS) tới trung tâm <x>",
    },
    "outbox": {"backlog": 7, "error": "timed out"},
}


def test_the_overview_shows_the_centres_link_and_each_alarm_with_its_button(station, monkeypatch):
    alarm_id = station.alarms.raise_alarm("fleet_bad_signature", "Siêu dữ liệu của trung tâm sai chữ ký")
    real = station.health
    monkeypatch.setattr(station, "health", lambda: {**real(), "fleet": FLEET_HEALTH})
    tech, _ = logged_in(station, "lan")
    home = tech.get("/").text
    centre = home[home.index('id="trung-tam"') :].split("</dd>")[0]
    assert "Tin từ trung tâm chưa cập nhật được" in centre and "FLEET_METADATA_EXPIRED" in centre
    assert "3 bản tin của trung tâm" in centre and "xác minh lần cuối 28/11/2026 17:05" in centre
    assert "Chưa kết nối</span> Kết nối bảo mật (TLS) tới trung tâm &lt;x&gt;" in centre
    assert "7 dòng nhật ký phát đang chờ gửi" in centre and "timed out" in centre
    # The alarm is at the top with its own button (not only in the storage card, which is for the disk).
    problems = home[home.index('id="su-co"') :].split("</div>")[0]
    assert "Siêu dữ liệu của trung tâm sai chữ ký" in problems
    assert problems.count("Siêu dữ liệu của trung tâm sai chữ ký") == 1  # listed once, with its button
    assert f'action="/canh-bao/{alarm_id}/da-xu-ly"' in problems
    oper, _ = logged_in(station, "hoa")  # an operator reads it, without the button
    seen = oper.get("/").text
    assert "Siêu dữ liệu của trung tâm sai chữ ký" in seen and f"/canh-bao/{alarm_id}/" not in seen

    # On the technician's phone: it fits the screen, and the button clears the alarm.
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve(create_app(station)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = login(browser, base, "lan")
            assert "Đã kết nối" not in page.inner_text("#trung-tam")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            shot(page, "trung-tam-canh-bao")
            page.click("#su-co button:has-text('Đã xử lý cảnh báo này')")
            page.wait_for_url(base + "/?xong=canh-bao")
            assert "sai chữ ký" not in page.content()
        finally:
            browser.close()
    assert not [a for a in station.alarms.active() if a["id"] == alarm_id]
    # A station without a centre has no such row.
    monkeypatch.setattr(station, "health", real)
    assert 'id="trung-tam"' not in tech.get("/").text


# ---------------------------------------------------------------- a real browser


@contextlib.contextmanager
def serve(app):
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="web-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def login(browser, base, name):
    context = browser.new_context(viewport=PHONE, base_url=base, locale="vi-VN", accept_downloads=True)
    page = context.new_page()
    page.goto("/")
    assert page.url.endswith("/dang-nhap")
    page.fill("#name", name)
    page.fill("#password", PASSWORDS[name])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    return page


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_operator_approver_and_technician_in_a_real_browser(station, tmp_path):
    assert CHROMIUM.exists(), "Chromium is missing: `make setup` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "vneid.md"
    script.write_text(SCRIPT, "utf-8")
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    with serve(create_app(station)) as base, sync_playwright() as pw:
        os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            # The login form, then a wrong password.
            anon = browser.new_context(viewport=PHONE, base_url=base).new_page()
            anon.goto("/dang-nhap")
            anon.fill("#name", "hoa")
            anon.fill("#password", "khong-dung-dau")
            anon.click("button[type=submit]")
            assert "Sai tên đăng nhập hoặc mật khẩu" in anon.inner_text(".msg.err")
            shot(anon, "dang-nhap")

            # Operator: the overview, then upload a script through the form.
            oper = login(browser, base, "hoa")
            assert "Tổng quan" in oper.inner_text("h1") and "Rơ-le loa" in oper.content()
            shot(oper, "tong-quan")
            oper.click("nav >> text=Bản tin")
            oper.set_input_files("#file", str(script))
            oper.click("text=Tải lên")
            assert "đang chờ duyệt" in oper.inner_text(".msg.ok")
            card = oper.locator(".card[data-sha]", has_text="Cài đặt ứng dụng VNeID")
            assert "Chờ duyệt" in card.inner_text()
            sha = card.get_attribute("data-sha")

            # Approver, in a browser context of their own.
            appr = login(browser, base, "duyet")
            appr.goto("/ban-tin")
            appr.locator(f'.card[data-sha="{sha}"] button:has-text("Duyệt")').click()
            assert "Đã duyệt" in appr.inner_text(f'.card[data-sha="{sha}"]')
            shot(appr, "ban-tin-nguoi-duyet")

            # Operator again: wait for the render, listen, open the poster.
            audio = oper.locator(f'.card[data-id="{sha}"] audio')
            deadline = time.monotonic() + 30
            while not audio.count() and time.monotonic() < deadline:
                time.sleep(0.3)
                oper.reload()
            assert audio.count() == 1, "the approved bulletin never became ready"
            src = audio.get_attribute("src")
            wav = oper.request.get(src)
            assert wav.status == 200 and wav.headers["content-type"] == "audio/wav"
            assert wav.body()[:4] == b"RIFF"
            shot(oper, "ban-tin")
            poster = oper.locator(f'.card[data-id="{sha}"] a:has-text("Áp phích")').get_attribute("href")
            oper.goto(poster)
            assert "Nghe – Quét – Thực hành" in oper.content()
            shot(oper, "ap-phich")

            # Technician: filter the log, download the CSV, look at the report.
            tech = login(browser, base, "lan")
            tech.goto("/nhat-ky")
            tech.select_option("#trang_thai", "played")
            tech.click("button:has-text('Lọc')")
            tech.wait_for_url(re.compile(r"trang_thai=played"))
            rows = tech.locator("tbody tr")
            assert rows.count() == 1 and "Đã phát" in rows.first.inner_text()
            shot(tech, "nhat-ky")
            with tech.expect_download() as download:
                tech.click("#csv")
            body = Path(download.value.path()).read_bytes()
            assert body.startswith(b"\xef\xbb\xbf")
            text = body.decode("utf-8-sig")
            assert "Dịch vụ công <trực tuyến>" in text and "Trạm khởi động lại muộn" not in text
            tech.click("nav >> text=Báo cáo")
            assert tech.locator("main svg").count() == 1
            shot(tech, "bao-cao")
        finally:
            browser.close()


def test_the_technician_on_a_phone_plays_stops_and_reads_the_log(station):
    """Play now, stop and relay off each take a second click; the log is cards at 390 px; filters say
    what is wrong with them."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with serve(create_app(station)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            tech = login(browser, base, "lan")
            assert tech.locator("#thao-tac summary:has-text('Dừng phát')").count() == 0  # nothing on air
            tech.click("nav >> text=Bản tin")
            bulletin = station.library.ready()[0]
            card = tech.locator(f'.card[data-id="{bulletin.id}"]')
            card.locator("summary:has-text('Phát ngay')").click()
            shot(tech, "phat-ngay-xac-nhan")
            assert not station.relay.is_on  # the first click only asks
            card.locator("button:has-text('Xác nhận phát ngay')").click()
            tech.wait_for_url(base + "/?xong=phat-ngay")
            assert "Đã bắt đầu phát" in tech.inner_text(".msg.ok")
            deadline = time.monotonic() + 10
            while not station.relay.is_on and time.monotonic() < deadline:
                time.sleep(0.05)
            assert station.relay.is_on
            tech.reload()
            tech.click("#thao-tac summary:has-text('Dừng phát')")
            shot(tech, "dung-phat-xac-nhan")
            tech.click("button:has-text('Xác nhận dừng phát')")
            tech.wait_for_url(re.compile(r"xong=(dung-phat|khong-phat)"))
            deadline = time.monotonic() + 10
            while station.relay.is_on and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not station.relay.is_on
            row = station.log.plays(limit=1)[0]
            assert row["status"] == "interrupted" and "lan" in (row["error"] or "")
            tech.click("#thao-tac summary:has-text('Tắt loa')")
            tech.click("button:has-text('Xác nhận tắt loa')")
            assert "Đã tắt rơ-le loa" in tech.inner_text(".msg.ok")
            # A POST without the second click does nothing.
            csrf = tech.locator("input[name=csrf_token]").first.get_attribute("value")
            bare = tech.request.post(base + "/loa/tat", form={"csrf_token": csrf})
            assert bare.status == 422 and "xác nhận" in bare.text()

            # The as-run log on a phone: cards, every relay time and error on screen, statuses in words.
            tech.goto("/nhat-ky")
            assert tech.locator("thead").is_hidden()
            played = tech.locator("tr.play", has_text="Đã phát").first
            relay_on = played.locator("td[data-label='Bật loa']")
            box = relay_on.bounding_box()
            assert relay_on.is_visible() and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            missed = tech.locator("tr.play", has_text="Bị lỡ").first
            assert missed.locator("td.error").is_visible()
            assert "Trạm khởi động lại muộn" in missed.inner_text()
            shot(tech, "nhat-ky-dien-thoai")
            # A topic by its name, a range the wrong way round, a month that is not one.
            tech.fill("#chu_de", "Dịch vụ công")
            tech.click("button:has-text('Lọc')")
            tech.wait_for_url(re.compile(r"chu_de="))
            assert tech.locator(".msg.err").count() == 0
            assert tech.locator("tr.play", has_text="Đã phát").count() >= 1
            tech.fill("#tu", "2026-12-10")
            tech.fill("#den", "2026-12-01")
            tech.click("button:has-text('Lọc')")
            assert "ngày bắt đầu đang sau ngày kết thúc" in tech.inner_text(".msg.err").lower()
            tech.goto("/nhat-ky?chu_de=khong-co-chu-de-nay")
            assert "Không có chủ đề" in tech.inner_text(".msg.err")
            tech.goto("/bao-cao?thang=2026-13")
            assert "không hợp lệ" in tech.inner_text(".msg.err")
            shot(tech, "bao-cao-thang-sai")
        finally:
            browser.close()


def test_the_api_reference_works_without_internet(station):
    """/docs is served whole by the station: a Pi on a LAN without Internet still shows it."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve(create_app(station)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport=PHONE, base_url=base).new_page()
            asked = []
            page.on("request", lambda r: asked.append(r.url))
            page.goto("/docs")
            assert asked and all(url.startswith(base) for url in asked), asked
            assert "Tải kịch bản lên (chờ duyệt)" in page.content()
            op = page.locator("section.op", has_text="/api/bulletins/{bulletin_id}/play-now")
            assert op.count() == 1 and "Phát ngay bản tin" in op.inner_text()
            assert "404" in op.inner_text() and "bulletin_id" in op.inner_text()
            page.click("nav.toc a:has-text('/api/plays.csv')")
            shot(page, "api-docs")
            assert page.request.get(base + "/openapi.json").json()["openapi"].startswith("3.")
        finally:
            browser.close()


def test_an_upload_too_long_is_refused_with_the_words_to_cut_and_warnings_are_shown(station):
    oper, csrf = logged_in(station, "hoa")
    long_body = " ".join(["Bà con khu phố chú ý thực hiện đúng hướng dẫn của phường."] * 40)
    file = {"file": ("dai.md", long_body.encode(), "text/markdown")}
    refused = oper.post("/ban-tin/tai-len", files=file, data={"csrf_token": csrf})
    assert refused.status_code == 422 and "Cần bớt khoảng" in refused.text and "chữ" in refused.text
    assert not [r for r in station.approvals.records() if r.name == "dai.md"]  # nothing was stored
    odd = {"file": ("viet-tat.md", "Liên hệ BQLXYZ để biết thêm. Xin cảm ơn.".encode(), "text/markdown")}
    shown = oper.post("/ban-tin/tai-len", files=odd, data={"csrf_token": csrf})
    assert shown.status_code == 201
    warning = re.search(r'id="canh-bao-tai-len".*?</div>', shown.text, re.S).group(0)
    assert "BQLXYZ" in warning and "đánh vần" in warning
    (record,) = [r for r in station.approvals.records() if r.name == "viet-tat.md"]
    assert any("BQLXYZ" in w for w in record.checks["warnings"])


def test_the_approver_hears_the_preview_and_reads_the_spoken_form_before_approving(station, tmp_path):
    """At a desktop size: a pending script is rendered as a preview in the background (the render worker);
    the approver's page plays it and lists where the station's reading differs from the text, flagging
    what it can only spell.  Approving it then finds the same audio ready."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "hop-to.md"
    script.write_text(
        "---\ntitle: Họp tổ dân phố\n---\nTDP 3 họp lúc 19h30 tối 5-9. Hỏi BQLXYZ.\n",
        "utf-8",
    )
    desktop = {"width": 1280, "height": 800}
    with serve(create_app(station)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            oper = login(browser, base, "hoa")
            oper.goto("/ban-tin")
            oper.set_input_files("#file", str(script))
            oper.click("text=Tải lên")
            assert oper.locator(".msg.ok").count() == 1, oper.inner_text("main")[:500]
            assert "đang chờ duyệt" in oper.inner_text(".msg.ok")
            assert "BQLXYZ" in oper.inner_text("#canh-bao-tai-len")
            sha = oper.locator(".card[data-sha]", has_text="Họp tổ dân phố").get_attribute("data-sha")
            station.wake_library()

            context = browser.new_context(viewport=desktop, base_url=base)
            appr = context.new_page()
            appr.goto("/dang-nhap")
            appr.fill("#name", "duyet")
            appr.fill("#password", PASSWORDS["duyet"])
            appr.click("button[type=submit]")
            card = appr.locator(f'.card[data-sha="{sha}"]')
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                appr.goto("/ban-tin")
                if card.locator("audio").count():
                    break
                station.wake_library()
                time.sleep(0.5)
            preview = card.locator("audio")
            assert preview.count() == 1, card.inner_text()
            duration = appr.evaluate(
                """src => new Promise(done => { const a = new Audio(src);
                   a.onloadedmetadata = () => done(a.duration); a.onerror = () => done(-1); })""",
                preview.get_attribute("src"),
            )
            assert duration == pytest.approx(12.0, abs=0.05)  # the bulletin exactly as it will air
            card.locator("details.script-text summary").click()  # the text as written, to read it
            written = card.locator("details.script-text").inner_text()
            assert "TDP 3 họp lúc 19h30 tối 5-9. Hỏi BQLXYZ." in written
            readings = card.locator("details.readings")
            assert readings.get_attribute("open") is not None  # something is spelled: shown open
            text = readings.inner_text()
            assert "19h30 → mười chín giờ ba mươi" in text and "TDP → tổ dân phố" in text
            assert "BQLXYZ" in text and "đánh vần" in text
            # "tối 5-9" is a date only because of "tối": the page says so, for the approver to listen.
            assert "5-9 → năm tháng chín" in text and "cần nghe lại" in text and "tối" in text
            assert "lời chiếm" in card.inner_text()
            shot(appr, "duyet-nghe-thu-may-tinh")
            card.locator("button:has-text('Duyệt')").click()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                ready = [b for b in station.library.ready() if b.id == sha]
                if ready:
                    break
                time.sleep(0.1)
            assert ready and ready[0].summary.get("cached"), "approving re-rendered what was previewed"
        finally:
            browser.close()
