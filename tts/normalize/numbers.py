"""Numbers: cardinals, decimals and thousands, ordinals, and Roman numerals in context."""

from __future__ import annotations

import operator
import re

from tts.normalize.spans import _NA, _NB, _num, _sub_free, heuristic

# ---------------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------------
_DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
# After "mươi" (20..99) the units 1, 4, 5 change: 21 "hai mươi mốt", 24 "hai mươi tư", 25 "hai mươi lăm".
_UNITS_AFTER_MUOI = {1: "mốt", 4: "tư", 5: "lăm"}
_SCALES = {1: "nghìn", 2: "triệu"}
# Integers longer than this are read digit by digit (an account number, not a quantity) and it keeps int()
# well below Python's 4300-digit conversion limit.
_MAX_INTEGER_DIGITS = 18


def _read_digits(digits: str) -> str:
    return " ".join(_DIGIT_WORDS[ord(d) - 48] for d in digits if "0" <= d <= "9")


def _below_thousand(n: int, full: bool) -> list[str]:
    """0 < n < 1000. full: a higher group precedes, so zero hundreds are spoken (2024 "không trăm hai
    mươi tư") and a zero tens digit is "linh" (2005 "không trăm linh năm")."""
    hundreds, rest = divmod(n, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    if hundreds or full:
        words += [_DIGIT_WORDS[hundreds], "trăm"]
    if tens == 0:
        if units:
            if words:
                words.append("linh")
            words.append(_DIGIT_WORDS[units])
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else _DIGIT_WORDS[units])
    else:
        words += [_DIGIT_WORDS[tens], "mươi"]
        if units:
            words.append(_UNITS_AFTER_MUOI.get(units, _DIGIT_WORDS[units]))
    return words


