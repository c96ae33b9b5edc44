"""The HTTP API: routes, request/response schemas, errors, middleware and docs."""
