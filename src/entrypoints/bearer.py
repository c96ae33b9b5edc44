"""The one parser of ``Authorization: Bearer <token>``, used by the HTTP and Socket.IO edges."""

from __future__ import annotations


def bearer_credentials(header: str | None) -> str | None:
    """The token of an ``Authorization`` header value, or None when it is absent or is
    not ``Bearer <token>`` (the scheme is case-insensitive, RFC 7235)."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials
