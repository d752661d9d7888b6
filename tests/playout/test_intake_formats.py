"""Scripts as wards really send them: Word 97–2003 .doc files, PDFs (typed or scanned), renamed files,
Word titles and tables, and titles taken from the text itself.

Real files, read by the real tools the station uses (antiword, pdftotext).  The .doc files are committed
under data/ (made once by LibreOffice, see data/README.md); the PDFs are printed here by Chromium (a text
PDF, as Word's "Save as PDF" makes one), drawn by Pillow (a scan: only a picture of the page) and locked
by qpdf.  Chromium and qpdf come from TEST_APT in the Makefile.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import time
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playout import documents
from playout.errors import ScriptRejected
from playout.intake import Script, ScriptMeta, is_script_file, parse_script, read_script

DATA = Path(__file__).parent / "data"
CHROMIUM = Path("/usr/bin/chromium")


def refused(data: bytes, name: str) -> ScriptRejected:
    with pytest.raises(ScriptRejected) as caught:
        parse_script(data, name)
    return caught.value


def word_file(build) -> bytes:
    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def paragraphs(script: Script) -> list[str]:
    return script.body.split("\n\n")


def flowed(texts: list[str]) -> list[str]:
    """Paragraphs with a line break after a full stop read as a space.  Whether a PDF line that ends a
    sentence also ended its paragraph cannot be told from the text, and both read out the same; where
    Chromium wraps a line is its own affair."""
    return [re.sub(r"(?<=[.!?])\n", " ", text) for text in texts]


# --- Word 97–2003 (.doc) ---------------------------------------------------------------------------------


def test_a_word_97_document_in_vietnamese_is_read():
    script = read_script(DATA / "canh-giac-lua-dao.doc")
    assert script.encoding == "doc" and script.warnings == ()
    assert script.meta == ScriptMeta()
    assert paragraphs(script) == [
        "Cảnh giác cuộc gọi giả danh công an",
        "Kính thưa bà con!",
        "Thời gian gần đây, nhiều người dân trên địa bàn phường nhận được cuộc gọi tự xưng là cán bộ "
        "công an, yêu cầu cài ứng dụng lạ hoặc chuyển tiền vào “tài khoản tạm giữ” để “xác minh”. Đây là "
        "thủ đoạn lừa đảo chiếm đoạt tài sản.",
        "Công an phường khuyến cáo: cơ quan công an không làm việc qua điện thoại, không yêu cầu chuyển "
        "tiền, không đề nghị cung cấp mã OTP hay mật khẩu ứng dụng ngân hàng.",
        "Bà con cần nhớ ba điều sau:",
        "Không cung cấp mã OTP cho bất kỳ ai.",
        "Không cài ứng dụng theo hướng dẫn của người lạ.",
        "Gọi ngay cho Công an phường khi nghi ngờ.",
        # The table: a line per row, cells joined; the long cell whole (antiword draws it over three
        # lines), the "|" in a cell kept as text.
        "Khi nhận cuộc gọi lạ, Gác máy, gọi lại số tổng đài chính thức\n"
        "Khi đã lỡ chuyển tiền, Báo ngay ngân hàng | khóa tài khoản\n"
        "Không bấm vào đường link lạ gửi qua tin nhắn, Zalo hay Facebook, kể cả khi người gửi xưng là cán bộ "
        "ngân hàng hoặc công an, Xóa tin nhắn",
        # A manual line break (Shift+Enter) stays a line break.
        "Mọi thông tin xin liên hệ: Công an phường, số điện thoại 0258 3822 113.\nTrực ban 24/24 giờ.",
        "Xin cảm ơn bà con đã lắng nghe. Chúc bà con một ngày an toàn trên không gian mạng, và hãy chia sẻ "
        "thông tin này tới người thân, nhất là người cao tuổi trong gia đình.",
    ]
    assert script.display_title == "Cảnh giác cuộc gọi giả danh công an"


def test_a_doc_typed_in_a_vntime_font_is_turned_into_unicode():
    data = (DATA / "vntime.doc").read_bytes()
    # LibreOffice, which made the fixture, stored TCVN3's "ư" (U+00AD) as Word's optional hyphen (0x1F,
    # UTF-16 in the text stream); a file typed in Word keeps the letter.  Put it back, byte for byte.
    typed_in_word = data.replace(b"h\x00\x1f\x00\xea\x00", b"h\x00\xad\x00\xea\x00")
    assert typed_in_word.count(b"h\x00\xad\x00\xea\x00") == 6
    script = parse_script(typed_in_word, "vntime.doc")
    assert paragraphs(script)[0] == "Thông báo của Bộ phận một cửa"
    assert (
        paragraphs(script)[1:]
        == [
            "Từ ngày 01/12/2026, Bộ phận một cửa phường nhận hồ sơ trực tuyến cả ngày thứ bảy. "
            "Bà con cần bảo vệ mã OTP, không cho ai biết mật khẩu."
        ]
        * 6
    )
    assert any("TCVN3" in w for w in script.warnings)
    assert script.display_title == "Thông báo của Bộ phận một cửa"


def test_a_tiny_doc_not_saved_by_word_is_refused_with_advice():
    # LibreOffice keeps a short document's WordDocument stream in OLE's small-stream area; antiword reads
    # only the regular one (Word always writes that).  The operator is told what to do.
    error = refused((DATA / "ngan-libreoffice.doc").read_bytes(), "ngan.doc")
    assert error.code == "DOC_INVALID"
    assert "rất ngắn" in error.message and "lưu lại dạng .docx" in error.message
    assert "too small" in error.detail


def _scrambled(data: bytes) -> bytes:
    out = bytearray(data)
    for i in range(2048, len(out), 7):
        out[i] = (out[i] * 31 + i) & 0xFF
    return bytes(out)


DOC = (DATA / "canh-giac-lua-dao.doc").read_bytes()


@pytest.mark.parametrize(
    "data, reason",
    [
        (DOC[:9000], "bị hỏng"),  # a download cut short
        (_scrambled(DOC), "bị hỏng"),
        (documents.OLE_MAGIC + bytes(504), "bị hỏng"),  # an OLE header and nothing in it
        (b"{\\rtf1\\ansi Kinh thua ba con}", "RTF"),  # what some programs save as "tin.doc"
        (b"<html><body>Kinh thua ba con</body></html>", "HTML"),
        ("Kính thưa bà con".encode(), "bị hỏng"),
    ],
    ids=["truncated", "scrambled", "empty-ole", "rtf", "html", "plain-text"],
)
def test_a_broken_or_fake_doc_is_refused(data, reason):
    error = refused(data, "hong.doc")
    assert error.code == "DOC_INVALID"
    assert reason in error.message and "lưu lại dạng .docx" in error.message
    assert error.context["filename"] == "hong.doc"


def test_renamed_word_files_are_read_by_what_they_contain():
    # A .docx saved as "tin.doc", and an old .doc renamed "tin.docx": both are read, not refused.
    as_doc = parse_script(word_file(lambda d: d.add_paragraph("Bà con chú ý lịch tiêm chủng.")), "tin.doc")
    assert (as_doc.encoding, as_doc.body) == ("docx", "Bà con chú ý lịch tiêm chủng.")
    as_docx = parse_script(DOC, "tin.docx")
    assert as_docx.encoding == "doc" and as_docx.body == read_script(DATA / "canh-giac-lua-dao.doc").body


# --- PDF -----------------------------------------------------------------------------------------------

PAGE_CSS = "body{font-family:'DejaVu Serif';font-size:13pt} p{break-inside:avoid} td{padding-right:2em}"
SENTENCE = "Bà con mở kho ứng dụng trên điện thoại, tìm ứng dụng VNeID của Bộ Công an và bấm cài đặt. "
BULLETIN_HTML = f"""
<h1>Hướng dẫn cài đặt VNeID</h1>
<p>Kính thưa bà con!</p>
<p>{SENTENCE * 4}</p>
<p>Khi cài xong, bà con mở ứng dụng, chọn “Đăng ký tài khoản” và làm theo từng bước; nếu vướng mắc,
bà con mang căn cước đến Công an phường để được hỗ trợ kích hoạt tài khoản định danh mức độ 2.</p>
<table><tr><td>Bước 1</td><td>Mở ứng dụng</td></tr>
<tr><td>Bước 2</td><td>Đăng nhập bằng số định danh cá nhân</td></tr></table>
<p>Xin cảm ơn bà con.</p>
"""
BULLETIN_PARAGRAPHS = [
    "Hướng dẫn cài đặt VNeID\nKính thưa bà con!",  # a heading and the greeting: two lines, not one
    SENTENCE.strip() + " " + SENTENCE.strip() + " " + SENTENCE.strip() + " " + SENTENCE.strip(),
    "Khi cài xong, bà con mở ứng dụng, chọn “Đăng ký tài khoản” và làm theo từng bước; nếu vướng mắc, "
    "bà con mang căn cước đến Công an phường để được hỗ trợ kích hoạt tài khoản định danh mức độ 2.",
    "Bước 1 Mở ứng dụng\nBước 2 Đăng nhập bằng số định danh cá nhân",  # a table row is a line
    "Xin cảm ơn bà con.",
]


@pytest.fixture(scope="module")
def print_pdf():
    """HTML → a PDF with a text layer, as Chromium prints it (numbered pages, A4)."""
    assert CHROMIUM.exists(), "Chromium is missing: `make setup` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()

        def pdf(body: str) -> bytes:
            page.set_content(
                f'<!doctype html><html lang="vi"><meta charset="utf-8"><style>{PAGE_CSS}</style>{body}'
            )
            return page.pdf(
                format="A4",
                margin={"top": "2cm", "bottom": "2cm", "left": "2.5cm", "right": "2cm"},
                display_header_footer=True,
                header_template="<span></span>",
                footer_template='<div style="font-size:10pt;width:100%;text-align:center">'
                '<span class="pageNumber"></span></div>',
            )

        try:
            yield pdf
        finally:
            browser.close()


def scanned_pdf(lines: list[str]) -> bytes:
    """A page as a scanner makes it: a picture of the words, no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("L", (1240, 1754), 255)  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 32)
    for i, line in enumerate(lines):
        draw.text((150, 200 + 60 * i), line, font=font, fill=0)
    out = io.BytesIO()
    page.save(out, "PDF", resolution=150)
    return out.getvalue()


