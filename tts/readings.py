"""What the station will say where it differs from what is written, for the approver to check.

The normalizer turns "6h00" into "sáu giờ", "TDP" into "tổ dân phố", "0236.3822.123" into digits read in
groups.  An approver reading the script sees the written form; before approving, they should see each
place where the spoken form differs, and which of them the station could only spell letter by letter.

Each line of the body is normalized on its own and its words aligned with the spoken words (difflib on
folded forms: lower case, no punctuation); every stretch that differs is one reading.  This is an
alignment after the fact, not a trace from inside the normalizer: it shows what changed, not which rule
changed it.

    readings("Họp lúc 6h00 tại TDP 3.")
    # [{"written": "6h00", "spoken": "sáu giờ", "kind": "read"},
    #  {"written": "TDP 3", "spoken": "tổ dân phố ba", "kind": "read"}]
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from tts.normalize import to_spoken, unknown_abbreviations

#: Enough for any bulletin an approver reads; a pathological script does not make the page huge.
MAX_READINGS = 300
_WORD_EDGES = re.compile(r"^[^\w]+|[^\w]+$")
# A sentence ends at . ! ? … followed by a space and a capital or a digit: aligning sentence by sentence
# keeps difflib's work small (it is quadratic in a line of a thousand words).
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-Ỹ0-9\"“(])")


def _fold(word: str) -> str:
    return _WORD_EDGES.sub("", unicodedata.normalize("NFC", word).lower())


def readings(text: str, *, limit: int = MAX_READINGS) -> list[dict]:
    """Each written stretch whose spoken form differs: ``{"written", "spoken", "kind"}``.

    ``kind`` is ``"spelled"`` when the station knows no reading and spells the letters (an abbreviation
    missing from the lexicon: worth adding to lexicon.tsv), otherwise ``"read"``.
    """
    out: list[dict] = []
    unknown = {a.lower() for a in unknown_abbreviations(text)}
    for line in (s for para in text.splitlines() for s in _SENTENCE_END.split(para)):
        if not line.strip():
            continue
        written = line.split()
        spoken = to_spoken(line).split()
        a = [_fold(w) for w in written]
        b = [_fold(w) for w in spoken]
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "equal" or i1 == i2:
                continue  # nothing written there: a pause or a word the normalizer added around a number
            said = " ".join(w.strip(".,;:!?…") for w in spoken[j1:j2]).strip()
            what = " ".join(written[i1:i2]).strip().rstrip(".,;:!?…")
            if not said or _fold(what) == _fold(said):
                continue
            spelled = any(_fold(w) in unknown for w in written[i1:i2])
            out.append({"written": what, "spoken": said, "kind": "spelled" if spelled else "read"})
            if len(out) >= limit:
                return out
    return out
