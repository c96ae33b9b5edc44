"""Conversations: list, create groups, open direct ones, members, read receipts."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import conversation_json, receipt_json
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import json_response, no_content
from entrypoints.http.schemas import (
    AddMemberBody,
    ConversationOut,
    ConversationPageOut,
    CreateGroupBody,
    PageQuery,
    ReadBody,
    ReadReceiptOut,
    ReceiptsOut,
)

api = Api("/api")
TAG = "conversations"


@api.route(
    "GET",
    "/conversations",
    summary="The caller's conversations, most recent activity first",
    tag=TAG,
    query=PageQuery,
    responses={200: ConversationPageOut},
)
async def list_conversations(call: Call) -> Response:
    query = call.query(PageQuery)
    page = await call.chat.conversations.list_for_user(
        call.user_id, limit=query.limit, cursor=query.cursor
    )
    return json_response(
        {
            "conversations": [conversation_json(v) for v in page.items],
            "nextCursor": page.next_cursor,
        }
    )


@api.route(
    "POST",
    "/conversations",
    summary="Create a group (the creator is a member)",
    tag=TAG,
    body=CreateGroupBody,
    responses={201: ConversationOut},
    errors=(404,),
)
async def create_group(call: Call) -> Response:
    body = call.body(CreateGroupBody)
    view = await call.chat.conversations.create_group(call.user_id, body.name, body.member_ids)
    return json_response(conversation_json(view), status=201)


@api.route(
    "POST",
    "/conversations/direct/{userId}",
    summary="Get or create the direct conversation with a user",
    tag=TAG,
    responses={200: ConversationOut},
    errors=(404, 422),
)
async def open_direct(call: Call) -> Response:
    view = await call.chat.conversations.open_direct(call.user_id, call.path("userId"))
    return json_response(conversation_json(view))


@api.route(
    "GET",
    "/conversations/{id}",
    summary="A conversation the caller is a member of",
    tag=TAG,
    responses={200: ConversationOut},
    errors=(404,),
)
async def get_conversation(call: Call) -> Response:
    view = await call.chat.conversations.get(call.user_id, call.path("id"))
    return json_response(conversation_json(view))


@api.route(
    "POST",
    "/conversations/{id}/members",
    summary="Add a member to a group",
    tag=TAG,
    body=AddMemberBody,
    responses={200: ConversationOut},
    errors=(403, 404),
)
async def add_member(call: Call) -> Response:
    body = call.body(AddMemberBody)
    view = await call.chat.conversations.add_member(call.user_id, call.path("id"), body.user_id)
    return json_response(conversation_json(view))


@api.route(
    "DELETE",
    "/conversations/{id}/members/{userId}",
    summary="Leave a group (yourself) or remove a member (the group's creator only)",
    tag=TAG,
    responses={204: None},
    errors=(403, 404),
)
async def remove_member(call: Call) -> Response:
    await call.chat.conversations.remove_member(call.user_id, call.path("id"), call.path("userId"))
    return no_content()


@api.route(
    "POST",
    "/conversations/{id}/read",
    summary="Move the caller's read pointer forward (never back)",
    tag=TAG,
    body=ReadBody,
    responses={200: ReadReceiptOut},
    errors=(404,),
)
async def mark_read(call: Call) -> Response:
    up_to_seq = call.body(ReadBody).up_to_seq
    receipt = await call.chat.receipts.mark_read(call.user_id, call.path("id"), up_to_seq)
    return json_response(receipt_json(receipt))


@api.route(
    "GET",
    "/conversations/{id}/receipts",
    summary="Every member's read pointer",
    tag=TAG,
    responses={200: ReceiptsOut},
    errors=(404,),
)
async def list_receipts(call: Call) -> Response:
    receipts = await call.chat.receipts.list_for_conversation(call.user_id, call.path("id"))
    return json_response({"receipts": [receipt_json(r) for r in receipts]})
