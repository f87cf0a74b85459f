"""HTTP plumbing: one entrypoint that maps errors to JSON (or to a page of its own), the
bounded JSON and form readers, and the public address customers reach a service at.

Every error leaves as {"error": CODE, "message": ..., "fields": {...}} with the
status a client expects: 400 malformed, 401 not signed in, 403 not allowed, 404 unknown,
409 state conflict, 410 expired, 413 too large, 422 invalid fields (INVALID_POLICY: a
policy file a reload refused), 429 over the rate (with Retry-After), 503 store unavailable. Anything else is a
500 with the traceback in the
service log and no detail to the caller. A path or method no entrypoint serves is a 404 or 405
the same way.

Every answer carries an X-Request-Id (the caller's when well-formed, else a new one), and a
5xx's body its `request_id`: the service log has one line per request under that id
(method, route, status, ms, caller; a 5xx with its traceback, a 4xx without).
"""

import json
import logging
import re
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from eventlet.event import Event
from marshmallow import ValidationError
from nameko.containers import WorkerContext
from nameko.exceptions import BadRequest
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer as NamekoWebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Request, Response

from . import inputs
from .auth import (
    Forbidden,
    Principal,
    RateLimiter,
    TooManyRequests,
    Unauthenticated,
    audit_refused,
    caller_noted,
    credential_kind,
)
from .errors import Conflict
from .limits import MAX_BODY_CEILING, EdgeLimits, OverAddressLimit, forwarded_hops, reason_of
from .messaging import ExcInfo
from .metrics import REFUSED
from .mongo import NotFound, StoreError
from .openapi import Op
from .policy import InvalidPolicy

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_BODY_CEILING  # MALLCARE.MAX_BODY_BYTES may set less (limits.py)
MAX_FORM_FIELDS = 50  # a page's form has a handful; parse_qs refuses more before decoding them

Method = TypeVar("Method", bound=Callable[..., Any])  # a service method an entrypoint decorator registers


class Gone(Exception):
    """What the request refers to existed but is no longer usable (an expired link)."""


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

# What the caller got wrong (every 4xx above): each RPC method declares these as its
# expected exceptions (logged without a traceback), so HTTP and RPC answer alike.
CLIENT_ERRORS = tuple(kind for kind, status, _ in _MAPPED if status < 500)


REQUEST_ID = "mallcare.request_id"  # the request's id, in its WSGI environ and its worker's context data
CALLER = "mallcare.caller"  # who the request's caller is, in its WSGI environ (for its log line)
BODY_LIMIT = "mallcare.body_limit"  # the service's MAX_BODY_BYTES, in the request's WSGI environ (read_body)
_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a UUID, hex, a ULID, "req-42"


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and error code an exception is answered with (500 INTERNAL_ERROR when unmapped)."""
    return next(((status, code) for kind, status, code in _MAPPED if isinstance(exc, kind)), (500, "INTERNAL_ERROR"))


def level_of(status: int) -> int:
    """A refused caller (401, 403, 429) is a WARNING, other client errors INFO, a 5xx ERROR."""
    return logging.ERROR if status >= 500 else logging.WARNING if status in (401, 403, 429) else logging.INFO


def request_id(request: Request) -> str:
    """This request's id (every request gets one), to pass on to another service."""
    return str(request.environ[REQUEST_ID])


def _identify(request: Request) -> str:
    """The caller's X-Request-Id when well-formed, else a new one, noted in the request's environ."""
    incoming = request.headers.get("X-Request-Id", "")
    request.environ[REQUEST_ID] = rid = incoming if _WELL_FORMED_ID.fullmatch(incoming) else uuid.uuid4().hex
    return rid


def log_request(
    request: Request, route: str | None, status: int, started: float, failure: BaseException | None = None
) -> None:
    """The request's line: a refusal's code and reason without traceback, a 5xx's exception
    type and the frames where it failed, but not its message (which may quote the body)."""
    fields = {
        "method": request.method,
        "route": route,
        "status": status,
        "ms": round((time.monotonic() - started) * 1000, 1),
        "caller": request.environ.get(CALLER),
        "request_id": request_id(request),
    }
    if failure is not None:
        fields["error"] = status_of(failure)[1]
        if status < 500:
            fields["reason"] = _message(failure)
        else:
            fields["exception"] = type(failure).__name__
            fields["traceback"] = "".join(traceback.format_tb(failure.__traceback__))
    log.log(level_of(status), "%s %s %s", request.method, route or "(no route)", status, extra=fields)


