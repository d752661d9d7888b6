"""Numbers with their suffixes (money, percent, units as typed: "34.2%", "1,1 nghìn ha", "1m65", "Km109+150"),
and what stands between spoken numbers: ranges, fractions, rates ("8.000đ/bản" with "mỗi"; a measure over a
measure, "60 tạ/ha", with "trên")."""

from __future__ import annotations

import re

from tts.normalize.numbers import _read_decimals, _read_number, number_to_words
from tts.normalize.spans import _NA, _NB, _NUM_CLOSE, _NUM_OPEN, _num, _sub_free, _txt

# ---------------------------------------------------------------------------------------------------
# Numbers with their suffixes: money, percent, units
# ---------------------------------------------------------------------------------------------------
_UNITS = {
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "km/h": "ki lô mét trên giờ",
    "km": "ki lô mét",
    "Km": "ki lô mét",  # "Km", "KM": as typed on police and road pages, after a number only
    "KM": "ki lô mét",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "cm²": "xăng ti mét vuông",
    "cm2": "xăng ti mét vuông",
    "cm": "xăng ti mét",
    "mm": "mi li mét",
    "kg": "ki lô gam",
    "mg": "mi li gam",
    "ha": "héc ta",
    "ml": "mi li lít",
    "°C": "độ xê",
    "oC": "độ xê",  # "35oC": the degree sign typed as a letter o
    "°F": "độ ép",
    # Coordinates in storm bulletins: "tâm bão ở khoảng 16,3°N; 124,6°E".
    "°N": "độ vĩ bắc",
    "°S": "độ vĩ nam",
    "°E": "độ kinh đông",
    "°W": "độ kinh tây",
    "°": "độ",
    "GB": "gi ga bai",
    "MB": "mê ga bai",
    "KB": "ki lô bai",
    "TB": "tê ra bai",
    "Mbps": "mê ga bít trên giây",
    "Gbps": "gi ga bít trên giây",
    "kWh": "ki lô oát giờ",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
    "mAh": "mi li am pe giờ",
    "m": "mét",
}
# One-letter units only when glued to the number ("5g", "220V", "30s"): "5 g" is too likely something else.
_GLUED_UNITS = {"g": "gam", "l": "lít", "W": "oát", "V": "vôn", "s": "giây"}
_MONEY = dict.fromkeys(("đ", "₫", "đồng", "VNĐ", "VND", "vnđ", "vnd"), "đồng")


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_NUMBER = re.compile(
    r"(?P<usd>\$[ \t]?)?"
    rf"{_NB}(?<![0-9][.,])"
    r"(?P<num>[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?"  # 1.500.000 / 1.500,75
    r"|[0-9]{1,3}(?:,[0-9]{3}){2,}"  # 1,500,000
    r"|[0-9]+,[0-9]+"  # 3,5
    r"|[0-9]+(?:\.[0-9]+)+"  # 4.0
    r"|[0-9]+)"
    r"(?![.,]?[0-9])"
    # "1,1 nghìn ha", "1.3 triệu": a magnitude word between the number and its unit
    rf"(?P<mag>[ \t]+(?:nghìn|ngàn|triệu|tỷ|tỉ|vạn){_NA})?"
    r"(?:(?P<percent>[ \t]?%)"
    rf"|[ \t]?(?P<money>{_alternation(_MONEY)}){_NA}"
    rf"|(?P<kilo>k){_NA}"
    rf"|[ \t]?(?P<unit>{_alternation(_UNITS)})(?![^\W_²³])"
    rf"|(?P<glued>{_alternation(_GLUED_UNITS)}){_NA}"
    r")?"
    r"(?![0-9])"  # "30phút" is still thirty; letters before the number ("abc123", "H5N1") are not
)
_NEGATIVE_DEGREES = re.compile(r"(?:(?<=[ \t(])|^)[-−](?=[0-9][0-9.,]*[ \t]?°)")
_DEGREES_C = re.compile(rf"(?<!\w)(?i:độ)[ \t]+C{_NA}")


# "34.2%", "1.3 triệu", "1.5 km": pages copied from English-language tools write the decimal point as a dot.
# One dot and one or two digits after it cannot be thousands ("1.500"), and a version number ("4.0",
# "thời đại 4.0") never carries a percent, a magnitude or a unit, so with one of those after it the dot
# is the decimal point and is read "phẩy".
_DOT_DECIMAL = re.compile(r"[0-9]+\.[0-9]{1,2}")


def _number_repl(m: re.Match[str]) -> str:
    num = m.group("num")
    measured = any(m.group(g) for g in ("mag", "percent", "money", "unit", "glued"))
    if measured and _DOT_DECIMAL.fullmatch(num):
        num = num.replace(".", ",")
    spoken = _read_number(num)
    if m.group("mag"):
        spoken += " " + m.group("mag").strip()
    if m.group("percent"):
        spoken += " phần trăm"
    elif m.group("money"):
        spoken += " " + _MONEY[m.group("money")]
    elif m.group("kilo"):
        spoken += " nghìn"
    elif m.group("unit"):
        spoken += " " + _UNITS[m.group("unit")]
    elif m.group("glued"):
        spoken += " " + _GLUED_UNITS[m.group("glued")]
    if m.group("usd"):
        spoken += " đô la"
    return _num(spoken)


