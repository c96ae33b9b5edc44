"""The client's address: the peer, or what a trusted proxy says in ``X-Forwarded-For``.

Only proxies listed in ``CHATCORE_TRUSTED_PROXIES`` are believed, so a client
cannot pick its own address (and so its own rate-limit budget) by sending the
header itself. Each proxy appends the address it saw on the right; walking the
list from the right, the first address that is not a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN: Final = "-"


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs (a bare address is a network of one); ValueError on a bad one."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in net for net in trusted)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The client of a request from ``peer`` carrying ``X-Forwarded-For`` header values."""
    if peer is None:
        return UNKNOWN
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if _ip(hop) is None:
            return peer  # not an address: nothing a trusted proxy would have written
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def asgi_client_address(scope: Mapping[str, Any], trusted: Sequence[Network]) -> str:
    """:func:`client_address` of an ASGI HTTP or WebSocket scope."""
    client = scope.get("client")
    peer = str(client[0]) if client else None
    if not trusted:
        return peer or UNKNOWN
    forwarded = [
        v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"
    ]
    return client_address(peer, forwarded, trusted)
