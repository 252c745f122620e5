"""Small helpers the routers share."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hookline.api.problems import PROBLEM_MEDIA_TYPE
from hookline.api.schemas import Problem
from hookline.services import Services

_DESCRIPTIONS = {
    400: "Invalid request (the problem names the field)",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks the scope",
    404: "Not found (or another tenant's)",
    409: "Conflict",
    503: "Not ready",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problem documents a route can answer with."""
    return {
        code: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(code, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for code in codes
    }


AUTHED = (400, 401, 403)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
