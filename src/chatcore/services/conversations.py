"""Direct and group conversations: creation, membership and per-member views."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from attrs import define

from chatcore import limits
from chatcore.cursors import decode_conversation_cursor, encode_conversation_cursor
from chatcore.errors import Forbidden, NotFound, ValidationFailed
from chatcore.models import (
    Conversation,
    ConversationCursor,
    ConversationType,
    ConversationView,
    Page,
)
from chatcore.ports import (
    Clock,
    ConversationRepository,
    IdGenerator,
    MessageRepository,
    Notifier,
    ReceiptRepository,
    UserRepository,
)
from chatcore.services.access import require_membership


@define(kw_only=True)
class ConversationViews:
    """Adds each viewer's read pointer and unread count to conversations, in batches."""

    messages: MessageRepository
    receipts: ReceiptRepository

    async def for_viewer(
        self, viewer_id: str, conversations: Sequence[Conversation]
    ) -> list[ConversationView]:
        """Views of many conversations for one viewer: two queries, whatever the count."""
        if not conversations:
            return []
        read = await self.receipts.for_user(viewer_id, [c.id for c in conversations])
        behind = {c.id: read.get(c.id, 0) for c in conversations if c.last_seq > read.get(c.id, 0)}
        unread, mentions = await self._unread(viewer_id, behind)
        return [
            ConversationView(
                conversation=c,
                viewer_id=viewer_id,
                last_read_seq=read.get(c.id, 0),
                unread_count=unread.get(c.id, 0),
                unread_mentions=mentions.get(c.id, 0),
            )
            for c in conversations
        ]

    async def _unread(
        self, viewer_id: str, behind: dict[str, int]
    ) -> tuple[dict[str, int], dict[str, int]]:
        # No query at all when everything is read.
        if not behind:
            return {}, {}
        return await self.messages.count_unread_and_mentions(viewer_id, behind)

    async def for_members(
        self, conversation: Conversation, viewer_ids: Iterable[str]
    ) -> list[ConversationView]:
        """Views of one conversation for several viewers (conversationUpdated fan-out)."""
        viewers = list(dict.fromkeys(viewer_ids))
        if conversation.last_seq == 0:
            return [
                ConversationView(
                    conversation=conversation, viewer_id=v, last_read_seq=0, unread_count=0
                )
                for v in viewers
            ]
        receipts = await self.receipts.list_for_conversation(conversation.id)
        read = {r.user_id: r.last_read_seq for r in receipts}

        async def view(viewer: str) -> ConversationView:
            pointer = read.get(viewer, 0)
            behind = {conversation.id: pointer} if conversation.last_seq > pointer else {}
            unread, mentions = await self._unread(viewer, behind)
            return ConversationView(
                conversation=conversation,
                viewer_id=viewer,
                last_read_seq=pointer,
                unread_count=unread.get(conversation.id, 0),
                unread_mentions=mentions.get(conversation.id, 0),
            )

        return list(await asyncio.gather(*(view(v) for v in viewers)))


