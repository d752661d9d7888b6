"""Decoding script bytes: every encoding path, built from real sentences, checked for exact round trips."""

from __future__ import annotations

import codecs
import subprocess
import unicodedata

import pytest

from playout.errors import ScriptRejected
from playout.textcodec import (
    TCVN3_TABLE,
    decode_script_bytes,
    is_vietnamese_syllable,
    normalize_vietnamese,
    repair_tcvn3_mojibake,
    syllable_score,
    tcvn3_to_unicode,
)
from tests.conftest import SAMPLES, require

TONES = "\u0300\u0309\u0303\u0301\u0323"
LOWER_VOWELS = "aăâeêioôơuưy"
#: The 67 lowercase Vietnamese letters outside ASCII (60 toned vowels + ă â ê ô ơ ư đ).
LOWER_LETTERS = [unicodedata.normalize("NFC", v + t) for v in LOWER_VOWELS for t in TONES] + list("ăâêôơưđ")

# Real sentences (from the sample bulletins and the ward plans).  None has a toned capital letter in the
# middle of a sentence: TCVN3 cannot encode one, so those could not round-trip through it.
SENTENCES = [
    "Kính thưa bà con! Từ ngày 01/12/2026, Bộ phận một cửa phường nhận hồ sơ trực tuyến cả ngày thứ 7.",
    "Thanh toán không dùng tiền mặt giúp tiết kiệm thời gian đi lại, tránh thất lạc tiền, và được lưu lại "
    "lịch sử để tra cứu khi cần.",
    "Lưu ý: chỉ truy cập đúng địa chỉ có đuôi gov.vn. Không cung cấp mật khẩu, mã PIN cho bất kỳ ai, kể cả "
    "người xưng là cán bộ.",
    "Bà con nhớ đặt mật khẩu ứng dụng khó đoán, không cho người khác mượn điện thoại để chuyển tiền.",
    "Đổi mới phương thức tuyên truyền thông qua hệ thống loa truyền thanh, giúp người dân tiếp cận kiến "
    "thức số một cách thường xuyên, dễ hiểu, dễ nhớ.",
]

TCVN3_FROM_UNICODE = {char: code for code, char in TCVN3_TABLE.items()}


def to_tcvn3(text: str) -> bytes:
    """Encode like the ABC keyboard driver would: VN3 bytes; punctuation via Windows-1252.

    VN3 has no toned capitals, so "Ứ" is typed as "ứ", as it was on a .VnTime keyboard.
    """
    out = bytearray()
    for char in text:
        if char.isascii():
            out.append(ord(char))
        elif char in TCVN3_FROM_UNICODE:
            out.append(TCVN3_FROM_UNICODE[char])
        elif char.lower() in TCVN3_FROM_UNICODE:
            out.append(TCVN3_FROM_UNICODE[char.lower()])
        else:
            out += char.encode("cp1252")
    return bytes(out)


