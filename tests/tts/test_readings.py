"""The approver's list of readings: where what the station says differs from what is written, and which
of those a heuristic or a guess decided (reported by the normalizer itself)."""

from __future__ import annotations

from tts.normalize import heuristic, spoken_readings, to_spoken
from tts.normalize.spans import _sub_free
from tts.readings import readings


def test_each_transformed_stretch_is_listed_in_text_order_with_what_will_be_said():
    got = readings(
        "Từ 6h00 - 6h30 ngày 01/12/2026, UBND phường họp tại TDP 3.\n"
        "Chi tiết tại dichvucong.gov.vn hoặc gọi 0236.3822.123. Lệ phí 1.500.000đ."
    )
    pairs = [(g["written"], g["spoken"]) for g in got]
    assert pairs[:2] == [("6h00", "sáu giờ"), ("6h30", "sáu giờ ba mươi")]
    assert ("TDP", "tổ dân phố") in pairs and ("3", "ba") in pairs
    assert (
        pairs.index(("UBND", "ủy ban nhân dân"))
        < pairs.index(("TDP", "tổ dân phố"))
        < pairs.index(("3", "ba"))
    )
    assert ("dichvucong.gov.vn", "dịch vụ công chấm gốp chấm vê en") in pairs
    assert ("1.500.000đ", "một triệu năm trăm nghìn đồng") in pairs
    assert all(g["kind"] == "read" and g["decided"] == "rule" for g in got if g["written"] == "6h00")


def test_an_abbreviation_the_station_can_only_spell_is_flagged_as_a_guess():
    (spelled,) = [g for g in readings("Liên hệ BQLXYZ để biết thêm.") if g["kind"] == "spelled"]
    assert spelled["written"] == "BQLXYZ" and spelled["spoken"] == "bê quy e lờ ích i dét"
    assert spelled["decided"] == "guess" and "từ điển" in spelled["note"]


def test_a_reading_decided_by_a_heuristic_carries_its_note(monkeypatch):
    import re

    from tts.normalize import spans

    def fake_pass(line: str) -> str:  # a pass whose choice rests on the words around it
        def repl(m):
            heuristic("đọc là ngày tháng vì đứng sau “sáng”")
            return spans._num("năm tháng chín")

        return _sub_free(re.compile(r"5-9"), repl, line)

    import tts.normalize as normalize

    original = normalize._dates
    monkeypatch.setattr(normalize, "_dates", lambda line: original(fake_pass(line)))
    (r,) = [r for r in spoken_readings("Sáng 5-9 khai giảng.") if r.written == "5-9"]
    assert (r.spoken, r.decided, r.note) == (
        "năm tháng chín",
        "heuristic",
        "đọc là ngày tháng vì đứng sau “sáng”",
    )
    (g,) = [g for g in readings("Sáng 5-9 khai giảng.") if g["written"] == "5-9"]
    assert g["kind"] == "unsure" and "sáng" in g["note"]


def test_tracing_changes_nothing_and_is_off_by_default():
    text = "Họp lúc 6h00 ngày 20/11 tại TDP 3, gọi 113. Phí 1.500.000đ/người."
    before = to_spoken(text)
    assert spoken_readings(text)
    assert to_spoken(text) == before


def test_plain_text_has_nothing_to_show_repeats_are_listed_once_and_the_list_is_bounded():
    assert readings("Kính thưa bà con.\n\nXin cảm ơn bà con đã lắng nghe.") == []
    assert [g["written"] for g in readings("UBND phường. UBND quận.")] == ["UBND"]
    assert len(readings(" ".join(f"Số {i}." for i in range(1000)), limit=10)) == 10
