"""The station's HTTP front: the JSON API, the web page for people and the Prometheus metrics.

    create_app(service) ──► FastAPI app, served by the daemon (uvicorn, playout.limits) on api.host:api.port
        api.py       /api/… (JSON, schema at /openapi.json) and /metrics; ``playout_error`` answers refusals
        docs.py      /docs: the API reference as a plain page, rendered here (works without Internet)
        web.py       /, /ban-tin, /nhat-ky, /bao-cao, /dang-nhap (Vietnamese HTML, templates/web/)
        metrics.py   the Prometheus collector behind /metrics

Everything here reaches the station through ``playout.service.StationService`` and nothing else: no module
of this package imports the daemon, the library or the as-run log (tests/playout/test_service.py checks
it), so the web front can be changed, or moved to its own process, without touching what keeps the
station on air.  Shared leaf modules (errors, auth, limits, qr, reports, intake's constants) are fine.

    from playout.http import create_app
    from playout.service import StationService

    app = create_app(StationService(station))
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from playout import __version__
from playout.errors import PlayoutError
from playout.http import api, docs, web
from playout.limits import BodyLimit
from playout.service import StationService

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(service: StationService) -> FastAPI:
    """The whole HTTP front for one station, ready for uvicorn (``playout.limits.make_server``)."""
    app = FastAPI(
        title="Loa phường thông minh",
        version=__version__,
        description="Trạm phát thanh phường: bản tin, mã QR, nhật ký phát sóng, báo cáo, tình trạng trạm",
        responses=api.errors(401, 403),
        # /docs is the station's own page (playout.http.docs): FastAPI's loads Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    # playout.auth's dependencies find the authenticator here; the daemon reloads accounts through it too.
    app.state.auth = service.authenticator
    app.add_exception_handler(PlayoutError, api.playout_error)
    # Every body is capped before anything reads it; uploads get the script's size and a credentials gate.
    app.add_middleware(BodyLimit, rules=api.upload_rules())
    api.install(app, service)
    web.install(app, service)
    docs.install(app, web.environment())
    return app
