"""JSON responses encoded with orjson (fast, and strict about what it encodes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    return JsonResponse(content, status_code=status, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)
