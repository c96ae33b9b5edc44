"""Redis adapters for running several server processes: shared presence, rate limits and
routed fan-out."""

from adapters.redis.presence import RedisPresenceTracker
from adapters.redis.rate_limiter import RedisRateLimiter
from adapters.redis.routing import RoutedRedisManager, routes_channel

__all__ = ["RedisPresenceTracker", "RedisRateLimiter", "RoutedRedisManager", "routes_channel"]
