"""Phone numbers, hotlines and document codes: the digits read group by group, the codes dropped."""

from __future__ import annotations

import logging
import re

from tts.normalize.numbers import _read_digits, _read_integer
from tts.normalize.spans import _NA, _NB, _num, _sub_free, _sub_free_in_context, heuristic

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
    # The station's convention: the number is read, everything after it is dropped, the year part too
    # ("Nghị định số 64/2014/NĐ-CP ngày 26/6/2014" is "nghị định số sáu mươi tư ngày ..."). A document is
    # named on air by its kind and number; the year is nearly always said anyway by the date that follows
    # ("ngày 26/6/2014"), and "sáu mươi tư năm hai nghìn không trăm mười bốn" before it would say it twice.
    logger.debug("document code %r not read", m.group("code"))
    return _num(_read_integer(m.group("num").lstrip("0") or "0"))


def _doc_codes(line: str) -> str:
    line = _sub_free(_DOC_CODE, _doc_code_repl, line)
    return _sub_free(_BLANK_DOC_CODE, lambda m: m.group("pre").rstrip(), line)


# ---------------------------------------------------------------------------------------------------
# Telephone numbers and hotlines
# ---------------------------------------------------------------------------------------------------
_PHONE = re.compile(
    r"(?<![\w.,/+-])(?P<plus>\+[ \t]?84[ \t.-]?)?"
    r"(?P<body>\(0[0-9]{1,3}\)[ \t]?[0-9]{2,8}(?:[ .-][0-9]{2,4}){0,3}"  # (024) 3942 5871
    # "04.39985765": an area code, then the local number in one group (as fixed lines were written before
    # the 2017 renumbering, and still are on many notices); a thousands number never starts with "0".
    r"|0[1-9][0-9]?[ .-][0-9]{7,8}"
    r"|1[89]00[ .-][0-9]{5,6}"  # "1900 545413": the service prefix, then the rest in one group
    r"|[0-9]{2,5}(?:[ .-][0-9]{2,4}){1,4}|0[0-9]{8,10}|1[89]00[0-9]{4})"
    r"(?![\w]|[.,-][0-9])"
)
_EMERGENCY = frozenset({"111", "112", "113", "114", "115"})
# Hotlines and service numbers ("Tổng đài 1022", "gọi 115") and SMS short codes ("soạn tin ... gửi 8079",
# "đầu số 5656") are read digit by digit, like phone numbers: that is how they are dialled, and "năm nghìn
# sáu trăm năm mươi sáu" is a number no listener would key in. The words before the number tell it is one;
# _hotline_repl then checks what follows, since "gửi 500 hồ sơ" and "gọi 300 cuộc" are quantities.
_VERB = r"(?i:gọi|nhắn tin|nhắn|soạn tin|gửi|gởi)"  # "gởi": the Southern spelling of "gửi"
_TOWARDS = r"(?:[ \t]+(?i:ngay|đến|tới|cho|vào|qua))*"
_HOTLINE = re.compile(
    r"(?P<ctx>(?<!\w)(?:"
    rf"(?:{_VERB}{_TOWARDS}[ \t]+)?(?P<prefix>(?i:đầu số))"
    rf"|(?P<verb>{_VERB}){_TOWARDS}(?:[ \t]+(?i:số))?"
    r"|(?i:đường dây nóng|tổng đài|hotline)(?:[ \t]+(?i:số))?"
    r"|(?i:số))[ \t]*:?[ \t]*)"
    # After "đầu số" a list of prefixes: "đầu số 022, 024, 028", "đầu số 0869 hoặc 0868".
    r"(?P<num>[0-9]{2,5}"
    r"(?(prefix)(?:(?:[ \t]*,[ \t]*|[ \t]+(?i:và|hoặc)[ \t]+)[0-9]{2,5}(?![\w]|[.,][0-9]))*|))"
    r"(?![\w]|[.,][0-9])"
)


# "tránh gọi lại các đầu số quốc tế lạ như +224, +231": a country code is dialled, so it is read digit by
# digit after "cộng". Only where the sentence talks of calls or numbers ("+15 điểm" is a score change).
_COUNTRY_CODE = re.compile(r"(?<![\w+])\+[ \t]?(?P<cc>[1-9][0-9]{0,3})(?![\w%°]|[.,][0-9])")
_CALL_TOPIC = re.compile(r"(?i:đầu số|mã vùng|mã quốc gia|quốc tế|cuộc gọi|gọi|số điện thoại|số máy)")


def _country_code_repl(m: re.Match[str]) -> str:
    if not _CALL_TOPIC.search(m.string, max(0, m.start() - 60), m.start()):
        return m.group()
    heuristic("đọc là mã quốc gia vì câu nói về số điện thoại, cuộc gọi")
    return _num("cộng " + _read_digits(m.group("cc")))


