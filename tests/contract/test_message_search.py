"""Contract of MessageSearch, for every adapter (memory, SecantusDB with and without
transactions, mongod when configured): what matches, who sees it, in what order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from chatcore.chat import Storage
from chatcore.models import Conversation, Message
from chatcore.search import SearchPosition, query_words
from chatcore.testing import factories as make

ALICE, BOB, CAROL = "u-alice", "u-bob", "u-carol"


async def _group(storage: Storage, *members: str) -> Conversation:
    return await make.stored_group(storage, *(members or (ALICE, BOB)))


async def _send(
    storage: Storage, conversation: Conversation, body: str, *, sender: str = ALICE, seconds: float
) -> Message:
    return (
        await storage.messages.append(make.message(conversation.id, sender, body, seconds=seconds))
    ).message


async def _search(
    storage: Storage,
    q: str,
    *,
    user: str = ALICE,
    conversation_id: str | None = None,
    limit: int = 50,
    after: SearchPosition | None = None,
) -> list[str]:
    found = await storage.search.search(
        user, query_words(q), conversation_id=conversation_id, limit=limit, after=after
    )
    return [m.body for m in found]


async def test_every_query_word_must_prefix_a_word_of_the_body(storage: Storage) -> None:
    group = await _group(storage)
    await _send(storage, group, "The quick brown fox", seconds=1)
    await _send(storage, group, "a quick cat", seconds=2)

    assert await _search(storage, "qu") == ["a quick cat", "The quick brown fox"]
    assert await _search(storage, "fox QUI") == ["The quick brown fox"]
    assert await _search(storage, "quick dog") == []
    # A prefix of a word, never a piece from its middle.
    assert await _search(storage, "uick") == []


async def test_case_and_accents_do_not_matter(storage: Storage) -> None:
    group = await _group(storage)
    await _send(storage, group, "Élan vital, CAFÉ crème", seconds=1)

    for q in ("elan", "ÉLAN", "éla", "cafe", "Café", "creme", "VITAL"):
        assert await _search(storage, q) == ["Élan vital, CAFÉ crème"], q


async def test_words_are_runs_of_letters_and_digits(storage: Storage) -> None:
    group = await _group(storage)
    await _send(storage, group, "release-2024 at foo_bar.example", seconds=1)

    assert await _search(storage, "2024") == ["release-2024 at foo_bar.example"]
    assert await _search(storage, "bar") == ["release-2024 at foo_bar.example"]
    assert await _search(storage, "exam") == ["release-2024 at foo_bar.example"]
    assert await _search(storage, "release2024") == []


async def test_long_words_match_on_every_character(storage: Storage) -> None:
    # Longer than the indexed prefixes: the rest of the word must still match.
    group = await _group(storage)
    await _send(storage, group, "internationalization matters", seconds=1)
    await _send(storage, group, "international news", seconds=2)

    assert await _search(storage, "internationali") == ["internationalization matters"]
    assert await _search(storage, "internat") == [
        "international news",
        "internationalization matters",
    ]
    assert await _search(storage, "internationalx") == []


async def test_only_conversations_the_user_is_a_member_of_now(storage: Storage) -> None:
    ours = await _group(storage, ALICE, BOB)
    theirs = await _group(storage, BOB, CAROL)
    await _send(storage, ours, "secret plan one", seconds=1)
    await _send(storage, theirs, "secret plan two", sender=BOB, seconds=2)

    assert await _search(storage, "secret") == ["secret plan one"]
    assert await _search(storage, "secret", user=BOB) == ["secret plan two", "secret plan one"]
    assert await _search(storage, "secret", user="u-nobody") == []

    await storage.conversations.remove_member(ours.id, ALICE)
    await storage.conversations.add_member(theirs.id, ALICE)
    assert await _search(storage, "secret") == ["secret plan two"]


async def test_one_conversation(storage: Storage) -> None:
    first = await _group(storage)
    second = await _group(storage)
    await _send(storage, first, "lunch at noon", seconds=1)
    await _send(storage, second, "lunch tomorrow", seconds=2)

    assert await _search(storage, "lunch", conversation_id=first.id) == ["lunch at noon"]
    assert await _search(storage, "lunch", conversation_id=second.id) == ["lunch tomorrow"]
    foreign = await _group(storage, BOB, CAROL)
    await _send(storage, foreign, "lunch for two", sender=BOB, seconds=3)
    assert await _search(storage, "lunch", conversation_id=foreign.id) == []
    assert await _search(storage, "lunch", conversation_id="c-missing") == []


async def test_deleted_messages_never_match(storage: Storage) -> None:
    group = await _group(storage)
    sent = await _send(storage, group, "delete me please", seconds=1)
    await _send(storage, group, "keep me please", seconds=2)

    await storage.messages.delete(sent, make.T0 + timedelta(seconds=3))

    assert await _search(storage, "please") == ["keep me please"]
    assert await _search(storage, "delete") == []


async def test_an_edited_message_matches_its_new_body_only(storage: Storage) -> None:
    group = await _group(storage)
    sent = await _send(storage, group, "see you at the station", seconds=1)

    edited = await storage.messages.edit(
        sent, "see you at the airport", make.T0 + timedelta(seconds=5)
    )

    assert await _search(storage, "station") == []
    found = await storage.search.search(
        ALICE, query_words("airport"), conversation_id=None, limit=5, after=None
    )
    assert found == [edited]


async def test_newest_first_and_paging_returns_each_match_once(storage: Storage) -> None:
    first = await _group(storage)
    second = await _group(storage)
    sent: list[Message] = []
    for i in range(23):
        # Pairs share a millisecond, so ties are ordered (and paged) by id.
        conversation = first if i % 3 else second
        sent.append(await _send(storage, conversation, f"report {i}", seconds=i // 2))
    await _send(storage, first, "unrelated", seconds=30)

    expected = sorted(sent, key=lambda m: (m.created_at, m.id), reverse=True)
    pages: list[Sequence[Message]] = []
    after: SearchPosition | None = None
    while True:
        page = await storage.search.search(
            ALICE, query_words("report"), conversation_id=None, limit=5, after=after
        )
        if not page:
            break
        pages.append(page)
        after = SearchPosition.of(page[-1])
    assert [m.id for page in pages for m in page] == [m.id for m in expected]
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]


async def test_messages_from_long_ago_are_found(storage: Storage) -> None:
    # Far older than anything recent: a store that searches recent messages first
    # must still reach them.
    group = await _group(storage)
    await storage.messages.append(
        make.message(group.id, ALICE, "ancient history", seconds=-20 * 365 * 86400)
    )
    await _send(storage, group, "recent history", seconds=1)

    assert await _search(storage, "history") == ["recent history", "ancient history"]
    assert await _search(storage, "ancient") == ["ancient history"]
