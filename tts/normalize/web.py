"""Web and e-mail addresses, read label by label: "dichvucong.gov.vn" = "dịch vụ công chấm gốp chấm vê
en"."""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from pathlib import Path

from tts.normalize.letters import _segment_syllables, _spell
from tts.normalize.lexicon import Lexicon
from tts.normalize.numbers import _read_digits
from tts.normalize.spans import _sub_free, _txt, guess, heuristic

logger = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------------------------------
# Toneless labels read with their tones. "togiactoipham@canhsat.vn" is typed without tones, but said on
# air as the words it stands for, "tố giác tội phạm a còng cảnh sát chấm vê en": "to giac toi pham" is no
# word a listener knows. The tones come from a word list (tts/data/vi_words.txt, built by bench/vi_words.py
# from pyvi's word list and the lexicon's expansions: Vietnamese words of two syllables or more) and are
# used only where they are certain:
#   * every way of cutting the label into known pieces is tried; the pieces are the words of that list,
#     the lexicon's word and domain entries of four letters or more ("congan", "baohiemxahoi", "gmail"),
#     and the few one-syllable words of _SINGLE_WORDS;
#   * the label is toned only when all those cuttings give one and the same reading, and it uses at
#     least one word of two syllables or more. "xahoi" is both "xã hội" and "xả hơi", "trangnguyen" is
#     in no list: such labels stay toneless, as before (a guess()).
# A one-syllable piece is too often several words ("tinh": tinh, tính, tình, tỉnh, tĩnh, tịnh), so only
# the words that name administrative units, which stand alone in the addresses of offices and police
# ("congantinhhoabinh", "ubndhuyen...", "phuong..."), and "tên", the placeholder of the official naming
# rules ("tentinh.gov.vn", "tenxa..."), are pieces on their own: there, nothing else is meant.
# ---------------------------------------------------------------------------------------------------
_SINGLE_WORDS = ("tỉnh", "huyện", "quận", "xã", "phường", "tên")
_WORDS_FILE = Path(__file__).resolve().parent.with_name("data") / "vi_words.txt"
_LONGEST_LABEL = 40  # as letters._segment_syllables: a longer run is no label anyone reads out


