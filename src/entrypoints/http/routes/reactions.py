"""Reactions (contract v1.1): PUT adds the caller's emoji, DELETE removes it."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import message_json
from chatcore import limits
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import json_response
from entrypoints.http.schemas import MessageOut

api = Api("/api")
TAG = "reactions"
PATH = "/conversations/{id}/messages/{messageId}/reactions/{emoji}"
# 404: conversation or message; 409: a deleted message, or a 21st distinct emoji.
ERRORS = (404, 409, 422)
EMOJI = {
    "emoji": {
        "type": "string",
        "minLength": 1,
        "maxLength": limits.MAX_EMOJI_CHARS,
        "pattern": limits.EMOJI_PATTERN,
        "description": "A Unicode emoji or a short name such as :party:, URL-encoded.",
    }
}


async def _react(call: Call, *, add: bool) -> Response:
    reactions, path = call.chat.reactions, call.path
    message = await reactions.react(
        call.user_id, path("id"), path("messageId"), path("emoji"), add=add
    )
    return json_response(message_json(message))


@api.route(
    "PUT",
    PATH,
    summary="Add the caller's reaction (URL-encoded emoji, 1..32 characters, no whitespace); "
    "adding twice changes nothing",
    tag=TAG,
    responses={200: MessageOut},
    errors=ERRORS,
    path_schemas=EMOJI,
)
async def add_reaction(call: Call) -> Response:
    return await _react(call, add=True)


@api.route(
    "DELETE",
    PATH,
    summary="Remove the caller's reaction; removing an absent one changes nothing",
    tag=TAG,
    responses={200: MessageOut},
    errors=ERRORS,
    path_schemas=EMOJI,
)
async def remove_reaction(call: Call) -> Response:
    return await _react(call, add=False)
