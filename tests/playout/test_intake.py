"""Script intake: the sample bulletins, every refusal, Word documents, and arbitrary bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playout.errors import ScriptRejected
from playout.intake import (
    MAX_SCRIPT_BYTES,
    SCRIPT_SUFFIXES,
    TOPICS,
    Script,
    ScriptMeta,
    parse_script,
    read_script,
)
from tests.conftest import SAMPLES
from tts.voices import ALL_VOICES

BODY = "Kính thưa bà con! Hôm nay chúng ta học cách tạo mật khẩu an toàn."


def md(front: str, body: str = BODY) -> bytes:
    return f"---\n{front}---\n{body}".encode()


def refused(data: bytes, name: str = "tin.md") -> ScriptRejected:
    with pytest.raises(ScriptRejected) as caught:
        parse_script(data, name)
    assert caught.value.context["filename"] == name.replace("\\", "/").rsplit("/", 1)[-1]
    return caught.value


def word_file(build) -> bytes:
    document = docx.Document()
    build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


# --- the sample bulletins ---------------------------------------------------------------------------


def test_sample_short_notice_without_front_matter():
    script = read_script(SAMPLES / "ngan.txt")
    assert script.meta == ScriptMeta()
    assert script.encoding == "utf-8" and script.warnings == ()
    # No front matter: the title is the first sentence after the greeting, not "Ngan" from the file name.
    assert script.heading == "Từ ngày 01/12/2026, Bộ phận một cửa phường nhận hồ sơ trực tuyến cả ngày thứ 7"
    assert script.display_title == script.heading
    assert script.body.startswith("Kính thưa bà con! Từ ngày 01/12/2026,")
    assert script.content_sha256 == hashlib.sha256((SAMPLES / "ngan.txt").read_bytes()).hexdigest()


def test_sample_public_services_account():
    script = read_script(SAMPLES / "tai-khoan-dich-vu-cong.md")
    assert script.meta == ScriptMeta(
        title="Tạo tài khoản trên Cổng Dịch vụ công quốc gia",
        topic="dich-vu-cong",
        department="Trung tâm Phục vụ hành chính công",
        link="https://dichvucong.gov.vn",
    )
    assert script.display_title == script.meta.title
    paragraphs = script.body.split("\n\n")
    assert paragraphs[0] == "Kính thưa bà con!"
    assert paragraphs[2].startswith("Bước 1: bà con mở trình duyệt")
    assert len(paragraphs) == 8 and "---" not in script.body


def test_sample_cashless_payment():
    script = read_script(SAMPLES / "thanh-toan-khong-tien-mat.txt")
    assert script.meta == ScriptMeta(
        title="Thanh toán tiền điện, nước qua ứng dụng",
        topic="thanh-toan",
        department="Phòng Kinh tế, Hạ tầng và Đô thị",
    )
    assert script.name == "thanh-toan-khong-tien-mat.txt"
    assert script.body.split("\n\n")[-1].startswith("Bà con nhớ đặt mật khẩu")


def test_topics_are_the_six_skill_groups():
    assert list(TOPICS) == [
        "thiet-bi-internet",
        "dich-vu-cong",
        "thanh-toan",
        "thuong-mai-dien-tu",
        "an-toan-thong-tin",
        "tim-kiem-ung-xu",
    ]
    assert SCRIPT_SUFFIXES == (".txt", ".md", ".docx", ".doc", ".pdf")


# --- front matter -----------------------------------------------------------------------------------


def test_every_field():
    script = parse_script(
        md(
            "title: Mật khẩu an toàn\ntopic: An-Toan-Thong-Tin\ndepartment: Công an phường\n"
            "link: https://vneid.gov.vn/huong-dan?a=1\nair_from: 01/12/2026\nair_until: 2026-12-31\n"
            "priority: Emergency\nvoice: vi-vn-hoaimyneural\n"
        ),
        "mat-khau.md",
    )
    assert script.meta == ScriptMeta(
        title="Mật khẩu an toàn",
        topic="an-toan-thong-tin",
        department="Công an phường",
        link="https://vneid.gov.vn/huong-dan?a=1",
        air_from=dt.date(2026, 12, 1),
        air_until=dt.date(2026, 12, 31),
        priority="emergency",
        voice="vi-VN-HoaiMyNeural",  # the whitelist's spelling, never the file's
    )
    assert script.body == BODY


def test_yaml_scalars_stay_the_text_the_operator_typed():
    meta = parse_script(md("title: 1:30\ndepartment: yes\n"), "a.md").meta
    assert (meta.title, meta.department) == ("1:30", "yes")
    assert parse_script(md("title: 2024\ntopic: ~\n"), "a.md").meta.title == "2024"


def test_front_matter_text_is_normalised():
    meta = parse_script(md("title: Hoà   bình\u200b và khoẻ mạnh\n"), "a.md").meta
    assert meta.title == "Hòa bình và khỏe mạnh"


def test_markup_characters_are_ordinary_text():
    script = parse_script("Giá <b>50.000đ</b> & 5 > 3 < 4".encode(), "a.txt")
    assert script.body == "Giá <b>50.000đ</b> & 5 > 3 < 4"


def test_body_paragraphs_are_separated_by_one_blank_line():
    data = "\r\n\r\n  Đoạn  một,\r\ndòng hai.  \r\n\r\n\r\n\r\n\tĐoạn hai.\r\n\r\n".encode()
    assert parse_script(data, "a.txt").body == "Đoạn một,\ndòng hai.\n\nĐoạn hai."


@pytest.mark.parametrize(
    "front, code, field",
    [
        ("tittle: Mật khẩu\n", "FRONT_MATTER_UNKNOWN_KEY", "tittle"),
        ("topic: lua-dao\n", "TOPIC_UNKNOWN", "topic"),
        ("voice: vi-VN-HoaiMy\n", "VOICE_UNKNOWN", "voice"),
        ("priority: urgent\n", "PRIORITY_INVALID", "priority"),
        ("air_from: 2026-02-30\n", "AIR_DATES_INVALID", "air_from"),
        ("air_until: 31-12-2026\n", "AIR_DATES_INVALID", "air_until"),
        ("air_from: 02/01/2027\nair_until: 01/01/2027\n", "AIR_DATES_INVALID", "air_from"),
        ("link: ftp://dichvucong.gov.vn\n", "LINK_INVALID", "link"),
        ("link: dichvucong.gov.vn\n", "LINK_INVALID", "link"),
        ("link: 'https://dichvucong.gov.vn/a b'\n", "LINK_INVALID", "link"),
        ("link: https://\n", "LINK_INVALID", "link"),
        ("link: https://dichvucong.gov.vn:99999/\n", "LINK_INVALID", "link"),
        (f"link: https://x.vn/{'a' * 500}\n", "LINK_INVALID", "link"),
        (f"title: {'Dài ' * 100}\n", "FIELD_INVALID", "title"),
        ("title: [Mật, khẩu]\n", "FIELD_INVALID", "title"),
        ("department: {a: b}\n", "FIELD_INVALID", "department"),
    ],
)
def test_each_bad_field_is_refused_with_its_code(front, code, field):
    error = refused(md(front))
    assert error.code == code
    assert [p["field"] for p in error.context["problems"]] == [field]
    assert error.message.startswith("Phần thông tin đầu của tệp tin.md có lỗi:")


def test_refusals_list_the_valid_choices():
    assert "có phải “title”?" in refused(md("tittle: x\n")).message
    assert all(slug in refused(md("topic: x\n")).message for slug in TOPICS)
    assert all(voice in refused(md("voice: x\n")).message for voice in ALL_VOICES)
    assert "emergency" in refused(md("priority: x\n")).message


def test_all_front_matter_problems_are_reported_at_once():
    error = refused(md("titel: a\ntopic: x\nvoice: y\npriority: z\nlink: mailto:a@b.vn\nair_from: hôm nay\n"))
    assert error.code == "FRONT_MATTER_UNKNOWN_KEY"  # the first problem's
    assert [p["code"] for p in error.context["problems"]] == [
        "FRONT_MATTER_UNKNOWN_KEY",
        "TOPIC_UNKNOWN",
        "VOICE_UNKNOWN",
        "PRIORITY_INVALID",
        "LINK_INVALID",
        "AIR_DATES_INVALID",
    ]
    assert "có 6 lỗi" in error.message
    assert error.to_dict()["problems"] == error.context["problems"]


@pytest.mark.parametrize(
    "data, line",
    [
        (b"---\ntitle: a\ntopic: [x\n---\nbody", 3),
        (b"\n---\ntitle: a\n  topic: b: c\n---\nbody", 4),
        (b"---\ntitle: a\nTitle: b\n---\nbody", 3),  # a repeated key
        (b"---\n- a\n- b\n---\nbody", 2),  # not a mapping
        (b"---\ntitle: a\nbody without a closing line", 1),
    ],
)
def test_broken_front_matter_is_refused_with_its_line(data, line):
    error = refused(data)
    assert error.code == "FRONT_MATTER_INVALID"
    assert error.context["line"] == line
    assert f"dòng {line}" in error.message


@pytest.mark.parametrize(
    "front",
    [
        "---\ntitle: !!python/object/apply:os.system [echo hacked]\n---\n",
        "---\nair_from: !!timestamp 2026-02-30\n---\n",
        "---\n" + "[" * 5000 + "\n---\n",  # nesting deep enough to exhaust the parser's recursion
        "---\n" + "# chú thích\n" * 7000 + "---\n",  # over 64 KB
    ],
)
def test_dangerous_or_huge_front_matter_is_refused(front):
    assert refused((front + BODY).encode()).code == "FRONT_MATTER_INVALID"


def test_an_alias_bomb_is_refused_without_expanding_it():
    bomb = "a: &a [x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
        f"k{i}: &k{i} [{', '.join(['*b' if i == 0 else f'*k{i - 1}'] * 9)}]\n" for i in range(10)
    )
    error = refused(md(bomb + "title: *k9\n"))
    assert error.code == "FRONT_MATTER_UNKNOWN_KEY"
    assert {p["field"] for p in error.context["problems"]} >= {"a", "b", "title"}


# --- whole-file refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"   \r\n\t\n", "\ufeff  \n".encode(), md("title: Chỉ có tiêu đề\n", "\n\n")]
)
def test_empty_scripts_are_refused(data):
    assert refused(data).code == "SCRIPT_EMPTY"


def test_too_large_is_refused_before_decoding():
    error = refused(b"a" * (MAX_SCRIPT_BYTES + 1), "dai.txt")
    assert error.code == "SCRIPT_TOO_LARGE" and "1 MB" in error.message
    assert parse_script(b"a" * MAX_SCRIPT_BYTES, "vua.txt").body == "a" * MAX_SCRIPT_BYTES


def test_read_script_reads_no_more_than_the_limit(tmp_path):
    # A sparse 8 GB file: reading it whole would exhaust memory long before the refusal.
    big = tmp_path / "lon.txt"
    with big.open("wb") as fh:
        fh.truncate(8 * 1024**3)
    with pytest.raises(ScriptRejected) as caught:
        read_script(big)
    assert caught.value.code == "SCRIPT_TOO_LARGE"


@pytest.mark.parametrize("missing", [True, False])
def test_unreadable_path(tmp_path, missing):
    with pytest.raises(ScriptRejected) as caught:
        read_script(tmp_path / "khong-co.txt" if missing else tmp_path)
    assert caught.value.code == "SCRIPT_UNREADABLE"


@pytest.mark.parametrize("name", ["tin.rtf", "tin.odt", "tin", "tin.txt.exe", "tin.docx.txt.zip"])
def test_unsupported_file_types(name):
    error = refused(BODY.encode(), name)
    assert error.code == "SCRIPT_TYPE_UNSUPPORTED"
    assert "Chỉ nhận .txt, .md, .docx, .doc hoặc .pdf" in error.message


def test_a_name_that_is_only_a_suffix_is_unsupported():
    # Leading dots are dropped (no hidden files), so ".txt" is a file called "txt".
    with pytest.raises(ScriptRejected) as caught:
        parse_script(BODY.encode(), ".txt")
    assert (caught.value.code, caught.value.context["filename"]) == ("SCRIPT_TYPE_UNSUPPORTED", "txt")


@pytest.mark.parametrize("data", [b"\x00\x01\x02binary", b"%PDF-1.4\n", bytes(range(1, 32)) * 10])
def test_binary_is_refused(data):
    error = refused(data, "tin.txt")
    assert error.code == "SCRIPT_NOT_TEXT"
    assert error.message.startswith("Tệp tin.txt: ")


def test_unknown_encoding_is_refused_with_advice():
    vni = "Kính thöa baø con, hoâm nay chuùng ta hoïc caùch taïo maät khaåu.".encode("cp1252")
    error = refused(vni, "vni.txt")
    assert error.code == "SCRIPT_ENCODING_UNKNOWN"
    assert "UTF-8" in error.message


def test_file_name_is_sanitised():
    script = parse_script(BODY.encode(), "../../etc/C:\\Users\\van thu\\\x1b..ti\u0301n moi.MD")
    assert script.name == "tín moi.MD"
    assert script.display_title == "Hôm nay chúng ta học cách tạo mật khẩu an toàn"  # from the text


# --- legacy encodings and clean-up through the whole intake ------------------------------------------


def test_tcvn3_file_with_front_matter():
    data = (
        b"---\ntitle: Th\xb5nh ph\xe8 s\xe8\n---\n\xf1y ban nh\xa9n d\xa9n ph\xad\xeang th\xad\xeang tr\xf9c."
    )
    script = parse_script(data, "tcvn3.txt")
    assert script.encoding == "tcvn3"
    assert script.meta.title == "Thành phố số"
    assert script.body == "Ủy ban nhân dân phường thường trực."
    assert any("TCVN3" in w for w in script.warnings)


def test_windows_1258_and_utf16_files():
    text = "Bà con hãy cảnh giác với cuộc gọi lạ."
    assert parse_script(text.encode("utf-16"), "u16.txt").encoding == "utf-16"
    script = parse_script(("---\ntopic: an-toan-thong-tin\n---\n" + text).encode("cp1258", "ignore"), "w.txt")
    assert script.encoding == "windows-1258"
    assert script.meta.topic == "an-toan-thong-tin"


def test_control_characters_are_removed_with_a_warning():
    script = parse_script(f"{BODY}\x07\x1b[0m".encode(), "a.txt")
    assert script.body == BODY + "[0m"
    assert script.warnings == ("Đã bỏ 2 ký tự điều khiển hoặc ký tự ẩn không đọc được.",)


# --- Word documents ---------------------------------------------------------------------------------


def test_docx_paragraphs_tables_and_key_lines():
    def build(d):
        d.add_paragraph("")
        d.add_paragraph("Title: Cảnh giác lừa đảo qua điện thoại")
        d.add_paragraph("topic: an-toan-thong-tin")
        d.add_paragraph("link: https://canhbao.khonggianmang.vn")
        d.add_paragraph("Kính thưa bà con!")
        table = d.add_table(rows=3, cols=2)
        table.cell(0, 0).merge(table.cell(1, 0)).text = "Không bấm link lạ"
        table.cell(0, 1).text = "Không cho mượn điện thoại"
        table.cell(1, 1).text = "Gọi 113 khi bị lừa"
        table.cell(2, 0).merge(table.cell(2, 1)).text = "Báo công an phường"
        d.add_paragraph("Lưu ý: không cung cấp mã OTP.")

    script = parse_script(word_file(build), "lua-dao.docx")
    assert script.encoding == "docx"
    assert script.meta == ScriptMeta(
        title="Cảnh giác lừa đảo qua điện thoại",
        topic="an-toan-thong-tin",
        link="https://canhbao.khonggianmang.vn",
    )
    assert script.body.split("\n\n") == [
        "Kính thưa bà con!",
        # The table is one paragraph, a line per row; merged cells, across or down, are read once.
        "Không bấm link lạ, Không cho mượn điện thoại\nGọi 113 khi bị lừa\nBáo công an phường",
        "Lưu ý: không cung cấp mã OTP.",
    ]


def test_docx_yaml_front_matter():
    def build(d):
        for line in ("---", "title: Mua hàng trên sàn", "priority: priority", "---", "Kính thưa bà con!"):
            d.add_paragraph(line)

    meta = parse_script(word_file(build), "a.docx").meta
    assert (meta.title, meta.priority) == ("Mua hàng trên sàn", "priority")


def test_docx_core_properties_fill_in_when_there_is_no_front_matter():
    def build(d):
        d.add_paragraph("Hôm nay hướng dẫn bà con cài ứng dụng VNeID.")
        d.core_properties.title = "Cài VNeID"
        d.core_properties.keywords = "VNeID, dich-vu-cong"
        d.core_properties.author = "Công an phường"

    script = parse_script(word_file(build), "a.docx")
    assert script.meta == ScriptMeta(title="Cài VNeID", topic="dich-vu-cong", department="Công an phường")

    def category_only(d):
        d.add_paragraph("Nội dung")
        d.core_properties.keywords = "không phải chủ đề"
        d.core_properties.category = "thuong-mai-dien-tu"

    assert parse_script(word_file(category_only), "b.docx").meta.topic == "thuong-mai-dien-tu"


def test_docx_front_matter_values_are_validated():
    def build(d):
        d.add_paragraph("topic: mua-sam")
        d.add_paragraph("voice: giọng lạ")
        d.add_paragraph("Nội dung")

    error = refused(word_file(build), "a.docx")
    assert [p["code"] for p in error.context["problems"]] == ["TOPIC_UNKNOWN", "VOICE_UNKNOWN"]


def test_docx_misspelt_key_at_the_top_is_refused_but_ordinary_colons_are_body():
    def misspelt(d):
        d.add_paragraph("Tittle: Mật khẩu")
        d.add_paragraph("Nội dung")

    assert refused(word_file(misspelt), "a.docx").code == "FRONT_MATTER_UNKNOWN_KEY"

    def colon(d):
        d.add_paragraph("Lưu ý: không cung cấp mã OTP.")
        d.add_paragraph("Note: gọi 113.")

    assert parse_script(word_file(colon), "b.docx").body == "Lưu ý: không cung cấp mã OTP.\n\nNote: gọi 113."


def test_docx_runs_in_vntime_fonts_are_converted():
    def build(d):
        p = d.add_paragraph()
        p.add_run("ñy ban nh©n d©n ph­êng").font.name = ".VnTime"
        p.add_run(" thông báo: ")
        p.add_run("ñy ban").font.name = ".VnTime"
        d.add_paragraph().add_run("kÕ ho¹ch chuyÓn ®æi sè").font.name = ".VnTimeH"
        d.add_paragraph("Giá cá hôm nay")  # Unicode with Latin-1 letters: untouched

    script = parse_script(word_file(build), "a.docx")
    assert (
        script.body == "Ủy ban nhân dân phường thông báo: ủy ban\n\nKẾ HOẠCH CHUYỂN ĐỔI SỐ\n\nGiá cá hôm nay"
    )
    assert any(".VnTime" in w for w in script.warnings)


def test_docx_vntime_set_in_the_paragraph_style_counts_too():
    def build(d):
        d.styles["Normal"].font.name = ".VnArial"
        d.add_paragraph("Bµ con cÇn b¶o vÖ m· OTP.")
        d.add_paragraph().add_run("Giá cá").font.name = "Times New Roman"

    assert parse_script(word_file(build), "a.docx").body == "Bà con cần bảo vệ mã OTP.\n\nGiá cá"


def test_docx_tcvn3_typed_text_without_font_information_is_repaired():
    def build(d):
        d.add_paragraph("KÝnh th­a bµ con! Tõ ngµy 01/12/2026, Bé phËn mét cöa ph­êng nhËn hå s¬ trùc tuyÕn.")

    script = parse_script(word_file(build), "a.docx")
    assert (
        script.body == "Kính thưa bà con! Từ ngày 01/12/2026, Bộ phận một cửa phường nhận hồ sơ trực tuyến."
    )


def test_empty_docx_is_empty():
    assert refused(word_file(lambda d: d.add_paragraph("  ")), "a.docx").code == "SCRIPT_EMPTY"


def zip_bytes(entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def encrypted_flag(data: bytes) -> bytes:
    # Set bit 0 (encrypted) of every local and central header's flags, as a password-protected zip has.
    data = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + offset] |= 1
            start += 4
    return bytes(data)


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a zip",
        zip_bytes({"xl/workbook.xml": b"<workbook/>"}),  # some other zip
        zip_bytes({"[Content_Types].xml": b"<Types"}),
        encrypted_flag(word_file(lambda d: d.add_paragraph("Mật"))),
        word_file(lambda d: d.add_paragraph("Bị cắt"))[:-200],  # truncated download
    ],
    ids=["garbage", "not-word", "broken-xml", "encrypted", "truncated"],
)
def test_broken_docx_is_refused(data):
    error = refused(data, "hong.docx")
    assert error.code == "DOCX_INVALID"
    assert ".docx" in error.message


def test_an_ole_file_named_docx_goes_to_the_word_97_reader():
    # A password-protected .docx or an old .doc renamed: antiword reads the latter (test_intake_formats),
    # and refuses anything else it finds in the container.
    error = refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "hong.docx")
    assert error.code == "DOC_INVALID"
    assert "mật khẩu" in error.message and ".docx" in error.message


# --- Word files built to hurt: measured while read, never trusted from their headers -------------------


def word_with_body(body_xml: bytes, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A real python-docx package whose document body is ``body_xml`` (honest zip headers)."""
    template = zipfile.ZipFile(io.BytesIO(word_file(lambda d: None)))
    head = template.read("word/document.xml")
    start = head[: head.index(b"<w:body>") + len(b"<w:body>")]
    parts = {i.filename: template.read(i.filename) for i in template.infolist()}
    parts["word/document.xml"] = start + body_xml + b"</w:body></w:document>"
    return zip_bytes({**parts, **(extra or {})})


