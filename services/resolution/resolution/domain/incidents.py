"""Adverse events reported by a store (R3.9) as plain functions: the report, the
store manager's verification and forwarding to the regional manager (due 24 h
after the report), the regional manager's handling (due 48 h after forwarding),
and telling the customer the outcome, the improvements and any compensation; the
ACTIONS table as for cases."""

from datetime import date, datetime

from marshmallow import ValidationError

from mallcare_common.contracts import resolution as events
from mallcare_common.personal import mask_contact, mask_text

from ..policy import ResolutionPolicy
from ..schemas import CommunicationIn, HandlingIn, VerificationIn
from .authority import require
from .compliance import yuan
from .errors import StateConflict
from .step import Actor, Doc, Step

TRANSITIONS = {
    "reported": ("forwarded", "dismissed"),
    "forwarded": ("handled",),
    "handled": ("communicated",),
}


class IncidentStep(Step):
    transitions = TRANSITIONS
    what = "incident"


def incident_number(mall_code: str, local_date: date, seq: int) -> str:
    return f"{mall_code}-AE-{local_date:%Y%m%d}-{seq:03d}"


def new_incident(number: str, request: Doc, actor: Actor, policy: ResolutionPolicy, now: datetime) -> tuple[Doc, Doc]:
    """The reported incident, and its incident_reported event (for the outbox of its insert)."""
    mall_id = request["mall_id"]
    if request["type"] not in policy.rules["incidents"]["types"]:
        raise ValidationError({"type": [f"Not an incident type: {', '.join(policy.rules['incidents']['types'])}."]})
    due = policy.calendar(mall_id).due(now, policy.rules["incidents"]["forward"])
    doc = {
        "_id": number,
        "mall_id": mall_id,
        "state": "reported",
        "version": 0,
        "reported_at": now,
        "reported_by": actor.id,
        **{
            k: request.get(k) for k in ("type", "description", "customer", "suggested_handling", "related_complaint_no")
        },
        "forward_due_at": due,
        "verification": None,
        "regional_manager_id": None,
        "handling_due_at": None,
        "handling": None,
        "communication": None,
        "policy_version": policy.version,
        "timeline": [],
        "request_ids": [request["request_id"]] if request.get("request_id") else [],
    }
    step = IncidentStep(doc, actor, now)
    step.log("reported", type=doc["type"], forward_due_at=due)
    step.publish(
        events.INCIDENT_REPORTED,
        {
            "type": doc["type"],
            "contact_masked": mask_contact(doc["customer"] or {}),
            "forward_due_at": due.isoformat(),
            "related_complaint_no": doc["related_complaint_no"],
            "by": actor.id,
        },
    )
    doc["timeline"] = step.entries
    return doc, step.events[0]


def verify(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The store manager confirms it (forwarded to the regional manager) or dismisses it."""
    require("verify_incident", step.actor, policy, "verify an incident")
    incident, now = step.case, step.now
    within = now <= incident["forward_due_at"]
    step.changes["verification"] = {
        "at": now,
        "by": step.actor.id,
        "confirmed": request["confirmed"],
        "note": request["note"],
        "within_deadline": within,
    }
    if not request["confirmed"]:
        step.move("dismissed")
        step.log("dismissed", note=request["note"])
        # the event's reason without the customer's name (build_event scrubs the rest)
        step.publish(
            events.INCIDENT_DISMISSED, {"reason": mask_text(request["note"], incident["customer"]), "by": step.actor.id}
        )
        return
    step.move("forwarded")
    manager = policy.first_staff(incident["mall_id"], policy.rules["permissions"]["handle_incident"][0])
    due = policy.calendar(incident["mall_id"]).due(now, policy.rules["incidents"]["handle"])
    step.changes.update(regional_manager_id=manager and manager.id, handling_due_at=due)
    step.log("forwarded", regional_manager_id=manager and manager.id, handling_due_at=due, within_deadline=within)
    step.publish(
        events.INCIDENT_FORWARDED,
        {
            "regional_manager_id": manager and manager.id,
            "forward_due_at": incident["forward_due_at"].isoformat(),
            "within_deadline": within,
            "handling_due_at": due.isoformat(),
            "by": step.actor.id,
        },
    )


def handle(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The regional manager decides the outcome, the improvements and any compensation."""
    require("handle_incident", step.actor, policy, "handle an incident")
    if step.case["state"] != "forwarded":
        raise StateConflict(f"an incident that is {step.case['state']} is not awaiting handling")
    within = step.now <= step.case["handling_due_at"]
    step.move("handled")
    step.changes["handling"] = {
        "at": step.now,
        "by": step.actor.id,
        "outcome": request["outcome"],
        "improvements": request["improvements"],
        "compensation_fen": request["compensation_fen"],
        "within_deadline": within,
    }
    step.log(
        "handled",
        outcome=request["outcome"],
        improvements=request["improvements"],
        compensation=yuan(request["compensation_fen"]),
        within_deadline=within,
    )
    step.publish(
        events.INCIDENT_HANDLED,
        {
            "handling_due_at": step.case["handling_due_at"].isoformat(),
            "within_deadline": within,
            "compensation_fen": request["compensation_fen"],
            "by": step.actor.id,
        },
    )


def communicate(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The customer is told the outcome, the improvements and any compensation."""
    step.move("communicated")
    step.changes["communication"] = {
        "at": step.now,
        "by": step.actor.id,
        "via": request["via"],
        "note": request.get("note"),
    }
    step.log("communicated", via=request["via"], note=request.get("note"))
    step.publish(events.INCIDENT_COMMUNICATED, {"by": step.actor.id})


# action -> (what it accepts, the function that decides it)
ACTIONS = {
    "verification": (VerificationIn, verify),
    "handling": (HandlingIn, handle),
    "communication": (CommunicationIn, communicate),
}
