"""Redis adapters for running several server processes: shared presence, routed fan-out."""

from adapters.redis.presence import RedisPresenceTracker
from adapters.redis.routing import RoutedRedisManager, routes_channel

__all__ = ["RedisPresenceTracker", "RoutedRedisManager", "routes_channel"]
