"""A new ward's first day, from the first start to a logged-in phone: the real daemon (`playout run`), its
log, and Chromium at 390×844.  No account exists yet: the login page says what to do, the one-time link
from the log creates the first admin (written into schedule.yaml), and then the link is spent."""

from __future__ import annotations

import os
import re

import yaml

from tests.playout.test_web import ARTIFACTS, CHROMIUM, PHONE, shot
from tests.station import DaemonRun


def test_the_first_admin_comes_from_the_link_in_the_log(playout_cmd, tmp_path):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    run = DaemonRun(tmp_path, playout_cmd, {"windows": []})
    run.config["auth"] = {}  # a fresh install: no accounts, no tokens
    with run:
        run.wait_log("thiet-lap?ma=", 60)
        link = re.search(r"http://\S+/thiet-lap\?ma=(\S+)", run.log())
        assert link is not None, run.log()[-2000:]
        code = link.group(1)
        base = f"http://127.0.0.1:{run.port}"
        os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_context(viewport=PHONE, base_url=base).new_page()
                page.goto("/")
                assert page.url.endswith("/dang-nhap")
                assert "Trạm chưa có tài khoản nào" in page.inner_text("#chua-co-tai-khoan")
                assert "playout account add" in page.inner_text("#chua-co-tai-khoan")
                shot(page, "lan-dau-dang-nhap")
                page.goto("/thiet-lap?ma=doan-bua")  # a guessed link does nothing
                assert "không đúng hoặc không còn hiệu lực" in page.content()
                page.goto(f"/thiet-lap?ma={code}")
                page.fill("#name", "lan")
                page.fill("#password", "mat-khau-cua-lan")
                page.fill("#password2", "mat-khau-khac-han")
                page.click("button[type=submit]")
                assert "không khớp" in page.inner_text(".msg.err")
                page.fill("#password", "mat-khau-cua-lan")
                page.fill("#password2", "mat-khau-cua-lan")
                shot(page, "lan-dau-thiet-lap")
                page.click("button[type=submit]")
                page.wait_for_url(base + "/dang-nhap?xong=tai-khoan")
                assert "Đã tạo tài khoản quản trị" in page.inner_text(".msg.ok")
                assert page.locator("#chua-co-tai-khoan").count() == 0
                page.fill("#name", "lan")
                page.fill("#password", "mat-khau-cua-lan")
                page.click("button[type=submit]")
                page.wait_for_url(base + "/")
                assert "Tổng quan" in page.inner_text("h1") and "Đăng xuất (lan)" in page.content()
                shot(page, "lan-dau-tong-quan")
                # The link is spent.
                page.goto(f"/thiet-lap?ma={code}")
                assert "không còn hiệu lực" in page.content()
            finally:
                browser.close()
    saved = yaml.safe_load(run.config_path.read_text("utf-8"))
    (account,) = saved["auth"]["accounts"]
    assert account["name"] == "lan" and account["roles"] == ["admin"]
    assert account["password_hash"].startswith("scrypt$") and "mat-khau" not in run.config_path.read_text()
