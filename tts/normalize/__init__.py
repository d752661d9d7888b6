"""The spoken form of Vietnamese bulletin text, ready for a TTS engine.

Offices write "Từ 6h00 - 6h30 ngày 01/12/2026, UBND phường ..." and a speech engine must hear
"từ sáu giờ đến sáu giờ ba mươi ngày một tháng mười hai năm hai nghìn không trăm hai mươi sáu, ủy ban
nhân dân phường ...". The engines cannot be trusted with "1.500.000đ", "Quý IV", "85/KH-UBND" or "6h30",
and num2words gets Vietnamese wrong (2024 "hai nghìn lẻ hai mươi bốn"), so it is done here by hand.

Public API:
    to_spoken(text)              -> spoken form: no ASCII digit, sentence punctuation and paragraphs kept
    split_sentences(spoken)      -> paragraphs, each a list of sentences, from to_spoken's output
    unknown_abbreviations(text)  -> all-capital tokens the lexicon does not know, for operator warnings
    syllable_count(spoken)       -> spoken syllables, to estimate reading time
    number_to_words(n)           -> Vietnamese cardinal (2024 = "hai nghìn không trăm hai mươi tư")
    load_station_lexicon(path)   -> put the operators' lexicon file in force (StationLexicon: entries,
                                    problems per line); station_lexicon() tells which is in force

Measured against tests/tts/data/normalize_set.tsv (hand-written readings of ward-bulletin sentences, every
category below) by tests/tts/test_normalize_set.py and `make bench normalize` (which also scores the
peer library vietnormalizer on the same sentences).

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
      read "kế hoạch số tám mươi lăm". The issuing body is always named in the sentence anyway, and
      "ka hát gạch ngang ủy ban nhân dân" helps no listener.
    * "d/m" is a date after date words ("ngày", "dịp", "trước"...) and in a list of dates ("19/8 và 2/9"),
      a fraction after "chiếm", "khoảng", "bằng"... or before "số", "dân số", "tổng"... ("1/10 dân số"
      "một phần mười dân số"), and otherwise a date when it can be one. "a:b" is a ratio ("một trên năm
      trăm") after "tỷ lệ" or when it cannot be a clock time.
    * 111-115 are hotlines after "gọi", "tổng đài", "đường dây nóng" (also later in the same sentence),
      but quantities before "đường", "hộ", "người"... ("số 115 đường Trần Phú" is a house number).
    * Roman numerals are read after the words documents put them after (Quý, khóa, thế kỷ, lần thứ,
      hạng, loại...); after "thứ" as ordinals ("lần thứ IV" "lần thứ tư").
    * Web addresses are read label by label with "chấm" ("dichvucong.gov.vn" = "dịch vụ công chấm gốp chấm
      vê en"); the "https://" prefix, query strings and fragments are dropped. A label with no entry is
      split into toneless syllables, and known abbreviations inside it are spelled ("ubndphuong" "u bê
      en dê phuong").
    * Unknown all-capital abbreviations are spelled with Vietnamese letter names ("XYZ" = "ích i dét").
    * The output is lower case: engines ignore case, and the same audio for "Quý IV" and "quý IV" keeps
      the render cache and the tests stable.
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import operator
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "LexiconProblem",
    "StationLexicon",
    "load_station_lexicon",
    "number_to_words",
    "split_sentences",
    "station_lexicon",
    "syllable_count",
    "to_spoken",
    "unknown_abbreviations",
]

# ---------------------------------------------------------------------------------------------------
# Protected spans. Each pass turns something into words and wraps the words in a pair of private-use
# characters, so later passes leave them alone (the lexicon must not see "năm" from a date, the number
# pass must not see anything inside a spoken URL). Numeric spans (numbers, dates, times, phones) get their
# own pair so a dash or slash *between two of them* can be read "đến" / "trên" at the end.
# Input text never contains these characters: _clean() removes every private-use character.
# ---------------------------------------------------------------------------------------------------
_NUM_OPEN, _NUM_CLOSE = "\ue000", "\ue001"
_TXT_OPEN, _TXT_CLOSE = "\ue002", "\ue003"
_PROTECTED = re.compile("[\ue000\ue002][^\ue000-\ue003]*[\ue001\ue003]")
_SENTINELS = re.compile("[\ue000-\ue003]")


def _sub_free_in_context(pattern: re.Pattern[str], repl, text: str) -> str:
    """Like _sub_free, but matched on the whole line, so ``repl`` can look at what comes before and after
    (spoken spans included); matches that touch a protected span are left alone."""
    spans = [m.span() for m in _PROTECTED.finditer(text)]
    out, last = [], 0
    for m in pattern.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in spans):
            continue
        out.append(text[last : m.start()])
        out.append(repl(m))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _num(words: str) -> str:
    return f"{_NUM_OPEN}{words}{_NUM_CLOSE}"


def _txt(words: str) -> str:
    return f"{_TXT_OPEN}{words}{_TXT_CLOSE}"


def _sub_free(pattern: re.Pattern[str], repl, text: str) -> str:
    """pattern.sub(repl, ...) applied only outside protected spans."""
    out, last = [], 0
    for m in _PROTECTED.finditer(text):
        out.append(pattern.sub(repl, text[last : m.start()]))
        out.append(m.group())
        last = m.end()
    out.append(pattern.sub(repl, text[last:]))
    return "".join(out)


# Word-boundary helpers: "no letter or digit before / after". \b is not enough, because it treats the
# underscore as a letter and a digit next to a letter ("4G") as one word; these lookarounds say what we mean.
_NB = r"(?<![^\W_])"
_NA = r"(?![^\W_])"

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


def _month_name(month: int) -> str:
    # "tháng một" / "tháng tư": see the module docstring.
    return {1: "một", 4: "tư"}.get(month) or number_to_words(month)


# ---------------------------------------------------------------------------------------------------
# Lexicon (tts/data/lexicon.tsv)
# ---------------------------------------------------------------------------------------------------
_KINDS = ("abbr", "title", "word", "domain")
LEXICON_CODE = "LEXICON_ENTRY_INVALID"
_MAX_STATION_LEXICON_BYTES = 1024 * 1024
_MAX_WRITTEN = 80
_MAX_SPOKEN = 300
# A spoken form is Vietnamese words: letters, spaces, and the hyphen or apostrophe some spellings use.
_SPOKEN_OK = re.compile(r"[^\W\d_]+(?:[ '’-]+[^\W\d_]+)*")


@dataclass
class _Lexicon:
    exact: dict[str, str] = field(default_factory=dict)  # abbr, title, word: as written
    folded: dict[str, str] = field(default_factory=dict)  # word: casefolded
    # word and domain entries, casefolded, for web addresses; abbreviations are spelled there ("ubnd" "u bê
    # en dê"), since a listener has to type the letters
    address: dict[str, str] = field(default_factory=dict)
    pattern: re.Pattern[str] | None = None  # matches any abbr/title/word entry in running text
    # pieces of a web-address label: "ubnd" in "ubndphuong" (spelled), "dichvucong" in "dichvucongtructuyen"
    address_chunks: dict[str, tuple[float, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class LexiconProblem:
    """One line of the station lexicon that could not be used, said so the operator can fix it."""

    line: int  # 0: the file as a whole
    message: str  # Vietnamese
    text: str = ""
    code: str = LEXICON_CODE

    def __str__(self) -> str:
        where = f"dòng {self.line}: " if self.line else ""
        return f"[{self.code}] {where}{self.message}"


@dataclass(frozen=True)
class StationLexicon:
    """The station's own lexicon as loaded: how many entries are in force and what was refused."""

    path: Path | None
    entries: int = 0
    problems: tuple[LexiconProblem, ...] = ()
    digest: str = ""  # sha256 of the file in force ("" without one): a change means re-rendering
    applied: bool = True  # False: the file could not be read and the previous entries stay in force

    def to_dict(self) -> dict:
        return {
            "path": str(self.path) if self.path else None,
            "entries": self.entries,
            "applied": self.applied,
            "problems": [{"line": p.line, "code": p.code, "message": p.message} for p in self.problems],
        }


