"""Vietnamese spoken form: tts.normalize.

Expected strings are what a Northern broadcast announcer says; the output is lower case by design.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts import normalize
from tts.normalize import (
    number_to_words,
    split_sentences,
    syllable_count,
    to_spoken,
    unknown_abbreviations,
)

ASCII_DIGIT = re.compile(r"[0-9]")


# --- number_to_words ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (0, "không"),
        (1, "một"),
        (4, "bốn"),
        (5, "năm"),
        (7, "bảy"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (19, "mười chín"),
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (31, "ba mươi mốt"),
        (44, "bốn mươi tư"),
        (55, "năm mươi lăm"),
        (99, "chín mươi chín"),
        (100, "một trăm"),
        (101, "một trăm linh một"),
        (104, "một trăm linh bốn"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (121, "một trăm hai mươi mốt"),
        (999, "chín trăm chín mươi chín"),
        (1000, "một nghìn"),
        (1001, "một nghìn không trăm linh một"),
        (1008, "một nghìn không trăm linh tám"),
        (1010, "một nghìn không trăm mười"),
        (1315, "một nghìn ba trăm mười lăm"),
        (2005, "hai nghìn không trăm linh năm"),
        (2020, "hai nghìn không trăm hai mươi"),
        (2024, "hai nghìn không trăm hai mươi tư"),
        (2025, "hai nghìn không trăm hai mươi lăm"),
        (2026, "hai nghìn không trăm hai mươi sáu"),
        (4000, "bốn nghìn"),
        (7817, "bảy nghìn tám trăm mười bảy"),
        (15_000, "mười lăm nghìn"),
        (385_000, "ba trăm tám mươi lăm nghìn"),
        (1_000_000, "một triệu"),
        (1_000_500, "một triệu năm trăm"),
        (1_001_000, "một triệu không trăm linh một nghìn"),
        (1_050_000, "một triệu không trăm năm mươi nghìn"),
        (1_500_000, "một triệu năm trăm nghìn"),
        (21_000_000, "hai mươi mốt triệu"),
        (1_000_000_000, "một tỷ"),
        (1_000_000_005, "một tỷ không trăm linh năm"),
        (3_500_000_000, "ba tỷ năm trăm triệu"),
        (10**12, "một nghìn tỷ"),
        (1_500_000_000_000, "một nghìn năm trăm tỷ"),
        (10**18, "một tỷ tỷ"),
        (-5, "âm năm"),
    ],
)
def test_number_to_words(n, spoken):
    assert number_to_words(n) == spoken


def test_number_to_words_huge_number_does_not_recurse():
    words = number_to_words(10**3000)
    assert words.startswith("một ") and words.endswith("tỷ")


# --- numbers in text ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("2024", "hai nghìn không trăm hai mươi tư"),
        ("năm 2026", "năm hai nghìn không trăm hai mươi sáu"),
        ("1.500.000", "một triệu năm trăm nghìn"),
        ("4.000", "bốn nghìn"),
        ("1.000.000.000", "một tỷ"),
        ("hơn 4.000 thủ tục", "hơn bốn nghìn thủ tục"),
        ("3,5", "ba phẩy năm"),
        ("0,5", "không phẩy năm"),
        ("3,25", "ba phẩy hai mươi lăm"),
        ("3,05", "ba phẩy không năm"),
        ("1.500,75", "một nghìn năm trăm phẩy bảy mươi lăm"),
        ("3,5 triệu", "ba phẩy năm triệu"),
        ("1,500,000", "một triệu năm trăm nghìn"),
        ("04 giờ", "bốn giờ"),
        ("02 ngày", "hai ngày"),
        ("TDP 09 người", "tổ dân phố chín người"),
        ("01 nội dung", "một nội dung"),
        ("thời đại 4.0", "thời đại bốn chấm không"),
        ("1.2.3", "một chấm hai chấm ba"),
        ("6 số", "sáu số"),
        ("30phút", "ba mươi phút"),
        ("mã 0123456", "mã không một hai ba bốn năm sáu"),
        (
            "1234567890123456789",
            "một hai ba bốn năm sáu bảy tám chín không một hai ba bốn năm sáu bảy tám chín",
        ),
        ("2 + 3 = 5", "hai cộng ba bằng năm"),
        ("x < 5", "x nhỏ hơn năm"),
        ("≥ 80%", "lớn hơn hoặc bằng tám mươi phần trăm"),
        ("$\\geq 80\\%$", "lớn hơn hoặc bằng tám mươi phần trăm"),
        ("１２３", "một trăm hai mươi ba"),
        ("½ số hộ", "một phần hai số hộ"),
    ],
)
def test_numbers(text, spoken):
    assert to_spoken(text) == spoken


# --- dates -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("22/12/2024", "hai mươi hai tháng mười hai năm hai nghìn không trăm hai mươi tư"),
        ("ngày 01/12/2026", "ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu"),
        ("03/02/2026", "ba tháng hai năm hai nghìn không trăm hai mươi sáu"),
        ("ngày 12/8/2025", "ngày mười hai tháng tám năm hai nghìn không trăm hai mươi lăm"),
        ("ngày 29/4/2025", "ngày hai mươi chín tháng tư năm hai nghìn không trăm hai mươi lăm"),
        ("ngày 30/01/2026", "ngày ba mươi tháng một năm hai nghìn không trăm hai mươi sáu"),
        ("22.12.2024", "hai mươi hai tháng mười hai năm hai nghìn không trăm hai mươi tư"),
        ("22-12-2024", "hai mươi hai tháng mười hai năm hai nghìn không trăm hai mươi tư"),
        ("tháng 10/2026", "tháng mười năm hai nghìn không trăm hai mươi sáu"),
        ("từ 4/2026", "từ tháng tư năm hai nghìn không trăm hai mươi sáu"),
        ("ngày 10/10", "ngày mười tháng mười"),
        ("ngày 1/5", "ngày một tháng năm"),
        ("dịp 2/9", "dịp hai tháng chín"),
        ("từ 15/8 đến 20/8", "từ mười lăm tháng tám đến hai mươi tháng tám"),
        ("tháng 4", "tháng tư"),
        ("tháng 1 năm 2026", "tháng một năm hai nghìn không trăm hai mươi sáu"),
        ("ngày tháng 8 năm 2025", "ngày tháng tám năm hai nghìn không trăm hai mươi lăm"),
        ("khoảng 1/3 trang", "khoảng một phần ba trang"),
        ("phục vụ 24/7", "phục vụ hai mươi tư trên bảy"),
        ("100/100 hộ", "một trăm trên một trăm hộ"),
    ],
)
def test_dates(text, spoken):
    assert to_spoken(text) == spoken


# --- times and ranges --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("6h30", "sáu giờ ba mươi"),
        ("6h00", "sáu giờ"),
        ("6h", "sáu giờ"),
        ("6h05", "sáu giờ năm phút"),
        ("6g30", "sáu giờ ba mươi"),
        ("19:30", "mười chín giờ ba mươi"),
        ("7h30 đến 11h30", "bảy giờ ba mươi đến mười một giờ ba mươi"),
        ("6h00 - 6h30", "sáu giờ đến sáu giờ ba mươi"),
        ("16h00-16h45", "mười sáu giờ đến mười sáu giờ bốn mươi lăm"),
        ("17h00 – 17h30", "mười bảy giờ đến mười bảy giờ ba mươi"),
        ("trong 48h", "trong bốn mươi tám giờ"),
        ("1-2 lần", "một đến hai lần"),
        ("2023 - 2030", "hai nghìn không trăm hai mươi ba đến hai nghìn không trăm ba mươi"),
        (
            "22/12/2024 - 25/12/2024",
            "hai mươi hai tháng mười hai năm hai nghìn không trăm hai mươi tư "
            "đến hai mươi lăm tháng mười hai năm hai nghìn không trăm hai mươi tư",
        ),
        ("từ thứ 2 - thứ 6", "từ thứ hai đến thứ sáu"),
        (
            "Quý IV/2025 - Quý I/2026",
            "quý bốn năm hai nghìn không trăm hai mươi lăm đến quý một năm hai nghìn không trăm hai mươi sáu",
        ),
        ("Buổi sáng: 6h00 - 6h30", "buổi sáng: sáu giờ đến sáu giờ ba mươi"),
    ],
)
def test_times_and_ranges(text, spoken):
    assert to_spoken(text) == spoken


# --- percent, money, units, rates --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("80%", "tám mươi phần trăm"),
        ("80 %", "tám mươi phần trăm"),
        ("3,5%", "ba phẩy năm phần trăm"),
        ("100% người dân", "một trăm phần trăm người dân"),
        ("1.500.000đ", "một triệu năm trăm nghìn đồng"),
        ("1.500.000 đ", "một triệu năm trăm nghìn đồng"),
        ("1.500.000 đồng", "một triệu năm trăm nghìn đồng"),
        ("1.500.000 VNĐ", "một triệu năm trăm nghìn đồng"),
        ("1.500.000 VND", "một triệu năm trăm nghìn đồng"),
        ("1.500.000₫", "một triệu năm trăm nghìn đồng"),
        ("385.000 đồng", "ba trăm tám mươi lăm nghìn đồng"),
        ("2 triệu đồng", "hai triệu đồng"),
        ("3 tỷ", "ba tỷ"),
        ("50k", "năm mươi nghìn"),
        ("$100", "một trăm đô la"),
        ("100 USD", "một trăm đô la mỹ"),
        ("5 km", "năm ki lô mét"),
        ("5km", "năm ki lô mét"),
        ("3 kg", "ba ki lô gam"),
        ("50 m2", "năm mươi mét vuông"),
        ("50 m²", "năm mươi mét vuông"),
        ("cao 3 m", "cao ba mét"),
        ("30°C", "ba mươi độ xê"),
        ("30 độ C", "ba mươi độ xê"),
        ("nhiệt độ -2°C", "nhiệt độ âm hai độ xê"),
        ("12 GB", "mười hai gi ga bai"),
        ("500g", "năm trăm gam"),
        ("220V", "hai trăm hai mươi vôn"),
        ("60 km/h", "sáu mươi ki lô mét trên giờ"),
        ("02 ngày/tuần", "hai ngày mỗi tuần"),
        ("04 giờ/ngày", "bốn giờ mỗi ngày"),
        ("1-2 lần/ngày", "một đến hai lần mỗi ngày"),
        ("3 phút/bản tin", "ba phút mỗi bản tin"),
        ("(01 nội dung/tháng)", "một nội dung mỗi tháng"),
        ("25.000đ/kg", "hai mươi lăm nghìn đồng mỗi ki lô gam"),
        ("12 lần/tuần", "mười hai lần mỗi tuần"),
    ],
)
def test_percent_money_units_rates(text, spoken):
    assert to_spoken(text) == spoken


# --- telephone numbers and hotlines ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("0258 3866 214", "không hai năm tám, ba tám sáu sáu, hai một bốn"),
        ("0905 123 456", "không chín không năm, một hai ba, bốn năm sáu"),
        ("0236.3821.456", "không hai ba sáu, ba tám hai một, bốn năm sáu"),
        ("0236-3821-456", "không hai ba sáu, ba tám hai một, bốn năm sáu"),
        ("1900 1234", "một chín không không, một hai ba bốn"),
        ("0905123456", "không chín không năm, một hai ba, bốn năm sáu"),
        ("+84 905 123 456", "cộng tám tư, chín không năm, một hai ba, bốn năm sáu"),
        (
            "Mọi thắc mắc xin gọi 0258 3866 214.",
            "mọi thắc mắc xin gọi không hai năm tám, ba tám sáu sáu, hai một bốn.",
        ),
        ("Số ĐT: 0258.3866.214", "số điện thoại: không hai năm tám, ba tám sáu sáu, hai một bốn"),
        ("gọi 113", "gọi một một ba"),
        ("gọi ngay 114", "gọi ngay một một bốn"),
        ("số 115", "số một một năm"),
        ("đường dây nóng 111", "đường dây nóng một một một"),
        ("tổng đài 1022", "tổng đài một không hai hai"),
        ("Quyết định số 1008 ngày", "quyết định số một nghìn không trăm linh tám ngày"),
        ("có 113 hộ", "có một trăm mười ba hộ"),
        ("19001234", "một chín không không, một hai ba bốn"),
        ("180000000 đồng", "một trăm tám mươi triệu đồng"),
        ("gọi 0905 123 456 12 lần", "gọi không chín không năm, một hai ba, bốn năm sáu mười hai lần"),
    ],
)
def test_phones_and_hotlines(text, spoken):
    assert to_spoken(text) == spoken


# --- lexicon -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("UBND", "ủy ban nhân dân"),
        ("HĐND", "hội đồng nhân dân"),
        ("TDP", "tổ dân phố"),
        ("UBMTTQVN", "ủy ban mặt trận tổ quốc việt nam"),
        ("UBMTTQ", "ủy ban mặt trận tổ quốc"),
        ("MTTQ", "mặt trận tổ quốc"),
        ("CCCD", "căn cước công dân"),
        ("BHYT", "bảo hiểm y tế"),
        ("BHXH", "bảo hiểm xã hội"),
        ("THCS", "trung học cơ sở"),
        ("THPT", "trung học phổ thông"),
        ("TTHC", "thủ tục hành chính"),
        ("DVC", "dịch vụ công"),
        ("CNTT", "công nghệ thông tin"),
        ("CĐS", "chuyển đổi số"),
        ("KH", "kế hoạch"),
        ("QĐ", "quyết định"),
        ("NQ", "nghị quyết"),
        ("TW", "trung ương"),
        ("TP", "thành phố"),
        ("VNeID", "vê en ê ai đi"),
        ("VneID", "vê en ê ai đi"),
        ("mã QR", "mã quy a"),
        ("OTP", "ô tê pê"),
        ("mã PIN", "mã pin"),
        ("Zalo", "da lô"),
        ("zalo", "da lô"),
        ("MoMo", "mô mô"),
        ("Momo", "mô mô"),
        ("VNPT", "vê en pê tê"),
        ("Viettel", "vi ét ten"),
        ("Shopee", "sốp pi"),
        ("Lazada", "la da đa"),
        ("TikTok", "tích tốc"),
        ("Tiktok", "tích tốc"),
        ("Facebook", "phây búc"),
        ("Internet", "in tơ nét"),
        ("internet", "in tơ nét"),
        ("online", "on lai"),
        ("wifi", "oai phai"),
        ("Wi-Fi", "oai phai"),
        ("4G", "bốn gờ"),
        ("5G", "năm gờ"),
        ("wifi/4G/5G", "oai phai, bốn gờ, năm gờ"),
        ("KH&CN", "khoa học và công nghệ"),
        ("VH-XH", "văn hóa xã hội"),
        ("Lưu: VT, VH-XH.", "lưu: văn thư, văn hóa xã hội."),
        ("CT, các PCT UBND phường", "chủ tịch, các phó chủ tịch ủy ban nhân dân phường"),
        ("TP. Hồ Chí Minh", "thành phố hồ chí minh"),
        ("TP.HCM", "thành phố hồ chí minh"),
        ("Kính gửi UBND TP.", "kính gửi ủy ban nhân dân thành phố."),
        ("Điện, nước, v.v. Bà con", "điện, nước, vân vân. bà con"),
        ("(để b/c)", "để báo cáo"),
        ("Covid-19", "cô vít mười chín"),
        ("trí tuệ nhân tạo AI", "trí tuệ nhân tạo ây ai"),
        ("KHÔNG AI BỊ BỎ LẠI", "không ai bị bỏ lại"),
    ],
)
def test_lexicon(text, spoken):
    assert to_spoken(text) == spoken


def test_lexicon_is_case_sensitive_for_abbreviations_and_word_bounded():
    assert to_spoken("ubnd") == "ubnd"  # lower case: a word, not the abbreviation
    assert to_spoken("UBNDX") == "u bê en dê ích"  # not "UBND" + "X"
    assert to_spoken("khu") == "khu"  # "KH" not inside a word
    assert to_spoken("tp") == "tp"  # lower-case "tp" is not "TP"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("XYZW", "ích i dét vê kép"),
        ("ATM", "a tê em"),
        ("tổ BXDD", "tổ bê ích dê dê"),
        ("I. MỤC ĐÍCH, YÊU CẦU", "một, mục đích, yêu cầu"),
        ("KINH PHÍ THỰC HIỆN", "kinh phí thực hiện"),
        ("NỘI DUNG", "nội dung"),
        ("THOI GIAN THUC HIEN", "thoi gian thuc hien"),  # toneless capitals: still words
        ("GHI CHÚ, NGHIÊM TÚC, KHAI BÁO", "ghi chú, nghiêm túc, khai báo"),
    ],
)
def test_unknown_capitals_are_spelled_and_capital_words_read(text, spoken):
    assert to_spoken(text) == spoken


def test_lexicon_file_is_well_formed():
    source = normalize._read_lexicon_file()
    seen = set()
    for number, line in enumerate(source.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        assert len(cols) == 3, f"line {number}: {line!r}"
        written, spoken, kind = cols
        assert kind in ("abbr", "title", "word", "domain"), f"line {number}"
        assert (written, kind) not in seen, f"line {number}: duplicate {written}"
        seen.add((written, kind))
        assert spoken == spoken.lower() and spoken.strip() == spoken and spoken
        assert not ASCII_DIGIT.search(spoken), f"line {number}: digit in spoken form"


def test_lexicon_parse_skips_bad_lines(caplog):
    lex = normalize._parse_lexicon("# comment\nABC\tê bê xê\tabbr\nbroken line\nX\tY\tnope\nZalo\tda lô\n")
    assert lex.exact == {"ABC": "ê bê xê", "Zalo": "da lô"}
    assert lex.folded == {"zalo": "da lô"}
    assert "line 3 ignored" in caplog.text and "line 4 ignored" in caplog.text


# --- web and e-mail addresses ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("dichvucong.gov.vn", "dịch vụ công chấm gốp chấm vê en"),
        ("https://dichvucong.gov.vn", "dịch vụ công chấm gốp chấm vê en"),
        ("https://dichvucong.gov.vn/", "dịch vụ công chấm gốp chấm vê en"),
        (
            "truy cập địa chỉ dichvucong.gov.vn, rồi bấm",
            "truy cập địa chỉ dịch vụ công chấm gốp chấm vê en, rồi bấm",
        ),
        ("có đuôi gov.vn.", "có đuôi gốp chấm vê en."),
        ("(<https://binhdanhocvuso.gov.vn>);", "bình dân học vụ số chấm gốp chấm vê en;"),
        ("https://chuyendoiso.mobiedu.vn", "chuyển đổi số chấm mô bi e đu chấm vê en"),
        ("www.google.com", "vê kép vê kép vê kép chấm gu gồ chấm com"),
        ("https://abc.vn/thu-tuc?id=5#x", "a bê xê chấm vê en gạch chéo thu gạch ngang tuc"),
        ("vneid.gov.vn", "vê en ê ai đi chấm gốp chấm vê en"),
        ("xa123.vn", "xa một hai ba chấm vê en"),
        ("ubnd.donghai@gmail.com", "u bê en dê chấm dong hai a còng gờ meo chấm com"),
        ("[Cổng dịch vụ công](https://dichvucong.gov.vn)", "cổng dịch vụ công"),
    ],
)
def test_addresses(text, spoken):
    assert to_spoken(text) == spoken


# --- Roman numerals, ordinals, document codes, steps -------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Quý IV", "quý bốn"),
        ("Quý I", "quý một"),
        ("Quý III/2026", "quý ba năm hai nghìn không trăm hai mươi sáu"),
        ("Quý 2/2026", "quý hai năm hai nghìn không trăm hai mươi sáu"),
        ("Quý III, IV năm 2026", "quý ba, bốn năm hai nghìn không trăm hai mươi sáu"),
        ("khóa XV", "khóa mười lăm"),
        ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
        ("Đại hội XIII", "đại hội mười ba"),
        ("lần thứ XIV", "lần thứ mười bốn"),
        ("phần C", "phần xê"),  # a letter, not 100
        ("thứ 2", "thứ hai"),
        ("Thứ 4", "thứ tư"),
        ("thứ 7", "thứ bảy"),
        ("thứ 1", "thứ nhất"),
        ("lần thứ 1", "lần thứ nhất"),
        ("lần thứ 4", "lần thứ tư"),
        ("thứ 14", "thứ mười bốn"),
        ("từ thứ 2 đến thứ 6", "từ thứ hai đến thứ sáu"),
        ("Kế hoạch số 85/KH-UBND", "kế hoạch số tám mươi lăm"),
        (
            "Kế hoạch số 85/KH-UBND ngày 26/02/2026",
            "kế hoạch số tám mươi lăm ngày hai mươi sáu tháng hai năm hai nghìn không trăm hai mươi sáu",
        ),
        ("Nghị quyết số 57-NQ/TW", "nghị quyết số năm mươi bảy"),
        ("Kế hoạch số 01-KH/BCĐTW", "kế hoạch số một"),
        ("Quyết định số 749/QĐ-TTg", "quyết định số bảy trăm bốn mươi chín"),
        ("Công văn số 2144/UBND-NVKTGD", "công văn số hai nghìn một trăm bốn mươi tư"),
        ("Thông tư số 02/2025/TT-BGDĐT", "thông tư số hai"),  # the year part dropped with the code
        ("Luật số 15/2025/QH15", "luật số mười lăm"),
        ("Số: /KH-UBND", "số:"),
        ("Đề án 06", "đề án không sáu"),
        ("Bước 1:", "bước một:"),
        ("Bước 2: chọn", "bước hai: chọn"),
    ],
)
def test_romans_ordinals_codes_steps(text, spoken):
    assert to_spoken(text) == spoken


# --- leftovers, symbols, markup ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("abc123", "abc một hai ba"),
        ("H5N1", "hát năm en một"),
        ("trang A4", "trang a bốn"),
        ("R&D", "e rờ và dê"),
        ("điện & nước", "điện và nước"),
        ("điện &amp; nước", "điện và nước"),
        ("a@b", "a a còng b"),
        ("thôn/Tổ dân phố", "thôn, tổ dân phố"),
        ("Văn hóa - Xã hội", "văn hóa, xã hội"),
        ("Nghe - Quét - Thực hành", "nghe, quét, thực hành"),
        ("Tổ công nghệ số (CNSCĐ) trong", "tổ công nghệ số, công nghệ số cộng đồng, trong"),
        ("“Bình dân học vụ số”", "bình dân học vụ số"),
        ("**Sử dụng Internet:** Hướng dẫn", "sử dụng in tơ nét: hướng dẫn"),
        ("y tế, giáo dục ... thông qua", "y tế, giáo dục, thông qua"),
        ("(Lazada, Sendo...), cách", "la da đa, xen đô, cách"),
        ("thanh toán…", "thanh toán…"),
        ("phố¹; kết quả⁴", "phố; kết quả"),
        ("chào 😀 bà con", "chào bà con"),
        ("<p>Xin chào</p>", "xin chào"),
        ("a\x00b\x07c", "abc"),
        ("x\u200by", "xy"),
        ("nhiều     khoảng \t trắng", "nhiều khoảng trắng"),
        ("a,b", "a, b"),
        ("Hết./.", "hết."),
        ("Xong !", "xong!"),
    ],
)
def test_leftovers_symbols_markup(text, spoken):
    assert to_spoken(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("- Mục một\n- Mục hai", "mục một\nmục hai"),
        ("- + Buổi sáng: 6h00", "buổi sáng: sáu giờ"),
        ("+ Tuyên truyền", "tuyên truyền"),
        ("• Ý một", "ý một"),
        ("-Kế hoạch", "kế hoạch"),
        ("## **2. Yêu cầu:**", "hai, yêu cầu:"),
        ("1. Mục đích", "một, mục đích"),
        ("1.1. Mục tiêu", "một chấm một, mục tiêu"),
        ("IV. TỔ CHỨC THỰC HIỆN", "bốn, tổ chức thực hiện"),
        ("a) Nội dung tập huấn", "a, nội dung tập huấn"),
        ("b) Phương thức", "bê, phương thức"),
        ("đ) Kết quả", "đê, kết quả"),
        ("C. Sai", "xê, sai"),
        ("1\tThực hiện", "một, thực hiện"),
        ("---\n***", ""),
    ],
)
def test_line_markers(text, spoken):
    assert to_spoken(text) == spoken


def test_paragraphs_and_lines_are_kept():
    text = "Kính thưa bà con!\r\n\r\n\r\nDòng một\n   Dòng   hai  \n\n\n\nĐoạn ba."
    assert to_spoken(text) == "kính thưa bà con!\n\ndòng một\ndòng hai\n\nđoạn ba."


def test_block_tags_break_lines_not_paragraphs():
    assert to_spoken("<p>Một</p> <p>Hai</p>") == "một\nhai"


# --- the sample scripts ------------------------------------------------------------------------------
NGAN = (
    "Kính thưa bà con! Từ ngày 01/12/2026, Bộ phận một cửa phường nhận hồ sơ trực tuyến cả ngày thứ 7. "
    "Mọi thắc mắc xin gọi 0258 3866 214."
)
NGAN_SPOKEN = (
    "kính thưa bà con! từ ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu, bộ phận một cửa "
    "phường nhận hồ sơ trực tuyến cả ngày thứ bảy. mọi thắc mắc xin gọi không hai năm tám, ba tám sáu sáu, "
    "hai một bốn."
)

DICH_VU_CONG = """Kính thưa bà con!

