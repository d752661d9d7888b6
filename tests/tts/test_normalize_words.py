"""Words of real bulletins (issue 13): abbreviations, address prefixes, single letters, Roman numerals.

Each rule comes with the cases where it must not fire. Expected strings are what a Northern announcer
says; the output is lower case by design.
"""

from __future__ import annotations

import pytest

from tts.normalize import spoken_readings, to_spoken


def _words(text: str) -> str:
    return " ".join(to_spoken(text).replace(",", " ").replace(".", " ").split())


# --- Lexicon entries from real notices ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("TTYT huyện tổ chức phun thuốc diệt muỗi", "trung tâm y tế huyện tổ chức phun thuốc diệt muỗi"),
        ("Người dân đến TYT phường để tiêm", "người dân đến trạm y tế phường để tiêm"),
        ("Số ca SXH tăng trong tuần", "số ca sốt xuất huyết tăng trong tuần"),
        ("Phòng chống SXHD tại khu dân cư", "phòng chống sốt xuất huyết dengue tại khu dân cư"),
        ("Ngày hội HMTN năm nay", "ngày hội hiến máu tình nguyện năm nay"),
        ("Công tác CSSKBĐ cho người dân", "công tác chăm sóc sức khỏe ban đầu cho người dân"),
        ("Giám đốc BV tỉnh cho biết", "giám đốc bệnh viện tỉnh cho biết"),
        ("Trung tâm GDTX tuyển sinh", "trung tâm giáo dục thường xuyên tuyển sinh"),
        ("Sở GD-ĐT thông báo", "sở giáo dục và đào tạo thông báo"),
        ("Trường TH&THCS Hòa Bắc", "trường tiểu học và trung học cơ sở hòa bắc"),
        ("CA phường tuần tra ban đêm", "công an phường tuần tra ban đêm"),
        ("Tước GPLX của tài xế vi phạm", "tước giấy phép lái xe của tài xế vi phạm"),
        ("Chi nhánh NHNN tỉnh cảnh báo", "chi nhánh ngân hàng nhà nước tỉnh cảnh báo"),
        ("BTC giải chạy thông báo", "ban tổ chức giải chạy thông báo"),
        ("Hơn 300 VĐV tham gia", "hơn ba trăm vận động viên tham gia"),
        ("Công ty TNHH Minh Phát", "công ty trách nhiệm hữu hạn minh phát"),
        ("Ngân hàng TMCP Công Thương", "ngân hàng thương mại cổ phần công thương"),
        ("Tiếp xúc cử tri với ĐBQH tỉnh", "tiếp xúc cử tri với đại biểu quốc hội tỉnh"),
        ("Sở TT&TT tỉnh", "sở thông tin và truyền thông tỉnh"),
        ("Nhà văn hóa TPHCM", "nhà văn hóa thành phố hồ chí minh"),
        ("Đội bóng Tp.HCM thắng", "đội bóng thành phố hồ chí minh thắng"),
        ("Chợ Tp. Đà Lạt", "chợ thành phố đà lạt"),
        ("Họp dân tại KP.4 và KP. Đông Hòa", "họp dân tại khu phố bốn và khu phố đông hòa"),
    ],
)
def test_lexicon_entries(text, spoken):
    assert _words(text) == spoken


def test_an_unknown_abbreviation_is_still_spelled_and_flagged():
    assert _words("Đơn vị XQZ thông báo") == "đơn vị ích quy dét thông báo"
    readings = [r for r in spoken_readings("Đơn vị XQZ thông báo") if r.written == "XQZ"]
    assert readings and readings[0].decided == "guess"


def test_ca_in_an_all_capital_heading_is_the_word():
    assert _words("CA TRỰC ĐÊM") == "ca trực đêm"


# --- Abbreviations read by their context -------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Theo TT 12/2024/TT-BCA về đăng ký xe", "theo thông tư mười hai về đăng ký xe"),
        ("Áp dụng TT số 5 của Bộ", "áp dụng thông tư số năm của bộ"),
        ("Ngư dân TT. Cửa Việt ra khơi", "ngư dân thị trấn cửa việt ra khơi"),
        # bare "TT" before a name: trung tâm or thị trấn, nothing decides: spelled
        ("Họp tại TT Văn hóa", "họp tại tê tê văn hóa"),
        (
            "Đối tượng Lê Văn Nam (SN 1998) bị bắt",
            "đối tượng lê văn nam sinh năm một nghìn chín trăm chín mươi tám bị bắt",
        ),
        # "SN" before a house number is not "sinh năm"
        ("Cửa hàng ở SN 15 đường Hùng Vương", "cửa hàng ở ét en mười lăm đường hùng vương"),
        ("Công ty CP Cấp nước Huế", "công ty cổ phần cấp nước huế"),
        ("Mã CP của doanh nghiệp", "mã xê pê của doanh nghiệp"),
        # unit codes: the leading zero is part of the name
        ("Phòng PC02 và PA05 phối hợp", "phòng pê xê không hai và pê a không năm phối hợp"),
        ("Đội bóng U23 thắng", "đội bóng u hai mươi ba thắng"),
    ],
)
def test_context_abbreviations(text, spoken):
    assert _words(text) == spoken