def to_cp1258(text: str) -> bytes:
    """Encode like Windows does: precomposed where cp1258 has the letter, else letter + combining tone."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", char)
            base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in TONES))
            out += (base + "".join(c for c in decomposed if c in TONES)).encode("cp1258")
    return bytes(out)


def sample_body(name: str) -> str:
    text = (SAMPLES / name).read_text("utf-8")
    return text.split("---\n", 2)[2] if text.startswith("---") else text


# --- the TCVN3 table --------------------------------------------------------------------------------


def test_tcvn3_table_has_every_lowercase_letter_and_the_seven_capitals():
    assert len(TCVN3_TABLE) == 74
    assert sorted(TCVN3_TABLE.values()) == sorted(LOWER_LETTERS + list("ĂÂÊÔƠƯĐ"))
    assert all(0xA1 <= code <= 0xFE for code in TCVN3_TABLE)


def test_tcvn3_table_agrees_with_glibc_iconv():
    # An independent implementation of TCVN 5712 (glibc's VN1 superset agrees with VN3 on these codes).
    codes = bytes(sorted(TCVN3_TABLE))
    out = subprocess.run(
        [require("iconv"), "-f", "TCVN5712-1", "-t", "UTF-8"], input=codes, capture_output=True, check=True
    ).stdout.decode("utf-8")
    assert unicodedata.normalize("NFC", out) == "".join(TCVN3_TABLE[c] for c in sorted(TCVN3_TABLE))


def test_tcvn3_known_words():
    assert tcvn3_to_unicode("ñy ban nh©n d©n ph­êng", starts_sentence=False) == "ủy ban nhân dân phường"
    assert tcvn3_to_unicode("Hµ Néi") == "Hà Nội"
    assert tcvn3_to_unicode(b"Th\xb5nh ph\xe8 H\xb5 N\xe9i") == "Thành phố Hà Nội"


def test_tcvn3_capitals_typed_with_caps_lock_and_at_sentence_start():
    assert tcvn3_to_unicode("KÕ HO¹CH") == "KẾ HOẠCH"
    assert tcvn3_to_unicode("§¹I HéI §¶NG") == "ĐẠI HỘI ĐẢNG"
    # VN3 has no "Ủ": a sentence opening with it was typed "ñ"; mid-sentence it stays as typed.
    assert tcvn3_to_unicode("ñy ban x· ®· häp. ñy ban lµm viÖc.") == "Ủy ban xã đã họp. Ủy ban làm việc."
    assert tcvn3_to_unicode("ñy ban", starts_sentence=False) == "ủy ban"
    # One capital is a capitalised word, not Caps Lock.
    assert tcvn3_to_unicode("Sè: /KH-UBND") == "Số: /KH-UBND"


# --- decoding paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sentence", SENTENCES)
def test_tcvn3_bytes_round_trip(sentence):
    text, encoding, warnings = decode_script_bytes(to_tcvn3(sentence))
    assert (text, encoding) == (sentence, "tcvn3")
    assert any("TCVN3" in w for w in warnings)


@pytest.mark.parametrize("sentence", SENTENCES)
def test_cp1258_bytes_round_trip(sentence):
    data = to_cp1258(sentence)
    # Python's codec yields combining tone marks; the result must still be NFC.
    assert unicodedata.normalize("NFC", data.decode("cp1258")) == sentence != data.decode("cp1258")
    text, encoding, warnings = decode_script_bytes(data)
    assert (text, encoding) == (sentence, "windows-1258")
    assert any("Windows-1258" in w for w in warnings)


@pytest.mark.parametrize("name", ["ngan.txt", "tai-khoan-dich-vu-cong.md", "thanh-toan-khong-tien-mat.txt"])
@pytest.mark.parametrize("encode, encoding", [(to_tcvn3, "tcvn3"), (to_cp1258, "windows-1258")])
def test_whole_sample_bulletins_round_trip_through_legacy_encodings(name, encode, encoding):
    body = sample_body(name)
    text, found, _ = decode_script_bytes(encode(body))
    assert found == encoding
    assert text == body


@pytest.mark.parametrize(
    "data, encoding",
    [
        (SENTENCES[0].encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + SENTENCES[0].encode("utf-8"), "utf-8-sig"),
        (SENTENCES[0].encode("utf-16"), "utf-16"),
        (codecs.BOM_UTF16_LE + SENTENCES[0].encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + SENTENCES[0].encode("utf-16-be"), "utf-16"),
    ],
)
def test_unicode_encodings(data, encoding):
    assert decode_script_bytes(data) == (SENTENCES[0], encoding, [])


def test_decomposed_unicode_becomes_nfc():
    decomposed = unicodedata.normalize("NFD", SENTENCES[1])
    assert decomposed != SENTENCES[1]
    assert decode_script_bytes(decomposed.encode("utf-8"))[0] == SENTENCES[1]


def test_utf8_with_a_few_broken_bytes_is_read_as_utf8():
    data = SENTENCES[0].encode("utf-8") + b" \xff\xfe " + SENTENCES[3].encode("utf-8")
    text, encoding, warnings = decode_script_bytes(data)
    assert encoding == "utf-8"
    assert text == SENTENCES[0] + "  " + SENTENCES[3]
    assert any("lỗi mã" in w for w in warnings)


def test_legacy_text_without_accented_words_is_accepted():
    text, encoding, _ = decode_script_bytes("Kinh thua ba con “VNeID”".encode("cp1252"))
    assert (text, encoding) == ("Kinh thua ba con “VNeID”", "windows-1258")


def test_syllable_scores_separate_the_encodings_clearly():
    for name in ("ngan.txt", "tai-khoan-dich-vu-cong.md", "thanh-toan-khong-tien-mat.txt"):
        body = sample_body(name)
        right, total = syllable_score(body)
        assert right / total > 0.95
        for wrong in (
            tcvn3_to_unicode(to_cp1258(body)),
            unicodedata.normalize("NFC", to_tcvn3(body).decode("cp1258")),
        ):
            valid, total = syllable_score(wrong)
            assert valid / total < 0.35


# --- TCVN3 look-alikes inside Unicode ---------------------------------------------------------------


def test_tcvn3_typed_then_saved_as_unicode_is_converted():
    body = sample_body("tai-khoan-dich-vu-cong.md")
    mojibake = to_tcvn3(body).decode("cp1252")
    assert mojibake.startswith("KÝnh th­a bµ con!")
    text, encoding, warnings = decode_script_bytes(mojibake.encode("utf-8"))
    assert encoding == "utf-8"
    assert text == body
    assert any("TCVN3" in w for w in warnings)


def test_a_capital_inside_a_word_is_a_tell_tale_sign_too():
    # "ChÝnh quyÒn sè" holds only letters that also exist in Unicode Vietnamese, but no real word has a
    # capital in its middle.
    assert repair_tcvn3_mojibake("- ChÝnh quyÒn sè:") == ("- Chính quyền số:", 1)


@pytest.mark.parametrize("encode, encoding", [(to_tcvn3, "tcvn3"), (to_cp1258, "windows-1258")])
def test_acronyms_do_not_sway_the_vote_on_short_lines(encode, encoding):
    assert decode_script_bytes(encode("- TTĐU; TT HĐND phường;"))[:2] == ("- TTĐU; TT HĐND phường;", encoding)


def test_mixed_document_converts_only_the_tcvn3_lines():
    lines = [*SENTENCES, *sample_body("thanh-toan-khong-tien-mat.txt").split("\n")]
    mixed = [to_tcvn3(line).decode("cp1252") if i % 2 else line for i, line in enumerate(lines)]
    text, converted = repair_tcvn3_mojibake("\n".join(mixed))
    assert text == "\n".join(lines)
    assert converted == sum(1 for i, line in enumerate(lines) if i % 2 and not line.isascii())


@pytest.mark.parametrize(
    "genuine",
    [
        "© 2026 UBND phường Đông Hải. Giá 5 × 3 = 15 nghìn đồng.",
        "Phong trào «Bình dân học vụ số» tại các tổ dân phố¹ và khu phố.",
        "Cà phê, bánh mì, cá kho, là những món ăn quen thuộc.",
        "Giáo sư Müller và bà Noël đến thăm phường · 30°C",
        "Nhiệt độ ½ độ; mục § 3 của quy định.",
    ],
)
def test_genuine_unicode_is_left_alone(genuine):
    assert repair_tcvn3_mojibake(genuine) == (genuine, 0)
    assert decode_script_bytes(genuine.encode("utf-8"))[0] == genuine


# --- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ("hoà", "hòa"),
        ("khoẻ", "khỏe"),
        ("thuỷ", "thủy"),
        ("uỷ ban", "ủy ban"),
        ("Uỷ ban", "Ủy ban"),
        ("HOÀ BÌNH", "HÒA BÌNH"),
        ("hoàng", "hoàng"),
        ("toán", "toán"),
        ("thuyết", "thuyết"),
        ("huỳnh", "huỳnh"),
        ("quý", "quý"),
        ("qúa", "quá"),
        ("giá", "giá"),
        ("gìn giữ", "gìn giữ"),
        ("người", "người"),
        ("khuỷu tay", "khuỷu tay"),
        ("khoái", "khoái"),
        ("mùa", "mùa"),
        ("thuở", "thuở"),
        ("café", "café"),
    ],
)
def test_tone_marks_follow_the_traditional_placement(given, expected):
    assert normalize_vietnamese(given) == expected


def test_normalize_line_ends_tabs_and_invisible_characters():
    text = "Dòng một\r\nDòng\thai\rDòng ba\u2028\u202eẩn\u200b\x07\x00"
    assert normalize_vietnamese(text) == "Dòng một\nDòng hai\nDòng ba\nẩn"


def test_control_characters_are_removed_with_a_warning():
    text, _, warnings = decode_script_bytes(("Kính thưa\x07 bà con\x1b! " + SENTENCES[1]).encode("utf-8"))
    assert text == "Kính thưa bà con! " + SENTENCES[1]
    assert warnings == ["Đã bỏ 2 ký tự điều khiển hoặc ký tự ẩn không đọc được."]


@pytest.mark.parametrize(
    "word", ["gì", "giữa", "giếng", "quốc", "rượu", "khuya", "xoong", "thuế", "kỹ", "ngoẹo", "Nguyễn"]
)
def test_real_syllables_are_recognised(word):
    assert is_vietnamese_syllable(word)


@pytest.mark.parametrize(
    "word", ["thµnh", "nh©n", "còc", "kà", "cé", "ngé", "ghà", "qú", "hàá", "chaøo", "wá"]
)
def test_non_syllables_are_refused(word):
    assert not is_vietnamese_syllable(word)


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"Kinh thua\x00 ba con",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3",
        b"PK\x03\x04\x14\x00",
        bytes(range(1, 9)) * 50,
        codecs.BOM_UTF16_LE + "a\x00b".encode("utf-16-le"),
    ],
)
def test_binary_is_not_text(data):
    with pytest.raises(ScriptRejected) as caught:
        decode_script_bytes(data)
    assert caught.value.code == "SCRIPT_NOT_TEXT"


@pytest.mark.parametrize(
    "data",
    [
        # VNI-Windows (tone marks as separate Latin-1 letters): neither Windows-1258 nor TCVN3.
        "Kính thöa baø con, hoâm nay chuùng ta hoïc caùch taïo maät khaåu an toaøn.".encode("cp1252"),
        bytes(range(0xC0, 0x100)) * 4,
        codecs.BOM_UTF16_LE + b"\x00\xd8",  # a lone surrogate
    ],
)
def test_unrecognisable_encoding_is_refused_with_advice(data):
    with pytest.raises(ScriptRejected) as caught:
        decode_script_bytes(data)
    assert caught.value.code == "SCRIPT_ENCODING_UNKNOWN"
    assert "UTF-8" in caught.value.message
