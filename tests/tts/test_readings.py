"""The approver's list of readings: where what the station says differs from what is written."""

from __future__ import annotations

from tts.readings import readings


def test_each_transformed_stretch_is_listed_with_what_will_be_said():
    got = readings(
        "Từ 6h00 - 6h30 ngày 01/12/2026, UBND phường họp tại TDP 3.\n"
        "Chi tiết tại dichvucong.gov.vn hoặc gọi 0236.3822.123. Lệ phí 1.500.000đ."
    )
    pairs = {g["written"]: g["spoken"] for g in got}
    assert pairs["6h00 - 6h30"] == "sáu giờ đến sáu giờ ba mươi"
    assert pairs["TDP 3"] == "tổ dân phố ba"
    assert pairs["dichvucong.gov.vn"] == "dịch vụ công chấm gốp chấm vê en"
    assert pairs["1.500.000đ"] == "một triệu năm trăm nghìn đồng"
    assert all(g["kind"] == "read" for g in got)


def test_an_abbreviation_the_station_can_only_spell_is_flagged():
    (spelled,) = [g for g in readings("Liên hệ BQLXYZ để biết thêm.") if g["kind"] == "spelled"]
    assert spelled["written"] == "BQLXYZ" and spelled["spoken"] == "bê quy e lờ ích i dét"


def test_plain_text_has_nothing_to_show_and_the_list_is_bounded():
    assert readings("Kính thưa bà con.\n\nXin cảm ơn bà con đã lắng nghe.") == []
    assert len(readings("Số 1. " * 1000, limit=10)) == 10  # sentence by sentence: fast even so
