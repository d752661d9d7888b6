"""Kept for old imports: the HTTP front lives in ``playout.http``, behind ``playout.service``.

``create_app`` here takes a ``StationService`` or, as it always has, a station (which it wraps), so
``create_app(station)`` in tests and scripts keeps working.  New code: ``playout.http.create_app(service)``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from playout.http import create_app as _create_app
from playout.service import StationParts, StationService

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(target: StationService | StationParts) -> FastAPI:
    service = target if isinstance(target, StationService) else StationService(target)
    return _create_app(service)
