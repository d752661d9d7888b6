"""Symbols and punctuation, and the last tidying of a spoken line."""

from __future__ import annotations

import re
import unicodedata

from tts.normalize.numbers import _read_digits
from tts.normalize.spans import _SENTINELS, _sub_free

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
    # "5 = 5", and in prose "tăng 44 vụ = 14%": an equals sign standing between words is "bằng" too.
    (
        re.compile(
            "(?<=\ue001)[ \t]*=[ \t]*(?=\ue000)"
            "|(?<=[^\\W_]|[\ue001\ue003])[ \t]+=[ \t]+(?=[^\\W_]|[\ue000\ue002])"
        ),
        " bằng ",
    ),
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