def _below_billion(n: int, full: bool) -> list[str]:
    words: list[str] = []
    for scale, group in ((2, n // 1_000_000), (1, n // 1000 % 1000), (0, n % 1000)):
        if group:  # zero groups are skipped: 1.000.500 is "một triệu năm trăm"
            words += _below_thousand(group, full=full or bool(words))
            if scale:
                words.append(_SCALES[scale])
    return words


def number_to_words(n: int) -> str:
    """Vietnamese cardinal of an integer: 2024 -> "hai nghìn không trăm hai mươi tư".

    Above a billion the "tỷ" blocks nest: 10**12 "một nghìn tỷ", 10**18 "một tỷ tỷ". Negative numbers get
    "âm". Works block by block (no recursion), so any int is fine.
    """
    n = operator.index(n)
    if n < 0:
        return "âm " + number_to_words(-n)
    if n == 0:
        return _DIGIT_WORDS[0]
    blocks = []  # base 10**9, least significant first
    while n:
        n, block = divmod(n, 1_000_000_000)
        blocks.append(block)
    words: list[str] = []
    for level in range(len(blocks) - 1, -1, -1):
        if blocks[level]:
            words += _below_billion(blocks[level], full=bool(words))
            words += ["tỷ"] * level
    return " ".join(words)


def _read_integer(digits: str) -> str:
    """A written integer. Leading zeros of a short number are a quantity ("04 giờ" = "bốn giờ"); a long
    one with a leading zero, or a very long one, is an identifier and is read digit by digit."""
    if len(digits) > _MAX_INTEGER_DIGITS or (digits.startswith("0") and len(digits) > 3):
        return _read_digits(digits)
    return number_to_words(int(digits))


def _read_decimals(digits: str) -> str:
    """The part after the decimal comma: "3,5" "năm", "3,25" "hai mươi lăm", "3,05" "không năm"."""
    if digits.startswith("0") or len(digits) > 3:
        return _read_digits(digits)
    return number_to_words(int(digits))


_THOUSANDS_DOT = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+")
_THOUSANDS_COMMA = re.compile(r"[0-9]{1,3}(?:,[0-9]{3}){2,}")


def _read_number(text: str) -> str:
    """Any written number the number pass matched: 1.500.000 / 3,5 / 1.500,75 / 1,500,000 / 4.0 / 2024."""
    if _THOUSANDS_COMMA.fullmatch(text):  # English grouping, from copied web text
        return _read_integer(text.replace(",", ""))
    whole, comma, decimals = text.partition(",")
    if _THOUSANDS_DOT.fullmatch(whole):
        spoken = _read_integer(whole.replace(".", ""))
    elif "." in whole:  # "4.0", "1.2.3": not thousands, read with "chấm"
        spoken = " chấm ".join(
            _read_decimals(part) if i else _read_integer(part) for i, part in enumerate(whole.split("."))
        )
    else:
        spoken = _read_integer(whole)
    if comma:
        spoken += " phẩy " + _read_decimals(decimals)
    return spoken


# ---------------------------------------------------------------------------------------------------
# Ordinals ("thứ 2", "lần thứ 1") and numbers that are names ("Đề án 06")
# ---------------------------------------------------------------------------------------------------
_ORDINAL = re.compile(r"(?P<ctx>(?<!\w)(?i:thứ)[ \t]+)(?P<n>[0-9]{1,3})(?![\w]|[.,][0-9])")
_NAMED_NUMBER = re.compile(r"(?P<ctx>(?<!\w)(?i:đề án)[ \t]+)(?P<n>0[0-9]+)(?![\w]|[.,][0-9])")


def _ordinal_words(n: int) -> str:
    return {1: "nhất", 4: "tư"}.get(n) or number_to_words(n)


def _ordinal_repl(m: re.Match[str]) -> str:
    spoken = _ordinal_words(int(m.group("n")))
    return _num(m.group("ctx") + spoken)  # "từ thứ 2 - thứ 6": the dash is "đến"


def _ordinals(line: str) -> str:
    line = _sub_free(_ORDINAL, _ordinal_repl, line)
    # "Đề án 06" is said "đề án không sáu": the zero is part of the name.
    return _sub_free(_NAMED_NUMBER, lambda m: m.group("ctx") + _num(_read_digits(m.group("n"))), line)


# ---------------------------------------------------------------------------------------------------
# Roman numerals in context: "Quý IV", "Quý III/2026", "khóa XV", "thế kỷ XXI", "Quý III, IV"
# ---------------------------------------------------------------------------------------------------
# Only I, V, X, L (up to 89): "phần C", "mục D" are letters, not 100 and 500.
_ROMAN = r"(?:(?=[IVXL])(?:XL|L?X{0,3})(?:IX|IV|V?I{0,3}))"
_ROMAN_CONTEXT_WORDS = (
    "quý|khóa|khoá|thế kỷ|thế kỉ|đại hội|chương|phần|mục|tập|lần thứ|kỳ|kì|phụ lục|giai đoạn|hội nghị|"
    "kỳ họp|nhiệm kỳ|lớp|hạng|loại|bậc|thứ"
)
# Nouns that number their members with Roman numerals as often as with letters or digits ("đợt I", "tầng
# V", "phường V", "báo động I", "cấp II", "quân khu V"): after them a numeral is read, but it is the
# context, not the written form, that decides (heuristic), and letters other than I, V, X stay letters
# ("khu A", "nhóm B", "khu L").
_ROMAN_WEAK_CONTEXT_WORDS = "đợt|tầng|khu|khu vực|quân khu|phường|vùng|báo động|cấp|nhóm|cụm"
# Two or more of I, V, X standing alone ("đợt II", "Phường Vĩnh Phước II", "đường bộ II", "báo đông III"):
# no Vietnamese word or usual abbreviation is written so, so it is a numeral wherever it stands. L is
# left out of this form ("XL" is a clothing size), and so are runs of X alone ("ông XXX", "số XX": a
# placeholder for a name or a number not yet known).
_ROMAN_LONE = rf"(?=[IVX]{{2}})(?!X+{_NA})(?:X{{0,3}})(?:IX|IV|V?I{{0,3}})"
_ROMAN_SEP = r"[ \t]*(?:,|và|-|–|đến)[ \t]*"
_ROMAN_CONTEXT = re.compile(
    rf"(?:(?P<ctx>{_NB}(?i:{_ROMAN_CONTEXT_WORDS})[ \t]+)"
    rf"|(?P<weak>{_NB}(?i:{_ROMAN_WEAK_CONTEXT_WORDS})[ \t]+))?"
    rf"(?P<list>(?(ctx){_ROMAN}|(?(weak)(?!L{_NA}){_ROMAN}|{_NB}(?<![-/.]){_ROMAN_LONE}))(?:{_ROMAN_SEP}{_ROMAN})*)"
    rf"{_NA}(?(ctx)|(?(weak)|(?![-/][^\W\d_])))"  # a lone "II-A" is a code, not a numeral
    rf"(?:[ \t]*/[ \t]*(?P<year>[0-9]{{4}})(?![\w/]))?"
)
_QUARTER_ARABIC = re.compile(
    rf"(?P<ctx>{_NB}(?i:quý)[ \t]+)(?P<q>[1-4])[ \t]*/[ \t]*(?P<year>[0-9]{{4}}){_NA}"
)
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def _roman_value(roman: str) -> int:
    total = 0
    for i, ch in enumerate(roman):
        value = _ROMAN_VALUES[ch]
        nxt = _ROMAN_VALUES[roman[i + 1]] if i + 1 < len(roman) else 0
        total += -value if value < nxt else value
    return total


def _roman_repl(m: re.Match[str]) -> str:
    ctx = m.group("ctx") or m.group("weak") or ""
    if m.group("weak"):
        heuristic(f"số La Mã sau “{ctx.strip()}”: đọc là số")
    elif not ctx:
        heuristic("chữ II, III, IV... đứng riêng: đọc là số La Mã")
    parts = re.split(rf"({_ROMAN_SEP})", m.group("list"))
    words = []
    for i, part in enumerate(parts):
        if i % 2:
            sep = part.strip()
            words.append(", " if sep == "," else " và " if sep == "và" else " đến ")
        elif ctx.rstrip().lower().endswith("thứ"):
            words.append(_ordinal_words(_roman_value(part)))  # "lần thứ I" is "lần thứ nhất"
        else:
            words.append(number_to_words(_roman_value(part)))
    spoken = "".join(words)
    if m.group("year"):
        spoken += " năm " + number_to_words(int(m.group("year")))
    return _num(ctx + spoken)  # "Quý IV/2025 - Quý I/2026": the dash is "đến"


def _quarter_repl(m: re.Match[str]) -> str:
    quarter, year = number_to_words(int(m.group("q"))), number_to_words(int(m.group("year")))
    return _num(f"{m.group('ctx')}{quarter} năm {year}")


def _romans(line: str) -> str:
    line = _sub_free(_ROMAN_CONTEXT, _roman_repl, line)
    return _sub_free(_QUARTER_ARABIC, _quarter_repl, line)
