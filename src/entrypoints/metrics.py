"""Prometheus metrics of one app instance, in a registry of its own.

A registry per app (not the process-global one) lets tests build many apps in
one process. HTTP requests are counted by the request middleware; messages by
:meth:`Metrics.event_emitted`, which the Socket.IO notifier calls with every
event it emits (the domain sends ``newMessage`` exactly once per stored message,
never for an idempotent replay, whatever the path: HTTP or Socket.IO); the
Socket.IO handlers call :meth:`Metrics.socket_connected` and
:meth:`Metrics.socket_disconnected`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from adapters.redis.routing import BrokerCounters
from chatcore.events import ServerEvent

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

    def watch_broker(self, counters: BrokerCounters) -> None:
        """Expose what this process exchanged with the Redis broker (routed emits)."""
        for name, doc in (
            ("routed_published", "Routed emits published to other processes (one per target)."),
            ("routed_received", "Routed emits received from other processes."),
            ("routed_messages_published", "Redis messages carrying routed emits, sent."),
            ("routed_messages_received", "Redis messages carrying routed emits, received."),
            ("route_lookups", "Route lookups in Redis (route cache misses)."),
            ("broadcast_published", "Emits published to every process (not user rooms)."),
            ("broadcast_received", "Emits received that were published to every process."),
        ):
            gauge = Gauge(f"chatcore_broker_{name}", doc, registry=self.registry)
            gauge.set_function(lambda name=name: float(getattr(counters, name)))  # type: ignore[misc]

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.http_requests.labels(*labels).inc()
        self.http_latency.labels(*labels).observe(seconds)

    def socket_connected(self) -> None:
        self.sockets.inc()

    def socket_disconnected(self) -> None:
        self.sockets.dec()

    def event_emitted(self, event: str) -> None:
        if event == ServerEvent.NEW_MESSAGE:
            self.messages.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every instrument."""
        return generate_latest(self.registry)
