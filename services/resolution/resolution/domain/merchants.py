"""R7.5 merchants held to our time and quality standards (seed 001: 要求最终回复的复印件,
把时间、质量标准运用到其他部门…其他企业或代理的答复上; seed 002: 谁管理、谁举证、谁整改).

A tenant's case that merchant relations owns is sent to the merchant (its contact in the
mall registry) with a deadline from the policy; the merchant, signed in with its own key,
reads only the cases sent to it and replies with its evidence (references to files) and its
final reply, a copy of which stays on the case; merchant relations can take the case back,
and the merchant's access ends. The rectification such a case leaves goes to the merchant
(actions.rectification_tasks). Each as a function of a Step; domain.actions' tables list them."""

from typing import Any

from mallcare_common.contracts import resolution as events

from ..policy import ResolutionPolicy
from .errors import NoAuthority, StateConflict
from .states import ACTIVE, check_state
from .step import Doc, Step


def requests_of(case: Doc) -> list[Doc]:
    """The case's requests to its merchant, oldest first (cases opened before R7.5 have none)."""
    requests: list[Doc] = case.get("merchant_requests") or []
    return requests


def with_merchant(case: Doc, merchant_id: str | None) -> bool:
    """The case is sent to this merchant and not taken back: the merchant may read and answer it."""
    return merchant_id is not None and case.get("merchant_access") == merchant_id


def send(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """Merchant relations sends the tenant's case to the merchant, who must reply with its
    evidence within the policy's time; the merchant is told by notify (merchant_reply_requested)."""
    case, rules = step.case, policy.rules["merchants"]
    check_state(case, ACTIVE, "send to its merchant")
    if step.get("department") != rules["department"]:
        raise StateConflict(f"only a tenant's case that {rules['department']} owns is sent to its merchant")
    merchant_id = case.get("merchant_id")
    mall = policy.malls[case["mall_id"]]
    merchant = mall.merchant(merchant_id)
    if merchant is None or not merchant.get("contact"):
        raise StateConflict(f"{mall.name} lists no contact for merchant {merchant_id or '(none named)'}")
    requests = requests_of(case)
    if requests and requests[-1]["status"] == "awaiting":
        raise StateConflict(f"the case waits for {merchant_id}'s reply already (request {requests[-1]['id']})")
    if step.state in ("open", "reopened"):
        step.move("investigating")
    due = policy.calendar(case["mall_id"]).due(step.now, rules["reply_within"])
    sent = {
        "id": len(requests) + 1,
        "merchant_id": merchant_id,
        "note": request["note"],
        "sent_at": step.now,
        "sent_by": step.actor.id,
        "due_at": due,
        "status": "awaiting",
        "reply": None,
        "taken_back": None,
    }
    step.changes.update(merchant_requests=[*requests, sent], merchant_access=merchant_id)
    step.log("merchant_request", request_id=sent["id"], merchant_id=merchant_id, due_at=due, note=request["note"])
    step.publish(
        events.MERCHANT_REPLY_REQUESTED,
        {"request_id": sent["id"], "merchant_id": merchant_id, "due_at": due.isoformat(), "by": step.actor.id},
    )


def current_of(step: Step, merchant_id: str) -> Doc:
    """The request a merchant acts on: the case must be with it (NoAuthority otherwise: it was
    taken back, or never sent to this merchant)."""
    if not with_merchant(step.case, merchant_id):
        raise NoAuthority(f"{step.case['_id']} is not with merchant {merchant_id}")
    return requests_of(step.case)[-1]


def reply(step: Step, request: Doc, policy: ResolutionPolicy, merchant_id: str) -> None:
    """The merchant's final reply and its evidence: a copy kept on the request and on the
    timeline, in time or late against the request's deadline."""
    current = current_of(step, merchant_id)
    if current["status"] != "awaiting":
        raise StateConflict(f"merchant {merchant_id} replied to request {current['id']} already")
    answered = {
        "at": step.now,
        "by": step.actor.id,
        "text": request["reply"],
        "evidence": request["evidence"],
        "within_deadline": step.now <= current["due_at"],
    }
    requests = requests_of(step.case)
    step.changes["merchant_requests"] = [*requests[:-1], {**current, "status": "replied", "reply": answered}]
    step.log(
        "merchant_replied",
        request_id=current["id"],
        merchant_id=merchant_id,
        text=request["reply"],
        evidence=request["evidence"],
        within_deadline=answered["within_deadline"],
    )
    step.publish(
        events.MERCHANT_REPLIED,
        {
            "request_id": current["id"],
            "merchant_id": merchant_id,
            "due_at": current["due_at"].isoformat(),
            "replied_at": step.now.isoformat(),
            "within_deadline": answered["within_deadline"],
            "evidence": len(request["evidence"]),
            "by": step.actor.id,
        },
    )


def take_back(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """Merchant relations takes the case back from the merchant (no reply in time, a reply
    not good enough, a dispute): the merchant's access ends; a reply still awaited no longer is."""
    merchant_id = step.case.get("merchant_access")
    if merchant_id is None:
        raise StateConflict("the case is not with a merchant")
    current = requests_of(step.case)[-1]
    awaiting = current["status"] == "awaiting"
    taken = {**current, "taken_back": {"at": step.now, "by": step.actor.id, "reason": request["reason"]}}
    if awaiting:
        taken["status"] = "taken_back"
    step.changes.update(merchant_requests=[*requests_of(step.case)[:-1], taken], merchant_access=None)
    step.log(
        "merchant_taken_back",
        request_id=current["id"],
        merchant_id=merchant_id,
        awaiting=awaiting,
        reason=request["reason"],
    )
    step.publish(
        events.MERCHANT_TAKEN_BACK,
        {
            "request_id": current["id"],
            "merchant_id": merchant_id,
            "awaiting": awaiting,
            "reason": request["reason"],
            "by": step.actor.id,
        },
    )


def note_overdue(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """analytics' sla_breached of a merchant's reply: on the timeline for merchant relations,
    who chases the merchant or takes the case back (the merchant's lateness is not ours to
    escalate)."""
    step.log("merchant_reply_overdue", merchant_id=request["owner"], due_at=request["due_at"])


def view(case: Doc, merchant_id: str, complaint: Doc | None = None) -> dict[str, Any]:
    """What the merchant reads of its case: the complaint as intake shows it (the customer
    masked), our requests to it and its replies, the rectifications given to it; nothing of
    our own handling (findings, proposals, the timeline)."""
    return {
        "_id": case["_id"],
        "mall_id": case["mall_id"],
        "merchant_id": merchant_id,
        "state": case["state"],
        "category": case["category"],
        "received_at": case["received_at"],
        # what was said to it and what it said; not who sent it or why we took it back
        "requests": [
            {k: r[k] for k in ("id", "note", "sent_at", "due_at", "status", "reply")}
            for r in requests_of(case)
            if r["merchant_id"] == merchant_id
        ],
        "rectifications": [r for r in case["rectifications"] if r.get("merchant_id") == merchant_id],
        "complaint": complaint
        and {
            k: complaint.get(k)
            for k in ("description", "demands", "customer", "location", "incident_time", "product", "staff_involved")
        },
    }
