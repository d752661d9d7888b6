"""The spoken form of Vietnamese bulletin text, ready for a TTS engine.

Offices write "Từ 6h00 - 6h30 ngày 01/12/2026, UBND phường ..." and a speech engine must hear
"từ sáu giờ đến sáu giờ ba mươi ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu, ủy ban
nhân dân phường ...". The engines cannot be trusted with "1.500.000đ", "Quý IV", "85/KH-UBND" or "6h30",
and num2words gets Vietnamese wrong (2024 "hai nghìn lẻ hai mươi bốn"), so it is done here by hand.

Public API:
    to_spoken(text, lexicon=None) -> spoken form: no ASCII digit, sentence punctuation and paragraphs
                                    kept; with the lexicon in force unless given one
    split_sentences(spoken)      -> paragraphs, each a list of sentences, from to_spoken's output
    unknown_abbreviations(text)  -> all-capital tokens the lexicon does not know, for operator warnings
    spoken_readings(text)        -> each transformed stretch: written, spoken, decided by a rule, a
                                    heuristic or a guess (for the approver's page)
    syllable_count(spoken)       -> spoken syllables, to estimate reading time
    number_to_words(n)           -> Vietnamese cardinal (2024 = "hai nghìn không trăm hai mươi tư")
    load_station_lexicon(path)   -> put the operators' lexicon file in force (StationLexicon: entries,
                                    problems per line); station_lexicon() tells which is in force
    lexicon_in_force()           -> the Lexicon (shipped and station entries, digest) renders use now

Measured against tests/tts/data/normalize_set.tsv (hand-written readings of ward-bulletin sentences, every
category below) by tests/tts/test_normalize_set.py and `make bench normalize` (which also scores the
peer library vietnormalizer on the same sentences).

Layout: this module holds the pass order (_spoken_line) and the public API; each category lives in a
module of its own: spans (the protected-span machinery every pass uses), clean (Unicode, markup, line
markers), numbers (cardinals, decimals, ordinals, Roman numerals), dates (dates, years, times, ratios),
money (money, percent, units, ranges and rates), phones (phone numbers, hotlines, document codes), web
(web and e-mail addresses), letters (letter names, toneless syllables), lexicon (the Lexicon object: the
shipped and the station entries, the one in force, the passes that read it), punctuation (symbols, the
last tidying) and sentences.

Reading choices (Northern broadcast usage):
    * 14 "mười bốn" but 24 "hai mươi tư"; "mốt" only after "mươi" (21, not 11); "lăm" after mười/mươi;
      "linh" for a zero tens digit (105 "một trăm linh năm"); "nghìn", not "ngàn"; "tỷ".
    * Months: "tháng một" and "tháng tư" (not "tháng giêng" / "tháng bốn"): "tháng giêng" is the lunar
      month on air, and "tháng tư" is what announcers say for April.
    * Phone numbers are read digit by digit, group by group as written, the groups separated by a comma:
      the engines make a comma a short pause, which is what a listener writing the number down needs.
    * "." is the thousands separator and "," the decimal point ("3,5" = "ba phẩy năm"); a dotted number
      that is not thousands ("4.0") is read with "chấm".
    * Document codes ("85/KH-UBND", "57-NQ/TW") are dropped, the number kept: "Kế hoạch số 85/KH-UBND" is
      read "kế hoạch số tám mươi lăm", "64/2014/NĐ-CP" "sáu mươi tư" (the year part too). The issuing
      body is always named in the sentence anyway, and "ka hát gạch ngang ủy ban nhân dân" helps no
      listener.
    * "d/m" is a date after date words ("ngày", "dịp", "trước"...) and in a list of dates ("19/8 và 2/9"),
      a fraction after "chiếm", "khoảng", "bằng"... or before "số", "dân số", "tổng"... ("1/10 dân số"
      "một phần mười dân số"), and otherwise a date when it can be one. "a:b" is a ratio ("một trên năm
      trăm") after "tỷ lệ" or when it cannot be a clock time.
    * Service numbers and SMS short codes are read digit by digit after "tổng đài", "đầu số", and after
      "gửi"/"nhắn tin" at a clause end in a sentence about messages ("gửi 8079" "gửi tám không bảy chín").
    * 111-115 are hotlines after "gọi", "tổng đài", "đường dây nóng" (also later in the same sentence),
      but quantities before "đường", "hộ", "người"... ("số 115 đường Trần Phú" is a house number).
    * Roman numerals are read after the words documents put them after (Quý, khóa, thế kỷ, lần thứ,
      hạng, loại...); after "thứ" as ordinals ("lần thứ IV" "lần thứ tư").
    * Web addresses are read label by label with "chấm" ("dichvucong.gov.vn" = "dịch vụ công chấm gốp chấm
      vê en"); the "https://" prefix, query strings and fragments are dropped. A label with no entry is
      read with tones when the word list (tts/data/vi_words.txt) cuts it one way only ("canhsat" "cảnh
      sát"), else split into toneless syllables, and known abbreviations inside it are spelled
      ("ubndphuong" "u bê en dê phuong").
    * Unknown all-capital abbreviations are spelled with Vietnamese letter names ("XYZ" = "ích i dét").
    * The output is lower case: engines ignore case, and the same audio for "Quý IV" and "quý IV" keeps
      the render cache and the tests stable.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from tts.normalize.clean import _BULLETS, _HEADING_MARK, _ROMAN_SMALL, _clean, _line_markers
from tts.normalize.dates import _dates, _times
from tts.normalize.letters import _is_vietnamese_word
from tts.normalize.lexicon import (
    Lexicon,
    LexiconProblem,
    StationLexicon,
    _lexicon_pass,
    _spell_unknown_caps,
    lexicon_in_force,
    load_station_lexicon,
    station_lexicon,
)
from tts.normalize.lexicon import _parse_lexicon as _parse_lexicon
from tts.normalize.lexicon import _read_lexicon_file as _read_lexicon_file
from tts.normalize.lexicon import _reset_lexicon as _reset_lexicon
from tts.normalize.money import _between_numbers, _numbers
from tts.normalize.numbers import _DIGIT_WORDS, _ROMAN_CONTEXT, _ordinals, _romans, number_to_words
from tts.normalize.phones import _BLANK_DOC_CODE, _DOC_CODE, _doc_codes, _phones
from tts.normalize.punctuation import _finish, _symbols
from tts.normalize.sentences import _PARAGRAPH_BREAK, split_sentences, syllable_count
from tts.normalize.spans import _NA, _NB, _SENTINELS, _TRACE, Reading, guess, heuristic
from tts.normalize.web import _EMAIL, _URL, _addresses

logger = logging.getLogger(__name__)

__all__ = [
    "Lexicon",
    "LexiconProblem",
    "Reading",
    "guess",
    "heuristic",
    "StationLexicon",
    "lexicon_in_force",
    "load_station_lexicon",
    "number_to_words",
    "split_sentences",
    "spoken_readings",
    "station_lexicon",
    "syllable_count",
    "to_spoken",
    "unknown_abbreviations",
]


# ---------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------
def _spoken_line(line: str, lex: Lexicon) -> str:
    shouting = line.isupper()  # an all-capital heading: "AI" there is the word "ai"
    line = _line_markers(line)
    if not line.strip():
        return ""
    # Order matters: the most specific patterns first, each protecting its words from the later ones.
    line = _addresses(line, lex)  # dots and slashes in "dichvucong.gov.vn/..." are not numbers or sentences
    line = _doc_codes(line)  # "85/KH-UBND" before dates ("85/..."), phones and the lexicon ("KH")
    line = _phones(line)  # "0236.3821.456" before thousands; "0258 3866 214" before plain numbers
    line = _romans(line)  # "Quý III/2026" before month/year
    line = _dates(line)  # "22/12/2024", "10/2026", "10/10", "tháng 4"
    line = _times(line)  # "6h30", "19:30"
    line = _ordinals(line)  # "thứ 2", "lần thứ 1", "Đề án 06"
    line = _lexicon_pass(line, shouting, lex)  # "UBND", "VNeID", "4G" (before "4" becomes a number)
    line = _numbers(line)  # "1.500.000đ", "3,5%", "5 km", "12 GB", "2024", "04"
    line = _spell_unknown_caps(line)  # "XYZW": letters (after the units took "GB" of "12 GB")
    line = _between_numbers(line)  # "đến", "trên", "mỗi"
    line = _symbols(line)
    return _finish(line)


def _to_spoken(text: str, lexicon: Lexicon | None = None) -> str:
    # Taken once for the whole text: a station file put in force meanwhile waits for the next render.
    lex = lexicon if lexicon is not None else lexicon_in_force()
    text = _clean(text)
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(text.strip()):
        lines = [spoken for spoken in (_spoken_line(line, lex) for line in paragraph.split("\n")) if spoken]
        if lines:
            paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _fallback_char(ch: str) -> str:
    if "0" <= ch <= "9":
        return f" {_DIGIT_WORDS[ord(ch) - 48]} "
    if unicodedata.category(ch)[0] in "LMPZ" and not _SENTINELS.match(ch):
        return ch
    return " "


def _fallback(text: object) -> str:
    """Last resort if a pass has a bug: no digits, no control characters, whitespace collapsed."""
    try:
        raw = str(text)
    except Exception:  # a broken __str__ must not stop the station either
        return ""
    lines = [" ".join("".join(map(_fallback_char, line)).split()).lower() for line in raw.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def to_spoken(text: str, lexicon: Lexicon | None = None) -> str:
    """The spoken form of Vietnamese text, for a TTS engine.

    Keeps sentence punctuation (. ! ? , ; : …), line breaks and paragraph breaks ("\\n\\n"); contains no
    ASCII digit; lower case. Never raises: on an internal error it logs and falls back to a plain reading.
    ``lexicon``: the entries to read with; None, the lexicon in force (lexicon_in_force()).
    """
    try:
        return _to_spoken(text, lexicon)
    except Exception:
        logger.exception("normalization failed; falling back to a plain reading")
        return _fallback(text)


def spoken_readings(text: str, lexicon: Lexicon | None = None) -> list[Reading]:
    """Each stretch of ``text`` the normalizer transformed, in the order the passes met them: what is
    written, what the station will say, and whether a rule, a heuristic or a guess decided it (see
    :class:`Reading`).  For the approver's page; never raises (an internal error gives what was found)."""
    records: list[Reading] = []
    token = _TRACE.set(records)
    try:
        _to_spoken(text, lexicon)
    except Exception:
        logger.exception("tracing the normalizer failed")
    finally:
        _TRACE.reset(token)
    return records