def _bare(text: str) -> str:
    """Lower case without tone and vowel marks, "đ" as "d", no spaces: "Cảnh sát" -> "canhsat"."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and not ch.isspace())


@functools.cache
def _toned_words() -> dict[str, tuple[str, ...]]:
    """Toneless spelling -> the words written that way ("xahoi" -> ("xã hội", "xả hơi"))."""
    words: dict[str, tuple[str, ...]] = {}
    try:
        text = _WORDS_FILE.read_text(encoding="utf-8")
    except OSError as exc:  # a missing data file must not stop a render: labels stay toneless
        logger.error("%s unreadable (%s): web labels are read without tones", _WORDS_FILE, exc)
        return words
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key = _bare(line)
            if line not in words.get(key, ()):
                words[key] = (*words.get(key, ()), line)
    return words


@functools.cache
def _longest_word() -> int:
    return max((len(k) for k in _toned_words()), default=0)


def _one_reading(word: str, layers: tuple[dict[str, tuple[str, ...]], ...], longest: int) -> str | None:
    """The reading of ``word`` when every cutting into pieces (the first of ``layers`` that has a piece
    says how it is read) and _SINGLE_WORDS gives the same one, and uses at least one piece of ``layers``;
    None otherwise."""
    n = len(word)
    singles = {_bare(w): w for w in _SINGLE_WORDS}
    # readings[i]: the readings of word[:i], each with whether a word of two syllables or more is in it.
    # Two are enough to know the label is ambiguous: two readings of a prefix stay two with any ending.
    readings: list[dict[str, bool]] = [{} for _ in range(n + 1)]
    readings[0][""] = False
    for start in range(n):
        if not readings[start]:
            continue
        for end in range(start + 1, min(n, start + longest) + 1):
            piece = word[start:end]
            spoken_forms = next((layer[piece] for layer in layers if piece in layer), ())
            options = [(spoken, True) for spoken in spoken_forms]
            if piece in singles:
                options.append((singles[piece], False))
            for spoken, is_word in options:
                for before, had_word in readings[start].items():
                    reading = f"{before} {spoken}".strip()
                    if reading in readings[end] or len(readings[end]) < 2:
                        readings[end][reading] = readings[end].get(reading, False) or had_word or is_word
    if len(readings[n]) != 1:
        return None
    ((reading, has_word),) = readings[n].items()
    return reading if has_word else None


def _toned_label(run: str, lex: Lexicon) -> str | None:
    """The label "canhsat" read "cảnh sát" when the known pieces cut it into one reading only (see above).

    The lexicon's pieces are tried alone first: they were chosen by people for addresses, so where they
    cut a label one way ("dichvucong" + "baohiemxahoi") that is the reading, even if the word list also
    knows "xả hơi" for "xahoi"."""
    word = run.lower()
    if len(word) < 4 or len(word) > _LONGEST_LABEL or not word.isascii() or not word.isalpha():
        return None
    # The lexicon's word and domain entries (cost below one syllable in address_chunks) are its pieces.
    lexicon_pieces = {k: (v,) for k, (cost, v) in lex.address_chunks.items() if cost < 1}
    longest = max((len(k) for k in lexicon_pieces), default=0)
    reading = _one_reading(word, (lexicon_pieces,), longest)
    if reading:
        return reading
    return _one_reading(word, (lexicon_pieces, _toned_words()), max(longest, _longest_word()))


def _speak_word_part(run: str, lex: Lexicon, how: list[str]) -> str:
    spoken = lex.address_part(run)
    if spoken:
        return spoken
    toned = _toned_label(run, lex)
    if toned:
        how.append("toned")
        return toned
    how.append("toneless")
    syllables = _segment_syllables(run.lower(), lex.address_chunks)
    return " ".join(syllables) if syllables else _spell(run)


def _decided(how: list[str]) -> None:
    """Tell the approver how the labels of one address were read: a toneless one is a guess."""
    if "toneless" in how:
        guess("phần địa chỉ không dấu, không tra được từ: đọc từng âm tiết không dấu hoặc đánh vần")
    elif "toned" in how:
        heuristic("phần địa chỉ không dấu đọc có dấu: chỉ có một cách tách thành từ trong từ điển")


def _speak_label(label: str, lex: Lexicon, how: list[str]) -> str:
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
            words.append(_speak_word_part(run, lex, how))
    return " ".join(words)


def _speak_address(address: str, lex: Lexicon, how: list[str]) -> str:
    rest = _SCHEME.sub("", address)
    query = _QUERY.search(rest)
    if query:
        logger.debug("query/fragment of %r not read", address)
        rest = rest[: query.start()]
    host, _, path = rest.partition("/")
    host = host.rpartition("@")[2]
    host, _, port = host.partition(":")
    words = [" chấm ".join(_speak_label(label, lex, how) for label in host.split(".") if label)]
    if port.isdigit():
        words.append("hai chấm " + _read_digits(port))
    for segment in path.split("/"):
        if segment:
            spoken = " chấm ".join(_speak_label(p, lex, how) for p in segment.split(".") if p)
            words.append("gạch chéo " + spoken)
    return " ".join(w for w in words if w)


def _address_repl(m: re.Match[str], lex: Lexicon) -> str:
    found = m.group()
    trail = ""
    while found and found[-1] in _TRAILING_PUNCT:
        found, trail = found[:-1], found[-1] + trail
    how: list[str] = []
    spoken = _speak_address(found, lex, how) if found else ""
    _decided(how)
    return (_txt(spoken) if spoken else "") + trail


def _email_repl(m: re.Match[str], lex: Lexicon) -> str:
    local, _, domain = m.group().partition("@")
    how: list[str] = []
    local_words = " chấm ".join(_speak_label(part, lex, how) for part in local.split(".") if part)
    spoken = f"{local_words} a còng {_speak_address(domain, lex, how)}"
    _decided(how)
    return _txt(spoken)


def _addresses(line: str, lex: Lexicon) -> str:
    line = _sub_free(_EMAIL, lambda m: _email_repl(m, lex), line)
    return _sub_free(_URL, lambda m: _address_repl(m, lex), line)
