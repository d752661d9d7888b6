"""Script bytes → clean Vietnamese text.

Offices send bulletins as UTF-8 (with or without BOM), UTF-16 (Notepad's "Unicode"), Windows-1258
("ANSI" on a Vietnamese Windows) or TCVN3 — the "ABC" encoding of the .VnTime fonts, still common in
ward offices.  TCVN3 also survives *inside* Unicode files: text typed in a .VnTime font and then saved as
Unicode shows Latin-1 look-alikes ("ñy ban nh©n d©n" for "ủy ban nhân dân").  Everything here turns such
input into one canonical form, or refuses it with a message the operator can act on:

- legacy bytes: Windows-1258 and TCVN3 are both tried and the one whose words are plausible Vietnamese
  syllables wins (``is_vietnamese_syllable``: onset + vowel nucleus + final + tone rules);
- TCVN3 look-alikes in Unicode text are converted line by line, only where conversion turns
  non-syllables into syllables;
- ``normalize_vietnamese``: NFC, one tone-mark placement (the traditional style of government documents:
  "hòa", "khỏe", "thủy"), LF line ends, no control characters.
"""

from __future__ import annotations

import codecs
import functools
import logging
import re
import unicodedata

from playout.errors import ScriptRejected

logger = logging.getLogger(__name__)

# The five tone marks as combining characters, in the order TCVN3 lays out each vowel's row of codes.
GRAVE, HOOK, TILDE, ACUTE, DOT_BELOW = "\u0300", "\u0309", "\u0303", "\u0301", "\u0323"
_TONE_MARKS = frozenset((GRAVE, HOOK, TILDE, ACUTE, DOT_BELOW))

# TCVN 5712:1993 "VN3" (the ABC font encoding).  Byte codes of each toned vowel, in the order
# huyền (grave), hỏi (hook), ngã (tilde), sắc (acute), nặng (dot below).  VN3 has only lowercase toned
# letters; capitals are drawn by the ".VnTimeH"-style fonts from the same codes.
_TCVN3_TONED_ROWS = {
    "a": (0xB5, 0xB6, 0xB7, 0xB8, 0xB9),
    "ă": (0xBB, 0xBC, 0xBD, 0xBE, 0xC6),
    "â": (0xC7, 0xC8, 0xC9, 0xCA, 0xCB),
    "e": (0xCC, 0xCE, 0xCF, 0xD0, 0xD1),
    "ê": (0xD2, 0xD3, 0xD4, 0xD5, 0xD6),
    "i": (0xD7, 0xD8, 0xDC, 0xDD, 0xDE),
    "o": (0xDF, 0xE1, 0xE2, 0xE3, 0xE4),
    "ô": (0xE5, 0xE6, 0xE7, 0xE8, 0xE9),
    "ơ": (0xEA, 0xEB, 0xEC, 0xED, 0xEE),
    "u": (0xEF, 0xF1, 0xF2, 0xF3, 0xF4),
    "ư": (0xF5, 0xF6, 0xF7, 0xF8, 0xF9),
    "y": (0xFA, 0xFB, 0xFC, 0xFD, 0xFE),
}
# The untoned letters outside ASCII; these seven capitals are the only capitals VN3 has.
_TCVN3_PLAIN = {
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
    0xA8: "ă", 0xA9: "â", 0xAA: "ê", 0xAB: "ô", 0xAC: "ơ", 0xAD: "ư", 0xAE: "đ",
}  # fmt: skip


def _build_tcvn3_table() -> dict[int, str]:
    table = dict(_TCVN3_PLAIN)
    for vowel, codes in _TCVN3_TONED_ROWS.items():
        for mark, code in zip((GRAVE, HOOK, TILDE, ACUTE, DOT_BELOW), codes, strict=True):
            table[code] = unicodedata.normalize("NFC", vowel + mark)
    return table


#: byte value → Unicode letter, for the 74 codes VN3 assigns (67 lowercase letters + 7 capitals).
TCVN3_TABLE: dict[int, str] = _build_tcvn3_table()
_TCVN3_CAPITALS = frozenset(chr(code) for code in range(0xA1, 0xA8))
_TCVN3_TONED_CHARS = frozenset(chr(code) for code in TCVN3_TABLE if code >= 0xB5)

