"""Dates, months and years ("01/12/2026", "tháng 4", "10/2026", and by context "ngày 20-11", "Ngày 14.5"),
scores ("thắng 3-1"), counts out of a total and fractions ("65/76 giáo viên", "1/3 trang"), times of day
and ratios ("6h30", "08 giờ 00", "19:30", "tỷ lệ 1:500")."""

from __future__ import annotations

import re

from tts.normalize.numbers import _read_integer, _read_number, number_to_words
from tts.normalize.spans import _num, _sub_free, _sub_free_in_context, heuristic


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
    # A quarter is "một phần tư", "ba phần tư": "phần bốn" is understood but no announcer says it.
    return f"{number_to_words(num)} phần {'tư' if den == 4 else number_to_words(den)}"


# A count out of a total is read "trên": "65/76 giáo viên", "đạt 35/40 điểm", "10/10 tổ dân phố" are so many
# people or units out of so many, as reports and score sheets give them, and "sáu mươi lăm phần bảy mươi
# sáu giáo viên" is no Vietnamese. The noun after the slash tells it: people, places, units and items are
# counted; a whole ("dân số", "kinh phí", "trang" of one page) is divided (_FRACTION_AFTER).
_COUNTED_AFTER = re.compile(
    r"[ \t]+(?i:hộ|người|giáo viên|học sinh|sinh viên|cán bộ|đảng viên|hội viên|đoàn viên|thành viên|cử tri"
    r"|đại biểu|bệnh nhân|ca|trường hợp|đối tượng|khu vực|khu phố|tổ|thôn|xóm|ấp|bản|xã|phường|thị trấn"
    r"|huyện|quận|tỉnh|thành phố|trường|lớp|đơn vị|cơ quan|cơ sở|doanh nghiệp|công trình|dự án|vị trí"
    r"|điểm|câu|phiếu|tiêu chí|chỉ tiêu|nhiệm vụ|thủ tục|hồ sơ|mẫu|trạm|tuyến|xe|tàu|đội|em|cháu|trẻ"
    r"|gia đình|căn|nhà|chiếc|cái|con|phòng|ban|ngành|nội dung|môn|trận|vụ)(?!\w)"
)
# Before these the slash is still a part of a whole, even of counted things: "gần 2/3 hộ dân".
_PORTION_BEFORE = frozenset({
    "chiếm", "bằng", "trích", "gần", "khoảng", "hơn", "dưới", "trên", "quá", "mất", "giảm", "tăng",
    "thiểu", "đa",
})  # fmt: skip


def _day_month_repl(m: re.Match[str]) -> str:
    d_text, m_text = m.group("d"), m.group("m")
    day, month = int(d_text), int(m_text)
    before = m.string[max(0, m.start() - 80) : m.start()]
    previous = _previous_word(m.string, m.start())
    if _valid_date(day, month) and (previous in _DATE_CONTEXT or _AFTER_A_DATE.search(before)):
        return _num(_date_words(day, month))
    if _valid_date(day, month) and _DAY_WORD_BEFORE.search(before):  # "Chủ nhật (4/8)", "hôm nay (7/8)"
        heuristic("đọc là ngày tháng vì đứng sau thứ trong tuần hoặc “hôm nay”")
        return _num(_date_words(day, month))
    span = _DAY_SPAN_BEFORE.search(before) and not _FRACTION_AFTER.match(m.string, m.end())
    if _valid_date(day, month) and span:  # "hai ngày 6 và 7/8"
        heuristic("đọc là ngày tháng vì tiếp theo một ngày đã nêu (“ngày 6 và …”)")
        return _num(_date_words(day, month))
    if (day, month) == (24, 7):  # "24/7": round the clock
        return _num("hai mươi tư trên bảy")
    if _FRACTION_AFTER.match(m.string, m.end()) and 0 < day < month:
        return _num(_fraction_words(day, month))
    if 0 < day < month <= 4 and previous != "đạt" and _COUNTED_AFTER.match(m.string, m.end()):
        # "1/3 học sinh", "2/3 hộ": halves, thirds and quarters of the people are a share, not a tally
        # ("đạt 1/2 điểm" is a score; "1/7 vị trí" is one site of seven).
        heuristic("đọc “phần” vì là phân số quen thuộc (một phần ba, hai phần ba…)")
        return _num(_fraction_words(day, month))
    if 0 < day <= month and previous not in _PORTION_BEFORE and _COUNTED_AFTER.match(m.string, m.end()):
        heuristic("đọc “trên” vì là số đếm trên tổng số (danh từ đếm được đứng sau)")
        return _num(f"{number_to_words(day)} trên {number_to_words(month)}")
    if 0 < day < month and previous in _FRACTION_BEFORE:
        return _num(_fraction_words(day, month))
    if len(d_text) == 1 and len(m_text) == 1 and 0 < day < month:  # "1/3 trang": a fraction
        return _num(_fraction_words(day, month))
    if _valid_date(day, month):
        return _num(_date_words(day, month))
    if 0 < day < month:  # "1/20": not a date, a part of a whole
        return _num(_fraction_words(day, month))
    return m.group()  # read as "X trên Y" by the number pass


