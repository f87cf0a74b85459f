"""R7.7 (seed 002: 高风险投诉需由运营/法务负责人介入): a high-risk case is led, not only
approved, by the mall's operations or legal lead. The policy's `high_risk_lead` says which
role by the case's risk reasons and category; the first of that role at the mall becomes
the case's accountable lead beside the owner who works it, is told at once (the
case_lead_assigned event, which notify turns into a message to them), and signs off each
proposal before it is given to the customer."""

from typing import Any

from mallcare_common.contracts import resolution as events

from ..policy import ResolutionPolicy
from .errors import NoAuthority, StateConflict
from .step import Doc, Step


def lead_role(case: Doc, policy: ResolutionPolicy) -> tuple[str, list[str]]:
    """The role that leads `case` when it is high risk, and the risk reasons or category
    that chose it (none: the policy's default)."""
    rules = policy.rules["high_risk_lead"]
    reasons, category = set(case.get("risk_reasons") or ()), case.get("category")
    for rule in rules["rules"]:
        because = sorted(reasons & set(rule["risk_reasons"])) + ([category] if category in rule["categories"] else [])
        if because:
            return rule["role"], because
    return rules["default"], []


def take_lead(step: Step, policy: ResolutionPolicy) -> None:
    """A case that is (or has become) high risk gets its lead, or a new one when a
    correction calls for the other role; the lead is told by the event. A case graded
    down keeps its lead on record, with nothing left to sign off."""
    case = {**step.case, **step.changes}
    if case["risk_level"] != "high":
        return
    role, because = lead_role(case, policy)
    current = case.get("lead")
    if current and current["role"] == role:
        return
    staff = policy.first_staff(case["mall_id"], role)
    lead = {
        "staff_id": staff and staff.id,
        "name": staff and staff.name,
        "role": role,
        "because": because,
        "assigned_at": step.now,
    }
    step.changes["lead"] = lead
    previous = current and current["staff_id"]
    step.log("lead_assigned", lead_id=lead["staff_id"], role=role, because=because, previous_lead_id=previous)
    step.publish(
        events.CASE_LEAD_ASSIGNED,
        {
            "lead_id": lead["staff_id"],
            "lead_role": role,
            "because": because,
            "previous_lead_id": previous,
            "category": case["category"],
            "owner_id": case["owner_id"],
        },
    )


def needs_sign_off(case: Doc) -> bool:
    return case["risk_level"] == "high" and bool(case.get("lead"))


def check_signed_off(case: Doc, proposal: Doc) -> None:
    """Refused (409) while a high-risk case's answer waits for its lead's sign-off."""
    if needs_sign_off(case) and not proposal.get("signed_off"):
        lead = case["lead"]
        who = f"{lead['name']} ({lead['staff_id']}, {lead['role']})" if lead["staff_id"] else f"the {lead['role']}"
        raise StateConflict(
            f"this high-risk case is led by {who}: proposal {proposal['no']} goes to the customer "
            "only once they sign it off"
        )


def sign_off(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The lead signs off the current proposal for the customer (before or after its
    approval, which the caps and limits still need)."""
    case = step.case
    if case["state"] != "proposed":
        raise StateConflict(f"cannot sign off an answer on a case that is {case['state']} (only when proposed)")
    if not needs_sign_off(case):
        raise StateConflict("only a high-risk case's answer is signed off by its lead")
    lead = case["lead"]
    # the named lead; when the mall has no one of the role on record, whoever holds it
    if step.actor.id != lead["staff_id"] and (lead["staff_id"] or step.actor.role != lead["role"]):
        raise NoAuthority(
            f"{step.actor.id} ({step.actor.role}) may not sign off: this case is led by "
            f"{lead['staff_id'] or 'the ' + lead['role']}"
        )
    proposals: list[Doc] = case["proposals"]
    current = proposals[-1]
    if current["no"] != request["proposal_no"]:
        raise StateConflict(f"proposal {request['proposal_no']} is not the current one ({current['no']})")
    if current["status"] not in ("awaiting_approval", "approved"):
        raise StateConflict(f"proposal {current['no']} is {current['status']}: there is nothing to sign off")
    if current.get("signed_off"):
        raise StateConflict(f"proposal {current['no']} is signed off already")
    signed: dict[str, Any] = {"by": step.actor.id, "role": step.actor.role, "at": step.now}
    step.changes["proposals"] = [*proposals[:-1], {**current, "signed_off": signed}]
    step.log("signed_off", proposal_no=current["no"], lead_id=step.actor.id, note=request.get("note"))
