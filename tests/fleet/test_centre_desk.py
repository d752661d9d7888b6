"""The centre's web desk: upload and target, approve (signing with the approver's own key), reject,
withdraw, preview, the audit and the department report, with the station's roles and session rules.

Real parts: a centre folder (python-tuf repository, keys, SQLite), its FastAPI app wired as
``playout centre serve`` wires it (``desk_state``), served by uvicorn where a station's real TUF client
(ngclient) must see the result over HTTP; espeak-ng for the spoken preview; Chromium for the click-through.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
import wave

import pytest
from fastapi.testclient import TestClient

from playout.fleet.centre import Centre, desk_state
from playout.fleet.centre_app import create_centre_app
from playout.fleet.centre_store import LOCAL_DEPARTMENT
from playout.fleet.tuf_client import FleetClient
from tests.playout.test_web import serve

TZ = dt.timezone(dt.timedelta(hours=7))
WARDS = ("an-hai", "dong-hai", "vinh-hai")
PEOPLE = {
    "bien-tap": ("mat-khau-bien-tap", ["operator"]),
    "duyet": ("mat-khau-nguoi-duyet", ["approver"]),
    "duyet-moi": ("mat-khau-duyet-moi", ["approver"]),  # an approver login with no signing key yet
    "ky-thuat": ("mat-khau-ky-thuat", ["technician"]),
}
SCRIPT = (
    "Kính thưa bà con! Ủy ban nhân dân phường thông báo: sáng 5-9 có mưa to kèm dông. "
    "Bà con chủ động gia cố nhà cửa, liên hệ đường dây nóng 0912345678 khi cần hỗ trợ."
)


@pytest.fixture
def centre(tmp_path):
    c = Centre(tmp_path / "centre")
    c.init()
    c.add_approver("duyet")
    for ward in WARDS:
        c.add_station(ward, centre_url="http://127.0.0.1:1/")
    for name, (password, roles) in PEOPLE.items():
        c.add_account(name, password, roles)
    yield c
    c.close()


@pytest.fixture
def app(centre):
    state = desk_state(centre, previews=True)
    state.desk._ring = False  # no broker in these tests
    return create_centre_app(state)


def login(client: TestClient, name: str) -> str:
    """Log in through the form; the CSRF token the pages carry."""
    answer = client.post(
        "/dang-nhap", data={"name": name, "password": PEOPLE[name][0]}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)[1]


def upload(client: TestClient, csrf: str, **fields) -> TestClient:
    data = {
        "csrf_token": csrf,
        "title": "Mưa to",
        "text": SCRIPT,
        "level": "uu_tien",
        "wards": ["dong-hai", "vinh-hai"],
    }
    data.update(fields)
    return client.post("/ban-tin/tai-len", data=data, follow_redirects=False)


def station_sees(centre: Centre, url: str, ward: str, tmp_path) -> dict[str, dict]:
    """What a real station client, installed with the centre's files for ``ward``, verifies now."""
    folder = centre.folder / "stations" / ward
    client = FleetClient(url + "/tuf", folder / "fleet-root.json", tmp_path / f"station-{ward}", ward)
    result = client.refresh()
    assert not result.alarms, result.alarms
    return {b.custom["title"]: dict(b.custom, data=b.data) for b in result.bulletins}


def test_anonymous_and_wrong_roles_are_refused_before_anything_is_read(app, centre):
    client = TestClient(app)
    assert client.get("/", follow_redirects=False).headers["location"] == "/dang-nhap"
    assert client.get("/ban-tin", follow_redirects=False).status_code == 303
    assert client.get("/api/fleet/stations").status_code == 401
    assert client.get("/api/centre/audit").status_code == 401
    # An anonymous upload is turned away by its headers: a 50 MB body is never read.
    big = client.post(
        "/ban-tin/tai-len",
        content=b"x" * 100,
        headers={"content-type": "multipart/form-data; boundary=x", "content-length": str(50 * 1024 * 1024)},
        follow_redirects=False,
    )
    assert big.status_code == 303 and big.headers["location"] == "/dang-nhap"
    # A technician watches the fleet but may not upload, and an operator may not approve.
    tech = TestClient(app)
    csrf = login(tech, "ky-thuat")
    assert tech.get("/").status_code == 200
    assert upload(tech, csrf).status_code == 403
    operator = TestClient(app)
    csrf = login(operator, "bien-tap")
    assert upload(operator, csrf).status_code == 303
    (row,) = centre.store().bulletins()
    refused = operator.post(f"/ban-tin/{row['id']}/duyet", data={"csrf_token": csrf, "sha256": row["sha256"]})
    assert refused.status_code == 403 and "duyệt bản tin" in refused.text
    # A form without the session's CSRF token is refused, whoever sends it.
    assert upload(operator, "khong-dung").status_code == 403
    assert centre.repository().bulletins() == {}