# A str holding TCVN3 look-alikes has code point == byte value.  The bytes VN3 leaves alone read as
# Windows-1252: Word's curly quotes, dashes and "…" sit at 0x80-0x9F and arrive as C1 controls.
_C1_AS_CP1252 = {b: bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xA0)}

# Latin-1 letters that are also ordinary Vietnamese letters: their presence proves nothing.
_LATIN1_VIETNAMESE = frozenset("àáâãèéêìíòóôõùúýÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝ")
# TCVN3 codes that are not Vietnamese letters in Unicode ("µ", "¸", "©", "ñ", …): the tell-tale signs.
_TCVN3_MARKERS = frozenset(chr(code) for code in TCVN3_TABLE) - _LATIN1_VIETNAMESE
_TCVN3_CODE_CHARS = "".join(chr(code) for code in sorted(TCVN3_TABLE))
_HAS_TCVN3_CODE = re.compile("[" + re.escape(_TCVN3_CODE_CHARS) + "]")
# Another tell-tale sign: a capital-looking TCVN3 code inside a lowercase word ("triÓn", "ChÝnh").
_MIDWORD_CAPITAL = re.compile("[a-z\u00df-\u00ff][\u00c6-\u00de]")

# A "word" for scoring and conversion: letters, combining marks, and every TCVN3 code (some of which,
# like "¸" or "×", are symbols in Unicode but letters in TCVN3, so they must not split a word).  U+FFFD
# (an undecodable byte) stays inside its word so the word counts as broken, not as two ASCII halves.
_TOKEN_RE = re.compile(
    "[A-Za-z\u00c0-\u024f\u0300-\u036f\u1e00-\u1eff\ufffd" + re.escape(_TCVN3_CODE_CHARS) + "]+"
)
_WORD_RE = re.compile(r"[^\W\d_]+")
_UNICODE_ONLY_LETTER = re.compile("[\u0100-\u024f\u1e00-\u1eff]")

# ---------------------------------------------------------------------------------------------------
# Vietnamese syllable structure: (onset) + nucleus + (final), one tone at most.

_LETTERS = frozenset("abcdeghiklmnopqrstuvxyđăâêôơư")
_VOWELS = frozenset("aăâeêioôơuưy")
_SHAPED_VOWELS = frozenset("ăâêôơư")
_ONSETS = ("ngh", "ng", "nh", "ch", "gh", "kh", "ph", "th", "tr",
           "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x")  # fmt: skip
_FINALS = ("ch", "ng", "nh", "c", "m", "n", "p", "t")
_STOP_FINALS = frozenset(("c", "ch", "p", "t"))  # only sắc or nặng can go with these


def _spelled(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Nuclei that can end a syllable (including those closed by a semivowel: "ai", "ao", "ươi", …).
_OPEN_NUCLEI = _spelled(
    "a e ê i o ô ơ u ư y ai ao au ay âu ây eo êu ia iu oa oe oi ôi ơi ua uê ui uơ ưa ưi ưu uy "
    "oai oay oeo iêu yêu uây uôi ươi ươu uya uyu"
)
# Nuclei that can take a final consonant.
_CLOSED_NUCLEI = _spelled("a ă â e ê i o ô ơ u ư y iê yê uô ươ oa oă oe oo uâ uê uy uyê")
_PALATAL_NUCLEI = _spelled("a ê i y oa uê uy")  # the only ones before -ch / -nh
_VELAR_NUCLEI = _spelled("a ă â e o ô u ư oa oă oe oo uâ uô ươ iê")  # the only ones before -c / -ng
_FRONT_VOWELS = frozenset("ieêy")


@functools.lru_cache(maxsize=256)
def _split_tone(char: str) -> tuple[str, str | None] | None:
    """A precomposed letter → (letter without tone, tone mark or None); None if it is not one letter."""
    decomposed = unicodedata.normalize("NFD", char)
    tones = [c for c in decomposed if c in _TONE_MARKS]
    if len(tones) > 1:
        return None
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))
    if len(base) != 1:
        return None
    return base, (tones[0] if tones else None)


