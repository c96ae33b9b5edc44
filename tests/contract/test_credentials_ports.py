"""Contract of PasswordHasher and AccessTokens, run against the fakes of
chatcore.testing and the real adapters (argon2, JWT) alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import argon2
import pytest

from adapters.jwt_tokens import JwtAccessTokens, VerifiedTokens
from adapters.passwords import Argon2PasswordHasher
from chatcore.errors import Unauthorized
from chatcore.ports import AccessTokens, PasswordHasher
from chatcore.testing import FakeAccessTokens, FakePasswordHasher, FixedClock

SECRET = "s" * 48

HASHERS: dict[str, Callable[[], PasswordHasher]] = {
    "fake": FakePasswordHasher,
    "argon2": lambda: Argon2PasswordHasher(argon2.profiles.CHEAPEST),
}
TOKENS: dict[str, Callable[[FixedClock], AccessTokens]] = {
    "fake": lambda clock: FakeAccessTokens(expires_in=60, clock=clock),
    "jwt": lambda clock: JwtAccessTokens(SECRET, ttl=timedelta(seconds=60), clock=clock),
}


@pytest.fixture(params=sorted(HASHERS))
def hasher(request: pytest.FixtureRequest) -> PasswordHasher:
    return HASHERS[request.param]()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(params=sorted(TOKENS))
def tokens(request: pytest.FixtureRequest, clock: FixedClock) -> AccessTokens:
    return TOKENS[request.param](clock)


async def test_a_hash_verifies_its_password_only(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse")
    assert stored != "correct horse"
    assert await hasher.verify(stored, "correct horse") is True
    assert await hasher.verify(stored, "correct horsE") is False


async def test_hashes_are_salted(hasher: PasswordHasher) -> None:
    assert await hasher.hash("same password") != await hasher.hash("same password")


@pytest.mark.parametrize("garbage", ["", "not a hash", "$argon2id$broken", "fake$$"])
async def test_a_malformed_hash_verifies_nothing(hasher: PasswordHasher, garbage: str) -> None:
    assert await hasher.verify(garbage, "anything") is False


def test_an_issued_token_names_its_user(tokens: AccessTokens) -> None:
    issued = tokens.issue("user-1")
    assert issued.expires_in == 60
    assert tokens.verify(issued.token) == "user-1"
    assert tokens.issue("user-1").token != issued.token


@pytest.mark.parametrize("garbage", ["", "access:user-1:999", "x.y.z", "Bearer abc"])
def test_unknown_tokens_are_refused(tokens: AccessTokens, garbage: str) -> None:
    tokens.issue("user-1")
    with pytest.raises(Unauthorized):
        tokens.verify(garbage)


def test_a_token_expires_after_its_lifetime(tokens: AccessTokens, clock: FixedClock) -> None:
    issued = tokens.issue("user-1")
    clock.advance(seconds=59)
    assert tokens.verify(issued.token) == "user-1"
    clock.advance(seconds=2)
    with pytest.raises(Unauthorized):
        tokens.verify(issued.token)


def test_a_jwt_once_verified_is_remembered_and_still_expires(clock: FixedClock) -> None:
    verified = VerifiedTokens()
    tokens = JwtAccessTokens(SECRET, ttl=timedelta(seconds=60), clock=clock, verified=verified)
    issued = tokens.issue("user-1")
    assert verified.get(issued.token) is None
    assert tokens.verify(issued.token) == "user-1"
    remembered = verified.get(issued.token)
    assert remembered is not None
    assert remembered[0] == "user-1"
    clock.advance(seconds=61)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(issued.token)


def test_a_tampered_copy_of_a_remembered_jwt_is_refused(clock: FixedClock) -> None:
    tokens = JwtAccessTokens(SECRET, ttl=timedelta(seconds=60), clock=clock)
    issued = tokens.issue("user-1")
    assert tokens.verify(issued.token) == "user-1"
    head, claims, signature = issued.token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    for tampered in (f"{head}.{claims}.{flipped}{signature[1:]}", issued.token + "x"):
        with pytest.raises(Unauthorized):
            tokens.verify(tampered)


def test_remembered_jwts_are_bounded_least_recently_used_first(clock: FixedClock) -> None:
    verified = VerifiedTokens(size=2)
    tokens = JwtAccessTokens(SECRET, clock=clock, verified=verified)
    first, second, third = (tokens.issue(f"user-{n}").token for n in range(3))
    tokens.verify(first)
    tokens.verify(second)
    tokens.verify(first)  # now the most recently used
    tokens.verify(third)
    assert verified.get(second) is None
    assert verified.get(first) is not None
    assert verified.get(third) is not None
