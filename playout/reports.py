"""Periodic reports for the ward: what aired per week, per topic, and what each department sent in.

The ward plans ask departments to report monthly or quarterly (the culture office compiles), a ward
counts **12 broadcasts a week**, and each office owes **1 item a month** (mass organisations **1 a
quarter**).  This module turns as-run rows (``AsRunLog.plays``) and received content items into a
``Report``, and renders it as CSV for Excel (UTF-8 with BOM, Vietnamese headers) and as a small SVG
chart for a phone::

    start, end = period_bounds("quarter", 2026, 4, tz)
    rows = log.plays(since=start, until=end, limit=100_000)
    report = build_report("quarter", 2026, 4, plays=rows, received=items, settings=settings, tz=tz)
    body = report_csv(report)

Settings live under ``reports:`` in ``schedule.yaml`` (``ReportSettings``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterable
from typing import Any, Literal
from xml.sax.saxutils import escape as _xml_escape

from pydantic import BaseModel

from playout.asrun import COLUMNS, STATUSES
from playout.intake import TOPICS
from playout.report_settings import (  # noqa: F401 - re-exported: the settings used to live here
    OTHER_DEPARTMENT,
    DepartmentQuota,
    ReportSettings,
)
from playout.report_settings import department_key as _department_key

logger = logging.getLogger(__name__)

PeriodKind = Literal["month", "quarter"]

#: Vietnamese names of as-run statuses, in the order reports list them (outcomes first).
STATUS_NAMES: dict[str, str] = {
    "played": "Đã phát",
    "missed": "Bị lỡ",
    "failed": "Lỗi",
    "interrupted": "Bị ngắt",
    "skipped": "Bỏ qua",
    "playing": "Đang phát",
}
assert set(STATUS_NAMES) == set(STATUSES)  # a new status must get a Vietnamese name here

#: Vietnamese headers of the as-run CSV export, one per ``asrun.COLUMNS`` entry, in the same order.
PLAYS_CSV_HEADERS: dict[str, str] = {
    "id": "STT",
    "slot_key": "Mã khung giờ",
    "window": "Khung giờ",
    "scheduled_at": "Giờ theo lịch",
    "status": "Mã trạng thái",
    "bulletin_id": "Mã bản tin",
    "title": "Tiêu đề",
    "topic": "Chủ đề",
    "relay_on_at": "Bật loa lúc",
    "audio_start_at": "Bắt đầu phát lúc",
    "audio_end_at": "Kết thúc phát lúc",
    "relay_off_at": "Tắt loa lúc",
    "underruns": "Số lần gián đoạn âm thanh",
    "engine": "Bộ đọc",
    "voice": "Giọng đọc",
    "audio_sha256": "Mã kiểm tra âm thanh (SHA-256)",
    "error": "Lỗi",
    "created_at": "Tạo lúc",
    "updated_at": "Cập nhật lúc",
}
assert tuple(PLAYS_CSV_HEADERS) == COLUMNS  # the export must follow the log's columns exactly
#: Columns the export adds after the log's own: what a person reads (the status in words).
PLAYS_CSV_EXTRA_HEADERS = ("Trạng thái",)

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
_BOM = "\ufeff"


# ---------------------------------------------------------------------------------------------------
# Settings


# ---------------------------------------------------------------------------------------------------
# The report


class WeekLine(BaseModel):
    """One ISO week (Monday start), clipped to the period."""

    iso_year: int
    iso_week: int
    first_day: dt.date
    last_day: dt.date  # inclusive
    days: int
    played: int
    target: int
    met: bool


class TopicLine(BaseModel):
    slug: str | None  # None: plays without a known topic
    name: str
    played: int


class ReceivedItem(BaseModel):
    department: str | None
    received_at: dt.datetime
    title: str
    topic: str | None = None


class DepartmentLine(BaseModel):
    """Items one configured department sent against its quota for the period."""

    name: str
    per: Literal["month", "quarter"]
    received: int
    target: int
    met: bool
    # Where the items were counted from: the period start, or for a quarterly quota in a month report the
    # quarter's start (the item is owed once in the quarter, not in each month).
    counted_from: dt.datetime
    items: list[ReceivedItem]


class ProblemSlot(BaseModel):
    """A slot that did not air: missed or failed."""

    scheduled_at: str
    window: str
    status: str
    title: str | None
    error: str | None


class Report(BaseModel):
    kind: PeriodKind
    year: int
    number: int
    label: str  # "Tháng 12/2026", "Quý IV/2026"
    start: dt.datetime
    end: dt.datetime  # exclusive
    plays_per_week_target: int
    weeks: list[WeekLine]
    played_total: int
    target_total: int
    status_totals: dict[str, int]
    topics: list[TopicLine]
    departments: list[DepartmentLine]
    other_items: list[ReceivedItem]
    problems: list[ProblemSlot]
    #: The day the station went into service, when it falls in or before the period (None: unknown).
    in_service_since: dt.date | None = None


def period_label(kind: PeriodKind, year: int, number: int) -> str:
    """The Vietnamese name of a period: ``Tháng 12/2026`` or ``Quý IV/2026``."""
    _check_period(kind, number)
    return f"Tháng {number}/{year}" if kind == "month" else f"Quý {_ROMAN[number]}/{year}"


def period_bounds(kind: PeriodKind, year: int, number: int, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight at the period's first day and at the next period's first day (end exclusive)."""
    _check_period(kind, number)
    first_month = number if kind == "month" else 3 * (number - 1) + 1
    months = 1 if kind == "month" else 3
    end_year, end_month = divmod(first_month - 1 + months, 12)
    start = dt.datetime(year, first_month, 1, tzinfo=tz)
    end = dt.datetime(year + end_year, end_month + 1, 1, tzinfo=tz)
    return start, end


