"""Triage's rules as plain functions (R2.1-R2.5, R7.4): classify (triage.classify),
grade risk, decide urgency, route, pick an owner, set deadlines. No I/O and no clock:
the service passes in the policy, the history counts it looked up, and `now`."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from marshmallow import ValidationError

from mallcare_common.contracts import COMPLAINT_CORRECTED, COMPLAINT_REASSIGNED, COMPLAINT_TRIAGED, build_event
from mallcare_common.errors import Conflict

from . import classify
from .demand import beyond_the_law
from .policy import LEVELS, Handler, TriagePolicy

if TYPE_CHECKING:  # types only: the rules import no more than they did
    from mallcare_common.calendar import BusinessCalendar

LEVEL_ORDER = {"low": 0, "medium": 1, "high": 2}

Doc = dict[str, Any]  # a stored assessment, an event or a complaint, as the store and marshmallow give them


class History(Protocol):
    """What `assess` asks of triage's own records."""

    def count_by_customer(self, ref: str, since: datetime) -> int: ...

    def count_recurrences(
        self, mall_id: str, merchant_id: str | None, category: str, since: datetime, until: datetime
    ) -> int: ...

    def open_load(self, mall_id: str) -> dict[str, int]: ...


def assess(
    complaint: Doc, policy: TriagePolicy, now: datetime, history: History, decided_category: str | None = None
) -> Doc:
    """The whole assessment of one registered complaint.

    `complaint` is the complaint_registered payload plus mall_id; `history` answers
    count_by_customer(ref, since), count_recurrences(mall_id, merchant_id, category,
    since, until) and open_load(mall_id) from triage's own records. A category a person
    decided is taken as it is, and no dispute across departments is read into the text."""
    mall_id = complaint["mall_id"]
    reading = classify.read(complaint, policy.rules)
    category: str | None
    if decided_category:
        category, source, confirmed, confidence = decided_category, "corrected", True, None
        problems: tuple[str, ...] = (decided_category,)
    else:
        category, source, confirmed, confidence = (
            reading.category,
            reading.source,
            reading.confirmed,
            reading.confidence,
        )
        problems = reading.problems
    merchant = (complaint.get("location") or {}).get("merchant_id")
    routing = policy.section(mall_id, "routing")
    department, involved, basis = route(category, merchant, problems, routing, reading.words(routing["security_words"]))
    if involved and not decided_category:
        category = problems[0]  # a dispute is filed under the problem said first
    risk_rules = policy.rules["risk"]
    repeat = risk_rules.get("repeat_complainant", {})
    ref = (complaint.get("customer") or {}).get("ref")
    previous = history.count_by_customer(ref, now - timedelta(days=repeat.get("window_days", 90))) if ref else 0
    level, reasons = assess_risk(complaint, risk_rules, previous, reading, category)
    urgency_rules = policy.section(mall_id, "urgency")
    window = timedelta(days=urgency_rules["systemic"]["window_days"])
    recurrences = 1 + history.count_recurrences(mall_id, merchant, category, now - window, now) if category else 0
    urgency = decide_urgency(level, urgency_rules)
    owner, note = owner_of(policy, mall_id, department, category, history.open_load(mall_id), now)
    basis = f"{basis}; {note}" if note else basis
    first_due, resolution_due = deadlines(
        category,
        urgency,
        level,
        policy.section(mall_id, "sla"),
        policy.malls[mall_id].calendar,
        complaint["received_at"],
    )
    return {
        "category": category,
        "category_source": source,
        "category_confirmed": confirmed,
        "category_confidence": confidence,
        "risk_level": level,
        "risk_reasons": reasons,
        "demand": reading.demand,
        "urgency": urgency,
        "systemic": recurrences >= urgency_rules["systemic"]["threshold"],
        "recurrences": recurrences,
        "department": department,
        "routing_basis": basis,
        "review_meeting": bool(involved),
        "departments_involved": involved,
        "owner": owner and {"id": owner.id, "name": owner.name},
        "first_response_due_at": first_due,
        "resolution_due_at": resolution_due,
        "policy_version": policy.version,
        "product": product_of(complaint, policy.rules["classification"]["batch_markers"]),
    }


