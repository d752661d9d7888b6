"""Numbers with their suffixes (money, percent, units), and what stands between spoken numbers: ranges,
fractions, rates ("8.000đ/bản")."""

from __future__ import annotations

import re

from tts.normalize.numbers import _read_number
from tts.normalize.spans import _NA, _NB, _NUM_CLOSE, _NUM_OPEN, _num, _sub_free

# ---------------------------------------------------------------------------------------------------
# Numbers with their suffixes: money, percent, units
# ---------------------------------------------------------------------------------------------------
_UNITS = {
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "km/h": "ki lô mét trên giờ",
    "km": "ki lô mét",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "cm": "xăng ti mét",
    "mm": "mi li mét",
    "kg": "ki lô gam",
    "mg": "mi li gam",
    "ha": "héc ta",
    "ml": "mi li lít",
    "°C": "độ xê",
    "°F": "độ ép",
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
# One-letter units only when glued to the number ("5g", "220V"): "5 g" is too likely something else.
_GLUED_UNITS = {"g": "gam", "l": "lít", "W": "oát", "V": "vôn"}
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


def _number_repl(m: re.Match[str]) -> str:
    spoken = _read_number(m.group("num"))
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


def _numbers(line: str) -> str:
    line = _sub_free(_NEGATIVE_DEGREES, "âm ", line)
    line = _sub_free(_NUMBER, _number_repl, line)
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


def _between_numbers(line: str) -> str:
    line = _RANGE.sub(f"{_NUM_CLOSE} đến {_NUM_OPEN}", line)  # "6h00 - 6h30", "1-2 lần", "2023 - 2030"
    line = _OVER.sub(f"{_NUM_CLOSE} trên {_NUM_OPEN}", line)  # "100/100"
    # "02 ngày/tuần" "hai ngày mỗi tuần", "3 phút/bản tin", "1-2 lần/ngày"
    line = _RATE.sub(lambda m: " mỗi " + _per_unit(m.group("per")), line)
    return _MONEY_RATE.sub(lambda m: " mỗi " + _per_unit(m.group("per")), line)
