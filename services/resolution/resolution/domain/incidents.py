"""Adverse events reported by a store (R3.9, R7.10) as plain functions: the report with
when and where it happened, the store manager's verification and forwarding to the
regional manager (due 24 h after the report), the regional manager's handling (due 48 h
after forwarding) once the customer agreed a handling plan (seed 003: 詢問客戶意見，確認處
理方案), and the regional manager telling the customer the outcome, the improvements and
any compensation, due the policy's hours after the handling (seed 003: 區域經理需及時將處
理結果反饋給客戶); the ACTIONS table as for cases."""

from datetime import date, datetime, timedelta

from marshmallow import ValidationError

from mallcare_common.contracts import resolution as events
from mallcare_common.personal import mask_contact, mask_text

from ..policy import ResolutionPolicy
from ..schemas import AgreementIn, CommunicationIn, HandlingIn, VerificationIn
from .authority import require
from .compliance import yuan
from .errors import StateConflict
from .step import Actor, Doc, Step

CLOCK_SKEW = timedelta(minutes=5)  # a desk's clock a little ahead of ours is no time travel
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
    if request["occurred_at"] > now + CLOCK_SKEW:
        raise ValidationError({"occurred_at": ["When it happened cannot be later than now."]})
    merchant = request["place"]["merchant_id"]
    if merchant and merchant not in {m["id"] for m in policy.malls[mall_id].merchants}:
        raise ValidationError({"place": {"merchant_id": [f"No merchant {merchant} at this mall."]}})
    due = policy.calendar(mall_id).due(now, policy.rules["incidents"]["forward"])
    doc = {
        "_id": number,
        "mall_id": mall_id,
        "state": "reported",
        "version": 0,
        "reported_at": now,
        "reported_by": actor.id,
        **{
            k: request.get(k)
            for k in (
                "type",
                "occurred_at",
                "place",
                "description",
                "customer",
                "suggested_handling",
                "related_complaint_no",
            )
        },
        "forward_due_at": due,
        "verification": None,
        "regional_manager_id": None,
        "handling_due_at": None,
        "agreements": [],
        "handling": None,
        "communicate_due_at": None,
        "communication": None,
        "policy_version": policy.version,
        "timeline": [],
        "request_ids": [request["request_id"]] if request.get("request_id") else [],
    }
    step = IncidentStep(doc, actor, now)
    step.log(
        "reported", type=doc["type"], occurred_at=doc["occurred_at"], area=doc["place"]["area"], forward_due_at=due
    )
    step.publish(
        events.INCIDENT_REPORTED,
        {
            "type": doc["type"],
            "occurred_at": doc["occurred_at"].isoformat(),
            "place": doc["place"],
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


def agree(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The regional manager puts a handling plan to the customer and records their answer;
    a plan the customer turned down is kept too, and another is put to them."""
    require("handle_incident", step.actor, policy, "consult the customer on an incident's handling")
    if step.case["state"] != "forwarded":
        raise StateConflict(f"an incident that is {step.case['state']} is not awaiting handling")
    agreement = {k: request.get(k) for k in ("plan", "agreed", "via", "note")} | {"at": step.now, "by": step.actor.id}
    step.changes["agreements"] = [*step.case.get("agreements", []), agreement]
    step.log("customer_consulted", plan=request["plan"], agreed=request["agreed"], via=request["via"])


def handle(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The regional manager decides the outcome, the improvements and any compensation,
    on a plan the customer agreed."""
    require("handle_incident", step.actor, policy, "handle an incident")
    if step.case["state"] != "forwarded":
        raise StateConflict(f"an incident that is {step.case['state']} is not awaiting handling")
    agreements = step.case.get("agreements") or []
    if not agreements or not agreements[-1]["agreed"]:
        raise StateConflict(
            "the customer has not agreed a handling plan: put one to them and record their answer first (agreement)"
        )
    within = step.now <= step.case["handling_due_at"]
    tell_by = policy.calendar(step.case["mall_id"]).due(step.now, policy.rules["incidents"]["communicate"])
    step.changes["communicate_due_at"] = tell_by
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
            "communicate_due_at": tell_by.isoformat(),
            "by": step.actor.id,
        },
    )


def communicate(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The regional manager tells the customer the outcome, the improvements and any compensation."""
    require("handle_incident", step.actor, policy, "tell the customer an incident's outcome")
    step.move("communicated")
    due = step.case.get("communicate_due_at")
    within = due is None or step.now <= due
    step.changes["communication"] = {
        "at": step.now,
        "by": step.actor.id,
        "via": request["via"],
        "note": request.get("note"),
        "within_deadline": within,
    }
    step.log("communicated", via=request["via"], note=request.get("note"), within_deadline=within)
    step.publish(events.INCIDENT_COMMUNICATED, {"within_deadline": within, "by": step.actor.id})


# action -> (what it accepts, the function that decides it)
ACTIONS = {
    "verification": (VerificationIn, verify),
    "agreement": (AgreementIn, agree),
    "handling": (HandlingIn, handle),
    "communication": (CommunicationIn, communicate),
}
