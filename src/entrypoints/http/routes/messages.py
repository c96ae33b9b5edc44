"""Messages: history, send (idempotent with clientMsgId), edit, delete; seed-style direct routes."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import message_json
from chatcore.errors import ValidationFailed
from chatcore.models import AppendResult, History
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import JsonResponse, json_response
from entrypoints.http.schemas import (
    ConversationHistoryQuery,
    DirectSendBody,
    EditMessageBody,
    HistoryOut,
    HistoryQuery,
    MessageOut,
    SendMessageBody,
)

api = Api("/api")
TAG = "messages"
SEND_RESPONSES = {201: MessageOut, 200: MessageOut}


def history_response(history: History) -> JsonResponse:
    return json_response(
        {"messages": [message_json(m) for m in history.messages], "hasMore": history.has_more}
    )


def sent_response(result: AppendResult) -> JsonResponse:
    # 201 for a new message; 200 when a clientMsgId replay returns the stored one.
    return json_response(message_json(result.message), status=201 if result.created else 200)


@api.route(
    "GET",
    "/conversations/{id}/messages",
    summary="A page of messages ascending by seq: the newest, or before/after a seq "
    "(with threadId: that thread's replies)",
    tag=TAG,
    query=ConversationHistoryQuery,
    responses={200: HistoryOut},
    errors=(404,),
)
async def get_history(call: Call) -> Response:
    q = call.query(ConversationHistoryQuery)
    window = {"before": q.before, "after": q.after, "limit": q.limit}
    messages, user_id, conversation_id = call.chat.messages, call.user_id, call.path("id")
    if q.thread_id is None:
        return history_response(await messages.history(user_id, conversation_id, **window))
    return history_response(await messages.thread(user_id, conversation_id, q.thread_id, **window))


@api.route(
    "POST",
    "/conversations/{id}/messages",
    summary="Send a message (201; 200 when clientMsgId replays a stored one)",
    tag=TAG,
    body=SendMessageBody,
    responses=SEND_RESPONSES,
    errors=(404,),
    limit="send",
)
async def send_message(call: Call) -> Response:
    body = call.body(SendMessageBody)
    result = await call.chat.messages.send(
        call.user_id, call.path("id"), body.body, body.client_msg_id, body.thread_id
    )
    return sent_response(result)


@api.route(
    "PATCH",
    "/conversations/{id}/messages/{messageId}",
    summary="Edit a message (its sender only)",
    tag=TAG,
    body=EditMessageBody,
    responses={200: MessageOut},
    errors=(403, 404, 409),
)
async def edit_message(call: Call) -> Response:
    message = await call.chat.messages.edit(
        call.user_id, call.path("id"), call.path("messageId"), call.body(EditMessageBody).body
    )
    return json_response(message_json(message))


@api.route(
    "DELETE",
    "/conversations/{id}/messages/{messageId}",
    summary="Delete a message (its sender only): the body empties, id and seq stay",
    tag=TAG,
    responses={200: MessageOut},
    errors=(403, 404),
)
async def delete_message(call: Call) -> Response:
    message = await call.chat.messages.delete(call.user_id, call.path("id"), call.path("messageId"))
    return json_response(message_json(message))


@api.route(
    "GET",
    "/messages/{receiverId}",
    summary="History of the direct conversation with a user (seed-compatible)",
    tag=TAG,
    query=HistoryQuery,
    responses={200: HistoryOut},
    errors=(404,),
)
async def get_direct_history(call: Call) -> Response:
    query = call.query(HistoryQuery)
    history = await call.chat.messages.history_direct(
        call.user_id,
        call.path("receiverId"),
        before=query.before,
        after=query.after,
        limit=query.limit,
    )
    return history_response(history)


@api.route(
    "POST",
    "/messages/{receiverId}",
    summary="Send to the direct conversation with a user (seed-compatible)",
    tag=TAG,
    body=DirectSendBody,
    responses=SEND_RESPONSES,
    errors=(404,),
    limit="send",
)
async def send_direct(call: Call) -> Response:
    body = call.body(DirectSendBody)
    receiver_id = call.path("receiverId")
    if body.receiver_id is not None and body.receiver_id != receiver_id:
        raise ValidationFailed(
            "receiverId in the body differs from the path", details={"field": "receiverId"}
        )
    result = await call.chat.messages.send_direct(
        call.user_id, receiver_id, body.body, body.client_msg_id, body.thread_id
    )
    return sent_response(result)
