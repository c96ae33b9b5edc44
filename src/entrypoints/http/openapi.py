"""The OpenAPI 3.1 document, generated from the declared endpoints and their pydantic models."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from entrypoints.error_codes import STATUS_BY_CODE
from entrypoints.http.endpoints import JSON, Endpoint
from entrypoints.http.schemas import ErrorOut

_PATH_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)}")
_REF = "#/components/schemas/{model}"
_CODE_BY_STATUS = {status: code for code, status in STATUS_BY_CODE.items()}

Document = dict[str, Any]
_Refs = Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]]


def openapi_document(endpoints: Iterable[Endpoint], *, title: str, version: str) -> Document:
    """Every endpoint with its parameters, request body, responses and error envelopes."""
    shown = [e for e in endpoints if e.include_in_schema]
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorOut, "serialization"): None}
    for e in shown:
        if e.body is not None:
            models[(e.body, "validation")] = None
        models.update({(m, "serialization"): None for m in e.responses.values() if m is not None})
    refs, definitions = models_json_schema(list(models), ref_template=_REF)
    schemas = definitions.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for e in shown:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Real-time chat API. Errors use the envelope "
            '`{"error": {"code", "message", "details"?}}`. Real-time events: Socket.IO at '
            "`/socket.io/` (see the project docs).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _operation(e: Endpoint, refs: _Refs) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": e.operation_id,
        "summary": e.summary,
        "tags": [e.tag],
    }
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(e.path_schemas.get(name, {"type": "string"})),
        }
        for name in _PATH_PARAM.findall(e.path)
    ]
    if e.query is not None:
        parameters.extend(_query_parameters(e.query))
    if parameters:
        operation["parameters"] = parameters
    if e.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": refs[(e.body, "validation")]}},
        }
    if e.auth:
        operation["security"] = [{"bearerAuth": []}]

    responses: dict[str, Any] = {}
    for status, model in e.responses.items():
        response: dict[str, Any] = {"description": _describe(status)}
        if model is not None:
            response["content"] = {e.media_type: {"schema": refs[(model, "serialization")]}}
        elif status != 204:
            response["content"] = {e.media_type: {}}
        responses[str(status)] = response
    error_ref = refs[(ErrorOut, "serialization")]
    for status in sorted(_error_statuses(e)):
        responses[str(status)] = {
            "description": f"`{_CODE_BY_STATUS.get(status, 'error')}`",
            "content": {JSON: {"schema": error_ref}},
        }
    operation["responses"] = responses
    return operation


def _error_statuses(e: Endpoint) -> set[int]:
    statuses = set(e.errors)
    if e.auth:
        statuses.add(401)
    if e.body is not None:
        statuses.update({413, 422})
    if e.query is not None:
        statuses.add(422)
    if e.path.startswith("/api/"):
        statuses.update({500, 503})
    if e.rate_limit is not None:
        statuses.add(429)
    return statuses


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in properties.items():
        prop = dict(prop)
        description = prop.pop("description", None)
        prop.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _describe(status: int) -> str:
    return {200: "OK", 201: "Created", 204: "No Content"}.get(status, str(status))
