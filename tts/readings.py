"""What the station will say where it differs from what is written, for the approver to check.

The normalizer turns "6h00" into "sáu giờ", "TDP" into "tổ dân phố", "0236.3822.123" into digits read in
groups.  An approver reading the script sees the written form; before approving, they should see each
place where the spoken form differs, and which of those the station was unsure of.

The list comes from the normalizer itself (tts.normalize.spoken_readings): each transformed stretch, the
words it became, and how that was decided.  ``decided`` is "rule" when the written form alone decides,
"heuristic" when the words around it did ("sáng 5-9" is a date because of "sáng"), "guess" when nothing
did (an abbreviation the lexicon lacks, spelled letter by letter).  The page flags the last two.

    readings("Họp lúc 6h00 tại TDP 3.")
    # [{"written": "6h00", "spoken": "sáu giờ", "kind": "read", "decided": "rule", "note": ""},
    #  {"written": "TDP", "spoken": "tổ dân phố", "kind": "read", ...},
    #  {"written": "3", "spoken": "ba", "kind": "read", ...}]
"""

from __future__ import annotations

import re
import unicodedata

from tts.normalize import spoken_readings, unknown_abbreviations

#: Enough for any bulletin an approver reads; a pathological script does not make the page huge.
MAX_READINGS = 300
_WORD_EDGES = re.compile(r"^[^\w]+|[^\w]+$")
# Sentence by sentence, so the list follows the text (the passes meet things in their own order).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-Ỹ0-9\"“(])")


def _fold(text: str) -> str:
    return " ".join(_WORD_EDGES.sub("", w) for w in unicodedata.normalize("NFC", text).lower().split())


def _position(sentence: str, written: str) -> int:
    """Where ``written`` stands in the sentence as a whole word ("3" of "TDP 3", not of "6h30")."""
    m = re.search(rf"(?<!\w){re.escape(written)}(?!\w)", sentence) or re.search(re.escape(written), sentence)
    return m.start() if m else len(sentence)


def readings(text: str, *, limit: int = MAX_READINGS) -> list[dict]:
    """Each written stretch whose spoken form differs, once per (written, spoken) pair, in text order:
    ``{"written", "spoken", "kind", "decided", "note"}``.

    ``kind`` is ``"spelled"`` when the station knows no reading and spells the letters (an abbreviation
    missing from the lexicon: worth adding to lexicon.tsv), ``"unsure"`` when a heuristic or a guess chose
    the reading, otherwise ``"read"``.
    """
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()
    unknown = {a.lower() for a in unknown_abbreviations(text)}
    for sentence in (s for para in text.splitlines() for s in _SENTENCE_END.split(para)):
        if not sentence.strip():
            continue
        found = sorted(spoken_readings(sentence), key=lambda r: _position(sentence, r.written))
        for r in found:
            written, spoken = r.written.rstrip(".,;:!?…"), r.spoken.strip(" .,;:!?…")
            if not spoken or _fold(written) == _fold(spoken) or (written, spoken) in seen:
                continue
            seen.add((written, spoken))
            spelled = any(_fold(w) in unknown for w in written.split())
            kind = "spelled" if spelled else "unsure" if r.decided != "rule" else "read"
            out.append(
                {"written": written, "spoken": spoken, "kind": kind, "decided": r.decided, "note": r.note}
            )
            if len(out) >= limit:
                return out
    return out