def test_context_abbreviations_are_marked_heuristic():
    readings = [r for r in spoken_readings("Theo TT 12/2024/TT-BCA") if r.written.startswith("TT")]
    assert readings and readings[0].decided == "heuristic"


# --- Place prefixes and person's initials ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Trụ sở đặt tại P. Hòa Minh", "trụ sở đặt tại phường hòa minh"),
        ("Sáp nhập P.Tân Lợi và P.Tân Hòa", "sáp nhập phường tân lợi và phường tân hòa"),
        ("Khu vực P.3 và Q. 5 mất điện", "khu vực phường ba và quận năm mất điện"),
        ("Chợ Q.10 mở cửa", "chợ quận mười mở cửa"),
        ("Xã Tân Lập thuộc H.Cam Lâm", "xã tân lập thuộc huyện cam lâm"),
        ("Tại P. Mỹ An có mưa lớn", "tại phường mỹ an có mưa lớn"),
        ("Trụ sở UBND P14, Q3 ở đâu", "trụ sở ủy ban nhân dân phường mười bốn quận ba ở đâu"),
        # a person's initial: after a kinship word, a name, or another initial
        ("Anh trai của chị H. Mai đã trình báo", "anh trai của chị hát mai đã trình báo"),
        ("Ông Trần Văn P. Hùng và vợ", "ông trần văn pê hùng và vợ"),
        ("Anh N.V.H đã nhận lại tiền", "anh en vê hát đã nhận lại tiền"),
        ("Bà Lê Thị Q. (55 tuổi) bị lừa", "bà lê thị quy năm mươi lăm tuổi bị lừa"),
        ("cháu M. đã về nhà", "cháu em đã về nhà"),
        # a lone "P2" is a code, not a ward
        ("Bãi xe tầng P2 đã đầy", "bãi xe tầng pê hai đã đầy"),
        # without the dot a capital letter is a letter
        ("Dãy nhà khu P có nước", "dãy nhà khu pê có nước"),
    ],
)
def test_place_prefixes_and_initials(text, spoken):
    assert _words(text) == spoken


def test_an_initial_dot_is_not_a_sentence_end_but_a_final_one_is():
    assert to_spoken("Bà K. đã được đưa về nhà.") == "bà ca đã được đưa về nhà."
    assert (
        to_spoken("Trẻ cần bổ sung vitamin D. Phụ huynh lưu ý.")
        == "trẻ cần bổ sung vitamin dê. phụ huynh lưu ý."
    )


# --- Single capital letters ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Tiêm vắc xin viêm gan B cho trẻ", "tiêm vắc xin viêm gan bê cho trẻ"),
        ("Bổ sung vitamin C mỗi ngày", "bổ sung vitamin xê mỗi ngày"),
        ("Soạn tin theo cú pháp K gửi tổng đài", "soạn tin theo cú pháp ca gửi tổng đài"),
        ("Lô đất phân khu D4 và khu L", "lô đất phân khu dê bốn và khu e lờ"),
        ("Tuyến quốc lộ 9B sạt lở", "tuyến quốc lộ chín bê sạt lở"),
        ("Virus cúm H5N1", "virus cúm hát năm en một"),
        # units glued to a number stay units; "°C" is degrees
        ("Điện áp 220V, nhiệt độ 30°C", "điện áp hai trăm hai mươi vôn nhiệt độ ba mươi độ xê"),
        # "Y" is a word too ("ngành Y"): left to the engine, which says it the same way
        ("Sinh viên ngành Y", "sinh viên ngành y"),
    ],
)
def test_single_letters(text, spoken):
    assert _words(text) == spoken


# --- Roman numerals -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Tiêm vắc xin đợt I cho trẻ", "tiêm vắc xin đợt một cho trẻ"),
        ("Đợt II và đợt III", "đợt hai và đợt ba"),
        ("Cháy ở tầng V của tòa nhà", "cháy ở tầng năm của tòa nhà"),
        ("Giai đoạn II của dự án", "giai đoạn hai của dự án"),
        ("Quốc hội khóa XV", "quốc hội khóa mười lăm"),
        ("Kỳ họp thứ X", "kỳ họp thứ mười"),
        ("Nước lên trên báo động II", "nước lên trên báo động hai"),
        ("Trường mầm non Hòa Khánh II", "trường mầm non hòa khánh hai"),
        ("Phường Vĩnh Phước II mở rộng", "phường vĩnh phước hai mở rộng"),
        ("Học sinh cấp II", "học sinh cấp hai"),
        ("Bệnh viện đa khoa khu vực IV", "bệnh viện đa khoa khu vực bốn"),
        # letters, not numerals
        ("Tòa nhà khu A và khu B", "tòa nhà khu a và khu bê"),
        ("Soạn tin cú pháp V gửi tổng đài", "soạn tin cú pháp vê gửi tổng đài"),
        ("Cỡ áo XL còn hàng", "cỡ áo ích e lờ còn hàng"),
        ("Ông XXX không đến", "ông ích ích ích không đến"),
        ("Mẫu số II-A kèm theo", "mẫu số i i a kèm theo"),
    ],
)
def test_roman_numerals(text, spoken):
    assert _words(text) == spoken


def test_a_lone_roman_numeral_is_marked_heuristic():
    readings = [r for r in spoken_readings("Trường Hòa Khánh II") if r.written == "II"]
    assert readings and readings[0].decided == "heuristic"
