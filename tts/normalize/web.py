"""Web and e-mail addresses, read label by label: "dichvucong.gov.vn" = "dịch vụ công chấm gốp chấm vê
en"."""

from __future__ import annotations

import logging
import re

from tts.normalize.letters import _segment_syllables, _spell
from tts.normalize.lexicon import Lexicon
from tts.normalize.numbers import _read_digits
from tts.normalize.spans import _sub_free, _txt

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


def _speak_word_part(run: str, lex: Lexicon) -> str:
    spoken = lex.address_part(run)
    if spoken:
        return spoken
    syllables = _segment_syllables(run.lower(), lex.address_chunks)
    return " ".join(syllables) if syllables else _spell(run)


def _speak_label(label: str, lex: Lexicon) -> str:
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
            words.append(_speak_word_part(run, lex))
    return " ".join(words)


def _speak_address(address: str, lex: Lexicon) -> str:
    rest = _SCHEME.sub("", address)
    query = _QUERY.search(rest)
    if query:
        logger.debug("query/fragment of %r not read", address)
        rest = rest[: query.start()]
    host, _, path = rest.partition("/")
    host = host.rpartition("@")[2]
    host, _, port = host.partition(":")
    words = [" chấm ".join(_speak_label(label, lex) for label in host.split(".") if label)]
    if port.isdigit():
        words.append("hai chấm " + _read_digits(port))
    for segment in path.split("/"):
        if segment:
            spoken = " chấm ".join(_speak_label(p, lex) for p in segment.split(".") if p)
            words.append("gạch chéo " + spoken)
    return " ".join(w for w in words if w)


def _address_repl(m: re.Match[str], lex: Lexicon) -> str:
    found = m.group()
    trail = ""
    while found and found[-1] in _TRAILING_PUNCT:
        found, trail = found[:-1], found[-1] + trail
    spoken = _speak_address(found, lex) if found else ""
    return (_txt(spoken) if spoken else "") + trail


def _email_repl(m: re.Match[str], lex: Lexicon) -> str:
    local, _, domain = m.group().partition("@")
    local_words = " chấm ".join(_speak_label(part, lex) for part in local.split(".") if part)
    return _txt(f"{local_words} a còng {_speak_address(domain, lex)}")


def _addresses(line: str, lex: Lexicon) -> str:
    line = _sub_free(_EMAIL, lambda m: _email_repl(m, lex), line)
    return _sub_free(_URL, lambda m: _address_repl(m, lex), line)