def test_a_text_pdf_is_read_as_paragraphs(print_pdf):
    script = parse_script(print_pdf(BULLETIN_HTML), "vneid.pdf")
    assert script.encoding == "pdf" and script.warnings == ()
    assert flowed(paragraphs(script)) == BULLETIN_PARAGRAPHS  # wrapped lines joined again; no page number
    assert script.display_title == "Hướng dẫn cài đặt VNeID"


def test_a_long_pdf_loses_its_page_numbers_and_keeps_its_paragraphs(print_pdf):
    body = "".join(f"<p>Đoạn {i}: {SENTENCE * 3}</p>" for i in range(1, 13))
    data = print_pdf(body)
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) >= 2  # it does run over a page break
    script = parse_script(data, "dai.pdf")
    assert flowed(paragraphs(script)) == [
        f"Đoạn {i}: " + " ".join([SENTENCE.strip()] * 3) for i in range(1, 13)
    ]


def test_front_matter_lines_at_the_top_of_a_pdf_are_read(print_pdf):
    data = print_pdf(
        "<p>title: Thanh toán tiền điện qua ứng dụng</p><p>topic: thanh-toan</p><p>Kính thưa bà con!</p>"
    )
    script = parse_script(data, "dien.pdf")
    assert script.meta == ScriptMeta(title="Thanh toán tiền điện qua ứng dụng", topic="thanh-toan")
    assert script.body == "Kính thưa bà con!"