# ---------------------------------------------------------------------------------------------------
# Day and month written with "-" or "." ("ngày 20-11", "sáng 5-9", "Ngày 14.5", "tháng 5-2009")
# ---------------------------------------------------------------------------------------------------
# Newspapers, police and weather pages write 20 November "20-11" or "20.11". The same marks make a range
# ("5-7 ngày", "cấp 6-7"), a score ("thắng 3-1") and a decimal ("1.3 triệu"), so the written form decides
# nothing: "d-m" and "d.m" are dates only where the words before make them one: a day word ("ngày",
# "sáng", "chiều", "đêm" ...), a weekday, "hôm nay", "chiều mai", "đêm qua", or a date just before in a list
# or a "từ ... đến" span. Anywhere else the dash stays a range and the dot a decimal or a version number.
# Words that make the number after them a day of a month; the bracket allows "Chủ nhật (4-8)".
_DAY_WORD_BEFORE = re.compile(
    r"(?<!\w)(?i:ngày|sáng|chiều|trưa|tối|đêm|khuya|mùng|mồng"
    r"|(?:hôm|ngày|sáng|chiều|trưa|tối|đêm) (?:nay|mai|qua)"
    r"|thứ (?:hai|ba|tư|năm|sáu|bảy|[2-7])|chủ nhật)[ \t]*\(?[ \t]*$"
)
# "các ngày từ 4 đến 7-11": the first day is a bare number, the second carries the month; "ngày 4-8 và
# 5-8", "từ 3.12 đến 7.12": the second of a list or a span goes on being a date.
_DAY_SPAN_BEFORE = re.compile(
    # "ngày 6 và 7/8", "các ngày 13, 14 và 15-8": days listed after a day word, the month on the last
    r"(?<!\w)(?:(?i:ngày|sáng|chiều|trưa|tối|đêm)[ \t]+(?i:từ[ \t]+)?[0-9]{1,2}"
    r"(?:[ \t]*(?:,|(?i:và|hoặc))[ \t]*[0-9]{1,2})*"
    r"|(?i:ngày|sáng|chiều|trưa|tối|đêm|từ)[ \t]+[0-9]{1,2}[-.][0-9]{1,2})"
    r"[ \t]*(?:,|và|hoặc|đến|tới|-|–)[ \t]*$"
)
_DAY_MONTH_MARKED = re.compile(
    r"(?<![\w/.,:+\-–])(?P<d>[0-9]{1,2})(?P<sep>[-.])(?:(?<=-)[ \t])?(?P<m>[0-9]{1,2})"  # "27- 11", a typo
    r"(?![\w/:%°]|[.,\-][0-9])"
)
# "từ 3.12 đến 7.12": the first date of the span is known by the second.
_SPAN_TO_A_DATE = re.compile(
    r"[ \t]*(?:đến|tới|-|–)[ \t]*[0-9]{1,2}(?P<sep>[-.])[0-9]{1,2}(?![\w/:%°]|[.,\-]?[0-9])"
)
# What makes "sáng 8-10 giờ" hours, not a date: a time or quantity word right after.
_QUANTITY_AFTER = re.compile(
    r"[ \t]*(?:%|°|(?i:giờ|tiếng|phút|giây|ngày|tuần|lần|người|hộ|triệu|tỷ|tỉ|nghìn|ngàn|trăm|độ"
    r"|km|cm|mm|m|kg|ha)(?!\w))"
)