# "1m6", "1m65": a height in metres and centimetres, "một mét sáu", "một mét sáu mươi lăm".
_METRES_CM = re.compile(rf"{_NB}(?P<m>[0-9])m(?P<cm>[0-9]{{1,2}}){_NA}")
# "Km120", "Km109+150": a kilometre post on a road, "ki lô mét một trăm linh chín cộng một trăm năm
# mươi" (capital K: "km2" is square kilometres).
_KM_POST = re.compile(rf"{_NB}K[mM][ \t]?(?P<km>[0-9]{{1,4}})(?:\+(?P<plus>[0-9]{{1,3}}))?{_NA}")
# A unit written without a number ("hàng nghìn m3 đất", "mỗi km2"): these tokens are no Vietnamese word.
# After "/" they are left to the rate pass ("7.500 đồng/m3").
_LONE_UNITS = ("km²", "km2", "m²", "m2", "m³", "m3", "km")
_LONE_UNIT = re.compile(rf"(?<![^\W_])(?<!/)(?P<unit>{'|'.join(_LONE_UNITS)})(?![^\W_²³])")


def _km_post_repl(m: re.Match[str]) -> str:
    spoken = "ki lô mét " + number_to_words(int(m.group("km")))
    if m.group("plus"):
        spoken += " cộng " + number_to_words(int(m.group("plus")))
    return _num(spoken)


def _numbers(line: str) -> str:
    line = _sub_free(_NEGATIVE_DEGREES, "âm ", line)
    line = _sub_free(
        _METRES_CM, lambda m: _num(f"{_read_number(m['m'])} mét {_read_decimals(m['cm'])}"), line
    )
    line = _sub_free(_KM_POST, _km_post_repl, line)
    line = _sub_free(_NUMBER, _number_repl, line)
    line = _sub_free(_LONE_UNIT, lambda m: _txt(_UNITS[m.group("unit")]), line)
    return _sub_free(_DEGREES_C, "độ xê", line)


# ---------------------------------------------------------------------------------------------------
# Between spoken numbers: ranges, fractions, rates
# ---------------------------------------------------------------------------------------------------
_RANGE = re.compile("\ue001[ \t]*[-–—~−][ \t]*\ue000")
_OVER = re.compile("\ue001[ \t]*/[ \t]*\ue000")
_PER_WORDS = (
    "ngày|tuần|tháng|năm|quý|giờ|phút|giây|lần|người|hộ|buổi|kỳ|đợt|lượt|bản tin|bản|tiết|ca|chuyến|"
    "suất|chiếc|cái|con|thửa|lô|phòng|học sinh|trẻ|xe|bộ|hồ sơ|trang|gói|liều|mũi|lớp|điểm|"
    "km2|km²|km|kg|tấn|tạ|m3|m³|m2|m²|ha|lít|h"
)
_RATE = re.compile(rf"(?<=[^\W\d_]|\ue001|\ue003)[ \t]*/[ \t]*(?P<per>(?i:{_PER_WORDS})){_NA}")
# "8.000đ/bản", "15.000 đồng/suất ăn": after a sum of money, "/" is "mỗi" whatever the word.
_MONEY_RATE = re.compile(r"(?<=đồng\ue001)[ \t]*/[ \t]*(?P<per>[^\W\d_][^\W_]*[²³]?)")


def _per_unit(word: str) -> str:
    """The word after "/" in a rate: a unit is said in full ("kWh" "ki lô oát giờ"), a word as it is."""
    return _UNITS.get(word) or _PER_SPOKEN.get(word.lower()) or word


_PER_SPOKEN = {
    "km": "ki lô mét",
    "kg": "ki lô gam",
    "m2": "mét vuông",
    "m²": "mét vuông",
    "m3": "mét khối",
    "m³": "mét khối",
    "km2": "ki lô mét vuông",
    "km²": "ki lô mét vuông",
    "ha": "héc ta",
    "h": "giờ",
}


# A measure over a measure is a quantity of its own and is said with "trên", as "km/h" already is ("ki lô
# mét trên giờ"): "10 mg/kg" "mi li gam trên ki lô gam" (a dose), "60 tạ/ha" "tạ trên héc ta" (a yield),
# "5 m/s". A count per period or per person stays a rate with "mỗi" ("2 lần/tuần", "2 kg/người").
_MEASURE_BEFORE = (
    rf"(?:{_alternation(set(_UNITS.values()) | set(_GLUED_UNITS.values()))}){_NUM_CLOSE}"
    r"|(?<![^\W_])(?:tạ|tấn|yến|lít|gam|mét)"
)
_MEASURE_PER = {
    **_PER_SPOKEN,
    "m": "mét",
    "cm": "xăng ti mét",
    "g": "gam",
    "l": "lít",
    "lít": "lít",
    "tấn": "tấn",
    "s": "giây",
    "giây": "giây",
    "phút": "phút",
    "giờ": "giờ",
}
_UNIT_RATE = re.compile(
    rf"(?P<measure>{_MEASURE_BEFORE})[ \t]*/[ \t]*(?P<per>{_alternation(_MEASURE_PER)})(?![^\W_²³])"
)


def _between_numbers(line: str) -> str:
    line = _RANGE.sub(f"{_NUM_CLOSE} đến {_NUM_OPEN}", line)  # "6h00 - 6h30", "1-2 lần", "2023 - 2030"
    line = _OVER.sub(f"{_NUM_CLOSE} trên {_NUM_OPEN}", line)  # "100/100"
    line = _UNIT_RATE.sub(lambda m: f"{m.group('measure')} trên {_MEASURE_PER[m.group('per')]}", line)
    # "02 ngày/tuần" "hai ngày mỗi tuần", "3 phút/bản tin", "1-2 lần/ngày"
    line = _RATE.sub(lambda m: " mỗi " + _per_unit(m.group("per")), line)
    return _MONEY_RATE.sub(lambda m: " mỗi " + _per_unit(m.group("per")), line)
