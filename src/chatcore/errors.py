"""The one hierarchy of domain errors.

Every error carries a stable ``code`` (the strings of the public contract) so
that each edge (HTTP, Socket.IO) maps it to a status or an ack in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from chatcore.rate_limits import Quota


class ChatError(Exception):
    """Base of every error chatcore raises on purpose."""

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationFailed(ChatError):
    """Input broke a rule (types, lengths, ranges); nothing was changed."""

    code = "validation_error"


class Unauthorized(ChatError):
    """Missing, expired or invalid credentials."""

    code = "unauthorized"


class Forbidden(ChatError):
    """The caller can see the resource but may not do this to it."""

    code = "forbidden"


class NotFound(ChatError):
    """The resource does not exist, or the caller may not know that it does."""

    code = "not_found"


class Conflict(ChatError):
    """The request clashes with the current state (e.g. username taken)."""

    code = "conflict"


class PayloadTooLarge(ChatError):
    """The request body is over the accepted size."""

    code = "payload_too_large"


class RateLimited(ChatError):
    """Too many requests; ``retry_after`` seconds until the next is accepted.

    ``limit`` names the limit (``send``, ``login``, ...) and ``quota`` is the
    limiter's decision, for edges that publish it (HTTP ``RateLimit-*`` headers).
    """

    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        limit: str = "",
        quota: Quota | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.limit = limit
        self.quota = quota


class Unavailable(ChatError):
    """Storage or broker unreachable; the request changed nothing."""

    code = "unavailable"