def product_of(complaint: Mapping[str, Any], markers: list[str]) -> Doc | None:
    """R7.6: the goods' barcode (the channel's form) and batch code (the customer's words after
    a marker of the policy: "批号20261201", "批次：B-2312", "lot 2312A"), or None when neither is named."""
    barcode = (complaint.get("product") or {}).get("barcode")
    said = " ".join(filter(None, (complaint.get("description"), (complaint.get("demands") or {}).get("fact"))))
    pattern = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
    found = re.search(
        rf"(?<![A-Za-z])(?:{pattern})\s*(?:no\.?|号|為|为|是|:|：|#)?\s*((?=[A-Za-z-]*[0-9])[A-Za-z0-9][A-Za-z0-9-]{{2,31}})",
        said,
        re.I,
    )
    batch = found.group(1).upper() if found else None
    return {"barcode": barcode, "batch": batch} if barcode or batch else None


def assess_risk(
    complaint: Doc,
    risk_rules: Mapping[str, Any],
    previous_by_customer: int,
    reading: classify.Reading,
    category: str | None,
) -> tuple[str, list[Doc]]:
    """(level, reasons): every rule that applies, each with what triggered it. Words count
    where they are not negated; the demand is held against the law of the complaint's basis."""
    customer = complaint.get("customer") or {}
    reasons: list[Doc] = []
    for name, rule in risk_rules.items():
        detail = None
        said = reading.words(rule["words"], rule.get("unless", ())) if rule.get("words") else []
        if rule.get("channels") and complaint.get("channel") in rule["channels"]:
            detail = f"channel {complaint['channel']}"
        elif said:
            detail = "mentions " + ", ".join(said)
        elif rule.get("legal_bases"):
            detail = beyond_the_law(reading.demand, legal_basis(rule, reading, category))
        elif rule.get("member_tiers") and customer.get("member_tier") in rule["member_tiers"]:
            detail = f"member tier {customer['member_tier']}"
        elif rule.get("min_anger") and (complaint.get("anger_score") or 0) >= rule["min_anger"]:
            detail = f"anger {complaint['anger_score']}"
        elif rule.get("min_previous") and previous_by_customer >= rule["min_previous"]:
            detail = f"{previous_by_customer} earlier complaints in {rule['window_days']} days"
        if detail:
            reasons.append({"reason": name, "level": rule["level"], "detail": detail})
    # each rule's level is one of LEVEL_ORDER's (the policy's schema says so)
    level = max((r["level"] for r in reasons), key=LEVEL_ORDER.get, default="low")  # type: ignore[arg-type]
    return level, reasons


def legal_basis(rule: Mapping[str, Any], reading: classify.Reading, category: str | None) -> Any:
    """The law a product complaint falls under (food when it names food), else the default."""
    if category and category.startswith("product."):
        for basis in rule["legal_bases"].values():
            if basis["words"] and reading.words(basis["words"]):
                return basis
    return rule["legal_bases"][rule["default_basis"]]


def decide_urgency(risk_level: str, urgency_rules: Mapping[str, Any]) -> str:
    """R2.2: urgent by risk (high risk always), else routine. Recurrence is the separate
    `systemic` flag and never makes a complaint wait longer."""
    return "urgent" if risk_level in urgency_rules["urgent_risk_levels"] else "routine"


def route(
    category: str | None,
    merchant: str | None,
    problems: Sequence[str],
    routing: Mapping[str, Any],
    security: Sequence[str],
) -> tuple[str, list[str], str]:
    """(department, departments involved in a dispute, basis) by R2.4's responsibility
    rules: a security matter to security; problems of their own owned by two departments
    (a tenant's product and its staff are one party) make a review meeting."""
    if security:
        return routing["security"], [], "security matter: " + ", ".join(security)
    if category is None:
        return routing["unclassified"], [], "no category yet"
    departments = sorted({_owner_of(p.split(".")[0], merchant, routing)[0] for p in problems})
    if len(departments) > 1:
        return routing["cross_department"], departments, "dispute spans " + ", ".join(departments)
    return _owner_of(category.split(".")[0], merchant, routing)