def test_a_scanned_pdf_is_refused_and_the_word_file_asked_for():
    error = refused(scanned_pdf(["Kính thưa bà con!", "Đây là bản quét của một bản tin."]), "ban-quet.pdf")
    assert error.code == "PDF_NO_TEXT"
    assert "bản quét" in error.message and "tệp Word" in error.message
    assert error.context["filename"] == "ban-quet.pdf"


def test_a_pdf_with_a_password_is_refused(print_pdf, tmp_path):
    qpdf = shutil.which("qpdf")
    assert qpdf, "qpdf is missing: `make setup` installs it (apt-get install qpdf)"
    (tmp_path / "in.pdf").write_bytes(print_pdf(BULLETIN_HTML))
    import subprocess

    subprocess.run(
        [qpdf, "--encrypt", "mo-khoa", "chu-so-huu", "256", "--", "in.pdf", "locked.pdf"],
        cwd=tmp_path,
        check=True,
    )
    error = refused((tmp_path / "locked.pdf").read_bytes(), "khoa.pdf")
    assert error.code == "PDF_INVALID" and "mật khẩu" in error.message
    # Copying forbidden but no password to open: that is still read.
    subprocess.run(
        [qpdf, "--encrypt", "", "chu-so-huu", "256", "--extract=n", "--", "in.pdf", "no-copy.pdf"],
        cwd=tmp_path,
        check=True,
    )
    no_copy = parse_script((tmp_path / "no-copy.pdf").read_bytes(), "a.pdf")
    assert flowed(paragraphs(no_copy)) == BULLETIN_PARAGRAPHS


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda pdf: pdf[: len(pdf) // 2], "bị hỏng"),  # a download cut short
        (lambda pdf: b"%PDF-1.4\n" + bytes(range(256)) * 8, "bị hỏng"),
        (lambda pdf: "Kính thưa bà con".encode(), "không phải tệp PDF"),
        (lambda pdf: word_file(lambda d: d.add_paragraph("Bà con chú ý.")), "không phải tệp PDF"),
    ],
    ids=["truncated", "garbage", "text", "docx"],
)
def test_a_broken_or_fake_pdf_is_refused(print_pdf, make, reason):
    error = refused(make(print_pdf(BULLETIN_HTML)), "hong.pdf")
    assert error.code == "PDF_INVALID"
    assert reason in error.message and "tệp Word" in error.message