@functools.lru_cache(maxsize=32768)
def _analyse(word: str) -> tuple[int, str, str, str | None] | None:
    """Parse one NFC word as a Vietnamese syllable: (onset length, nucleus, final, tone) or None."""
    bases: list[str] = []
    tone: str | None = None
    for char in word:
        split = _split_tone(char)
        if split is None:
            return None
        base, mark = split
        if mark:
            if tone:
                return None
            tone = mark
        bases.append(base.lower())
    syllable = "".join(bases)
    if not syllable or not _LETTERS.issuperset(syllable):
        return None
    if syllable.startswith("qu") and len(syllable) > 2:
        candidates = ["qu"]
    elif syllable.startswith("gi") and len(syllable) > 2 and syllable[2] in _VOWELS:
        # "giếng" reads as gi+êng or g+iêng, "gia" only as gi+a; try both, "gi" first.
        candidates = ["gi", "g"]
    else:
        candidates = [next((o for o in _ONSETS if syllable.startswith(o)), "")]
    for onset in candidates:
        parsed = _split_rhyme(onset, syllable[len(onset) :], tone)
        if parsed:
            return len(onset), parsed[0], parsed[1], tone
    return None


def _split_rhyme(onset: str, rhyme: str, tone: str | None) -> tuple[str, str] | None:
    for final in (*_FINALS, ""):
        if not rhyme.endswith(final):
            continue
        nucleus = rhyme[: len(rhyme) - len(final)]
        if not nucleus:
            continue
        if final:
            if nucleus not in _CLOSED_NUCLEI:
                continue
            if final in ("ch", "nh") and nucleus not in _PALATAL_NUCLEI:
                continue
            if final in ("c", "ng") and nucleus not in _VELAR_NUCLEI:
                continue
            if final in _STOP_FINALS and tone not in (ACUTE, DOT_BELOW):
                continue
        elif nucleus not in _OPEN_NUCLEI:
            continue
        if _onset_fits(onset, nucleus):
            return nucleus, final
    return None


def _onset_fits(onset: str, nucleus: str) -> bool:
    # Spelling rules: k/gh/ngh before i, e, ê, y; c/ng/g elsewhere ("g" + i only as in "gì", "gìn").
    front = nucleus[0] in _FRONT_VOWELS
    if onset in ("k", "gh", "ngh"):
        return front
    if onset in ("c", "ng"):
        return not front
    if onset == "g":
        return nucleus[0] not in "eêy"
    if onset == "qu":
        return nucleus[0] != "u"
    return True


def is_vietnamese_syllable(word: str) -> bool:
    """True if ``word`` (one word, any case, NFC) is spelt like a Vietnamese syllable."""
    return _analyse(unicodedata.normalize("NFC", word)) is not None


def _tone_position(nucleus: str, final: str) -> int:
    """Index in the nucleus that carries the tone, traditional ("old") placement."""
    shaped = [i for i, v in enumerate(nucleus) if v in _SHAPED_VOWELS]
    if shaped:
        return shaped[-1]  # "người", "thuở", "khuyến": the last vowel with a hat or horn
    if final:
        return len(nucleus) - 1  # "hoàng", "toán", "huỳnh"
    if len(nucleus) == 3:
        return 1  # "khoái", "khuỷu", "ngoẹo"
    return 0  # "hòa", "khỏe", "thủy", "mùa", "kìa", "tài"


def _untoned(char: str) -> str:
    split = _split_tone(char)
    return split[0] if split else char


@functools.lru_cache(maxsize=32768)
def _retone(word: str) -> str:
    analysis = _analyse(word)
    if analysis is None or analysis[3] is None:
        return word
    onset_len, nucleus, final, tone = analysis
    target = onset_len + _tone_position(nucleus, final)
    # Case is kept letter by letter: tone marks are case-neutral combining characters.
    letters = [_untoned(c) for c in word]
    letters[target] = unicodedata.normalize("NFC", letters[target] + tone)
    return "".join(letters)


