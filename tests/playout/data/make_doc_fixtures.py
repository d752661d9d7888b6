"""Build the Word 97–2003 (.doc) fixtures in this folder.  Run once, by hand; the .doc files are committed.

    apt-get install libreoffice-writer-nogui        # LibreOffice, for this script only
    .venv/bin/python tests/playout/data/make_doc_fixtures.py

Each document is written as a .docx with python-docx, then saved as a genuine Word 97 binary file by
LibreOffice's "MS Word 97" export filter (an OLE compound file with a WordDocument stream, a piece table
and a SummaryInformation stream, as Word writes them).  LibreOffice is not a test dependency: the tests
read the committed files with antiword, the tool the station uses.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import docx

HERE = Path(__file__).resolve().parent

LONG_CELL = (
    "Không bấm vào đường link lạ gửi qua tin nhắn, Zalo hay Facebook, kể cả khi người gửi xưng là cán bộ "
    "ngân hàng hoặc công an"
)


def scam_warning(d) -> None:
    """A bulletin as a police office sends it: a heading, a greeting, paragraphs, a list, a table."""
    d.core_properties.author = "Công an phường"
    d.add_heading("Cảnh giác cuộc gọi giả danh công an", 1)
    d.add_paragraph("Kính thưa bà con!")
    d.add_paragraph(
        "Thời gian gần đây, nhiều người dân trên địa bàn phường nhận được cuộc gọi tự xưng là cán bộ "
        "công an, yêu cầu cài ứng dụng lạ hoặc chuyển tiền vào “tài khoản tạm giữ” để “xác minh”. Đây là "
        "thủ đoạn lừa đảo chiếm đoạt tài sản."
    )
    d.add_paragraph(
        "Công an phường khuyến cáo: cơ quan công an không làm việc qua điện thoại, không yêu cầu chuyển "
        "tiền, không đề nghị cung cấp mã OTP hay mật khẩu ứng dụng ngân hàng."
    )
    d.add_paragraph("Bà con cần nhớ ba điều sau:")
    d.add_paragraph("Không cung cấp mã OTP cho bất kỳ ai.", style="List Bullet")
    d.add_paragraph("Không cài ứng dụng theo hướng dẫn của người lạ.", style="List Bullet")
    d.add_paragraph("Gọi ngay cho Công an phường khi nghi ngờ.", style="List Bullet")
    table = d.add_table(rows=3, cols=2)
    rows = [
        ("Khi nhận cuộc gọi lạ", "Gác máy, gọi lại số tổng đài chính thức"),
        ("Khi đã lỡ chuyển tiền", "Báo ngay ngân hàng | khóa tài khoản"),
        (LONG_CELL, "Xóa tin nhắn"),
    ]
    for r, (left, right) in enumerate(rows):
        table.cell(r, 0).text = left
        table.cell(r, 1).text = right
    p = d.add_paragraph("Mọi thông tin xin liên hệ: Công an phường, số điện thoại 0258 3822 113.")
    p.add_run().add_break()  # a manual line break (Shift+Enter) inside the paragraph
    p.add_run("Trực ban 24/24 giờ.")
    d.add_paragraph(
        "Xin cảm ơn bà con đã lắng nghe. Chúc bà con một ngày an toàn trên không gian mạng, và hãy chia sẻ "
        "thông tin này tới người thân, nhất là người cao tuổi trong gia đình."
    )


def vntime(d) -> None:
    """Text typed in the .VnTime font with a TCVN3 keyboard, as many ward offices still do: the bytes are
    TCVN3 codes that Word keeps as the Latin-1 look-alikes ("ñy ban" for "Ủy ban").  The untoned "ư" is
    TCVN3's 0xAD, U+00AD: LibreOffice saves it as Word's optional hyphen, so the test puts it back (see
    test_intake_formats); the other letters are as a Word user's file has them."""
    d.styles["Normal"].font.name = ".VnTime"
    d.add_paragraph("Th«ng b¸o cña Bé phËn mét cöa")
    for _ in range(6):  # long enough for the WordDocument stream to leave OLE's small-stream area
        d.add_paragraph(
            "Tõ ngµy 01/12/2026, Bé phËn mét cöa ph\u00adêng nhËn hå s¬ trùc tuyÕn c¶ ngµy thø b¶y. "
            "Bµ con cÇn b¶o vÖ m· OTP, kh«ng cho ai biÕt mËt khÈu."
        )


def short(d) -> None:
    """Two lines: LibreOffice keeps so small a WordDocument stream in OLE's small-stream area, which
    antiword does not read (Word itself always writes a larger one)."""
    d.add_paragraph("Kính thưa bà con!")
    d.add_paragraph("Chiều nay cắt điện từ 14 giờ đến 16 giờ.")


FIXTURES = {"canh-giac-lua-dao.doc": scam_warning, "vntime.doc": vntime, "ngan-libreoffice.doc": short}


def main() -> int:
    soffice = shutil.which("soffice")
    if not soffice:
        print("LibreOffice is needed: apt-get install libreoffice-writer-nogui", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in FIXTURES.items():
            document = docx.Document()
            build(document)
            source = Path(tmp) / Path(name).with_suffix(".docx").name
            document.save(source)
            subprocess.run(
                [soffice, "--headless", "--convert-to", "doc:MS Word 97", "--outdir", tmp, str(source)],
                check=True,
                capture_output=True,
                timeout=120,
            )
            shutil.copyfile(source.with_suffix(".doc"), HERE / name)
            print(f"{name}: {(HERE / name).stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