def test_a_bulletin_goes_from_upload_to_the_targeted_stations_signed_by_its_approver(app, centre, tmp_path):
    operator, approver = TestClient(app), TestClient(app)
    answer = upload(operator, login(operator, "bien-tap"), department="Phòng Văn hóa")
    assert answer.status_code == 303
    (row,) = centre.store().bulletins("pending")
    assert row["wards"] == ["dong-hai", "vinh-hai"] and row["level"] == "uu_tien"
    assert row["sha256"] == hashlib.sha256(row["body"].encode()).hexdigest()
    csrf = login(approver, "duyet")
    page = approver.get(f"/ban-tin/{row['id']}").text
    assert row["sha256"] in page and "cần nghe lại" in page and "năm tháng chín" in page
    assert "vừa bản tin 3 phút" in page
    done = approver.post(
        f"/ban-tin/{row['id']}/duyet",
        data={"csrf_token": csrf, "sha256": row["sha256"]},
        follow_redirects=False,
    )
    assert done.status_code == 303
    row = centre.store().bulletin(row["id"])
    assert row["status"] == "published" and row["decided_by"] == "duyet"
    assert row["target"] == f"bulletins/duyet/{row['sha256']}.txt" or row["target"].startswith(
        "bulletins/duyet/"
    )
    with serve(app) as url:
        for ward in WARDS:
            seen = station_sees(centre, url, ward, tmp_path)
            if ward == "an-hai":
                assert seen == {}  # not targeted: its client does not even see it
                continue
            got = seen["Mưa to"]
            # The approved bytes, signed by the approver's own delegated key, with the desk's targeting.
            assert hashlib.sha256(got["data"]).hexdigest() == row["sha256"]
            assert got["approver"] == "duyet" and got["level"] == "uu_tien"
            assert got["department"] == "Phòng Văn hóa" and got["wards"] == ["dong-hai", "vinh-hai"]
        # Approving twice publishes once.
        again = approver.post(
            f"/ban-tin/{row['id']}/duyet", data={"csrf_token": csrf, "sha256": row["sha256"]}
        )
        assert again.status_code == 409
        # Withdrawn from the desk (an operator may, as at a station): gone from every station.
        csrf_op = csrf_of(operator)
        assert operator.post(f"/ban-tin/{row['id']}/rut", data={"csrf_token": csrf_op}).status_code == 422
        gone = operator.post(
            f"/ban-tin/{row['id']}/rut",
            data={"csrf_token": csrf_op, "xac_nhan": "co"},
            follow_redirects=False,
        )
        assert gone.status_code == 303
        assert station_sees(centre, url, "dong-hai", tmp_path) == {}
    assert centre.store().bulletin(row["id"])["status"] == "withdrawn"
    audit = [(a["who"], a["action"]) for a in reversed(centre.store().audit_rows())]
    assert (
        ("bien-tap", "upload") in audit
        and ("duyet", "approve") in audit
        and ("bien-tap", "withdraw") in audit
    )
    assert audit.index(("bien-tap", "upload")) < audit.index(("duyet", "approve"))
    tech = TestClient(app)
    login(tech, "ky-thuat")
    rows = tech.get("/api/centre/audit").json()["audit"]
    withdrawn = next(r for r in rows if r["action"] == "withdraw")
    assert withdrawn["who"] == "bien-tap" and withdrawn["subject"] == f"#{row['id']}" and withdrawn["address"]
    assert "duyệt và ký" in tech.get("/nhat-ky").text