def lying_sizes(data: bytes, member: str, size: int) -> bytes:
    """Patch the uncompressed size that the local and central headers of ``member`` declare."""
    data = bytearray(data)
    name = member.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            if data[start + name_at : start + name_at + len(name)] == name:
                data[start + size_at : start + size_at + 4] = size.to_bytes(4, "little")
            start += 4
    return bytes(data)


def timed_refusal(data: bytes, name: str = "bom.docx") -> tuple[ScriptRejected, float]:
    import time

    start = time.monotonic()
    error = refused(data, name)
    return error, time.monotonic() - start


def test_a_part_that_inflates_past_the_cap_is_refused_while_reading():
    bomb = word_with_body(b"<w:p/>" * 1_500_000)  # 9 MB of XML in a 50 KB file: under the old header check
    assert len(bomb) < 100_000
    error, seconds = timed_refusal(bomb)  # (it took python-docx minutes, and gigabytes)
    assert error.code == "SCRIPT_TEXT_TOO_LONG" and "đoạn" in error.message and seconds < 2
    text = word_with_body(b"<w:p><w:r><w:t>" + b"a" * (9 * 2**20) + b"</w:t></w:r></w:p>")
    error, seconds = timed_refusal(text)
    assert error.code == "DOCX_TOO_LARGE" and "giải nén" in error.message and seconds < 2
    assert "word/document.xml" in error.detail


