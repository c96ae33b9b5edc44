"""Contract of PasswordHasher and AccessTokens, run against the fakes of
chatcore.testing and the real adapters (argon2, JWT) alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import argon2
import pytest

from adapters.jwt_tokens import JwtAccessTokens
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
