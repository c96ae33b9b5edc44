"""Interop with the JavaScript socket.io-client (4.8, what browsers run), via tests/js/client.mjs.

Skipped, with the reason shown, where Node or ``tests/js/node_modules`` is missing
(``make js`` or ``cd tests/js && npm ci`` installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from livechat import TIMEOUT, LiveChat, User

from support.wire_keys import MESSAGE_KEYS

JS_DIR = Path(__file__).resolve().parent.parent / "js"
CLIENT = JS_DIR / "client.mjs"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (JS_DIR / "node_modules" / "socket.io-client").is_dir(),
        reason="socket.io-client is not installed: run `cd tests/js && npm ci`",
    ),
]


class JsClient:
    """One ``node client.mjs`` process: commands on stdin, what it saw on stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._queues: defaultdict[tuple[str, Any], asyncio.Queue[dict[str, Any]]] = defaultdict(
            asyncio.Queue
        )
        self._refs = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            seen = json.loads(line)
            kind = seen["type"]
            key = seen.get("event") if kind == "event" else seen.get("ref")
            self._queues[(kind, key)].put_nowait(seen)

    async def next(self, kind: str, key: Any = None) -> dict[str, Any]:
        """The next line of ``kind`` (for "event" the event name, for "ack" the ref)."""
        try:
            return await asyncio.wait_for(self._queues[(kind, key)].get(), TIMEOUT)
        except TimeoutError:
            stderr = await self._stderr()
            raise AssertionError(f"node client: no {kind} {key or ''}; stderr: {stderr}") from None

    async def event(self, name: str) -> Any:
        args = (await self.next("event", name))["args"]
        assert len(args) == 1, args
        return args[0]

    def send(self, event: str, *args: Any) -> int:
        """Emit ``event`` with an ack callback; returns the ref its ack will carry."""
        ref = next(self._refs)
        self._write({"op": "emit", "event": event, "args": list(args), "ref": ref})
        return ref

    async def call(self, event: str, *args: Any) -> Any:
        """Emit and return the ack's (single) argument."""
        ack = await self.next("ack", self.send(event, *args))
        assert len(ack["args"]) == 1, ack
        return ack["args"][0]

    def _write(self, command: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command).encode() + b"\n")

    async def _stderr(self) -> str:
        if self._process.returncode is None or self._process.stderr is None:
            return "(still running)"
        return (await self._process.stderr.read()).decode(errors="replace")

    async def close(self) -> None:
        if self._process.returncode is None:
            assert self._process.stdin is not None
            with contextlib.suppress(ConnectionError):
                self._write({"op": "close"})
                self._process.stdin.close()
            try:
                await asyncio.wait_for(self._process.wait(), TIMEOUT)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def js_client(url: str, **options: Any) -> AsyncIterator[JsClient]:
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(CLIENT),
        url,
        json.dumps(options),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    client = JsClient(process)
    try:
        yield client
    finally:
        await client.close()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_js_client_connects_sends_and_receives(live: LiveChat, transport: str) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    python_bob = await live.connect(bob)

    async with js_client(live.url, auth={"token": alice.token}, transports=[transport]) as js_alice:
        connected = await js_alice.next("connect")
        assert connected["id"]
        assert await python_bob.next("userOnline") == {"userId": alice.id}

        ack = await js_alice.call(
            "sendMessage", {"conversationId": cid, "body": "from JS", "clientMsgId": "js-1"}
        )
        assert set(ack) == {"ok", "message"}
        assert ack["ok"] is True
        assert set(ack["message"]) == MESSAGE_KEYS
        assert ack["message"]["body"] == "from JS"
        assert ack["message"]["seq"] == 1
        assert await python_bob.next("newMessage") == ack["message"]
        assert await js_alice.event("newMessage") == ack["message"]

        reply = await python_bob.call("sendMessage", {"conversationId": cid, "body": "from Py"})
        assert await js_alice.event("newMessage") == reply["message"]

        typing = await python_bob.call("typing", {"conversationId": cid, "isTyping": True})
        assert typing == {"ok": True}
        assert await js_alice.event("typing") == {
            "conversationId": cid,
            "userId": bob.id,
            "isTyping": True,
        }

        read = await js_alice.call("readMessage", {"conversationId": cid, "upToSeq": 2})
        assert read["ok"] is True
        assert read["receipt"]["lastReadSeq"] == 2
        assert await python_bob.next("messageRead") == read["receipt"]

        synced = await js_alice.call("sync", {"since": {cid: 0}})
        assert synced == {"ok": True, "messages": [ack["message"], reply["message"]]}

        invalid = await js_alice.call("sendMessage", {"conversationId": cid, "body": 42})
        assert set(invalid) == {"ok", "error"}
        assert invalid["ok"] is False
        assert set(invalid["error"]) == {"code", "message"}
        assert invalid["error"]["code"] == "validation_error"

    offline = await python_bob.next("userOffline")
    assert offline["userId"] == alice.id
    assert isinstance(offline["lastSeenAt"], str)