def _day_month_marked_repl(m: re.Match[str]) -> str:
    day, month = int(m.group("d")), int(m.group("m"))
    if not _valid_date(day, month) or _QUANTITY_AFTER.match(m.string, m.end()):
        return m.group()
    text, start = m.string, m.start()
    before = text[max(0, start - 80) : start]
    if _DAY_WORD_BEFORE.search(before):
        heuristic(f"đọc là ngày tháng vì đứng sau “{_previous_word(text, start) or '('}”")
    elif _DAY_SPAN_BEFORE.search(before) or _AFTER_A_DATE.search(before):
        heuristic("đọc là ngày tháng vì tiếp theo một ngày đã nêu (“từ … đến”, danh sách ngày)")
    elif _previous_word(text, start) == "từ" and (to := _SPAN_TO_A_DATE.match(text, m.end())):
        if to.group("sep") != m.group("sep") or _QUANTITY_AFTER.match(text, to.end()):
            return m.group()  # "từ 5-7 đến 8-10 ngày": two ranges
        heuristic("đọc là ngày tháng vì là khoảng “từ … đến …” giữa hai ngày")
    else:
        return m.group()  # a range ("5-7 ngày") or a decimal ("4.5"): the number pass reads it
    return _num(_date_words(day, month))


# "tháng 5-2009", "tháng 10.2008": after "tháng" the four digits can only be the year.
_MONTH_YEAR_MARKED = re.compile(
    r"(?P<thang>(?<!\w)(?i:tháng)[ \t]+)(?P<m>[0-9]{1,2})[-.](?P<y>[0-9]{4})(?![\w/]|[.,\-][0-9])"
)
# "quý 4-2026", "quí 2-2008" (the "/" form is read with the Roman numerals, in numbers.py).
_QUARTER_YEAR_MARKED = re.compile(
    r"(?P<ctx>(?<!\w)(?i:quý|quí)[ \t]+)(?P<q>[1-4])[-.](?P<y>[0-9]{4})(?![\w/]|[.,\-][0-9])"
)


def _month_year_marked_repl(m: re.Match[str]) -> str:
    month = int(m.group("m"))
    if not 1 <= month <= 12:
        return m.group()
    return _num(f"{m.group('thang')}{_month_name(month)} năm {number_to_words(int(m.group('y')))}")


def _quarter_year_marked_repl(m: re.Match[str]) -> str:
    quarter, year = number_to_words(int(m.group("q"))), number_to_words(int(m.group("y")))
    return _num(f"{m.group('ctx')}{quarter} năm {year}")


# ---------------------------------------------------------------------------------------------------
# Scores: "thắng 3-1", "hòa 0-0", "tỷ số 2 - 1", "1-0 cũng là tỉ số chung cuộc"
# ---------------------------------------------------------------------------------------------------
# A score is said as its two numbers, "ba một", "không không": never "ba đến một", which is a range. The
# dash is a score only next to a score word: one of these up to three words before ("thắng đậm 9-0",
# "thắng Thái Lan 3-1"), or "tỷ số" just after ("1-0 cũng là tỉ số chung cuộc"). Capitalised, "Hòa" and
# "Thắng" are names ("Biên Hòa 2-3 ngày", "anh Thắng") unless they begin the sentence.
_SCORE = re.compile(
    r"(?<![\w/.,:+\-–])(?P<a>[0-9]{1,3})[ \t]*[-–][ \t]*(?P<b>[0-9]{1,3})(?![\w/:%°]|[.,\-–][0-9]|[ \t]*/)"
)
_SCORE_WORD = r"(?:tỷ số|tỉ số|thắng|hòa|hoà|thua|bại|cách biệt|chung cuộc)"
_SCORE_BEFORE = re.compile(rf"(?<!\w)(?P<word>(?i:{_SCORE_WORD}))(?!\w)(?:[ \t]+[^\W\d_]+){{0,3}}[ \t]*$")
_SCORE_AFTER = re.compile(r"[ \t]+(?:[^\W\d_]+[ \t]+){0,2}(?i:tỷ số|tỉ số)(?!\w)")
# "thắng 2-3 trận", "hòa 1-2 lần": counted things after the dash make it a range again.
_COUNT_AFTER = re.compile(r"[ \t]*(?i:trận|lần|ván|bàn|người|ngày|tuần|tháng|năm|giờ|điểm|%)(?!\w)")


