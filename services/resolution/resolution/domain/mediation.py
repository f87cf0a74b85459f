"""R7.9 (seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁):
a decision names the bases it rests on (the proposal's `bases`, validated by its schema),
and a case can be referred to third-party mediation (the 12315 hotline, a consumer
association, arbitration) and the mediation's outcome recorded, each with its own date, on
the timeline and through the outbox. A referral is recorded whatever the case's state: a
customer may go to 12315 while we work the case or after we closed it."""

from datetime import datetime

from marshmallow import ValidationError

from mallcare_common.calendar import as_stored
from mallcare_common.contracts import resolution as events

from ..policy import ResolutionPolicy
from .errors import StateConflict
from .step import Doc, Step


def _date(step: Step, request: Doc, key: str, not_before: datetime | None = None) -> datetime:
    """The date the request gives (the customer called 12315 yesterday), in UTC as stored,
    else now: never in the future, nor before `not_before`."""
    at = as_stored(request[key]) if request.get(key) else step.now
    if at > step.now:
        raise ValidationError({key: ["Not in the future."]})
    if not_before is not None and at < not_before:
        raise ValidationError({key: [f"Not before the referral ({not_before.isoformat()})."]})
    return at


def refer(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The case goes to a third party (or the third party tells us it has it)."""
    referrals: list[Doc] = step.case.get("referrals") or []
    open_ = [r for r in referrals if r["mediator"] == request["mediator"] and r["outcome"] is None]
    if open_:
        raise StateConflict(f"referral {open_[0]['id']} to {request['mediator']} has no outcome yet; record it first")
    referral = {
        "id": len(referrals) + 1,
        "mediator": request["mediator"],
        "reference": request.get("reference"),
        "referred_at": _date(step, request, "referred_at"),
        "recorded_by": step.actor.id,
        "note": request.get("note"),
        "outcome": None,
    }
    step.changes["referrals"] = [*referrals, referral]
    step.log(
        "referred",
        referral_id=referral["id"],
        **{k: referral[k] for k in ("mediator", "reference", "referred_at", "note")},
    )
    step.publish(
        events.CASE_REFERRED,
        {
            "referral_id": referral["id"],
            "mediator": referral["mediator"],
            "referred_at": referral["referred_at"].isoformat(),
            "by": step.actor.id,
        },
    )


def conclude(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The third party's outcome: settled (with what was agreed), not settled, withdrawn by
    the customer, or an arbitral award; once per referral."""
    referrals: list[Doc] = step.case.get("referrals") or []
    referral = next((r for r in referrals if r["id"] == request["referral_id"]), None)
    if referral is None:
        raise ValidationError({"referral_id": [f"No referral {request['referral_id']} on this case."]})
    if referral["outcome"] is not None:
        raise StateConflict(f"referral {referral['id']} ({referral['mediator']}) has its outcome already")
    outcome = {
        "result": request["result"],
        "decided_at": _date(step, request, "decided_at", referral["referred_at"]),
        "summary": request["summary"],
        "amount_fen": request.get("amount_fen"),
        "recorded_by": step.actor.id,
    }
    step.changes["referrals"] = [{**r, "outcome": outcome} if r["id"] == referral["id"] else r for r in referrals]
    step.log(
        "mediation_concluded",
        referral_id=referral["id"],
        mediator=referral["mediator"],
        result=outcome["result"],
        decided_at=outcome["decided_at"],
        summary=outcome["summary"],
    )
    step.publish(
        events.MEDIATION_CONCLUDED,
        {
            "referral_id": referral["id"],
            "mediator": referral["mediator"],
            "result": outcome["result"],
            "referred_at": referral["referred_at"].isoformat(),
            "decided_at": outcome["decided_at"].isoformat(),
            "amount_fen": outcome["amount_fen"],
            "by": step.actor.id,
        },
    )
