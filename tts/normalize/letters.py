"""Letters and Vietnamese syllables: spelling an abbreviation, telling a toneless syllable ("KINH",
"dichvucong") from an abbreviation ("UBND"), splitting a run of letters into syllables."""

from __future__ import annotations

import re

from tts.normalize.spans import _sub_free_in_context, _txt

# ---------------------------------------------------------------------------------------------------
# Letters and Vietnamese syllables
# ---------------------------------------------------------------------------------------------------
# Letter names as used when an abbreviation is spelled on air (VNPT "vê en pê tê", ATM "a tê em").
# fmt: off
_LETTER_NAMES = {
    "A": "a", "B": "bê", "C": "xê", "D": "dê", "Đ": "đê", "E": "e", "F": "ép", "G": "gờ", "H": "hát",
    "I": "i", "J": "gi", "K": "ca", "L": "e lờ", "M": "em", "N": "en", "O": "ô", "P": "pê", "Q": "quy",
    "R": "e rờ", "S": "ét", "T": "tê", "U": "u", "V": "vê", "W": "vê kép", "X": "ích", "Y": "i", "Z": "dét",
}
# fmt: on


def _spell(word: str) -> str:
    return " ".join(_LETTER_NAMES.get(ch.upper(), ch) for ch in word)


# A Vietnamese syllable written without tone marks (what an all-capital heading word or a web-address
# label looks like in ASCII): onset, vowel cluster, final consonant. Loose on purpose: it only has to tell
# "KINH", "DUNG", "dichvucong" from "UBND", "XYZW", "QR".
_ONSET = r"(?:ngh|ng|gh|gi|kh|nh|ph|th|tr|ch|qu|[bcdđghklmnprstvx])"
_NUCLEI = (
    "a e i o u y ai ao au ay eo eu ia ie iu oa oe oi oo ua ue ui uo uu uy ye ieu oai oay oeo uoi "
    "uou uya uye uyu yeu uay uai"
)
_NUCLEUS = "(?:" + "|".join(sorted(_NUCLEI.split(), key=len, reverse=True)) + ")"
_SYLLABLE = re.compile(rf"{_ONSET}?{_NUCLEUS}(?:ng|nh|ch|[cmnpt])?")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzđ")
# Spelling rules of the onsets: "ngh", "gh", "k" only before e/i/y; "ng" never before e/i, "g" never
# before e ("gi" is an onset of its own: "GIAN"), "c" never before e/i/y.
_BAD_ONSET = re.compile(r"(?:ngh|gh|k)(?![eiyh])|ng(?=[ei])|g(?=e)|c(?=[eiy])")


def _is_syllable(lower: str) -> bool:
    return _SYLLABLE.fullmatch(lower) is not None and not _BAD_ONSET.match(lower)


def _is_vietnamese_word(token: str) -> bool:
    """True for words like "KINH", "MỤC", "đu" — as opposed to abbreviations like "UBND" or "XYZW"."""
    lower = token.lower()
    if not lower.isalpha():  # "VH-XH", "A4"
        return False
    if any(ch not in _ASCII_LETTERS for ch in lower):  # a tone or vowel mark: a Vietnamese word
        return True
    return _is_syllable(lower)


def _segment_syllables(word: str, chunks: dict[str, tuple[float, str]] | None = None) -> list[str] | None:
    """Split a lower-case run like "binhdanhocvuso" into toneless syllables ("binh dan hoc vu so").

    Dynamic programming over the cheapest split: one point a syllable, half a point more for a syllable
    without an initial consonant, which picks "dan hoc" over "danh oc", and a tenth more for an "nh"/"ng"
    onset inside the run, which picks "van hoa" over "va nhoa" and "ban hang" over "ba nhang" (a final
    n or ng is far more common than a syllable starting with nh/ng after an open one). ``chunks`` are
    known pieces with their cost and spoken form: lexicon words cost less than a syllable ("phuong" is
    "phường"), abbreviations more ("ubnd" in "ubndphuong"), so a reading as syllables wins over spelling
    where there is one. None if no split exists.
    """
    n = len(word)
    if n == 0 or n > 40:
        return None
    chunks = chunks or {}
    longest = max(7, *(len(c) for c in chunks)) if chunks else 7
    best: list[tuple[float, int, str] | None] = [None] * (n + 1)
    best[0] = (0.0, 0, "")
    for end in range(1, n + 1):
        for start in range(max(0, end - longest), end):
            if best[start] is None:
                continue
            piece = word[start:end]
            options = []
            if len(piece) <= 7 and _is_syllable(piece):
                cost = 1 + (0.5 if piece[0] in "aeiouy" else 0)
                options.append((cost + (0.1 if start and piece[:2] in ("nh", "ng") else 0), piece))
            if piece in chunks:
                options.append(chunks[piece])
            for cost, spoken in options:
                cost += best[start][0]
                if best[end] is None or cost < best[end][0]:
                    best[end] = (cost, start, spoken)
    if best[n] is None:
        return None
    parts, end = [], n
    while end:
        _, start, spoken = best[end]
        parts.append(spoken)
        end = start
    return parts[::-1]