def test_zip_headers_that_lie_about_sizes_are_not_believed():
    honest = word_with_body(b"<w:p><w:r><w:t>" + b"a" * (20 * 2**20) + b"</w:t></w:r></w:p>")
    bomb = lying_sizes(honest, "word/document.xml", 1_000)  # "1 kB", really 20 MB
    error, seconds = timed_refusal(bomb)
    assert error.code in ("DOCX_TOO_LARGE", "DOCX_INVALID") and seconds < 2
    # Many small parts that add up: the running total over every member counts, not each header.
    crowd = word_with_body(
        b"<w:p><w:r><w:t>Tin.</w:t></w:r></w:p>",
        extra={f"word/media/x{i}.bin": bytes(2**20) for i in range(40)},
    )
    error, seconds = timed_refusal(crowd)
    assert error.code == "DOCX_TOO_LARGE" and seconds < 2


def test_sixty_thousand_paragraphs_are_refused_quickly():
    bomb = word_with_body(b"<w:p><w:r><w:t>Tin.</w:t></w:r></w:p>" * 60_000)
    assert len(bomb) < 60_000
    error, seconds = timed_refusal(bomb)
    assert error.code == "SCRIPT_TEXT_TOO_LONG" and "đoạn" in error.message and seconds < 1


def test_characters_are_capped_too():
    huge = "Kính thưa bà con. " * 250_000  # 4.5 M characters in 3 paragraphs
    paragraph = f"<w:p><w:r><w:t>{huge[: len(huge) // 3]}</w:t></w:r></w:p>".encode()
    error, seconds = timed_refusal(word_with_body(paragraph * 3))
    assert error.code in ("SCRIPT_TEXT_TOO_LONG", "DOCX_TOO_LARGE") and seconds < 3


