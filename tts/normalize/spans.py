"""Protected spans: how a pass keeps the words it made away from the passes after it."""

from __future__ import annotations

import re

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
