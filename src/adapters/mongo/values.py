"""Defensive checks on the values that reach a query.

Repository methods are typed, but they are also the last line before the
database: a dict smuggled in where a string id belongs (``{"$gt": ""}``) would
become a query operator. Every value that goes into a filter passes through one
of these functions first, so only plain strings, integers and datetimes do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from chatcore.errors import ValidationFailed


def _invalid(field: str, what: str) -> ValidationFailed:
    return ValidationFailed(f"{field} must be {what}", details={"field": field})


def text(value: object, field: str) -> str:
    """``value`` if it is a ``str``; ValidationFailed otherwise."""
    if not isinstance(value, str):
        raise _invalid(field, "a string")
    return value


def optional_text(value: object, field: str) -> str | None:
    return None if value is None else text(value, field)


def texts(values: Iterable[object], field: str) -> list[str]:
    """The distinct strings of ``values`` (order kept); ValidationFailed on any other type."""
    if isinstance(values, str | bytes):
        raise _invalid(field, "a collection of strings")
    return list(dict.fromkeys(text(v, field) for v in values))


def integer(value: object, field: str) -> int:
    """``value`` if it is an ``int`` (not a bool); ValidationFailed otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(field, "an integer")
    return value


def moment(value: object, field: str) -> datetime:
    """``value`` as an aware UTC datetime; naive datetimes are taken to be UTC."""
    if not isinstance(value, datetime):
        raise _invalid(field, "a datetime")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