_Entry = tuple[str, str, str]  # written, spoken, kind


def _read_lexicon_file() -> str:
    try:
        return resources.files("tts").joinpath("data").joinpath("lexicon.tsv").read_text(encoding="utf-8")
    except (OSError, TypeError, ValueError, ImportError) as exc:
        # An editable install can expose ``tts`` as a namespace package, which importlib.resources
        # cannot read in Python 3.11; the file sits in tts/data, next to this package, either way.
        logger.debug("importlib.resources could not read the lexicon (%s); reading it from disk", exc)
        return (Path(__file__).parent.with_name("data") / "lexicon.tsv").read_text(encoding="utf-8")


def _split_entry(raw: str) -> list[str]:
    # Operators edit the station file in any editor: a TAB is the separator, and where an editor turned
    # tabs into spaces, "WRITTEN = SPOKEN" is accepted too.
    sep = "\t" if "\t" in raw else "="
    return [c.strip() for c in raw.split(sep)]


def _check_entry(cols: list[str]) -> tuple[_Entry | None, str | None]:
    """(entry, None) or (None, why in Vietnamese)."""
    if len(cols) == 2:
        cols = [*cols, "abbr" if cols[0].isupper() else "word"]
    if len(cols) != 3:
        return None, "cần dạng CHỮ VIẾT<TAB>CÁCH ĐỌC (hoặc CHỮ VIẾT = CÁCH ĐỌC), có thể thêm <TAB>LOẠI"
    written, spoken, kind = cols[0], " ".join(cols[1].lower().split()), cols[2].lower()
    if not written:
        return None, "thiếu chữ viết (cột đầu)"
    if not spoken:
        return None, f"thiếu cách đọc cho {written!r}"
    if kind not in _KINDS:
        return None, f"loại {cols[2]!r} không có; dùng abbr, title, word hoặc domain"
    if len(written) > _MAX_WRITTEN or len(spoken) > _MAX_SPOKEN:
        return None, f"quá dài (chữ viết tối đa {_MAX_WRITTEN}, cách đọc tối đa {_MAX_SPOKEN} ký tự)"
    if _SENTINELS.search(written) or not any(ch.isalnum() for ch in written):
        return None, f"chữ viết {written!r} phải có chữ cái hoặc chữ số"
    if any(ch.isdigit() for ch in spoken):
        return None, f"cách đọc của {written!r} có chữ số; hãy viết số bằng chữ (ví dụ 'bốn gờ')"
    if not _SPOKEN_OK.fullmatch(spoken):
        return None, f"cách đọc của {written!r} chỉ được gồm chữ cái và dấu cách"
    return (written, spoken, kind), None


