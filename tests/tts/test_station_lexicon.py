"""The operators' station lexicon: on top of the shipped one, refused lines reported, never a crash."""

from __future__ import annotations

import re
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tts import normalize
from tts.normalize import (
    Lexicon,
    lexicon_in_force,
    load_station_lexicon,
    station_lexicon,
    to_spoken,
    unknown_abbreviations,
)

DIGIT = re.compile(r"[0-9]")


@pytest.fixture(autouse=True)
def no_station_words():
    load_station_lexicon(None)
    yield
    load_station_lexicon(None)


def test_station_entries_add_words_and_override_the_shipped_ones(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text(
        "# our words\n"
        "KDL\tkhu du lịch\n"
        "VNeID = vi en e ai đi\n"
        "Zalo\tza lô\n"
        "hoaxuan\thòa xuân\tdomain\n"
        "KP\tkhu phố\ttitle\n",
        "utf-8",
    )
    assert to_spoken("KDL và Zalo") == "ca dê e lờ và da lô"
    state = load_station_lexicon(path)
    assert (state.entries, state.problems, state.applied) == (5, (), True)
    assert station_lexicon() is state
    assert to_spoken("KDL nhắc bà con cài VNeID và zalo") == (
        "khu du lịch nhắc bà con cài vi en e ai đi và za lô"
    )
    assert to_spoken("Xem hoaxuan.danang.gov.vn") == "xem hòa xuân chấm đà nẵng chấm gốp chấm vê en"
    assert to_spoken("Họp tại KP. Hòa An") == "họp tại khu phố hòa an"
    assert to_spoken("Họp tại KP. 3 lúc 19h") == "họp tại khu phố ba lúc mười chín giờ"
    # abbr entries are case-sensitive: "kdl" in lower case is not the abbreviation
    assert "du lịch" not in to_spoken("kdl")
    # the shipped lexicon is still there underneath
    assert to_spoken("UBND") == "ủy ban nhân dân"


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_applies(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text(
        "OTP\tô tê pê\n"  # 1 fine
        "chỉ một cột\n"  # 2 no separator
        "XYZ\t\n"  # 3 no spoken form
        "4G\tbốn 4\n"  # 4 digit in the spoken form
        "Q\tquy\tfoo\n"  # 5 unknown kind
        "HTTP\thát tê tê pê; chấm\n"  # 6 punctuation in the spoken form
        "\tkhông gì\n"  # 7 nothing written
        "OTP\tmã ô tê pê\n",  # 8 duplicate of line 1: the later one is used
        "utf-8",
    )
    state = load_station_lexicon(path)
    lines = {p.line: p for p in state.problems}
    assert sorted(lines) == [2, 3, 4, 5, 6, 7, 8]
    assert all(p.code == "LEXICON_ENTRY_INVALID" for p in state.problems)
    assert "CHỮ VIẾT<TAB>CÁCH ĐỌC" in lines[2].message
    assert "thiếu cách đọc" in lines[3].message
    assert "chữ số" in lines[4].message
    assert "abbr, title, word hoặc domain" in lines[5].message
    assert "chữ cái" in lines[6].message
    assert "dòng 1" in lines[8].message
    assert str(lines[4]).startswith("[LEXICON_ENTRY_INVALID] dòng 4: ")
    assert state.entries == 2
    assert to_spoken("Nhập OTP") == "nhập mã ô tê pê"
    assert state.to_dict()["problems"][0] == {
        "line": 2,
        "code": "LEXICON_ENTRY_INVALID",
        "message": lines[2].message,
    }


def test_an_unreadable_file_keeps_the_entries_in_force(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text("KDL\tkhu du lịch\n", "utf-8")
    good = load_station_lexicon(path)
    path.write_bytes("KDL\tkhu dân cư\n".encode("cp1258", "ignore"))  # the old Windows code page
    state = load_station_lexicon(path)
    assert not state.applied
    assert [p.code for p in state.problems] == ["LEXICON_ENCODING"]
    assert "UTF-8" in state.problems[0].message
    assert state.entries == 1 and state.digest == good.digest
    assert to_spoken("KDL") == "khu du lịch"

    path.write_bytes(b"A\ta\n" * 300_000)
    state = load_station_lexicon(path)
    assert [p.code for p in state.problems] == ["LEXICON_TOO_LARGE"]
    assert to_spoken("KDL") == "khu du lịch"


def test_a_missing_file_is_no_error_and_clears_the_station_words(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text("\ufeffKDL\tkhu du lịch\n", "utf-8")  # a BOM from Notepad is fine
    assert load_station_lexicon(path).entries == 1
    path.unlink()
    state = load_station_lexicon(path)
    assert (state.entries, state.problems, state.digest, state.applied) == (0, (), "", True)
    assert to_spoken("KDL") == "ca dê e lờ"


def test_the_digest_follows_the_content(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text("KDL\tkhu du lịch\n", "utf-8")
    first = load_station_lexicon(path).digest
    assert load_station_lexicon(path).digest == first
    path.write_text("KDL\tkhu du lịch\nKCX\tkhu chế xuất\n", "utf-8")
    assert load_station_lexicon(path).digest != first


def test_a_render_can_be_given_its_lexicon(tmp_path):
    path = tmp_path / "lexicon.tsv"
    path.write_text("KDL\tkhu du lịch\n", "utf-8")
    load_station_lexicon(path)
    ours = lexicon_in_force()
    assert ours.station == (("KDL", "khu du lịch", "abbr"),) and ours.state is station_lexicon()
    load_station_lexicon(None)
    assert to_spoken("KDL họp") == "ca dê e lờ họp"
    assert to_spoken("KDL họp", lexicon=ours) == "khu du lịch họp"
    assert unknown_abbreviations("KDL họp") == ["KDL"]
    assert unknown_abbreviations("KDL họp", lexicon=ours) == []
    assert to_spoken("UBND", lexicon=Lexicon()) == "u bê en dê"  # no entry at all: spelled


def test_the_lexicon_digest_follows_the_entries_in_force(tmp_path):
    shipped = lexicon_in_force().digest
    path = tmp_path / "lexicon.tsv"
    path.write_text("KDL\tkhu du lịch\n", "utf-8")
    first = load_station_lexicon(path)
    ours = lexicon_in_force().digest
    assert ours != shipped
    # Another file, the same entries: the file's digest changes, the readings (and the lexicon's) do not.
    path.write_text("# khu du lịch\nKDL\tkhu du lịch\n", "utf-8")
    assert load_station_lexicon(path).digest != first.digest
    assert lexicon_in_force().digest == ours
    path.write_bytes(b"KDL\tkhu d\xe2n c\xf0\n")  # not UTF-8: the entries in force stay
    assert not load_station_lexicon(path).applied
    assert lexicon_in_force().digest == ours
    load_station_lexicon(None)
    assert lexicon_in_force().digest == shipped


def test_a_render_reads_the_old_lexicon_or_the_new_one_never_a_mix(tmp_path):
    old, new = tmp_path / "old.tsv", tmp_path / "new.tsv"
    old.write_text("KDL\tkhu du lịch\nhoaxuan\thòa xuân\tdomain\n", "utf-8")
    new.write_text("KDL\tkhu dân cư\nhoaxuan\thoa xoan\tdomain\n", "utf-8")
    # The web-address pass and the lexicon pass both read the lexicon: a mix would show in one reading.
    text = "KDL Hòa Xuân: xem hoaxuan.gov.vn.\n\nKDL"
    readings = set()
    for path in (old, new):
        load_station_lexicon(path)
        readings.add(to_spoken(text))
    assert len(readings) == 2
    done = threading.Event()

    def swap():
        try:
            for i in range(150):
                load_station_lexicon(old if i % 2 else new)
        finally:
            done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the passes too
    try:
        swapper = threading.Thread(target=swap)
        swapper.start()
        seen = []
        while not done.is_set():
            seen.append(to_spoken(text))
        swapper.join()
    finally:
        sys.setswitchinterval(interval)
    assert seen and set(seen) <= readings


def test_the_repository_station_lexicon_is_clean():
    from pathlib import Path

    state = load_station_lexicon(Path(__file__).parents[2] / "lexicon.tsv")
    assert state.problems == () and state.entries >= 1


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("AĐZaz ưở=\t\n#.-/4@gG"), max_size=120), st.text(max_size=60))
def test_any_station_file_neither_crashes_nor_puts_a_digit_in_speech(tmp_path_factory, source, text):
    path = tmp_path_factory.mktemp("lex") / "lexicon.tsv"
    path.write_text(source, "utf-8")
    state = load_station_lexicon(path)
    assert state.applied
    spoken = to_spoken(text + " A Z G 4G az")
    assert not DIGIT.search(spoken)
    normalize._reset_lexicon()
