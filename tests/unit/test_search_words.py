"""The domain's normaliser and match rule for message search (chatcore.search), and its
paging cursor: what every search adapter relies on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chatcore.cursors import decode_search_cursor, encode_search_cursor
from chatcore.errors import ValidationFailed
from chatcore.search import (
    WORD_CHARS,
    SearchPosition,
    index_words,
    lookup_word,
    matches,
    query_words,
    words,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Élan vital", ["elan", "vital"]),
        ("CAFÉ, crème brûlée!", ["cafe", "creme", "brulee"]),
        ("Straße", ["strasse"]),  # case folding, not just lower-casing
        ("İstanbul", ["istanbul"]),  # the dot that folding adds is dropped too
        ("ﬁne ﬂy", ["fine", "fly"]),  # compatibility ligatures decompose
        ("foo_bar-baz.qux", ["foo", "bar", "baz", "qux"]),  # underscores split too
        ("release-2024 v2", ["release", "2024", "v2"]),
        ("Ωμέγα Привет 東京", ["ωμεγα", "привет", "東京"]),
        ("  ?! -- ", []),
        ("", []),
    ],
)
def test_words_are_folded_unaccented_runs_of_letters_and_digits(
    text: str, expected: list[str]
) -> None:
    assert words(text) == expected


def test_index_words_are_the_distinct_words_without_prefixes_of_others() -> None:
    assert index_words("Hi hi HOP") == ["hi", "hop"]
    # "the" is found through "there" (a prefix query for "the" reads both), "he" is kept.
    assert index_words("there the he") == ["he", "there"]
    long = "x" * 40
    assert index_words(f"{long} {long[:35]}") == ["x" * WORD_CHARS]
    assert index_words("") == []


def test_query_words_drop_the_words_a_longer_one_implies() -> None:
    assert query_words("ab ABC x") == ["abc", "x"]
    assert query_words("Élan élan") == ["elan"]
    assert query_words("...") == []


def test_the_lookup_word_is_the_longest_query_word_within_the_cap() -> None:
    assert lookup_word(query_words("a internationalization bc")) == "internationalization"
    assert lookup_word(["y" * 40]) == "y" * WORD_CHARS
    assert lookup_word(["bc", "a"]) == "bc"


def test_every_wanted_word_must_prefix_some_word() -> None:
    body = words("The quick brown fox")
    assert matches(body, ["qu", "fo"])
    assert matches(body, ["quick", "quick"])
    assert not matches(body, ["quick", "dog"])
    assert not matches(body, ["uick"])
    assert matches(body, [])


def test_a_search_cursor_round_trips_and_refuses_garbage() -> None:
    position = SearchPosition(
        created_at=datetime(2026, 5, 1, 12, 0, 0, 123000, UTC), message_id="m"
    )
    assert decode_search_cursor(encode_search_cursor(position)) == position
    for bad in ("", "not base64!", "e30", "eyJ0IjoiMjAyNi0wNS0wMVQxMjowMDowMCJ9"):
        with pytest.raises(ValidationFailed):
            decode_search_cursor(bad)