def _owner_of(attribute: str, merchant: str | None, routing: Mapping[str, Any]) -> tuple[str, list[str], str]:
    if merchant and attribute in routing["tenant"]["attributes"]:
        return routing["tenant"]["department"], [], f"tenant {merchant}"
    return routing["departments"][attribute], [], f"{attribute} problem"


def pick_owner(
    handlers: Sequence[Handler],
    department: str,
    attribute: str | None,
    open_load: Mapping[str, int],
    now: datetime,
    fallback: Handler | None = None,
) -> Handler | None:
    """R2.5: among the department's handlers on shift now, the lowest open load,
    then a skill match, then the roster order. None when they are all off shift (the
    unowned sweep assigns one when someone is on); the mall's fallback (its duty
    supervisor) when the department has no handler at the mall at all."""
    team = [(i, h) for i, h in enumerate(handlers) if h.department == department]
    if not team:
        return fallback
    on_shift = [(i, h) for i, h in team if h.shifts.is_open(now)]
    if not on_shift:
        return None
    _, owner = min(on_shift, key=lambda ih: (open_load.get(ih[1].id, 0), attribute not in ih[1].skills, ih[0]))
    return owner


def owner_of(
    policy: TriagePolicy,
    mall_id: str,
    department: str,
    category: str | None,
    open_load: Mapping[str, int],
    now: datetime,
) -> tuple[Handler | None, str | None]:
    """(owner or None, a note when the mall's fallback took it, for the routing basis or history)."""
    fallback = policy.fallback(mall_id)
    owner = pick_owner(
        policy.handlers(mall_id), department, category and category.split(".")[0], open_load, now, fallback
    )
    if owner is not None and owner is fallback:
        return owner, f"nobody in {department} at {mall_id}: duty supervisor {owner.id} takes it"
    return owner, None


def deadlines(
    category: str | None,
    urgency: str,
    risk_level: str,
    sla: Mapping[str, Any],
    calendar: BusinessCalendar,
    start: datetime,
) -> tuple[datetime, datetime]:
    """R2.3: first response by attribute, resolution by urgency (urgent or routine), both
    tightened by risk."""
    factor = sla["risk_factor"][risk_level]
    attribute = category.split(".")[0] if category else "default"
    first = sla["first_response"].get(attribute) or sla["first_response"]["default"]
    return calendar.due(start, first, factor), calendar.due(start, sla["resolution"][urgency], factor)


# --- documents and events ----------------------------------------------------------------


def new_assessment(event: Doc, assessment: Doc, now: datetime) -> tuple[Doc, Doc]:
    """The stored assessment of a registered complaint and its triaged event (for the outbox of its insert)."""
    complaint = event["payload"]
    doc = {
        "_id": event["complaint_no"],
        "mall_id": event["mall_id"],
        "status": "open",
        "registered_event_id": event["event_id"],
        "triaged_at": now,
        "received_at": complaint["received_at"],
        "channel": complaint["channel"],
        "customer_ref": complaint["customer"]["ref"],
        "merchant_id": (complaint.get("location") or {}).get("merchant_id"),
        # what a re-assessment needs again, without personal data
        "complaint": {
            k: complaint.get(k)
            for k in (
                "channel",
                "description",
                "demands",
                "customer",
                "location",
                "emotion",
                "anger_score",
                "tone_note",
                "category_hint",
                "received_at",
                "product",
            )
        },
        **assessment,
        "history": [{"at": now, "action": "triaged", "by": "triage", "reason": assessment["routing_basis"]}],
    }
    return doc, triaged_event(doc, now)