class WebServer(NamekoWebServer):
    """nameko's web server without eventlet's access line (HttpEntrypoint writes the request's
    line), answering a path or method no entrypoint serves as the entrypoints answer errors,
    with TCP_NODELAY on its connections: eventlet sends an answer through a 16 KiB buffer,
    and on a kept-alive connection Nagle's algorithm held what came after the first 16 KiB
    until the client's delayed ACK, about 40 ms later (docs/benchmarks.md, the console's
    proxy)."""

    def get_wsgi_app(self) -> WsgiApp:
        return _WsgiApp(self)

    def get_wsgi_server(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        # Linux gives an accepted socket the listening socket's TCP_NODELAY
        # (tests/integration/test_console_service.py checks one)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server = super().get_wsgi_server(sock, *args, **kwargs)
        server.log_output = False
        return server


class _WsgiApp(WsgiApp):
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.monotonic()
        try:
            self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            # a routing exception always has its code
            if exc.code < 400:  # type: ignore[operator]  # a redirect (a missing trailing slash) is no error
                return exc(environ, start_response)
            return _unrouted(Request(environ, shallow=True), exc, started)(environ, start_response)
        return super().__call__(environ, start_response)


def _unrouted(request: Request, exc: HTTPException, started: float) -> Response:
    rid, status = _identify(request), exc.code or 404
    if isinstance(exc, MethodNotAllowed):
        body = {"error": "METHOD_NOT_ALLOWED", "message": f"{request.method} is not allowed here"}
    else:
        body = {"error": "NOT_FOUND", "message": "no such path"}
    log_request(request, None, status, started)
    return json_response(status, body, {"X-Request-Id": rid, **{k: v for k, v in exc.get_headers() if k == "Allow"}})


ErrorPage = Callable[[Request, BaseException], Response]


class HttpEntrypoint(HttpRequestHandler):
    """nameko's HTTP entrypoint with errors answered as JSON (above), or by its `error_page`
    (a page for people: the same status, a body they can read), an id for every request
    and one log line for it: method, route (the URL rule, not the path: no ids, no query),
    status, ms, caller (who auth.Access found, if the handler asked) and request id. A 4xx
    is logged without traceback, a 5xx at ERROR with it; no body goes into the log.
    Before the worker starts, the service's abuse limits (limits.py) may refuse the request:
    429 for its client address, 413 for its Content-Length."""

    server = WebServer()
    limits = EdgeLimits()

    def __init__(
        self, method: str, url: str, documents: tuple[Op, ...] = (), error_page: ErrorPage | None = None, **kwargs: Any
    ) -> None:
        super().__init__(method, url, **kwargs)
        self.documents = documents  # its OpenAPI entries (openapi.Op)
        self.error_page = error_page

    def handle_request(self, request: Request) -> Response:
        started, rid = time.monotonic(), _identify(request)
        failure = None
        response: Response
        address, credential = client_address(request, self.limits.hops), credential_kind(request)
        try:
            self._admit(request, address, credential)
            response = self.response_from_result(self._call_worker(request))
        except Exception as exc:
            failure = exc
            response = self.error_page(request, exc) if self.error_page else self.response_from_exception(exc, rid)
        if isinstance(failure, Unauthenticated):
            audit_refused(self.container.service_name, failure, credential, address, request.path, request)
            if credential == "api_key":
                self.limits.key_refused(address)
            elif credential == "bearer":
                self.limits.token_refused(address)
        response.headers["X-Request-Id"] = rid
        log_request(request, self.url, response.status_code, started, failure)
        reason = reason_of(response.status_code, failure)
        if reason:
            REFUSED.labels(self.container.service_name, self.url, reason).inc()
        return response

    def _admit(self, request: Request, address: str, credential: str) -> None:
        """The abuse limits (limits.py): a route anyone may use counts every request against
        the client's address, another route those without a staff token."""
        public = bool(self.documents) and not any(op.permission for op in self.documents)
        self.limits.admit(address, public or credential != "bearer", credential == "api_key", credential == "bearer")
        max_bytes = self.limits.max_body_bytes
        if request.content_length is not None and request.content_length > max_bytes:
            raise BodyTooLarge(f"body over {max_bytes} bytes")
        request.environ[BODY_LIMIT] = max_bytes

    def _call_worker(self, request: Request) -> Any:
        # nameko's HttpRequestHandler.handle_request without its catch-all: the failure is logged above
        request.shallow = False
        args, kwargs = self.get_entrypoint_parameters(request)
        self.check_signature(args, kwargs)
        event = Event()
        self.container.spawn_worker(
            self,
            args,
            kwargs,
            context_data=self.context_data(request),
            handle_result=partial(self._handle_result, request, event),
        )
        return event.wait()

    def context_data(self, request: Request) -> dict[str, Any]:
        """The worker's context data: the request's id (an audited read records it; calls to
        other services carry it on)."""
        return {**self.server.context_data_from_headers(request), REQUEST_ID: request_id(request)}

    def _handle_result(
        self, request: Request, event: Event, worker_ctx: WorkerContext, result: Any, exc_info: ExcInfo | None
    ) -> Any:
        request.environ[CALLER] = caller_noted(worker_ctx)  # for the request's line
        return self.handle_result(event, worker_ctx, result, exc_info)

    def response_from_exception(self, exc: BaseException, request_id: str | None = None) -> Response:
        status, code = status_of(exc)
        body: dict[str, Any]
        if status == 500:
            body = {"error": code, "message": "unexpected error; the service log has it under this request_id"}
        else:
            body = {"error": code, "message": _message(exc)}
        if isinstance(exc, (ValidationError, InvalidPolicy)):
            body["fields"] = exc.messages
        if status >= 500 and request_id:
            body["request_id"] = request_id
        return json_response(status, body, _headers(exc))


def worker_of(record: logging.LogRecord) -> WorkerContext | None:
    """The worker a `nameko.containers` record is about (its first argument), or None."""
    worker = record.args[0] if isinstance(record.args, tuple) and record.args else None
    return worker if isinstance(worker, WorkerContext) else None


class QuietClientErrors(logging.Filter):
    """For the `nameko.containers` logger, which logs every worker's exception with its
    traceback. An HTTP worker's record is dropped: HttpEntrypoint's request line says what
    happened (with the traceback of a 5xx). An RPC call refused as the caller's fault (what
    HTTP answers 4xx) keeps its line, without traceback, at INFO (WARNING for a refused
    caller). Anything else, and every event handler's, stays as nameko logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        worker = worker_of(record)
        if not record.exc_info or worker is None:
            return True
        if isinstance(worker.entrypoint, HttpEntrypoint):
            return False
        status = status_of(record.exc_info[1])[0] if record.exc_info[1] else 500
        if isinstance(worker.entrypoint, Rpc) and status < 500:
            record.exc_info = record.exc_text = None
            record.levelno = level_of(status)
            record.levelname = logging.getLevelName(record.levelno)
        return True


def http(
    op_or_method: Op | str, url: str | None = None, error_page: ErrorPage | None = None
) -> Callable[[Method], Method]:
    """`@http(Op(...))`: a documented route whose method takes the request (a page, a file,
    /metrics); a JSON operation is an `operations.operation`. `@http(method, url)`: a route
    no OpenAPI document lists (the console's own). `error_page(request, exc)` answers what
    the method raises (status_of gives the status) for a route people open in a browser."""
    register: Callable[[Method], Method]
    if isinstance(op_or_method, Op):
        register = HttpEntrypoint.decorator(
            op_or_method.method, op_or_method.path, documents=(op_or_method,), error_page=error_page
        )
    else:
        register = HttpEntrypoint.decorator(op_or_method, url, error_page=error_page)
    return register


STORE_RETRY_AFTER = 5  # seconds a client is asked to wait while the store is away


def _headers(exc: BaseException) -> dict[str, str] | None:
    if isinstance(exc, StoreError):
        return {"Retry-After": str(STORE_RETRY_AFTER)}
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="mallcare"'}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    return None


def _message(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "invalid fields"
    if isinstance(exc, StoreError):  # pymongo's text names hosts and ports: for the log only
        return "the service's store is not answering; try again shortly"
    return str(exc) or exc.__class__.__name__


def jsonable(value: Any) -> Any:
    """Plain JSON types only (times as ISO 8601, other values as strings), for RPC answers."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_plain))


def _plain(value: Any) -> str:
    # ISO 8601 as the documents promise (str() of a datetime has a space, not a T)
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=_plain),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def signed(data: object, caller: Principal) -> dict[str, Any]:
    """The request with `by` set to who signed in, whatever the body said."""
    if not isinstance(data, dict):
        raise ValidationError({"_schema": ["Invalid input type."]})
    return {**data, "by": caller.user}


def read_body(request: Request, max_bytes: int | None = None) -> bytes:
    """The request's body, refusing one over max_bytes (413) before reading it whole; without
    max_bytes, the service's MALLCARE.MAX_BODY_BYTES (HttpEntrypoint notes it)."""
    if max_bytes is None:
        max_bytes = int(request.environ.get(BODY_LIMIT, MAX_BODY_BYTES))
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"body over {max_bytes} bytes")
    raw: bytes = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"body over {max_bytes} bytes")
    return raw


