"""Letters and Vietnamese syllables: spelling an abbreviation, telling a toneless syllable ("KINH",
"dichvucong") from an abbreviation ("UBND"), splitting a run of letters into syllables."""

from __future__ import annotations

import re

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
