"""SLA clocks as plain functions (R5.5, R6.2; the deadlines of R1.2, R2.3, R2.4, R3.2,
R3.6-R3.9, R4.1, R4.2). Every deadline another service sets starts a clock from the event
that sets it, and the event that meets it stops the clock. A clock ends as met
(stopped by its deadline), breached (the deadline passed: published once), met
late (stopped after a breach), or cancelled (its obligation lapsed: the case closed, the
revisit was called off). No I/O and no clock of its own: callers pass `now`.

Closing a case ends every clock of its handling (`ending`): the first-response and
resolution clocks are met or met late by the closing time (the closure settles the
case); the others (the acknowledgement, execution tasks, a re-review, a review meeting, a
promised time) are cancelled and count neither as met nor as breached; a breach already announced
stays a breach, and so does a deadline passed before the closure (`outcome`). Rectifications are the mall's
improvement work (they may be added after
the case closed): they run on. A revisit ends by feedback's own word only (`revisit_done`,
or `revisit_cancelled` for one a closure made moot). A clock's owner is a person or, for the clocks a
channel, a service, a role, a merchant or an unowned complaint's department keeps, that channel,
service, role, merchant or department (`owner_kind`: person, channel, service, role, merchant,
department; None on a reopened round's resolution clock, which the store gives the case's
handler). R7.5: a merchant's reply to a tenant's case sent to it is the merchant's clock, and so
is a rectification given to it; taking the case back cancels a reply still awaited.

Events of one complaint come on several queues, so a stop can arrive before its
start; the store applies these operations as upserts that commute."""

from dataclasses import dataclass
from datetime import timedelta

from mallcare_common.contracts import build_event
from mallcare_common.contracts.analytics import SLA_AT_RISK, SLA_BREACHED


@dataclass(frozen=True)
class Start:
    clock_id: str
    clock: str
    fields: dict  # mall_id, complaint_no, started_at, due_at, owner, department


@dataclass(frozen=True)
class Stop:
    clock_id: str
    at: object
    cancelled: bool = False  # its obligation lapsed (a cancelled revisit)


@dataclass(frozen=True)
class Close:
    """The case closed: every running clock of its handling ends (see `ending`)."""

    complaint_no: str
    at: object


@dataclass(frozen=True)
class Promise:
    """The customer was told when to expect a resolution (R3.2): a running promise that has
    not breached moves to the new time, otherwise a new promised clock starts (`start`)."""

    complaint_no: str
    start: Start


@dataclass(frozen=True)
class StopAll:
    """Stop every open clock of one kind of a complaint (re-reviews: the next answer meets them all)."""

    complaint_no: str
    clock: str
    at: object


@dataclass(frozen=True)
class Move:
    """A regraded complaint: the deadline (and the department) changed."""

    clock_id: str
    due_at: object
    department: str


@dataclass(frozen=True)
class Reassign:
    """A complaint given to another handler: its running handling clocks are theirs now."""

    complaint_no: str
    owner: str
    department: str


HANDLER_CLOCKS = ("first_response", "resolution")
# Clocks a closure meets (by the closing time); every other clock of the case it cancels,
# except the ones that outlive the case, and the revisit: feedback ends it (revisit_done, or
# revisit_cancelled when the closure made it moot). The answer that closes a case comes with
# its revisit_done on another queue; a closure applied first would cancel a revisit done in time.
SETTLED_BY_CLOSURE = ("first_response", "resolution")
INCIDENT_CLOCKS = ("incident_forwarding", "incident_handling", "incident_communication")
OUTLIVE_THE_CASE = ("rectification", *INCIDENT_CLOCKS, "revisit")


def owner_kind(clock):
    """Who keeps a clock: as stored when it started; clocks stored before owner kinds were
    recorded by their kind (the channel acknowledges, feedback revisits, the store manager forwards)."""
    return clock.get("owner_kind") or {
        "acknowledgement": "channel",
        "revisit": "service",
        "incident_forwarding": "role",
    }.get(clock["clock"], "person")


def clock_id(complaint_no, clock, key=1):
    return f"{complaint_no}|{clock}|{key}"


