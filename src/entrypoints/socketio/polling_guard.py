"""Oversized Engine.IO long-polling POSTs: answered 413 at once, and the session closed.

python-engineio refuses a POST over ``max_http_buffer_size`` by closing the session
with ``eio.disconnect()``, which waits until the client has fetched the CLOSE
packet, so the POST is never answered and its connection hangs on (a client that
sent 1.5 MB and left keeps it open). Here such a POST is answered before
python-engineio sees it: 413 ``payload_too_large`` in the contract's envelope,
``Connection: close``, and the session is closed without waiting.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

import orjson

from entrypoints.http.middleware import content_length

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


def oversized_poll(scope: Scope, max_bytes: int) -> bool:
    """Whether ``scope`` is a long-polling POST declaring more than ``max_bytes``."""
    if scope["type"] != "http" or scope.get("method") != "POST":
        return False
    length = content_length(scope)
    return length is not None and length > max_bytes


async def refuse_oversized_poll(scope: Scope, send: Any, eio: Any, max_bytes: int) -> None:
    """Answer 413 and close the Engine.IO session named in the query (if any)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    sid = (query.get("sid") or [""])[0]
    socket = eio.sockets.get(sid)
    if socket is not None:
        logger.warning("closed Engine.IO session %s: a POST of more than %d bytes", sid, max_bytes)
        await socket.close(wait=False, abort=True)
        eio.sockets.pop(sid, None)
    body = orjson.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"a long-polling POST is at most {max_bytes} bytes",
                "details": {"maxBytes": max_bytes},
            }
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