def _score_repl(m: re.Match[str]) -> str:
    text = m.string
    if _COUNT_AFTER.match(text, m.end()):
        return m.group()
    # The score word is at most three words back: a short window keeps a long line linear.
    window = text[max(0, m.start() - 60) : m.start()]
    clause = window[max((e.end() for e in _SENTENCE_END.finditer(window)), default=0) :]
    before = _SCORE_BEFORE.search(clause)
    if before and before.group("word")[0].isupper() and clause[: before.start()].strip(" \t-–—"):
        before = None  # "Biên Hòa 2-3": a name, not a draw
    if before:
        heuristic(f"đọc là tỷ số vì đứng sau “{before.group('word').lower()}”")
    elif _SCORE_AFTER.match(text, m.end()):
        heuristic("đọc là tỷ số vì “tỷ số” đứng ngay sau")
    else:
        return m.group()
    return _num(f"{number_to_words(int(m.group('a')))} {number_to_words(int(m.group('b')))}")


def _month_alone_repl(m: re.Match[str]) -> str:
    month = int(m.group("m"))
    if not 1 <= month <= 12:
        return m.group()
    return _num(m.group("thang") + _month_name(month))


def _dates(line: str) -> str:
    line = _sub_free(_DATE_FULL, _date_full_repl, line)
    line = _sub_free(_MONTH_YEAR, _month_year_repl, line)
    line = _sub_free(_MONTH_YEAR_MARKED, _month_year_marked_repl, line)
    line = _sub_free(_QUARTER_YEAR_MARKED, _quarter_year_marked_repl, line)
    line = _sub_free_in_context(_DAY_MONTH, _day_month_repl, line)
    line = _sub_free_in_context(_SCORE, _score_repl, line)  # before "d-m": "tối 5-9 thắng 3-1"
    line = _sub_free_in_context(_DAY_MONTH_MARKED, _day_month_marked_repl, line)
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


# "08 giờ 00", "22giờ 00", "17 giờ 00 phút": notices write the minutes of a full hour; an announcer says
# "tám giờ", never "tám giờ không". "8 giờ 05" is "tám giờ năm phút", as "6h05". Other minutes ("14 giờ
# 30") are left to the number pass, which reads them the same. A "0X" after "giờ" followed by a noun is a
# count ("24 giờ 05 người"), not minutes.
_HOUR_WORD_MINUTES = re.compile(
    r"(?<![\w/.,:])(?P<h>[0-9]{1,2})[ \t]*giờ[ \t]*(?P<min>0[0-9])(?![\w/:%°]|[.,][0-9])"
    r"(?P<phut>[ \t]*phút(?!\w))?"
)
_AFTER_CLOCK = re.compile(
    r"[ \t]+(?!(?i:sáng|chiều|trưa|tối|đêm|khuya|ngày|hôm|hằng|hàng|mỗi|và|đến|tới|thì|cùng|tại|ở)(?!\w))"
    r"[^\W\d_]"
)


def _hour_word_repl(m: re.Match[str]) -> str:
    hours, minutes = int(m.group("h")), int(m.group("min"))
    if hours > 24 or (minutes and not m.group("phut") and _AFTER_CLOCK.match(m.string, m.end())):
        return m.group()
    return _num(_time_words(hours, minutes))


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


# "tới 21g ngày 7/9", "từ 7g đến 11g": news writes a full hour with "g" (giờ), which is also grams ("500g
# đường"). Only with a clock word before it or a day word after it is it an hour.
_HOUR_G = re.compile(r"(?<![\w/.,:])(?P<h>[0-9]{1,2})g(?![^\W_])")
_DAY_AFTER_HOUR = re.compile(
    r"[ \t]*,?[ \t]*(?i:ngày|sáng|chiều|tối|đêm|hôm|cùng ngày|hằng ngày|đến|tới)(?!\w)"
)


def _hour_g_repl(m: re.Match[str]) -> str:
    hours = int(m.group("h"))
    before = _previous_word(m.string, m.start()) in _TIME_BEFORE
    if hours > 24 or not (before or _DAY_AFTER_HOUR.match(m.string, m.end())):
        return m.group()
    heuristic("đọc “g” là giờ vì đứng cạnh từ chỉ thời gian")
    return _num(_time_words(hours, 0))


def _times(line: str) -> str:
    line = _sub_free_in_context(_RATIO, _ratio_repl, line)
    line = _sub_free(_TIME_H, _time_repl, line)
    line = _sub_free_in_context(_HOUR_G, _hour_g_repl, line)
    line = _sub_free_in_context(_HOUR_WORD_MINUTES, _hour_word_repl, line)
    return _sub_free(_TIME_COLON, _time_repl, line)
