"""Share pages (issue 12): a ready bulletin exported as a listen-again folder, served by the station.

Real parts: a Station with its library and render cache (InstantRendering writes the air-ready WAVs),
ffmpeg encoding them, ffprobe and zbarimg reading the results back, uvicorn serving the folder and a
real Chromium opening it at a phone's and a desktop's size.  Screenshots go to tests/artifacts/web/.
"""

from __future__ import annotations

import dataclasses
import html.parser
import http.client
import json
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from playout import export, qr
from playout.api import create_app
from playout.auth import hash_password, hash_token
from playout.config import parse_config
from playout.errors import PlayoutError
from playout.service import StationService
from tests.doubles import InstantRendering
from tests.playout.test_web import CHROMIUM, PHONE, serve, shot
from tests.station import start_station, write_script

BASE_URL = "https://donghai.example.vn/hoc-so"
STATION = "Đài truyền thanh phường Đông Hải"
TITLE = 'Dịch vụ công <trực tuyến> & "VNeID"'
GUIDE = "https://dichvucong.gov.vn/p/home/dvc-huong-dan.html"
OPERATOR, TECHNICIAN = "share-operator-token-0123456789", "share-technician-token-0123456789"
PASSWORD = "mat-khau-cua-hoa"
BODY = """# Dịch vụ công <trực tuyến> & "VNeID"

Kính thưa bà con!

Bà con **hãy** cài ứng dụng VNeID để làm thủ tục tại nhà.
Không đưa mã OTP cho ai, kể cả người xưng là <cán bộ>.

- Bước 1: mở ứng dụng VNeID.
- Bước 2: chọn mục Dịch vụ công.
"""
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    root = tmp_path_factory.mktemp("share")
    approved = root / "bulletins" / "approved"
    write_script(approved, "dvc.md", BODY, title=TITLE, topic="dich-vu-cong", department="Công an phường")
    write_script(approved, "thanh-toan.md", "Bà con thanh toán tiền điện bằng ví điện tử.", link=GUIDE)
    tokens = [
        {"name": "portal", "token_hash": hash_token(OPERATOR), "roles": ["operator"]},
        {"name": "tech", "token_hash": hash_token(TECHNICIAN), "roles": ["technician"]},
    ]
    config = parse_config(
        {
            "paths": {"data": str(root / "var"), "bulletins": str(root / "bulletins")},
            "tts": {"engines": ["espeak"]},
            "windows": [],
            "bulletin": {"length_s": 12, "lead_in": "", "outro": "Hết."},
            "auth": {
                "tokens": tokens,
                "accounts": [
                    {"name": "hoa", "password_hash": hash_password(PASSWORD), "roles": ["operator"]}
                ],
            },
            "qr": {"base_url": BASE_URL, "station_name": STATION},
        },
        base=root,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPIOZERO_PIN_FACTORY", "mock")
        st = start_station(config, ready=2, renderer=InstantRendering())
        yield st
        st.close()


def bulletin(station, name):
    return next(b for b in station.library.ready() if b.script.name == name)


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


def zbar(path: Path) -> str:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        pytest.fail("zbarimg not found: install the Debian package zbar-tools")
    out = subprocess.run([zbarimg, "--raw", "-q", str(path)], capture_output=True, timeout=30, check=True)
    return out.stdout.decode("utf-8").removesuffix("\n")


class Addresses(html.parser.HTMLParser):
    """Every tag, and every address the page would load or link to."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.addresses: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "srcset", "poster", "action", "data") and value is not None:
                self.addresses.append((tag, name, value))


# ---------------------------------------------------------------- names


def test_the_folder_is_named_after_the_qr_target(station):
    """The slug is the QR target's last segment, so an upload under qr.base_url is where codes point."""
    own = bulletin(station, "dvc.md")
    slug = export.share_slug(own)
    assert slug == f"dich-vu-cong-truc-tuyen-vneid-{own.id[:8]}"
    assert qr.bulletin_link(own, BASE_URL) == f"{BASE_URL}/{slug}" == export.public_url(own, BASE_URL)
    linked = bulletin(station, "thanh-toan.md")
    assert qr.bulletin_link(linked, BASE_URL) == GUIDE  # the department's guide wins
    assert export.public_url(linked, BASE_URL) == f"{BASE_URL}/{export.share_slug(linked)}"
    assert export.public_url(linked, None) is None and export.public_url(linked, "donghai.vn") is None
    assert export.SLUG_RE.fullmatch(slug) and len(slug) <= export.MAX_SLUG_CHARS


def test_text_blocks_keep_lines_lists_and_headings_without_markup():
    blocks = export.text_blocks(BODY, TITLE)
    assert blocks[0] == {"kind": "p", "lines": ["Kính thưa bà con!"]}  # the heading repeating the title
    assert blocks[1]["lines"] == [
        "Bà con hãy cài ứng dụng VNeID để làm thủ tục tại nhà.",
        "Không đưa mã OTP cho ai, kể cả người xưng là <cán bộ>.",
    ]
    assert blocks[2] == {
        "kind": "ul",
        "lines": ["Bước 1: mở ứng dụng VNeID.", "Bước 2: chọn mục Dịch vụ công."],
    }
    assert export.text_blocks("## Lưu ý\n\n1. Một\n2. Hai", "Khác") == [
        {"kind": "h", "lines": ["Lưu ý"]},
        {"kind": "ol", "lines": ["Một", "Hai"]},
    ]


# ---------------------------------------------------------------- the export


def test_export_writes_the_page_both_audio_files_and_the_code(station):
    own = bulletin(station, "dvc.md")
    shared = StationService(station).share(own, "hoa")
    slug = export.share_slug(own)
    root = station.config.paths.data / "share"
    folder = root / slug
    assert shared["slug"] == slug and shared["url"] == f"/share/{slug}/"
    assert shared["qr_target"] == shared["public_url"] == f"{BASE_URL}/{slug}"
    names = [f["name"] for f in shared["files"]]
    assert names == ["index.html", f"{slug}.mp3", f"{slug}.opus", "qr.png", "qr.svg", f"{slug}.zip"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert [p.name for p in root.iterdir()] == [slug]  # no temporary folder left behind
    for f in shared["files"]:
        assert f["bytes"] == (folder / f["name"]).stat().st_size > 0
        assert f["url"] == f"/share/{slug}/{f['name']}"

    # The audio: both codecs, mono, as long as the WAV that airs.
    wav = sf.info(str(own.audio_path))
    mp3, opus = probe(folder / f"{slug}.mp3"), probe(folder / f"{slug}.opus")
    assert [s["codec_name"] for s in mp3["streams"]] == ["mp3"]
    assert [s["codec_name"] for s in opus["streams"]] == ["opus"] and opus["format"]["format_name"] == "ogg"
    assert mp3["streams"][0]["channels"] == opus["streams"][0]["channels"] == 1
    for probed in (mp3, opus):
        assert abs(float(probed["format"]["duration"]) - wav.duration) < 0.1, probed["format"]
    assert mp3["format"]["tags"]["title"] == TITLE and mp3["format"]["tags"]["artist"] == STATION
    assert int(mp3["streams"][0]["bit_rate"]) == 64000  # CBR: every player knows the length at once
    sizes = {f["name"]: f["bytes"] for f in shared["files"]}
    assert abs(sizes[f"{slug}.mp3"] - 64000 / 8 * wav.duration) < 8000
    assert sizes[f"{slug}.opus"] < sizes[f"{slug}.mp3"]

    # The code opens the page's place on the portal.
    assert zbar(folder / "qr.png") == f"{BASE_URL}/{slug}"
    assert (folder / "qr.svg").read_bytes() == qr.qr_svg(f"{BASE_URL}/{slug}")

    # The page: escaped office text, the steps, the station, and nothing loaded from elsewhere.
    page = (folder / "index.html").read_text("utf-8")
    assert '<html lang="vi">' in page and 'name="viewport"' in page
    assert "Dịch vụ công &lt;trực tuyến&gt; &amp; &#34;VNeID&#34;" in page
    assert "<trực tuyến>" not in page and "<cán bộ>" not in page and "&lt;cán bộ&gt;" in page
    assert qr.MOTTO in page and all(f"<strong>{word}</strong>" in page for word, _ in export.STEPS)
    assert STATION in page and "Công an phường" in page and "Học số mỗi ngày 3 phút" in page
    assert f'href="{BASE_URL}/{slug}"' in page and "Mã QR của trang này" in page
    assert "Bà con hãy cài ứng dụng VNeID" in page and "**" not in page
    parsed = Addresses()
    parsed.feed(page)
    assert not {"script", "link", "iframe", "object", "embed", "base", "form"} & set(parsed.tags)
    assert parsed.tags.count("source") == 2 and parsed.tags.count("audio") == 1
    for tag, _, value in parsed.addresses:
        if value == f"{BASE_URL}/{slug}" and tag == "a":
            continue  # the QR target, for a person to tap
        assert not urlsplit(value).scheme and not value.startswith(("/", "\\")), value
        assert value in names, value
    assert "url(" not in page and "@import" not in page and "@font-face" not in page
    assert f'<source src="{slug}.opus" type="audio/ogg; codecs=opus">' in page
    assert f'<source src="{slug}.mp3" type="audio/mpeg">' in page

    # The whole page as one zip, ready for the ward's portal: the same files under the page's folder.
    with zipfile.ZipFile(folder / f"{slug}.zip") as bundle:
        assert bundle.testzip() is None
        assert bundle.namelist() == [f"{slug}/{name}" for name in names[:-1]]
        for name in names[:-1]:
            assert bundle.read(f"{slug}/{name}") == (folder / name).read_bytes()
    assert f'href="{slug}.zip" download' in page


def test_a_bulletin_with_its_own_link_points_the_code_at_it(station, tmp_path):
    linked = bulletin(station, "thanh-toan.md")
    page = export.export_bulletin(linked, tmp_path, base_url=None, station_name=STATION)
    assert page.qr_target == GUIDE and page.public_url is None
    assert zbar(page.folder / "qr.png") == GUIDE
    text = (page.folder / "index.html").read_text("utf-8")
    assert "Quét mã để xem hướng dẫn chi tiết" in text and f'href="{GUIDE}"' in text
    assert "og:url" not in text  # no address on the portal to announce


def test_export_again_replaces_it_and_a_failed_one_changes_nothing(station, tmp_path):
    own = bulletin(station, "dvc.md")
    slug = export.share_slug(own)
    kw = {"base_url": BASE_URL, "station_name": STATION}
    first = export.export_bulletin(own, tmp_path, **kw)
    before = {p.name: p.read_bytes() for p in first.folder.iterdir()}
    # A power cut between the two renames of an earlier export left its old folder aside.
    (tmp_path / f".{slug}.0badc0de.old").mkdir()
    again = export.export_bulletin(own, tmp_path, **kw)
    assert again.folder == first.folder and [p.name for p in tmp_path.iterdir()] == [slug]
    assert {p.name: p.read_bytes() for p in again.folder.iterdir()} == before  # same bulletin, same bytes

    broken = tmp_path / "ffmpeg-broken"
    broken.write_text("#!/bin/sh\necho 'Unknown encoder libmp3lame' >&2\nexit 1\n")
    hung = tmp_path / "ffmpeg-hung"
    hung.write_text("#!/bin/sh\nexec sleep 30\n")
    for fake in (broken, hung):
        fake.chmod(0o755)
    cases = [
        (str(broken), {}, "SHARE_ENCODE_FAILED", "ffmpeg không chuyển được"),
        (str(hung), {"timeout_s": 0.5}, "SHARE_ENCODE_TIMEOUT", "quá 0,5 giây"),
        (str(tmp_path / "no-such-ffmpeg"), {}, "SHARE_FFMPEG_MISSING", "chưa cài ffmpeg"),
    ]
    for ffmpeg, extra, code, words in cases:
        with pytest.raises(export.ShareError) as caught:
            export.export_bulletin(own, tmp_path, ffmpeg=ffmpeg, **extra, **kw)
        assert caught.value.code == code and words in caught.value.message, caught.value
        assert caught.value.http_status == 500 and "Unknown encoder" not in caught.value.message
        if code == "SHARE_ENCODE_FAILED":  # ffmpeg's own words go to the log, not to the operator
            assert "Unknown encoder" in caught.value.detail
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ffmpeg-broken", "ffmpeg-hung", slug])
        assert {p.name: p.read_bytes() for p in first.folder.iterdir()} == before


def test_not_ready_and_no_qr_target_are_refused(station, tmp_path):
    own = bulletin(station, "dvc.md")
    for status in ("pending", "rendering", "failed"):
        with pytest.raises(export.ShareRefused) as caught:
            export.export_bulletin(
                dataclasses.replace(own, status=status), tmp_path, base_url=BASE_URL, station_name=STATION
            )
        assert caught.value.code == "SHARE_NOT_READY" and caught.value.http_status == 409
    with pytest.raises(export.ShareRefused) as caught:
        export.export_bulletin(own, tmp_path, base_url=None, station_name=STATION)
    assert caught.value.code == "SHARE_NO_LINK" and "base_url" in caught.value.message
    assert isinstance(caught.value, PlayoutError) and not list(tmp_path.iterdir())


# ---------------------------------------------------------------- the API and the station's /share/


def test_operators_export_through_the_api_and_anyone_reads_the_files(station):
    client = TestClient(create_app(station))
    own = bulletin(station, "dvc.md")
    url = f"/api/bulletins/{own.id}/share"
    assert client.post(url).status_code == 401
    assert client.post(url, headers=auth(TECHNICIAN)).status_code == 403
    assert client.post("/api/bulletins/khong-co/share", headers=auth(OPERATOR)).status_code == 404
    assert client.post(f"/api/bulletins/{'a' * 65}/share", headers=auth(OPERATOR)).status_code == 422
    resp = client.post(url, headers=auth(OPERATOR))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    slug = export.share_slug(own)
    assert body["url"] == f"/share/{slug}/" and body["public_url"] == f"{BASE_URL}/{slug}"

    anyone = TestClient(create_app(station))
    for f in body["files"]:
        got = anyone.get(f["url"])
        assert got.status_code == 200 and len(got.content) == f["bytes"], f
        assert got.headers["content-type"] == export.MEDIA_TYPES[Path(f["name"]).suffix]
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.headers["content-security-policy"].startswith("default-src 'none'")  # no script runs
    page = anyone.get(f"/share/{slug}/")
    assert page.status_code == 200 and "&lt;trực tuyến&gt;" in page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    moved = anyone.get(f"/share/{slug}", follow_redirects=False)
    assert moved.status_code == 308 and moved.headers["location"] == f"/share/{slug}/"
    ranged = anyone.get(f"/share/{slug}/{slug}.mp3", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100  # a phone seeks in the audio

    # The web page's button: a form with the CSRF token, then the page itself.
    web = TestClient(create_app(station))
    web.post("/dang-nhap", data={"name": "hoa", "password": PASSWORD})
    desk = web.get("/ban-tin").text
    assert f'action="/chia-se/{own.id}"' in desk and "Trang chia sẻ" in desk
    assert web.post(f"/chia-se/{own.id}").status_code == 403  # no CSRF token
    csrf = desk.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    done = web.post(f"/chia-se/{own.id}", data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/share/{slug}/"


def test_withdrawing_an_uploaded_bulletin_removes_its_share_page(station):
    service = StationService(station)
    text = "Bà con chú ý: chiều nay phun thuốc diệt muỗi tại tổ dân phố 4.".encode()
    sha = service.submit(text, "phun-thuoc.txt", "hoa")["sha256"]
    service.decide("approve", sha, "duyet")
    deadline = time.monotonic() + 30
    while not any(b.id == sha for b in station.library.ready()) and time.monotonic() < deadline:
        station.wake_library()
        time.sleep(0.1)
    own = next(b for b in station.library.ready() if b.id == sha)
    shared = service.share(own, "hoa")
    folder = service.share_root() / shared["slug"]
    anyone = TestClient(create_app(station))
    assert folder.is_dir() and anyone.get(shared["url"]).status_code == 200
    other = service.share_root() / export.share_slug(bulletin(station, "dvc.md"))
    service.share(bulletin(station, "dvc.md"), "hoa")

    service.decide("withdraw", sha, "duyet")
    assert not folder.exists()  # not left on the card, nor uploaded again by mistake
    assert anyone.get(shared["url"]).status_code == 404
    assert other.is_dir()  # another bulletin's page stays


def test_share_urls_reach_only_exported_files_of_current_bulletins(station):
    own = bulletin(station, "dvc.md")
    service = StationService(station)
    service.share(own, "hoa")
    slug = export.share_slug(own)
    root = service.share_root()
    data = station.config.paths.data
    secret = (data / "auth.secret").read_bytes()
    # Planted by hand: a stray file, a symlink posing as the code, a folder for no current bulletin.
    (root / slug / "ghi-chu.txt").write_text("nội bộ")
    (root / slug / "qr.svg").unlink()
    (root / slug / "qr.svg").symlink_to(data / "auth.secret")
    gone = root / "ban-tin-da-rut-0123abcd"
    gone.mkdir()
    (gone / "index.html").write_text("<p>đã rút</p>")
    attempts = [
        "/share/../auth.secret",
        "/share/%2e%2e/auth.secret",
        "/share/..%2fauth.secret",
        f"/share/{slug}/../../auth.secret",
        f"/share/{slug}/%2e%2e%2f%2e%2e%2fauth.secret",
        f"/share/{slug}/..%2f..%2fplayout.db",
        f"/share/{slug}/..%5c..%5cauth.secret",
        f"/share/{slug}/%2fetc%2fpasswd",
        f"/share/{slug}/index.html%00.png",
        f"/share/{slug}/./index.html",
        f"/share/{slug}/ghi-chu.txt",
        f"/share/{slug}/qr.svg",
        f"/share/{slug}/{slug.upper()}.MP3",
        "/share/ban-tin-da-rut-0123abcd/",
        "/share/ban-tin-da-rut-0123abcd/index.html",
        "/share/%2e%2e/",
        "/share/.%2e/share/" + slug + "/index.html",
    ]
    with serve(create_app(station)) as base:
        host, port = urlsplit(base).hostname, urlsplit(base).port
        for path in attempts:
            # http.client sends the path byte for byte: no client-side clean-up of "..".
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert resp.status == 404, (path, resp.status, body[:200])
            assert secret not in body and b"SQLite format" not in body
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", f"/share/{slug}/index.html")
        assert conn.getresponse().status == 200  # the real file still is served
        conn.close()


# ---------------------------------------------------------------- a real browser


def audio_duration(page, src: str | None = None) -> float:
    """The page's <audio> (or a new Audio(src)): its duration once the metadata is in; -1 on an error."""
    return page.evaluate(
        """(src) => new Promise((done) => {
            const audio = src ? new Audio(src) : document.querySelector('audio');
            const answer = () => done(audio.error ? -1 : audio.duration);
            if (audio.readyState >= 1) return answer();
            audio.addEventListener('loadedmetadata', answer);
            audio.addEventListener('error', answer);
            setTimeout(() => done(-2), 10000);
        })""",
        src,
    )


def test_the_page_on_a_phone_and_a_desktop(station, tmp_path):
    assert CHROMIUM.exists(), "Chromium is missing: `make setup` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    from tests.playout.test_web import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    own = bulletin(station, "dvc.md")
    slug = export.share_slug(own)
    length = sf.info(str(own.audio_path)).duration
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    with serve(create_app(station)) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            # The operator's button on the bulletins page opens the page in a new tab.
            desk = browser.new_context(viewport=PHONE, base_url=base, locale="vi-VN")
            oper = desk.new_page()
            oper.goto("/dang-nhap")
            oper.fill("#name", "hoa")
            oper.fill("#password", PASSWORD)
            oper.click("button[type=submit]")
            oper.wait_for_url(base + "/")
            oper.goto("/ban-tin")
            with desk.expect_page() as opened:
                oper.locator(f'.card[data-id="{own.id}"] button:has-text("Trang chia sẻ")').click()
            tab = opened.value
            tab.wait_for_load_state()
            assert tab.url == f"{base}/share/{slug}/"
            shot(oper, "ban-tin-trang-chia-se")

            # Anyone on the LAN, on a phone and on a desktop.
            for size, name in ((PHONE, "chia-se-dien-thoai"), (DESKTOP, "chia-se-may-tinh")):
                context = browser.new_context(viewport=size, locale="vi-VN", accept_downloads=True)
                page = context.new_page()
                asked, problems = [], []
                page.on("request", lambda r, asked=asked: asked.append(r.url))
                page.on("console", lambda m, p=problems: p.append(m.text) if m.type == "error" else None)
                page.goto(f"{base}/share/{slug}/")
                played = audio_duration(page)
                assert abs(played - length) < 0.1, played
                assert page.evaluate("document.querySelector('audio').currentSrc").endswith(f"/{slug}.opus")
                mp3 = audio_duration(page, f"{slug}.mp3")  # the source Safari would pick
                assert abs(mp3 - length) < 0.1, mp3
                assert page.evaluate("document.querySelector('.qr img').naturalWidth") > 100
                assert page.inner_text("h1") == TITLE
                assert "Nghe – Quét – Thực hành" in page.inner_text(".motto")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= size["width"], f"the page scrolls sideways at {size['width']} px: {width}"
                assert asked and all(url.startswith(base + "/") for url in asked), asked
                assert not problems, problems
                shot(page, name)
                if size is PHONE:  # the zip, as a technician downloads it to upload to the portal
                    with page.expect_download() as got:
                        page.click(f'a[href="{slug}.zip"]')
                    saved = tmp_path / got.value.suggested_filename
                    got.value.save_as(saved)
                    assert saved.name == f"{slug}.zip"
                    with zipfile.ZipFile(saved) as bundle:
                        assert f"{slug}/index.html" in bundle.namelist() and bundle.testzip() is None
                context.close()

            # The folder on its own (a copy on a laptop, a file shared in Zalo): opened from disk.
            copy = tmp_path / slug
            shutil.copytree(station.config.paths.data / "share" / slug, copy)
            page = browser.new_context(viewport=PHONE).new_page()
            asked = []
            page.on("request", lambda r: asked.append(r.url))
            page.goto(copy.joinpath("index.html").as_uri())
            assert abs(audio_duration(page) - length) < 0.1
            assert page.evaluate("document.querySelector('.qr img').naturalWidth") > 100
            assert all(url.startswith("file://") for url in asked), asked
        finally:
            browser.close()