def test_approval_is_pinned_to_the_hash_the_approver_saw(app, centre):
    operator, approver = TestClient(app), TestClient(app)
    upload(operator, login(operator, "bien-tap"))
    (row,) = centre.store().bulletins("pending")
    csrf = login(approver, "duyet")
    wrong = approver.post(f"/ban-tin/{row['id']}/duyet", data={"csrf_token": csrf, "sha256": "0" * 64})
    assert wrong.status_code == 409 and "duyệt lại" in wrong.text
    # The stored script changed behind the desk's back (a database edited by hand): the hash shown no
    # longer matches the bytes, and nothing is signed.
    db = sqlite3.connect(centre.folder / "centre.db")
    db.execute("UPDATE bulletins SET body = ? WHERE id = ?", (SCRIPT + " Phát thêm tin giả.", row["id"]))
    db.commit()
    db.close()
    tampered = approver.post(
        f"/ban-tin/{row['id']}/duyet", data={"csrf_token": csrf, "sha256": row["sha256"]}
    )
    assert tampered.status_code == 409
    assert centre.repository().bulletins() == {}
    assert centre.store().bulletin(row["id"])["status"] == "pending"
    # An approver login whose name holds no delegated key cannot sign.
    other = TestClient(app)
    csrf = login(other, "duyet-moi")
    db = sqlite3.connect(centre.folder / "centre.db")
    db.execute("UPDATE bulletins SET body = ? WHERE id = ?", (row["body"], row["id"]))
    db.commit()
    db.close()
    keyless = other.post(f"/ban-tin/{row['id']}/duyet", data={"csrf_token": csrf, "sha256": row["sha256"]})
    assert keyless.status_code == 403 and "playout centre approver" in keyless.text
    assert centre.repository().bulletins() == {}


def test_targeting_problems_are_reported_together_and_nothing_is_kept(app, centre):
    operator = TestClient(app)
    csrf = login(operator, "bien-tap")
    answer = upload(
        operator,
        csrf,
        wards=["dong-hai", "khong-co"],
        level="khan",
        air_from="2026-12-10T06:00",
        air_until="2026-12-09T06:00",
    )
    assert answer.status_code == 422
    text = answer.text
    assert "không có trạm khong-co" in text and "mức độ" in text and "phải sau thời gian bắt đầu" in text
    assert SCRIPT[:40] in text  # the typed script is kept in the form, not lost
    assert upload(operator, csrf, wards=[]).status_code == 422
    assert centre.store().bulletins() == []
    # "All stations" targets every registered ward; an emergency defaults to hours, not a week.
    assert upload(operator, csrf, wards=[], all_wards="1", level="khan_cap").status_code == 303
    (row,) = centre.store().bulletins()
    assert row["wards"] == list(WARDS)
    hours = (dt.datetime.fromisoformat(row["air_until"]) - dt.datetime.fromisoformat(row["air_from"])) / 3600
    assert hours.total_seconds() == 6


