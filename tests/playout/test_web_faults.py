"""The technician at 06:05, on a phone, in a real browser: the overview says why the station is not
airing (an untrusted clock, a rebuilt database) and the buttons there put it right.  A real Station
(real SQLite, instant renders from tests.doubles, mock relay pins, a `timedatectl` that says NTP is not
synchronised) served by the station's own uvicorn server, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from playout.api import create_app
from playout.auth import hash_password
from playout.config import parse_config
from tests.doubles import InstantRendering
from tests.playout.live import serve
from tests.playout.test_web import ARTIFACTS, CHROMIUM, PHONE
from tests.station import TZ, start_station, write_script

PASSWORD = "mat-khau-cua-lan"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def station(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "timedatectl").write_text("#!/bin/sh\necho no\n")
    (bin_dir / "timedatectl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("PLAYOUT_CLOCK_SYNC_FILE", str(tmp_path / "no-marker"))
    monkeypatch.setenv("PLAYOUT_RTC_HCTOSYS", str(tmp_path / "no-rtc"))
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "playout.db").write_bytes(b"\x00garbage after a power cut\x00" * 500)
    write_script(tmp_path / "bulletins" / "approved", "a.md", "Bà con chú ý. Xin cảm ơn.", title="Tin")
    config = parse_config(
        {
            "paths": {"data": str(tmp_path / "var"), "bulletins": str(tmp_path / "bulletins")},
            "tts": {"engines": ["espeak"]},
            "windows": [],
            "bulletin": {"length_s": 11, "lead_in": "", "outro": ""},
            "auth": {
                "accounts": [
                    {"name": "lan", "password_hash": hash_password(PASSWORD), "roles": ["technician"]}
                ]
            },
        },
        base=tmp_path,
    )
    st = start_station(config, renderer=InstantRendering())
    yield st
    st.close()


def test_the_technician_confirms_the_clock_and_clears_the_alarm_from_a_phone(station):
    assert CHROMIUM.exists(), "Chromium is missing: `make setup` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert station.health()["clock"]["state"] == "unsynchronized"
    with serve(create_app(station)) as port, sync_playwright() as pw:
        base = f"http://127.0.0.1:{port}"
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_context(viewport=PHONE, base_url=base, locale="vi-VN").new_page()
            page.goto("/")
            page.fill("#name", "lan")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(base + "/")
            # Why the station is not airing, in words, at the top of the page.
            problems = page.inner_text("#su-co")
            assert "Đồng hồ chưa đồng bộ" in problems and "hỏng" in problems
            assert "hỏng" in page.inner_text("#bo-nho")
            # A long path in the alarm wraps inside its card on a phone (no sideways scrolling).
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width
            page.screenshot(path=str(ARTIFACTS / "su-co-dong-ho.png"), full_page=True)

            page.click("#dong-ho button:has-text('Xác nhận giờ hiện tại là đúng')")
            page.wait_for_url(base + "/?xong=dong-ho")
            assert "Đã xác nhận giờ của trạm" in page.content()
            assert page.locator("#dong-ho").count() == 0

            page.click("#bo-nho button:has-text('Đã xử lý cảnh báo này')")
            page.wait_for_url(base + "/?xong=canh-bao")
            assert page.locator("#bo-nho").count() == 0 and page.locator("#su-co").count() == 0
            page.screenshot(path=str(ARTIFACTS / "su-co-da-xu-ly.png"), full_page=True)
        finally:
            browser.close()
    clock = station.health()["clock"]
    assert clock["state"] == "confirmed" and clock["confirmed_by"] == "lan"
    assert dt.datetime.fromisoformat(clock["confirmed_at"]).tzinfo is not None
    assert station.health()["status"] == "ok"
    trail = {(a["action"], a["who"]) for a in station.approvals.audit(10)}
    assert {("confirm_clock", "lan"), ("acknowledge_alarm", "lan")} <= trail
    assert TZ  # the station's offset is the one the tests use