def reassessment(
    doc: Doc, field: str, value: str, by: str, reason: str, policy: TriagePolicy, now: datetime, history: History
) -> tuple[Doc, Doc, Doc]:
    """A person's correction of the category or the risk: routing and deadlines again.

    The owner stays when the department does; otherwise the new department's
    handler with the lowest load takes it. Returns (changes, history entry, event)."""
    if field == "category" and value not in classify.categories(policy.rules):
        raise ValidationError({"value": [f"Not a category of the taxonomy: {value}."]})
    if field == "risk_level" and value not in LEVELS:
        raise ValidationError({"value": [f"Not a risk level: {', '.join(LEVELS)}."]})
    complaint = {**doc["complaint"], "mall_id": doc["mall_id"]}
    decided = value if field == "category" else (doc["category"] if doc["category_source"] == "corrected" else None)
    assessment = assess(complaint, policy, now, _Excluding(history, doc), decided)
    if field == "risk_level":
        reasons = [*doc["risk_reasons"], {"reason": "corrected", "level": value, "detail": f"{by}: {reason}"}]
        assessment = {**assessment, "risk_level": value, "risk_reasons": reasons}
        urgency = decide_urgency(value, policy.section(doc["mall_id"], "urgency"))
        first, resolution = deadlines(
            assessment["category"],
            urgency,
            value,
            policy.section(doc["mall_id"], "sla"),
            policy.malls[doc["mall_id"]].calendar,
            doc["received_at"],
        )
        assessment.update(urgency=urgency, first_response_due_at=first, resolution_due_at=resolution)
    if doc.get("meeting"):  # R2.4: a correction regrades, the meeting's decision on who is responsible stays
        assessment.update(department=doc["meeting"]["department"], routing_basis=doc["routing_basis"])
    if assessment["department"] == doc["department"]:
        assessment["owner"] = doc["owner"]
    old = doc[field]
    entry = {"at": now, "action": "corrected", "by": by, "reason": reason, "field": field, "old": old, "new": value}
    event = build_event(
        COMPLAINT_CORRECTED,
        mall_id=doc["mall_id"],
        complaint_no=doc["_id"],
        occurred_at=now,
        payload={
            **_assessment_payload(assessment),
            "field": field,
            "old": old,
            "new": value,
            "by": by,
            "reason": reason,
        },
    )
    return assessment, entry, event


def reassignment(
    doc: Doc, owner_id: str, by: str, reason: str, policy: TriagePolicy, now: datetime
) -> tuple[Doc, Doc, Doc]:
    """A handler of the mall takes the complaint; the department follows the handler,
    except for the mall's fallback, who covers for any department. After a review
    meeting only within the department it decided (R2.4): a person cannot undo it."""
    handler = next((h for h in policy.roster(doc["mall_id"]) if h.id == owner_id), None)
    if handler is None:
        raise ValidationError({"owner_id": [f"No handler {owner_id} at {doc['mall_id']}."]})
    fallback = policy.fallback(doc["mall_id"])
    department = doc["department"] if fallback and handler.id == fallback.id else handler.department
    meeting = doc.get("meeting")
    if meeting and department != meeting["department"]:
        raise Conflict(
            f"the review meeting decided that {meeting['department']} is responsible; {owner_id} is in {department}"
        )
    changes = {"owner": {"id": handler.id, "name": handler.name}, "department": department}
    entry = {
        "at": now,
        "action": "reassigned",
        "by": by,
        "reason": reason,
        "old": (doc["owner"] or {}).get("id"),
        "new": handler.id,
    }
    return changes, entry, _reassigned_event(doc, handler.id, department, by, reason, now)


