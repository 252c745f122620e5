"""Health, readiness, metrics and the public keys that verify deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hookline import metrics
from hookline.api.auth import require
from hookline.api.common import AUTHED, problems, services_of
from hookline.api.problems import problem
from hookline.api.schemas import JWKS
from hookline.signatures.keys import jwks
from hookline.store.deliveries import queue_depth

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
async def readyz(request: Request) -> Any:
    """The database answers."""
    try:
        await services_of(request).db.ping()
    except Exception as exc:  # any failure to reach the database means "not ready"
        return problem(
            request, status=503, title="Not ready", slug="not-ready",
            detail=f"database unreachable: {type(exc).__name__}",
        )  # fmt: skip
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    """Prometheus text format."""
    async with services_of(request).db.read() as conn:
        depth = await queue_depth(conn)
    for state, count in depth.items():
        metrics.QUEUE_DEPTH.labels(state).set(count)
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get(
    "/auth/verify_keys",
    tags=["webhooks"],
    response_model=JWKS,
    responses=problems(*AUTHED),
    dependencies=[Depends(require("webhooks:read"))],
)
async def verify_keys(request: Request) -> Any:
    """The JWK Set of the public keys that sign deliveries (current and still valid)."""
    return jwks(services_of(request).published_keys)
