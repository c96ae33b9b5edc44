"""Message search (contract v1.1): word prefixes across the caller's conversations."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import message_json
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import json_response
from entrypoints.http.schemas import MessageSearchOut, MessageSearchQuery

api = Api("/api")
TAG = "search"


@api.route(
    "GET",
    "/search/messages",
    summary="Messages of your conversations whose words start with every word of `q`, newest first",
    tag=TAG,
    query=MessageSearchQuery,
    responses={200: MessageSearchOut},
    errors=(404,),
)
async def search_messages(call: Call) -> Response:
    query = call.query(MessageSearchQuery)
    page = await call.chat.search.messages(
        call.user_id,
        query.q,
        conversation_id=query.conversation_id,
        limit=query.limit,
        cursor=query.cursor,
    )
    return json_response(
        {"messages": [message_json(m) for m in page.items], "nextCursor": page.next_cursor}
    )