def test_a_long_but_honest_docx_is_still_read():
    body = b"".join(f"<w:p><w:r><w:t>Đoạn {i}. Xin cảm ơn.</w:t></w:r></w:p>".encode() for i in range(300))
    script = parse_script(word_with_body(body), "dai.docx")
    assert script.body.count("\n\n") == 299


# --- anything at all --------------------------------------------------------------------------------


def _accepted_or_refused(data: bytes, name: str) -> None:
    try:
        script = parse_script(data, name)
    except ScriptRejected as exc:
        assert exc.code.isupper() and exc.message
        return
    assert isinstance(script, Script) and script.body
    assert script.content_sha256 == hashlib.sha256(data).hexdigest()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_are_a_script_or_a_refusal(data):
    _accepted_or_refused(data, "bat-ky.txt")


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=300), st.text(max_size=200), st.sampled_from(["utf-8", "utf-16", "cp1258", "latin-1"])
)
def test_arbitrary_front_matter_is_a_script_or_a_refusal(front, body, encoding):
    _accepted_or_refused(f"---\n{front}\n---\n{body}".encode(encoding, "replace"), "bat-ky.md")


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=500))
def test_arbitrary_bytes_named_docx_are_a_script_or_a_refusal(data):
    _accepted_or_refused(b"PK\x03\x04" + data, "bat-ky.docx")