def _lexicon_entries(source: str, origin: str) -> tuple[list[_Entry], list[LexiconProblem]]:
    entries: list[_Entry] = []
    problems: list[LexiconProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for number, raw in enumerate(source.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry, why = _check_entry(_split_entry(raw))
        if entry is None:
            problems.append(LexiconProblem(number, f"bỏ qua: {why}", text=line[:200]))
            logger.warning("%s line %d ignored: %s", origin, number, why)
            continue
        key = (entry[0], entry[2])
        if key in seen:
            problems.append(
                LexiconProblem(
                    number, f"{entry[0]!r} đã có ở dòng {seen[key]}; dùng dòng này", text=line[:200]
                )
            )
        seen[key] = number
        entries.append(entry)
    return entries, problems


def _build_lexicon(*layers: list[_Entry]) -> _Lexicon:
    """One lexicon from layers of entries; a later layer (the station's file) overrides an earlier one."""
    lex = _Lexicon()
    alternatives: dict[str, str] = {}
    titles = set()
    for entries in layers:
        # Web-address parts: word entries first, then domain entries, so within a layer "domain" wins.
        for kind_order in (("word",), ("domain",)):
            for written, spoken, kind in entries:
                if kind in kind_order:
                    lex.address[written.casefold()] = spoken
        for written, spoken, kind in entries:
            if kind == "domain":
                continue
            lex.exact[written] = spoken
            if kind == "word":
                lex.folded[written.casefold()] = spoken
                alternatives[written] = f"(?i:{re.escape(written)})"
            else:
                alternatives[written] = re.escape(written)
                if kind == "title":
                    titles.add(written)
                else:
                    titles.discard(written)
    for written, _spoken, kind in (e for entries in layers for e in entries):
        key = written.casefold()
        if kind in ("abbr", "title") and len(key) >= 2 and set(key) <= _ASCII_LETTERS:
            lex.address_chunks.setdefault(key, (1.5, _spell(written)))
    lex.address_chunks.update(
        {k: (0.9, v) for k, v in lex.address.items() if len(k) >= 4 and set(k) <= _ASCII_LETTERS}
    )
    if alternatives:
        # Longest first, so "UBMTTQVN" wins over "UBMTTQ" and "TP.HCM" over "TP".
        keys = sorted(alternatives, key=len, reverse=True)
        title_alt = "|".join(re.escape(t) for t in sorted(titles, key=len, reverse=True))
        body = "|".join(alternatives[k] for k in keys)
        title_part = rf"(?P<title>{title_alt})\.(?=[ \t]*[^\W_])|" if titles else ""
        lex.pattern = re.compile(rf"{_NB}(?:{title_part}(?P<entry>{body}){_NA})")
    return lex


def _parse_lexicon(source: str) -> _Lexicon:
    return _build_lexicon(_lexicon_entries(source, "lexicon.tsv")[0])


@functools.lru_cache(maxsize=1)
def _shipped_entries() -> tuple[_Entry, ...]:
    try:
        return tuple(_lexicon_entries(_read_lexicon_file(), "lexicon.tsv")[0])
    except (OSError, UnicodeDecodeError) as exc:
        logger.error("lexicon.tsv unreadable (%s): abbreviations will be spelled letter by letter", exc)
        return ()


# The station's entries in force, and the lexicon built from both files. Replaced as a whole (one
# assignment) when the station file changes, so a render running in another thread sees the old or the
# new lexicon, never half of each.
_station_entries: tuple[_Entry, ...] = ()
_station_state = StationLexicon(path=None)
_active: _Lexicon | None = None


def _lexicon() -> _Lexicon:
    global _active
    lex = _active
    if lex is None:
        lex = _active = _build_lexicon(list(_shipped_entries()), list(_station_entries))
    return lex


def _reset_lexicon() -> None:
    """Forget the built lexicon (tests replace the shipped file)."""
    global _active
    _shipped_entries.cache_clear()
    _active = None


def station_lexicon() -> StationLexicon:
    """The station lexicon in force (path, entries, problems)."""
    return _station_state


def load_station_lexicon(path: Path | str | None) -> StationLexicon:
    """Read the operators' lexicon file and put it in force on top of the shipped one.

    A missing file is no error (the station has no words of its own yet). A line that cannot be used is
    skipped and reported, the rest is in force. A file that cannot be read at all (wrong encoding, too
    large, unreadable) is reported and the entries loaded before stay in force: an edit half-saved by
    an editor must not make the station spell "UBND" for a day.
    """
    global _station_entries, _station_state, _active
    path = Path(path) if path is not None else None
    problems: list[LexiconProblem] = []
    entries: list[_Entry] = []
    digest = ""
    if path is not None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError as exc:
            return _keep_previous(path, f"không đọc được tệp ({exc.strerror})", "LEXICON_UNREADABLE")
        if len(raw) > _MAX_STATION_LEXICON_BYTES:
            return _keep_previous(path, "tệp quá lớn (tối đa 1 MB)", "LEXICON_TOO_LARGE")
        try:
            source = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _keep_previous(path, "tệp phải được lưu bằng mã UTF-8", "LEXICON_ENCODING")
        source = unicodedata.normalize("NFC", source)
        entries, problems = _lexicon_entries(source, str(path))
        digest = hashlib.sha256(raw).hexdigest() if raw else ""
    _station_entries = tuple(entries)
    _active = _build_lexicon(list(_shipped_entries()), entries)
    _station_state = StationLexicon(path, len(entries), tuple(problems), digest)
    return _station_state


def _keep_previous(path: Path, why: str, code: str) -> StationLexicon:
    global _station_state
    logger.error("station lexicon %s not applied (%s): the previous entries stay in force", path, code)
    problem = LexiconProblem(0, f"{why}; các mục đã nạp trước vẫn được dùng", code=code)
    _station_state = StationLexicon(
        path, len(_station_entries), (problem,), _station_state.digest, applied=False
    )
    return _station_state


def _lookup(written: str) -> str | None:
    lex = _lexicon()
    return lex.exact.get(written) or lex.folded.get(written.casefold())


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
# Cleaning: Unicode, markup, symbols that would otherwise leak digits or noise
# ---------------------------------------------------------------------------------------------------
_LINE_BREAKS = {"\x0b": "\n", "\x0c": "\n", "\x1c": "\n", "\x1d": "\n", "\x1e": "\n", "\x85": "\n"}
_LATEX = ((r"\geq", "≥"), (r"\ge", "≥"), (r"\leq", "≤"), (r"\le", "≤"), (r"\%", "%"), (r"\times", "×"))
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^<>\s]+|[^<>\s@]+@[^<>\s]+)>", re.IGNORECASE)
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(([^)\s]*)\)")
_BLOCK_TAG = re.compile(r"</?(?:p|br|li|ul|ol|div|tr|table|h[1-6]|blockquote)\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z!][^<>]*>")
_DOLLAR_NOT_MONEY = re.compile(r"\$(?![ \t]?[0-9])")
_ESCAPE = re.compile(r"\\(?=[^\w\s])")  # markdown "1\." "\*": drop the backslash


