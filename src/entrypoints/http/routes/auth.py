"""Register, log in, refresh and log out."""

from __future__ import annotations

from starlette.responses import Response

from adapters.wire import JsonDict, user_json
from chatcore.models import AuthSession
from entrypoints.http.endpoints import Api, Call
from entrypoints.http.responses import json_response, no_content
from entrypoints.http.schemas import AuthSessionOut, LoginBody, RefreshTokenBody, RegisterBody

api = Api("/api")
TAG = "auth"


def session_json(session: AuthSession) -> JsonDict:
    return {
        "user": user_json(session.user),
        "accessToken": session.access_token,
        "refreshToken": session.refresh_token,
        "expiresIn": session.expires_in,
    }


@api.route(
    "POST",
    "/auth/register",
    summary="Create a user and log in",
    tag=TAG,
    auth=False,
    body=RegisterBody,
    responses={201: AuthSessionOut},
    errors=(409,),
    limit="register",
)
async def register(call: Call) -> Response:
    body = call.body(RegisterBody)
    session = await call.chat.auth.register(
        body.username, body.password, body.display_name, client_address=call.client_address
    )
    return json_response(session_json(session), status=201)


@api.route(
    "POST",
    "/auth/login",
    summary="Log in with username and password",
    tag=TAG,
    auth=False,
    body=LoginBody,
    responses={200: AuthSessionOut},
    errors=(401,),
    limit="login",
)
async def login(call: Call) -> Response:
    body = call.body(LoginBody)
    session = await call.chat.auth.login(
        body.username, body.password, client_address=call.client_address
    )
    return json_response(session_json(session))


@api.route(
    "POST",
    "/auth/refresh",
    summary="Trade a refresh token for a new session (the old refresh token stops working)",
    tag=TAG,
    auth=False,
    body=RefreshTokenBody,
    responses={200: AuthSessionOut},
    errors=(401,),
)
async def refresh(call: Call) -> Response:
    body = call.body(RefreshTokenBody)
    return json_response(session_json(await call.chat.auth.refresh(body.refresh_token)))


@api.route(
    "POST",
    "/auth/logout",
    summary="Revoke a refresh token",
    tag=TAG,
    body=RefreshTokenBody,
    responses={204: None},
)
async def logout(call: Call) -> Response:
    await call.chat.auth.logout(call.user_id, call.body(RefreshTokenBody).refresh_token)
    return no_content()