# ---------------------------------------------------------------------------------------------------
# Normalisation

_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")  # VT: Word's manual line break in exports
_SPACES = re.compile("[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
# Control (Cc), format (Cf: zero-width, bidi overrides, soft hyphen, BOM), private-use and surrogate code
# points: invisible or meaningless to a speech engine, and bidi overrides can hide text from the preview.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ufffd\ud800-\uf8ff"
    "\U000e0000-\U000e007f\U000f0000-\U0010ffff]"
)


def _normalize(text: str) -> tuple[str, int]:
    """``normalize_vietnamese`` that also reports how many invisible characters it removed."""
    text = _LINE_BREAKS.sub("\n", text)
    text = _SPACES.sub(" ", text)
    text, removed = _INVISIBLE.subn("", text)
    text = unicodedata.normalize("NFC", text)
    text = _WORD_RE.sub(lambda m: _retone(m.group()), text)
    return text, removed


def normalize_vietnamese(text: str) -> str:
    """NFC, traditional tone placement, LF line ends, tabs as spaces, no control/invisible characters."""
    return _normalize(text)[0]


# ---------------------------------------------------------------------------------------------------
# TCVN3


def _capitals(token: str) -> int:
    return sum("A" <= c <= "Z" or c in _TCVN3_CAPITALS for c in token)


def _has_ascii_lowercase(token: str) -> bool:
    return any("a" <= c <= "z" for c in token)


def _is_caps_line(line: str) -> bool:
    # .VnTimeH fonts draw capitals from the lowercase codes, so a line typed with Caps Lock arrives as
    # "KÕ HO¹CH": ASCII capitals around lowercase TCVN3 codes.  "KÕ" alone could be "Kế"; the line is
    # taken as capitals only if some TCVN3 word in it shows two capitals and no ASCII letter is lowercase.
    if _has_ascii_lowercase(line):
        return False
    return any(_capitals(token) >= 2 and _HAS_TCVN3_CODE.search(token) for token in _TOKEN_RE.findall(line))


def _tcvn3_token(token: str, caps_line: bool, sentence_start: bool) -> str:
    converted = token.translate(TCVN3_TABLE)
    if converted == token:
        return token
    if not _has_ascii_lowercase(token) and (caps_line or _capitals(token) >= 2):
        return converted.upper()
    if sentence_start and token[0] in _TCVN3_TONED_CHARS:
        # VN3 has no toned capitals: "Ủy ban" opening a sentence can only have been typed as "ñy ban".
        return converted[0].upper() + converted[1:]
    return converted


_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)]*\s+$")


def _sentence_starts(lines: list[str]) -> list[bool]:
    """Whether each line begins a sentence: first line, after a line without letters ("", "---") or
    after one ending in . ! ?"""
    starts = []
    previous = ""
    for line in lines:
        starts.append(not _TOKEN_RE.search(previous) or bool(_SENTENCE_END.search(previous.rstrip() + " ")))
        previous = line
    return starts


# What may precede the first word of a sentence: quotes, list bullets, "1." numbering, Markdown marks.
_OPENING = re.compile(r"[\s\"'“‘«(*#•+-]*(?:\d{1,3}[.)]\s+[*]*)?")
_BULLET = re.compile(r"\s*(?:[-+*•]|\d{1,3}[.)]|[a-zđ]\))\s+[*\"'“]*$")


def _iter_tcvn3_tokens(line: str, starts_sentence: bool):
    """(text before, token, converted token) for each word of a line read as TCVN3."""
    caps_line = _is_caps_line(line)
    last = 0
    for match in _TOKEN_RE.finditer(line):
        before = line[last : match.start()]
        if last == 0:
            # A list item starts a sentence whatever the line before it ends with.
            at_start = (starts_sentence and _OPENING.fullmatch(before) is not None) or bool(
                _BULLET.match(before)
            )
        else:
            at_start = _SENTENCE_END.search(before) is not None
        yield before, match.group(), _tcvn3_token(match.group(), caps_line, at_start)
        last = match.end()
    yield line[last:], "", ""


