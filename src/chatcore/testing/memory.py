"""In-memory repositories: the reference implementation of every repository port.

They pass the same contract suites as the MongoDB adapters. No method awaits
in the middle of a change, so each one is atomic under asyncio.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from chatcore.chat import Storage
from chatcore.errors import Conflict, NotFound
from chatcore.models import (
    AppendResult,
    Conversation,
    ConversationCursor,
    Credentials,
    Message,
    NewMessage,
    ReadReceipt,
    RefreshToken,
    ThreadSummary,
    User,
)
from chatcore.ports import (
    ConversationRepository,
    MessageRepository,
    MessageSearch,
    ReceiptRepository,
    RefreshTokenRepository,
    UserRepository,
)
from chatcore.reactions import toggled_reaction
from chatcore.search import (
    SearchPosition,
    matches,
    newest_first,
    words,
)


def _direct_key(a: str, b: str) -> tuple[str, str]:
    first, second = sorted((a, b))
    return first, second


class InMemoryUserRepository(UserRepository):
    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self._hashes: dict[str, str] = {}
        self._by_username: dict[str, str] = {}

    async def add(self, user: User, password_hash: str) -> None:
        key = user.username.lower()
        if key in self._by_username:
            raise Conflict("username is taken", details={"field": "username"})
        self._users[user.id] = user
        self._hashes[user.id] = password_hash
        self._by_username[key] = user.id

    async def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def get_many(self, user_ids: Iterable[str]) -> list[User]:
        return [self._users[u] for u in set(user_ids) if u in self._users]

    async def find_credentials(self, username: str) -> Credentials | None:
        user_id = self._by_username.get(username.lower())
        if user_id is None:
            return None
        return Credentials(user=self._users[user_id], password_hash=self._hashes[user_id])

    async def search(
        self, query: str | None, *, limit: int, after_username: str | None, exclude_id: str | None
    ) -> list[User]:
        q = (query or "").lower()
        found = [
            u
            for u in self._users.values()
            if u.id != exclude_id
            and (u.username.lower().startswith(q) or u.display_name.lower().startswith(q))
            and (after_username is None or u.username.lower() > after_username)
        ]
        found.sort(key=lambda u: u.username.lower())
        return found[:limit]

    async def set_last_seen(self, user_id: str, at: datetime) -> None:
        user = self._users.get(user_id)
        if user is not None:
            self._users[user_id] = attrs.evolve(user, last_seen_at=at)

    async def find_by_usernames(self, usernames: Iterable[str]) -> list[User]:
        ids = (self._by_username.get(name.lower()) for name in set(usernames))
        return [self._users[i] for i in ids if i is not None]


class InMemoryConversationRepository(ConversationRepository):
    def __init__(self) -> None:
        self.items: dict[str, Conversation] = {}
        self._direct: dict[tuple[str, str], str] = {}

    async def create(self, conversation: Conversation) -> None:
        if conversation.id in self.items:
            raise Conflict("conversation exists")
        self.items[conversation.id] = conversation

    async def get_or_create_direct(self, conversation: Conversation) -> tuple[Conversation, bool]:
        a, b = conversation.member_ids
        key = _direct_key(a, b)
        existing = self._direct.get(key)
        if existing is not None:
            return self.items[existing], False
        self.items[conversation.id] = conversation
        self._direct[key] = conversation.id
        return conversation, True

    async def find_direct(self, user_a: str, user_b: str) -> Conversation | None:
        existing = self._direct.get(_direct_key(user_a, user_b))
        return self.items[existing] if existing is not None else None

    async def get(self, conversation_id: str) -> Conversation | None:
        return self.items.get(conversation_id)

    async def get_for_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        conversation = self.items.get(conversation_id)
        if conversation is None or not conversation.has_member(user_id):
            return None
        return conversation

    async def list_for_member(
        self, user_id: str, *, limit: int, after: ConversationCursor | None
    ) -> list[Conversation]:
        mine = [c for c in self.items.values() if c.has_member(user_id)]
        if after is not None:
            position = (after.activity_at, after.conversation_id)
            mine = [c for c in mine if (c.activity_at, c.id) < position]
        mine.sort(key=lambda c: (c.activity_at, c.id), reverse=True)
        return mine[:limit]

    async def list_by_ids_for_member(
        self, user_id: str, conversation_ids: Iterable[str]
    ) -> list[Conversation]:
        found = (self.items.get(cid) for cid in set(conversation_ids))
        return [c for c in found if c is not None and c.has_member(user_id)]

    async def add_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        conversation = self.items.get(conversation_id)
        if conversation is None:
            return None
        if not conversation.has_member(user_id):
            conversation = attrs.evolve(
                conversation, member_ids=(*conversation.member_ids, user_id)
            )
            self.items[conversation_id] = conversation
        return conversation

    async def remove_member(self, conversation_id: str, user_id: str) -> Conversation | None:
        conversation = self.items.get(conversation_id)
        if conversation is None:
            return None
        members = tuple(m for m in conversation.member_ids if m != user_id)
        conversation = attrs.evolve(conversation, member_ids=members)
        self.items[conversation_id] = conversation
        return conversation

    async def contact_ids(self, user_id: str) -> set[str]:
        contacts: set[str] = set()
        for conversation in self.items.values():
            if conversation.has_member(user_id):
                contacts.update(conversation.member_ids)
        contacts.discard(user_id)
        return contacts


class InMemoryMessageRepository(MessageRepository):
    def __init__(self, conversations: InMemoryConversationRepository) -> None:
        self._conversations = conversations
        self._by_conversation: dict[str, list[Message]] = {}
        self._by_client_id: dict[tuple[str, str, str], Message] = {}

    async def append(self, new: NewMessage) -> AppendResult:
        conversation = self._conversations.items.get(new.conversation_id)
        if conversation is None or not conversation.has_member(new.sender_id):
            raise NotFound("conversation not found")
        if new.client_msg_id is not None:
            key = (new.conversation_id, new.sender_id, new.client_msg_id)
            replay = self._by_client_id.get(key)
            if replay is not None:
                # The message as stored now (it may have been edited or deleted since).
                current = self._by_conversation[new.conversation_id][replay.seq - 1]
                return AppendResult(message=current, conversation=conversation, created=False)
        message = Message(
            id=new.id,
            conversation_id=new.conversation_id,
            seq=conversation.last_seq + 1,
            sender_id=new.sender_id,
            body=new.body,
            client_msg_id=new.client_msg_id,
            created_at=new.created_at,
            thread_id=new.thread_id,
            mentions=tuple(m for m in new.mentions if conversation.has_member(m))
            if new.mentions
            else (),
        )
        self._by_conversation.setdefault(new.conversation_id, []).append(message)
        root = self._record_reply(message) if message.thread_id is not None else None
        if new.client_msg_id is not None:
            self._by_client_id[(new.conversation_id, new.sender_id, new.client_msg_id)] = message
        conversation = attrs.evolve(
            conversation,
            last_seq=message.seq,
            last_message=message,
            last_activity_at=message.created_at,
        )
        self._conversations.items[conversation.id] = conversation
        return AppendResult(
            message=message, conversation=conversation, created=True, thread_root=root
        )

    def _record_reply(self, reply: Message) -> Message:
        root = next(
            m for m in self._by_conversation[reply.conversation_id] if m.id == reply.thread_id
        )
        summary = root.thread
        if summary is None:
            summary = ThreadSummary(
                reply_count=0, last_reply_at=reply.created_at, participant_ids=()
            )
        participants = summary.participant_ids
        if reply.sender_id not in participants:
            participants = (*participants, reply.sender_id)
        summary = ThreadSummary(
            reply_count=summary.reply_count + 1,
            last_reply_at=max(summary.last_reply_at, reply.created_at),
            participant_ids=participants,
        )
        return self._replace(attrs.evolve(root, thread=summary))

    async def get(self, conversation_id: str, message_id: str) -> Message | None:
        for message in self._by_conversation.get(conversation_id, ()):
            if message.id == message_id:
                return message
        return None

    async def range(self, conversation_id: str, first_seq: int, last_seq: int) -> list[Message]:
        stored = self._by_conversation.get(conversation_id, [])
        # Seqs are gapless from 1, so message seq s sits at index s - 1.
        return stored[max(first_seq, 1) - 1 : max(last_seq, 0)]

    async def edit(
        self, message: Message, body: str, at: datetime, mentions: Sequence[str] = ()
    ) -> Message:
        current = self._current(message)
        if current.is_deleted:  # deleted since the caller read it
            raise Conflict("a deleted message cannot be edited")
        return self._replace(
            attrs.evolve(current, body=body, edited_at=at, mentions=tuple(mentions))
        )

    async def delete(self, message: Message, at: datetime) -> Message:
        current = self._current(message)
        return self._replace(
            attrs.evolve(current, body="", deleted_at=at, reactions=(), mentions=())
        )

    async def react(
        self, conversation_id: str, message_id: str, user_id: str, emoji: str, *, add: bool
    ) -> tuple[Message, bool]:
        message = await self.get(conversation_id, message_id)
        if message is None:
            raise NotFound("message not found")
        if message.is_deleted:
            raise Conflict("a deleted message takes no reactions")
        reactions = toggled_reaction(message.reactions, user_id, emoji, add=add)
        if reactions == message.reactions:
            return message, False
        return self._replace(attrs.evolve(message, reactions=reactions)), True

    async def thread_replies(
        self,
        conversation_id: str,
        root_id: str,
        *,
        before: int | None,
        after: int | None,
        limit: int,
    ) -> list[Message]:
        replies = [
            m for m in self._by_conversation.get(conversation_id, ()) if m.thread_id == root_id
        ]
        if after is not None:
            return [m for m in replies if m.seq > after][:limit]
        if before is not None:
            replies = [m for m in replies if m.seq < before]
        return replies[-limit:] if limit > 0 else []

    def _current(self, message: Message) -> Message:
        """The message as stored now (the caller's copy may predate a reaction)."""
        stored = self._by_conversation.get(message.conversation_id, [])
        if len(stored) < message.seq or stored[message.seq - 1].id != message.id:
            raise NotFound("message not found")
        return stored[message.seq - 1]

    async def count_unread(self, user_id: str, after_seq: Mapping[str, int]) -> dict[str, int]:
        return self._count(after_seq, lambda m: m.sender_id != user_id)

    async def count_unread_and_mentions(
        self, user_id: str, after_seq: Mapping[str, int]
    ) -> tuple[dict[str, int], dict[str, int]]:
        unread = await self.count_unread(user_id, after_seq)
        return unread, self._count(after_seq, lambda m: user_id in m.mentions)

    def _count(
        self, after_seq: Mapping[str, int], counts: Callable[[Message], bool]
    ) -> dict[str, int]:
        """Per conversation, the messages after the seq for which ``counts`` holds."""
        found: dict[str, int] = {}
        for conversation_id, seq in after_seq.items():
            stored = self._by_conversation.get(conversation_id, [])
            n = sum(1 for m in stored[max(seq, 0) :] if counts(m))
            if n:
                found[conversation_id] = n
        return found

    def stored(self, conversation_id: str) -> list[Message]:
        """The conversation's messages as stored now, ascending by seq (not a copy)."""
        return self._by_conversation.get(conversation_id, [])

    def _replace(self, message: Message) -> Message:
        stored = self._by_conversation.get(message.conversation_id)
        if stored is None or len(stored) < message.seq:
            raise NotFound("message not found")
        stored[message.seq - 1] = message
        conversation = self._conversations.items.get(message.conversation_id)
        if conversation is not None and conversation.last_seq == message.seq:
            self._conversations.items[conversation.id] = attrs.evolve(
                conversation, last_message=message
            )
        return message


class InMemoryMessageSearch(MessageSearch):
    """Searches the in-memory messages of the caller's conversations, newest first.

    Each body's words and index keys are computed once and kept until the body
    changes: the key of the query's longest word rejects most messages at once.
    """

    def __init__(
        self, messages: InMemoryMessageRepository, conversations: InMemoryConversationRepository
    ) -> None:
        self._messages = messages
        self._conversations = conversations
        self._words: dict[str, tuple[str, frozenset[str]]] = {}

    async def search(
        self,
        user_id: str,
        wanted: Sequence[str],
        *,
        conversation_id: str | None,
        limit: int,
        after: SearchPosition | None,
    ) -> list[Message]:
        if conversation_id is None:
            scope = list(self._conversations.items.values())
        else:
            one = self._conversations.items.get(conversation_id)
            scope = [] if one is None else [one]
        found = [
            message
            for conversation in scope
            if conversation.has_member(user_id)
            for message in self._messages.stored(conversation.id)
            if (after is None or after.is_before(message))
            and not message.is_deleted
            and self._matches(message, wanted)
        ]
        return newest_first(found)[:limit]

    def _matches(self, message: Message, wanted: Sequence[str]) -> bool:
        cached = self._words.get(message.id)
        if cached is None or cached[0] != message.body:
            body = message.body
            cached = (body, frozenset(words(body)))
            self._words[message.id] = cached
        return matches(cached[1], wanted)


class InMemoryReceiptRepository(ReceiptRepository):
    def __init__(self) -> None:
        self._receipts: dict[tuple[str, str], ReadReceipt] = {}

    async def advance(
        self, conversation_id: str, user_id: str, up_to_seq: int, at: datetime
    ) -> tuple[ReadReceipt, bool]:
        key = (conversation_id, user_id)
        current = self._receipts.get(key)
        if current is not None and current.last_read_seq >= up_to_seq:
            return current, False
        receipt = ReadReceipt(
            conversation_id=conversation_id, user_id=user_id, last_read_seq=up_to_seq, read_at=at
        )
        self._receipts[key] = receipt
        return receipt, True

    async def list_for_conversation(self, conversation_id: str) -> list[ReadReceipt]:
        found = [r for (cid, _), r in self._receipts.items() if cid == conversation_id]
        return sorted(found, key=lambda r: r.user_id)

    async def for_user(self, user_id: str, conversation_ids: Iterable[str]) -> dict[str, int]:
        found = {}
        for cid in conversation_ids:
            receipt = self._receipts.get((cid, user_id))
            if receipt is not None:
                found[cid] = receipt.last_read_seq
        return found


class InMemoryRefreshTokenRepository(RefreshTokenRepository):
    def __init__(self) -> None:
        self._tokens: dict[str, RefreshToken] = {}
        self._used: set[str] = set()

    async def add(self, token: RefreshToken) -> None:
        self._tokens[token.token_hash] = token

    async def consume(self, token_hash: str, now: datetime) -> RefreshToken | None:
        token = self._tokens.get(token_hash)
        if token is None or token_hash in self._used:
            return None
        self._used.add(token_hash)
        return token if token.expires_at > now else None

    async def find_used(self, token_hash: str) -> RefreshToken | None:
        return self._tokens.get(token_hash) if token_hash in self._used else None

    async def revoke(self, token_hash: str, user_id: str) -> None:
        token = self._tokens.get(token_hash)
        if token is not None and token.user_id == user_id:
            del self._tokens[token_hash]
            self._used.discard(token_hash)

    async def revoke_family(self, family: str) -> None:
        for key in [k for k, t in self._tokens.items() if t.family == family]:
            del self._tokens[key]
            self._used.discard(key)

    async def revoke_all_for_user(self, user_id: str) -> None:
        for key in [k for k, t in self._tokens.items() if t.user_id == user_id]:
            del self._tokens[key]


def in_memory_storage() -> Storage:
    """A fresh, empty in-memory storage."""
    conversations = InMemoryConversationRepository()
    messages = InMemoryMessageRepository(conversations)
    return Storage(
        users=InMemoryUserRepository(),
        conversations=conversations,
        messages=messages,
        receipts=InMemoryReceiptRepository(),
        refresh_tokens=InMemoryRefreshTokenRepository(),
        search=InMemoryMessageSearch(messages, conversations),
    )


__all__ = [
    "InMemoryConversationRepository",
    "InMemoryMessageRepository",
    "InMemoryMessageSearch",
    "InMemoryReceiptRepository",
    "InMemoryRefreshTokenRepository",
    "InMemoryUserRepository",
    "in_memory_storage",
]
