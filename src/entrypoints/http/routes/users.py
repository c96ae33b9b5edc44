"""Looking users up: oneself, by id, and by name prefix."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import user_json
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import json_response
from entrypoints.http.schemas import UserOut, UserPageOut, UserSearchQuery

api = Api("/api")
TAG = "users"


@api.route("GET", "/users/me", summary="The caller", tag=TAG, responses={200: UserOut})
async def get_me(call: Call) -> Response:
    return json_response(user_json(await call.chat.users.me(call.user_id)))


@api.route(
    "GET",
    "/users",
    summary="Other users whose username or display name starts with `search`",
    tag=TAG,
    query=UserSearchQuery,
    responses={200: UserPageOut},
)
async def search_users(call: Call) -> Response:
    query = call.query(UserSearchQuery)
    page = await call.chat.users.search(
        call.user_id, search=query.search, limit=query.limit, cursor=query.cursor
    )
    return json_response(
        {"users": [user_json(u) for u in page.items], "nextCursor": page.next_cursor}
    )


@api.route(
    "GET",
    "/users/{userId}",
    summary="A user by id",
    tag=TAG,
    responses={200: UserOut},
    errors=(404,),
)
async def get_user(call: Call) -> Response:
    return json_response(user_json(await call.chat.users.get(call.path("userId"))))