def _tcvn3_line(line: str, starts_sentence: bool) -> str:
    return "".join(before + converted for before, _, converted in _iter_tcvn3_tokens(line, starts_sentence))


def tcvn3_to_unicode(text_or_bytes: str | bytes, *, starts_sentence: bool = True) -> str:
    """Convert TCVN3 (ABC / .VnTime) text to NFC Unicode.

    ``bytes`` are read as TCVN3 bytes; a ``str`` is taken to hold TCVN3 codes as Latin-1 look-alikes
    (what a .VnTime document becomes when saved as Unicode).  Words typed in capitals get their toned
    letters capitalised too ("KÕ HO¹CH" → "KẾ HOẠCH"), and so does a toned vowel opening a sentence
    ("ñy ban" → "Ủy ban"; VN3 cannot encode that capital).  ``starts_sentence=False`` says the text
    continues a sentence (a run in the middle of a Word paragraph).

    >>> tcvn3_to_unicode("Hµ Néi, ngµy 5 th¸ng 3")
    'Hà Nội, ngày 5 tháng 3'
    """
    if isinstance(text_or_bytes, bytes | bytearray | memoryview):
        text = bytes(text_or_bytes).decode("latin-1")
    else:
        text = text_or_bytes
    lines = text.translate(_C1_AS_CP1252).split("\n")
    starts = _sentence_starts(lines)
    starts[0] = starts_sentence
    converted = (_tcvn3_line(line, start) for line, start in zip(lines, starts, strict=True))
    return unicodedata.normalize("NFC", "\n".join(converted))


def _line_verdict(line: str, starts_sentence: bool) -> tuple[int, int, str]:
    """(words fixed, words broken, converted line) if this line were TCVN3."""
    fixed = broken = 0
    pieces: list[str] = []
    for before, token, converted in _iter_tcvn3_tokens(line, starts_sentence):
        pieces.append(before)
        if converted == token:
            pieces.append(token)
            continue
        converted = unicodedata.normalize("NFC", converted)
        was_ok = _analyse(unicodedata.normalize("NFC", token)) is not None
        now_ok = _analyse(converted) is not None
        if was_ok and not now_ok:
            broken += 1
            pieces.append(token)  # a real Unicode word in a mixed line: leave it
            continue
        # A lone symbol ("©", "×", "«") becomes a one-letter word: not evidence of TCVN3 by itself.
        if now_ok and not was_ok and len(token) >= 2:
            fixed += 1
        pieces.append(converted)
    return fixed, broken, "".join(pieces)


def _shows_tcvn3(text: str) -> bool:
    return not _TCVN3_MARKERS.isdisjoint(text) or _MIDWORD_CAPITAL.search(text) is not None


def repair_tcvn3_mojibake(text: str) -> tuple[str, int]:
    """Convert lines of Unicode text that are really TCVN3 look-alikes; returns (text, lines converted).

    A line is converted when it holds a TCVN3 tell-tale sign ("µ", "©", "ñ", a capital inside a word
    as in "triÓn") and conversion turns
    more words into Vietnamese syllables than it breaks.  Once several lines prove the document was
    typed in a .VnTime font, lines without a tell-tale sign ("Tèt" = "Tốt") are judged the same way.
    """
    if not _shows_tcvn3(text):
        return text, 0  # the usual case: nothing to look at twice
    lines = text.split("\n")
    starts = _sentence_starts(lines)

    def verdict(i: int) -> tuple[int, int, str]:
        return _line_verdict(lines[i].translate(_C1_AS_CP1252), starts[i])

    # First the lines that show a tell-tale sign and read better converted.
    verdicts = {i: verdict(i) for i, line in enumerate(lines) if _shows_tcvn3(line)}
    accepted = {i: v[2] for i, v in verdicts.items() if v[0] > v[1]}
    evidence = sum(verdicts[i][0] for i in accepted)
    if evidence >= 3:
        # The document is proven to hold TCVN3: lines without a tell-tale sign that read better converted
        # ("Tèt" → "Tốt"); and if nearly all of it is TCVN3, lines where both readings are words
        # ("Vò" → "Vũ") but nothing breaks.  Never a line with letters TCVN3 cannot encode ("ư", "ạ",
        # "đ"): that line is real Unicode.
        coded = [i for i, line in enumerate(lines) if _HAS_TCVN3_CODE.search(line)]
        mostly_tcvn3 = len(accepted) >= 0.8 * len(coded)
        for i in coded:
            if i in verdicts or _UNICODE_ONLY_LETTER.search(lines[i]):
                continue
            fixed, broken, new_line = verdict(i)
            if fixed > broken or (mostly_tcvn3 and not broken):
                accepted[i] = new_line
    converted = 0
    for i, new_line in accepted.items():
        converted += new_line != lines[i]
        lines[i] = new_line
    if converted:
        logger.info("converted %d line(s) of TCVN3 look-alike text to Unicode", converted)
    return "\n".join(lines), converted


