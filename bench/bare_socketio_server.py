"""The bare python-socketio server of `make bench`: the ceiling of chatcore's stack.

Same stack as chatcore (uvicorn + python-socketio ASGI + orjson) and the same
fan-out, with nothing else: handshake auth ``{token: <userId>}`` is trusted as
is and joins room ``user:<userId>``; ``sendMessage {conversationId, receiverId,
body, clientMsgId?}`` gets a per-conversation seq from a dict, a newMessage
emit to both users' rooms and the ack ``{ok: true, message}``.

Run: ``python -m bench.bare_socketio_server --port 8001 [--plain]``
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import socketio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bench.servers.serve import add_server_args, run


class OrjsonText:
    """orjson behind the ``json`` interface python-socketio expects (``str`` out)."""

    @staticmethod
    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(data: str | bytes, *args: Any, **kwargs: Any) -> Any:
        return orjson.loads(data)


def now_iso() -> str:
    at = datetime.now(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def build_app() -> socketio.ASGIApp:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        json=OrjsonText,
        cors_allowed_origins=[],
        logger=False,
        engineio_logger=False,
    )
    users: dict[str, str] = {}  # sid -> userId
    seqs: dict[str, int] = {}  # conversationId -> last seq

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise ConnectionRefusedError(
                "unauthorized", {"code": "unauthorized", "message": "missing token"}
            )
        users[sid] = token
        await sio.enter_room(sid, f"user:{token}")

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        users.pop(sid, None)

    @sio.on("sendMessage")
    async def send_message(sid: str, data: Any) -> dict[str, Any]:
        sender = users[sid]
        conversation_id = data.get("conversationId") if isinstance(data, dict) else None
        body = data.get("body") if isinstance(data, dict) else None
        if not isinstance(conversation_id, str) or not isinstance(body, str) or not body.strip():
            return {"ok": False, "error": {"code": "validation_error", "message": "bad payload"}}
        seq = seqs.get(conversation_id, 0) + 1
        seqs[conversation_id] = seq
        message = {
            "id": uuid.uuid4().hex,
            "conversationId": conversation_id,
            "seq": seq,
            "senderId": sender,
            "body": body.strip(),
            "clientMsgId": data.get("clientMsgId"),
            "createdAt": now_iso(),
            "editedAt": None,
            "deletedAt": None,
        }
        rooms = [f"user:{sender}", f"user:{data.get('receiverId')}"]
        await sio.emit("newMessage", message, to=rooms)
        return {"ok": True, "message": message}

    async def healthz(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    http = Starlette(routes=[Route("/healthz", healthz)])
    return socketio.ASGIApp(sio, other_asgi_app=http)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_args(parser, ws="websockets-sansio")
    run(build_app(), parser.parse_args())


if __name__ == "__main__":
    main()
