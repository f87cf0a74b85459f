"""HTTP plumbing: one entrypoint that maps errors to JSON, and a bounded JSON reader.

Every error leaves as {"error": CODE, "message": ..., "fields": {...}} with the
status a client expects: 400 malformed, 401 not signed in, 403 not allowed, 404 unknown,
409 state conflict, 410 expired, 413 too large, 422 invalid fields (INVALID_POLICY: a
policy file a reload refused), 429 over the rate (with Retry-After), 503 store unavailable. Anything else is a 500 with the traceback in the
service log and no detail to the caller.
"""
import json
import logging
from datetime import date, datetime

from marshmallow import ValidationError
from nameko.exceptions import BadRequest
from nameko.rpc import rpc
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from . import inputs
from .auth import AccessError, Forbidden, TooManyRequests, Unauthenticated
from .health import BrokerHealth
from .metrics import metrics_response
from .mongo import NotFound, StoreError, ping
from .openapi import build as build_openapi
from .policy import InvalidPolicy

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class Gone(Exception):
    """What the request refers to existed but is no longer usable (an expired link)."""


class Conflict(Exception):
    """The request is valid but the resource's state does not allow it."""


class Unavailable(Exception):
    """Another service this one asked did not answer in time."""


class MalformedBody(Exception):
    pass


class BodyTooLarge(Exception):
    pass


_MAPPED = (
    (ValidationError, 422, "VALIDATION_ERROR"),
    (InvalidPolicy, 422, "INVALID_POLICY"),
    (MalformedBody, 400, "MALFORMED_BODY"),
    (BadRequest, 400, "BAD_REQUEST"),
    (Unauthenticated, 401, "UNAUTHENTICATED"),
    (Forbidden, 403, "FORBIDDEN"),
    (NotFound, 404, "NOT_FOUND"),
    (Conflict, 409, "CONFLICT"),
    (Gone, 410, "GONE"),
    (BodyTooLarge, 413, "BODY_TOO_LARGE"),
    (TooManyRequests, 429, "TOO_MANY_REQUESTS"),
    (StoreError, 503, "STORE_UNAVAILABLE"),
    (Unavailable, 503, "UNAVAILABLE"),
)


class HttpEntrypoint(HttpRequestHandler):
    def response_from_exception(self, exc):
        for kind, status, code in _MAPPED:
            if isinstance(exc, kind):
                body = {"error": code, "message": _message(exc)}
                if isinstance(exc, (ValidationError, InvalidPolicy)):
                    body["fields"] = exc.messages
                if status >= 500:
                    log.error("%s: %r", code, exc)
                return json_response(status, body, _headers(exc))
        log.error("unexpected error in %s %s: %r", self.method, self.url, exc)
        return json_response(500, {"error": "INTERNAL_ERROR", "message": "unexpected error; see service log"})


http = HttpEntrypoint.decorator


STORE_RETRY_AFTER = 5   # seconds a client is asked to wait while the store is away


def _headers(exc):
    if isinstance(exc, StoreError):
        return {"Retry-After": str(STORE_RETRY_AFTER)}
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="mallcare"'}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    return None


def _message(exc):
    if isinstance(exc, ValidationError):
        return "invalid fields"
    if isinstance(exc, StoreError):   # pymongo's text names hosts and ports: for the log only
        return "the service's store is not answering; try again shortly"
    return str(exc) or exc.__class__.__name__


def jsonable(value):
    """Plain JSON types only (times as ISO 8601, other values as strings), for RPC answers."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_plain))


def _plain(value):
    # ISO 8601 as the documents promise (str() of a datetime has a space, not a T)
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def json_response(status, body, headers=None):
    return Response(json.dumps(body, ensure_ascii=False, default=_plain), status=status,
                    headers=headers, mimetype="application/json")


def signed(data, caller):
    """The request with `by` set to who signed in, whatever the body said."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["Invalid input type."]})
    return {**data, "by": caller.user}


def read_json(request, max_bytes=MAX_BODY_BYTES):
    """The request's JSON object, refusing bodies over max_bytes before reading them whole,
    nested too deep (400), or holding text or numbers the store cannot keep (422; inputs.py)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"body over {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"body over {max_bytes} bytes")
    try:
        data = inputs.loads(raw)
    except inputs.MalformedInput as exc:
        raise MalformedBody(f"body refused: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedBody("body must be a JSON object")
    return inputs.check(data)   # InvalidInput: a 422 naming the fields


class HealthAndMetrics:
    """GET /health, GET /health/live, GET /metrics and GET /openapi.json for a service
    whose Mongo dependency is `store`, auth.Access dependency `access` and OpenAPI
    declarations `http_api`.

    Subclass it as `web.HealthAndMetrics`, never import the class itself into a
    service module: `nameko run <svc>.service` starts every class with entrypoints
    it finds in the module, and this one has no `name`."""

    broker_check = BrokerHealth()

    @http("GET", "/health")
    def health(self, request):
        """Readiness: 200 when both the store and the broker answer, 503 naming which
        does not (nameko reconnects to a lost broker without a word, so it is asked here)."""
        checks = {"store": ping(self.store.db), "broker": self.broker_check()}
        ready = all(checks.values())
        return json_response(200 if ready else 503, {
            "service": self.name, "status": "ok" if ready else "degraded",
            **{name: "ok" if ok else "unreachable" for name, ok in checks.items()}})

    @http("GET", "/health/live")
    def live(self, request):
        """Liveness: the process serves HTTP. It asks neither store nor broker, so an
        outage of either does not get every replica restarted."""
        return json_response(200, {"service": self.name, "status": "ok"})

    @http("GET", "/metrics")
    def metrics(self, request):
        return metrics_response()

    @http("GET", "/openapi.json")
    def openapi(self, request):
        """The service's OpenAPI document (mallcare_common.openapi), built from its `http_api`
        declarations and the permissions in force; open like /health."""
        return json_response(200, build_openapi(self.name, self.http_api, self.access.permissions()))


class PolicyAdmin:
    """GET /policy and POST /policy/reload (and the same as RPC) for a service whose
    PolicyFiles dependency is `policy` and auth.Access dependency is `access`.
    Subclass it as `web.PolicyAdmin`, like HealthAndMetrics."""

    @http("GET", "/policy")
    def policy_http(self, request):
        self.access.caller(request).require("policy.read")
        return json_response(200, jsonable(self.policy.current.public()))

    @rpc(expected_exceptions=AccessError)
    def get_policy(self):
        self.access.caller().require("policy.read")
        return jsonable(self.policy.current.public())

    @http("POST", "/policy/reload")
    def reload_policy_http(self, request):
        self.access.caller(request).require("policy.reload")
        return json_response(200, {"version": self.policy.reload().version})

    @rpc(expected_exceptions=(InvalidPolicy, AccessError))
    def reload_policy(self):
        """Read the policy files again; a broken file is refused and the policy in force stays."""
        self.access.caller().require("policy.reload")
        return {"version": self.policy.reload().version}