@define(kw_only=True)
class ConversationService:
    """Get-or-create direct conversations, create groups, manage members, list."""

    conversations: ConversationRepository
    users: UserRepository
    views: ConversationViews
    notifier: Notifier
    clock: Clock
    ids: IdGenerator

    async def open_direct(self, user_id: str, other_id: str) -> ConversationView:
        """The direct conversation between the two users, created on first use."""
        conversation = await self.ensure_direct(user_id, other_id)
        [view] = await self.views.for_viewer(user_id, [conversation])
        return view

    async def ensure_direct(self, user_id: str, other_id: str) -> Conversation:
        """Get or create the direct conversation; when this call created it, both users
        have been sent ``conversationUpdated`` before it returns."""
        conversation, created = await self._get_or_create_direct(user_id, other_id)
        if created:
            await self._announce(conversation)
        return conversation

    async def _get_or_create_direct(self, user_id: str, other_id: str) -> tuple[Conversation, bool]:
        if other_id == user_id:
            raise ValidationFailed(
                "a direct conversation needs another user", details={"field": "userId"}
            )
        existing = await self.conversations.find_direct(user_id, other_id)
        if existing is not None:
            return existing, False
        if await self.users.get(other_id) is None:
            raise NotFound("user not found")
        now = self.clock.now()
        return await self.conversations.get_or_create_direct(
            Conversation(
                id=self.ids.new_id(),
                type=ConversationType.DIRECT,
                name=None,
                member_ids=tuple(sorted((user_id, other_id))),
                created_by=user_id,
                created_at=now,
                last_activity_at=now,
            )
        )

    async def create_group(
        self, user_id: str, name: str, member_ids: Sequence[str]
    ) -> ConversationView:
        """A new group with the creator as a member. Unknown member ids: NotFound."""
        name = limits.group_name(name)
        members = list(dict.fromkeys([user_id, *member_ids]))
        limits.group_size(len(members), "memberIds")
        await self._require_users(m for m in members if m != user_id)
        now = self.clock.now()
        conversation = Conversation(
            id=self.ids.new_id(),
            type=ConversationType.GROUP,
            name=name,
            member_ids=tuple(members),
            created_by=user_id,
            created_at=now,
            last_activity_at=now,
        )
        await self.conversations.create(conversation)
        return _view_of(user_id, await self._announce(conversation))

    async def get(self, user_id: str, conversation_id: str) -> ConversationView:
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        [view] = await self.views.for_viewer(user_id, [conversation])
        return view

    async def list_for_user(
        self, user_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[ConversationView]:
        """The user's conversations, most recent activity first."""
        size = limits.page_limit(limit)
        after = decode_conversation_cursor(cursor) if cursor else None
        found = await self.conversations.list_for_member(user_id, limit=size + 1, after=after)
        page = found[:size]
        next_cursor = None
        if len(found) > size:
            last = page[-1]
            next_cursor = encode_conversation_cursor(
                ConversationCursor(activity_at=last.activity_at, conversation_id=last.id)
            )
        return Page(items=await self.views.for_viewer(user_id, page), next_cursor=next_cursor)

    async def add_member(
        self, user_id: str, conversation_id: str, new_member_id: str
    ) -> ConversationView:
        """Any member may add users to a group; adding a member twice changes nothing."""
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        if conversation.type is not ConversationType.GROUP:
            raise Forbidden("members can only be added to group conversations")
        if conversation.has_member(new_member_id):
            [view] = await self.views.for_viewer(user_id, [conversation])
            return view
        limits.group_size(len(conversation.member_ids) + 1, "userId")
        await self._require_users([new_member_id])
        updated = await self.conversations.add_member(conversation_id, new_member_id)
        if updated is None:
            raise NotFound("conversation not found")
        return _view_of(user_id, await self._announce(updated))

    async def remove_member(self, user_id: str, conversation_id: str, member_id: str) -> None:
        """Leave a group (self), or remove another member (the group's creator only)."""
        conversation = await require_membership(self.conversations, conversation_id, user_id)
        if conversation.type is not ConversationType.GROUP:
            raise Forbidden("members of a direct conversation cannot be removed")
        if member_id != user_id:
            if conversation.created_by != user_id:
                raise Forbidden("only the group's creator can remove other members")
            if not conversation.has_member(member_id):
                raise NotFound("member not found")
        updated = await self.conversations.remove_member(conversation_id, member_id)
        if updated is None:
            raise NotFound("conversation not found")
        # The removed user hears of it too, so their clients can drop the conversation.
        await self._announce(updated, also=[member_id])

    async def _announce(
        self, conversation: Conversation, *, also: Iterable[str] = ()
    ) -> list[ConversationView]:
        """The one place that sends ``conversationUpdated``: to every member (and
        ``also``), each with their own read pointer and unread count."""
        views = await self.views.for_members(conversation, [*conversation.member_ids, *also])
        await self.notifier.conversation_updated(views)
        return views

    async def _require_users(self, user_ids: Iterable[str]) -> None:
        wanted = set(user_ids)
        if not wanted:
            return
        found = {u.id for u in await self.users.get_many(wanted)}
        missing = sorted(wanted - found)
        if missing:
            raise NotFound("user not found", details={"userIds": missing})


def _view_of(viewer_id: str, views: Iterable[ConversationView]) -> ConversationView:
    return next(v for v in views if v.viewer_id == viewer_id)
