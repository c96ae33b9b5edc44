"""Redis adapters for running several server processes: shared presence."""

from adapters.redis.presence import RedisPresenceTracker

__all__ = ["RedisPresenceTracker"]
