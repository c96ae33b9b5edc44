"""Fixtures of the domain unit tests: a fresh in-memory Chat per test, and users on it.

``yielding_storage`` wraps every in-memory repository so that each call first
yields to the event loop. The in-memory repositories never await in the middle
of a change, so without it ``asyncio.gather`` would run the services one after
the other and concurrency tests could not fail; with it, service calls really
interleave between repository calls (as they do against MongoDB).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from unitkit import PASSWORD

from chatcore.chat import Storage
from chatcore.models import User
from chatcore.testing import ChatKit, in_memory_chat, in_memory_storage


class _Yielding:
    """Proxy of a repository: every coroutine method yields once before running."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        async def yielding(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await attr(*args, **kwargs)

        return yielding


def _yielding_storage() -> Storage:
    inner = in_memory_storage()
    return Storage(
        users=_Yielding(inner.users),  # type: ignore[arg-type]
        conversations=_Yielding(inner.conversations),  # type: ignore[arg-type]
        messages=_Yielding(inner.messages),  # type: ignore[arg-type]
        receipts=_Yielding(inner.receipts),  # type: ignore[arg-type]
        refresh_tokens=_Yielding(inner.refresh_tokens),  # type: ignore[arg-type]
        search=_Yielding(inner.search),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def yielding_storage() -> Callable[[], Storage]:
    """A factory (stateless, so usable from hypothesis tests) of interleaving storages."""
    return _yielding_storage


@pytest.fixture
def kit() -> ChatKit:
    return in_memory_chat()


@pytest.fixture
def yielding_kit() -> ChatKit:
    return in_memory_chat(storage=_yielding_storage())


Register = Callable[..., Awaitable[User]]


@pytest.fixture
def register(kit: ChatKit) -> Register:
    """``await register("name", display_name=None)``: a new user on ``kit``."""

    async def _register(username: str, display_name: str | None = None) -> User:
        session = await kit.chat.auth.register(username, PASSWORD, display_name)
        return session.user

    return _register


@pytest.fixture
async def alice(register: Register) -> User:
    return await register("alice", "Alice Liddell")


@pytest.fixture
async def bob(register: Register) -> User:
    return await register("bob", "Bob Builder")


@pytest.fixture
async def carol(register: Register) -> User:
    return await register("carol", "Carol Danvers")


@pytest.fixture
async def dave(register: Register) -> User:
    return await register("dave", "Dave Bowman")


@pytest.fixture
async def dm(kit: ChatKit, alice: User, bob: User) -> str:
    view = await kit.chat.conversations.open_direct(alice.id, bob.id)
    kit.notifier.clear()
    return view.conversation.id


@pytest.fixture
async def group(kit: ChatKit, alice: User, bob: User, carol: User) -> str:
    view = await kit.chat.conversations.create_group(alice.id, "Trio", [bob.id, carol.id])
    kit.notifier.clear()
    return view.conversation.id
