"""The one base of every mallcare service.

    class FeedbackService(Service):
        name = "feedback"
        store = Revisits()                                  # required: the service's own database
        policy = PolicyFiles("feedback.yml", load_policy)   # opts into policy admin
        dispatch = outbox_dispatcher()                      # opts into the outbox relay

`Service` declares what every service has, `access` (auth.Access), `clock`
(calendar.Clock) and `readiness` (health.Readiness), and serves GET /health, /health/live, /metrics and
/openapi.json. The rest a service takes by declaring the dependency it rests on:

| declared dependency                 | what the service then also serves                                      |
|-------------------------------------|------------------------------------------------------------------------|
| `PolicyFiles(...)`                  | GET /policy, POST /policy/reload (RPC get_policy, reload_policy); a    |
|                                     | reload reaches every replica (PolicyAdmin below)                       |
| `messaging.outbox_dispatcher()`     | the outbox relay, a leased timer (messaging.OutboxRelay)               |
| `audit.AuditLog()`                  | GET /audit, RPC audit_log (audit.AuditReads)                           |
| `retention.Retention(anonymise)`    | POST /retention/run, RPC run_retention, the hourly sweep               |
|                                     | (retention.RetentionAdmin; needs the policy's retention_months)        |

When the class is created, each such part's entrypoints are put on it, after checking
that the class declares what the part uses: a TypeError says what is missing, at import,
not an AttributeError in the first request. `nameko run feedback.service:FeedbackService`
starts that class alone.
"""

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from werkzeug.wrappers import Request, Response

from . import audit, messaging, retention
from .auth import Access, Gate
from .calendar import Clock
from .capabilities import require
from .health import Readiness
from .metrics import metrics_response
from .mongo import MongoDatabase, ping
from .openapi import HealthOut, LiveOut, Op, PolicyVersionOut, build as build_openapi, documented_operations
from .operations import operation
from .policy import InvalidPolicy, PolicyFiles
from .replicas import ReplicaBroadcast, replica_handler
from .web import http, json_response, jsonable

log = logging.getLogger(__name__)

POLICY_RELOADED = "policy_reloaded"  # between replicas of a service (replicas.py), not a domain event


class PolicyAdmin:
    """The policy in force and its reload, for a service that declares a PolicyFiles
    dependency. A reload that took is told to the service's other replicas, which read the
    same files: one call reloads them all."""

    needs: ClassVar[Mapping[str, type]] = {"policy": PolicyFiles}
    # as the service's workers see them
    policy: Any
    access: Gate

    replicas = ReplicaBroadcast()

    @operation(Op("GET", "/policy", "The policy in force, with its version.", "policy.read"))
    def get_policy(self) -> Any:
        self.access.caller().require("policy.read")
        return jsonable(self.policy.current.public())

    @operation(
        Op(
            "POST",
            "/policy/reload",
            "Read the policy files again; a broken file is refused with its "
            "field messages (422) and the policy in force stays.",
            "policy.reload",
            responses={200: PolicyVersionOut},
            errors=(422,),
        )
    )
    def reload_policy(self) -> dict[str, Any]:
        self.access.caller().require("policy.reload")
        version = self.policy.reload().version
        try:
            self.replicas(POLICY_RELOADED, {"version": version})
        except Exception as exc:  # broker away: this replica reloaded all the same
            log.error(
                "policy %s in force here, but the other replicas were not told (%r): "
                "reload again once the broker answers",
                version,
                exc,
            )
        return {"version": version}

    @replica_handler(POLICY_RELOADED)
    def follow_policy_reload(self, message: dict[str, Any]) -> None:
        """Another replica reloaded: read the same files. A replica that cannot (a file
        changed again and broke) keeps its policy in force and says why."""
        try:
            version = self.policy.reload().version
        except InvalidPolicy as exc:
            log.error(
                "policy reload by another replica (version %s) refused here, %s stays in force: %s",
                message["version"],
                self.policy.current.version,
                exc,
            )
            return
        if version == message["version"]:
            log.info("policy %s in force, as another replica reloaded it", version)
        else:  # the files changed between the two reads, or differ between replicas
            log.warning("policy %s in force here, but the replica that reloaded loaded %s", version, message["version"])


class Part(Protocol):
    """One of PARTS: its members go onto the service class that takes it."""

    needs: ClassVar[Mapping[str, type]]  # what the service must declare, by attribute name


# Each part a service takes by declaring a dependency of this type.
PARTS: tuple[tuple[type, type[Part]], ...] = (
    (PolicyFiles, PolicyAdmin),
    (messaging.OutboxDispatcher, messaging.OutboxRelay),
    (audit.AuditLog, audit.AuditReads),
    (retention.Retention, retention.RetentionAdmin),
)


class Service:
    """See the module's docstring."""

    name: str
    store: Any  # the subclass's MongoDatabase

    access = Access()
    clock = Clock()
    readiness = Readiness()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        require(cls, "Service", name=str, store=MongoDatabase)
        for dependency, part in PARTS:
            if any(isinstance(value, dependency) for value in vars(cls).values()):
                _attach(cls, part)

    @http(
        Op(
            "GET",
            "/health",
            "Readiness: the queue consumers are consuming and the store and the broker both answer"
            " (503 says which is not so: `starting` while the consumers are not yet up).",
            responses={200: HealthOut, 503: HealthOut},
        )
    )
    def health(self, request: Request) -> Response:
        """Readiness: 200 when the queue consumers are up and both the store and the broker
        answer, 503 naming what is not so (nameko reconnects to a lost broker without a word,
        so it is asked here; mallcare_common.health says why the consumers are)."""
        checks = {"store": ping(self.store.db), "broker": self.readiness.broker()}
        consuming = self.readiness.consuming()
        reachable = all(checks.values())
        return json_response(
            200 if reachable and consuming else 503,
            {
                "service": self.name,
                "status": "degraded" if not reachable else "ok" if consuming else "starting",
                **{name: "ok" if ok else "unreachable" for name, ok in checks.items()},
                "consumers": "ok" if consuming else "starting",
            },
        )

    @http(Op("GET", "/health/live", "Liveness: the process serves requests.", responses={200: LiveOut}))
    def live(self, request: Request) -> Response:
        """Liveness: the process serves HTTP. It asks neither store nor broker, so an
        outage of either does not get every replica restarted."""
        return json_response(200, {"service": self.name, "status": "ok"})

    @http(Op("GET", "/metrics", "Prometheus metrics.", responses={200: "text/plain"}))
    def metrics(self, request: Request) -> Response:
        return metrics_response()

    @http(Op("GET", "/openapi.json", "This document.", responses={200: None}))
    def openapi(self, request: Request) -> Response:
        """The service's OpenAPI document (mallcare_common.openapi), built from its operations'
        declarations and the permissions in force; open like /health."""
        return json_response(
            200, build_openapi(self.name, documented_operations(type(self)), self.access.permissions())
        )


def _attach(cls: type, part: type[Part]) -> None:
    require(cls, part.__name__, **part.needs)
    for name, member in vars(part).items():
        if name.startswith("__") or name == "needs":
            continue
        if getattr(cls, name, None) is member:
            continue  # inherited from a service class that took the part already
        if name in vars(cls):
            raise TypeError(f"{cls.__name__}.{name} would hide {part.__name__}'s {name}: rename it")
        setattr(cls, name, member)
