"""Who is online."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import presence_json
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import json_response
from entrypoints.http.schemas import PresenceListOut, PresenceQuery

api = Api("/api")


@api.route(
    "GET",
    "/presence",
    summary="Presence of the given users (unknown ids are left out)",
    tag="presence",
    query=PresenceQuery,
    responses={200: PresenceListOut},
)
async def get_presence(call: Call) -> Response:
    found = await call.chat.presence.query(call.query(PresenceQuery).ids())
    return json_response({"presence": [presence_json(p) for p in found]})
