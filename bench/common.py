"""Helpers several benchmarks share: the output line, a year-sized as-run log, a bench API token."""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from pathlib import Path


def line(label: str, value: str, target: str = "", ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"  {label:<48} {value:>14}  {target}{verdict}")


def fill_asrun(db: Path, rows: int) -> None:
    """``rows`` aired plays, twice a day from 2024-01-01, in the station's own schema.

    Rows go in with one executemany: AsRunLog.record would commit each one and take minutes.
    """
    from playout.asrun import AsRunLog

    db.parent.mkdir(parents=True, exist_ok=True)
    AsRunLog(db).close()  # the schema, exactly as the daemon creates it
    tz = dt.timezone(dt.timedelta(hours=7))
    start = dt.datetime(2024, 1, 1, 6, 0, tzinfo=tz)
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO plays (slot_key, window, scheduled_at, status, bulletin_id, title, topic, underruns,"
            " created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                (
                    f"k{i}",
                    "sáng",
                    (t := (start + dt.timedelta(hours=12 * i)).isoformat()),
                    "played",
                    f"b{i % 40}",
                    f"Bản tin số {i % 40}",
                    "dich-vu-cong",
                    0,
                    t,
                    t,
                )
                for i in range(rows)
            ),
        )
    conn.close()


def bench_token() -> tuple[dict, dict]:
    """A fresh admin token for one benchmark run: (the ``auth`` section for schedule.yaml, request headers).

    Random per run rather than the tests' fixed token, so a bench config left behind opens nothing.
    """
    from playout.auth import hash_token

    token = secrets.token_urlsafe(32)
    section = {"tokens": [{"name": "bench", "token_hash": hash_token(token), "roles": ["admin"]}]}
    return section, {"Authorization": f"Bearer {token}"}
