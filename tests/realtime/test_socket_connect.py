"""Handshake authentication, the user room and multi-tab presence."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import socketio
from livechat import TIMEOUT, LiveChat, SocketClient, User

from support.app import on_every_backend

UNAUTHORIZED = "unauthorized"


def _claims(user: User, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": user.id,
        "iat": now,
        "exp": now + 600,
        "jti": "test-token",
        "typ": "access",
        **overrides,
    }


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


async def _refused(live: LiveChat, **connect: Any) -> Any:
    client = SocketClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live.url, **connect)
    assert not client.sio.connected
    return client.connect_error


async def test_a_valid_token_in_auth_or_in_the_authorization_header_connects(
    live: LiveChat,
) -> None:
    alice = await live.register("alice")

    by_auth = await live.connect(alice)
    by_header = SocketClient(["polling"])
    live.clients.append(by_header)
    await by_header.connect(live.url, headers={"Authorization": f"Bearer {alice.token}"})

    assert by_auth.sio.connected
    assert by_header.sio.connected
    await live.wait_socket_count(alice, 2)


async def test_refused_connections_carry_unauthorized_connect_error_data(
    live: LiveChat,
) -> None:
    alice = await live.register("alice")
    secret = live.jwt_secret
    expired = jwt.encode(
        _claims(alice, iat=int(time.time()) - 3600, exp=int(time.time()) - 60), secret, "HS256"
    )
    other_algorithm = jwt.encode(_claims(alice), secret, "HS512")
    unsigned = jwt.encode(_claims(alice), None, "none")
    wrong_secret = jwt.encode(_claims(alice), "y" * 64, "HS256")
    cases: dict[str, dict[str, Any]] = {
        "missing": {},
        "empty": {"token": ""},
        "garbage": {"token": "not-a-jwt"},
        "expired": {"token": expired},
        "tampered": {"token": _tampered(alice.token)},
        "wrong algorithm": {"token": other_algorithm},
        "alg none": {"token": unsigned},
        "wrong secret": {"token": wrong_secret},
        "bad header": {"headers": {"Authorization": f"Bearer {_tampered(alice.token)}"}},
        "not bearer": {"headers": {"Authorization": f"Basic {alice.token}"}},
    }

    for name, connect in cases.items():
        # python-socketio hands connect_error the CONNECT_ERROR packet's data:
        # {"message", "data"}, what socket.io-client exposes as err.message / err.data.
        packet = await _refused(live, **connect)
        assert set(packet) == {"message", "data"}, name
        assert packet["message"] == UNAUTHORIZED, name
        data = packet["data"]
        assert set(data) == {"code", "message"}, name
        assert data["code"] == UNAUTHORIZED, name
        assert isinstance(data["message"], str), name
        assert data["message"], name
    assert live.socket_count(alice) == 0


async def test_a_non_string_token_is_refused(live: LiveChat) -> None:
    client = SocketClient()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.sio.connect(
            live.url, auth={"token": {"$ne": None}}, transports=["websocket"], wait_timeout=TIMEOUT
        )
    assert client.connect_error["data"]["code"] == UNAUTHORIZED


async def test_every_socket_joins_its_users_room(live: LiveChat) -> None:
    alice = await live.register("alice")
    first = await live.connect(alice)
    second = await live.connect(alice, transports=["polling"])

    for client in (first, second):
        assert f"user:{alice.id}" in live.sio.rooms(client.sid)
    assert live.socket_count(alice) == 2


@on_every_backend
async def test_online_on_the_first_socket_offline_after_the_last_to_contacts_only(
    live: LiveChat,
) -> None:
    alice, bob, carol = await live.users("alice", "bob", "carol")
    await live.group(alice, bob)
    watcher = await live.connect(alice)
    stranger = await live.connect(carol)

    first_tab = await live.connect(bob)
    assert await watcher.next("userOnline") == {"userId": bob.id}

    second_tab = await live.connect(bob, transports=["polling"])
    await watcher.settle()
    assert watcher.pending("userOnline") == []
    presence = await live.http.get(
        "/api/presence", params={"userIds": bob.id}, headers=live.auth(alice)
    )
    assert presence.json()["presence"][0]["online"] is True

    await first_tab.close()
    await live.wait_socket_count(bob, 1)
    await watcher.settle()
    assert watcher.pending("userOffline") == []

    await second_tab.close()
    offline = await watcher.next("userOffline")
    assert set(offline) == {"userId", "lastSeenAt"}
    assert offline["userId"] == bob.id
    assert offline["lastSeenAt"].endswith("Z")
    presence = await live.http.get(
        "/api/presence", params={"userIds": bob.id}, headers=live.auth(alice)
    )
    assert presence.json()["presence"] == [
        {"userId": bob.id, "online": False, "lastSeenAt": offline["lastSeenAt"]}
    ]
    await stranger.settle()
    assert stranger.pending("userOnline") == []
    assert stranger.pending("userOffline") == []