# ---------------------------------------------------------------------------------------------------
# Bytes → text


def syllable_score(text: str) -> tuple[int, int]:
    """(plausible Vietnamese syllables, words scored) over the words that hold non-ASCII characters."""
    valid = total = 0
    for token in _TOKEN_RE.findall(text):
        if token.isascii():
            continue
        ok = _analyse(token) is not None
        if (
            not ok
            and token.isupper()
            and _TONE_MARKS.isdisjoint(unicodedata.normalize("NFD", token))
            and _TCVN3_MARKERS.isdisjoint(token)
        ):
            continue  # an acronym ("HĐND", "CNSCĐ"): says nothing either way
        total += 1
        valid += ok
    return valid, total


_MIN_SCORE = 0.6  # real Vietnamese scores > 0.95 in the right encoding, mojibake < 0.3 (see tests)
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "một tệp nén hoặc tệp Word (.docx) — hãy giữ đúng đuôi .docx"),
    (b"\xd0\xcf\x11\xe0", "một tệp Word .doc cũ hoặc tệp có mật khẩu — hãy lưu lại dạng .docx"),
    (b"%PDF", "một tệp PDF — hãy chép nội dung ra tệp .txt hoặc .docx"),
    (b"{\\rtf", "một tệp RTF — hãy mở bằng Word và lưu lại dạng .docx"),
)
_ENCODING_HINT = (
    "Hãy mở tệp và lưu lại dạng Unicode UTF-8 (Notepad: Save As → Encoding: UTF-8; Word: lưu dạng .docx). "
    "Nếu văn bản gõ bằng phông VNI, hãy chuyển mã sang Unicode bằng Unikey trước."
)


_WINDOWS_1258_WARNING = "Tệp lưu theo bảng mã Windows-1258; đã chuyển sang Unicode."


def _not_text(reason: str, detail: str) -> ScriptRejected:
    return ScriptRejected(f"Nội dung không phải văn bản: {reason}.", code="SCRIPT_NOT_TEXT", detail=detail)


def _check_binary(data: bytes) -> None:
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise _not_text(f"đây là {what}", f"binary signature {signature!r}")
    if b"\x00" in data:
        raise _not_text("có byte NUL (tệp nhị phân, hoặc UTF-16 không có BOM)", "NUL byte in data")


def _check_printable(text: str) -> None:
    junk = sum(1 for c in _INVISIBLE.findall(text) if c not in "\u00ad\u200b\u200c\u200d\ufeff")
    if junk >= 2 and junk > 0.1 * len(text):
        raise _not_text(
            "phần lớn là ký tự không in được (tệp nhị phân?)", f"{junk} of {len(text)} characters unprintable"
        )