_WORD_TOKEN = re.compile(rf"{_NB}[^\W_]+{_NA}")
_ENUMERATOR_ROMAN = re.compile(rf"^[ \t]*(?=[IVX]){_ROMAN_SMALL}(?=[.)\t])", re.MULTILINE)


def unknown_abbreviations(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Tokens of the original text that look like abbreviations (two or more capital letters: "UBND",
    "XYZW", "VssID") and that the lexicon does not know, once each, in order of appearance.

    Not reported: words of an all-capital heading ("KINH PHÍ"), Roman numerals ("Quý IV"), document codes
    ("85/KH-UBND", which are not read) and web addresses. ``lexicon`` as for to_spoken.
    """
    try:
        lex = lexicon if lexicon is not None else lexicon_in_force()
        found: list[str] = []
        for line in _clean(text).split("\n"):
            masked = _BULLETS.sub("", _HEADING_MARK.sub("", line))
            for pattern in (_EMAIL, _URL, _DOC_CODE, _BLANK_DOC_CODE, _ROMAN_CONTEXT, _ENUMERATOR_ROMAN):
                masked = pattern.sub(" ", masked)
            if lex.pattern is not None:
                masked = lex.pattern.sub(" ", masked)
            for m in _WORD_TOKEN.finditer(masked):
                token = m.group()
                if sum(ch.isupper() for ch in token) < 2:
                    continue
                if token.isalpha() and token.isupper() and _is_vietnamese_word(token):
                    continue
                if token not in found:
                    found.append(token)
        if found:
            # Context can give a token a reading the lexicon alone lacks ("TT 33/2015" is "thông tư",
            # "SN 1990" "sinh năm", "PC02" a police unit): only what is still spelled is unknown.
            read = {
                word
                for r in spoken_readings(text, lex)
                if r.decided != "guess"
                for word in re.split(r"[^\w]+", r.written)
            }
            found = [token for token in found if token not in read]
        return found
    except Exception:
        logger.exception("unknown_abbreviations failed")
        return []
