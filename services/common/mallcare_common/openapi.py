"""Each service's OpenAPI 3 document, generated (apispec) from the marshmallow schemas
it already validates with, so the document cannot drift from what the service accepts.

Each HTTP route declares its `Op` where it is served (`operations.operation(Op(...))`, or
`web.http(Op(...))` for a route that answers a file or a page), so the document lists what
the class serves and nothing else; tests/contract/test_openapi.py fails on a route without
its Op and on a checked-in docs/openapi/<service>.json that is out of date (`python
scripts/openapi.py` rewrites them). The services serve the same document at GET
/openapi.json.

Who may call an operation is its `permission` in access.yml: the document names it
(`x-permission`), asks for the bearer token, and also for the X-Api-Key header (with
its 429) where keys hold that permission (a channel's, or a merchant's: R7.5); only the
key where no token may (merchants'). A route open to all answers 429 past its client
address's rate (limits.py).
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1"
_ROUTE_PARAM = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")
KEY_ROLES = ("channel", "merchant")  # who signs in with an X-Api-Key, never a token (and subscriber:<name>)

Body = type[Schema] | str | None  # a JSON schema class (None: any object), or a media type


class ErrorOut(Schema):
    """Every refusal (see mallcare_common.web): a code, a message, and for 422 the field messages."""

    error = fields.String(
        required=True,
        metadata={
            "enum": [
                "VALIDATION_ERROR",
                "MALFORMED_BODY",
                "BAD_REQUEST",
                "UNAUTHENTICATED",
                "FORBIDDEN",
                "NOT_FOUND",
                "CONFLICT",
                "GONE",
                "BODY_TOO_LARGE",
                "TOO_MANY_REQUESTS",
                "STORE_UNAVAILABLE",
                "UNAVAILABLE",
                "INTERNAL_ERROR",
                "METHOD_NOT_ALLOWED",
            ]
        },
    )
    message = fields.String(required=True)
    fields_ = fields.Dict(
        data_key="fields", metadata={"description": "422 only: field name -> messages (nested objects nest)"}
    )
    request_id = fields.String(
        metadata={
            "description": "5xx only: the answer's X-Request-Id, under which the "
            "service log has the request and its traceback"
        }
    )


class HealthOut(Schema):
    service = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["ok", "starting", "degraded"]})
    store = fields.String(required=True, metadata={"enum": ["ok", "unreachable"]})
    broker = fields.String(required=True, metadata={"enum": ["ok", "unreachable"]})
    consumers = fields.String(required=True, metadata={"enum": ["ok", "starting"]})


class LiveOut(Schema):
    service = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["ok"]})


class PolicyVersionOut(Schema):
    version = fields.String(required=True)


@dataclass(frozen=True)
class Op:
    """One documented operation.

    `path` is the route as the `@http` entrypoint writes it (werkzeug syntax). `route`
    names the entrypoint's own rule when one entrypoint serves several documented paths
    (resolution's POST /cases/<no>/<action>: each action has its own body). `responses`
    maps a status to a JSON schema class (None: any object), or to a media type for bodies
    that are not JSON, or to a tuple of those when the answer comes in several forms.
    `signed`: the body's `by` is taken from the token, so it is not part of the body.
    `form`: the schema of an HTML form's fields, the body of a page's POST
    (application/x-www-form-urlencoded; `body` is JSON).
    `errors`: the statuses this operation answers besides the ones every operation of
    its kind does (401/403 for the signed-in, 429 for a key's or an open route's, 400/413/422
    with a body or form, 422 with a query, 404 with a path parameter)."""

    method: str
    path: str
    summary: str
    permission: str | None = None
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    responses: dict[int, Body | tuple[Body, ...]] = field(default_factory=lambda: {200: None})
    signed: bool = False
    form: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    route: str | None = None

    @property
    def entrypoint(self) -> tuple[str, str]:
        """(METHOD, rule) of the nameko entrypoint that serves this operation."""
        return self.method, self.route or self.path


def openapi_path(rule: str) -> str:
    """/cases/<string:complaint_no> -> /cases/{complaint_no}"""
    return _ROUTE_PARAM.sub(r"{\1}", rule)


def _schema_name(schema: Schema | type[Schema]) -> str:
    cls = schema if isinstance(schema, type) else schema.__class__
    return cls.__name__.lstrip("_")  # _Entry -> Entry: a nested part, named in the document


def build(service: str, api: Iterable[Op], permissions: Mapping[str, list[str]]) -> dict[str, Any]:
    """The OpenAPI document (a dict) of `service`'s HTTP API; `permissions` is access.yml's
    permission -> roles table."""
    spec = APISpec(
        title=f"mallcare {service}",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={
            "description": f"The {service} service's HTTP API. Errors are ErrorOut; every "
            "answer carries an X-Request-Id (the request's own when well-formed); "
            "see docs/architecture.md for the services and their events."
        },
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "a staff token (HS256) from the chain's sign-on",
        },
    )
    spec.components.security_scheme(
        "apiKey",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-Api-Key",
            "description": "a channel integration's or a merchant's key: <key id>.<secret>",
        },
    )
    spec.components.schema("ErrorOut", schema=ErrorOut)
    for path, ops in _by_path(api).items():
        spec.path(
            path=openapi_path(path),
            operations={op.method.lower(): _operation(op, permissions) for op in ops},
            parameters=[
                {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                for name in _ROUTE_PARAM.findall(path)
            ]
            or None,
        )
    # Decimal bounds and defaults (yuan amounts) as JSON numbers
    document: dict[str, Any] = json.loads(json.dumps(spec.to_dict(), default=_number))
    return document


def _number(value: object) -> float:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{value!r} has no JSON form")


def _by_path(api: Iterable[Op]) -> dict[str, list[Op]]:
    paths: dict[str, list[Op]] = {}
    for op in api:
        paths.setdefault(op.path, []).append(op)
    return paths


def _operation(op: Op, permissions: Mapping[str, list[str]]) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op), "responses": {}}
    for status, body in op.responses.items():
        operation["responses"][str(status)] = _response(status, body)
    errors = set(op.errors)
    if op.permission:
        roles = permissions.get(op.permission, [])
        operation["x-permission"] = op.permission
        operation["description"] = f"Needs `{op.permission}`: {', '.join(roles)}."
        keyed = any(role in KEY_ROLES or role.startswith("subscriber:") for role in roles)
        staff = any(role not in KEY_ROLES and not role.startswith("subscriber:") for role in roles)
        operation["security"] = ([{"bearer": []}] if staff else []) + ([{"apiKey": []}] if keyed else [])
        errors |= {401, 403} | ({429} if keyed else set())
    else:
        operation["security"] = []
        errors.add(429)  # over the client address's rate (limits.py)
    if op.body is not None:
        schema = op.body(exclude=("by",)) if op.signed else op.body
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        errors |= {400, 413, 422}
    if op.form is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": op.form}},
        }
        errors |= {400, 413, 422}
    if op.query is not None:
        operation["parameters"] = [{"in": "query", "schema": op.query}]
        errors.add(422)
    if "<" in op.path:
        errors.add(404)
    for status in sorted(errors):
        operation["responses"].setdefault(str(status), _response(status, ErrorOut))
    return operation


_REASONS = {
    200: "OK",
    201: "Created",
    400: "Malformed body",
    401: "Not signed in",
    403: "Not allowed",
    404: "Unknown",
    409: "The state does not allow it",
    410: "Expired",
    413: "Body too large",
    422: "Invalid fields",
    429: "Over a rate: the key's, or its client address's (see Retry-After)",
    503: "Unavailable",
}


def _response(status: int, body: Body | tuple[Body, ...]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _REASONS.get(status, str(status)), "content": {}}
    for one in body if isinstance(body, tuple) else (body,):
        if isinstance(one, str):
            response["content"][one] = {"schema": {"type": "string"}}
        else:
            response["content"]["application/json"] = {"schema": one or {"type": "object"}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "required": True}}
    return response


def _operation_id(op: Op) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", " ", openapi_path(op.path).replace("{", "by ")).split()
    return op.method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def documented_operations(service_class: type) -> list[Op]:
    """The Ops the class's HTTP entrypoints declare (operations.operation, web.http(Op)),
    in the order of their paths; a route that declares none is left out (the console's)."""
    found: list[Op] = []
    for name in dir(service_class):
        for entrypoint in getattr(getattr(service_class, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                found.extend(getattr(entrypoint, "documents", ()))
    return sorted(found, key=lambda op: (op.path, op.method))


def served_routes(service_class: type) -> set[tuple[str, str]]:
    """{(METHOD, rule)} of the class's nameko `http` entrypoints, as the container would serve them."""
    routes: set[tuple[str, str]] = set()
    for name in dir(service_class):
        for entrypoint in getattr(getattr(service_class, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, HttpRequestHandler):
                routes.update((method, entrypoint.url) for method in entrypoint.method.split(","))
    return routes