# ---------------------------------------------------------------------------------------------------
# Single capital letters: a person's initial ("chị L.", "anh P.V.D", "chị T.Thu") and a letter used as
# a name ("viêm gan B", "vitamin C", "khu A", "cú pháp V", "phân khu C2") are read by their letter names;
# left alone, the engines say "b" or "c" as a bare consonant, or nothing at all.
# ---------------------------------------------------------------------------------------------------
# Words after which a capital letter with a dot is someone's initial: kinship words and the nouns news
# items use for the people they protect by initial ("bị can Nguyễn Văn H.", "nạn nhân T.").
_PERSON_WORDS = (
    "anh|chị|em|ông|bà|cô|chú|bác|cháu|cụ|con|bé|cậu|dì|mợ|thím|dượng|bạn|thầy|đ/c|đồng chí|"
    "nạn nhân|đối tượng|bệnh nhân|bị can|bị cáo|nghi phạm|tài xế|học sinh|sinh viên|nữ sinh|nam sinh|"
    "giáo viên|cô giáo|thầy giáo|chủ hộ|ông/bà|anh/chị"
)
_AFTER_PERSON_WORD = re.compile(rf"(?:^|[^\w/])(?i:{_PERSON_WORDS})[ \t]+$")
_LAST_TWO_WORDS = re.compile(r"([^\W\d_]+)[ \t]+([^\W\d_]+)[ \t]+$")
_INITIAL_CHAIN = re.compile(r"(?<![^\W_])[A-ZĐ]\.[ \t]*$")  # "P.V.D": the letters after the first


def _is_name_word(word: str) -> bool:
    return len(word) > 1 and word[0].isupper() and word[1:].islower()


def _is_initial_context(before: str) -> bool:
    """True if a capital letter written after ``before`` is a person's initial ("chị H.", "Nguyễn Thị T.",
    the "V" of "P.V.D"), not a place prefix ("P. Vĩnh Hải", "thuộc H.Phú Vang")."""
    tail = before[-80:]
    if _AFTER_PERSON_WORD.search(tail) or _INITIAL_CHAIN.search(tail):
        return True
    # "Hoàng Thị Thanh H.", "anh Hùng P.": a capitalised word after another one or after a person word is
    # part of a name. One capitalised word alone is not enough: "Tại P. Vĩnh Hải" starts a sentence.
    m = _LAST_TWO_WORDS.search(tail)
    if m is None or not _is_name_word(m.group(2)):
        return False
    return _is_name_word(m.group(1)) or bool(_AFTER_PERSON_WORD.search(tail[: m.start(2)]))


# A capital letter standing alone: no letter on either side (a digit may follow: "C2", or precede: "4D").
# "Y" is left out: it is also a word ("ngành Y", "Y tế") and reads the same as its letter name anyway.
_SINGLE_LETTER = re.compile(r"(?<![^\W\d_])(?<!°)(?P<letter>[A-XZĐ])(?![^\W\d_])(?P<dot>\.(?![0-9]))?")
# "220V", "100W" are units (tts.normalize.money reads them), not letters.
_UNIT_LETTERS_AFTER_DIGIT = frozenset("VW")
_CHAIN_AHEAD = re.compile(r"[ \t]*[A-ZĐ](?:\.|(?![^\W_]))")


def _single_letter_repl(m: re.Match[str]) -> str:
    text, start, letter = m.string, m.start(), m.group("letter")
    if start and text[start - 1].isdigit() and letter in _UNIT_LETTERS_AFTER_DIGIT:
        return m.group()
    spoken = _txt(_LETTER_NAMES[letter])
    after = text[m.end() :]
    if after[:1].isdigit():
        spoken += " "  # "C2": the letter, then the number ("xê hai")
    if m.group("dot"):
        following = after.lstrip()[:1]
        initial = _CHAIN_AHEAD.match(after) or _is_initial_context(text[:start])
        # The dot of an initial or of an abbreviation is not a sentence end ("cháu K. đang", "bà T. (43
        # tuổi"); before a capital word outside a name, or at the end of the line, it is ("vitamin C. Trẻ").
        if not following or (following.isupper() and not initial):
            spoken += "."
    return spoken


def _single_letters(line: str) -> str:
    return _sub_free_in_context(_SINGLE_LETTER, _single_letter_repl, line)
