"""R7.6 product batches checked and the result published (seed 002: 核查同批次商品并公示结果).

A complaint of a product attribute (resolution.yml `batch_checks.attributes`) that names a
barcode or batch code starts the check of that batch at its mall: one check per mall and
batch (its number says which: SHXJH-LOT-20261201, or SHXJH-EAN-<barcode> when only the
barcode is known), which later complaints of the batch join. Its steps, each by the role or
department the policy names and within its time from the step before: hold (the goods off
the shelf), inspect (the finding), result (safe or unsafe, and what was done with the batch:
an action the verdict allows), then publish (the mall's notice page and every complaint of
the batch: a timeline entry on each case). Plain functions of a Step, as for incidents."""

import re
from datetime import datetime

from marshmallow import ValidationError

from mallcare_common.contracts import resolution as events
from mallcare_common.personal import mask_text

from ..policy import ResolutionPolicy
from ..schemas import ActionIn, BatchHoldIn, BatchInspectionIn, BatchResultIn
from .errors import NoAuthority, StateConflict
from .step import Actor, Doc, Step

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("held",),
    "held": ("inspected",),
    "inspected": ("concluded",),
    "concluded": ("published",),
}
# the state each step needs, and the state it leaves
STEPS = {"hold": ("open", "held"), "inspect": ("held", "inspected"), "result": ("inspected", "concluded")}
NEXT = {"hold": "inspect", "inspect": "result", "result": "publish"}


class BatchStep(Step):
    transitions = TRANSITIONS
    what = "batch check"


def key_of(case: Doc, policy: ResolutionPolicy) -> str | None:
    """The number of the check a newly opened case belongs to, or None: not a product
    complaint, or it names neither a barcode nor a batch."""
    product, category = case.get("product") or {}, case.get("category") or ""
    if category.split(".")[0] not in policy.rules["batch_checks"]["attributes"]:
        return None
    code = policy.malls[case["mall_id"]].code
    if product.get("batch"):
        return f"{code}-LOT-{re.sub(r'[^A-Z0-9-]', '', product['batch'].upper())}"
    if product.get("barcode"):
        return f"{code}-EAN-{product['barcode']}"
    return None


def attach(case: Doc, event: Doc, policy: ResolutionPolicy) -> str | None:
    """Note on a new case (from its complaint_triaged) its goods and the check of their batch;
    the check's number, or None when the case starts none. (Its timeline gets the result when
    it is published: the case's page shows the check from its first moment.)"""
    case["product"] = event["payload"].get("product")
    number = case["batch_check_no"] = key_of(case, policy)
    return number


def new_check(number: str, case: Doc, policy: ResolutionPolicy, now: datetime) -> tuple[Doc, Doc]:
    """The check of a batch, opened by its first complaint's case, and its batch_check_opened event."""
    due = policy.calendar(case["mall_id"]).due(now, policy.rules["batch_checks"]["steps"]["hold"]["within"])
    doc = {
        "_id": number,
        "mall_id": case["mall_id"],
        "state": "open",
        "version": 0,
        "product": case["product"],
        "complaint_nos": [case["_id"]],
        "opened_at": now,
        "due_at": due,
        "hold": None,
        "inspect": None,
        "result": None,
        "published": None,
        "policy_version": policy.version,
        "timeline": [],
        "request_ids": [],
    }
    step = BatchStep(doc, Actor("resolution", "service"), now)
    step.log("opened", complaint_no=case["_id"], product=case["product"], due_at=due)
    step.publish(
        events.BATCH_CHECK_OPENED,
        {
            "product": case["product"],
            "first_complaint_no": case["_id"],
            "hold_due_at": due.isoformat(),
            "by": "resolution",
        },
    )
    doc["timeline"] = step.entries
    return doc, step.events[0]


def next_step(check: Doc, policy: ResolutionPolicy) -> Doc | None:
    """The step the check waits for, by when and by whom (the console offers it to them), or
    None once published."""
    name = {"open": "hold", "held": "inspect", "inspected": "result", "concluded": "publish"}.get(check["state"])
    if name is None:
        return None
    rule = policy.rules["batch_checks"]["steps"][name]
    return {"step": name, "due_at": check["due_at"], "roles": rule["roles"], "departments": rule["departments"]}


def may_take(step_name: str, actor: Actor, department: str | None, policy: ResolutionPolicy) -> bool:
    rule = policy.rules["batch_checks"]["steps"][step_name]
    return actor.role in rule["roles"] or (department is not None and department in rule["departments"])