# --- Word files are read in a child process ----------------------------------------------------------------

WORD_PROBE = """
import json, sys
from playout.intake import parse_script
script = parse_script(sys.stdin.buffer.read(), "tin.docx")
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"docx", "lxml"})
print(json.dumps([script.body.splitlines()[0], loaded], ensure_ascii=False))
"""


def test_a_word_file_is_read_in_a_child_and_its_parser_never_enters_the_caller():
    import json
    import subprocess
    import sys

    data = word_file(lambda d: d.add_paragraph("Bà con chú ý lịch phun thuốc."))
    out = subprocess.run(
        [sys.executable, "-c", WORD_PROBE], input=data, capture_output=True, check=True, timeout=60
    )
    first_line, loaded = json.loads(out.stdout)
    assert first_line == "Bà con chú ý lịch phun thuốc." and loaded == []


def test_a_word_reader_that_dies_or_hangs_is_a_clear_refusal(monkeypatch):
    from playout import wordfile

    data = word_file(lambda d: d.add_paragraph("Bà con chú ý."))
    monkeypatch.setattr(wordfile, "MEMORY_MB", 12)  # too little for Python itself: the reader dies
    died = refused(data, "tin.docx")
    assert died.code == "DOCX_INVALID" and "lưu lại dạng .docx" in died.message
    assert died.detail.startswith(("exit status", "signal"))
    monkeypatch.setattr(wordfile, "MEMORY_MB", 512)
    monkeypatch.setattr(wordfile, "TIMEOUT_S", 0.05)  # a file that takes forever to parse
    hung = refused(data, "tin.docx")
    assert hung.code == "DOCX_INVALID" and hung.detail == "timeout 0s"
