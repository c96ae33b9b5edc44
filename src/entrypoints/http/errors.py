"""The one place where failures become HTTP responses in the error envelope.

``ChatError`` subclasses map to their status through
:mod:`entrypoints.error_codes`; Starlette's routing errors (unknown path,
wrong method) get the envelope too; anything else is a 500 ``internal_error``
that carries only the request id (the details go to the log).
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from adapters.wire import error_json
from chatcore.errors import ChatError, RateLimited, Unauthorized
from chatcore.services.throttle import last_quota
from entrypoints.error_codes import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    error_headers,
    rate_limit_headers,
    status_for,
)
from entrypoints.http.responses import JsonResponse, json_response

log = logging.getLogger("chatcore.http")

# Where the request middleware keeps the request id in the ASGI scope.
REQUEST_ID_SCOPE_KEY = "chatcore.request_id"


def chat_error_response(error: ChatError) -> JsonResponse:
    headers = error_headers(error)
    quota = last_quota()
    if quota is not None and not isinstance(error, RateLimited):
        # A limited request that failed for another reason still counted.
        headers.update(rate_limit_headers(quota))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return json_response(
        error_json(error.code, error.message, error.details),
        status=status_for(error.code),
        headers=headers,
    )


def internal_error_response(request_id: str) -> JsonResponse:
    return json_response(
        error_json(INTERNAL_ERROR, "internal server error", {"requestId": request_id}),
        status=status_for(INTERNAL_ERROR),
    )


async def handle_chat_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ChatError)
    if exc.code == INTERNAL_ERROR:
        # A domain or adapter error that means "our fault" (e.g. a storage operation
        # refused for a reason other than an outage): logged in full, answered like
        # any unexpected error.
        request_id = str(request.scope.get(REQUEST_ID_SCOPE_KEY, "-"))
        log.error("internal error request_id=%s", request_id, exc_info=exc)
        return internal_error_response(request_id)
    if exc.code == "unavailable":
        log.warning("unavailable: %s (cause: %r)", exc.message, exc.__cause__)
    return chat_error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette raises these for unmatched routes (404) and methods (405)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return json_response(
            error_json(METHOD_NOT_ALLOWED, "method not allowed"),
            status=405,
            headers=exc.headers,
        )
    if exc.status_code == 404:
        return json_response(error_json(NOT_FOUND, "no such route"), status=404)
    # Not raised by our routes; keep the status, speak the envelope.
    code = INTERNAL_ERROR if exc.status_code >= 500 else "validation_error"
    return json_response(error_json(code, str(exc.detail)), status=exc.status_code)


EXCEPTION_HANDLERS = {ChatError: handle_chat_error, HTTPException: handle_http_exception}
