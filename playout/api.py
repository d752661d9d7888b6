"""The station's HTTP API, served by the daemon (uvicorn) on ``api.host``/``api.port``.

This is the minimal, read-only part the technician needs from a phone: what played and whether the
station is healthy.  Times are ISO 8601 with the station's offset.  OpenAPI at ``/docs``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import FastAPI, HTTPException, Query

from playout import __version__

if TYPE_CHECKING:
    from playout.daemon import Station

Status = Literal["playing", "played", "failed", "interrupted", "skipped", "missed"]


def create_app(station: Station) -> FastAPI:
    app = FastAPI(
        title="Loa phường thông minh",
        version=__version__,
        description="Trạm phát thanh phường: nhật ký phát sóng và tình trạng trạm",
    )

    @app.get("/api/health", summary="Tình trạng trạm")
    def health() -> dict:
        return station.health()

    @app.get("/api/plays", summary="Nhật ký phát sóng (mới nhất trước)")
    def plays(
        since: Annotated[dt.datetime | None, Query(description="từ thời điểm (ISO 8601)")] = None,
        until: Annotated[dt.datetime | None, Query(description="đến trước thời điểm (ISO 8601)")] = None,
        status: Annotated[list[Status] | None, Query(description="lọc theo trạng thái")] = None,
        topic: Annotated[str | None, Query(max_length=50)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[dict]:
        for t in (since, until):
            if t is not None and t.tzinfo is None:
                raise HTTPException(422, detail="Thời điểm phải có múi giờ, ví dụ 2026-11-21T06:00:00+07:00")
        return station.log.plays(
            since=since, until=until, status=status, topic=topic, limit=limit, offset=offset
        )

    return app