Bước 1: bà con mở trình duyệt trên điện thoại, truy cập địa chỉ dichvucong.gov.vn, rồi bấm nút Đăng nhập.

Bước 3: mở ứng dụng VNeID, chọn mục quét mã QR. Nhập mật khẩu hoặc mã PIN gồm 6 số để xác nhận.

Nếu gặp khó khăn, bà con đến từ thứ 2 đến thứ 6, buổi sáng từ 7h30 đến 11h30, ... hơn 4.000 thủ tục."""

DICH_VU_CONG_SPOKEN = """kính thưa bà con!

bước một: bà con mở trình duyệt trên điện thoại, truy cập địa chỉ dịch vụ công chấm gốp chấm vê en, rồi \
bấm nút đăng nhập.

bước ba: mở ứng dụng vê en ê ai đi, chọn mục quét mã quy a. nhập mật khẩu hoặc mã pin gồm sáu số để xác \
nhận.

nếu gặp khó khăn, bà con đến từ thứ hai đến thứ sáu, buổi sáng từ bảy giờ ba mươi đến mười một giờ ba \
mươi, hơn bốn nghìn thủ tục."""


def test_sample_ngan():
    assert to_spoken(NGAN) == NGAN_SPOKEN
    assert split_sentences(to_spoken(NGAN)) == [
        [
            "kính thưa bà con!",
            "từ ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu, "
            "bộ phận một cửa phường nhận hồ sơ trực tuyến cả ngày thứ bảy.",
            "mọi thắc mắc xin gọi không hai năm tám, ba tám sáu sáu, hai một bốn.",
        ]
    ]


def test_sample_dich_vu_cong():
    spoken = to_spoken(DICH_VU_CONG)
    assert spoken == DICH_VU_CONG_SPOKEN
    paragraphs = split_sentences(spoken)
    assert [len(p) for p in paragraphs] == [1, 1, 2, 1]
    assert paragraphs[1] == [
        "bước một: bà con mở trình duyệt trên điện thoại, truy cập địa chỉ dịch vụ công chấm gốp chấm vê en, "
        "rồi bấm nút đăng nhập."
    ]


def test_plan_excerpt_reads_naturally():
    plan = (
        "1. Xây dựng chuyên mục “Học số mỗi ngày 3 phút”\n\n"
        "- Thời lượng: 3 phút/bản tin\n"
        "- Tần suất: 1-2 lần/ngày\n"
        "- Thời gian phát:\n"
        "- + Buổi sáng: 6h00 - 6h30\n"
        "- + Buổi chiều: 17h00 - 17h30\n\n"
        "Căn cứ Nghị quyết số 57-NQ/TW ngày 22/12/2024 của Bộ Chính trị;"
    )
    assert to_spoken(plan) == (
        "một, xây dựng chuyên mục học số mỗi ngày ba phút\n\n"
        "thời lượng: ba phút mỗi bản tin\n"
        "tần suất: một đến hai lần mỗi ngày\n"
        "thời gian phát:\n"
        "buổi sáng: sáu giờ đến sáu giờ ba mươi\n"
        "buổi chiều: mười bảy giờ đến mười bảy giờ ba mươi\n\n"
        "căn cứ nghị quyết số năm mươi bảy ngày hai mươi hai tháng mười hai năm hai nghìn không trăm hai "
        "mươi tư của bộ chính trị;"
    )


# --- split_sentences ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spoken", "expected"),
    [
        ("", []),
        ("   \n\n  ", []),
        ("một câu", [["một câu"]]),
        ("câu một. câu hai! câu ba? câu bốn… năm", [["câu một.", "câu hai!", "câu ba?", "câu bốn…", "năm"]]),
        ("đoạn một.\n\nđoạn hai.", [["đoạn một."], ["đoạn hai."]]),
        ("tiêu đề\nmục một\nmục hai.", [["tiêu đề", "mục một", "mục hai."]]),
        ("dịch vụ công chấm gốp chấm vê en, rồi bấm.", [["dịch vụ công chấm gốp chấm vê en, rồi bấm."]]),
        ("a.b không tách", [["a.b không tách"]]),
        ("câu.\n\n\n\n…\n\ncâu khác", [["câu."], ["câu khác"]]),
        ("  có khoảng trắng.   tiếp  ", [["có khoảng trắng.", "tiếp"]]),
        ("bước một: làm. xong", [["bước một: làm.", "xong"]]),
    ],
)
def test_split_sentences(spoken, expected):
    assert split_sentences(spoken) == expected


# --- unknown_abbreviations ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("UBND phường và XYZW, lại XYZW và ABC.", ["XYZW", "ABC"]),
        ("HĐND, TDP, CCCD, BHYT, VNeID, QR, MoMo", []),
        ("Quý IV, khóa XV, thế kỷ XXI", []),
        ("Kế hoạch số 85/KH-UBND và 57-NQ/TW", []),
        ("KINH PHÍ THỰC HIỆN\nI. MỤC ĐÍCH\n## **II. NỘI DUNG**\nTHỜI GIAN, KHAI BÁO", []),
        ("dichvucong.gov.vn và ABC.COM.VN", []),
        ("Tổ CNSCĐ, VNED, VssID, YouTube", ["VNED"]),
        ("ĐĐK, H5N1", ["ĐĐK", "H5N1"]),
        ("Ứng dụng AbCd", ["AbCd"]),
        ("", []),
    ],
)
def test_unknown_abbreviations(text, expected):
    assert unknown_abbreviations(text) == expected


# --- syllable_count ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spoken", "count"),
    [
        ("", 0),
        ("kính thưa bà con!", 4),
        ("hai nghìn không trăm hai mươi tư", 7),
        ("không hai năm tám, ba tám sáu sáu.\n\nhết", 9),
        ("ủy ban nhân dân", 4),
    ],
)
def test_syllable_count(spoken, count):
    assert syllable_count(spoken) == count


def test_syllable_count_of_sample():
    assert syllable_count(to_spoken(NGAN)) == 48


# --- robustness --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n\n",
        "<",
        "&",
        ">>> <<< &&& ###",
        "9" * 5000,
        "1." * 2000,
        "1.000." * 1000,
        "0" * 30,
        "99/99/9999 99:99 99h99 +84",
        "\ud800 lone surrogate",
        "\ue000\ue001\ue002\ue003 sentinels 5",
        "Quý IIII/2026 khóa MMMM",
        "https://" + "a." * 500 + "vn",
        "@@@ a@ @b",
        "-" * 50 + "5",
        "\u0301\u0302 dấu rời",
        "½⅓¼ ①②③ ⁵⁶",
    ],
)
def test_hostile_input_never_raises_and_has_no_digit(text):
    spoken = to_spoken(text)
    assert isinstance(spoken, str)
    assert not ASCII_DIGIT.search(spoken)
    assert not re.search("[\ue000-\ue003]", spoken)
    split_sentences(spoken)
    syllable_count(spoken)
    unknown_abbreviations(text)


def test_internal_error_falls_back_to_plain_reading(monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("bug")

    monkeypatch.setattr(normalize, "_spoken_line", broken)
    assert to_spoken("Gọi 113 ngay!") == "gọi một một ba ngay!"
    assert "normalization failed" in caplog.text


def test_missing_lexicon_degrades_to_spelling(monkeypatch):
    def unreadable():
        raise OSError("gone")

    # Patched where it is read: tts.normalize re-exports it, but the lexicon module calls its own.
    monkeypatch.setattr("tts.normalize.lexicon._read_lexicon_file", unreadable)
    normalize._reset_lexicon()
    try:
        assert to_spoken("UBND") == "u bê en dê"
    finally:
        monkeypatch.undo()
        normalize._reset_lexicon()
    assert to_spoken("UBND") == "ủy ban nhân dân"


# --- properties --------------------------------------------------------------------------------------
# Pieces that trigger the patterns (digits, separators, unit and code letters), mixed at random.
TRICKY = st.sampled_from([*'0123456789./,:-–h%đĐ QUBNDIVXgkm²°C\n\t&<>@+()$*#_"“”…', "VNĐ", "thứ ", "ngày "])
TEXTS = st.one_of(st.text(max_size=80), st.lists(TRICKY, max_size=40).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_to_spoken_never_raises_and_has_no_digit(text):
    # On _to_spoken, without to_spoken's safety net: through the net a raising pass only falls back to a
    # plain reading, which has no digit either, so the property could not fail.
    spoken = normalize._to_spoken(text)
    assert not ASCII_DIGIT.search(spoken)
    assert "\n\n\n" not in spoken
    for paragraph in split_sentences(spoken):
        assert paragraph and all(sentence == sentence.strip() and sentence for sentence in paragraph)
    assert syllable_count(spoken) >= 0
    assert isinstance(unknown_abbreviations(text), list)


# The rules that look around a match (dates in lists, ratios, hotlines, bracketed area codes, money rates,
# address labels), fed their trigger words. _to_spoken has no safety net: a bug here raises.
CONTEXTUAL = st.lists(
    st.sampled_from([
        *"0123456789/:().,@ -", "tỷ lệ ", "số ", "gọi ", "tổng đài ", "đường ", "đồng", "đ", "kWh", "m3",
        "lần thứ ", "hạng ", "I", "V", "X", "và ", "chiếm ", "dân số", "lúc ", ".gov.vn", "ubnd", "phuong",
        "(024) ", "115", "1.000", "0905",
    ]),
    max_size=30,
).map("".join)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONTEXTUAL)
def test_the_context_rules_never_raise_nor_leave_a_digit(text):
    spoken = normalize._to_spoken(text)
    assert not ASCII_DIGIT.search(spoken)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**12))
def test_number_to_words_never_raises_and_has_no_digit(n):
    words = number_to_words(n)
    assert words and not ASCII_DIGIT.search(words)
    assert words == " ".join(words.split())
    if not re.fullmatch(r"1[89]00[0-9]{4}", str(n)):  # 1800xxxx / 1900xxxx are phone numbers
        assert to_spoken(str(n)) == words


# --- the cases the normalization set (tests/tts/data) taught, with their counterparts ----------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # ratios and clock times
        ("tỷ lệ 1:500", "tỷ lệ một trên năm trăm"),
        ("theo tỷ lệ 1:20 trước khi phun", "theo tỷ lệ một trên hai mươi trước khi phun"),
        ("đạt 4:1", "đạt bốn trên một"),
        ("họp lúc 19:30", "họp lúc mười chín giờ ba mươi"),
        ("Tỷ lệ tiêm đạt 90%, họp lúc 7:30", "tỷ lệ tiêm đạt chín mươi phần trăm, họp lúc bảy giờ ba mươi"),
        (
            "Tỷ lệ giáo viên trên trẻ tại trường mầm non của phường hiện nay là 1:15.",
            "tỷ lệ giáo viên trên trẻ tại trường mầm non của phường hiện nay là một trên mười lăm.",
        ),
        (
            "Tỷ lệ đạt 90%. Hẹn gặp 7:30 tại nhà văn hóa.",
            "tỷ lệ đạt chín mươi phần trăm. hẹn gặp bảy giờ ba mươi tại nhà văn hóa.",
        ),
        # fractions and dates
        ("chiếm gần 1/10 dân số", "chiếm gần một phần mười dân số"),
        ("bằng 7/10 mức đóng", "bằng bảy phần mười mức đóng"),
        ("khoảng 1/20 tổng số hộ", "khoảng một phần hai mươi tổng số hộ"),
        ("dịp 19/8 và 2/9", "dịp mười chín tháng tám và hai tháng chín"),
        ("ngày 1/5, 2/5", "ngày một tháng năm, hai tháng năm"),
        ("hạn nộp 1/10", "hạn nộp một tháng mười"),
        # hotlines and house numbers
        ("Tổng đài bảo vệ trẻ em 111 tiếp nhận", "tổng đài bảo vệ trẻ em một một một tiếp nhận"),
        ("gọi 113 hoặc 114", "gọi một một ba hoặc một một bốn"),
        ("tại số 115 đường Trần Phú", "tại số một trăm mười lăm đường trần phú"),
        ("có 114 hộ", "có một trăm mười bốn hộ"),
        ("máy bàn (024) 3942 5871", "máy bàn không hai bốn, ba chín bốn hai, năm tám bảy một"),
        # Roman numerals as ordinals and after more words
        ("lần thứ I", "lần thứ nhất"),
        ("Hội nghị lần thứ IV", "hội nghị lần thứ tư"),
        ("đô thị loại I", "đô thị loại một"),
        ("Huân chương Lao động hạng III", "huân chương lao động hạng ba"),
        # rates after money
        ("8.000đ/bản", "tám nghìn đồng mỗi bản"),
        ("7.500 đồng/m3", "bảy nghìn năm trăm đồng mỗi mét khối"),
        ("1.984 đồng/kWh", "một nghìn chín trăm tám mươi tư đồng mỗi ki lô oát giờ"),
        # abbreviations added to the shipped lexicon
        ("thứ 7, CN", "thứ bảy, chủ nhật"),
        ("CLB dưỡng sinh Hội NCT", "câu lạc bộ dưỡng sinh hội người cao tuổi"),
        # address labels: abbreviations inside, syllables split the likelier way
        ("ubndphuong@danang.gov.vn", "u bê en dê phuong a còng đà nẵng chấm gốp chấm vê en"),
        ("vanhoaxahoi@gmail.com", "van hoa xa hoi a còng gờ meo chấm com"),
        ("banhangxahoi.vn", "ban hang xa hoi chấm vê en"),  # "xahoi" is two words: no tones (web.py)
    ],
)
def test_learned_from_the_normalization_set(text, spoken):
    assert to_spoken(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Tăng 44 vụ = 14% so với cùng kỳ.", "tăng bốn mươi tư vụ bằng mười bốn phần trăm so với cùng kỳ."),
        ("5 = 5", "năm bằng năm"),
        ("Tổng = 3 hộ.", "tổng bằng ba hộ."),
        # Counter-examples: glued to letters it is no word (a formula, a code), and inside an address it
        # belongs to the address.
        ("mã a=b", "mã a b"),
    ],
)
def test_an_equals_sign_between_words_is_read_bang(text, spoken):
    assert to_spoken(text) == spoken


def test_an_abbreviation_read_from_its_context_is_not_reported_unknown():
    from tts.normalize import unknown_abbreviations

    text = "Theo TT 33/2015/TT-BYT, anh A (SN 1990) ở đội PC02 đã liên hệ BQLXYZ."
    assert unknown_abbreviations(text) == ["BQLXYZ"]
    # Without the context that reads them, the same letters are still spelled, and still reported.
    assert unknown_abbreviations("Liên hệ TT văn hóa, SN nhà 5.") == ["TT", "SN"]
