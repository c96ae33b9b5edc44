"""The one map from error codes of the public contract to HTTP statuses.

The HTTP error handler and the Socket.IO acks both use it, so a domain error
means the same thing on every edge.
"""

from __future__ import annotations

import math
from typing import Final

from chatcore.errors import ChatError, RateLimited
from chatcore.rate_limits import Quota

INTERNAL_ERROR: Final = "internal_error"
# Routing-level codes the domain never raises (unknown path, wrong method).
NOT_FOUND: Final = "not_found"
METHOD_NOT_ALLOWED: Final = "method_not_allowed"

STATUS_BY_CODE: Final[dict[str, int]] = {
    "validation_error": 422,
    "unauthorized": 401,
    "forbidden": 403,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    "conflict": 409,
    "payload_too_large": 413,
    "rate_limited": 429,
    INTERNAL_ERROR: 500,
    "unavailable": 503,
}


def status_for(code: str) -> int:
    """The HTTP status of an error code (500 for a code this map doesn't know)."""
    return STATUS_BY_CODE.get(code, 500)


def error_headers(error: ChatError) -> dict[str, str]:
    """Extra response headers an error calls for (``Retry-After`` and ``RateLimit-*``
    on rate_limited)."""
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
        if error.quota is not None:
            headers.update(rate_limit_headers(error.quota))
        return headers
    return {}


def rate_limit_headers(quota: Quota) -> dict[str, str]:
    """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (whole seconds until the
    limit is full again) of a limiter's decision."""
    return {
        "RateLimit-Limit": str(quota.limit),
        "RateLimit-Remaining": str(quota.remaining),
        "RateLimit-Reset": str(math.ceil(quota.reset_after)),
    }