# --- the tools run limited: hangs, floods, crashes and absence are refusals --------------------------------


def stand_in(tmp_path: Path, name: str, script: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_reader_that_hangs_is_killed_and_the_file_refused(tmp_path, monkeypatch):
    pidfile = tmp_path / "pid"
    monkeypatch.setitem(
        documents.TOOLS, "pdftotext", stand_in(tmp_path, "hang", f"echo $$ > {pidfile}; exec sleep 60")
    )
    monkeypatch.setattr(documents, "TIMEOUT_S", 1.0)
    start = time.monotonic()
    error = refused(b"%PDF-1.4\n", "treo.pdf")
    assert time.monotonic() - start < 10
    assert error.code == "PDF_INVALID" and "quá phức tạp" in error.message
    assert "no answer" in error.detail
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)  # killed, and reaped


def test_a_reader_that_writes_without_end_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setitem(
        documents.TOOLS, "antiword", stand_in(tmp_path, "flood", "exec yes 'Kính thưa bà con'")
    )
    monkeypatch.setattr(documents, "MAX_OUTPUT_BYTES", 2**20)
    start = time.monotonic()
    error = refused(DOC, "lu.doc")
    assert error.code == "SCRIPT_TEXT_TOO_LONG" and time.monotonic() - start < 10


def test_a_reader_is_held_to_its_memory_limit(tmp_path, monkeypatch):
    # The stand-in asks for 1 GB; under the 512 MB address-space limit it cannot have it.
    greedy = stand_in(
        tmp_path, "greedy", "exec python3 -c 'bytearray(2**30); print(\"Kính thưa bà con \" * 9)'"
    )
    monkeypatch.setitem(documents.TOOLS, "antiword", greedy)
    assert refused(DOC, "tham.doc").code == "DOC_INVALID"


def test_a_reader_that_crashes_is_a_refusal(tmp_path, monkeypatch):
    monkeypatch.setitem(documents.TOOLS, "antiword", stand_in(tmp_path, "crash", "kill -SEGV $$"))
    error = refused(DOC, "vo.doc")
    assert error.code == "DOC_INVALID" and "SIGSEGV" in error.detail


def test_a_missing_reader_says_which_package_to_install(monkeypatch):
    monkeypatch.setitem(documents.TOOLS, "pdftotext", "khong-co-pdftotext")
    error = refused(b"%PDF-1.4\n", "a.pdf")
    assert error.code == "SCRIPT_READER_MISSING" and "poppler-utils" in error.message


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["bat-ky.doc", "bat-ky.pdf"]), st.binary(max_size=3000), st.integers(0, len(DOC)))
def test_arbitrary_bytes_named_doc_or_pdf_are_a_script_or_a_refusal(name, junk, cut):
    data = (DOC[:cut] + junk) if name.endswith(".doc") else b"%PDF-1.4\n" + junk
    try:
        script = parse_script(data, name)
    except ScriptRejected as exc:
        assert exc.code.isupper() and exc.message
        return
    assert script.body


# --- Word tables -------------------------------------------------------------------------------------


def test_docx_tables_are_read_row_by_row():
    def build(d):
        d.add_paragraph("Lịch tiếp dân:")
        table = d.add_table(rows=3, cols=3)
        for r, row in enumerate(
            [("Thứ", "Giờ", "Nơi tiếp"), ("Thứ hai", "7:30 – 11:00", ""), ("Thứ năm", "", "")]
        ):
            for c, text in enumerate(row):
                table.cell(r, c).text = text
        table.cell(1, 2).merge(table.cell(2, 2)).text = "Bộ phận một cửa"  # merged down: read once
        cell = table.cell(2, 1)
        cell.text = "13:30 – 17:00,"
        cell.add_paragraph("trừ ngày lễ")  # two paragraphs in a cell: one phrase

    script = parse_script(word_file(build), "lich.docx")
    assert paragraphs(script) == [
        "Lịch tiếp dân:",
        "Thứ, Giờ, Nơi tiếp\nThứ hai, 7:30 – 11:00, Bộ phận một cửa\nThứ năm, 13:30 – 17:00, trừ ngày lễ",
    ]


