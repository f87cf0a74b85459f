"""A triaged complaint's new case: triage's grading, owner and deadlines, a review
meeting for a cross-department dispute (R2.4), at the first level."""

from datetime import datetime

from mallcare_common.contracts import resolution as events

from ..policy import ResolutionPolicy

from .authority import FIRST_LEVEL
from .leadership import take_lead
from .step import Actor, Doc, Step


def new_case(event: Doc, policy: ResolutionPolicy, now: datetime) -> tuple[Doc, list[Doc]]:
    """The case of a triaged complaint, and its events for the outbox of its insert:
    case_opened, and case_lead_assigned when it opens high risk (R7.7)."""
    triaged, mall_id = event["payload"], event["mall_id"]
    meeting = None
    if triaged["review_meeting"]:
        convenor_role = policy.rules["permissions"]["review_meeting"][0]
        convenor = policy.first_staff(mall_id, convenor_role)
        meeting = {
            "due_at": policy.calendar(mall_id).due(now, policy.rules["deadlines"]["review_meeting"]),
            "convenor_id": convenor and convenor.id,
            "departments": triaged["departments_involved"],
            "decided_at": None,
        }
    case = {
        "_id": event["complaint_no"],
        "mall_id": mall_id,
        "state": "open",
        "version": 0,
        "round": 1,
        "level": FIRST_LEVEL,
        "opened_at": now,
        "triaged_event_id": event["event_id"],
        "channel": triaged["channel"],
        "received_at": triaged["received_at"],
        "merchant_id": triaged["merchant_id"],
        "category": triaged["category"],
        "risk_level": triaged["risk_level"],
        "risk_reasons": [r["reason"] for r in triaged["risk_reasons"]],  # which lead a high risk calls for (R7.7)
        "lead": None,
        "urgency": triaged["urgency"],
        "demand": triaged["demand"],  # what the customer asks, as triage read it (R3.4 "above the law")
        "department": triaged["department"],
        "owner_id": triaged["owner_id"],
        "first_response_due_at": triaged["first_response_due_at"],
        "resolution_due_at": triaged["resolution_due_at"],
        "review_meeting": meeting,
        "expected_resolution": None,
        "findings": [],
        "proposals": [],
        "objections": [],
        "escalations": [],
        "tasks": [],
        "rectifications": [],
        "merchant_requests": [],  # R7.5 sent to the tenant, its replies
        "merchant_access": None,  # the merchant the case is with now (its key reads and answers it)
        "resolution": None,
        "closure": None,
        "closure_by_rule": None,
        "referrals": [],  # third-party mediation (R7.9)
        "policy_version": policy.version,
        "timeline": [],
        "request_ids": [event["event_id"]],
    }
    step = Step(case, Actor("triage", "service"), now)
    step.log(
        "opened",
        department=case["department"],
        owner_id=case["owner_id"],
        risk_level=case["risk_level"],
        resolution_due_at=case["resolution_due_at"],
        review_meeting=meeting,
    )
    step.publish(
        events.CASE_OPENED,
        {
            "category": case["category"],
            "risk_level": case["risk_level"],
            "department": case["department"],
            "owner_id": case["owner_id"],
            "level_role": FIRST_LEVEL,
            "resolution_due_at": case["resolution_due_at"].isoformat(),
            "review_meeting_due_at": meeting and meeting["due_at"].isoformat(),
            "convenor_id": meeting and meeting["convenor_id"],
            "policy_version": policy.version,
        },
    )
    take_lead(step, policy)
    case.update(step.changes, timeline=step.entries)
    return case, step.events
