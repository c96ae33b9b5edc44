"""Declared endpoints: one table drives both the Starlette routes and the OpenAPI document.

An endpoint declares its body and query models; the dispatcher authenticates,
validates the query, then the body, and only then calls the handler with a
:class:`Call` holding the parsed values. So whatever the OpenAPI document says
a route accepts is exactly what it validates.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from attrs import field, frozen
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.mongo.errors import request_deadline
from chatcore import limits
from chatcore.chat import Chat
from chatcore.errors import RateLimited, Unauthorized
from chatcore.services.throttle import forget_last_quota, last_quota
from entrypoints.bearer import bearer_credentials
from entrypoints.client_address import asgi_client_address
from entrypoints.error_codes import rate_limit_headers
from entrypoints.http.schemas import QueryParams, RequestBody
from entrypoints.http.validation import parse_json_body, parse_query
from entrypoints.runtime import Runtime

M = TypeVar("M", bound=BaseModel)
Handler = Callable[["Call"], Awaitable[Response]]

JSON = "application/json"


class Call:
    """One request to a declared endpoint, authenticated and validated."""

    def __init__(
        self,
        request: Request,
        runtime: Runtime,
        user_id: str | None,
        body: BaseModel | None,
        query: BaseModel | None,
    ) -> None:
        self.request = request
        self.runtime = runtime
        self._user_id = user_id
        self._body = body
        self._query = query

    @property
    def chat(self) -> Chat:
        return self.runtime.chat

    @property
    def user_id(self) -> str:
        """The authenticated caller (only on endpoints declared with ``auth=True``)."""
        if self._user_id is None:
            raise RuntimeError("this endpoint is declared without authentication")
        return self._user_id

    @property
    def client_address(self) -> str:
        """The peer, or the client a trusted proxy names (CHATCORE_TRUSTED_PROXIES)."""
        return asgi_client_address(self.request.scope, self.runtime.trusted_proxies)

    def path(self, name: str) -> str:
        """An id in the path (``{id}``, ``{userId}``, ...), checked by ``limits.entity_id``."""
        return limits.entity_id(self.path_text(name), name)

    def path_text(self, name: str) -> str:
        """A path parameter that is not an id, unchecked (its rule is the domain's)."""
        value: Any = self.request.path_params[name]
        return str(value)

    def body(self, model: type[M]) -> M:
        """The validated body; ``model`` must be the one the endpoint declares."""
        return _declared(self._body, model, "body")

    def query(self, model: type[M]) -> M:
        """The validated query; ``model`` must be the one the endpoint declares."""
        return _declared(self._query, model, "query")


def _declared(value: BaseModel | None, model: type[M], what: str) -> M:
    if not isinstance(value, model):
        raise RuntimeError(f"the endpoint does not declare {model.__name__} as its {what}")
    return value


@frozen(kw_only=True)
class Endpoint:
    """A route and everything the OpenAPI document says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    # Success statuses and their JSON body models (None: no body, or not JSON).
    responses: Mapping[int, type[BaseModel] | None]
    auth: bool = True
    body: type[RequestBody] | None = None
    query: type[QueryParams] | None = None
    # Error statuses the route can answer besides the ones implied by auth/body/query.
    errors: tuple[int, ...] = ()
    media_type: str = JSON
    include_in_schema: bool = True
    # The rate limit the handler's service applies (send, login, register); None: the
    # dispatcher applies ``api`` to authenticated endpoints.
    limit: str | None = None
    # JSON Schemas of path parameters beyond "a string" (what the route enforces).
    path_schemas: Mapping[str, Mapping[str, Any]] = field(factory=dict)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def rate_limit(self) -> str | None:
        """The limit of this endpoint (its answers carry ``RateLimit-*``), if any."""
        return self.limit or ("api" if self.auth else None)


class Api:
    """Collects endpoints declared with the decorators below."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        responses: Mapping[int, type[BaseModel] | None],
        auth: bool = True,
        body: type[RequestBody] | None = None,
        query: type[QueryParams] | None = None,
        errors: tuple[int, ...] = (),
        media_type: str = JSON,
        include_in_schema: bool = True,
        path_schemas: Mapping[str, Mapping[str, Any]] | None = None,
        limit: str | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method,
                    path=self.prefix + path,
                    handler=handler,
                    summary=summary,
                    tag=tag,
                    responses=responses,
                    auth=auth,
                    body=body,
                    query=query,
                    errors=errors,
                    media_type=media_type,
                    include_in_schema=include_in_schema,
                    path_schemas=path_schemas or {},
                    limit=limit,
                )
            )
            return handler

        return register


def bearer_token(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; Unauthorized if there is none."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("missing bearer token")
    token = bearer_credentials(header)
    if token is None:
        raise Unauthorized("the Authorization header must be 'Bearer <accessToken>'")
    return token


def starlette_routes(endpoints: list[Endpoint], runtime: Runtime) -> list[Route]:
    """One Starlette route per path, dispatching each method through :func:`_dispatcher`.

    One route per path, not per endpoint: a 405 then names every method the path
    allows in its ``Allow`` header (a route per method would name only its own).
    """
    by_path: dict[str, dict[str, Endpoint]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = e
    return [_route(path, methods, runtime) for path, methods in by_path.items()]


def _route(path: str, methods: Mapping[str, Endpoint], runtime: Runtime) -> Route:
    if len(methods) == 1:
        [endpoint] = methods.values()
        return Route(
            path,
            _dispatcher(endpoint, runtime),
            methods=[endpoint.method],
            name=endpoint.operation_id,
            include_in_schema=endpoint.include_in_schema,
        )
    dispatchers = {method: _dispatcher(e, runtime) for method, e in methods.items()}
    if "GET" in dispatchers:
        dispatchers["HEAD"] = dispatchers["GET"]  # as Starlette does for a GET route

    async def dispatch(request: Request) -> Response:
        return await dispatchers[request.method](request)

    return Route(
        path,
        dispatch,
        methods=list(methods),
        name="|".join(e.operation_id for e in methods.values()),
        include_in_schema=any(e.include_in_schema for e in methods.values()),
    )


def _dispatcher(endpoint: Endpoint, runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    metered = endpoint.limit is None and endpoint.auth

    async def dispatch(request: Request) -> Response:
        forget_last_quota()
        try:
            response = await _checked_call(endpoint, runtime, request, metered)
        except RateLimited as exc:
            # Counted here, the one place every HTTP refusal passes (the answer itself
            # is the error handler's: 429, Retry-After, RateLimit-*).
            runtime.metrics.refused(exc.limit, endpoint.operation_id)
            raise
        quota = last_quota()
        if quota is not None:
            response.headers.update(rate_limit_headers(quota))
        return response

    dispatch.__name__ = endpoint.operation_id
    return dispatch


async def _checked_call(
    endpoint: Endpoint, runtime: Runtime, request: Request, metered: bool
) -> Response:
    # Order of checks: who is calling (401), how often (429), then what they ask (422).
    user_id = runtime.chat.auth.authenticate(bearer_token(request)) if endpoint.auth else None
    if metered and user_id is not None:
        await runtime.chat.throttle.api(user_id)
    query = parse_query(request.query_params, endpoint.query) if endpoint.query else None
    body = None
    if endpoint.body is not None:
        raw = await request.body()
        body = parse_json_body(raw, request.headers.get("content-type"), endpoint.body)
    # No request waits longer than CHATCORE_MONGODB_TIMEOUT_MS for storage in all.
    with request_deadline(runtime.storage_timeout):
        return await endpoint.handler(Call(request, runtime, user_id, body, query))