# --- titles --------------------------------------------------------------------------------------------


def test_a_docx_title_comes_from_its_first_heading_1():
    def build(d):
        d.add_paragraph("Phường Phước Hải")
        d.add_heading("Mua hàng an toàn trên sàn thương mại điện tử", 1)
        d.add_heading("Phần hai", 1)
        d.add_paragraph("Kính thưa bà con! Hôm nay chúng ta học cách mua hàng trên Shopee.")

    script = parse_script(word_file(build), "mua-hang.docx")
    assert script.meta.title is None  # the heading is in the body already: not spoken again as a title
    assert script.display_title == "Mua hàng an toàn trên sàn thương mại điện tử"


def test_a_docx_title_style_counts_as_a_heading_and_vntime_headings_are_converted():
    def build(d):
        d.add_paragraph("KÕ ho¹ch chuyÓn ®æi sè", style="Title").runs[0].font.name = ".VnTime"
        d.add_paragraph("Nội dung.")

    assert parse_script(word_file(build), "a.docx").display_title == "Kế hoạch chuyển đổi số"


def test_front_matter_and_properties_win_over_the_heading():
    def with_key_lines(d):
        d.add_paragraph("title: Tiêu đề do phòng ban đặt")
        d.add_heading("Tiêu đề trong văn bản", 1)
        d.add_paragraph("Nội dung.")

    assert parse_script(word_file(with_key_lines), "a.docx").display_title == "Tiêu đề do phòng ban đặt"

    def with_property(d):
        d.core_properties.title = "Tiêu đề trong thuộc tính"
        d.add_heading("Tiêu đề trong văn bản", 1)
        d.add_paragraph("Nội dung.")

    assert parse_script(word_file(with_property), "b.docx").display_title == "Tiêu đề trong thuộc tính"


@pytest.mark.parametrize(
    "text, title",
    [
        ("Kính thưa bà con!\n\nHôm nay hướng dẫn bà con cài VNeID.", "Hôm nay hướng dẫn bà con cài VNeID"),
        (
            "Kính thưa bà con, từ tuần sau phường thu phí qua ứng dụng.",
            "Từ tuần sau phường thu phí qua ứng dụng",
        ),
        ("Thưa quý vị và các bạn! Lừa đảo qua mạng. Bà con chú ý.", "Lừa đảo qua mạng"),
        (
            "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nĐộc lập - Tự do - Hạnh phúc\n\n"
            "THÔNG BÁO LỊCH CẮT ĐIỆN\n\nNội dung.",
            "THÔNG BÁO LỊCH CẮT ĐIỆN",
        ),
        (
            "Chào mừng ngày Chuyển đổi số quốc gia 10/10!\n\nNội dung.",
            "Chào mừng ngày Chuyển đổi số quốc gia 10/10!",
        ),
        (
            "Bà con lưu ý khi nhận cuộc gọi từ số lạ tự xưng là nhân viên điện lực yêu cầu thanh toán "
            "tiền điện gấp qua đường link không rõ nguồn gốc",
            "Bà con lưu ý khi nhận cuộc gọi từ số lạ tự xưng là nhân viên điện lực yêu cầu thanh toán…",
        ),
    ],
    ids=["greeting-line", "greeting-inline", "first-sentence", "national-motto", "celebration", "long"],
)
def test_a_script_without_front_matter_is_titled_by_its_first_line(text, title):
    script = parse_script(text.encode(), "tin-khong-dau.txt")
    assert script.meta.title is None
    assert script.display_title == title
    assert len(title) <= 91


def test_a_front_matter_title_wins_over_the_first_line():
    script = parse_script("---\ntitle: Mật khẩu an toàn\n---\nKính thưa bà con! Hôm nay…".encode(), "a.md")
    assert script.display_title == "Mật khẩu an toàn"


# --- where scripts are accepted ---------------------------------------------------------------------------


def test_the_inbox_takes_doc_and_pdf_files(tmp_path):
    for name in ("tin.doc", "TIN.PDF", "tin.docx", "~$tin.doc", ".tin.pdf", "README.pdf", "tin.rtf"):
        (tmp_path / name).write_bytes(b"x")
    found = sorted(p.name for p in tmp_path.iterdir() if is_script_file(p))
    assert found == ["TIN.PDF", "tin.doc", "tin.docx"]
