"""Operations: liveness, readiness, metrics, and the home page (the bundled web chat)."""

from __future__ import annotations

import asyncio
import logging

from starlette.responses import HTMLResponse, Response

from chatcore.errors import Unavailable
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.pages import INDEX_HEADERS, index_html
from entrypoints.http.responses import json_response
from entrypoints.http.schemas import HealthOut
from entrypoints.metrics import METRICS_CONTENT_TYPE

api = Api()
TAG = "operations"
READINESS_TIMEOUT_SECONDS = 3.0

log = logging.getLogger("chatcore.http")


@api.route(
    "GET",
    "/healthz",
    summary="Liveness: the process is up",
    tag=TAG,
    auth=False,
    responses={200: HealthOut},
)
async def healthz(call: Call) -> Response:
    return json_response({"status": "ok"})


@api.route(
    "GET",
    "/readyz",
    summary="Readiness: storage answers (503 unavailable otherwise)",
    tag=TAG,
    auth=False,
    responses={200: HealthOut},
    errors=(503,),
)
async def readyz(call: Call) -> Response:
    if call.runtime.chat_instance is None:
        raise Unavailable("the server is starting or stopping")
    probe = call.runtime.readiness_probe
    if probe is not None:
        try:
            async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
                await probe()
        except Unavailable:
            raise
        except Exception as exc:
            log.warning("readiness probe failed: %r", exc)
            raise Unavailable("storage is not reachable") from exc
    return json_response({"status": "ok"})


@api.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics",
    tag=TAG,
    auth=False,
    responses={200: None},
    media_type=METRICS_CONTENT_TYPE,
)
async def metrics(call: Call) -> Response:
    return Response(call.runtime.metrics.render(), media_type=METRICS_CONTENT_TYPE)


@api.route(
    "GET",
    "/",
    summary="The web chat page",
    tag=TAG,
    auth=False,
    responses={200: None},
    media_type="text/html",
)
async def index(call: Call) -> Response:
    return HTMLResponse(index_html(), headers=INDEX_HEADERS)
