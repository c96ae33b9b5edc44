"""What the running app resolved at startup, shared by the HTTP routes and socket handlers.

Handlers are registered when the app is built (no I/O then); the Chat they
call is only assembled in the lifespan, once storage is open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from attrs import define, field

from chatcore.chat import Chat
from chatcore.errors import Unavailable
from entrypoints.client_address import Network
from entrypoints.metrics import Metrics

# Raises chatcore.errors.Unavailable when the store does not answer.
ReadinessProbe = Callable[[], Awaitable[None]]


@define
class InFlight:
    """How many socket events are being handled right now (a drain waits for 0).

    A plain counter: the hot path pays an increment and a decrement, no await.
    """

    count: int = 0


@define
class Runtime:
    chat_instance: Chat | None = None
    metrics: Metrics = field(factory=Metrics)
    # None: nothing external to check (in-memory storage).
    readiness_probe: ReadinessProbe | None = None
    # Set by a graceful shutdown (entrypoints/drain.py): new sockets are refused and
    # new socket events answered `unavailable`; those already running finish.
    draining: bool = False
    in_flight: InFlight = field(factory=InFlight)
    # Proxies whose X-Forwarded-For names the client (CHATCORE_TRUSTED_PROXIES).
    trusted_proxies: tuple[Network, ...] = ()
    # Seconds an HTTP request's storage calls may take together
    # (CHATCORE_MONGODB_TIMEOUT_MS); None: unbounded.
    storage_timeout: float | None = None

    @property
    def chat(self) -> Chat:
        if self.chat_instance is None:
            raise Unavailable("the server is starting or stopping")
        return self.chat_instance
