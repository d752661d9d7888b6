"""Periodic reports built from a real as-run log (SQLite in a temporary folder), fixed tz +07:00."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
from types import SimpleNamespace

import pytest

from playout.asrun import COLUMNS, AsRunLog, Slot
from playout.intake import TOPICS
from playout.reports import (
    PLAYS_CSV_HEADERS,
    STATUS_NAMES,
    DepartmentQuota,
    ReportSettings,
    build_report,
    period_bounds,
    plays_csv,
    report_csv,
    weekly_chart_svg,
)

TZ = dt.timezone(dt.timedelta(hours=7))
BOM = b"\xef\xbb\xbf"
TRICKY_TITLE = 'Cảnh giác "việc nhẹ, lương cao", lừa đảo qua Zalo'


def _bulletin(n: int, topic: str | None, title: str | None = None):
    return SimpleNamespace(id=f"b{n}", title=title or f"Bản tin {n}", topic=topic, summary={})


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)


@pytest.fixture
def log(tmp_path):
    """Q4 2026: every day 1 Oct – 31 Dec has a morning play; some evenings miss, fail or are interrupted."""
    log = AsRunLog(tmp_path / "playout.db", tz=TZ)
    topics = ["dich-vu-cong", "an-toan-thong-tin", "thanh-toan"]
    day = dt.date(2026, 9, 28)  # the Monday before the quarter: outside it, must not count
    n = 0
    while day <= dt.date(2027, 1, 3):
        n += 1
        title = TRICKY_TITLE if day == dt.date(2026, 12, 2) else None
        row = log.start(Slot("sáng", _at(day, 6)), _bulletin(n, topics[n % 3], title))
        log.finish(row, "played", audio_end_at=_at(day, 6) + dt.timedelta(minutes=3))
        day += dt.timedelta(days=1)
    # December extras (Tue 1 Dec .. Sun 6 Dec is the month's first, partial-from-Tuesday week).
    for d in (1, 2, 3):
        row = log.start(Slot("chiều", _at(dt.date(2026, 12, d), 17)), _bulletin(900 + d, None))
        log.finish(row, "played")
    log.record(Slot("chiều", _at(dt.date(2026, 12, 4), 17)), "missed", error="máy khởi động lại lúc 17:40")
    row = log.start(Slot("chiều", _at(dt.date(2026, 12, 5), 17)), _bulletin(905, "thanh-toan"))
    log.finish(row, "failed", error="<no audio device>")
    row = log.start(Slot("chiều", _at(dt.date(2026, 12, 6), 17)), _bulletin(906, "thanh-toan"))
    log.finish(row, "interrupted")
    log.record(Slot("chiều", _at(dt.date(2026, 12, 7), 17)), "skipped", error="không có bản tin")
    log.record(Slot("chiều", _at(dt.date(2026, 11, 10), 17)), "missed")
    yield log
    log.close()


def _received():
    def item(dep, day, title="Tin", topic=None):
        return {"department": dep, "received_at": _at(day, 9), "title": title, "topic": topic}

    offices = [q.name for q in ReportSettings().departments if q.per == "month"]
    items = []
    for month in (10, 11, 12):
        for office in offices:
            if (office, month) == ("Công an phường", 11):
                continue  # the police skipped November
            items.append(item(office, dt.date(2026, month, 15)))
    # Typed by hand: old tone placement (hoá), decomposed accents, hyphen, extra space: same office.
    items.append(item("phòng văn hoa\u0301 - xã  hội", dt.date(2026, 12, 20)))
    items.append(item("Ủy ban MTTQ Việt Nam phường", dt.date(2026, 10, 3)))
    items.append(item("Hội Phụ nữ phường", dt.date(2026, 12, 10), TRICKY_TITLE, "an-toan-thong-tin"))
    items.append(item(None, dt.date(2026, 11, 2), "Không rõ nguồn"))
    items.append(item("Công an phường", dt.date(2027, 1, 2)))  # next quarter
    return items


def _report(log, kind, number, settings=None):
    start, end = period_bounds(kind, 2026, number, TZ)
    rows = log.plays(since=start - dt.timedelta(days=7), until=end + dt.timedelta(days=7), limit=10_000)
    return build_report(
        kind, 2026, number, plays=rows, received=_received(), settings=settings or ReportSettings(), tz=TZ
    )


def test_period_bounds_quarter_and_december_roll_over():
    assert period_bounds("quarter", 2026, 4, TZ) == (
        dt.datetime(2026, 10, 1, tzinfo=TZ),
        dt.datetime(2027, 1, 1, tzinfo=TZ),
    )
    assert period_bounds("month", 2026, 12, TZ) == (
        dt.datetime(2026, 12, 1, tzinfo=TZ),
        dt.datetime(2027, 1, 1, tzinfo=TZ),
    )
    assert period_bounds("quarter", 2026, 1, TZ)[1] == dt.datetime(2026, 4, 1, tzinfo=TZ)
    with pytest.raises(ValueError):
        period_bounds("quarter", 2026, 5, TZ)
    with pytest.raises(ValueError):
        period_bounds("month", 2026, 0, TZ)


def test_weeks_of_a_month_starting_mid_week_are_clipped_and_prorated(log):
    report = _report(log, "month", 12)
    assert report.label == "Tháng 12/2026"
    weeks = [
        (w.iso_week, w.first_day.day, w.last_day.day, w.days, w.played, w.target, w.met) for w in report.weeks
    ]
    assert weeks == [
        # Tue 1 – Sun 6: 6 mornings + 3 evenings played; 12 × 6/7 = 10.3 → 10
        (49, 1, 6, 6, 9, 10, False),
        (50, 7, 13, 7, 7, 12, False),
        (51, 14, 20, 7, 7, 12, False),
        (52, 21, 27, 7, 7, 12, False),
        # Mon 28 – Thu 31: 12 × 4/7 = 6.9 → 7
        (53, 28, 31, 4, 4, 7, False),
    ]
    assert report.played_total == 34
    assert report.target_total == 53

    # A lower target: weeks become met, prorated with half-up rounding (7 × 4/7 = 4, 7 × 6/7 = 6).
    relaxed = _report(log, "month", 12, ReportSettings(plays_per_week_target=7))
    assert [(w.target, w.met) for w in relaxed.weeks] == [
        (6, True),
        (7, True),
        (7, True),
        (7, True),
        (4, True),
    ]


def test_totals_by_status_and_problem_slots(log):
    report = _report(log, "month", 12)
    assert report.status_totals == {
        "played": 34,
        "missed": 1,
        "failed": 1,
        "interrupted": 1,
        "skipped": 1,
        "playing": 0,
    }
    assert [(p.status, p.scheduled_at, p.window, p.error) for p in report.problems] == [
        ("missed", "2026-12-04T17:00+07:00", "chiều", "máy khởi động lại lúc 17:40"),
        ("failed", "2026-12-05T17:00+07:00", "chiều", "<no audio device>"),
    ]
    quarter = _report(log, "quarter", 4)
    assert quarter.status_totals["played"] == 92 + 3  # every day of Q4 plus three evenings
    assert quarter.status_totals["missed"] == 2
    assert len(quarter.weeks) == 14 and quarter.weeks[0].days == 4 and quarter.weeks[-1].days == 4


def test_topic_counts_include_zeros_and_unknown(log):
    report = _report(log, "month", 12)
    by_slug = {t.slug: t for t in report.topics}
    assert list(by_slug)[: len(TOPICS)] == list(TOPICS)
    assert by_slug["thiet-bi-internet"].played == 0
    assert by_slug["thiet-bi-internet"].name == "Sử dụng thiết bị và Internet"
    assert by_slug[None].played == 3  # the evening plays without a topic
    assert sum(t.played for t in report.topics) == report.played_total
    assert (
        by_slug["dich-vu-cong"].played + by_slug["an-toan-thong-tin"].played + by_slug["thanh-toan"].played
        == 31
    )


def test_department_quotas_month_vs_quarter_and_other_bucket(log):
    quarter = {d.name: d for d in _report(log, "quarter", 4).departments}
    assert {name: (d.received, d.target, d.met) for name, d in quarter.items()} == {
        "Phòng Văn hóa – Xã hội": (4, 3, True),  # incl. the hand-typed variant
        "Công an phường": (2, 3, False),  # skipped November; January belongs to Q1
        "Trung tâm Phục vụ hành chính công": (3, 3, True),
        "Phòng Kinh tế, Hạ tầng và Đô thị": (3, 3, True),
        "Văn phòng HĐND và UBND": (3, 3, True),
        "Ủy ban MTTQ Việt Nam phường": (1, 1, True),
    }
    q_report = _report(log, "quarter", 4)
    assert [(i.department, i.title) for i in q_report.other_items] == [
        (None, "Không rõ nguồn"),
        ("Hội Phụ nữ phường", TRICKY_TITLE),
    ]

    november = {d.name: d for d in _report(log, "month", 11).departments}
    assert (november["Công an phường"].received, november["Công an phường"].target) == (0, 1)
    assert not november["Công an phường"].met
    assert (november["Phòng Văn hóa – Xã hội"].received, november["Phòng Văn hóa – Xã hội"].target) == (1, 1)
    # The Front owes one item a quarter: its October item still covers November.
    front = november["Ủy ban MTTQ Việt Nam phường"]
    assert (front.received, front.target, front.met) == (1, 1, True)
    assert front.counted_from == dt.datetime(2026, 10, 1, tzinfo=TZ)
    assert [i.title for i in _report(log, "month", 11).other_items] == ["Không rõ nguồn"]


def test_settings_validate():
    assert len(ReportSettings().departments) == 6
    custom = ReportSettings.model_validate(
        {
            "plays_per_week_target": 14,
            "departments": [{"name": "Đoàn Thanh niên", "per": "quarter", "items": 2}],
        }
    )
    assert custom.departments == [DepartmentQuota(name="Đoàn Thanh niên", per="quarter", items=2)]
    with pytest.raises(ValueError):
        ReportSettings.model_validate({"plays_per_week_target": 12, "typo": 1})
    with pytest.raises(ValueError):
        ReportSettings.model_validate(
            {
                "departments": [
                    {"name": "Công an phường", "per": "month"},
                    {"name": "công an  phường", "per": "month"},
                ]
            }
        )


def _read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    text = data[len(BOM) :].decode("utf-8")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_report_csv_is_excel_friendly_and_round_trips(log):
    rows = _read_csv(report_csv(_report(log, "quarter", 4)))
    assert rows[0][1] == "Quý IV/2026"
    assert ["Tuần", "Từ ngày", "Đến ngày", "Số ngày", "Số lần phát", "Chỉ tiêu", "Đạt"] in rows
    assert ["49/2026", "30/11/2026", "06/12/2026", "7", "10", "12", "Không"] in rows
    assert ["Chủ đề", "Mã chủ đề", "Số lần phát"] in rows
    assert ["Sử dụng thiết bị và Internet", "thiet-bi-internet", "0"] in rows
    assert ["Đơn vị", "Chỉ tiêu theo", "Số tin nhận", "Chỉ tiêu", "Đạt"] in rows
    assert ["Công an phường", "tháng", "2", "3", "Không"] in rows
    assert ["Ủy ban MTTQ Việt Nam phường", "quý", "1", "1", "Có"] in rows
    assert ["khác", "", "2", "", ""] in rows
    assert [
        "khác: Hội Phụ nữ phường",
        "10/12/2026",
        TRICKY_TITLE,
        "An toàn thông tin và phòng chống lừa đảo",
    ] in rows
    assert ["Khung giờ bị lỡ/lỗi"] in rows
    assert ["2026-12-05T17:00+07:00", "chiều", "Lỗi", "Bản tin 905", "<no audio device>"] in rows


def test_plays_csv_follows_asrun_columns(log):
    rows = _read_csv(plays_csv(log.plays(limit=10_000)))
    assert rows[0] == [*PLAYS_CSV_HEADERS.values(), "Trạng thái"] and len(rows[0]) == len(COLUMNS) + 1
    # Programs read the slug, people the words (the last column).
    status = rows[0].index("Mã trạng thái")
    assert all(STATUS_NAMES[r[status]] == r[-1] for r in rows[1:])
    assert rows[0][:5] == ["STT", "Mã khung giờ", "Khung giờ", "Giờ theo lịch", "Mã trạng thái"]
    tricky = [r for r in rows if r[COLUMNS.index("title")] == TRICKY_TITLE]
    assert len(tricky) == 1 and tricky[0][COLUMNS.index("window")] == "sáng"
    assert tricky[0][COLUMNS.index("status")] == "played"
    assert len(rows) == 1 + len(log.plays(limit=10_000))


def test_csv_neutralises_formulas():
    rows = _read_csv(plays_csv([{"id": 1, "title": '=HYPERLINK("http://x")', "underruns": -1}]))
    assert rows[1][COLUMNS.index("title")] == '\'=HYPERLINK("http://x")'
    assert rows[1][COLUMNS.index("underruns")] == "-1"  # numbers are left alone


def test_weekly_chart_svg_parses_and_escapes(log):
    report = _report(log, "month", 12)
    svg = weekly_chart_svg(report)
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 360 220"
    assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 5
    assert "Tháng 12/2026" in svg and "Chỉ tiêu" in svg

    hostile = report.model_copy(update={"label": '<script>alert("x")</script> & co'})
    svg = weekly_chart_svg(hostile)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = ET.fromstring(svg)
    assert root.find("{http://www.w3.org/2000/svg}title").text.startswith("Số lần phát mỗi tuần – <script>")

    empty = weekly_chart_svg(report.model_copy(update={"weeks": []}))
    ET.fromstring(empty)


def test_days_before_the_station_went_into_service_have_no_target():
    """A station installed on Thursday 10 December 2026 starts its December report that day: the weeks
    before count for nothing, the first week is a part week, and a row before that day is not counted."""
    settings = ReportSettings(plays_per_week_target=12)
    rows = [
        {"id": 1, "scheduled_at": "2026-12-02T06:00+07:00", "status": "missed", "window": "sáng"},
        {"id": 2, "scheduled_at": "2026-12-10T17:00+07:00", "status": "played", "window": "chiều"},
        {"id": 3, "scheduled_at": "2026-12-11T06:00+07:00", "status": "missed", "window": "sáng"},
    ]
    report = build_report(
        "month",
        2026,
        12,
        plays=rows,
        received=[],
        settings=settings,
        tz=TZ,
        in_service_since=dt.date(2026, 12, 10),
    )
    assert report.in_service_since == dt.date(2026, 12, 10)
    assert report.weeks[0].first_day == dt.date(2026, 12, 10) and report.weeks[0].days == 4
    assert report.weeks[0].target == 7  # 12 × 4 / 7, half up
    assert report.target_total == 7 + 12 + 12 + 7  # then the weeks of the 14th, 21st and 28th–31st (4 days)
    assert [p.scheduled_at[:10] for p in report.problems] == ["2026-12-11"]
    assert report.played_total == 1
    # A month before the station existed has no target at all; a month after it began is whole.
    before = build_report(
        "month",
        2026,
        11,
        plays=[],
        received=[],
        settings=settings,
        tz=TZ,
        in_service_since=dt.date(2026, 12, 10),
    )
    assert before.target_total == 0 and before.weeks == []
    after = build_report(
        "month",
        2027,
        1,
        plays=[],
        received=[],
        settings=settings,
        tz=TZ,
        in_service_since=dt.date(2026, 12, 10),
    )
    assert after.in_service_since is None and after.weeks[0].first_day == dt.date(2027, 1, 1)
