"""Starlette's CORS middleware, answering a refused preflight in the error envelope.

Starlette answers a preflight from an origin (or with a method or header) it
does not allow with ``400 text/plain`` "Disallowed CORS origin"; every other
answer of the API is JSON in the contract's envelope, so here it is too:
``403 forbidden`` with the same reason. Allowed preflights are unchanged.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from adapters.wire import error_json
from entrypoints.http.responses import json_response


class EnvelopeCORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        reason = bytes(response.body).decode(errors="replace")
        return json_response(
            error_json("forbidden", f"CORS preflight refused: {reason}"), status=403
        )
