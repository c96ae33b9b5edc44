"""Users, tokens and conversations for the load, made before it starts.

On chatcore they are real: users registered over HTTP (``POST /api/auth/register``),
direct conversations opened (``POST /api/conversations/direct/{userId}``), history
seeded with ``POST /api/conversations/{id}/messages``. The bare servers trust any
token, so there a token is just the user id and conversation ids are made up.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

PASSWORD = "bench-password-1"


@dataclass(frozen=True)
class Pair:
    """A sender and a receiver sharing one direct conversation."""

    sender_token: str
    receiver_token: str
    receiver_id: str
    conversation_id: str

    def loadgen(self) -> dict[str, str]:
        return {
            "senderToken": self.sender_token,
            "receiverToken": self.receiver_token,
            "receiverId": self.receiver_id,
            "conversationId": self.conversation_id,
        }


class Fixtures:
    """Makes users and conversations on one server; ``chatcore`` says whether they are real."""

    def __init__(self, base_url: str, *, chatcore: bool) -> None:
        self.base_url = base_url
        self.chatcore = chatcore
        self._run = secrets.token_hex(3)
        self._count = 0

    async def users(self, n: int, concurrency: int = 4) -> list[tuple[str, str]]:
        """``n`` new users as (user id, access token)."""
        names = [self._name() for _ in range(n)]
        if not self.chatcore:
            return [(name, name) for name in names]
        limit = asyncio.Semaphore(concurrency)
        async with self._client() as client:

            async def register(name: str) -> tuple[str, str]:
                async with limit:
                    body = {"username": name, "password": PASSWORD}
                    data = await _call(client, "POST", "/api/auth/register", json=body)
                    return data["user"]["id"], data["accessToken"]

            return list(await asyncio.gather(*(register(name) for name in names)))

    async def pairs(self, n: int) -> list[Pair]:
        """``n`` sender/receiver pairs, each with its own direct conversation."""
        users = await self.users(2 * n)
        senders, receivers = users[0::2], users[1::2]
        if not self.chatcore:
            return [
                Pair(s_tok, r_tok, r_id, f"c-{s_id}-{r_id}")
                for (s_id, s_tok), (r_id, r_tok) in zip(senders, receivers, strict=True)
            ]
        async with self._client() as client:

            async def open_direct(sender: tuple[str, str], receiver: tuple[str, str]) -> Pair:
                path = f"/api/conversations/direct/{receiver[0]}"
                data = await _call(client, "POST", path, token=sender[1])
                return Pair(sender[1], receiver[1], receiver[0], data["id"])

            return list(
                await asyncio.gather(*map(open_direct, senders, receivers))  # small n
            )

    async def seed_history(self, pair: Pair, count: int) -> None:
        """Post ``count`` messages from the pair's sender to its conversation."""
        path = f"/api/conversations/{pair.conversation_id}/messages"
        async with self._client() as client:
            for i in range(count):
                await _call(client, "POST", path, token=pair.sender_token, json={"body": f"m{i}"})

    def _name(self) -> str:
        self._count += 1
        return f"b{self._run}_{self._count}"

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, *, token: str | None = None, **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.request(method, path, headers=headers, **kw)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json()