def _require(step_name: str, step: Step, policy: ResolutionPolicy) -> None:
    staff = policy.staff(step.actor.id)
    if not may_take(step_name, step.actor, staff.department if staff else None, policy):
        rule = policy.rules["batch_checks"]["steps"][step_name]
        allowed = ", ".join([*rule["roles"], *(f"{d} staff" for d in rule["departments"])])
        raise NoAuthority(f"a {step.actor.role} may not take a batch check's {step_name} step (allowed: {allowed})")


def take(step_name: str, step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """One step of the check (hold, inspect, result), by whom the policy names, timed against
    its deadline; the next step's deadline counts from now."""
    _require(step_name, step, policy)
    needs, leaves = STEPS[step_name]
    if step.state != needs:
        raise StateConflict(f"a batch check that is {step.state} cannot take its {step_name} step (needs {needs})")
    rules = policy.rules["batch_checks"]
    if step_name == "result":
        allowed = rules["actions"][request["verdict"]]
        if request["action"] not in allowed:
            # bad input, as the schema's refusals are: the field and what it may be
            raise ValidationError(
                {"action": [f"For a batch found {request['verdict']}, one of: {', '.join(allowed)}."]}
            )
    due, within = step.case["due_at"], step.now <= step.case["due_at"]
    following = policy.calendar(step.case["mall_id"]).due(step.now, rules["steps"][NEXT[step_name]]["within"])
    done = {"at": step.now, "by": step.actor.id, "within_deadline": within, **_fields(request)}
    step.move(leaves)
    step.changes.update({step_name: done, "due_at": following})
    step.log(step_name, **_logged(_fields(request)), within_deadline=within, next_due_at=following)
    step.publish(
        events.BATCH_CHECK_STEP_DONE,
        {
            "step": step_name,
            "due_at": due.isoformat(),
            "within_deadline": within,
            "next_due_at": following.isoformat(),
            "verdict": request.get("verdict"),
            "action": request.get("action"),
            "by": step.actor.id,
        },
    )


def _fields(request: Doc) -> Doc:
    return {k: v for k, v in request.items() if k not in ("by", "request_id")}


def _logged(fields: Doc) -> Doc:
    """A step's fields as its timeline entry holds them: the result's `action` as `batch_action`
    (an entry's own `action` is the step)."""
    return {("batch_action" if k == "action" else k): v for k, v in fields.items()}


def hold(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    take("hold", step, request, policy)


def inspect(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    take("inspect", step, request, policy)


def result(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    take("result", step, request, policy)


def publish_result(step: Step, request: Doc, policy: ResolutionPolicy) -> None:
    """The result goes on the mall's notice page and to every complaint of the batch (each
    case's timeline, from the event's handler)."""
    _require("publish", step, policy)
    check = step.case
    if step.state != "concluded":
        raise StateConflict(f"a batch check that is {step.state} has no result to publish")
    within = step.now <= check["due_at"]
    step.move("published")
    step.changes.update(published={"at": step.now, "by": step.actor.id, "within_deadline": within}, due_at=None)
    step.log("published", complaint_nos=check["complaint_nos"], within_deadline=within)
    step.publish(
        events.BATCH_RESULT_PUBLISHED,
        {
            "product": check["product"],
            "verdict": check["result"]["verdict"],
            "action": check["result"]["action"],
            "summary": check["result"]["summary"],
            "complaint_nos": check["complaint_nos"],
            "by": step.actor.id,
        },
    )


def note_result(step: Step, check: Doc, policy: ResolutionPolicy) -> None:
    """The published result on a case of the batch (its timeline)."""
    found = check["result"]
    step.log(
        "batch_result",
        batch_check_no=check["_id"],
        verdict=found["verdict"],
        batch_action=found["action"],
        summary=found["summary"],
    )


def notice(check: Doc) -> Doc:
    """What the mall's public notice page shows of a published check: the goods, the result,
    when; no complaint, no customer, no member of staff."""
    return {
        "number": check["_id"],
        "product": check["product"],
        "verdict": check["result"]["verdict"],
        "action": check["result"]["action"],
        "summary": mask_text(check["result"]["summary"]),  # a phone or ID staff wrote stays off the public page
        "published_at": check["published"]["at"],
    }


ACTIONS = {
    "hold": (BatchHoldIn, hold),
    "inspection": (BatchInspectionIn, inspect),
    "result": (BatchResultIn, result),
    "publication": (ActionIn, publish_result),
}
