"""tts/normalize.py against the hand-written set of ward-bulletin sentences (tests/tts/data/).

The score itself, and the peer library's on the same set, is printed by `make bench normalize`; here the
set is held to the issue's bar so a change that breaks a category fails the suite.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pytest

from bench import normset
from tts.normalize import load_station_lexicon, to_spoken

CATEGORIES = {
    "cardinal", "date", "year", "weekday_ordinal", "time", "rate", "comparison_percent", "fraction_ratio",
    "money", "unit", "phone", "roman", "doc_code", "abbreviation", "web", "brand",
}  # fmt: skip
CASES = normset.load()


@pytest.fixture(autouse=True, scope="module")
def shipped_lexicon_only():
    load_station_lexicon(None)


def test_the_set_is_large_covers_every_category_and_is_well_formed():
    assert len(CASES) >= 300
    counts = Counter(c.category for c in CASES)
    assert set(counts) == CATEGORIES
    assert min(counts.values()) >= 20
    assert len({c.text for c in CASES}) == len(CASES), "duplicate input"
    for case in CASES:
        for expected in case.expected:
            assert not re.search(r"[0-9]", expected), f"line {case.line}: digit in the expected reading"
            assert unicodedata.is_normalized("NFC", expected), f"line {case.line}"
            assert expected == expected.lower(), f"line {case.line}"


def test_at_least_97_percent_exact_and_every_category_at_least_90():
    outputs = [to_spoken(c.text) for c in CASES]
    misses = [
        f"line {c.line} [{c.category}] {c.text}\n    got      {o}\n    expected {c.expected[0]}"
        for c, o in zip(CASES, outputs, strict=True)
        if not normset.matches(c, o)
    ]
    right = len(CASES) - len(misses)
    assert right / len(CASES) >= 0.97, f"{right}/{len(CASES)}:\n" + "\n".join(misses)
    for category, (ok, n) in normset.score(CASES, outputs).items():
        assert ok / n >= 0.90, f"{category}: {ok}/{n}\n" + "\n".join(misses)


@pytest.mark.parametrize(
    ("spoken", "expected", "same"),
    [
        ("Hoà bình, thuỷ lợi.", "hòa bình thủy lợi", True),  # tone mark placement, case, punctuation
        ("một trăm lẻ năm ngàn", "một trăm linh năm nghìn", True),
        ("hai mươi bốn tỉ", "hai mươi tư tỷ", True),
        ("ki-lô-mét", "ki lô mét", True),
        ("bốn người", "tư người", False),  # "tư" only after "mươi"
        ("mười hai tháng ba", "mười hai trên ba", False),
        ("ủy ban nhân dân phường", "ủy ban nhân dân", False),  # a dropped or extra word is wrong
        ("hai mươi lăm", "hai mươi năm", False),
    ],
)
def test_scoring_forgives_spelling_variants_only(spoken, expected, same):
    case = normset.Case(0, "x", "-", (expected,))
    assert normset.matches(case, spoken) is same