def _expired(user: User, secret: str) -> str:
    now = int(time.time())
    claims = {"sub": user.id, "iat": now - 3600, "exp": now - 60, "jti": "x", "typ": "access"}
    return jwt.encode(claims, secret, "HS256")


async def test_js_client_sees_refusals_as_connect_error_message_and_data(
    live: LiveChat,
) -> None:
    alice = await live.register("alice")
    header, payload, signature = alice.token.split(".")
    tampered = f"{header}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    cases: dict[str, dict[str, Any]] = {
        "missing": {},
        "expired": {"auth": {"token": _expired(alice, live.jwt_secret)}},
        "tampered": {"auth": {"token": tampered}},
        "tampered header": {"extraHeaders": {"Authorization": f"Bearer {tampered}"}},
    }

    for name, options in cases.items():
        async with js_client(live.url, transports=["websocket"], **options) as js:
            refused = await js.next("connect_error")
        assert refused["message"] == "unauthorized", name
        data = refused["data"]
        assert set(data) == {"code", "message"}, name
        assert data["code"] == "unauthorized", name
        assert isinstance(data["message"], str), name
        assert data["message"], name
    assert live.socket_count(alice) == 0


async def test_js_client_authenticates_with_the_authorization_header(live: LiveChat) -> None:
    alice = await live.register("alice")

    async with js_client(
        live.url, transports=["polling"], extraHeaders={"Authorization": f"Bearer {alice.token}"}
    ) as js:
        await js.next("connect")
        assert live.socket_count(alice) == 1


async def test_js_polling_client_bursts_more_than_sixteen_emits(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    total = 40

    async with js_client(live.url, auth={"token": alice.token}, transports=["polling"]) as js:
        await js.next("connect")
        # Written in one go: engine.io-client sends what is buffered in one POST.
        refs = [
            js.send("sendMessage", {"conversationId": cid, "body": f"m{n}"}) for n in range(total)
        ]
        acks = [(await js.next("ack", ref))["args"][0] for ref in refs]
        received = [(await js.event("newMessage"))["seq"] for _ in range(total)]

    assert all(a["ok"] for a in acks), acks
    assert sorted(a["message"]["seq"] for a in acks) == list(range(1, total + 1))
    assert sorted(received) == list(range(1, total + 1))


async def test_js_client_reacts_and_replies_in_a_thread(live: LiveChat) -> None:
    alice, bob = await live.users("alice", "bob")
    cid = (await live.group(alice, bob))["id"]
    python_bob = await live.connect(bob)
    root = (await python_bob.call("sendMessage", {"conversationId": cid, "body": "party?"}))[
        "message"
    ]
    assert await python_bob.next("newMessage") == root  # the sender's own socket hears it

    async with js_client(live.url, auth={"token": alice.token}, transports=["websocket"]) as js:
        await js.next("connect")
        reaction = {"conversationId": cid, "messageId": root["id"], "emoji": "🎉", "add": True}

        added = await js.call("react", reaction)
        assert added["ok"] is True
        assert added["message"]["reactions"] == [{"emoji": "🎉", "userIds": [alice.id]}]
        assert await python_bob.next("messageUpdated") == added["message"]
        assert await js.event("messageUpdated") == added["message"]

        removed = await js.call("react", {**reaction, "add": False})
        assert removed["message"]["reactions"] == []
        refused = await js.call("react", {**reaction, "emoji": "x" * 33})
        assert refused["ok"] is False
        assert refused["error"]["code"] == "validation_error"

        reply = await js.call(
            "sendMessage", {"conversationId": cid, "body": "yes!", "threadId": root["id"]}
        )
        assert reply["message"]["threadId"] == root["id"]
        assert await python_bob.next("newMessage") == reply["message"]
        assert (await python_bob.next("messageUpdated"))["reactions"] == []
        root_after = await python_bob.next("messageUpdated")
        assert root_after["thread"]["replyCount"] == 1
