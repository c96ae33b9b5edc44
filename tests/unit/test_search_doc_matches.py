"""The Mongo search adapter decides matches from a stored document's ``searchWords``
(:func:`adapters.mongo.search.doc_matches`): it must give the domain's answer
(:func:`chatcore.search.message_matches`) for every message, which these generated
cases check (accents, case, words longer than the indexed 32 characters, words that
are prefixes of others, deleted and edited messages)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import attrs
import pytest

from adapters.mongo.documents import SEARCH_KEYS, message_to_document
from adapters.mongo.search import doc_matches
from chatcore.models import Message
from chatcore.search import WORD_CHARS, message_matches, query_words, words

_PIECES = ["a", "ab", "É", "é", "e", "ü", "u", "x", "Zz", "9", "ß", "ss", "İ", "i"]
_WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _word(rng: random.Random) -> str:
    if rng.random() < 0.15:
        # Around the indexed prefix's length, most alike in their first 32 characters:
        # only the body tells such words apart.
        tail = "".join(rng.choice("ab") for _ in range(rng.randint(0, 6)))
        return "a" * (WORD_CHARS - 2) + tail
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 4)))


def _message(rng: random.Random, i: int) -> Message:
    body = rng.choice([" ", "-", ", ", "_"]).join(_word(rng) for _ in range(rng.randint(0, 6)))
    message = Message(
        id=f"m-{i}",
        conversation_id="c-1",
        seq=i + 1,
        sender_id="u-bob",
        body=body,
        client_msg_id=None,
        created_at=_WHEN,
    )
    if rng.random() < 0.1:
        return attrs.evolve(message, deleted_at=_WHEN)
    if rng.random() < 0.1:
        # Edited: the document holds the new body and its words only.
        return attrs.evolve(message, body=f"{_word(rng)} {_word(rng)}", edited_at=_WHEN)
    return message


def _query(rng: random.Random, message: Message) -> list[str]:
    """Query words: mostly prefixes of the message's own words (so that many
    cases match), sometimes anything."""
    own = words(message.body)
    parts = []
    for _ in range(rng.randint(1, 3)):
        if own and rng.random() < 0.7:
            word = rng.choice(own)
            parts.append(word[: rng.randint(1, len(word))])
        else:
            parts.append(_word(rng))
    return query_words(" ".join(parts))


@pytest.mark.parametrize("seed", range(5))
def test_doc_matches_agrees_with_the_domain(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = set()
    for i in range(2_000):
        message = _message(rng, i)
        wanted = _query(rng, message)
        if not wanted:
            continue
        expected = message_matches(message, wanted)
        assert doc_matches(message_to_document(message), wanted) == expected, (
            message.body,
            message.is_deleted,
            wanted,
        )
        outcomes.add((expected, any(len(w) > WORD_CHARS for w in wanted)))
    # Both answers came up, with and without a query word past the indexed prefix.
    assert outcomes == {(True, True), (True, False), (False, True), (False, False)}


def test_a_document_without_search_words_never_matches() -> None:
    """As v1 stored messages, before the backfill gives them words."""
    message = Message(
        id="m-1",
        conversation_id="c-1",
        seq=1,
        sender_id="u-bob",
        body="legacy " + "a" * (WORD_CHARS + 3),
        client_msg_id=None,
        created_at=_WHEN,
    )
    doc = message_to_document(message)
    del doc[SEARCH_KEYS]

    assert message_matches(message, ["legacy"])
    assert not doc_matches(doc, ["legacy"])
    assert not doc_matches(doc, ["a" * (WORD_CHARS + 1)])
