"""Phone numbers, hotlines and document codes: the digits read group by group, the codes dropped."""

from __future__ import annotations

import logging
import re

from tts.normalize.numbers import _read_digits, _read_integer, number_to_words
from tts.normalize.spans import _NA, _NB, _num, _sub_free, _sub_free_in_context

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# Document codes: "85/KH-UBND", "57-NQ/TW", "02/2025/TT-BGDĐT", "Số: /KH-UBND"
# ---------------------------------------------------------------------------------------------------
_CODE_PART = r"[A-ZĐ][A-ZĐ]+[a-zđ]*[0-9]*"
_DOC_CODE = re.compile(
    rf"(?<![\w/.,])(?P<num>[0-9]+)(?:[ \t]*/[ \t]*(?P<year>[0-9]{{4}}))?"
    rf"(?P<code>[-/]{_CODE_PART}(?:[ \t]?[-/][ \t]?{_CODE_PART})*){_NA}"
)
_BLANK_DOC_CODE = re.compile(
    rf"(?P<pre>{_NB}(?i:số)[ \t]*:?[ \t]*)/[ \t]*{_CODE_PART}(?:[ \t]?[-/][ \t]?{_CODE_PART})*{_NA}"
)


def _doc_code_repl(m: re.Match[str]) -> str:
    logger.debug("document code %r not read", m.group("code"))
    spoken = _read_integer(m.group("num").lstrip("0") or "0")
    if m.group("year"):
        spoken += " năm " + number_to_words(int(m.group("year")))
    return _num(spoken)


def _doc_codes(line: str) -> str:
    line = _sub_free(_DOC_CODE, _doc_code_repl, line)
    return _sub_free(_BLANK_DOC_CODE, lambda m: m.group("pre").rstrip(), line)


# ---------------------------------------------------------------------------------------------------
# Telephone numbers and hotlines
# ---------------------------------------------------------------------------------------------------
_PHONE = re.compile(
    r"(?<![\w.,/+-])(?P<plus>\+[ \t]?84[ \t.-]?)?"
    r"(?P<body>\(0[0-9]{1,3}\)[ \t]?[0-9]{2,8}(?:[ .-][0-9]{2,4}){0,3}"  # (024) 3942 5871
    r"|[0-9]{2,5}(?:[ .-][0-9]{2,4}){1,4}|0[0-9]{8,10}|1[89]00[0-9]{4})"
    r"(?![\w]|[.,-][0-9])"
)
_EMERGENCY = frozenset({"111", "112", "113", "114", "115"})
_HOTLINE = re.compile(
    r"(?P<ctx>(?<!\w)(?:(?i:gọi)(?:[ \t]+(?i:ngay|đến|tới|cho|vào|số))*|(?i:đường dây nóng|tổng đài|hotline)"
    r"(?:[ \t]+(?i:số))?|(?i:số))[ \t]*:?[ \t]*)"
    r"(?P<num>1[0-9]{2,3})(?![\w]|[.,][0-9])"
)


def _is_phone(digits: str, international: bool) -> bool:
    if international:
        return 8 <= len(digits) <= 10
    if digits.startswith("0"):
        return 9 <= len(digits) <= 11
    return digits[:4] in ("1800", "1900") and 8 <= len(digits) <= 10


def _phone_groups(digits: str) -> list[str]:
    """Groups for a number written without separators: 0905 123 456, 0258 3866 214, 1900 1234."""
    sizes = {8: (4, 4), 9: (3, 3, 3), 10: (4, 3, 3), 11: (4, 4, 3)}.get(len(digits), (len(digits),))
    groups, start = [], 0
    for size in sizes:
        groups.append(digits[start : start + size])
        start += size
    return groups


def _phone_repl(m: re.Match[str]) -> str:
    international = bool(m.group("plus"))
    body = m.group("body")
    if body.startswith("("):  # "(024) 3942 5871": the area code is read like any other group
        body = body[1:].replace(")", " ", 1).replace("  ", " ")
    groups = re.split(r"[ .-]", body)
    # Try the longest run of groups that is a phone number: "0905 123 456 12 lần" keeps "12 lần".
    for k in range(len(groups), 0, -1):
        digits = "".join(groups[:k])
        if not _is_phone(digits, international):
            continue
        spoken_groups = groups[:k] if k > 1 else _phone_groups(digits)
        spoken = ", ".join(_read_digits(g) for g in spoken_groups)
        if international:
            spoken = "cộng tám tư, " + spoken
        rest = body[len(" ".join(groups[:k])) :]
        return _num(spoken) + rest
    return m.group()


# After a number, words that make it an address or a count, not a hotline: "số 115 đường Trần Phú".
_ADDRESS_AFTER = re.compile(
    r"[ \t]*(?i:đường|phố|ngõ|ngách|kiệt|hẻm|hẽm|lô|thôn|tổ|khu|khối|căn|phòng|hộ|người|ngôi|nhà|tầng)(?!\w)"
)
_HOTLINE_TOPIC = re.compile(r"(?i:tổng đài|đường dây nóng|hotline|gọi|số điện thoại|sđt|điện thoại)")
_BARE_EMERGENCY = re.compile(r"(?<![\w.,/])(?P<num>11[1-5])(?![\w]|[.,/:-][0-9])")


def _hotline_repl(m: re.Match[str]) -> str:
    context = m.group("ctx").strip(" \t:").lower()
    if context == "số" and (m.group("num") not in _EMERGENCY or _ADDRESS_AFTER.match(m.string, m.end())):
        return m.group()  # "Quyết định số 1008", "số 115 đường Trần Phú": a quantity
    return m.group("ctx") + _num(_read_digits(m.group("num")))


def _bare_emergency_repl(m: re.Match[str]) -> str:
    # "Tổng đài quốc gia bảo vệ trẻ em 111 tiếp nhận ...": the switchboard named earlier in the sentence.
    if _HOTLINE_TOPIC.search(m.string, 0, m.start()) and not _ADDRESS_AFTER.match(m.string, m.end()):
        return _num(_read_digits(m.group("num")))
    return m.group()


def _phones(line: str) -> str:
    line = _sub_free(_PHONE, _phone_repl, line)
    line = _sub_free(_HOTLINE, _hotline_repl, line)
    return _sub_free_in_context(_BARE_EMERGENCY, _bare_emergency_repl, line)
