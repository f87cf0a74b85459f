"""The web console (issue 9): the staff's screens in a browser, served from one origin.

Entrypoints at a glance (HTTP only: the console owns no data, listens to no event):
  GET  /                          the console (static/index.html; Chinese, with an English switch)
  GET  /static/<file>             its scripts and style sheet, no build step
  GET  /sign-in                   how to sign in here: the demo picker (when on) or the chain's sign-on page
  GET  /.well-known/jwks.json     the public keys staff tokens are verified with (MALLCARE.JWKS)
  GET  /session                   who the Bearer token says the caller is (a token from the sign-on)
                                    and what their role may do (policy), for the pages to offer
  GET  /labels                    every code word's words in Chinese and English (labels.yml), the malls'
                                    and merchants' names and time zones (malls.yml): what pages show
  GET  /staff                     the staff directory (id, name, role, malls): the demo picker's, and
                                    the signed-in's for owner pickers (only they, without the demo)
  POST /login                     {"staff_id"} -> a staff token for that member of staff (DEMO sign-on)
  GET  /api/<service>/<path>      passed on to intake, triage, resolution, feedback or analytics
  POST /api/<service>/<path>        with the caller's own Authorization header and the console's
                                    X-Request-Id (the services log the request under the same id)
  GET  /health, /health/live      readiness (the five answer /health/live) and liveness
  GET  /metrics                   Prometheus: requests passed on per service and status, their time

Signing in. The chain's sign-on issues staff tokens signed with its private key (see
mallcare_common.auth; the console verifies them with the JWKS) and sends the browser back to
`/#token=<JWT>`; the page asks /session who that is and keeps the token. The fragment never
reaches a server log; CONSOLE_SIGN_ON_URL is where the sign-in page sends staff.
POST /login stands in for the sign-on, for the demo only: it signs a token for any staff
id of the directory (deploy/policy/resolution.yml) without a password, with the sign-on's
SIGNING_KEY. It is off unless CONSOLE_DEMO_LOGIN=true (scripts/run.sh turns it on), and a
console listening beyond this machine refuses to start with it on unless
CONSOLE_DEMO_LOGIN_EXPOSED names the risk (DemoSignOn). Off, the console holds no private
key and the staff directory answers signed-in staff only. The staff directory
and the case permissions (resolution.yml) are read when the console starts, as access.yml
is: restart it after changing them. The browser keeps the token in sessionStorage
(gone with the tab) and sends it as a Bearer header; no cookie is set, so a cross-site
page cannot make the browser send it (no CSRF to guard).
"""

import logging
import mimetypes
from pathlib import Path
from urllib.parse import quote, urlencode

import eventlet
import urllib3
import yaml
from marshmallow import Schema, fields, validate
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram
from urllib3.exceptions import HTTPError, ReadTimeoutError
from urllib3.util import parse_url
from werkzeug.wrappers import Response

from mallcare_common.auth import Access, SigningKey, Unauthenticated, audit_refused, issue_token, read_secret
from mallcare_common.labels import load_labels_file, served
from mallcare_common.malls import load_registry_file
from mallcare_common.metrics import metrics_response
from mallcare_common.limits import forwarded_hops
from mallcare_common.web import HttpEntrypoint, NotFound, client_address, json_response, read_json, request_id

log = logging.getLogger(__name__)
http = HttpEntrypoint.decorator

STATIC = Path(__file__).resolve().parent / "static"
UPSTREAM_NAMES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept", "Accept-Language")
TIMEOUT_SECONDS = 15
AWAKE_SECONDS = 1

PASSED_ON = Counter(
    "mallcare_console_requests_total",
    "Requests the console passed on, by service and the status it answered (503: no answer).",
    ["upstream", "status"],
)
UPSTREAM_SECONDS = Histogram(
    "mallcare_console_upstream_seconds", "Time a service took to answer the console.", ["upstream"]
)
SIGN_INS = Counter(
    "mallcare_console_sign_ins_total",
    "Sign-ins: demo (POST /login) or sign_on (a token checked by GET /session), by outcome.",
    ["how", "outcome"],
)


