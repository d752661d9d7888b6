"""Dates, months and years ("01/12/2026", "tháng 4", "10/2026"), times of day and ratios ("6h30", "19:30",
"tỷ lệ 1:500")."""

from __future__ import annotations

import re

from tts.normalize.numbers import _read_integer, _read_number, number_to_words
from tts.normalize.spans import _num, _sub_free, _sub_free_in_context


def _month_name(month: int) -> str:
    # "tháng một" / "tháng tư": see the module docstring.
    return {1: "một", 4: "tư"}.get(month) or number_to_words(month)


# ---------------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------------
_DATE_FULL = re.compile(
    r"(?<![\w/.,])(?P<d>[0-9]{1,2})(?P<sep>[/.-])(?P<m>[0-9]{1,2})(?P=sep)(?P<y>[0-9]{4})(?![\w/]|[.,-][0-9])"
)
_MONTH_YEAR = re.compile(
    r"(?P<thang>(?<!\w)(?i:tháng)[ \t]+)?(?<![\w/.,])(?P<m>[0-9]{1,2})[ \t]*/[ \t]*(?P<y>[0-9]{4})"
    r"(?![\w/]|[.,][0-9])"
)
_DAY_MONTH = re.compile(r"(?<![\w/.,])(?P<d>[0-9]{1,2})/(?P<m>[0-9]{1,2})(?![\w/]|[.,][0-9])")
_MONTH_ALONE = re.compile(r"(?P<thang>(?<!\w)(?i:tháng)[ \t]+)(?P<m>[0-9]{1,2})(?![\w/]|[.,][0-9])")
# Words after which "d/m" is a date, not a fraction ("ngày 1/5", "dịp 2/9" but "khoảng 1/3 trang").
# fmt: off
_DATE_CONTEXT = frozenset({
    "ngày", "hôm", "mùng", "mồng", "từ", "đến", "sáng", "chiều", "tối", "trưa", "đêm", "dịp", "lễ", "tết",
    "trước", "sau", "tới", "hạn",
})
# fmt: on
_PREVIOUS_WORD = re.compile(r"([^\W\d_]+)[ \t]*$")


def _previous_word(text: str, pos: int) -> str:
    m = _PREVIOUS_WORD.search(text, max(0, pos - 30), pos)
    return m.group(1).lower() if m else ""