def operations(event):
    """What one event does to the clocks (an empty list for most events)."""
    kind, p, number, at = event["event_type"], event["payload"], event["complaint_no"], event["occurred_at"]

    def start(clock, key, started_at, due_at, owner, department=None, owner_kind="person"):
        return Start(
            clock_id(number, clock, key),
            clock,
            {
                "mall_id": event["mall_id"],
                "complaint_no": number,
                "started_at": started_at,
                "due_at": due_at,
                "owner": owner,
                "owner_kind": owner_kind if owner or owner_kind is None else "department",
                "department": department,
            },
        )

    def stop(clock, key=1, when=at):
        return Stop(clock_id(number, clock, key), when)

    if kind == "complaint_registered":
        return [start("acknowledgement", 1, p["received_at"], p["ack_due_at"], p["channel"], owner_kind="channel")]
    if kind == "complaint_acknowledged":
        return [stop("acknowledgement", when=p["acknowledged_at"])]
    if kind == "complaint_triaged":
        # an unowned complaint's clocks are its department's until someone takes it
        owner, kind_ = (p["owner_id"], "person") if p["owner_id"] else (p["department"], "department")
        return [
            start(name, 1, p["received_at"], p[f"{name}_due_at"], owner, p["department"], kind_)
            for name in HANDLER_CLOCKS
        ]
    if kind == "complaint_corrected":
        moves = [
            Move(clock_id(number, "first_response"), p["first_response_due_at"], p["department"]),
            Move(clock_id(number, "resolution"), p["resolution_due_at"], p["department"]),
        ]
        # a correction to another department names its new owner, as triage and the case do
        return moves + [Reassign(number, p["owner_id"], p["department"])] if p["owner_id"] else moves
    if kind == "complaint_reassigned":
        return [Reassign(number, p["to_owner_id"], p["department"])]
    if kind == "case_opened" and p["review_meeting_due_at"]:
        return [start("review_meeting", 1, at, p["review_meeting_due_at"], p["convenor_id"], p["department"])]
    if kind == "review_meeting_decided":
        return [stop("review_meeting")]
    if kind == "customer_contacted":
        return [stop("first_response")]
    if kind == "time_promised":  # told the customer: a first response, and a promise to keep
        return [
            stop("first_response"),
            Promise(number, start("promised", at.isoformat(), at, p["expected_by"], p["by"])),
        ]
    if kind == "case_proposed":
        return [stop("first_response"), StopAll(number, "re_review", at)]
    if kind == "case_escalated" and p["re_review_due_at"]:
        return [
            start(
                "re_review",
                p["re_review_due_at"].isoformat(),
                at,
                p["re_review_due_at"],
                p["to_staff_id"] or p["to_role"],
                owner_kind="person" if p["to_staff_id"] else "role",
            )
        ]
    if kind == "case_accepted":
        return [start("execution", t["task_id"], at, t["due_at"], p["by"]) for t in p["tasks"]]
    if kind == "execution_task_done":
        return [stop("execution", p["task_id"], p["done_at"])]
    if kind == "case_resolved":
        return [stop("first_response"), stop("resolution", p["round"]), StopAll(number, "promised", at)]
    if kind == "case_closed":
        return [Close(number, at)]
    if kind == "case_reopened":
        # the case's handler keeps it (the store copies the first round's owner), not who reopened it
        return [start("resolution", p["round"], at, p["resolution_due_at"], None, owner_kind=None)]
    if kind == "rectification_due":
        if p.get("merchant_id"):  # the merchant manages the thing at fault and rectifies it (R7.5)
            return [
                start("rectification", p["rectification_id"], at, p["due_at"], p["merchant_id"], owner_kind="merchant")
            ]
        return [start("rectification", p["rectification_id"], at, p["due_at"], p["owner_id"])]
    if kind == "merchant_reply_requested":
        return [start("merchant_reply", p["request_id"], at, p["due_at"], p["merchant_id"], owner_kind="merchant")]
    if kind == "merchant_replied":
        return [stop("merchant_reply", p["request_id"], p["replied_at"])]
    if kind == "merchant_taken_back" and p["awaiting"]:
        return [Stop(clock_id(number, "merchant_reply", p["request_id"]), at, cancelled=True)]
    if kind == "rectification_done":
        return [stop("rectification", p["rectification_id"], p["done_at"])]
    if kind == "incident_reported":
        return [start("incident_forwarding", 1, at, p["forward_due_at"], "store_manager", owner_kind="role")]
    if kind == "incident_forwarded":
        return [
            stop("incident_forwarding"),
            start("incident_handling", 1, at, p["handling_due_at"], p["regional_manager_id"]),
        ]
    if kind == "incident_dismissed":
        return [stop("incident_forwarding")]
    if kind == "incident_handled":
        told = p.get("communicate_due_at")  # R7.10: reported before 2026-12-06, none
        return [stop("incident_handling")] + ([start("incident_communication", 1, at, told, p["by"])] if told else [])
    if kind == "incident_communicated":
        return [stop("incident_communication")]
    if kind == "revisit_scheduled":
        return [start("revisit", p["revisit_id"], at, p["due_at"], "feedback", owner_kind="service")]
    if kind == "revisit_done":
        return [stop("revisit", p["revisit_id"])]
    if kind == "revisit_cancelled":
        return [Stop(clock_id(number, "revisit", p["revisit_id"]), at, cancelled=True)]
    return []