def _decode_legacy(data: bytes) -> tuple[str, str, list[str]]:
    """Not Unicode: pick Windows-1258 or TCVN3 by which one reads as Vietnamese words."""
    candidates: list[tuple[str, str]] = [
        ("windows-1258", unicodedata.normalize("NFC", data.decode("cp1258", errors="replace"))),
        ("tcvn3", tcvn3_to_unicode(data)),
        # A UTF-8 file with a few broken bytes (two files pasted together) rather than a legacy one.
        ("utf-8", unicodedata.normalize("NFC", data.decode("utf-8", errors="replace"))),
    ]
    scored = []
    for name, text in candidates:
        valid, total = syllable_score(text)
        scored.append((valid / total if total else 0.0, total, name, text))
    logger.debug("legacy encoding scores: %s", [(n, round(s, 3), t) for s, t, n, _ in scored])
    if scored[0][1] == scored[1][1] == 0:
        # No accented word at all (unaccented Vietnamese, curly quotes): both legacy readings are alike.
        return scored[0][3], "windows-1258", [_WINDOWS_1258_WARNING]
    # Best share of syllables; on a tie the one with more of them, then the earlier candidate.
    score, total, name, text = max(scored, key=lambda s: (s[0], s[0] * s[1]))
    if score < _MIN_SCORE:
        raise ScriptRejected(
            "Không nhận ra bảng mã tiếng Việt của tệp (không phải Unicode, Windows-1258 hay TCVN3). "
            + _ENCODING_HINT,
            code="SCRIPT_ENCODING_UNKNOWN",
            detail="syllable scores: " + ", ".join(f"{n}={s:.2f}/{t}" for s, t, n, _ in scored),
        )
    logger.info("script decoded as %s (%.0f%% of %d accented words are syllables)", name, score * 100, total)
    if name == "tcvn3":
        warning = "Tệp lưu theo bảng mã cũ TCVN3 (ABC, phông .VnTime); đã chuyển sang Unicode."
    elif name == "windows-1258":
        warning = _WINDOWS_1258_WARNING
    else:
        bad = text.count("\ufffd")
        warning = f"Tệp UTF-8 có {bad} chỗ lỗi mã; các ký tự hỏng đã bị bỏ."
        text = text.replace("\ufffd", "")
    return text, name, [warning + " Hãy nghe thử để kiểm tra."]


def clean_text(text: str) -> tuple[str, list[str]]:
    """Unicode text (from a file or a Word document) → normalised text and operator warnings."""
    warnings: list[str] = []
    text, converted = repair_tcvn3_mojibake(text)
    if converted:
        warnings.append(
            f"Có {converted} dòng gõ bằng phông TCVN3 (.VnTime) lẫn trong văn bản Unicode; đã chuyển sang "
            "Unicode. Hãy nghe thử để kiểm tra."
        )
    text, removed = _normalize(text)
    if removed:
        warnings.append(f"Đã bỏ {removed} ký tự điều khiển hoặc ký tự ẩn không đọc được.")
    return text, warnings


def decode_script_bytes(data: bytes) -> tuple[str, str, list[str]]:
    """Decode a script file's bytes; returns (normalised text, encoding detected, warnings).

    Raises ScriptRejected (SCRIPT_NOT_TEXT, SCRIPT_ENCODING_UNKNOWN) when the bytes are not a text
    the station can read.
    """
    warnings: list[str] = []
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text, encoding = data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise ScriptRejected(
                "Nội dung UTF-16 bị hỏng, không giải mã được. " + _ENCODING_HINT,
                code="SCRIPT_ENCODING_UNKNOWN",
                detail=str(exc),
            ) from None
        if "\x00" in text:
            raise _not_text("có ký tự NUL", "NUL character in UTF-16 text")
    else:
        _check_binary(data)
        try:
            text = data.decode("utf-8-sig")
            encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
        except UnicodeDecodeError:
            text, encoding, warnings = _decode_legacy(data)
    _check_printable(text)
    if encoding == "tcvn3":
        # Already converted as a whole; a second, line-by-line pass could only do harm.
        text, removed = _normalize(text)
        if removed:
            warnings.append(f"Đã bỏ {removed} ký tự điều khiển hoặc ký tự ẩn không đọc được.")
    else:
        text, more = clean_text(text)
        warnings.extend(more)
    return text, encoding, warnings