def _clean_chars(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch in "\n\t":
            out.append(ch)
        elif ch in _LINE_BREAKS:
            out.append(_LINE_BREAKS[ch])
        else:
            cat = unicodedata.category(ch)
            if cat == "Nd":  # any script's digit, e.g. full-width "２": make it ASCII
                out.append(chr(48 + unicodedata.decimal(ch)))
            elif cat == "No":
                out.append(_other_number(ch, text[i - 1] if i else ""))
            elif cat == "Zl":
                out.append("\n")
            elif cat == "Zp":
                out.append("\n\n")
            elif cat[0] == "Z":
                out.append(" ")
            elif cat[0] == "C":  # controls, format (zero-width, BOM), surrogates, private use, unassigned
                continue
            else:
                out.append(ch)
    return "".join(out)


def _other_number(ch: str, prev: str) -> str:
    """Superscripts, circled numbers, vulgar fractions."""
    if ch in "²³" and prev == "m":  # m², km², cm³: a unit
        return "2" if ch == "²" else "3"
    name = unicodedata.name(ch, "")
    if "SUPERSCRIPT" in name or "SUBSCRIPT" in name:  # footnote marks ("phố¹"): not read
        return ""
    try:
        value = Fraction(unicodedata.numeric(ch)).limit_denominator(100)
    except (TypeError, ValueError):
        return " "
    if value.denominator == 1:
        return f" {value.numerator} "
    return f" {value.numerator}/{value.denominator} "


def _clean(text: str) -> str:
    """Normalized plain text: NFC, '\\n' line breaks, no control or private-use characters, no markup."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = html.unescape(text) if "&" in text else text
    text = _clean_chars(text)
    for latex, symbol in _LATEX:
        text = text.replace(latex, symbol)
    text = _AUTOLINK.sub(r"\1", text)
    text = _MD_LINK.sub(lambda m: m.group(1) or m.group(2), text)
    # A block tag is a line break; "\x00" marks it so "</p> <p>" does not become a paragraph break.
    text = _BLOCK_TAG.sub("\x00", text)
    text = _TAG.sub(" ", text)
    text = re.sub(r"\x00+(?=\n)|(?<=\n)\x00+", "", text)
    text = re.sub(r"[ \t]*(?:\x00[ \t]*)+", "\n", text)
    text = _DOLLAR_NOT_MONEY.sub(" ", text)  # LaTeX math delimiters from PDF conversions
    text = _ESCAPE.sub("", text).replace("\\", " ")
    text = text.replace("*", "")  # markdown emphasis
    return text


# ---------------------------------------------------------------------------------------------------
# Line markers: bullets, headings, enumerators
# ---------------------------------------------------------------------------------------------------
_HEADING_MARK = re.compile(r"^[ \t]*(?:#{1,6}|>+)[ \t]*")
_BULLETS = re.compile(r"^[ \t]*(?:[-+•●○◦▪■□➢►✓✔–—][ \t]+|[-+•][ \t]*(?=[^\W\d_]))+")
_RULE_LINE = re.compile(r"^[\s\-–—_=~.*]*$")
_ROMAN_SMALL = r"(?:X{0,3}(?:IX|IV|V?I{0,3}))"
_ENUMERATOR = re.compile(
    rf"^[ \t]*(?:(?P<arabic>[0-9]{{1,2}}(?:\.[0-9]{{1,2}})*)[.)]|(?P<roman>(?=[IVX]){_ROMAN_SMALL})[.)]"
    rf"|(?P<letter>[a-zđ]\)|[A-ZĐ][.)]))[ \t]+(?=\S)"
)
_TAB_ENUMERATOR = re.compile(r"^[ \t]*(?P<n>[0-9]{1,2}|(?=[IVX])" + _ROMAN_SMALL + r")\t")


def _line_markers(line: str) -> str:
    line = _HEADING_MARK.sub("", line)
    line = _BULLETS.sub("", line)
    if _RULE_LINE.match(line):
        return ""
    m = _TAB_ENUMERATOR.match(line)
    if m:  # a table row "1<TAB>Thực hiện ..."
        n = m.group("n")
        spoken = number_to_words(int(n)) if n.isdigit() else number_to_words(_roman_value(n))
        return _txt(spoken) + ", " + line[m.end() :]
    m = _ENUMERATOR.match(line)
    if not m:
        return line
    if m.group("arabic"):
        spoken = " chấm ".join(number_to_words(int(p)) for p in m.group("arabic").split("."))
    elif m.group("roman"):
        spoken = number_to_words(_roman_value(m.group("roman")))
    else:
        spoken = _spell(m.group("letter")[0])
    return _txt(spoken) + ", " + line[m.end() :]


# ---------------------------------------------------------------------------------------------------
# Web and e-mail addresses
# ---------------------------------------------------------------------------------------------------
_TLDS = "vn|com|net|org|gov|edu|info|io|me|app|biz|asia|xyz|online|site"
_URL = re.compile(
    # The look-behind also refuses to start after "." or "-": without that, "a.a.a.a..." is tried from
    # every label and the search turns quadratic.
    r"(?<![\w@/.-])(?:(?:https?|ftp)://[^\s<>\"'“”‘’]+"
    r"|(?:www\.)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:" + _TLDS + r")(?![\w-]|\.[a-z0-9])"
    r"(?:/[^\s<>\"'“”‘’]*)?)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")
_TRAILING_PUNCT = ".,;:!?)]}…"
_SCHEME = re.compile(r"^(?:https?|ftp)://", re.IGNORECASE)
_QUERY = re.compile(r"[?#]")


def _speak_word_part(run: str) -> str:
    lex = _lexicon()
    spoken = lex.address.get(run.casefold())
    if spoken:
        return spoken
    syllables = _segment_syllables(run.lower(), lex.address_chunks)
    return " ".join(syllables) if syllables else _spell(run)


def _speak_label(label: str) -> str:
    words = []
    for run in re.findall(r"[0-9]+|[^\W\d_]+|[-_+%~]", label):
        if run.isdigit():
            words.append(_read_digits(run))
        elif run == "-":
            words.append("gạch ngang")
        elif run == "_":
            words.append("gạch dưới")
        elif run in "+%~":
            continue
        else:
            words.append(_speak_word_part(run))
    return " ".join(words)


def _speak_address(address: str) -> str:
    rest = _SCHEME.sub("", address)
    query = _QUERY.search(rest)
    if query:
        logger.debug("query/fragment of %r not read", address)
        rest = rest[: query.start()]
    host, _, path = rest.partition("/")
    host = host.rpartition("@")[2]
    host, _, port = host.partition(":")
    words = [" chấm ".join(_speak_label(label) for label in host.split(".") if label)]
    if port.isdigit():
        words.append("hai chấm " + _read_digits(port))
    for segment in path.split("/"):
        if segment:
            words.append("gạch chéo " + " chấm ".join(_speak_label(p) for p in segment.split(".") if p))
    return " ".join(w for w in words if w)


def _address_repl(m: re.Match[str]) -> str:
    found = m.group()
    trail = ""
    while found and found[-1] in _TRAILING_PUNCT:
        found, trail = found[:-1], found[-1] + trail
    spoken = _speak_address(found) if found else ""
    return (_txt(spoken) if spoken else "") + trail


def _email_repl(m: re.Match[str]) -> str:
    local, _, domain = m.group().partition("@")
    local_words = " chấm ".join(_speak_label(part) for part in local.split(".") if part)
    return _txt(f"{local_words} a còng {_speak_address(domain)}")


def _addresses(line: str) -> str:
    line = _sub_free(_EMAIL, _email_repl, line)
    return _sub_free(_URL, _address_repl, line)


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


# ---------------------------------------------------------------------------------------------------
# Roman numerals in context: "Quý IV", "Quý III/2026", "khóa XV", "thế kỷ XXI", "Quý III, IV"
# ---------------------------------------------------------------------------------------------------
# Only I, V, X, L (up to 89): "phần C", "mục D" are letters, not 100 and 500.
_ROMAN = r"(?:(?=[IVXL])(?:XL|L?X{0,3})(?:IX|IV|V?I{0,3}))"
_ROMAN_CONTEXT_WORDS = (
    "quý|khóa|khoá|thế kỷ|thế kỉ|đại hội|chương|phần|mục|tập|lần thứ|kỳ|kì|phụ lục|giai đoạn|hội nghị|"
    "kỳ họp|nhiệm kỳ|lớp|hạng|loại|bậc|thứ"
)
_ROMAN_SEP = r"[ \t]*(?:,|và|-|–|đến)[ \t]*"
_ROMAN_CONTEXT = re.compile(
    rf"(?P<ctx>{_NB}(?i:{_ROMAN_CONTEXT_WORDS})[ \t]+)"
    rf"(?P<list>{_ROMAN}(?:{_ROMAN_SEP}{_ROMAN})*){_NA}"
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
    parts = re.split(rf"({_ROMAN_SEP})", m.group("list"))
    words = []
    for i, part in enumerate(parts):
        if i % 2:
            sep = part.strip()
            words.append(", " if sep == "," else " và " if sep == "và" else " đến ")
        elif m.group("ctx").rstrip().lower().endswith("thứ"):
            words.append(_ordinal_words(_roman_value(part)))  # "lần thứ I" is "lần thứ nhất"
        else:
            words.append(number_to_words(_roman_value(part)))
    spoken = "".join(words)
    if m.group("year"):
        spoken += " năm " + number_to_words(int(m.group("year")))
    return _num(m.group("ctx") + spoken)  # "Quý IV/2025 - Quý I/2026": the dash is "đến"


def _quarter_repl(m: re.Match[str]) -> str:
    quarter, year = number_to_words(int(m.group("q"))), number_to_words(int(m.group("year")))
    return _num(f"{m.group('ctx')}{quarter} năm {year}")


def _romans(line: str) -> str:
    line = _sub_free(_ROMAN_CONTEXT, _roman_repl, line)
    return _sub_free(_QUARTER_ARABIC, _quarter_repl, line)


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
# Lexicon pass and unknown all-capital abbreviations
# ---------------------------------------------------------------------------------------------------
def _lexicon_pass(line: str, shouting: bool) -> str:
    lex = _lexicon()
    if lex.pattern is None:
        return line

    def repl(m: re.Match[str]) -> str:
        if m.group("title"):
            written = m.group("title")
            after = m.string[m.end() :].lstrip()
            spoken = lex.exact[written]
            # "TP. Hồ Chí Minh", "KP. 3": an abbreviation dot. "... của TP. người dân": a sentence end.
            return _txt(spoken) + ("" if after[:1].isupper() or after[:1].isdigit() else ".")
        written = m.group("entry")
        if shouting and written.isupper() and _is_vietnamese_word(written):
            return written  # "KHÔNG AI BỊ BỎ LẠI": the word "ai", not the abbreviation AI
        spoken = _lookup(written)
        if not spoken:
            return written
        if written.endswith("."):  # "v.v." at the end of a sentence also ends it
            after = m.string[m.end() :].lstrip()
            return _txt(spoken) + ("." if not after or after[0].isupper() else "")
        return _txt(spoken)

    return _sub_free(lex.pattern, repl, line)


_CAPS_TOKEN = re.compile(rf"{_NB}[^\W\d_]{{2,}}{_NA}")


def _spell_unknown_caps(line: str) -> str:
    def repl(m: re.Match[str]) -> str:
        token = m.group()
        if not token.isupper() or _is_vietnamese_word(token):
            return token
        logger.debug("unknown abbreviation %r spelled letter by letter", token)
        return _txt(_spell(token))

    return _sub_free(_CAPS_TOKEN, repl, line)


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


# ---------------------------------------------------------------------------------------------------
# Symbols and punctuation
# ---------------------------------------------------------------------------------------------------
_ELLIPSIS = re.compile(r"\.{3,}|…")
_COMPARISONS = (
    (re.compile(r"≥|>="), " lớn hơn hoặc bằng "),
    (re.compile(r"≤|<="), " nhỏ hơn hoặc bằng "),
    (re.compile(r">(?=[ \t]*\ue000)"), " lớn hơn "),
    (re.compile(r"<(?=[ \t]*\ue000)"), " nhỏ hơn "),
    (re.compile(r"~(?=[ \t]*\ue000)"), " khoảng "),
    (re.compile("(?<=\ue001)[ \t]*=[ \t]*(?=\ue000)"), " bằng "),
    (re.compile("(?<=\ue001)[ \t]*\\+[ \t]*(?=\ue000)"), " cộng "),
    (re.compile("(?<=\ue001)[ \t]*[×x][ \t]*(?=\ue000)"), " nhân "),
    (re.compile("(?<=\ue001)[ \t]*÷[ \t]*(?=\ue000)"), " chia "),
)
_SYMBOL_WORDS = {"&": " và ", "@": " a còng ", "%": " phần trăm ", "₫": " đồng ", "±": " cộng trừ "}
_GLUED_HYPHEN = re.compile("(?<=[^\\W_]|[\ue001\ue003])[-‐‑](?=[^\\W_]|[\ue000\ue002])")
_DASHES = re.compile(r"[-‐‑‒–—―−]+")
_KEEP_PUNCT = frozenset(",.;:!?…\n")
_SPACES = re.compile(r"[ \t]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[,.;:!?…])")
_PUNCT_RUN = re.compile(r"[,.;:!?…](?:[ ]*[,.;:!?…])+")
_NO_SPACE_AFTER_PUNCT = re.compile(r"([,.;:!?…])(?=[^\W\d_])")
_LEADING_PUNCT = re.compile(r"^[ ,.;:!?…]+")


def _ellipsis_repl(m: re.Match[str]) -> str:
    after = m.string[m.end() :].lstrip(" \t\ue000\ue001\ue002\ue003")
    # Mid-sentence ("y tế, giáo dục ... thông qua", "Sendo...)") it is only a pause; before a capital or at
    # the end of the line it ends the sentence.
    return " …" if not after or after[0].isupper() else ", "


def _strongest(run: str) -> str:
    for mark in "?!….;:":
        if mark in run:
            return mark
    return ","


def _symbols(line: str) -> str:
    line = _sub_free(_ELLIPSIS, _ellipsis_repl, line)
    for pattern, words in _COMPARISONS:
        line = pattern.sub(words, line)
    out = []
    for ch in line:
        if ch in _SYMBOL_WORDS:
            out.append(_SYMBOL_WORDS[ch])
        elif ch in "/|()[]{}":
            out.append(", ")
        else:
            out.append(ch)
    line = "".join(out)
    line = _GLUED_HYPHEN.sub(" ", line)  # "VH-XH", "Covid-19", "e-mail" left over
    return _DASHES.sub(", ", line)  # "Văn hóa - Xã hội", "Nghe - Quét - Thực hành": a short pause


def _finish(line: str) -> str:
    """Remove markers, read any digit left, drop symbols, tidy spaces and punctuation, lower-case."""
    line = _SENTINELS.sub(" ", line)
    line = re.sub(r"[0-9]+", lambda m: f" {_read_digits(m.group())} ", line)  # "abc123": no digit survives
    kept = []
    for ch in line:
        if ch in _KEEP_PUNCT or ch == " " or unicodedata.category(ch)[0] in "LM":
            kept.append(ch)
        else:  # quotes, symbols, emoji, stray marks: not spoken
            kept.append(" ")
    line = _SPACES.sub(" ", "".join(kept))
    line = _SPACE_BEFORE_PUNCT.sub("", line)
    line = _PUNCT_RUN.sub(lambda m: _strongest(m.group()), line)
    line = _NO_SPACE_AFTER_PUNCT.sub(r"\1 ", line)
    line = _LEADING_PUNCT.sub("", line).strip().rstrip(",").rstrip()  # a trailing comma says nothing
    if not any(ch.isalpha() for ch in line):
        return ""
    return line.lower()


# ---------------------------------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------------------------------
def _spoken_line(line: str) -> str:
    shouting = line.isupper()  # an all-capital heading: "AI" there is the word "ai"
    line = _line_markers(line)
    if not line.strip():
        return ""
    # Order matters: the most specific patterns first, each protecting its words from the later ones.
    line = _addresses(line)  # dots and slashes in "dichvucong.gov.vn/..." are not numbers or sentences
    line = _doc_codes(line)  # "85/KH-UBND" before dates ("85/..."), phones and the lexicon ("KH")
    line = _phones(line)  # "0236.3821.456" before thousands; "0258 3866 214" before plain numbers
    line = _romans(line)  # "Quý III/2026" before month/year
    line = _dates(line)  # "22/12/2024", "10/2026", "10/10", "tháng 4"
    line = _times(line)  # "6h30", "19:30"
    line = _ordinals(line)  # "thứ 2", "lần thứ 1", "Đề án 06"
    line = _lexicon_pass(line, shouting)  # "UBND", "VNeID", "4G" (before "4" becomes a number)
    line = _numbers(line)  # "1.500.000đ", "3,5%", "5 km", "12 GB", "2024", "04"
    line = _spell_unknown_caps(line)  # "XYZW": letters (after the units took "GB" of "12 GB")
    line = _between_numbers(line)  # "đến", "trên", "mỗi"
    line = _symbols(line)
    return _finish(line)


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def _to_spoken(text: str) -> str:
    text = _clean(text)
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(text.strip()):
        lines = [spoken for spoken in map(_spoken_line, paragraph.split("\n")) if spoken]
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


def to_spoken(text: str) -> str:
    """The spoken form of Vietnamese text, for a TTS engine.

    Keeps sentence punctuation (. ! ? , ; : …), line breaks and paragraph breaks ("\\n\\n"); contains no
    ASCII digit; lower case. Never raises: on an internal error it logs and falls back to a plain reading.
    """
    try:
        return _to_spoken(text)
    except Exception:
        logger.exception("normalization failed; falling back to a plain reading")
        return _fallback(text)


_SENTENCE_BREAK = re.compile(r"(?<=[.!?…])\s+")


def split_sentences(spoken: str) -> list[list[str]]:
    """Paragraphs, each a list of sentences, from to_spoken's output.

    A sentence ends at . ! ? … followed by a space, and at the end of a line (a bullet item or a heading is
    its own sentence). Punctuation-only pieces are dropped. Empty input gives [].
    """
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(spoken.strip()):
        sentences = []
        for line in paragraph.split("\n"):
            for sentence in _SENTENCE_BREAK.split(line.strip()):
                sentence = sentence.strip()
                if any(ch.isalpha() for ch in sentence):
                    sentences.append(sentence)
        if sentences:
            paragraphs.append(sentences)
    return paragraphs


_WORD_TOKEN = re.compile(rf"{_NB}[^\W_]+{_NA}")
_ENUMERATOR_ROMAN = re.compile(rf"^[ \t]*(?=[IVX]){_ROMAN_SMALL}(?=[.)\t])", re.MULTILINE)


def unknown_abbreviations(text: str) -> list[str]:
    """Tokens of the original text that look like abbreviations (two or more capital letters: "UBND",
    "XYZW", "VssID") and that the lexicon does not know, once each, in order of appearance.

    Not reported: words of an all-capital heading ("KINH PHÍ"), Roman numerals ("Quý IV"), document codes
    ("85/KH-UBND", which are not read) and web addresses.
    """
    try:
        lex = _lexicon()
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
        return found
    except Exception:
        logger.exception("unknown_abbreviations failed")
        return []


_LETTER_RUN = re.compile(r"[^\W\d_]+")


def syllable_count(spoken: str) -> int:
    """Spoken syllables: Vietnamese words are single syllables, so count the runs of letters."""
    return len(_LETTER_RUN.findall(unicodedata.normalize("NFC", spoken)))
