"""The client address: the peer unless a trusted proxy says otherwise in X-Forwarded-For."""

from __future__ import annotations

import pytest

from entrypoints.client_address import asgi_client_address, client_address, networks

TRUSTED = networks(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # No header, or a peer that is no trusted proxy: the peer, whatever it claims.
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["1.2.3.4"], "203.0.113.5"),
        # A trusted proxy: the rightmost address that is not a trusted proxy.
        ("10.1.2.3", ["1.2.3.4"], "1.2.3.4"),
        ("10.1.2.3", ["6.6.6.6, 1.2.3.4"], "1.2.3.4"),
        ("10.1.2.3", ["6.6.6.6, 1.2.3.4, 10.9.9.9"], "1.2.3.4"),
        ("10.1.2.3", ["6.6.6.6", "1.2.3.4, 192.0.2.1"], "1.2.3.4"),
        ("2001:db8::1", ["2001:db9::7"], "2001:db9::7"),
        # Only trusted hops: the leftmost. Garbage where an address belongs: the peer.
        ("10.1.2.3", ["10.0.0.1, 10.0.0.2"], "10.0.0.1"),
        ("10.1.2.3", ["1.2.3.4, not-an-address"], "10.1.2.3"),
        ("10.1.2.3", [" , "], "10.1.2.3"),
    ],
)
def test_the_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_with_no_trusted_proxy_the_header_is_ignored() -> None:
    scope = {"client": ("10.1.2.3", 5000), "headers": [(b"x-forwarded-for", b"1.2.3.4")]}
    assert asgi_client_address(scope, ()) == "10.1.2.3"
    assert asgi_client_address(scope, TRUSTED) == "1.2.3.4"


def test_a_scope_without_a_peer() -> None:
    assert asgi_client_address({"headers": []}, TRUSTED) == "-"


def test_bad_cidrs_are_refused() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        networks(["10.0.0.0/33"])
