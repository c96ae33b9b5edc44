"""Sends from several processes: two separate clients racing on one conversation."""

from __future__ import annotations

import asyncio

import pytest

from chatcore.chat import Storage
from chatcore.testing import factories as make

from .helpers import assert_no_half_written_send

pytestmark = pytest.mark.mongo

SENDERS = ("u-a", "u-b", "u-c")


async def test_concurrent_sends_from_two_clients_get_seqs_1_to_n(
    two_storages: tuple[Storage, Storage],
) -> None:
    one, two = two_storages
    conversation = await make.stored_group(one, *SENDERS)
    n = 80

    results = await asyncio.gather(
        *(
            (one if i % 2 else two).messages.append(
                make.message(conversation.id, SENDERS[i % 3], f"message {i}")
            )
            for i in range(n)
        )
    )

    assert sorted(r.message.seq for r in results) == list(range(1, n + 1))
    for storage in (one, two):
        messages = await assert_no_half_written_send(storage, conversation.id)
        assert len(messages) == n
        assert {m.id for m in messages} == {r.message.id for r in results}


async def test_racing_replays_from_two_clients_store_one_message_without_gap(
    two_storages: tuple[Storage, Storage],
) -> None:
    one, two = two_storages
    conversation = await make.stored_group(one, *SENDERS)
    sends = []
    for i in range(20):
        storage = one if i % 2 else two
        sends.append(storage.messages.append(make.message(conversation.id, "u-a", "same", "k")))
        sends.append(storage.messages.append(make.message(conversation.id, "u-b", f"other {i}")))

    results = await asyncio.gather(*sends)

    replays = [r for r in results if r.message.client_msg_id == "k"]
    assert sum(r.created for r in replays) == 1
    assert len({r.message.id for r in replays}) == 1
    messages = await assert_no_half_written_send(one, conversation.id)
    assert len(messages) == 21
    assert sum(m.client_msg_id == "k" for m in messages) == 1


async def test_batches_rewriting_conversations_keep_a_member_added_meanwhile(
    two_storages: tuple[Storage, Storage],
) -> None:
    # With transactions a batch stores its conversations whole (message_batches:
    # replace, or delete + insert from three): a member added by another client
    # while the batches run must survive them, and the seqs stay 1..n.
    one, two = two_storages
    rooms = [await make.stored_group(one, *SENDERS) for _ in range(4)]
    n = 24

    sends = [
        (one if i % 2 else two).messages.append(
            make.message(room.id, SENDERS[i % 3], f"message {i}")
        )
        for room in rooms
        for i in range(n)
    ]
    joins = [two.conversations.add_member(room.id, f"u-new-{k}") for k, room in enumerate(rooms)]
    sent, _ = await asyncio.gather(asyncio.gather(*sends), asyncio.gather(*joins))

    for k, room in enumerate(rooms):
        seqs = sorted(r.message.seq for r in sent if r.message.conversation_id == room.id)
        assert seqs == list(range(1, n + 1))
        for storage in (one, two):
            stored = await storage.conversations.get(room.id)
            assert stored is not None
            assert f"u-new-{k}" in stored.member_ids
            assert stored.last_seq == n
            assert len(await assert_no_half_written_send(storage, room.id)) == n