def build_report(
    kind: PeriodKind,
    year: int,
    number: int,
    *,
    plays: Iterable[dict[str, Any]],
    received: Iterable[dict[str, Any]],
    settings: ReportSettings,
    tz: dt.tzinfo,
    in_service_since: dt.date | None = None,
) -> Report:
    """Compile one month's or quarter's report.

    ``plays`` are as-run rows (``AsRunLog.plays``); rows outside the period are ignored, so the caller may
    pass more.  ``received`` are content items ``{"department", "received_at", "title", "topic"}``; pass
    them from the quarter's start, since a quarterly quota in a month report is counted quarter-to-date.
    ``in_service_since``: the day the station started airing; the days before it have no target (a station
    installed on the 20th is not short of eleven weeks of plays).
    """
    start, end = period_bounds(kind, year, number, tz)
    first_day, end_day = start.date(), end.date()
    if in_service_since is not None and first_day < in_service_since:
        first_day = min(in_service_since, end_day)

    # Weeks: Monday-start ISO weeks overlapping the period, clipped to it.
    week_starts: list[dt.date] = []
    monday = first_day - dt.timedelta(days=first_day.weekday())
    while monday < end_day and first_day < end_day:
        week_starts.append(monday)
        monday += dt.timedelta(days=7)
    played_per_week = [0] * len(week_starts)

    status_totals = dict.fromkeys(STATUS_NAMES, 0)
    topic_counts = dict.fromkeys(TOPICS, 0)
    untopical = 0
    problems: list[ProblemSlot] = []
    for row in plays:
        at = _parse_time(row.get("scheduled_at"), tz)
        if at is None:
            logger.warning("report: as-run row %s has no readable scheduled_at, skipped", row.get("id"))
            continue
        if not start <= at < end or at.astimezone(tz).date() < first_day:
            continue  # outside the period, or before the station was in service
        status = row.get("status") or ""
        status_totals[status] = status_totals.get(status, 0) + 1
        if status == "played":
            # The listener heard it on the local calendar day, whatever offset it was stored with.
            index = (at.astimezone(tz).date() - week_starts[0]).days // 7
            played_per_week[index] += 1
            topic = row.get("topic")
            if topic in topic_counts:
                topic_counts[topic] += 1
            else:
                untopical += 1
        elif status in ("missed", "failed"):
            problems.append(
                ProblemSlot(
                    scheduled_at=at.astimezone(tz).isoformat(timespec="minutes"),
                    window=str(row.get("window") or ""),
                    status=status,
                    title=row.get("title"),
                    error=row.get("error"),
                )
            )
    problems.sort(key=lambda p: p.scheduled_at)

    target = settings.plays_per_week_target
    weeks: list[WeekLine] = []
    for monday, played in zip(week_starts, played_per_week, strict=True):
        first = max(monday, first_day)
        last = min(monday + dt.timedelta(days=6), end_day - dt.timedelta(days=1))
        days = (last - first).days + 1
        # Half-up, not banker's rounding: 12 × 3.5 / 7 must not drop to 6 one week and 8 the next.
        week_target = int(target * days / 7 + 0.5)
        iso = monday.isocalendar()
        weeks.append(
            WeekLine(
                iso_year=iso.year,
                iso_week=iso.week,
                first_day=first,
                last_day=last,
                days=days,
                played=played,
                target=week_target,
                met=played >= week_target,
            )
        )

    topics = [TopicLine(slug=slug, name=TOPICS[slug], played=n) for slug, n in topic_counts.items()]
    if untopical:
        topics.append(TopicLine(slug=None, name="Khác / không rõ chủ đề", played=untopical))

    departments, other_items = _department_lines(kind, year, number, received, settings, tz, start, end)

    report = Report(
        kind=kind,
        year=year,
        number=number,
        label=period_label(kind, year, number),
        start=start,
        end=end,
        plays_per_week_target=target,
        weeks=weeks,
        played_total=sum(played_per_week),
        target_total=sum(w.target for w in weeks),
        status_totals=status_totals,
        topics=topics,
        departments=departments,
        other_items=other_items,
        problems=problems,
        in_service_since=in_service_since if first_day > start.date() else None,
    )
    logger.info(
        "report %s: %d/%d played, %d missed/failed, %d items received",
        report.label,
        report.played_total,
        report.target_total,
        len(problems),
        sum(d.received for d in departments) + len(other_items),
    )
    return report


