"""Read receipts: a per-member pointer that only moves forward."""

from __future__ import annotations

from attrs import define

from chatcore import limits
from chatcore.models import ReadReceipt
from chatcore.ports import Clock, ConversationRepository, Notifier, ReceiptRepository
from chatcore.services.access import require_membership


@define(kw_only=True)
class ReceiptService:
    receipts: ReceiptRepository
    conversations: ConversationRepository
    notifier: Notifier
    clock: Clock

    async def mark_read(self, user_id: str, conversation_id: str, up_to_seq: int) -> ReadReceipt:
        """Move the user's read pointer to ``up_to_seq``.

        A seq beyond the newest message is clamped to it; a seq at or behind the
        pointer is accepted and changes nothing. Members hear ``messageRead`` only
        when the pointer moved.
        """
        limits.seq(up_to_seq, "upToSeq")
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        target = min(up_to_seq, conversation.last_seq)
        receipt, moved = await self.receipts.advance(
            conversation_id, user_id, target, self.clock.now()
        )
        # A first pointer at seq 0 is stored but is no news to anyone.
        if moved and receipt.last_read_seq > 0:
            await self.notifier.message_read(receipt, conversation.member_ids)
        return receipt

    async def list_for_conversation(self, user_id: str, conversation_id: str) -> list[ReadReceipt]:
        """Every stored read pointer of the conversation's current members."""
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        receipts = await self.receipts.list_for_conversation(conversation_id)
        return [r for r in receipts if conversation.has_member(r.user_id)]