def test_a_word_file_with_front_matter_is_read_as_the_station_reads_it(app, centre):
    docx = pytest.importorskip("docx")
    import io

    doc = docx.Document()
    for line in ("title: Tiêm chủng mở rộng", "department: Trạm Y tế phường", SCRIPT):
        doc.add_paragraph(line)
    buf = io.BytesIO()
    doc.save(buf)
    operator = TestClient(app)
    csrf = login(operator, "bien-tap")
    answer = operator.post(
        "/ban-tin/tai-len",
        data={"csrf_token": csrf, "wards": ["an-hai"], "level": "thuong"},
        files={"file": ("tiem-chung.docx", buf.getvalue())},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    (row,) = centre.store().bulletins()
    assert row["title"] == "Tiêm chủng mở rộng" and row["department"] == "Trạm Y tế phường"
    assert row["body"].startswith("Kính thưa bà con!") and "title:" not in row["body"]


def test_rejection_needs_a_reason_and_is_final(app, centre):
    operator, approver = TestClient(app), TestClient(app)
    upload(operator, login(operator, "bien-tap"))
    (row,) = centre.store().bulletins()
    csrf = login(approver, "duyet")
    assert (
        approver.post(f"/ban-tin/{row['id']}/tu-choi", data={"csrf_token": csrf, "reason": " "}).status_code
        == 422
    )
    done = approver.post(
        f"/ban-tin/{row['id']}/tu-choi",
        data={"csrf_token": csrf, "reason": "Sai ngày"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert centre.store().bulletin(row["id"])["reason"] == "Sai ngày"
    late = approver.post(f"/ban-tin/{row['id']}/duyet", data={"csrf_token": csrf, "sha256": row["sha256"]})
    assert late.status_code == 409 and centre.repository().bulletins() == {}


def test_a_crash_mid_approval_is_put_right_at_the_next_start(centre):
    desk = centre.desk()
    desk._ring = False
    row = desk.upload(SCRIPT.encode(), "tin.txt", "bien-tap", {"wards": ["an-hai"]})
    signed = desk.upload(b"Tin thu hai da ky.", "tin2.txt", "bien-tap", {"wards": ["an-hai"]})
    # One claimed and signed but not recorded; one claimed and not signed: the process died in between.
    assert centre.store().decide(row["id"], "pending", "approving", "duyet")
    assert centre.store().decide(signed["id"], "pending", "approving", "duyet")
    meta = {k: signed[k] for k in ("title", "wards", "level", "air_from", "air_until")}
    target = centre.publish("duyet", signed["body"].encode(), meta, ring=False, via=None)
    assert desk.recover() == 2
    assert centre.store().bulletin(row["id"])["status"] == "pending"
    after = centre.store().bulletin(signed["id"])
    assert after["status"] == "published" and after["target"] == target


def test_the_report_names_the_department_of_each_play(app, centre, tmp_path):
    desk = centre.desk()
    desk._ring = False
    row = desk.upload(
        SCRIPT.encode(), "tin.txt", "bien-tap", {"wards": ["dong-hai"], "department": "Công an phường"}
    )
    row = desk.approve(row["id"], row["sha256"], "duyet")
    # What the station writes for it, and so the bulletin_id of its plays: the same hash the centre recorded.
    from playout.fleet.sync import script_text

    custom = centre.repository().bulletins()[row["target"]]
    station_file = script_text(row["body"].encode(), custom, centre.tz).encode()
    assert hashlib.sha256(station_file).hexdigest() == row["station_sha"]
    now = dt.datetime.now(TZ).replace(microsecond=0)
    centre.store().add_rows(
        "dong-hai",
        [
            {"id": 1, "scheduled_at": now.isoformat(), "status": "played", "bulletin_id": row["station_sha"]},
            {"id": 2, "scheduled_at": now.isoformat(), "status": "played", "bulletin_id": row["station_sha"]},
            {"id": 3, "scheduled_at": now.isoformat(), "status": "played", "bulletin_id": "ab" * 32},
            {"id": 4, "scheduled_at": now.isoformat(), "status": "missed", "bulletin_id": row["station_sha"]},
        ],
    )
    tech = TestClient(app)
    login(tech, "ky-thuat")
    got = tech.get("/api/fleet/report").json()["departments"]
    assert {d["department"]: d["plays"] for d in got} == {"Công an phường": 2, LOCAL_DEPARTMENT: 1}
    csv = tech.get("/api/fleet/report", params={"format": "csv", "table": "departments"}).text
    assert "Công an phường,2,1,1" in csv
    assert "Công an phường" in tech.get("/").text


def test_the_approver_hears_the_bulletin_as_the_offline_voice_reads_it(app, centre):
    operator, approver = TestClient(app), TestClient(app)
    upload(operator, login(operator, "bien-tap"))
    (row,) = centre.store().bulletins()
    login(approver, "duyet")
    assert "nghe-thu.wav" in approver.get(f"/ban-tin/{row['id']}").text
    answer = approver.get(f"/ban-tin/{row['id']}/nghe-thu.wav")
    assert answer.status_code == 200 and answer.headers["content-type"] == "audio/wav"
    path = centre.folder / "previews" / f"{row['sha256']}.wav"
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds == pytest.approx(180.0, abs=0.01)  # the station's exact 3:00
    tech = TestClient(app)
    login(tech, "ky-thuat")
    assert tech.get(f"/ban-tin/{row['id']}/nghe-thu.wav").status_code == 403


def test_a_desk_day_on_a_phone_upload_approve_withdraw_in_chromium(app, centre, tmp_path):
    """The province desk the way its people use it: an operator on a phone types and targets a
    bulletin, the approver reviews the readings and signs it, a station's client then verifies it."""
    from playwright.sync_api import sync_playwright

    from tests.playout.test_web import ARTIFACTS, CHROMIUM, PHONE, shot

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:

            def person(name):
                page = browser.new_context(viewport=PHONE, locale="vi-VN").new_page()
                page.goto(url + "/ban-tin")
                assert page.url.endswith("/dang-nhap")
                page.fill("#name", name)
                page.fill("#password", PEOPLE[name][0])
                page.click("button[type=submit]")
                page.wait_for_url(url + "/")
                return page

            operator = person("bien-tap")
            operator.click("nav >> text=Bản tin")
            operator.click("#soan-tin summary")
            operator.fill("#title", "Phòng chống bão số 3")
            operator.fill("#text", SCRIPT)
            operator.check('input[name=level][value="uu_tien"]')
            operator.check('input[name=wards][value="dong-hai"]')
            operator.fill("#department", "Ban Chỉ huy phòng chống thiên tai")
            assert operator.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            shot(operator, "trung-tam-soan-tin")
            operator.click("text=Gửi chờ duyệt")
            operator.wait_for_url(re.compile(r".*/ban-tin/\d+\?xong=tai-len"))
            assert "chờ duyệt" in operator.inner_text("#trang-thai")
            assert operator.locator("text=Duyệt, ký và gửi").count() == 0  # not an approver's page

            approver = person("duyet")
            approver.click("nav >> text=Bản tin")
            approver.click("text=Phòng chống bão số 3")
            readings = approver.inner_text("details.readings")
            assert "5-9 → năm tháng chín" in readings and "cần nghe lại" in readings
            assert approver.inner_text("#tram-nhan").startswith("dong-hai")
            shot(approver, "trung-tam-duyet-tin")
            approver.click("text=Duyệt, ký và gửi 1 trạm")
            approver.wait_for_url(re.compile(r".*\?xong=duyet"))
            assert "đã phát hành" in approver.inner_text("#trang-thai")
            assert "Đã duyệt và ký" in approver.inner_text("[role=status]")

            seen = station_sees(centre, url, "dong-hai", tmp_path)
            assert seen["Phòng chống bão số 3"]["approver"] == "duyet"
            assert station_sees(centre, url, "vinh-hai", tmp_path / "v") == {}

            # The operator withdraws it in two clicks; the station stops seeing it.
            operator.click("nav >> text=Bản tin")
            operator.click("text=Phòng chống bão số 3")
            operator.click("text=Rút bản tin…")
            operator.click("text=Đồng ý rút bản tin")
            operator.wait_for_url(re.compile(r".*\?xong=rut"))
            assert "đã rút" in operator.inner_text("#trang-thai")
            assert station_sees(centre, url, "dong-hai", tmp_path) == {}

            tech = person("ky-thuat")
            tech.click("nav >> text=Nhật ký thao tác")
            log = tech.inner_text("#nhat-ky")
            assert "duyệt và ký" in log and "rút bản tin" in log and "bien-tap" in log
            shot(tech, "trung-tam-nhat-ky")
        finally:
            browser.close()


def test_the_desk_lists_cli_publications_and_says_when_one_has_ended(app, centre):
    now = dt.datetime.now(TZ)
    meta = {
        "title": "Tin đã qua",
        "wards": ["an-hai"],
        "level": "thuong",
        "air_from": (now - dt.timedelta(days=3)).isoformat(),
        "air_until": (now - dt.timedelta(hours=1)).isoformat(),
    }
    centre.publish("duyet", b"Tin da qua.", meta, ring=False)
    operator = TestClient(app)
    login(operator, "bien-tap")
    card = re.search(r'data-bulletin="\d+">(.*?)</section>', operator.get("/ban-tin").text, re.S)[1]
    assert "Tin đã qua" in card and "đã hết hạn phát" in card
    assert any(
        r["action"] == "publish" and r["detail"] == "through the CLI" for r in centre.store().audit_rows()
    )


def test_the_centre_signs_for_as_long_as_centre_yaml_says(centre):
    import json

    import yaml

    data = yaml.safe_load(centre.config_path.read_text())
    data["expiry_hours"] = {"timestamp": 2, "snapshot": 48}
    centre.config_path.write_text(yaml.safe_dump(data))
    centre.repository().refresh_timestamp()
    signed = json.loads((centre.repo_dir / "metadata" / "timestamp.json").read_text())["signed"]
    left = dt.datetime.fromisoformat(signed["expires"].replace("Z", "+00:00")) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=1.9) < left <= dt.timedelta(hours=2)
    data["expiry_hours"] = {"timestamp": 0, "tuan": 3}
    centre.config_path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="expiry_hours"):
        centre.repository()