def _department_lines(
    kind: PeriodKind,
    year: int,
    number: int,
    received: Iterable[dict[str, Any]],
    settings: ReportSettings,
    tz: dt.tzinfo,
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[list[DepartmentLine], list[ReceivedItem]]:
    quarter_start = start
    if kind == "month":
        quarter_start, _ = period_bounds("quarter", year, (number - 1) // 3 + 1, tz)
    by_key = {_department_key(q.name): q for q in settings.departments}
    items: dict[str, list[ReceivedItem]] = {q.name: [] for q in settings.departments}
    other: list[ReceivedItem] = []
    for raw in received:
        at = _parse_time(raw.get("received_at"), tz)
        if at is None or not quarter_start <= at < end:
            continue
        department = raw.get("department") or None
        item = ReceivedItem(
            department=department,
            received_at=at,
            title=str(raw.get("title") or ""),
            topic=raw.get("topic"),
        )
        quota = by_key.get(_department_key(department)) if department else None
        if quota is None:
            if at >= start:
                other.append(item)
        elif at >= _counted_from(quota, start, quarter_start):
            items[quota.name].append(item)
    other.sort(key=lambda i: i.received_at)

    months = 1 if kind == "month" else 3
    lines = []
    for quota in settings.departments:
        got = sorted(items[quota.name], key=lambda i: i.received_at)
        # A monthly quota scales with the months in the period; a quarterly one is owed once per quarter,
        # and a month report shows progress on it quarter-to-date.
        target = quota.items * months if quota.per == "month" else quota.items
        lines.append(
            DepartmentLine(
                name=quota.name,
                per=quota.per,
                received=len(got),
                target=target,
                met=len(got) >= target,
                counted_from=_counted_from(quota, start, quarter_start),
                items=got,
            )
        )
    return lines, other


def _counted_from(quota: DepartmentQuota, start: dt.datetime, quarter_start: dt.datetime) -> dt.datetime:
    return quarter_start if quota.per == "quarter" else start


# ---------------------------------------------------------------------------------------------------
# CSV


def report_csv(report: Report) -> bytes:
    """The report as one CSV file with Vietnamese section headers (UTF-8 with BOM, CRLF, for Excel)."""
    out: list[list[Any]] = [
        ["Báo cáo phát thanh “Học số mỗi ngày 3 phút”", report.label],
        ["Từ ngày", _vn_date(report.start.date())],
        ["Đến ngày", _vn_date(report.end.date() - dt.timedelta(days=1))],
        ["Chỉ tiêu mỗi tuần", report.plays_per_week_target],
        *([["Trạm hoạt động từ", _vn_date(report.in_service_since)]] if report.in_service_since else []),
        [],
        ["Số lần phát theo tuần"],
        ["Tuần", "Từ ngày", "Đến ngày", "Số ngày", "Số lần phát", "Chỉ tiêu", "Đạt"],
    ]
    for w in report.weeks:
        out.append(
            [
                f"{w.iso_week}/{w.iso_year}",
                _vn_date(w.first_day),
                _vn_date(w.last_day),
                w.days,
                w.played,
                w.target,
                _yes_no(w.met),
            ]
        )
    out.append(
        [
            "Tổng cộng",
            "",
            "",
            sum(w.days for w in report.weeks),
            report.played_total,
            report.target_total,
            _yes_no(report.played_total >= report.target_total),
        ]
    )
    out += [[], ["Theo trạng thái"], ["Trạng thái", "Số khung giờ"]]
    for status, n in report.status_totals.items():
        if status == "playing" and not n:
            continue  # only worth a line while something is on air
        out.append([STATUS_NAMES.get(status, status), n])

    out += [[], ["Theo chủ đề"], ["Chủ đề", "Mã chủ đề", "Số lần phát"]]
    for t in report.topics:
        out.append([t.name, t.slug or "", t.played])

    out += [[], ["Tin bài nhận từ các đơn vị"], ["Đơn vị", "Chỉ tiêu theo", "Số tin nhận", "Chỉ tiêu", "Đạt"]]
    for d in report.departments:
        out.append([d.name, "tháng" if d.per == "month" else "quý", d.received, d.target, _yes_no(d.met)])
    if report.other_items:
        out.append([OTHER_DEPARTMENT, "", len(report.other_items), "", ""])

    out += [[], ["Danh sách tin bài"], ["Đơn vị", "Ngày nhận", "Tiêu đề", "Chủ đề"]]
    listed = [(d.name, i) for d in report.departments for i in d.items]
    listed += [
        (f"{OTHER_DEPARTMENT}: {i.department}" if i.department else OTHER_DEPARTMENT, i)
        for i in report.other_items
    ]
    for name, item in listed:
        out.append(
            [
                name,
                _vn_date(item.received_at.date()),
                item.title,
                TOPICS.get(item.topic or "", item.topic or ""),
            ]
        )

    out += [[], ["Khung giờ bị lỡ/lỗi"], ["Giờ theo lịch", "Khung giờ", "Trạng thái", "Tiêu đề", "Lỗi"]]
    for p in report.problems:
        out.append(
            [p.scheduled_at, p.window, STATUS_NAMES.get(p.status, p.status), p.title or "", p.error or ""]
        )
    return _csv_bytes(out)


def plays_csv(rows: Iterable[dict[str, Any]]) -> bytes:
    """The as-run log as CSV (``GET /api/plays.csv``): Vietnamese headers, columns in ``asrun.COLUMNS``
    order, values as stored (ISO times with the station's offset, status slugs) so the file can be re-read
    by a program too, then the status in Vietnamese words for the person who opens it in Excel."""
    out: list[list[Any]] = [[*PLAYS_CSV_HEADERS.values(), *PLAYS_CSV_EXTRA_HEADERS]]
    for row in rows:
        status = row.get("status")
        words = STATUS_NAMES.get(status, status or "")
        out.append(["" if row.get(c) is None else row.get(c) for c in COLUMNS] + [words])
    return _csv_bytes(out)


def _csv_bytes(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO(newline="")
    # The BOM makes Excel read UTF-8 instead of the Windows code page; CRLF is what RFC 4180 and Excel expect.
    buf.write(_BOM)
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


def _cell(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    # Titles and errors come from outside: a leading = + - @ would make Excel run them as formulas.
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _yes_no(flag: bool) -> str:
    return "Có" if flag else "Không"


def _vn_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


# ---------------------------------------------------------------------------------------------------
# SVG


def weekly_chart_svg(report: Report) -> str:
    """A small inline SVG bar chart of plays per week, the (prorated) target as a stepped line.

    No scripts, no external fonts or styles: the API can embed it as-is, and the viewBox lets it shrink
    to a phone's width.
    """
    width, height = 360, 220
    left, right, top, bottom = 30, 8, 34, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    weeks = report.weeks or []
    peak = max([w.played for w in weeks] + [w.target for w in weeks] + [1])
    step = plot_w / max(len(weeks), 1)
    bar_w = max(step * 0.6, 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / peak

    title = f"Số lần phát mỗi tuần – {report.label}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%"'
        f' style="max-width:{width}px" role="img" aria-label="{_attr(title)}" font-family="sans-serif">',
        f"<title>{_text(title)}</title>",
        f'<text x="{width / 2:.0f}" y="16" font-size="13" text-anchor="middle">{_text(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left - 4}" y="{y(peak) + 4:.1f}" font-size="10" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h + 4}" font-size="10" text-anchor="end">0</text>',
    ]
    target_points: list[str] = []
    for i, w in enumerate(weeks):
        x = left + i * step + (step - bar_w) / 2
        colour = "#2e7d32" if w.met else "#ef6c00"
        bar_h = plot_h * w.played / peak
        label = f"Tuần {w.iso_week}: {w.played}/{w.target} lần"
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}"'
            f' fill="{colour}"><title>{_text(label)}</title></rect>'
        )
        centre = left + i * step + step / 2
        parts.append(
            f'<text x="{centre:.1f}" y="{top + plot_h - bar_h - 3:.1f}" font-size="9"'
            f' text-anchor="middle">{w.played}</text>'
        )
        parts.append(
            f'<text x="{centre:.1f}" y="{top + plot_h + 12}" font-size="9" text-anchor="middle">'
            f"{w.iso_week}</text>"
        )
        # Partial weeks have smaller targets, so the target is a step per week rather than one flat line.
        target_points += [
            f"{left + i * step:.1f},{y(w.target):.1f}",
            f"{left + (i + 1) * step:.1f},{y(w.target):.1f}",
        ]
    if target_points:
        parts.append(
            f'<polyline points="{" ".join(target_points)}" fill="none" stroke="#c62828"'
            ' stroke-width="2" stroke-dasharray="5,3"/>'
        )
    parts += [
        f'<text x="{left}" y="{height - 6}" font-size="10">{_text("Tuần (ISO)")}</text>',
        f'<line x1="{width - 120}" y1="{height - 9}" x2="{width - 100}" y2="{height - 9}" stroke="#c62828"'
        ' stroke-width="2" stroke-dasharray="5,3"/>',
        f'<text x="{width - 96}" y="{height - 6}" font-size="10">'
        f"{_text(f'Chỉ tiêu ({report.plays_per_week_target}/tuần)')}</text>",
        "</svg>",
    ]
    return "\n".join(parts)


def _text(value: str) -> str:
    return _xml_escape(value)


def _attr(value: str) -> str:
    return _xml_escape(value, {'"': "&quot;"})


# ---------------------------------------------------------------------------------------------------
# Helpers


def _check_period(kind: str, number: int) -> None:
    if kind == "month":
        if not 1 <= number <= 12:
            raise ValueError(f"month must be 1–12, not {number}")
    elif kind == "quarter":
        if not 1 <= number <= 4:
            raise ValueError(f"quarter must be 1–4, not {number}")
    else:
        raise ValueError(f"period kind must be 'month' or 'quarter', not {kind!r}")


def _parse_time(value: Any, tz: dt.tzinfo) -> dt.datetime | None:
    """An aware datetime from an as-run ISO string, a datetime or a date; naive values are local time."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=tz)
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)