def meeting_decision(
    doc: Doc, event: Doc, policy: TriagePolicy, open_load: Mapping[str, int], now: datetime
) -> tuple[Doc, Doc, Doc | None]:
    """R2.4 one truth per complaint: the review meeting's department, and the owner it
    named (else the department's least-loaded handler on shift, else the mall's
    fallback: the decision does not wait for a shift), become the assessment's.
    Returns (changes, history entry, complaint_reassigned or None when nobody can take it)."""
    decided, mall_id = event["payload"], doc["mall_id"]
    department = decided["responsible_department"]
    owner = next((h for h in policy.roster(mall_id) if h.id == decided["owner_id"]), None)
    how = "named by the meeting"
    if owner is None:
        owner, note = owner_of(policy, mall_id, department, doc["category"], open_load, now)
        how = note or "least loaded on shift"
    if owner is None:
        owner = policy.fallback(mall_id)
        how = f"nobody in {department} on shift: " + ("the duty supervisor" if owner else "the sweep assigns one")
    reason = f"review meeting: {department} is responsible; owner {owner.id if owner else 'none yet'} ({how})"
    changes = {
        "department": department,
        "owner": owner and {"id": owner.id, "name": owner.name},
        "routing_basis": reason,
        "meeting": {
            "department": department,
            "owner_id": decided["owner_id"],
            "by": decided["by"],
            "decided_at": event["occurred_at"],
            "event_id": event["event_id"],
        },
    }
    entry = {
        "at": now,
        "action": "review_meeting",
        "by": decided["by"],
        "reason": reason,
        "field": "department",
        "old": doc["department"],
        "new": department,
    }
    published = _reassigned_event(doc, owner.id, department, decided["by"], reason, now) if owner else None
    return changes, entry, published


def case_status(doc: Doc, event: Doc, now: datetime) -> tuple[Doc, Doc]:
    """The assessment follows its case: closed with it, open again when it reopens.
    (changes, history entry)."""
    closed = event["event_type"] == "case_closed"
    changes = {"status": "closed" if closed else "open", "status_at": event["occurred_at"]}
    entry = {
        "at": now,
        "action": "case_closed" if closed else "case_reopened",
        "by": event["payload"]["by"],
        "reason": event["payload"]["reason"],
    }
    return changes, entry


def _reassigned_event(doc: Doc, owner_id: str, department: str, by: str, reason: str, now: datetime) -> Doc:
    return build_event(
        COMPLAINT_REASSIGNED,
        mall_id=doc["mall_id"],
        complaint_no=doc["_id"],
        occurred_at=now,
        payload={
            "from_owner_id": (doc["owner"] or {}).get("id"),
            "to_owner_id": owner_id,
            "department": department,
            "by": by,
            "reason": reason,
        },
    )


def triaged_event(doc: Doc, now: datetime) -> Doc:
    return build_event(
        COMPLAINT_TRIAGED,
        mall_id=doc["mall_id"],
        complaint_no=doc["_id"],
        occurred_at=now,
        payload={
            **_assessment_payload(doc),
            "received_at": doc["received_at"].isoformat(),
            "channel": doc["channel"],
            "merchant_id": doc["merchant_id"],
            "product": doc.get("product"),
        },
    )


def _assessment_payload(a: Doc) -> Doc:
    return {
        "category": a["category"],
        "category_source": a["category_source"],
        "category_confirmed": a.get("category_confirmed", True),
        "category_confidence": a.get("category_confidence"),
        "demand": a.get("demand"),
        "risk_level": a["risk_level"],
        "risk_reasons": a["risk_reasons"],
        "urgency": a["urgency"],
        "systemic": a.get("systemic", False),
        "recurrences": a.get("recurrences", 0),
        "department": a["department"],
        "review_meeting": a["review_meeting"],
        "departments_involved": a.get("departments_involved", []),
        "owner_id": (a["owner"] or {}).get("id"),
        "first_response_due_at": a["first_response_due_at"].isoformat(),
        "resolution_due_at": a["resolution_due_at"].isoformat(),
        "policy_version": a["policy_version"],
    }


class _Excluding:
    """History look-ups that do not count the complaint being re-assessed."""

    def __init__(self, history: History, doc: Doc) -> None:
        self.history, self.doc = history, doc

    def count_by_customer(self, ref: str, since: datetime) -> int:
        mine: bool = ref == self.doc["customer_ref"] and self.doc["triaged_at"] >= since
        return self.history.count_by_customer(ref, since) - mine

    def count_recurrences(
        self, mall_id: str, merchant_id: str | None, category: str, since: datetime, until: datetime
    ) -> int:
        mine: bool = category == self.doc["category"] and self.doc["triaged_at"] >= since
        return self.history.count_recurrences(mall_id, merchant_id, category, since, until) - mine

    def open_load(self, mall_id: str) -> dict[str, int]:
        return self.history.open_load(mall_id)
