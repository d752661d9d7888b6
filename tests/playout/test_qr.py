"""QR codes and posters: real codes decoded back with zbarimg, real bulletins read from disk."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from playout.intake import read_script
from playout.library import Bulletin
from playout.qr import MOTTO, bulletin_link, poster_html, qr_png, qr_svg, slugify, summary_lines

BODY = (
    "Kính thưa bà con!\n\n"
    "Chuyên mục hôm nay hướng dẫn bà con tạo tài khoản trên Cổng Dịch vụ công quốc gia. "
    "Bà con chuẩn bị điện thoại và căn cước công dân.\n\n"
    "Bước 1: mở trình duyệt, truy cập dichvucong.gov.vn.\n"
)
LONG_VN_URL = (
    "https://phuongvinhhai.khanhhoa.gov.vn/hoc-so/Hướng dẫn/đăng-ký-tài-khoản-định-danh-điện-tử?"
    "chủ_đề=dịch-vụ-công&bước=1&ghi_chú=Người+cao+tuổi+ở+tổ+dân+phố+số+7&utm=loa-phường"
).replace(" ", "-")


def make_bulletin(tmp_path, body: str = BODY, name: str = "ban-tin.md", **meta: str) -> Bulletin:
    """A real bulletin: a script with front matter on disk, read by the intake like the library does."""
    front = "".join(f"{key}: {value}\n" for key, value in meta.items())
    path = tmp_path / name
    path.write_text(f"---\n{front}---\n{body}" if front else body, encoding="utf-8")
    script = read_script(path)
    return Bulletin(id=script.content_sha256, path=path, script=script, approved_at=dt.datetime.now(dt.UTC))


def zbar_decode(tmp_path, png: bytes) -> str:
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        # No skip: an undecoded code is an untested code (`make setup` installs zbar-tools).
        pytest.fail("zbarimg not found: install the Debian package zbar-tools")
    image = tmp_path / "code.png"
    image.write_bytes(png)
    result = subprocess.run(
        [zbarimg, "--raw", "-q", str(image)], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8").removesuffix("\n")


# -- the link -------------------------------------------------------------------------------------------


def test_front_matter_link_wins(tmp_path):
    bulletin = make_bulletin(tmp_path, title="Đăng nhập VNeID", link="https://dichvucong.gov.vn")
    assert bulletin_link(bulletin, "https://phuong.example.vn") == "https://dichvucong.gov.vn"


def test_slug_link_from_title_and_id(tmp_path):
    bulletin = make_bulletin(tmp_path, title="Tạo tài khoản trên Cổng Dịch vụ công")
    link = bulletin_link(bulletin, "https://phuong.example.vn/hoc-so/")
    assert link == f"https://phuong.example.vn/hoc-so/tao-tai-khoan-tren-cong-dich-vu-cong-{bulletin.id[:8]}"
    assert re.fullmatch(r"tao-tai-khoan-tren-cong-dich-vu-cong-[0-9a-f]{8}", link.rsplit("/", 1)[1])


def test_slug_is_ascii_cut_at_a_word_and_handles_d_bar():
    assert slugify("ĐẶNG Đình Đức — đường dây nóng 113!") == "dang-dinh-duc-duong-day-nong-113"
    long = slugify("Hướng dẫn " * 20)
    assert len(long) <= 60 and long.isascii()
    assert long.endswith("dan") and not long.endswith("-")


def test_no_link_and_no_base_url_is_refused_in_vietnamese(tmp_path):
    bulletin = make_bulletin(tmp_path, title="Thanh toán tiền điện")
    for base in (None, "", "   "):
        with pytest.raises(ValueError, match="chưa có đường dẫn"):
            bulletin_link(bulletin, base)
    with pytest.raises(ValueError, match="https://"):
        bulletin_link(bulletin, "phuong.example.vn")


# -- the code -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["https://dichvucong.gov.vn", LONG_VN_URL])
def test_png_decodes_to_the_exact_link(tmp_path, link):
    png = qr_png(link)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert png == qr_png(link)  # deterministic: a reprinted poster carries the same code
    assert zbar_decode(tmp_path, png) == link


def test_png_size_follows_box_size_and_border(tmp_path):
    small, large = qr_png("https://x.vn", box_size=4, border=2), qr_png("https://x.vn", box_size=12)
    assert len(small) < len(large)
    assert zbar_decode(tmp_path, small) == "https://x.vn"


def test_svg_is_an_svg_document():
    data = qr_svg(LONG_VN_URL)
    assert data == qr_svg(LONG_VN_URL)
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox")
    assert root.find("{http://www.w3.org/2000/svg}path") is not None or root.find("path") is not None


def test_empty_link_is_refused():
    with pytest.raises(ValueError):
        qr_png("")


# -- the summary ----------------------------------------------------------------------------------------


def test_summary_skips_greeting_and_keeps_two_lines_within_budget():
    first, second = summary_lines(BODY)
    assert first.startswith("Chuyên mục hôm nay")
    assert "Kính thưa" not in first + second
    assert len(first) <= 80 and len(second) <= 80
    # The first sentence is longer than a line: it flows on into line two, which ends at a sentence.
    assert f"{first} {second}" == (
        "Chuyên mục hôm nay hướng dẫn bà con tạo tài khoản trên Cổng Dịch vụ công quốc "
        "gia. Bà con chuẩn bị điện thoại và căn cước công dân."
    )
    first, second = summary_lines(BODY, max_chars=60)
    assert len(first) <= 30 and len(second) <= 30 and second.endswith("…")
    # Cut at word boundaries only: every word of the summary is a whole word of the body.
    words = set(BODY.replace("\n", " ").split())
    assert all(w in words for w in (first + " " + second.rstrip("…")).split())


def test_summary_removes_markdown_and_keeps_numbers_whole():
    text = (
        "# Tiêu đề\n\n- **Mở** [ứng dụng VNeID](https://vneid.gov.vn). Phí 1.500.000 đồng v.v. và hơn thế.\n"
    )
    first, second = summary_lines(text, max_chars=200)
    assert first == "Mở ứng dụng VNeID."
    assert second == "Phí 1.500.000 đồng v.v. và hơn thế."
    assert summary_lines("") == ("", "")
    assert summary_lines("Ngắn.") == ("Ngắn.", "")


# -- the poster -----------------------------------------------------------------------------------------


def test_poster_has_everything_a_notice_board_needs(tmp_path):
    bulletin = make_bulletin(
        tmp_path,
        title="Tạo tài khoản trên Cổng Dịch vụ công",
        topic="dich-vu-cong",
        department="Trung tâm Phục vụ hành chính công",
    )
    link = bulletin_link(bulletin, "https://phuong.example.vn")
    html = poster_html(bulletin, link, station_name="Đài truyền thanh phường Vĩnh Hải")
    assert '<html lang="vi">' in html
    assert "Học số mỗi ngày 3 phút" in html
    assert "Tạo tài khoản trên Cổng Dịch vụ công" in html
    assert MOTTO == "Nghe – Quét – Thực hành" and MOTTO in html
    assert "Đài truyền thanh phường Vĩnh Hải" in html
    assert link in html
    first, second = summary_lines(bulletin.script.body)
    assert first in html and second in html
    assert re.search(r"@page\s*\{\s*size:\s*A5 portrait", html)
    assert "<svg" in html and "<?xml" not in html
    assert html == poster_html(bulletin, link, station_name="Đài truyền thanh phường Vĩnh Hải")


def test_poster_escapes_office_text(tmp_path):
    bulletin = make_bulletin(
        tmp_path,
        body="Bà con <b>chú ý</b> <script>alert(2)</script>. Câu thứ hai.\n",
        title='"<script>alert(1)</script>"',
        department='"A & B <i>"',
    )
    html = poster_html(bulletin, "https://x.vn/?a=1&b=<2>", station_name="<Đài> & Loa")
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;Đài&gt; &amp; Loa" in html
    assert "https://x.vn/?a=1&amp;b=&lt;2&gt;" in html