class LoginIn(Schema):
    """The demo sign-in's body: a staff id of the directory, as a string (422 otherwise)."""

    staff_id = fields.String(required=True, validate=validate.Length(min=1, max=32))


class StaffDirectory(DependencyProvider):
    """resolution.yml's staff directory and case permissions (close_or_reopen, ...), read once
    at start: the sign-in picker, owner pickers, and what a role's pages offer."""

    def setup(self):
        policy_dir = (self.container.config.get("MALLCARE") or {}).get("POLICY_DIR", "deploy/policy")
        with open(Path(policy_dir) / "resolution.yml", encoding="utf-8") as handle:
            policy = yaml.safe_load(handle)
        self.members = {m["id"]: m for m in policy.get("staff") or []}
        self.case_permissions = policy.get("permissions") or {}

    def get_dependency(self, worker_ctx):
        return self

    def may(self, role, access_permissions):
        """What `role` holds of access.yml's permissions (the Access gate's table) and of the
        case permissions."""
        return sorted(
            name
            for table in (access_permissions, self.case_permissions)
            for name, roles in table.items()
            if role in roles
        )


class Labels(DependencyProvider):
    """labels.yml with the mall registry, read once at start as the staff directory is: the
    words every page shows for a code word, a mall or a merchant, and each mall's time zone."""

    def setup(self):
        policy_dir = Path((self.container.config.get("MALLCARE") or {}).get("POLICY_DIR", "deploy/policy"))
        self.served = served(load_labels_file(policy_dir / "labels.yml"), load_registry_file(policy_dir / "malls.yml"))

    def get_dependency(self, worker_ctx):
        return self.served


class AwakeForSignals(DependencyProvider):
    """`nameko run` stops on SIGTERM in a green thread its signal handler spawns, and that
    thread runs once eventlet's hub wakes. The other services' broker connections wake it
    all the time; the console has none, and idle it slept through SIGTERM (scripts/run.sh
    killed it after 20 s). A green thread that wakes every second keeps the stop prompt."""

    def start(self):
        self.thread = self.container.spawn_managed_thread(self._wake, identifier="awake_for_signals")

    def stop(self):
        self.thread.kill()  # ours to end: the container would warn that it killed a thread left running

    def _wake(self):
        while True:
            eventlet.sleep(AWAKE_SECONDS)


