"""What is not words: Unicode, markup and stray symbols cleaned from the text, and the line markers
(bullets, headings, enumerators) read or dropped."""

from __future__ import annotations

import html
import re
import unicodedata
from fractions import Fraction

from tts.normalize.letters import _spell
from tts.normalize.numbers import _roman_value, number_to_words
from tts.normalize.spans import _txt

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
