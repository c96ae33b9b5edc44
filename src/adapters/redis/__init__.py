"""Redis adapters for running several server processes: shared presence and rate limits."""

from adapters.redis.presence import RedisPresenceTracker
from adapters.redis.rate_limiter import RedisRateLimiter

__all__ = ["RedisPresenceTracker", "RedisRateLimiter"]
