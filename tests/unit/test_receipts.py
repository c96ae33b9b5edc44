"""ReceiptService: a forward-only read pointer per member, unread counts, messageRead."""

from __future__ import annotations

import pytest

from chatcore.errors import ValidationFailed
from chatcore.models import ReadReceipt, User
from chatcore.testing import EPOCH, ChatKit


@pytest.fixture
async def group(kit: ChatKit, alice: User, bob: User, carol: User) -> str:
    view = await kit.chat.conversations.create_group(alice.id, "Trio", [bob.id, carol.id])
    cid = view.conversation.id
    for i in range(5):
        await kit.chat.messages.send(alice.id, cid, f"m{i + 1}")
    kit.notifier.clear()
    return cid


async def pointer(kit: ChatKit, user: User, conversation_id: str) -> tuple[int, int]:
    view = await kit.chat.conversations.get(user.id, conversation_id)
    return view.last_read_seq, view.unread_count


async def test_mark_read_moves_the_pointer_and_tells_every_member(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    kit.clock.advance(seconds=30)

    receipt = await kit.chat.receipts.mark_read(bob.id, group, 3)

    assert receipt == ReadReceipt(
        conversation_id=group,
        user_id=bob.id,
        last_read_seq=3,
        read_at=EPOCH.replace(second=30),
    )
    [event] = kit.notifier.events
    assert (event.name, event.payload) == ("messageRead", receipt)
    assert set(event.recipient_ids) == {alice.id, bob.id, carol.id}
    assert await pointer(kit, bob, group) == (3, 2)
    assert await kit.chat.receipts.list_for_conversation(carol.id, group) == [receipt]


async def test_moving_the_pointer_back_is_accepted_and_changes_nothing(
    kit: ChatKit, bob: User, group: str
) -> None:
    ahead = await kit.chat.receipts.mark_read(bob.id, group, 4)
    kit.clock.advance(minutes=1)
    kit.notifier.clear()

    for seq in (4, 2, 0):
        receipt = await kit.chat.receipts.mark_read(bob.id, group, seq)
        assert receipt == ahead  # same pointer, same readAt

    assert kit.notifier.events == []
    assert await pointer(kit, bob, group) == (4, 1)


async def test_pointer_beyond_the_last_message_is_clamped(
    kit: ChatKit, bob: User, group: str
) -> None:
    receipt = await kit.chat.receipts.mark_read(bob.id, group, 1_000)

    assert receipt.last_read_seq == 5
    assert await pointer(kit, bob, group) == (5, 0)
    kit.notifier.clear()

    # Already at the end: asking again moves nothing and says nothing.
    assert (await kit.chat.receipts.mark_read(bob.id, group, 1_000)).last_read_seq == 5
    assert kit.notifier.events == []


async def test_a_clamped_pointer_still_moves_on_when_new_messages_arrive(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    await kit.chat.receipts.mark_read(bob.id, group, 99)
    await kit.chat.messages.send(alice.id, group, "m6")

    assert await pointer(kit, bob, group) == (5, 1)
    assert (await kit.chat.receipts.mark_read(bob.id, group, 99)).last_read_seq == 6


async def test_negative_seq_is_refused(kit: ChatKit, bob: User, group: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        await kit.chat.receipts.mark_read(bob.id, group, -1)

    assert err.value.details == {"field": "upToSeq"}
    assert kit.notifier.events == []


async def test_unread_count_leaves_out_ones_own_messages(
    kit: ChatKit, alice: User, bob: User
) -> None:
    cid = (await kit.chat.conversations.open_direct(alice.id, bob.id)).conversation.id
    senders = [alice, bob, bob, alice, bob, alice]  # seqs 1..6
    for i, sender in enumerate(senders):
        await kit.chat.messages.send(sender.id, cid, f"m{i + 1}")

    assert await pointer(kit, alice, cid) == (0, 3)
    assert await pointer(kit, bob, cid) == (0, 3)

    await kit.chat.receipts.mark_read(alice.id, cid, 3)
    await kit.chat.receipts.mark_read(bob.id, cid, 3)

    assert await pointer(kit, alice, cid) == (3, 1)  # bob's seq 5
    assert await pointer(kit, bob, cid) == (3, 2)  # alice's seqs 4 and 6

    listed = await kit.chat.conversations.list_for_user(bob.id)
    assert [(v.last_read_seq, v.unread_count) for v in listed.items] == [(3, 2)]


async def test_only_ones_own_messages_means_nothing_unread(
    kit: ChatKit, alice: User, bob: User, group: str
) -> None:
    assert await pointer(kit, alice, group) == (0, 0)
    assert await pointer(kit, bob, group) == (0, 5)


async def test_receipts_list_every_members_pointer(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    bobs = await kit.chat.receipts.mark_read(bob.id, group, 2)
    carols = await kit.chat.receipts.mark_read(carol.id, group, 5)

    listed = await kit.chat.receipts.list_for_conversation(alice.id, group)

    assert sorted(listed, key=lambda r: r.user_id) == sorted(
        [bobs, carols], key=lambda r: r.user_id
    )


async def test_receipts_of_former_members_are_not_listed(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    await kit.chat.receipts.mark_read(bob.id, group, 2)
    carols = await kit.chat.receipts.mark_read(carol.id, group, 5)

    await kit.chat.conversations.remove_member(bob.id, group, bob.id)

    assert await kit.chat.receipts.list_for_conversation(alice.id, group) == [carols]


async def test_message_read_goes_to_current_members(
    kit: ChatKit, alice: User, bob: User, carol: User, group: str
) -> None:
    await kit.chat.conversations.remove_member(alice.id, group, carol.id)
    kit.notifier.clear()

    await kit.chat.receipts.mark_read(bob.id, group, 1)

    [event] = kit.notifier.named("messageRead")
    assert set(event.recipient_ids) == {alice.id, bob.id}


async def test_first_pointer_at_zero_is_stored_without_an_event(kit, alice, bob):
    dm = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()
    receipt = await kit.chat.receipts.mark_read(bob.id, dm.conversation.id, 0)
    assert receipt.last_read_seq == 0
    assert kit.notifier.named("messageRead") == []