def _valid_date(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _date_words(day: int, month: int, year: str | None = None) -> str:
    words = f"{number_to_words(day)} tháng {_month_name(month)}"
    if year is not None:
        words += " năm " + number_to_words(int(year))
    return words


def _date_full_repl(m: re.Match[str]) -> str:
    day, month = int(m.group("d")), int(m.group("m"))
    if not _valid_date(day, month):
        return m.group()
    return _num(_date_words(day, month, m.group("y")))


def _month_year_repl(m: re.Match[str]) -> str:
    month, year = int(m.group("m")), int(m.group("y"))
    if 1 <= month <= 12:
        return _num(f"tháng {_month_name(month)} năm {number_to_words(year)}")
    # "số 15/2025": a number of the year 2025
    return (m.group("thang") or "") + _num(f"{_read_integer(m.group('m'))} năm {number_to_words(year)}")


# Words around "d/m" that make it a part of a whole: "chiếm 1/10 dân số", "trích 1/10 số tiền".
# fmt: off
_FRACTION_BEFORE = frozenset({
    "chiếm", "bằng", "trích", "gần", "khoảng", "hơn", "dưới", "trên", "còn", "đạt", "giảm", "tăng", "mất",
    "quá", "thiểu", "đa", "nhất", "cả", "tới", "lại",
})
# fmt: on
_FRACTION_AFTER = re.compile(
    r"[ \t]+(?i:số|dân|tổng|mức|diện tích|kinh phí|lượng|thời gian|phần|trong|của|quãng|chiều|khối"
    r"|cơ cấu)(?!\w)"
)
# A date list goes on being dates: "dịp 19/8 và 2/9", "ngày 1/5, 2/5".
_AFTER_A_DATE = re.compile(
    "(?:(?<![\\w/.,])[0-9]{1,2}/[0-9]{1,2}(?:/[0-9]{4})?|tháng[^\ue000\ue001]*\ue001)"
    "[ \\t]*(?:,|và|hoặc|đến|-|–)[ \\t]*$"
)


def _fraction_words(num: int, den: int) -> str:
    return f"{number_to_words(num)} phần {number_to_words(den)}"


def _day_month_repl(m: re.Match[str]) -> str:
    d_text, m_text = m.group("d"), m.group("m")
    day, month = int(d_text), int(m_text)
    before = m.string[max(0, m.start() - 80) : m.start()]
    previous = _previous_word(m.string, m.start())
    if _valid_date(day, month) and (previous in _DATE_CONTEXT or _AFTER_A_DATE.search(before)):
        return _num(_date_words(day, month))
    if (day, month) == (24, 7):  # "24/7": round the clock
        return _num("hai mươi tư trên bảy")
    if 0 < day < month and (previous in _FRACTION_BEFORE or _FRACTION_AFTER.match(m.string, m.end())):
        return _num(_fraction_words(day, month))
    if len(d_text) == 1 and len(m_text) == 1 and 0 < day < month:  # "1/3 trang": a fraction
        return _num(_fraction_words(day, month))
    if _valid_date(day, month):
        return _num(_date_words(day, month))
    if 0 < day < month:  # "1/20": not a date, a part of a whole
        return _num(_fraction_words(day, month))
    return m.group()  # read as "X trên Y" by the number pass


def _month_alone_repl(m: re.Match[str]) -> str:
    month = int(m.group("m"))
    if not 1 <= month <= 12:
        return m.group()
    return _num(m.group("thang") + _month_name(month))


def _dates(line: str) -> str:
    line = _sub_free(_DATE_FULL, _date_full_repl, line)
    line = _sub_free(_MONTH_YEAR, _month_year_repl, line)
    line = _sub_free_in_context(_DAY_MONTH, _day_month_repl, line)
    return _sub_free(_MONTH_ALONE, _month_alone_repl, line)


# ---------------------------------------------------------------------------------------------------
# Times: "6h30", "6h", "6g30", "19:30", "19:30:15"
# ---------------------------------------------------------------------------------------------------
_TIME_H = re.compile(
    r"(?<![\w/.,:])(?P<h>[0-9]{1,2})(?:h|g(?=[0-9]{2}))(?P<min>[0-5][0-9])?(?:ph|p|')?(?![^\W_])"
)
_TIME_COLON = re.compile(
    r"(?<![\w/.,:])(?P<h>[0-9]{1,2}):(?P<min>[0-5][0-9])(?::(?P<s>[0-5][0-9]))?(?![\w:]|[.,][0-9])"
)


def _time_words(hours: int, minutes: int, seconds: int = 0) -> str:
    words = f"{number_to_words(hours)} giờ"
    if minutes:
        # "6h30" "sáu giờ ba mươi"; "6h05" "sáu giờ năm phút" (a bare "năm" would be misheard)
        words += f" {number_to_words(minutes)}" + (" phút" if minutes < 10 or seconds else "")
    if seconds:
        words += f" {number_to_words(seconds)} giây"
    return words


def _time_repl(m: re.Match[str]) -> str:
    hours = int(m.group("h"))
    minutes = int(m.group("min") or 0)
    seconds = int(m.groupdict().get("s") or 0)
    if m.group("min") is not None and hours > 24:
        return m.group()
    return _num(_time_words(hours, minutes, seconds))


# "tỷ lệ 1:500", "3:1": a ratio, "a trên b". A clock time has two-digit minutes and no "tỷ lệ" before it.
_RATIO = re.compile(
    r"(?<![\w/.,:])(?P<a>[0-9]{1,3}(?:\.[0-9]{3})*)[ \t]?:[ \t]?(?P<b>[0-9]{1,3}(?:\.[0-9]{3})*)"
    r"(?![\w:]|[.,][0-9])"
)
_TIME_BEFORE = frozenset({"lúc", "từ", "đến", "tới", "vào", "sáng", "chiều", "tối", "trưa", "đêm", "hồi"})
_RATIO_TOPIC = re.compile(r"(?i:tỷ lệ|tỉ lệ|tỷ số|tỉ số|tỷ xích|tỉ xích|theo tỷ|theo tỉ)")


_SENTENCE_END = re.compile(r"[.;!?…](?=\s)")


def _clause_start(text: str, pos: int) -> int:
    """Where the sentence holding ``pos`` starts (a "tỷ lệ" in the sentence before says nothing)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, pos)]
    return ends[-1] if ends else 0


def _ratio_repl(m: re.Match[str]) -> str:
    a, b = m.group("a"), m.group("b")
    clock = len(b) == 2 and int(b) < 60 and int(a.replace(".", "")) <= 24
    if clock and (
        _previous_word(m.string, m.start()) in _TIME_BEFORE
        or not _RATIO_TOPIC.search(m.string, _clause_start(m.string, m.start()), m.start())
    ):
        return m.group()  # "họp lúc 7:30" even in a sentence about a "tỷ lệ"
    return _num(f"{_read_number(a)} trên {_read_number(b)}")


def _times(line: str) -> str:
    line = _sub_free_in_context(_RATIO, _ratio_repl, line)
    line = _sub_free(_TIME_H, _time_repl, line)
    return _sub_free(_TIME_COLON, _time_repl, line)
