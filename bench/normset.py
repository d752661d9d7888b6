"""The normalization test set (tests/tts/data/normalize_set.tsv) and how a reading is scored against it.

Shared by the test that holds tts/normalize.py to its score and by `make bench normalize`, which scores
the peer library on the same sentences. Scoring compares the spoken *words*: an engine does not read case,
punctuation or hyphens ("ki-lô-mét" is "ki lô mét"), and it says some spelling variants the same way, so
those are treated alike for every normalizer scored:
  * tone mark placement, old and new style ("hoà" / "hòa", "uỷ" / "ủy");
  * "tỉ" / "tỷ", "ngàn" / "nghìn", "lẻ" / "linh" (regional words for the same number), and "mươi bốn" /
    "mươi tư" (both correct; the station says "tư").
Nothing else is forgiven: a dropped word, a slash read "gạch chéo", a number read as another is wrong.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "tts" / "data"
SET_PATH = DATA / "normalize_set.tsv"
#: Sentences quoted from real public pages, with their sources (issue 13): scored apart from SET_PATH.
REAL_SET_PATH = DATA / "real_set.tsv"

_TONES = "\u0300\u0301\u0303\u0309\u0323"  # huyền, sắc, ngã, hỏi, nặng
_NOT_WORD = re.compile(r"[^\w\s]|_")
_SAME_WORD = {"tỉ": "tỷ", "ngàn": "nghìn", "lẻ": "linh"}


@dataclass(frozen=True)
class Case:
    line: int
    category: str
    text: str
    expected: tuple[str, ...]  # equally correct readings, the preferred first
    source: str = ""  # where the sentence was quoted from (the real-text set)


def load(path: Path = SET_PATH) -> list[Case]:
    cases = []
    for number, raw in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        category, text, expected, *source = raw.split("\t")
        readings = tuple(e.strip() for e in expected.split(" | "))
        cases.append(Case(number, category, text, readings, source[0] if source else ""))
    return cases


def _syllable(token: str) -> str:
    token = _SAME_WORD.get(token, token)
    # One tone per syllable: where it is written (hoà, hòa) does not change the sound.
    decomposed = unicodedata.normalize("NFD", token)
    tones = "".join(ch for ch in decomposed if ch in _TONES)
    bare = "".join(ch for ch in decomposed if ch not in _TONES)
    return unicodedata.normalize("NFC", bare) + tones


def words(spoken: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFC", spoken).casefold().replace("-", " ")
    out = [_syllable(t) for t in _NOT_WORD.sub(" ", text).split()]
    four = _syllable("bốn")
    return tuple(
        _syllable("tư") if t == four and i and out[i - 1] == _syllable("mươi") else t
        for i, t in enumerate(out)
    )


def matches(case: Case, spoken: str) -> bool:
    got = words(spoken)
    return any(got == words(e) for e in case.expected)


def score(cases: Iterable[Case], outputs: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Per category: (sentences read exactly right, sentences)."""
    out: dict[str, tuple[int, int]] = {}
    for case, spoken in zip(cases, outputs, strict=True):
        right, total = out.get(case.category, (0, 0))
        out[case.category] = (right + matches(case, spoken), total + 1)
    return out


def main(argv: list[str]) -> int:
    """`python -m bench.normset [real|set] [CATEGORY]`: the score and every miss, words compared."""
    from tts.normalize import load_station_lexicon, to_spoken

    load_station_lexicon(None)
    path = REAL_SET_PATH if (argv[:1] or ["real"])[0] == "real" else SET_PATH
    cases = [c for c in load(path) if len(argv) < 2 or c.category == argv[1]]
    outputs = [to_spoken(c.text) for c in cases]
    for case, spoken in zip(cases, outputs, strict=True):
        if not matches(case, spoken):
            print(f"line {case.line} [{case.category}] {case.text}")
            print(f"  got: {spoken}\n  exp: {case.expected[0]}\n")
    for category, (right, n) in sorted(score(cases, outputs).items()):
        print(f"{category:<16} {right:>4}/{n:<4}")
    right = sum(matches(c, o) for c, o in zip(cases, outputs, strict=True))
    print(f"{path.name}: {right}/{len(cases)} = {100 * right / max(1, len(cases)):.1f} %")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
