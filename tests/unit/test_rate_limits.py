"""Rate limits in the domain, with the contract's defaults and a fake clock.

The kit's clock stands still until a test moves it, so every decision here is exact.
"""

from __future__ import annotations

import pytest

from chatcore.errors import RateLimited, Unauthorized, ValidationFailed
from chatcore.models import User
from chatcore.rate_limits import Rate, RateLimits, parse_rate
from chatcore.services.throttle import last_quota
from chatcore.system import LocalRateLimiter
from chatcore.testing import ChatKit, FixedClock, in_memory_chat

PASSWORD = "correct horse battery"


@pytest.fixture
def limited() -> ChatKit:
    """A kit with the contract's default limits."""
    return in_memory_chat(rate_limits=RateLimits())


async def _user(kit: ChatKit, name: str) -> User:
    return (await kit.chat.auth.register(name, PASSWORD, client_address=f"10.0.0.{len(name)}")).user


# -- parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [("30/10s", Rate(30, 10)), (" 600 / 60s ", Rate(600, 60)), ("1/0.5s", Rate(1, 0.5))],
)
def test_rates_parse_as_count_per_seconds(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["off", "OFF", " off "])
def test_off_is_no_limit(text: str) -> None:
    assert parse_rate(text) is None


@pytest.mark.parametrize("text", ["", "30", "30/10", "30/s", "0/10s", "30/0s", "-1/10s", "x/10s"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_the_defaults_are_the_contracts() -> None:
    assert RateLimits() == RateLimits(
        send=Rate(30, 10),
        login=Rate(10, 60),
        register=Rate(20, 60),
        api=Rate(600, 60),
        typing=Rate(20, 10),
    )


# -- the limiter (GCRA) -------------------------------------------------------------


async def test_a_burst_of_count_then_one_per_interval() -> None:
    clock = FixedClock()
    limiter = LocalRateLimiter(clock)
    rate = Rate(3, 6)  # one every 2 s

    quotas = [await limiter.acquire("k", rate) for _ in range(4)]

    assert [q.allowed for q in quotas] == [True, True, True, False]
    assert [q.remaining for q in quotas] == [2, 1, 0, 0]
    assert quotas[2].reset_after == 6.0
    assert quotas[3].retry_after == 2.0
    clock.advance(seconds=1.999)
    assert not (await limiter.acquire("k", rate)).allowed
    clock.advance(milliseconds=1)
    assert (await limiter.acquire("k", rate)).allowed
    assert not (await limiter.acquire("k", rate)).allowed


async def test_a_refused_action_is_not_counted() -> None:
    clock = FixedClock()
    limiter = LocalRateLimiter(clock)
    rate = Rate(1, 10)
    await limiter.acquire("k", rate)
    for _ in range(50):
        assert not (await limiter.acquire("k", rate)).allowed
    clock.advance(seconds=10)
    assert (await limiter.acquire("k", rate)).allowed


async def test_keys_are_counted_apart() -> None:
    limiter = LocalRateLimiter(FixedClock())
    rate = Rate(1, 10)
    assert (await limiter.acquire("a", rate)).allowed
    assert (await limiter.acquire("b", rate)).allowed
    assert not (await limiter.acquire("a", rate)).allowed


async def test_release_gives_one_action_back_and_never_more() -> None:
    clock = FixedClock()
    limiter = LocalRateLimiter(clock)
    rate = Rate(2, 10)
    await limiter.acquire("k", rate)
    await limiter.acquire("k", rate)
    await limiter.release("k", rate)
    assert (await limiter.acquire("k", rate)).remaining == 0
    for _ in range(5):
        await limiter.release("k", rate)
    assert [(await limiter.acquire("k", rate)).allowed for _ in range(3)] == [True, True, False]


async def test_expired_keys_are_forgotten() -> None:
    clock = FixedClock()
    limiter = LocalRateLimiter(clock)
    rate = Rate(5, 1)
    for i in range(5000):
        await limiter.acquire(f"k{i}", rate)
        clock.advance(milliseconds=1)
    assert len(limiter) < 5000


# -- sends ---------------------------------------------------------------------------


async def test_sends_over_the_limit_are_refused_and_store_nothing(limited: ChatKit) -> None:
    alice, bob = await _user(limited, "alice"), await _user(limited, "bob")
    dm = await limited.chat.conversations.open_direct(alice.id, bob.id)
    cid = dm.conversation.id
    for i in range(30):
        await limited.chat.messages.send(alice.id, cid, f"m{i}")

    with pytest.raises(RateLimited) as refused:
        await limited.chat.messages.send(alice.id, cid, "one too many")
    with pytest.raises(RateLimited):
        await limited.chat.messages.send_direct(alice.id, bob.id, "nor this way")

    assert refused.value.limit == "send"
    assert refused.value.details == {"retryAfter": 1}  # 10 s / 30, rounded up
    history = await limited.chat.messages.history(alice.id, cid, limit=100)
    assert len(history.messages) == 30
    # Bob has a budget of his own; Alice's frees up one send per 1/3 s.
    await limited.chat.messages.send(bob.id, cid, "hi")
    limited.clock.advance(seconds=0.334)
    await limited.chat.messages.send(alice.id, cid, "again")


async def test_idempotent_replays_are_free(limited: ChatKit) -> None:
    alice, bob = await _user(limited, "alice"), await _user(limited, "bob")
    cid = (await limited.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
    first = await limited.chat.messages.send(alice.id, cid, "once", "c-1")
    for _ in range(100):
        replay = await limited.chat.messages.send(alice.id, cid, "once", "c-1")
        assert replay.message.id == first.message.id
    for i in range(29):
        await limited.chat.messages.send(alice.id, cid, f"m{i}")
    quota = last_quota()
    assert quota is not None
    assert quota.remaining == 0


async def test_a_direct_send_over_the_limit_creates_no_conversation(limited: ChatKit) -> None:
    alice, bob, carol = [await _user(limited, n) for n in ("alice", "bob", "carol")]
    cid = (await limited.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
    for i in range(30):
        await limited.chat.messages.send(alice.id, cid, f"m{i}")
    limited.notifier.clear()

    with pytest.raises(RateLimited):
        await limited.chat.messages.send_direct(alice.id, carol.id, "hello?")

    assert await limited.storage.conversations.find_direct(alice.id, carol.id) is None
    assert limited.notifier.events == []


async def test_invalid_sends_are_not_counted(limited: ChatKit) -> None:
    alice, bob = await _user(limited, "alice"), await _user(limited, "bob")
    cid = (await limited.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
    for _ in range(50):
        with pytest.raises(ValidationFailed):
            await limited.chat.messages.send(alice.id, cid, "   ")
    await limited.chat.messages.send(alice.id, cid, "still fine")


# -- logins and registrations -----------------------------------------------------------


async def test_failed_logins_are_limited_per_address_and_username(limited: ChatKit) -> None:
    await _user(limited, "alice")
    auth = limited.chat.auth
    for _ in range(10):
        with pytest.raises(Unauthorized):
            await auth.login("alice", "wrong password", client_address="1.2.3.4")

    # Even the right password waits now: the guess is refused before it is checked.
    with pytest.raises(RateLimited) as refused:
        await auth.login("ALICE", PASSWORD, client_address="1.2.3.4")
    assert refused.value.limit == "login"
    assert refused.value.details == {"retryAfter": 6}
    # Another address, or another username from the same address, is not held up.
    await auth.login("alice", PASSWORD, client_address="5.6.7.8")
    with pytest.raises(Unauthorized):
        await auth.login("bob", "wrong password", client_address="1.2.3.4")
    limited.clock.advance(seconds=6)
    await auth.login("alice", PASSWORD, client_address="1.2.3.4")


async def test_successful_logins_are_not_counted(limited: ChatKit) -> None:
    await _user(limited, "alice")
    for _ in range(50):
        await limited.chat.auth.login("alice", PASSWORD, client_address="1.2.3.4")
    for _ in range(10):
        with pytest.raises(Unauthorized):
            await limited.chat.auth.login("alice", "nope nope", client_address="1.2.3.4")


async def test_registrations_are_limited_per_address(limited: ChatKit) -> None:
    for i in range(20):
        await limited.chat.auth.register(f"user{i}", PASSWORD, client_address="1.2.3.4")
    with pytest.raises(RateLimited) as refused:
        await limited.chat.auth.register("one-more", PASSWORD, client_address="1.2.3.4")
    assert refused.value.limit == "register"
    assert await limited.storage.users.find_credentials("one-more") is None
    await limited.chat.auth.register("one-more", PASSWORD, client_address="4.3.2.1")


# -- typing and the api budget ----------------------------------------------------------


async def test_typing_over_the_limit_is_dropped(limited: ChatKit) -> None:
    alice, bob = await _user(limited, "alice"), await _user(limited, "bob")
    cid = (await limited.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
    limited.notifier.clear()
    for _ in range(20):
        await limited.chat.typing.set_typing(alice.id, cid, True)
    with pytest.raises(RateLimited) as refused:
        await limited.chat.typing.set_typing(alice.id, cid, False)
    assert refused.value.limit == "typing"
    assert len(limited.notifier.events) == 20


async def test_the_api_budget_is_per_user() -> None:
    kit = in_memory_chat(rate_limits=RateLimits(api=Rate(2, 60)))
    throttle = kit.chat.throttle
    await throttle.api("u1")
    await throttle.api("u1")
    with pytest.raises(RateLimited) as refused:
        await throttle.api("u1")
    await throttle.api("u2")
    assert refused.value.limit == "api"
    assert refused.value.details == {"retryAfter": 30}


async def test_limits_that_are_off_never_refuse() -> None:
    kit = in_memory_chat(rate_limits=RateLimits.off())
    for _ in range(1000):
        await kit.chat.throttle.typing("u1")
