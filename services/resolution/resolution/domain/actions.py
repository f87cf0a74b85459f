"""Each action on a case, as a function of a Step, the request and the policy (R2.4,
R3.1-R3.8, R4.1, R4.2), and the ACTIONS table handlers act through: what each
action accepts and the function that decides it. The other services' events
(triage's corrections, analytics' deadlines, feedback's answers, the customer's
replies intake receives) are decided by the same functions."""

from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from mallcare_common.contracts import resolution as events

from ..policy import ResolutionPolicy, fen
from ..schemas import (
    EscalationIn,
    FindingIn,
    MerchantRectificationDoneIn,
    MerchantReplyIn,
    MerchantRequestIn,
    MediationOutcomeIn,
    NoteIn,
    ObjectionIn,
    PromiseIn,
    ProposalIn,
    ProposalRef,
    ReasonIn,
    RectificationDoneIn,
    RectificationIn,
    ReferralIn,
    ReplyIn,
    ReviewMeetingIn,
    SignOffIn,
    SpotResolutionIn,
    SummaryIn,
    TaskDoneIn,
)
from .authority import approval_needs, lowest_approver, next_level, refusals, require
from . import merchants
from .compliance import check_remedies, paid_compensation, yuan
from .errors import NoAuthority, StateConflict
from .leadership import check_signed_off, sign_off, take_lead
from .mediation import conclude, refer
from .promotions import apply_promotion
from .states import ACTIVE, check_state
from .step import Actor, Doc, Step


def triage_changed(step: Step, event: Doc, policy: ResolutionPolicy) -> None:
    """Triage reassigned the complaint or corrected its grading: the case follows."""
    payload = event["payload"]
    if event["event_type"] == "complaint_reassigned":
        step.changes.update(owner_id=payload["to_owner_id"], department=payload["department"])
        step.log(
            "reassigned",
            owner_id=payload["to_owner_id"],
            department=payload["department"],
            by=payload["by"],
            reason=payload["reason"],
        )
    else:
        step.changes.update(
            {
                k: payload[k]
                for k in ("category", "risk_level", "urgency", "department", "owner_id", "resolution_due_at")
            }
        )
        if payload["demand"] is not None:  # older corrections carry none: the case keeps what it had
            step.changes["demand"] = payload["demand"]
        step.changes["risk_reasons"] = [r["reason"] for r in payload["risk_reasons"]]
        step.log(
            "regraded",
            field=payload["field"],
            old=payload["old"],
            new=payload["new"],
            by=payload["by"],
            reason=payload["reason"],
        )
        take_lead(step, policy)  # R7.7: raised to high risk, the lead takes it on


# --- handling ---------------------------------------------------------------------------------


