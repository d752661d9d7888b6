"""The normalizer on sentences quoted from real public pages (tests/tts/data/real_set.tsv, issue 13).

The set was written from ward, police, health, school, weather and news pages after the normalizer, so it
measures how the station reads text it was not tuned on; `make bench BENCH=normalize` prints the score
per category next to the peer library's.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pytest

from bench import normset
from tts.normalize import load_station_lexicon, to_spoken

CASES = normset.load(normset.REAL_SET_PATH)
CATEGORIES = {
    "cardinal", "date", "time", "year", "money", "unit", "rate", "percent", "fraction_ratio", "phone",
    "short_code", "score", "address", "abbreviation", "roman", "doc_code", "web",
}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def shipped_lexicon_only():
    load_station_lexicon(None)


def test_the_set_is_real_large_sourced_and_well_formed():
    assert len(CASES) >= 300
    assert set(Counter(c.category for c in CASES)) <= CATEGORIES
    assert len({c.text for c in CASES}) == len(CASES), "duplicate input"
    seen = {c.text for c in normset.load()}
    for case in CASES:
        assert case.text not in seen, f"line {case.line} is also in normalize_set.tsv"
        assert re.fullmatch(r"https?://\S+", case.source), f"line {case.line}: no source page"
        for expected in case.expected:
            assert not re.search(r"[0-9]", expected), f"line {case.line}: digit in the expected reading"
            assert unicodedata.is_normalized("NFC", expected), f"line {case.line}"


def test_at_least_97_percent_of_real_sentences_read_exactly_right():
    outputs = [to_spoken(c.text) for c in CASES]
    misses = [
        f"line {c.line} [{c.category}] {c.text}\n    got      {o}\n    expected {c.expected[0]}"
        for c, o in zip(CASES, outputs, strict=True)
        if not normset.matches(c, o)
    ]
    right = len(CASES) - len(misses)
    assert right / len(CASES) >= 0.97, f"{right}/{len(CASES)}:\n" + "\n".join(misses)