class _OnceMoreIfUnanswered(urllib3.Retry):
    """A call is tried again once only when the service hung up before answering (the kept-alive
    connection it closed just as the call went out), and only for a GET (urllib3 replays a read
    error for idempotent methods only): a POST the service may have acted on is never sent
    twice. Not after a timeout: TIMEOUT_SECONDS is the wait. An answer, even a 503 with
    Retry-After, is the service's to give and goes back as it came."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


RETRIES = _OnceMoreIfUnanswered(
    total=None, connect=0, read=1, redirect=5, status=0, other=0, respect_retry_after_header=False
)


class Upstream:
    """One service behind /api/<service>/...: its address (MALLCARE.UPSTREAMS) and a pool of
    connections kept alive between calls, as many as the console has workers (a worker uses
    one at a time). A connection the service closed while idle is found closed before use."""

    def __init__(self, url, size):
        self.pool = urllib3.connection_from_url(url, maxsize=size, retries=RETRIES)
        self.base = (parse_url(url).path or "").rstrip("/")  # a path the service is served under

    def request(self, method, path, timeout, **kwargs):
        """The service's answer, read whole; urllib3's HTTPError when it gives none."""
        return self.pool.urlopen(method, self.base + path, timeout=timeout, **kwargs)


class Upstreams(DependencyProvider):
    """The services the console passes calls on to, by name: an Upstream each, made at start
    (a service missing from MALLCARE.UPSTREAMS stops the console starting)."""

    def setup(self):
        urls = (self.container.config.get("MALLCARE") or {}).get("UPSTREAMS") or {}
        self.upstreams = {name: Upstream(str(urls[name]), self.container.max_workers) for name in UPSTREAM_NAMES}

    def stop(self):
        for upstream in self.upstreams.values():
            upstream.pool.close()

    def get_dependency(self, worker_ctx):
        return self.upstreams


class DemoSignOn(DependencyProvider):
    """The demo's password-less sign-in (POST /login): None when off (the default), else a
    function signing a staff token for a member of the directory. On, on an address beyond
    this machine, anyone who reaches the console signs in as anyone (legal, with full customer
    contacts): the console then refuses to start unless CONSOLE_DEMO_LOGIN_EXPOSED says
    EXPOSED_CONSENT, so that no deployment has it by accident."""

    EXPOSED_CONSENT = "anyone-who-reaches-the-console-signs-in-as-any-staff"

    def setup(self):
        mallcare = self.container.config.get("MALLCARE") or {}
        self.key = None
        if str(mallcare.get("DEMO_LOGIN") or "false").lower() not in ("true", "1", "yes"):
            return
        host = str(self.container.config.get("WEB_SERVER_ADDRESS", "0.0.0.0:8000")).rpartition(":")[0]
        exposed = host not in ("127.0.0.1", "localhost", "::1", "[::1]")
        if exposed and mallcare.get("DEMO_LOGIN_EXPOSED") != self.EXPOSED_CONSENT:
            raise RuntimeError(
                f"the demo sign-in is on and the console listens on {host}: anyone who reaches it could sign in "
                f"as any member of staff. Set CONSOLE_DEMO_LOGIN=false (the chain's sign-on issues the tokens), "
                f"listen on 127.0.0.1, or set CONSOLE_DEMO_LOGIN_EXPOSED={self.EXPOSED_CONSENT}"
            )
        self.key = SigningKey(read_secret(self.container.config, "SIGNING_KEY"))
        log.warning("the demo sign-in is on: POST /login signs in as any staff id, without a password")

    def get_dependency(self, worker_ctx):
        if self.key is None:
            return None
        return lambda member: issue_token(self.key, member["id"], member["role"], member["malls"])


class ConsoleService:
    name = "console"

    config = Config()
    awake = AwakeForSignals()
    upstreams = Upstreams()
    demo_sign_on = DemoSignOn()
    access = Access()
    directory = StaffDirectory()
    labels = Labels()

    @property
    def _mallcare(self):
        return self.config.get("MALLCARE") or {}

    @http("GET", "/")
    def index(self, request):
        return self._file("index.html")

    @http("GET", "/static/<path:name>")
    def static(self, request, name):
        return self._file(name)

    @http("GET", "/sign-in")
    def sign_in(self, request):
        return json_response(
            200, {"demo": self.demo_sign_on is not None, "sign_on_url": self._mallcare.get("SIGN_ON_URL") or None}
        )

    @http("GET", "/.well-known/jwks.json")
    def jwks(self, request):
        """The public keys tokens are verified with, for whoever checks a mallcare token."""
        return json_response(200, self.access.public_keys())

    @http("GET", "/session")
    def session(self, request):
        """Who the Bearer token is for, so a token from the sign-on can start a session."""
        try:
            caller = self._staff_caller(request)
        except Unauthenticated:
            SIGN_INS.labels("sign_on", "refused").inc()
            raise
        SIGN_INS.labels("sign_on", "ok").inc()
        member = self.directory.members.get(caller.user, {})
        return json_response(
            200,
            {
                "user": caller.user,
                "name": member.get("name"),
                "role": caller.role,
                "malls": list(caller.malls),
                "may": self.directory.may(caller.role, self.access.permissions()),
            },
        )

    @http("GET", "/labels")
    def get_labels(self, request):
        """For every page, signed in or not (the sign-in page names roles and malls too)."""
        return json_response(200, self.labels)

    @http("GET", "/staff")
    def staff(self, request):
        """For the demo picker, and for signed-in staff's owner and attendee pickers; without the
        demo, no names to anyone not signed in."""
        if self.demo_sign_on is None:
            self._staff_caller(request)
        return json_response(
            200,
            {
                "items": [
                    {k: m[k] for k in ("id", "name", "role", "department", "malls") if k in m}
                    for m in self.directory.members.values()
                ]
            },
        )

    @http("POST", "/login")
    def login(self, request):
        if self.demo_sign_on is None:
            return json_response(404, {"error": "NOT_FOUND", "message": "sign in through the chain's sign-on"})
        staff_id = LoginIn().load(read_json(request))["staff_id"].strip().upper()
        member = self.directory.members.get(staff_id)
        if member is None:
            SIGN_INS.labels("demo", "refused").inc()
            refused = Unauthenticated("unknown staff id", "unknown_staff")
            audit_refused(
                self.name, refused, "demo", client_address(request, forwarded_hops(self.config)), request.path, request
            )
            return json_response(
                401,
                {
                    "error": "UNAUTHENTICATED",
                    "message": "unknown staff id",
                    "fields": {"staff_id": ["not in the staff directory"]},
                },
            )
        token = self.demo_sign_on(member)
        SIGN_INS.labels("demo", "ok").inc()
        log.info("console sign-in (demo) of %s as %s", member["id"], member["role"])
        return json_response(
            200,
            {
                "token": token,
                "user": member["id"],
                "name": member.get("name"),
                "role": member["role"],
                "malls": member["malls"],
                "may": self.directory.may(member["role"], self.access.permissions()),
            },
        )

    @http("GET", "/api/<string:service>/<path:rest>")
    def proxy_get(self, request, service, rest):
        return self._proxy(request, service, rest)

    @http("POST", "/api/<string:service>/<path:rest>")
    def proxy_post(self, request, service, rest):
        return self._proxy(request, service, rest)

    @http("GET", "/health")
    def health(self, request):
        """Ready when every upstream answers its liveness check (the console is useless without them)."""
        upstreams = {}
        for name in UPSTREAM_NAMES:
            try:
                ok = self.upstreams[name].request("GET", "/health/live", timeout=2).status < 400
            except HTTPError:
                ok = False
            upstreams[name] = "ok" if ok else "unreachable"
        ready = all(v == "ok" for v in upstreams.values())
        return json_response(
            200 if ready else 503,
            {"service": self.name, "status": "ok" if ready else "degraded", "upstreams": upstreams},
        )

    @http("GET", "/health/live")
    def live(self, request):
        return json_response(200, {"service": self.name, "status": "ok"})

    @http("GET", "/metrics")
    def metrics(self, request):
        return metrics_response()

    # -- helpers --------------------------------------------------------------------------

    def _staff_caller(self, request):
        """The member of staff the request's token is for; Unauthenticated (401) otherwise
        (no token, a bad one, or a channel's or service's)."""
        caller = self.access.caller(request)
        if caller.kind != "staff":
            raise Unauthenticated("the console is for staff: sign in with a staff token", "not_staff")
        return caller

    def _proxy(self, request, service, rest):
        if service not in UPSTREAM_NAMES:
            raise NotFound(f"no service {service!r}")
        path = "/" + quote(rest)
        query = urlencode(list(request.args.items(multi=True)))
        headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
        headers["X-Request-Id"] = request_id(request)  # one id for the console's line and the service's
        try:
            with UPSTREAM_SECONDS.labels(service).time():
                answer = self.upstreams[service].request(
                    request.method,
                    f"{path}?{query}" if query else path,
                    body=request.get_data() or None,
                    headers=headers,
                    timeout=TIMEOUT_SECONDS,
                )
        except HTTPError as exc:
            log.warning("console: %s %s %s did not answer: %r", request.method, service, path, exc)
            PASSED_ON.labels(service, "503").inc()
            return json_response(503, {"error": "UNAVAILABLE", "message": f"{service} did not answer"})
        PASSED_ON.labels(service, str(answer.status)).inc()
        kept = {k: v for k, v in answer.headers.items() if k in ("Content-Type", "Retry-After", "WWW-Authenticate")}
        return Response(answer.data, status=answer.status, headers=kept)

    def _file(self, name):
        try:
            path = (STATIC / name).resolve()
            found = STATIC in path.parents and path.is_file()
        except (ValueError, OSError):  # a NUL in the name ("embedded null byte"), a name too long
            found = False
        if not found:
            raise NotFound(f"no file {name[:100]!r}")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "text/javascript"):
            kind += "; charset=utf-8"
        return Response(
            path.read_bytes(),
            status=200,
            headers={"Content-Type": kind, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )
