"""``/openapi.json`` and ``/docs``: Swagger UI served from a Python package, never a CDN."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Final

from starlette.responses import FileResponse, HTMLResponse, Response

from chatcore.errors import NotFound
from entrypoints.http.endpoints import Call, Endpoint
from entrypoints.http.openapi import Document
from entrypoints.http.pages import DOCS_HTML, DOCS_INIT_JS
from entrypoints.http.responses import json_response

TAG = "docs"
# The Swagger UI files the docs page loads; nothing else of the package is served.
_ASSETS: Final = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})


@functools.cache
def swagger_ui_dir() -> Path:
    """The static directory of the ``swagger-ui-py`` package (found without importing it)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def docs_endpoints(document: Callable[[], Document]) -> list[Endpoint]:
    """The endpoints of the docs; ``document`` builds the OpenAPI document (called once)."""
    cached = functools.cache(document)

    async def openapi_json(call: Call) -> Response:
        return json_response(cached())

    async def docs_page(call: Call) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def docs_asset(call: Call) -> Response:
        name = call.path("name")
        if name == "docs-init.js":
            return Response(DOCS_INIT_JS, media_type="text/javascript")
        if name not in _ASSETS:
            raise NotFound("no such file")
        return FileResponse(swagger_ui_dir() / name)

    return [
        Endpoint(
            method="GET",
            path="/openapi.json",
            handler=openapi_json,
            summary="This OpenAPI document",
            tag=TAG,
            auth=False,
            responses={200: None},
        ),
        Endpoint(
            method="GET",
            path="/docs",
            handler=docs_page,
            summary="Interactive API docs (Swagger UI)",
            tag=TAG,
            auth=False,
            responses={200: None},
            media_type="text/html",
        ),
        Endpoint(
            method="GET",
            path="/docs/static/{name}",
            handler=docs_asset,
            summary="Swagger UI assets",
            tag=TAG,
            auth=False,
            responses={200: None},
            include_in_schema=False,
        ),
    ]