def _is_phone(digits: str, international: bool) -> bool:
    if international:
        return 8 <= len(digits) <= 10
    if digits.startswith("0"):
        return 9 <= len(digits) <= 11
    return digits[:4] in ("1800", "1900") and 8 <= len(digits) <= 10


def _is_area_service(groups: list[str]) -> bool:
    """ "0290 1022": a province's area code, then a four-digit service number (1022 the citizens'
    switchboard, 1080...), as the provinces print them; it is dialled, and read, like a phone number."""
    return (
        len(groups) == 2
        and re.fullmatch(r"02[0-9]{1,2}", groups[0]) is not None
        and (re.fullmatch(r"1[0-9]{3}", groups[1]) is not None)
    )


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
        if not _is_phone(digits, international) and not _is_area_service(groups[:k]):
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


# After a service number, words that make it a count instead: "gọi 300 cuộc", "tổng đài 500 nhân viên".
_COUNTED_AFTER = re.compile(
    r"[ \t]*(?i:cuộc|lượt|lần|hồ sơ|đơn|ý kiến|trường hợp|tin|thư|suất|phần|bộ|bản|cái|chiếc|đồng|nghìn|"
    r"triệu|tỷ|nhân viên|tổng đài viên|cán bộ|máy|số|thuê bao|doanh nghiệp|học sinh|cuộn|kg|tấn)(?!\w)"
)
# After a number sent by SMS, only the end of the clause: "gửi 8079;", "gửi 156.", "gửi 5656 để tra cứu".
_CLAUSE_END = re.compile(r"[ \t]*(?:$|[.,;:!?)\]…\-–]|(?i:để|hoặc|miễn phí|và)(?!\w))")
_SMS_TOPIC = re.compile(r"(?i:tin nhắn|nhắn tin|soạn tin|soạn|cú pháp|sms|tổng đài|đầu số)")


def _is_service_number(m: re.Match[str]) -> bool:
    """Whether the number after a hotline word is a service number or short code (see _HOTLINE)."""
    context, num = m.group("ctx").strip(" \t:").lower(), m.group("num")
    after = m.end()
    if m.group("prefix"):  # "đầu số": a number prefix, never a quantity
        return True
    if context == "số":  # "Quyết định số 1008", "số 115 đường Trần Phú": a quantity
        return num in _EMERGENCY and not _ADDRESS_AFTER.match(m.string, after)
    if len(num) < 3 or not num.isdigit() or _ADDRESS_AFTER.match(m.string, after):
        return False
    if _COUNTED_AFTER.match(m.string, after):
        return False
    verb = (m.group("verb") or "").lower()
    if verb in ("gửi", "nhắn", "nhắn tin", "soạn tin"):
        # "gửi 500 hồ sơ": after "gửi" a code only closes the clause, and only where the sentence is
        # about messages ("soạn tin ... gửi 8079"); "nhắn tin"/"soạn tin" say it themselves.
        if not _CLAUSE_END.match(m.string, after):
            return False
        if verb == "gửi" and not _SMS_TOPIC.search(m.string, 0, m.start()):
            return False
        heuristic("đọc từng chữ số vì là đầu số nhắn tin (sau “gửi”/“nhắn tin”, cuối mệnh đề)")
    elif num not in _EMERGENCY and not re.fullmatch(r"1[0-9]{2,3}", num):
        heuristic("đọc từng chữ số vì là số tổng đài đứng sau “tổng đài”/“gọi”/“đường dây nóng”")
    return True


def _hotline_repl(m: re.Match[str]) -> str:
    if not _is_service_number(m):
        return m.group()
    items = re.findall(r"[0-9]+|[^0-9]+", m.group("num"))
    # A list after "đầu số" goes on while the items look alike (as many digits, the same first digit):
    # "022, 024, 028", "1900 hoặc 1800"; in "5656, 2024 là năm ..." the year is left to the later passes.
    spoken = []
    for i, item in enumerate(items):
        if item.isdigit() and (len(item) != len(items[0]) or item[0] != items[0][0]):
            separator = spoken.pop()
            return m.group("ctx") + "".join(spoken) + separator + "".join(items[i:])
        spoken.append(_num(_read_digits(item)) if item.isdigit() else item)
    return m.group("ctx") + "".join(spoken)


def _bare_emergency_repl(m: re.Match[str]) -> str:
    # "Tổng đài quốc gia bảo vệ trẻ em 111 tiếp nhận ...": the switchboard named earlier in the sentence.
    if _HOTLINE_TOPIC.search(m.string, 0, m.start()) and not _ADDRESS_AFTER.match(m.string, m.end()):
        return _num(_read_digits(m.group("num")))
    return m.group()


def _phones(line: str) -> str:
    line = _sub_free(_PHONE, _phone_repl, line)  # "+84 ..." first: a whole number, not a country code
    line = _sub_free_in_context(_COUNTRY_CODE, _country_code_repl, line)
    line = _sub_free(_HOTLINE, _hotline_repl, line)
    return _sub_free_in_context(_BARE_EMERGENCY, _bare_emergency_repl, line)
