"""Sending, reading history, editing, deleting and catching up on messages."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from attrs import define

from chatcore import limits
from chatcore.errors import Conflict, Forbidden, NotFound, ValidationFailed
from chatcore.mentions import mentioned_ids, named_usernames
from chatcore.models import AppendResult, Conversation, History, Message, NewMessage
from chatcore.ports import (
    Clock,
    ConversationRepository,
    IdGenerator,
    MessageRepository,
    Notifier,
    UserRepository,
)
from chatcore.services.access import require_membership
from chatcore.services.conversations import ConversationService
from chatcore.services.throttle import Throttle


@define(kw_only=True)
class SyncResult:
    """What a client missed: messages ascending per conversation, and whether some
    conversation had more than the per-call cap (ask again from the last seq)."""

    messages: list[Message]
    has_more: bool


@define(kw_only=True)
class MessageService:
    """Every path that creates or changes messages; notifies only after storing."""

    messages: MessageRepository
    conversations: ConversationRepository
    users: UserRepository
    conversation_service: ConversationService
    notifier: Notifier
    clock: Clock
    ids: IdGenerator
    throttle: Throttle

    async def send(
        self,
        sender_id: str,
        conversation_id: str,
        body: str,
        client_msg_id: str | None = None,
        thread_id: str | None = None,
    ) -> AppendResult:
        """Store a message with the next seq and deliver it to every member.

        Replaying a ``client_msg_id`` returns the stored message with ``created``
        False and delivers nothing again (and is not counted against the send limit).
        Non-members get NotFound; RateLimited over the send limit, storing nothing.
        With ``thread_id`` the message is a reply in that message's thread (the
        thread of its root if it names a reply); members then also hear
        ``messageUpdated`` for the root. A ``thread_id`` that is not a live message
        of the conversation is a ValidationFailed on ``threadId``.
        """
        body = limits.message_body(body)
        client_msg_id = limits.client_msg_id(client_msg_id)
        root_id: str | None = None
        mentions: tuple[str, ...] = ()
        # A body without '@' and no thread (the common case): no query, no await, and
        # the NewMessage is built once.
        if thread_id is not None or "@" in body:
            root_id, mentions = await self._thread_and_mentions(
                sender_id, conversation_id, body, thread_id
            )
        await self.throttle.send(sender_id)
        return await self._store(
            self._new_message(sender_id, conversation_id, body, client_msg_id, root_id, mentions)
        )

    async def _thread_and_mentions(
        self, sender_id: str, conversation_id: str, body: str, thread_id: str | None
    ) -> tuple[str | None, tuple[str, ...]]:
        """The root of the thread ``thread_id`` names (checked) and the users ``body``
        names (one indexed query; the store keeps only those who are members when it
        stores the message)."""
        root_id = None
        if thread_id is not None:
            root_id = await self._thread_root(sender_id, conversation_id, thread_id, live=True)
        names = named_usernames(body)
        mentions = await self._named_users(names, sender_id, None) if names else ()
        return root_id, mentions

    def _new_message(
        self,
        sender_id: str,
        conversation_id: str,
        body: str,
        client_msg_id: str | None,
        thread_id: str | None,
        mentions: tuple[str, ...],
    ) -> NewMessage:
        """The message to store; ``body`` and ``client_msg_id`` are already checked."""
        return NewMessage(
            id=self.ids.new_id(),
            conversation_id=conversation_id,
            sender_id=sender_id,
            body=body,
            client_msg_id=client_msg_id,
            created_at=self.clock.now(),
            thread_id=thread_id,
            mentions=mentions,
        )

    async def _store(self, new: NewMessage) -> AppendResult:
        # One atomic store call checks membership, allocates the seq and inserts.
        result = await self.messages.append(new)
        if result.created:
            members = result.conversation.member_ids
            await self.notifier.message_created(result.message, members)
            if result.thread_root is not None:
                await self.notifier.message_updated(result.thread_root, members)
        else:
            await self.throttle.send_was_replay(new.sender_id)
        return result

    async def send_direct(
        self,
        sender_id: str,
        receiver_id: str,
        body: str,
        client_msg_id: str | None = None,
        thread_id: str | None = None,
    ) -> AppendResult:
        """Seed-compatible send: to the direct conversation with ``receiver_id``."""
        # Validate and count before a conversation may be created, so that bad input
        # or a send over the limit changes nothing.
        body = limits.message_body(body)
        client_msg_id = limits.client_msg_id(client_msg_id)
        limits.thread_id(thread_id)
        await self.throttle.send(sender_id)
        conversation = await self.conversation_service.ensure_direct(sender_id, receiver_id)
        root_id: str | None = None
        mentions: tuple[str, ...] = ()
        if thread_id is not None or "@" in body:
            root_id, mentions = await self._thread_and_mentions(
                sender_id, conversation.id, body, thread_id
            )
        return await self._store(
            self._new_message(sender_id, conversation.id, body, client_msg_id, root_id, mentions)
        )

    async def history(
        self,
        user_id: str,
        conversation_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> History:
        """A window of up to ``limit`` messages, ascending by seq: the newest ones, those
        just before seq ``before``, or those just after seq ``after``."""
        size, before, after = self._window_args(before, after, limit)
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        return await self._window(conversation, size, before, after)

    async def history_direct(
        self,
        user_id: str,
        other_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> History:
        """Seed-compatible history of the direct conversation with ``other_id``
        (empty, and nothing created, if they never talked)."""
        size, before, after = self._window_args(before, after, limit)
        if other_id == user_id:
            raise ValidationFailed(
                "a direct conversation needs another user", details={"field": "receiverId"}
            )
        conversation = await self.conversations.find_direct(user_id, other_id)
        if conversation is None:
            if await self.users.get(other_id) is None:
                raise NotFound("user not found")
            return History(messages=[], has_more=False)
        return await self._window(conversation, size, before, after)

    async def thread(
        self,
        user_id: str,
        conversation_id: str,
        thread_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> History:
        """A window of a thread's replies (not the root), ascending by seq, paged like
        :meth:`history`. ``thread_id`` may name the root or any of its replies; the
        thread of a deleted root can still be read."""
        size, before, after = self._window_args(before, after, limit)
        root_id = await self._thread_root(user_id, conversation_id, thread_id, live=False)
        found = await self.messages.thread_replies(
            conversation_id, root_id, before=before, after=after, limit=size + 1
        )
        if len(found) <= size:
            return History(messages=found, has_more=False)
        # The one more than asked lies beyond the far end of the window: drop it.
        return History(messages=found[:size] if after is not None else found[1:], has_more=True)

    async def edit(self, user_id: str, conversation_id: str, message_id: str, body: str) -> Message:
        """Change a message's body (its sender only; deleted messages can't be edited).
        Mentions are found again in the new body, against the current members."""
        body = limits.message_body(body)
        conversation, message = await self._own_message(user_id, conversation_id, message_id)
        if message.is_deleted:
            raise Conflict("a deleted message cannot be edited")
        names = named_usernames(body)
        mentions = await self._named_users(names, user_id, conversation.member_ids) if names else ()
        updated = await self.messages.edit(message, body, self.clock.now(), mentions)
        await self.notifier.message_updated(updated, conversation.member_ids)
        return updated

    async def delete(self, user_id: str, conversation_id: str, message_id: str) -> Message:
        """Delete a message (its sender only): the body empties, id and seq stay.
        Deleting it again returns it unchanged."""
        conversation, message = await self._own_message(user_id, conversation_id, message_id)
        if message.is_deleted:
            return message
        deleted = await self.messages.delete(message, self.clock.now())
        await self.notifier.message_deleted(deleted, conversation.member_ids)
        return deleted

    async def sync(self, user_id: str, since: Mapping[str, int]) -> SyncResult:
        """Messages after each given seq, for the conversations the user belongs to;
        ids of other conversations are skipped (to them they don't exist)."""
        limits.sync_since(since)
        found = await self.conversations.list_by_ids_for_member(user_id, since)
        by_id = {c.id: c for c in found}
        messages: list[Message] = []
        has_more = False
        cap = limits.SYNC_MAX_MESSAGES_PER_CONVERSATION
        for conversation_id, seq in since.items():
            conversation = by_id.get(conversation_id)
            if conversation is None or conversation.last_seq <= seq:
                continue
            last = min(conversation.last_seq, seq + cap)
            has_more = has_more or last < conversation.last_seq
            messages.extend(await self.messages.range(conversation_id, seq + 1, last))
        return SyncResult(messages=messages, has_more=has_more)

    @staticmethod
    def _window_args(
        before: int | None, after: int | None, limit: int | None
    ) -> tuple[int, int | None, int | None]:
        if before is not None and after is not None:
            raise ValidationFailed(
                "give either before or after, not both", details={"field": "before"}
            )
        size = limits.page_limit(limit)
        if before is not None:
            limits.seq(before, "before")
        if after is not None:
            limits.seq(after, "after")
        return size, before, after

    async def _window(
        self, conversation: Conversation, size: int, before: int | None, after: int | None
    ) -> History:
        # Seqs are gapless, so every window is a range query on (conversationId, seq).
        top = conversation.last_seq
        if after is not None:
            first, last = after + 1, min(after + size, top)
            has_more = last < top
        else:
            last = top if before is None else min(before - 1, top)
            first = max(last - size + 1, 1)
            has_more = first > 1
        if last < first:
            return History(messages=[], has_more=False)
        messages = await self.messages.range(conversation.id, first, last)
        return History(messages=messages, has_more=has_more)

    async def _named_users(
        self, names: list[str], sender_id: str, member_ids: Sequence[str] | None
    ) -> tuple[str, ...]:
        """Ids of the users named (``names``: lower-cased, from :func:`named_usernames`),
        other than the sender; only members if ``member_ids`` is given. One indexed query."""
        found = await self.users.find_by_usernames(names)
        ids_by_username = {u.username.lower(): u.id for u in found}
        return mentioned_ids(names, ids_by_username, member_ids, sender_id)

    async def _thread_root(
        self, user_id: str, conversation_id: str, thread_id: str, *, live: bool
    ) -> str:
        """The id of the root of the thread that ``thread_id`` names (a message of this
        conversation; not deleted if ``live``). Non-members get NotFound first."""
        thread_id = limits.thread_id(thread_id) or ""
        _, named = await asyncio.gather(
            require_membership(self.conversations, conversation_id, user_id),
            self.messages.get(conversation_id, thread_id),
        )
        if named is None:
            raise ValidationFailed(
                "threadId is not a message of this conversation", details={"field": "threadId"}
            )
        if live and named.is_deleted:
            raise ValidationFailed(
                "threadId names a deleted message", details={"field": "threadId"}
            )
        return named.thread_id or named.id

    async def _own_message(
        self, user_id: str, conversation_id: str, message_id: str
    ) -> tuple[Conversation, Message]:
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        message = await self.messages.get(conversation_id, message_id)
        if message is None:
            raise NotFound("message not found")
        if message.sender_id != user_id:
            raise Forbidden("only the sender can change a message")
        return conversation, message
