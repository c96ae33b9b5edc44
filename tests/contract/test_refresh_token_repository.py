"""Contract of RefreshTokenRepository, for every adapter."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import attrs

from chatcore.chat import Storage
from chatcore.testing import factories as make

NOW = make.T0 + timedelta(minutes=1)


async def test_a_token_is_consumed_once(storage: Storage) -> None:
    token = make.refresh_token("u-a")
    await storage.refresh_tokens.add(token)

    consumed = await storage.refresh_tokens.consume(token.token_hash, NOW)
    again = await storage.refresh_tokens.consume(token.token_hash, NOW)

    assert consumed == token
    assert consumed is not None
    assert consumed.expires_at.utcoffset() == timedelta(0)
    assert again is None
    assert await storage.refresh_tokens.consume("unknown", NOW) is None


async def test_an_expired_token_is_not_returned(storage: Storage) -> None:
    token = make.refresh_token("u-a", expires_in=60)
    await storage.refresh_tokens.add(token)

    assert await storage.refresh_tokens.consume(token.token_hash, token.expires_at) is None
    later = token.expires_at + timedelta(milliseconds=1)
    assert await storage.refresh_tokens.consume(token.token_hash, later) is None


async def test_a_token_consumed_just_before_expiry_is_returned(storage: Storage) -> None:
    token = make.refresh_token("u-a", expires_in=60)
    await storage.refresh_tokens.add(token)

    just_before = token.expires_at - timedelta(milliseconds=1)
    assert await storage.refresh_tokens.consume(token.token_hash, just_before) == token


async def test_of_concurrent_consumes_at_most_one_wins(storage: Storage) -> None:
    token = make.refresh_token("u-a")
    await storage.refresh_tokens.add(token)

    results = await asyncio.gather(
        *(storage.refresh_tokens.consume(token.token_hash, NOW) for _ in range(10))
    )

    assert [r for r in results if r is not None] == [token]


async def test_a_revoked_token_cannot_be_consumed(storage: Storage) -> None:
    revoked, kept = make.refresh_token("u-a"), make.refresh_token("u-a")
    for token in (revoked, kept):
        await storage.refresh_tokens.add(token)

    await storage.refresh_tokens.revoke(revoked.token_hash, "u-a")
    await storage.refresh_tokens.revoke("unknown", "u-a")

    assert await storage.refresh_tokens.consume(revoked.token_hash, NOW) is None
    assert await storage.refresh_tokens.consume(kept.token_hash, NOW) == kept


async def test_revoke_all_for_user_revokes_only_that_users_tokens(storage: Storage) -> None:
    alices = [make.refresh_token("u-a") for _ in range(3)]
    bobs = make.refresh_token("u-b")
    for token in (*alices, bobs):
        await storage.refresh_tokens.add(token)

    await storage.refresh_tokens.revoke_all_for_user("u-a")

    for token in alices:
        assert await storage.refresh_tokens.consume(token.token_hash, NOW) is None
    assert await storage.refresh_tokens.consume(bobs.token_hash, NOW) == bobs


async def test_revoke_leaves_anyone_elses_token_alone(storage: Storage) -> None:
    token = make.refresh_token("u-a")
    await storage.refresh_tokens.add(token)

    await storage.refresh_tokens.revoke(token.token_hash, "u-b")

    assert await storage.refresh_tokens.consume(token.token_hash, NOW) == token


async def test_a_consumed_token_is_known_as_used(storage: Storage) -> None:
    token, unused = make.refresh_token("u-a"), make.refresh_token("u-a")
    for t in (token, unused):
        await storage.refresh_tokens.add(t)

    assert await storage.refresh_tokens.find_used(token.token_hash) is None
    await storage.refresh_tokens.consume(token.token_hash, NOW)

    assert await storage.refresh_tokens.find_used(token.token_hash) == token
    assert await storage.refresh_tokens.find_used(unused.token_hash) is None
    assert await storage.refresh_tokens.find_used("unknown") is None


async def test_revoke_family_revokes_used_and_unused_tokens_of_that_family(
    storage: Storage,
) -> None:
    root = make.refresh_token("u-a")
    child = attrs.evolve(make.refresh_token("u-a"), family_id=root.token_hash)
    stranger = make.refresh_token("u-a")
    for t in (root, child, stranger):
        await storage.refresh_tokens.add(t)
    await storage.refresh_tokens.consume(root.token_hash, NOW)

    await storage.refresh_tokens.revoke_family(root.family)

    assert await storage.refresh_tokens.find_used(root.token_hash) is None
    assert await storage.refresh_tokens.consume(child.token_hash, NOW) is None
    assert await storage.refresh_tokens.consume(stranger.token_hash, NOW) == stranger
