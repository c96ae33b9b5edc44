"""Prometheus metrics of one app instance, in a registry of its own.

A registry per app (not the process-global one) lets tests build many apps in
one process. HTTP requests are counted by the request middleware, messages by
:class:`CountingNotifier` (so every path that stores a message counts, HTTP
or Socket.IO); the Socket.IO handlers call :meth:`Metrics.socket_connected`
and :meth:`Metrics.socket_disconnected`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from chatcore.models import ConversationView, Message, ReadReceipt
from chatcore.ports import Notifier

# Route label of requests that matched no route: one series, whatever the path.
UNMATCHED_ROUTE = "<unmatched>"
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The instruments of one app; ``render()`` is what ``GET /metrics`` serves."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "chatcore_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "chatcore_http_request_duration_seconds",
            "HTTP request latency by method, route template and status.",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sockets = Gauge(
            "chatcore_sockets_connected",
            "Socket.IO connections open on this process.",
            registry=self.registry,
        )
        self.messages = Counter(
            "chatcore_messages_sent",
            "Messages stored (idempotent replays not counted).",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "chatcore_rate_limited",
            "Actions refused for a rate limit, by limit and action (route or event).",
            ["limit", "action"],
            registry=self.registry,
        )
        self.rate_limiter_fallbacks = Counter(
            "chatcore_rate_limiter_fallbacks",
            "Rate-limit decisions taken in this process because Redis did not answer.",
            registry=self.registry,
        )

    def refused(self, limit: str, action: str) -> None:
        """An action refused for a rate limit (``limit``: send, login, ...)."""
        self.rate_limited.labels(limit, action).inc()

    def rate_limiter_fell_back(self) -> None:
        self.rate_limiter_fallbacks.inc()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.http_requests.labels(*labels).inc()
        self.http_latency.labels(*labels).observe(seconds)

    def socket_connected(self) -> None:
        self.sockets.inc()

    def socket_disconnected(self) -> None:
        self.sockets.dec()

    def message_sent(self) -> None:
        self.messages.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        return generate_latest(self.registry)


class CountingNotifier(Notifier):
    """Counts stored messages on their way to the real notifier.

    The domain calls ``message_created`` exactly once per newly stored message
    (never on an idempotent replay), whatever the path that stored it.
    """

    def __init__(self, inner: Notifier, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def message_created(self, message: Message, recipient_ids: Sequence[str]) -> None:
        self._metrics.message_sent()
        await self._inner.message_created(message, recipient_ids)

    async def message_updated(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._inner.message_updated(message, recipient_ids)

    async def message_deleted(self, message: Message, recipient_ids: Sequence[str]) -> None:
        await self._inner.message_deleted(message, recipient_ids)

    async def message_read(self, receipt: ReadReceipt, recipient_ids: Sequence[str]) -> None:
        await self._inner.message_read(receipt, recipient_ids)

    async def typing(
        self, conversation_id: str, user_id: str, is_typing: bool, recipient_ids: Sequence[str]
    ) -> None:
        await self._inner.typing(conversation_id, user_id, is_typing, recipient_ids)

    async def user_online(self, user_id: str, recipient_ids: Sequence[str]) -> None:
        await self._inner.user_online(user_id, recipient_ids)

    async def user_offline(
        self, user_id: str, last_seen_at: datetime, recipient_ids: Sequence[str]
    ) -> None:
        await self._inner.user_offline(user_id, last_seen_at, recipient_ids)

    async def conversation_updated(self, views: Sequence[ConversationView]) -> None:
        await self._inner.conversation_updated(views)
