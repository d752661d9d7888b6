"""As-run rows from a station's log to the centre: each arrives exactly once, whatever the link does.

Real parts: the station's AsRunLog (SQLite), the centre's store (SQLite) behind its FastAPI app served by
uvicorn on 127.0.0.1, and the outbox posting over HTTP.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient

from playout.accounts import Account, ApiToken, AuthSettings, hash_password, hash_token
from playout.asrun import AsRunLog, Slot
from playout.auth import Authenticator
from playout.fleet.centre_app import CentreState, create_centre_app
from playout.fleet.centre_store import CentreStore
from playout.fleet.outbox import AsRunOutbox
from tests.playout.test_web import serve

TZ = dt.timezone(dt.timedelta(hours=7))
TOKENS = {"dong-hai": "token-cua-dong-hai", "vinh-hai": "token-cua-vinh-hai"}
#: The report and the fleet are for the desk's technicians, not for whoever finds the centre's address.
READER = {"Authorization": "Bearer token-giam-sat-cua-tinh-0123456789"}
TECHNICIAN = ("ky-thuat", "mat-khau-ky-thuat")


def played(log: AsRunLog, day: int, window: str = "sáng", status: str = "played") -> int:
    slot = Slot(window, dt.datetime(2026, 12, day, 6, 0, tzinfo=TZ))
    if status in ("missed", "skipped"):
        assert log.record(slot, status, error="trạm tắt")
        return 0
    row = log.start(slot)
    log.finish(row, status)
    return row


@pytest.fixture
def centre(tmp_path):
    store = CentreStore(tmp_path / "centre" / "centre.db")
    auth = AuthSettings(
        accounts=[
            Account(name=TECHNICIAN[0], password_hash=hash_password(TECHNICIAN[1]), roles=["technician"])
        ],
        tokens=[
            ApiToken(
                name="giam-sat", token_hash=hash_token(READER["Authorization"][7:]), roles=["technician"]
            )
        ],
    )
    state = CentreState(
        tmp_path / "centre" / "repo",
        store,
        {k: hash_token(v) for k, v in TOKENS.items()},
        auth=Authenticator(auth, b"k" * 32),
    )
    yield state
    store.close()


def outbox_for(tmp_path, log, url, station="dong-hai"):
    return AsRunOutbox(log, tmp_path / station / "fleet", station, f"{url}/api/fleet/asrun", TOKENS[station])


def test_rows_arrive_once_in_order_and_wait_through_an_outage(tmp_path, centre):
    log = AsRunLog(tmp_path / "dong-hai" / "asrun.db", TZ)
    for day in (1, 2):
        played(log, day)
    played(log, 3, status="missed")
    with serve(create_centre_app(centre)) as url:
        box = outbox_for(tmp_path, log, url)
        assert box.send_pending() == 3 and box.acked == 3 and box.state["ok"]
        assert box.send_pending() == 0  # nothing new: nothing sent again
    # The centre is down for two windows: the rows wait in the station's own log.
    played(log, 4)
    played(log, 4, "chiều", status="failed")
    assert box.send_pending() == 0 and box.state["ok"] is False and box.state["error"]
    assert box.backlog() == 2
    # A restarted station (a new outbox) remembers what was acknowledged.
    with serve(create_centre_app(centre)) as url:
        again = outbox_for(tmp_path, log, url)
        assert again.acked == 3
        assert again.send_pending() == 2
    rows = centre.store.rows("dong-hai")
    assert [r["row_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["status"] for r in rows] == ["played", "played", "missed", "played", "failed"]


def test_a_lost_answer_or_a_lost_state_file_resends_but_counts_once(tmp_path, centre):
    log = AsRunLog(tmp_path / "dong-hai" / "asrun.db", TZ)
    for day in range(1, 6):
        played(log, day)
    # The centre stored rows 1-3 but its answer never reached the station.
    centre.store.add_rows("dong-hai", log.settled_after(0)[:3])
    with serve(create_centre_app(centre)) as url:
        box = outbox_for(tmp_path, log, url)
        assert box.send_pending() == 5  # all five sent (the station could not know) ...
        box.state_path.write_text("{broken")  # ... and the state file damaged by a power cut
        assert outbox_for(tmp_path, log, url).send_pending() == 5  # sent again from the start
    assert [r["row_id"] for r in centre.store.rows("dong-hai")] == [1, 2, 3, 4, 5]  # each once


def test_a_row_still_on_air_waits_for_its_outcome(tmp_path, centre):
    log = AsRunLog(tmp_path / "dong-hai" / "asrun.db", TZ)
    played(log, 1)
    on_air = log.start(Slot("sáng", dt.datetime(2026, 12, 2, 6, 0, tzinfo=TZ)))
    played(log, 3)
    with serve(create_centre_app(centre)) as url:
        box = outbox_for(tmp_path, log, url)
        assert box.send_pending() == 1 and box.acked == 1
        log.finish(on_air, "interrupted", error="mất điện")
        assert box.send_pending() == 2
    assert [r["status"] for r in centre.store.rows("dong-hai")] == ["played", "interrupted", "played"]


def test_the_centre_takes_rows_only_from_the_station_they_belong_to(tmp_path, centre):
    client = TestClient(create_centre_app(centre))
    row = {"id": 1, "scheduled_at": "2026-12-01T06:00:00+07:00", "status": "played"}
    assert client.post("/api/fleet/asrun", json={"station": "dong-hai", "rows": [row]}).status_code == 401
    bad = {"Authorization": "Bearer sai"}
    assert (
        client.post("/api/fleet/asrun", json={"station": "dong-hai", "rows": [row]}, headers=bad).status_code
        == 401
    )
    vinh = {"Authorization": f"Bearer {TOKENS['vinh-hai']}"}
    posed = client.post("/api/fleet/asrun", json={"station": "dong-hai", "rows": [row]}, headers=vinh)
    assert posed.status_code == 422 and posed.json()["detail"]["code"] == "ASRUN_INVALID"
    huge = {"station": "vinh-hai", "rows": [{**row, "error": "x" * 9000}]}
    assert client.post("/api/fleet/asrun", json=huge, headers=vinh).status_code == 422
    assert client.post("/api/fleet/asrun", content=b"x" * (3 * 1024 * 1024), headers=vinh).status_code == 413
    assert centre.store.rows() == []


def test_the_province_report_counts_plays_per_ward_against_the_target(tmp_path, centre):
    for station, plays in (("dong-hai", 12), ("vinh-hai", 7)):
        rows = [
            {
                "id": i + 1,
                "scheduled_at": f"2026-12-0{1 + i // 2}T{6 + 11 * (i % 2):02d}:00:00+07:00",
                "status": "played",
            }
            for i in range(plays)
        ]
        rows.append({"id": plays + 1, "scheduled_at": "2026-12-07T06:00:00+07:00", "status": "missed"})
        centre.store.add_rows(station, rows)
    client = TestClient(create_centre_app(centre))
    week = {"since": "2026-12-01", "until": "2026-12-08"}
    assert client.get("/api/fleet/report", params=week).status_code == 401
    assert client.get("/api/fleet/stations").status_code == 401
    client.headers.update(READER)
    got = client.get("/api/fleet/report", params=week).json()
    by = {s["station"]: s for s in got["stations"]}
    assert by["dong-hai"]["played"] == 12 and by["dong-hai"]["target_met"] is True
    assert by["vinh-hai"]["played"] == 7 and by["vinh-hai"]["target_met"] is False
    assert by["vinh-hai"]["missed"] == 1 and by["vinh-hai"]["target"] == 12
    csv = client.get(
        "/api/fleet/report", params={"since": "2026-12-01", "until": "2026-12-08", "format": "csv"}
    )
    assert csv.text.splitlines()[0].startswith("station,played,target") and "vinh-hai,7,12,False" in csv.text
    listing = client.get("/api/fleet/stations").json()["stations"]
    assert {s["id"] for s in listing} == {"dong-hai", "vinh-hai"}
    assert listing[0]["last_play"]["status"] in ("played", "missed")


def test_the_fleet_page_on_a_phone_shows_each_station_and_the_report(tmp_path, centre):
    from playwright.sync_api import sync_playwright

    from tests.playout.test_web import ARTIFACTS, CHROMIUM, PHONE, shot

    now = dt.datetime.now(TZ).replace(microsecond=0)
    centre.store.add_rows(
        "dong-hai", [{"id": 1, "scheduled_at": now.isoformat(), "status": "played", "title": "Bão số 3"}]
    )
    centre.store.add_rows("vinh-hai", [{"id": 1, "scheduled_at": now.isoformat(), "status": "missed"}])
    heard = time.time()
    centre.fleet_status = lambda: {
        "dong-hai": {
            "online": True,
            "relay": "on",
            "version": "0.1.0",
            "fleet": "online",
            "received_at": heard,
        },
        "vinh-hai": {
            "online": False,
            "fleet": "FLEET_METADATA_EXPIRED",
            "received_at": heard - 600,
            "clock": "unsynchronized",
            "disk_free_bytes": 400_000_000,
        },
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve(create_centre_app(centre)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport=PHONE, locale="vi-VN").new_page()
            page.goto(url + "/")
            assert page.url.endswith("/dang-nhap")  # the fleet is not for anonymous visitors
            page.fill("#name", TECHNICIAN[0])
            page.fill("#password", TECHNICIAN[1])
            page.click("button[type=submit]")
            page.wait_for_url(url + "/")
            cards = page.locator(".card[data-station]")
            assert cards.count() == 2
            assert "Đang phát" in page.inner_text('[data-station="dong-hai"]')
            vinh = page.inner_text('[data-station="vinh-hai"]')
            assert "Mất kết nối" in vinh and "FLEET_METADATA_EXPIRED" in vinh
            assert "Bão số 3" in page.inner_text('[data-station="dong-hai"]')
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            table = page.inner_text("table")
            assert "dong-hai" in table and "vinh-hai" in table and "Chưa đạt" in table
            shot(page, "trung-tam-cac-tram")
            page.click(".chips >> text=Mất kết nối")
            assert page.locator(".card[data-station]").count() == 1
            assert page.locator('[data-station="vinh-hai"]').count() == 1
            # What a technician looks for first: wards with any fault (offline, missed slots, clock, disk).
            page.click(".chips >> text=Có sự cố")
            assert page.locator(".card[data-station]").count() == 1
            card = page.inner_text('[data-station="vinh-hai"]')
            assert "chưa đồng bộ" in card and "0.4 GB trống" in card
            assert "Lỡ/lỗi tuần này\n1" in card or "Lỡ/lỗi tuần này\t1" in card
        finally:
            browser.close()


def test_a_week_offline_goes_up_in_full_batches(tmp_path, centre):
    """A station back from a week offline sends its backlog 200 rows a post: the centre's body cap must
    take a full batch (the default 16 KB cap refused it with 413, and the outbox would have retried the
    same batch for ever)."""
    from playout.fleet.outbox import BATCH_ROWS

    log = AsRunLog(tmp_path / "dong-hai" / "asrun.db", TZ)
    start = dt.datetime(2026, 12, 1, 6, 0, tzinfo=TZ)
    for i in range(BATCH_ROWS + 50):
        row = log.start(Slot("sáng", start + dt.timedelta(days=i)))  # one slot key a day
        log.finish(row, "played")
    with serve(create_centre_app(centre)) as url:
        box = outbox_for(tmp_path, log, url)
        assert box.send_pending() == BATCH_ROWS + 50, box.state
    assert len(centre.store.rows("dong-hai")) == BATCH_ROWS + 50


def test_a_centre_behind_a_smaller_body_cap_still_gets_every_row(tmp_path):
    """An nginx in front of the centre with a small client_max_body_size answers 413 to a full batch:
    the outbox sends smaller posts instead of the same refused batch for ever."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: dict[int, dict] = {}
    cap = 8 * 1024

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers["content-length"])
            if length > cap:
                self.send_response(413)
                self.end_headers()
                return
            rows = json.loads(self.rfile.read(length))["rows"]
            got.update({r["id"]: r for r in rows})
            body = json.dumps({"acked": rows[-1]["id"]}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        log = AsRunLog(tmp_path / "dong-hai" / "asrun.db", TZ)
        start = dt.datetime(2026, 12, 1, 6, 0, tzinfo=TZ)
        for i in range(120):
            log.finish(log.start(Slot("sáng", start + dt.timedelta(days=i))), "played")
        box = AsRunOutbox(log, tmp_path / "fleet", "dong-hai", f"http://127.0.0.1:{server.server_port}/", "t")
        assert box.send_pending() == 120, box.state
        assert sorted(got) == list(range(1, 121)) and box.acked == 120
    finally:
        server.shutdown()
        server.server_close()