def note_finding(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.1: a finding with its source; the first one starts the investigation."""
    check_state(step.case, ACTIVE, "record a finding on")
    if step.state in ("open", "reopened"):
        step.move("investigating")
    finding = {
        "id": len(step.case["findings"]) + 1,
        "at": step.now,
        "by": step.actor.id,
        "source": request["source"],
        "summary": request["summary"],
        "attachment_ref": request.get("attachment_ref"),
    }
    step.changes["findings"] = [*step.case["findings"], finding]
    step.log("finding", id=finding["id"], source=request["source"], summary=request["summary"])
    step.publish(
        events.INVESTIGATION_NOTED, {"finding_id": finding["id"], "source": request["source"], "by": step.actor.id}
    )


def promise_time(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.2: the time to resolution the customer was told."""
    check_state(step.case, ACTIVE, "promise a time for")
    beyond = request["expected_by"] > step.get("resolution_due_at")
    step.changes["expected_resolution"] = {
        "expected_by": request["expected_by"],
        "told_at": step.now,
        "via": request["via"],
        "by": step.actor.id,
        "beyond_deadline": beyond,
    }
    step.log("time_promised", expected_by=request["expected_by"], via=request["via"], beyond_deadline=beyond)
    step.publish(
        events.TIME_PROMISED,
        {
            "expected_by": request["expected_by"].isoformat(),
            "via": request["via"],
            "beyond_deadline": beyond,
            "by": step.actor.id,
        },
    )


def add_note(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.10: anything else worth replaying ("16:30 customer says the refund arrived"); a
    note of contact with the customer is the first response (R2.3) analytics keeps."""
    if request["kind"] == "customer_contact":
        step.log("note", kind=request["kind"], text=request["text"], via=request["via"])
        step.publish(events.CUSTOMER_CONTACTED, {"via": request["via"], "by": step.actor.id})
    else:
        step.log("note", kind=request["kind"], text=request["text"])


def note_customer_reply(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """intake's customer_replied: the customer answered one of our messages; the owner reads
    it on the timeline (the complaint keeps it whole, with its files), in any state."""
    step.log("customer_replied", **request)


def note_at_risk(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """analytics' sla_at_risk: most of a deadline's time has gone; the owner sees it on the timeline."""
    step.log("deadline_at_risk", **request)


def note_message(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.10, R7.1: a message to the customer notify sent (message_sent) or gave up on
    (message_failed, for the owner to follow up), on the timeline: what, by which channel
    and gateway, when, never to whom. A high-risk case's lead told (kind `lead`, R7.7) is
    written as such: that message went to staff, not the customer."""
    keys = (
        "message_id",
        "kind",
        "ref",
        "channel",
        "gateway",
        "attempts",
        "accepted_at",
        "reason",
        "error",
        "failed_at",
    )
    # a message to the case's lead or to its merchant is not one to the customer (R7.5, R7.7)
    prefix = {"lead": "lead", "merchant_request": "merchant_message"}.get(request["kind"], "message")
    action = request["action"].replace("message", prefix)
    step.log(action, **{k: request[k] for k in keys if k in request})


def decide_review_meeting(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R2.4: the operations director's meeting decides which department is responsible."""
    meeting = step.case["review_meeting"]
    if not meeting:
        raise StateConflict("this case has no review meeting (not a cross-department dispute)")
    if meeting["decided_at"]:
        raise StateConflict("the review meeting has decided already")
    require("review_meeting", step.actor, policy, "decide a review meeting")
    check_state(step.case, ACTIVE, "decide the review meeting of")
    owner_id, department = request.get("owner_id"), request["responsible_department"]
    if owner_id:  # triage takes the named owner (else picks one of the department) and announces it
        owner = policy.staff(owner_id)
        if owner is None or step.case["mall_id"] not in owner.malls:
            raise ValidationError({"owner_id": [f"No staff {owner_id} at {step.case['mall_id']}."]})
        if owner.department != department:
            raise ValidationError(
                {"owner_id": [f"{owner_id} is not in {department} (but in {owner.department or 'no department'})."]}
            )
        step.changes["owner_id"] = owner_id
    decided = {
        **meeting,
        "decided_at": step.now,
        "decided_by": step.actor.id,
        **{k: request.get(k) for k in ("responsible_department", "owner_id", "decision", "attendees")},
        "within_deadline": step.now <= meeting["due_at"],
    }
    step.changes.update(review_meeting=decided, department=request["responsible_department"])
    step.log(
        "review_meeting",
        responsible_department=request["responsible_department"],
        owner_id=owner_id,
        decision=request["decision"],
        attendees=request["attendees"],
    )
    step.publish(
        events.REVIEW_MEETING_DECIDED,
        {
            "responsible_department": request["responsible_department"],
            "departments_involved": meeting["departments"],
            "owner_id": owner_id,
            "due_at": meeting["due_at"].isoformat(),
            "within_deadline": decided["within_deadline"],
            "by": step.actor.id,
        },
    )


def _current(step: Step, proposal_no: int | None = None) -> Doc:
    proposals: list[Doc] = step.get("proposals")
    if not proposals:
        raise StateConflict("the case has no proposal yet")
    current = proposals[-1]
    if proposal_no is not None and proposal_no != current["no"]:
        raise StateConflict(f"proposal {proposal_no} is not the current one ({current['no']})")
    return current


def _replace_current(step: Step, proposal: Doc) -> None:
    step.changes["proposals"] = [*step.get("proposals")[:-1], proposal]


def remedy_lines(request: Doc) -> list[Doc]:
    return [{"type": r["type"], "amount_fen": r["amount_fen"], "note": r.get("note")} for r in request["remedies"]]


def assess_draft(
    case: Doc, risk_level: str, level: str, request: Doc, policy: ResolutionPolicy
) -> tuple[list[Doc], dict[str, Any], dict[str, Any]]:
    """(remedy lines, compliance, approval needs) of a draft on `case` at its current
    grading and escalation level."""
    remedies = remedy_lines(request)
    compliance = check_remedies(
        remedies,
        request.get("legal_basis"),
        request.get("price_fen"),
        request.get("demanded_fen"),
        policy.rules["statutory"],
        policy.section(case["mall_id"], "caps"),
        paid_compensation(case),
        case.get("demand"),
    )
    compliance = apply_promotion(  # R7.8
        compliance, request.get("promotion"), request.get("decision"), remedies, policy.rules["promotion"]
    )
    needs = approval_needs(
        compliance["total_fen"], risk_level, bool(compliance["breaches"]), level, case["mall_id"], policy
    )
    return remedies, compliance, needs


def _draft(step: Step, request: Doc, policy: ResolutionPolicy) -> Doc:
    """A proposal with its compliance check; refused when outside the caps without an override."""
    case, mall_id = step.case, step.case["mall_id"]
    remedies, compliance, needs = assess_draft(case, step.get("risk_level"), step.get("level"), request, policy)
    override = request.get("cap_override_reason")
    if compliance["breaches"] and not override:
        raise ValidationError(
            {
                "remedies": [
                    *compliance["breaches"],
                    "an override by "
                    + " or ".join(policy.rules["permissions"]["cap_override"])
                    + " with a reason is needed",
                ]
            }
        )
    return {
        "no": len(case["proposals"]) + 1,
        "decision": request["decision"],
        "reasons": request["reasons"],
        "bases": request["bases"],  # R7.9
        "remedies": remedies,
        "price_fen": request.get("price_fen"),
        "demanded_fen": request.get("demanded_fen"),
        "compliance": compliance,
        "cap_override_reason": override if compliance["breaches"] else None,
        "needs": needs,
        "approver_role": lowest_approver(needs, mall_id, policy),
        "approvals": [],
        "status": "awaiting_approval",
        "proposed_by": step.actor.id,
        "proposed_at": step.now,
        "level": step.get("level"),
        "round": case["round"],
        "sent": None,
        "policy_version": policy.version,
    }


def _approve(step: Step, proposal: Doc, policy: ResolutionPolicy) -> Doc:
    proposal = {
        **proposal,
        "status": "approved",
        "approvals": [*proposal["approvals"], {"by": step.actor.id, "role": step.actor.role, "at": step.now}],
    }
    step.log(
        "approved",
        proposal_no=proposal["no"],
        total=yuan(proposal["compliance"]["total_fen"]),
        cap_override_reason=proposal["cap_override_reason"],
    )
    step.publish(
        events.PROPOSAL_APPROVED,
        {
            "proposal_no": proposal["no"],
            "approver_role": step.actor.role,
            "total_fen": proposal["compliance"]["total_fen"],
            "cap_override": bool(proposal["cap_override_reason"]),
            "by": step.actor.id,
        },
    )
    return proposal


def propose(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.3-R3.5: decision, reasons and remedies, checked against the law and the caps.
    Approved at once when the proposer's own authority covers it."""
    check_state(step.case, ("investigating", "escalated", "reopened", "proposed"), "propose on")
    meeting = step.case["review_meeting"]
    if meeting and not meeting["decided_at"]:
        raise StateConflict("the review meeting has not decided who is responsible yet")
    if step.state == "proposed":
        current = _current(step)
        if current["sent"]:
            raise StateConflict(f"proposal {current['no']} was given to the customer; record their answer first")
        step.changes["proposals"] = [*step.case["proposals"][:-1], {**current, "status": "withdrawn"}]
    else:
        step.move("proposed")
    proposal = _draft(step, request, policy)
    step.changes["proposals"] = [*step.get("proposals"), proposal]
    compliance = proposal["compliance"]
    step.log(
        "proposed",
        proposal_no=proposal["no"],
        decision=proposal["decision"],
        remedies=[{"type": r["type"], "amount": yuan(r["amount_fen"])} for r in proposal["remedies"]],
        total=yuan(compliance["total_fen"]),
        warnings=compliance["warnings"],
        approver_role=proposal["approver_role"],
    )
    if not refusals(step.actor.role, proposal["needs"], step.case["mall_id"], policy):
        _replace_current(step, _approve(step, proposal, policy))


def check_proposal(case: Doc, request: Doc, actor: Actor, policy: ResolutionPolicy) -> dict[str, Any]:
    """A draft's checks before it is made: the law, the caps, who must approve."""
    _, compliance, needs = assess_draft(case, case["risk_level"], case["level"], request, policy)
    amounts = {k[:-4]: v if v is None else yuan(v) for k, v in compliance.items() if k.endswith("_fen")}
    return {
        **{k: v for k, v in compliance.items() if not k.endswith("_fen")},
        **amounts,
        "approver_role": lowest_approver(needs, case["mall_id"], policy),
        "you_may_approve": not refusals(actor.role, needs, case["mall_id"], policy),
    }


def needs_now(case: Doc, proposal: Doc, policy: ResolutionPolicy) -> dict[str, Any]:
    """What approving `proposal` needs at the case's grading and level as they are now: the
    case may have been escalated or regraded since the proposal was made."""
    return approval_needs(
        proposal["compliance"]["total_fen"],
        case["risk_level"],
        bool(proposal["cap_override_reason"]),
        case["level"],
        case["mall_id"],
        policy,
    )


def awaiting_approver(case: Doc, policy: ResolutionPolicy) -> str | None:
    """The role the case's proposal waits for: the least senior one that may approve it now
    (None when no proposal awaits approval)."""
    proposal = case["proposals"][-1] if case["state"] == "proposed" and case["proposals"] else None
    if proposal is None or proposal["status"] != "awaiting_approval":
        return None
    return lowest_approver(needs_now(case, proposal, policy), case["mall_id"], policy)


def approve(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.5: approval by someone whose limit, level and role cover the proposal."""
    check_state(step.case, ("proposed",), "approve a proposal on")
    proposal = _current(step, request["proposal_no"])
    if proposal["status"] != "awaiting_approval":
        raise StateConflict(f"proposal {proposal['no']} is {proposal['status']}, not awaiting approval")
    needs = needs_now({**step.case, **step.changes}, proposal, policy)
    proposal = {**proposal, "needs": needs, "approver_role": lowest_approver(needs, step.case["mall_id"], policy)}
    reasons = refusals(step.actor.role, needs, step.case["mall_id"], policy)
    if reasons:
        raise NoAuthority(f"{step.actor.id} ({step.actor.role}) may not approve: " + "; ".join(reasons))
    _replace_current(step, _approve(step, proposal, policy))


def differs_from_expectation(proposal: Doc) -> bool:
    """R3.6: not upheld, or less than the customer asked for: less than the amount they
    named, or, when they asked above the law (a multiple, mental damages), no more than
    the law grants."""
    demanded, compliance = proposal.get("demanded_fen"), proposal["compliance"]
    above_law_unmet = (
        compliance["demand_above_statutory"]
        and compliance["statutory_total_fen"] is not None
        and compliance["total_fen"] <= compliance["statutory_total_fen"]
    )
    return (
        proposal["decision"] != "upheld"
        or (demanded is not None and compliance["total_fen"] < demanded)
        or above_law_unmet
    )


def reply(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.3, R3.6: the approved answer is given to the customer (orally or in writing);
    when it differs from what they expected, the appeal route is stated with it."""
    check_state(step.case, ("proposed",), "answer the customer on")
    proposal = _current(step, request["proposal_no"])
    if proposal["status"] == "awaiting_approval":
        raise StateConflict(
            f"proposal {proposal['no']} is awaiting approval: it needs the approval of a "
            f"{proposal['approver_role']} before the customer is told"
        )
    if proposal["status"] != "approved":
        raise StateConflict(f"proposal {proposal['no']} is {proposal['status']}: the customer has been told already")
    check_signed_off({**step.case, **step.changes}, proposal)  # R7.7
    differs = differs_from_expectation(proposal)
    sent = {
        "at": step.now,
        "by": step.actor.id,
        "oral": request["oral"],
        "text": request.get("text"),
        "appeal_procedure": policy.customer_text("appeal_procedure") if differs else None,
    }
    _replace_current(step, {**proposal, "status": "sent", "sent": sent})
    step.log("answered", proposal_no=proposal["no"], oral=request["oral"], appeal_stated=differs)
    _publish_answer(step, proposal, request["oral"], differs)


def _answered(step: Step, proposal_no: int) -> Doc:
    check_state(step.case, ("proposed",), "record the customer's answer on")
    proposal = _current(step, proposal_no)
    if proposal["status"] != "sent":
        raise StateConflict(f"proposal {proposal['no']} has not been given to the customer")
    return proposal


def execution_tasks(
    case: Doc, remedies: list[Doc], policy: ResolutionPolicy, now: datetime, first_id: int
) -> list[Doc]:
    """R3.7: one task per remedy line, plus holding the product for a product complaint."""
    calendar, rules = policy.calendar(case["mall_id"]), policy.rules["execution"]
    tasks = [
        {
            "kind": r["type"],
            "amount_fen": r["amount_fen"],
            "due_at": calendar.due(now, rules[r["type"]]),
            "signature_required": rules[r["type"]]["signature"],
        }
        for r in remedies
    ]
    if (case["category"] or "").startswith("product.") and not any(t["kind"] == "product_hold" for t in case["tasks"]):
        tasks.append(
            {
                "kind": "product_hold",
                "amount_fen": 0,
                "signature_required": False,
                "due_at": calendar.due(now, policy.rules["product_hold"]),
            }
        )
    return [{"id": first_id + i, **t, "done": None} for i, t in enumerate(tasks)]


def accept(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The customer accepts: the remedies become tasks with deadlines."""
    proposal = _answered(step, request["proposal_no"])
    _replace_current(step, {**proposal, "status": "accepted"})
    step.move("accepted")
    tasks = execution_tasks(step.case, proposal["remedies"], policy, step.now, len(step.case["tasks"]) + 1)
    step.changes["tasks"] = [*step.case["tasks"], *tasks]
    step.log(
        "accepted",
        proposal_no=proposal["no"],
        tasks=[{"id": t["id"], "kind": t["kind"], "due_at": t["due_at"]} for t in tasks],
    )
    _publish_accepted(step, proposal, tasks)


def _escalate(step: Step, reason: str, policy: ResolutionPolicy, re_review: bool = False) -> None:
    mall_id, level = step.case["mall_id"], step.get("level")
    to_role = next_level(level, mall_id, policy)
    to_staff = policy.first_staff(mall_id, to_role)
    due = policy.calendar(mall_id).due(step.now, policy.rules["deadlines"]["re_review"]) if re_review else None
    escalation = {
        "at": step.now,
        "by": step.actor.id,
        "reason": reason,
        "from_role": level,
        "to_role": to_role,
        "to_staff_id": to_staff and to_staff.id,
        "re_review_due_at": due,
    }
    step.changes.update(level=to_role, escalations=[*step.case["escalations"], escalation])
    step.log(
        "escalated",
        reason=reason,
        from_role=level,
        to_role=to_role,
        to_staff_id=escalation["to_staff_id"],
        re_review_due_at=due,
    )
    step.publish(
        events.CASE_ESCALATED,
        {
            **{k: escalation[k] for k in ("reason", "from_role", "to_role", "to_staff_id", "by")},
            "re_review_due_at": due and due.isoformat(),
        },
    )


def object_(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.6: the objection points are recorded and the case goes one level up for a
    re-review due within deadlines.re_review (the time the appeal text states)."""
    proposal = _answered(step, request["proposal_no"])
    _replace_current(step, {**proposal, "status": "objected"})
    step.move("objected")
    step.changes["objections"] = [
        *step.case["objections"],
        {"at": step.now, "by": step.actor.id, "proposal_no": proposal["no"], "points": request["points"]},
    ]
    step.log("objected", proposal_no=proposal["no"], points=request["points"])
    step.publish(
        events.CASE_OBJECTED, {"proposal_no": proposal["no"], "points": request["points"], "by": step.actor.id}
    )
    step.move("escalated")
    _escalate(step, "objection", policy, re_review=True)


def escalate(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """A case goes one level up by hand (or on an SLA breach) without changing its state."""
    check_state(step.case, ACTIVE, "escalate")
    _escalate(step, request["reason"], policy)
    if request.get("note"):
        step.log("note", kind="internal", text=request["note"])


def complete_task(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.7: a task is carried out; cash compensation only with the customer's signature."""
    task = next((t for t in step.case["tasks"] if t["id"] == request["task_id"]), None)
    if task is None:
        raise ValidationError({"task_id": [f"No task {request['task_id']} on this case."]})
    if task["done"]:
        raise StateConflict(f"task {task['id']} ({task['kind']}) is done already")
    if task["signature_required"] and not request.get("signature_ref"):
        raise ValidationError(
            {
                "signature_ref": [
                    "Cash compensation is marked done only with the reference of the customer's signed receipt."
                ]
            }
        )
    done = {
        "at": step.now,
        "by": step.actor.id,
        "note": request.get("note"),
        "signature_ref": request.get("signature_ref"),
        "within_deadline": step.now <= task["due_at"],
    }
    step.changes["tasks"] = [{**t, "done": done} if t["id"] == task["id"] else t for t in step.case["tasks"]]
    if step.state == "accepted":
        step.move("executing")
    step.log(
        "task_done",
        task_id=task["id"],
        kind=task["kind"],
        within_deadline=done["within_deadline"],
        note=done["note"],
        signature_ref=done["signature_ref"],
    )
    _publish_task_done(step, task, done["within_deadline"])


def _publish_answer(step: Step, proposal: Doc, oral: bool, appeal_stated: bool) -> None:
    compliance = proposal["compliance"]
    step.publish(
        events.CASE_PROPOSED,
        {
            "proposal_no": proposal["no"],
            "decision": proposal["decision"],
            "remedy_types": [r["type"] for r in proposal["remedies"]],
            "total_fen": compliance["total_fen"],
            "statutory_total_fen": compliance["statutory_total_fen"],
            "demand_above_statutory": compliance["demand_above_statutory"],
            "oral": oral,
            "appeal_stated": appeal_stated,
            "level_role": proposal["level"],
            "by": step.actor.id,
        },
    )


def _publish_accepted(step: Step, proposal: Doc, tasks: list[Doc]) -> None:
    step.publish(
        events.CASE_ACCEPTED,
        {
            "proposal_no": proposal["no"],
            "by": step.actor.id,
            "tasks": [{"task_id": t["id"], "kind": t["kind"], "due_at": t["due_at"].isoformat()} for t in tasks],
        },
    )


def _publish_task_done(step: Step, task: Doc, within_deadline: bool) -> None:
    step.publish(
        events.EXECUTION_TASK_DONE,
        {
            "task_id": task["id"],
            "kind": task["kind"],
            "due_at": task["due_at"].isoformat(),
            "done_at": step.now.isoformat(),
            "within_deadline": within_deadline,
            "by": step.actor.id,
        },
    )


def rectification_tasks(case: Doc, policy: ResolutionPolicy, now: datetime) -> list[Doc]:
    """R3.8: what the problem's attribute calls for, once per case. R7.5 (谁管理、谁整改): in a
    tenant's case that is with its merchant the merchant manages the thing at fault and
    rectifies it; otherwise the policy's role at the mall does."""
    attribute = (case["category"] or "").split(".")[0]
    rule = policy.rules["rectification"].get(attribute)
    if not rule or any(r["kind"] == rule["kind"] for r in case["rectifications"]):
        return []
    merchant_id = case.get("merchant_access")
    owner = None if merchant_id else policy.first_staff(case["mall_id"], rule["owner_role"])
    due = policy.calendar(case["mall_id"]).due(now, {"working_days": rule["working_days"]})
    return [
        {
            "id": len(case["rectifications"]) + 1,
            "kind": rule["kind"],
            "owner_id": owner and owner.id,
            "merchant_id": merchant_id,
            "description": f"after {case['_id']} ({case['category']})",
            "due_at": due,
            "done": None,
        }
    ]


def _add_rectifications(step: Step, items: list[Doc]) -> None:
    step.changes["rectifications"] = [*step.get("rectifications"), *items]
    for item in items:
        step.log(
            "rectification_due",
            id=item["id"],
            kind=item["kind"],
            owner_id=item["owner_id"],
            merchant_id=item.get("merchant_id"),
            due_at=item["due_at"],
        )
        step.publish(
            events.RECTIFICATION_DUE,
            {
                "rectification_id": item["id"],
                "kind": item["kind"],
                "owner_id": item["owner_id"],
                "merchant_id": item.get("merchant_id"),
                "due_at": item["due_at"].isoformat(),
            },
        )


def _resolved(step: Step, proposal: Doc, summary: str, spot: bool, policy: ResolutionPolicy) -> None:
    step.move("resolved")
    step.changes["resolution"] = {
        "at": step.now,
        "by": step.actor.id,
        "summary": summary,
        "spot": spot,
        "proposal_no": proposal["no"],
        "round": step.case["round"],
    }
    step.log("resolved", summary=summary, spot=spot)
    _add_rectifications(step, rectification_tasks({**step.case, **step.changes}, policy, step.now))
    step.publish(
        events.CASE_RESOLVED,
        {
            "spot": spot,
            "decision": proposal["decision"],
            "remedy_types": [r["type"] for r in proposal["remedies"]],
            "total_fen": proposal["compliance"]["total_fen"],
            "round": step.case["round"],
            **{k: step.get(k) for k in ("category", "risk_level", "department", "owner_id", "channel")},
            "by": step.actor.id,
        },
    )


def resolve(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """Every task carried out: the case is resolved and a revisit follows."""
    check_state(step.case, ("accepted", "executing"), "resolve")
    open_tasks = [f"{t['id']} {t['kind']}" for t in step.case["tasks"] if not t["done"]]
    if open_tasks:
        raise StateConflict("tasks still to carry out: " + ", ".join(open_tasks))
    _resolved(step, _current(step), request["summary"], False, policy)


def spot_resolve(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.2: a simple complaint settled at the desk in one step, remedies handed over
    and recorded, within the person's own authority and the spot bounds."""
    case, mall_id = step.case, step.case["mall_id"]
    check_state(case, ("open",), "resolve on the spot")
    spot = policy.section(mall_id, "spot")
    if case["risk_level"] not in spot["risk_levels"] or case["review_meeting"]:
        raise StateConflict(
            f"a {case['risk_level']}-risk complaint"
            + (" in a cross-department dispute" if case["review_meeting"] else "")
            + " is not resolved on the spot"
        )
    proposal = _draft(step, {**request, "cap_override_reason": None}, policy)
    total = proposal["compliance"]["total_fen"]
    if total > fen(spot["max_total"]):
        raise StateConflict(f"remedies of {yuan(total)} are above the {spot['max_total']} settled on the spot")
    reasons = refusals(step.actor.role, proposal["needs"], mall_id, policy)
    if reasons:
        raise NoAuthority(f"{step.actor.id} ({step.actor.role}) may not settle this on the spot: " + "; ".join(reasons))
    if any(r["type"] == "cash_compensation" for r in proposal["remedies"]) and not request.get("signature_ref"):
        raise ValidationError(
            {"signature_ref": ["Cash compensation needs the reference of the customer's signed receipt."]}
        )
    differs = differs_from_expectation(proposal)
    proposal.update(
        status="accepted",
        approvals=[{"by": step.actor.id, "role": step.actor.role, "at": step.now}],
        sent={
            "at": step.now,
            "by": step.actor.id,
            "oral": True,
            "text": request.get("text"),
            "appeal_procedure": policy.customer_text("appeal_procedure") if differs else None,
        },
    )
    tasks = execution_tasks(case, proposal["remedies"], policy, step.now, len(case["tasks"]) + 1)
    done = {
        "at": step.now,
        "by": step.actor.id,
        "note": "on the spot",
        "signature_ref": request.get("signature_ref"),
        "within_deadline": True,
    }
    tasks = [{**t, "done": done} if t["kind"] != "product_hold" else t for t in tasks]
    step.changes.update(proposals=[*case["proposals"], proposal], tasks=[*case["tasks"], *tasks])
    step.log(
        "spot_settled",
        decision=proposal["decision"],
        remedies=[{"type": r["type"], "amount": yuan(r["amount_fen"])} for r in proposal["remedies"]],
        reasons=proposal["reasons"],
        appeal_stated=differs,
    )
    _publish_answer(step, proposal, True, differs)
    _publish_accepted(step, proposal, tasks)
    for t in tasks:
        if t["done"]:
            _publish_task_done(step, t, within_deadline=True)
    _resolved(step, proposal, request["summary"], True, policy)


def close(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The customer is satisfied (feedback), or a supervisor closes it with a reason (R4.2)."""
    if step.actor.role != "service":
        require("close_or_reopen", step.actor, policy, "close a case")
    if step.state != "resolved" and (step.case["round"] == 1 or step.actor.role == "service"):
        raise StateConflict(
            f"a case that is {step.state} is closed only after it is resolved "
            "(a supervisor may close a reopened one with a reason)"
        )
    _drop_closure_by_rule(step, request["reason"])
    _closed(step, request["reason"], without_answer=False)


def _closed(step: Step, reason: str, without_answer: bool) -> None:
    step.move("closed")
    step.changes["closure"] = {"at": step.now, "by": step.actor.id, "reason": reason, "without_answer": without_answer}
    step.log("closed", reason=reason, without_answer=without_answer)
    step.publish(events.CASE_CLOSED, {"reason": reason, "without_answer": without_answer, "by": step.actor.id})


# --- a customer who cannot be reached (R4.1, R4.2) ----------------------------------------------


def note_unreachable(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """Feedback's revisit ended unreachable (`request`: revisit_done's payload): the
    resolved case closes by rule, without an answer, after the policy's waiting time,
    unless the customer answers first."""
    check_state(step.case, ("resolved",), "wait for an unreachable customer on")
    allowed = policy.rules["deadlines"]["unreachable_close_after"]
    close_at = policy.calendar(step.case["mall_id"]).due(step.now, allowed)
    step.changes["closure_by_rule"] = {
        "revisit_id": request["revisit_id"],
        "attempts": request["attempts"],
        "noted_at": step.now,
        "close_at": close_at,
    }
    step.log("customer_unreachable", revisit_id=request["revisit_id"], attempts=request["attempts"], close_at=close_at)


def close_without_answer(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The waiting time after an unreachable revisit is over and the customer has not
    answered: the case is closed by rule, recorded as closed without an answer."""
    check_state(step.case, ("resolved",), "close without an answer")
    pending = step.case.get("closure_by_rule")
    if not pending or pending["close_at"] > step.now:
        raise StateConflict("the case is not waiting to close for an unreachable customer, or not yet")
    waited = " ".join(
        f"{v:g} {k.replace('_', ' ')}" for k, v in policy.rules["deadlines"]["unreachable_close_after"].items()
    )
    reason = (
        f"customer unreachable: revisit {pending['revisit_id']} ended without an answer after "
        f"{pending['attempts']} attempt(s); closed by rule {waited} later"
    )
    step.changes["closure_by_rule"] = None
    _closed(step, reason, without_answer=True)


def _drop_closure_by_rule(step: Step, why: str) -> None:
    """The customer answered (or a person acted) before the case closed by rule: it no longer will."""
    pending = step.case.get("closure_by_rule")
    if pending:
        step.changes["closure_by_rule"] = None
        step.log("closure_by_rule_dropped", revisit_id=pending["revisit_id"], close_at=pending["close_at"], because=why)


def reopen(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R4.2: a dissatisfied customer reopens the case with a new deadline; the loop
    goes on until they are satisfied or a supervisor closes it."""
    if step.actor.role != "service":
        require("close_or_reopen", step.actor, policy, "reopen a case")
    _drop_closure_by_rule(step, request["reason"])
    step.move("reopened")
    due = policy.calendar(step.case["mall_id"]).due(step.now, policy.rules["deadlines"]["reopened"])
    round_ = step.case["round"] + 1
    step.changes.update(round=round_, resolution_due_at=due, closure=None)
    step.log("reopened", reason=request["reason"], round=round_, resolution_due_at=due)
    step.publish(
        events.CASE_REOPENED,
        {"reason": request["reason"], "round": round_, "resolution_due_at": due.isoformat(), "by": step.actor.id},
    )


def add_rectification(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """R3.8 by hand: an improvement beyond what the policy adds by itself."""
    owner = policy.staff(request["owner_id"])
    if owner is None or step.case["mall_id"] not in owner.malls:
        raise ValidationError({"owner_id": [f"No staff {request['owner_id']} at {step.case['mall_id']}."]})
    due = policy.calendar(step.case["mall_id"]).due(step.now, {"working_days": request["working_days"]})
    _add_rectifications(
        step,
        [
            {
                "id": len(step.case["rectifications"]) + 1,
                "kind": request["kind"],
                "owner_id": owner.id,
                "merchant_id": None,
                "description": request["description"],
                "due_at": due,
                "done": None,
            }
        ],
    )


def complete_rectification(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    item = next((r for r in step.case["rectifications"] if r["id"] == request["rectification_id"]), None)
    if item is None:
        raise ValidationError({"rectification_id": [f"No rectification {request['rectification_id']} on this case."]})
    if item["done"]:
        raise StateConflict(f"rectification {item['id']} ({item['kind']}) is done already")
    done = {
        "at": step.now,
        "by": step.actor.id,
        "evidence": request["evidence"],
        "within_deadline": step.now <= item["due_at"],
    }
    step.changes["rectifications"] = [
        {**r, "done": done} if r["id"] == item["id"] else r for r in step.case["rectifications"]
    ]
    step.log(
        "rectification_done",
        id=item["id"],
        kind=item["kind"],
        evidence=request["evidence"],
        within_deadline=done["within_deadline"],
    )
    step.publish(
        events.RECTIFICATION_DONE,
        {
            "rectification_id": item["id"],
            "kind": item["kind"],
            "due_at": item["due_at"].isoformat(),
            "done_at": step.now.isoformat(),
            "within_deadline": done["within_deadline"],
            "by": step.actor.id,
        },
    )


def complete_rectification_as_merchant(step: Step, request: Doc, policy: ResolutionPolicy, merchant_id: str) -> None:
    """R7.5: the merchant carried out a rectification given to it, with its evidence (谁整改)."""
    merchants.current_of(step, merchant_id)
    item = next((r for r in step.case["rectifications"] if r["id"] == request["rectification_id"]), None)
    if item is not None and item.get("merchant_id") != merchant_id:
        raise NoAuthority(f"rectification {item['id']} is not merchant {merchant_id}'s")
    complete_rectification(step, request, policy)


# action -> (what it accepts, the function that decides it)
ACTIONS = {
    "findings": (FindingIn, note_finding),  # R3.1
    "expected-resolution": (PromiseIn, promise_time),  # R3.2
    "notes": (NoteIn, add_note),  # R3.10
    "review-meeting": (ReviewMeetingIn, decide_review_meeting),  # R2.4
    "proposals": (ProposalIn, propose),  # R3.3, R3.4
    "approval": (ProposalRef, approve),  # R3.5
    "sign-off": (SignOffIn, sign_off),  # R7.7
    "reply": (ReplyIn, reply),  # R3.3, R3.6
    "acceptance": (ProposalRef, accept),  # R3.7
    "objection": (ObjectionIn, object_),  # R3.6
    "escalation": (EscalationIn, escalate),
    "spot-resolution": (SpotResolutionIn, spot_resolve),  # R3.2
    "task-done": (TaskDoneIn, complete_task),  # R3.7
    "resolution": (SummaryIn, resolve),
    "closure": (ReasonIn, close),  # R4.2
    "reopening": (ReasonIn, reopen),  # R4.2
    "rectifications": (RectificationIn, add_rectification),  # R3.8
    "rectification-done": (RectificationDoneIn, complete_rectification),
    "merchant-request": (MerchantRequestIn, merchants.send),  # R7.5
    "merchant-takeback": (ReasonIn, merchants.take_back),  # R7.5
    "mediation": (ReferralIn, refer),  # R7.9
    "mediation-outcome": (MediationOutcomeIn, conclude),  # R7.9
}
# R7.5 what a merchant does on a case sent to it, signed in with its own key: the function
# takes the merchant's id too (from the key, never from the body)
MERCHANT_ACTIONS = {
    "reply": (MerchantReplyIn, merchants.reply),
    "rectification-done": (MerchantRectificationDoneIn, complete_rectification_as_merchant),
}
