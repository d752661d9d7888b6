"""Rotation and the as-run log, in process (real SQLite, real scripts on disk, real renders)."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from playout.asrun import AsRunLog, Slot
from playout.library import Library
from tests.station import write_script
from tts.worker import RenderWorker

TZ = dt.timezone(dt.timedelta(hours=7))


@pytest.fixture
def library(make_config, tmp_path):
    config = make_config(bulletin={"length_s": 12, "lead_in": "", "outro": "Hết."})
    return Library(config, RenderWorker(memory_mb=768, timeout_s=120))


def approve(tmp_path, name, text, age_s, **meta):
    path = write_script(tmp_path / "bulletins" / "approved", name, text, **meta)
    t = dt.datetime.now().timestamp() - age_s
    os.utime(path, (t, t))
    return path


def test_rotation_priority_then_least_aired_then_oldest(library, tmp_path):
    approve(tmp_path, "a.txt", "Bản tin A. Xin cảm ơn.", 300)
    approve(tmp_path, "b.txt", "Bản tin B. Xin cảm ơn.", 200)
    approve(tmp_path, "c.md", "Bản tin C. Xin cảm ơn.", 100, priority="priority")
    approve(tmp_path, "d.md", "Bản tin D, hết hạn. Xin cảm ơn.", 400, air_until="2020-01-01")
    library.scan()
    assert library.render_pending() == 4
    by_name = {b.path.name: b for b in library.ready()}
    today = dt.date.today()
    assert library.pick(today, {}).path.name == "c.md"  # priority goes first
    counts = {by_name["c.md"].id: 5, by_name["a.txt"].id: 1}
    assert library.pick(today, counts).path.name == "c.md"  # however often it aired
    c = {by_name["c.md"].id}  # a window's second play: not the same bulletin again
    assert library.pick(today, counts, exclude=c).path.name == "b.txt"  # then the least aired
    counts[by_name["b.txt"].id] = 1
    assert library.pick(today, counts, exclude=c).path.name == "a.txt"  # equal counts: oldest approval
    assert "d.md" not in {b.path.name for b in library.ready(today)}  # out of its air dates


def test_refused_and_changed_scripts(library, tmp_path):
    approve(tmp_path, "bad.txt", "", 10)
    good = approve(tmp_path, "good.txt", "Bản tin tốt. Xin cảm ơn.", 10)
    library.scan()
    assert "SCRIPT_EMPTY" in library.refused()["bad.txt"]
    first = library.bulletins()[0].id
    good.write_text("Bản tin đã sửa. Xin cảm ơn.", "utf-8")
    os.utime(good, None)
    assert [b.id for b in library.scan()] != [first]  # edited content is a new bulletin
    good.unlink()
    library.scan()
    assert library.bulletins() == []


def test_as_run_log_claims_each_slot_once_and_recovers(tmp_path):
    log = AsRunLog(tmp_path / "db.sqlite", TZ)
    slot = Slot("sáng", dt.datetime(2026, 11, 21, 6, 0, tzinfo=TZ))
    row = log.start(slot)
    assert row is not None and log.start(slot) is None  # the same slot cannot be claimed twice
    log.close()
    again = AsRunLog(tmp_path / "db.sqlite", TZ)  # a restart after kill -9
    assert again.recover() == 1
    (only,) = again.plays()
    assert only["status"] == "interrupted" and only["slot_key"] == "2026-11-21/sáng/0"
    assert again.record(Slot("chiều", slot.scheduled_at), "missed", error="x")
    assert [r["status"] for r in again.plays(status=["missed"])] == ["missed"]
    with pytest.raises(ValueError):
        again.update(row, bogus=1)