def at_risk_at(started_at, due_at, share):
    """When `share` of the allowed time has gone (never before the start)."""
    return started_at + max(due_at - started_at, timedelta(0)) * share


def ending(clock):
    """How a case's closure ends this clock: "stop" (met or met late by the closing time),
    "cancel", or None (it runs on)."""
    if clock in OUTLIVE_THE_CASE:
        return None
    return "stop" if clock in SETTLED_BY_CLOSURE else "cancel"


LATE_ENDS = ("case_resolved", "case_closed")


def late_end(clock, ends):
    """A clock whose start arrives after the event that ends it was applied (events come
    on several queues): (when, cancelled) of the earliest such end at or after its start,
    or None. `ends`: (event_type, occurred_at) of the complaint's LATE_ENDS events."""
    for kind, at in sorted(ends, key=lambda e: e[1]):
        if at < clock["started_at"]:
            continue
        if kind == "case_resolved" and clock["clock"] == "promised":
            return at, False
        if kind == "case_closed" and ending(clock["clock"]):
            return at, ending(clock["clock"]) == "cancel"
    return None


def outcome(clock):
    """met / met_late / cancelled for a stopped clock with a deadline; None while either is
    missing. An obligation that lapsed only after its deadline had passed was breached: it
    ends met_late like a late stop (its breach published then if the sweep had not caught
    it), so the outcome does not depend on whether the sweep ran in between."""
    if clock.get("stopped_at") is None or clock.get("due_at") is None:
        return None
    if clock["stopped_at"] > clock["due_at"]:
        return "met_late"
    return "cancelled" if clock.get("cancelled") else "met"


def _payload(clock):
    return {
        "clock_id": clock["_id"],
        "clock": clock["clock"],
        "owner": clock.get("owner"),
        "department": clock.get("department"),
        "started_at": clock["started_at"].isoformat(),
        "due_at": clock["due_at"].isoformat(),
    }


def at_risk_event(clock, now):
    return build_event(
        SLA_AT_RISK,
        mall_id=clock["mall_id"],
        complaint_no=clock["complaint_no"],
        occurred_at=now,
        payload={**_payload(clock), "at_risk_at": clock["at_risk_at"].isoformat()},
    )


def breach_event(clock, labels, now):
    """`labels`: the complaint's category and risk level, as triage last graded it."""
    return build_event(
        SLA_BREACHED,
        mall_id=clock["mall_id"],
        complaint_no=clock["complaint_no"],
        occurred_at=now,
        payload={
            **_payload(clock),
            "category": labels.get("category"),
            "risk_level": labels.get("risk_level"),
            "lag_seconds": round(max((now - clock["due_at"]).total_seconds(), 0.0), 3),
        },
    )
