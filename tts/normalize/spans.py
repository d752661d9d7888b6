"""Protected spans: how a pass keeps the words it made away from the passes after it."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

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


# ---------------------------------------------------------------------------------------------------
# What each pass did, for the approver (issue 13). Every pass turns written text into words through
# _sub_free / _sub_free_in_context, so that is where a transformation is recorded: the written match, the
# words it became, and how it was decided. A replacement function whose choice rests on context (the
# words around "20-11" make it a date) calls heuristic(); one that had nothing to go by (an unknown
# abbreviation spelled, a toneless web label) calls guess(). Recording is off unless spoken_readings()
# asks for it, so to_spoken() pays one ContextVar lookup per match.
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """One transformed stretch: ``written`` as in the text, ``spoken`` as the station will say it.

    ``decided``: "rule" when the text alone decides ("6h30"), "heuristic" when the words around it did
    ("ngày 20-11" is a date, "thắng 3-1" a score), "guess" when nothing did (an abbreviation the lexicon
    lacks, spelled letter by letter); ``note`` says which heuristic or why a guess; ``rule`` is the pass.
    """

    written: str
    spoken: str
    rule: str
    decided: str = "rule"
    note: str = ""


_TRACE: ContextVar[list[Reading] | None] = ContextVar("normalize_trace", default=None)
_DECIDED: ContextVar[tuple[str, str] | None] = ContextVar("normalize_decided", default=None)
_DEPTH: ContextVar[int] = ContextVar("normalize_depth", default=0)


def heuristic(note: str) -> None:
    """Called by a replacement function when the context, not the written form alone, decided it."""
    if _TRACE.get() is not None:
        _DECIDED.set(("heuristic", note))


def guess(note: str) -> None:
    """Called by a replacement function that had nothing reliable to go by."""
    if _TRACE.get() is not None:
        _DECIDED.set(("guess", note))


def _traced(repl):
    """``repl`` (a function or a template), recording each match it replaces while tracing is on."""

    def run(m: re.Match[str]) -> str:
        records = _TRACE.get()
        if records is None:
            return repl(m) if callable(repl) else m.expand(repl)
        depth = _DEPTH.get()
        if depth:  # a pass called from inside another's replacement: the outer match is the reading
            return repl(m) if callable(repl) else m.expand(repl)
        decided, deeper = _DECIDED.set(None), _DEPTH.set(depth + 1)
        try:
            out = repl(m) if callable(repl) else m.expand(repl)
            how = _DECIDED.get()
        finally:
            _DEPTH.reset(deeper)
            _DECIDED.reset(decided)
        written, spoken = m.group().strip(), " ".join(_SENTINELS.sub(" ", out).split())
        if written and spoken != written:
            rule = getattr(repl, "__module__", "") or ""
            kind, note = how or ("rule", "")
            records.append(Reading(written, spoken, rule.rsplit(".", 1)[-1], kind, note))
        return out

    return run


def _sub_free_in_context(pattern: re.Pattern[str], repl, text: str) -> str:
    """Like _sub_free, but matched on the whole line, so ``repl`` can look at what comes before and after
    (spoken spans included); matches that touch a protected span are left alone."""
    spans = [m.span() for m in _PROTECTED.finditer(text)]
    repl = _traced(repl)
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
    repl = _traced(repl)
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
