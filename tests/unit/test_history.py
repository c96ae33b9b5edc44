"""MessageService.history: the newest page, before/after windows, hasMore."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unitkit import PASSWORD, fill

from chatcore.errors import ValidationFailed
from chatcore.models import User
from chatcore.testing import ChatKit, in_memory_chat


async def test_history_defaults_to_the_newest_50(kit: ChatKit, alice: User, dm: str) -> None:
    sent = await fill(kit, alice, dm, 60)

    history = await kit.chat.messages.history(alice.id, dm)

    assert history.messages == sent[10:]
    assert history.has_more is True


async def test_history_of_a_short_conversation_is_complete(
    kit: ChatKit, alice: User, bob: User, dm: str
) -> None:
    sent = await fill(kit, alice, dm, 3)

    history = await kit.chat.messages.history(bob.id, dm)

    assert history.messages == sent
    assert history.has_more is False


async def test_history_of_an_empty_conversation(kit: ChatKit, alice: User, dm: str) -> None:
    history = await kit.chat.messages.history(alice.id, dm)

    assert history.messages == []
    assert history.has_more is False


async def test_history_before_and_after(kit: ChatKit, alice: User, dm: str) -> None:
    sent = await fill(kit, alice, dm, 10)

    older = await kit.chat.messages.history(alice.id, dm, before=6, limit=3)
    oldest = await kit.chat.messages.history(alice.id, dm, before=4, limit=3)
    newer = await kit.chat.messages.history(alice.id, dm, after=6, limit=3)
    newest = await kit.chat.messages.history(alice.id, dm, after=7, limit=3)

    assert (older.messages, older.has_more) == (sent[2:5], True)
    assert (oldest.messages, oldest.has_more) == (sent[0:3], False)
    assert (newer.messages, newer.has_more) == (sent[6:9], True)
    assert (newest.messages, newest.has_more) == (sent[7:10], False)


@pytest.mark.parametrize("limit", [1, 100])
async def test_history_limit_bounds_are_inclusive(
    kit: ChatKit, alice: User, dm: str, limit: int
) -> None:
    await fill(kit, alice, dm, 2)

    history = await kit.chat.messages.history(alice.id, dm, limit=limit)

    assert len(history.messages) == min(limit, 2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"before": -1}, "before"),
        ({"after": -1}, "after"),
        ({"before": 5, "after": 1}, "before"),
        ({"before": 0, "after": 0}, "before"),
    ],
)
async def test_history_arguments_are_validated(
    kit: ChatKit, alice: User, dm: str, kwargs: dict[str, int], field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.messages.history(alice.id, dm, **kwargs)

    assert err.value.details == {"field": field}


def expected_window(n: int, mode: str, value: int, limit: int) -> tuple[list[int], bool]:
    """The contract, stated independently of the implementation."""
    seqs = list(range(1, n + 1))
    if mode == "after":
        candidates = [s for s in seqs if s > value]
        return candidates[:limit], len(candidates) > limit
    candidates = [s for s in seqs if mode == "latest" or s < value]
    return candidates[-limit:] if candidates else [], len(candidates) > limit


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 30),
    mode=st.sampled_from(["latest", "before", "after"]),
    value=st.integers(0, 35),
    limit=st.one_of(st.integers(1, 8), st.integers(1, 100)),
)
def test_history_windows_are_contiguous_with_correct_has_more(
    n: int, mode: str, value: int, limit: int
) -> None:
    async def scenario() -> None:
        kit = in_memory_chat()
        alice = (await kit.chat.auth.register("alice", PASSWORD)).user
        bob = (await kit.chat.auth.register("bob", PASSWORD)).user
        cid = (await kit.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
        for i in range(n):
            await kit.chat.messages.send((alice, bob)[i % 2].id, cid, f"m{i + 1}")

        kwargs = {} if mode == "latest" else {mode: value}
        history = await kit.chat.messages.history(bob.id, cid, limit=limit, **kwargs)

        seqs = [m.seq for m in history.messages]
        want, more = expected_window(n, mode, value, limit)
        assert seqs == want
        assert history.has_more is more
        assert all(m.body == f"m{m.seq}" and m.conversation_id == cid for m in history.messages)
        if seqs:  # contiguous and ascending
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    asyncio.run(scenario())
