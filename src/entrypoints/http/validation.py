"""Turn request bodies and query strings into pydantic models, or ValidationFailed.

Every failure becomes a ``validation_error`` (422) whose details name the
fields, like the domain's own validation errors: ``{"field": ..., "errors":
[{"field", "message"}]}``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.datastructures import QueryParams

from chatcore.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

_JSON_TYPES = ("application/json",)


def is_json_content_type(content_type: str | None) -> bool:
    """``application/json`` or ``application/<anything>+json``, any parameters.

    A missing Content-Type is accepted (and parsed as JSON): plenty of simple
    clients omit it, and bearer-token auth means there is no CSRF to guard against.
    """
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type in _JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def parse_json_body(raw: bytes, content_type: str | None, model: type[M]) -> M:
    """Validate a JSON object body against ``model`` in one pass (pydantic parses the JSON)."""
    if not is_json_content_type(content_type):
        raise ValidationFailed(
            "Content-Type must be application/json", details={"field": "Content-Type"}
        )
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise _body_error(exc) from None


def parse_query(params: QueryParams, model: type[M]) -> M:
    """Validate query parameters (the last value of a repeated parameter wins)."""
    try:
        return model.model_validate(dict(params))
    except ValidationError as exc:
        raise _fields_error(exc.errors(include_url=False), "query parameter") from None


def _body_error(exc: ValidationError) -> ValidationFailed:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        return ValidationFailed("request body is not valid JSON", details={"field": "body"})
    if first["type"] == "model_type" and not first["loc"]:
        return ValidationFailed("request body must be a JSON object", details={"field": "body"})
    return _fields_error(errors, "field")


def _fields_error(errors: list[ErrorDetails], noun: str) -> ValidationFailed:
    listed = [{"field": _field_name(e), "message": _message(e)} for e in errors]
    first = listed[0]
    return ValidationFailed(
        f"{noun} {first['field']}: {first['message']}",
        details={"field": first["field"], "errors": listed},
    )


def _field_name(error: ErrorDetails) -> str:
    # loc holds the wire (camelCase) names, since models validate by alias.
    return ".".join(str(part) for part in error["loc"]) or "body"


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    message: Any = error.get("msg", "invalid")
    return str(message)