def read_json(request: Request, max_bytes: int | None = None) -> dict[str, Any]:
    """The request's JSON object (read_body), refusing one nested too deep (400), or holding
    text or numbers the store cannot keep (422; inputs.py)."""
    raw = read_body(request, max_bytes)
    try:
        data = inputs.loads(raw)
    except inputs.MalformedInput as exc:
        raise MalformedBody(f"body refused: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedBody("body must be a JSON object")
    checked: dict[str, Any] = inputs.check(data)  # InvalidInput: a 422 naming the fields
    return checked


def read_form(request: Request, max_bytes: int | None = None) -> dict[str, list[str]]:
    """An HTML form's fields (application/x-www-form-urlencoded), each name with its values
    in order: over max_bytes (read_body) 413, not UTF-8 or over MAX_FORM_FIELDS fields 400, text the
    store cannot keep (a NUL, a control character) 422 naming the field (inputs.py)."""
    raw = read_body(request, max_bytes)
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:  # UnicodeDecodeError is one
        raise MalformedBody(f"form refused: {exc}") from exc
    checked: dict[str, list[str]] = inputs.check(fields)
    return checked


def public_base_url(config: dict[str, Any]) -> str:
    """MALLCARE.PUBLIC_BASE_URL without its trailing slash: an absolute http(s) address, no
    query or fragment; a service that sends people links does not start without it."""
    value = str((config.get("MALLCARE") or {}).get("PUBLIC_BASE_URL") or "")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise RuntimeError(
            f"MALLCARE_PUBLIC_BASE_URL {value!r} is not the chain's public address: set it to where "
            "customers reach this service through the reverse proxy, e.g. "
            "https://service.example-mall.cn"
        )
    return value.rstrip("/")


class PublicBaseUrl(DependencyProvider):
    """The chain's public address of this service (public_base_url), read once at start,
    for the links it sends customers."""

    def setup(self) -> None:
        self.value = public_base_url(self.container.config)

    def get_dependency(self, worker_ctx: WorkerContext) -> str:
        return self.value


def client_address(request: Request, hops: int) -> str:
    """Who sent the request: the peer, or behind `hops` reverse proxies of ours the address
    the outermost of them saw, the hops-th of X-Forwarded-For from the right (each proxy
    appends its peer; what a client wrote further left is not believed). Fewer entries than
    hops: the request did not come through them, and the peer is the client."""
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
    if hops > 0 and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.remote_addr or "unknown"


class AddressLimits(DependencyProvider):
    """Rate limits per client address, for the pages anyone may use without signing in (no
    key to count by): workers get `take(request, what, per_minute)`, TooManyRequests (429
    with Retry-After) beyond. A token bucket per address and purpose in each process, as for
    API keys (auth.RateLimiter). MALLCARE.FORWARDED_HOPS: how many reverse proxies of ours
    stand before the service (client_address); 0 when clients reach it directly."""

    def setup(self) -> None:
        self.hops = forwarded_hops(self.container.config)
        self.limiter = RateLimiter()

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[[Request, str, int], None]:
        return self.take

    def take(self, request: Request, what: str, per_minute: int) -> None:
        # the message goes to the request's log line: it names the purpose, not the address
        try:
            self.limiter.take(f"{what}:{client_address(request, self.hops)}", per_minute, f"an address's {what}")
        except TooManyRequests as exc:
            raise OverAddressLimit(str(exc), exc.retry_after) from None
