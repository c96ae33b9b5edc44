"""The HTTP routes, one module per area of the public contract."""

from __future__ import annotations

from entrypoints.http.endpoints import Endpoint
from entrypoints.http.routes.auth import api as auth_api
from entrypoints.http.routes.conversations import api as conversations_api
from entrypoints.http.routes.messages import api as messages_api
from entrypoints.http.routes.ops import api as ops_api
from entrypoints.http.routes.presence import api as presence_api
from entrypoints.http.routes.reactions import api as reactions_api
from entrypoints.http.routes.search import api as search_api
from entrypoints.http.routes.users import api as users_api


def all_endpoints() -> list[Endpoint]:
    """Every endpoint, in matching order (fixed paths before ``{param}`` ones)."""
    return [
        *auth_api.endpoints,
        *users_api.endpoints,
        *conversations_api.endpoints,
        *messages_api.endpoints,
        *reactions_api.endpoints,
        *presence_api.endpoints,
        *search_api.endpoints,
        *ops_api.endpoints,
    ]
