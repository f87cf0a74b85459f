"""Feedback's rules as plain functions (R4.1-R4.4): when and how to ask the customer
after a resolution, what their answer means, retries, the signed answer link, and
the case library entry without personal data. No I/O and no clock: the service
passes in the documents, the policy and `now`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError

from mallcare_common.calendar import BusinessCalendar, Quiet, as_stored, quiet_ends
from mallcare_common.contracts import build_event
from mallcare_common.contracts import feedback as events
from mallcare_common.errors import Conflict
from mallcare_common.personal import scrub

if TYPE_CHECKING:  # types only: the rules import no more than they did
    from .policy import FeedbackPolicy

Doc = dict[str, Any]  # a stored revisit, a request or an event, as the store and marshmallow give them

OPEN = ("scheduled", "retry")


# --- when and how to ask (R4.1) ------------------------------------------------------------------


def contact_kind(contact_masked: str | None) -> str | None:
    if not contact_masked:
        return None
    return "email" if "@" in contact_masked else "phone"


def revisit_way(channel: str, contact_masked: str | None, rule: Mapping[str, Any]) -> str | None:
    """The way to ask: the channel's, unless the contact cannot take it (a call or an SMS
    needs a phone; an app message reaches members of the app channels). None: no way at all."""
    way: str
    way, kind = rule["ways"][channel], contact_kind(contact_masked)
    if way in ("phone_call", "sms") and kind != "phone":
        return "app_message" if way == "sms" and kind == "email" else None
    return way


def quiet_starts_before(at: datetime, quiet: Quiet, zone: tzinfo) -> datetime:
    """When the quiet period that holds `at` began."""
    local = at.astimezone(zone)
    start = datetime.combine(local.date(), quiet[0], tzinfo=zone)
    if start > local:
        start -= timedelta(days=1)
    return start.astimezone(timezone.utc)


LAST_CALL = timedelta(minutes=30)  # how long before the quiet hours a fallback call is placed


def schedule(
    resolved_at: datetime, way: str, rule: Mapping[str, Any], calendar: BusinessCalendar
) -> tuple[datetime, datetime, bool]:
    """(scheduled_at, due_at, beyond_deadline). Asked `after` the resolution, outside the
    quiet hours for calls and SMS: the next allowed time when it is before the deadline,
    else late in the allowed time before the quiet hours began (from the resolution on),
    else (no allowed time at all before the deadline) the next allowed time, flagged."""
    due = calendar.due(resolved_at, rule["within"])
    wanted = calendar.due(resolved_at, rule["after"])
    if way == "app_message":
        return wanted, due, False
    zone, quiet = calendar.zone, rule["quiet_hours"]
    next_allowed = quiet_ends(wanted, quiet, zone)
    if next_allowed <= due:
        return as_stored(next_allowed), due, False
    quiet_began = quiet_starts_before(wanted, quiet, zone)
    earlier = quiet_ends(max(quiet_began - LAST_CALL, resolved_at), quiet, zone)
    if resolved_at <= earlier < quiet_began:
        return as_stored(earlier), due, False
    return as_stored(next_allowed), due, True


# --- documents and events ------------------------------------------------------------------------


def revisit_id(complaint_no: str, round_: int) -> str:
    return f"{complaint_no}-R{round_}"


def new_revisit(resolved: Doc, complaint: Mapping[str, Any], policy: FeedbackPolicy, now: datetime) -> tuple[Doc, Doc]:
    """The revisit of one resolution (`resolved` is the case_resolved envelope) and its
    revisit_scheduled, or revisit_done when nobody can be asked (for the outbox of its insert)."""
    payload, mall_id = resolved["payload"], resolved["mall_id"]
    rule = policy.revisit(mall_id)
    way = revisit_way(payload["channel"], complaint.get("contact_masked"), rule)
    number, round_ = resolved["complaint_no"], payload["round"]
    doc: Doc = {
        "_id": revisit_id(number, round_),
        "complaint_no": number,
        "mall_id": mall_id,
        "round": round_,
        "channel": payload["channel"],
        "contact_masked": complaint.get("contact_masked"),
        "category": payload["category"],
        "risk_level": payload["risk_level"],
        "department": payload["department"],
        "resolved_at": resolved["occurred_at"],
        "way": way,
        "attempts": [],
        "answer": None,
        "overdue_reported": False,
        "version": 0,
        "created_at": now,
        "policy_version": policy.version,
    }
    if way is None:  # nobody to ask (an anonymous suggestion): kept, and counted as unreachable
        doc.update(status="unreachable", scheduled_at=None, due_at=None, beyond_deadline=False, link_expires_at=None)
        event = build_event(
            events.REVISIT_DONE,
            mall_id=mall_id,
            complaint_no=number,
            occurred_at=now,
            payload={
                "revisit_id": doc["_id"],
                "outcome": "unreachable",
                "attempts": 0,
                "score": None,
                "within_deadline": True,
                "by": "feedback",
            },
        )
    else:
        calendar = policy.malls[mall_id].calendar
        scheduled, due, beyond = schedule(doc["resolved_at"], way, rule, calendar)
        link_expires = calendar.due(scheduled, rule["link_valid"]) if way != "phone_call" else None
        doc.update(
            status="scheduled", scheduled_at=scheduled, due_at=due, beyond_deadline=beyond, link_expires_at=link_expires
        )
        event = build_event(
            events.REVISIT_SCHEDULED,
            mall_id=mall_id,
            complaint_no=number,
            occurred_at=now,
            payload={
                "revisit_id": doc["_id"],
                "round": round_,
                "way": way,
                "scheduled_at": scheduled.isoformat(),
                "due_at": due.isoformat(),
                "beyond_deadline": beyond,
            },
        )
    return doc, event


def satisfied(score: int, policy: FeedbackPolicy) -> bool:
    satisfied_from: int = policy.rules["satisfied_from"]
    return score >= satisfied_from


class AlreadyAnswered(Conflict):
    """The revisit has its answer: it takes one."""


def answerable(revisit: Doc) -> bool:
    """Whether the revisit takes an answer: Conflict (AlreadyAnswered once answered) if not;
    True when it takes one late. A customer found unreachable may still answer (calling
    back, or by the link) until resolution closes the case without an answer (the service
    knows that)."""
    if revisit["status"] == "answered":
        raise AlreadyAnswered(f"revisit {revisit['_id']} has been answered already")
    late = revisit["status"] == "unreachable" and revisit["way"] is not None
    if revisit["status"] not in OPEN and not late:
        raise Conflict(f"revisit {revisit['_id']} is {revisit['status']}")
    return late


def answer(
    revisit: Doc, request: Mapping[str, Any], by: str, policy: FeedbackPolicy, now: datetime
) -> tuple[Doc, list[Doc]]:
    """R4.1-R4.3: the customer's answer; (changes, events). Below `satisfied_from` the
    customer is dissatisfied and resolution reopens the case (R4.2). An answer taken late
    (answerable) announces no second revisit_done: the revisit had ended."""
    late = answerable(revisit)
    unknown = sorted(set(request.get("reasons", [])) - set(policy.rules["reason_tags"]))
    if unknown:
        raise ValidationError(
            {"reasons": [f"Unknown reason tag: {', '.join(unknown)}; known: {', '.join(policy.rules['reason_tags'])}."]}
        )
    score, happy = request["score"], satisfied(request["score"], policy)
    attempt = {"at": now, "by": by, "outcome": "reached"}
    record = {
        "at": now,
        "by": by,
        "score": score,
        "satisfied": happy,
        "reasons": request.get("reasons", []),
        "comment": request.get("comment"),
        "via": request.get("via", "link" if by == "customer" else "staff"),
    }
    common = {"mall_id": revisit["mall_id"], "complaint_no": revisit["complaint_no"], "occurred_at": now}
    answered = {"revisit_id": revisit["_id"], "score": score, "by": by}
    out = (
        []
        if late
        else [
            build_event(
                events.REVISIT_DONE,
                **common,
                payload={
                    "revisit_id": revisit["_id"],
                    "outcome": "answered",
                    "attempts": len(revisit["attempts"]) + 1,
                    "score": score,
                    "within_deadline": now <= revisit["due_at"],
                    "by": by,
                },
            )
        ]
    )
    if happy:
        out.append(build_event(events.CUSTOMER_SATISFIED, **common, payload=answered))
    else:
        out.append(
            build_event(events.CUSTOMER_DISSATISFIED, **common, payload={**answered, "reasons": record["reasons"]})
        )
    changes = {"status": "answered", "answer": record, "attempts": [*revisit["attempts"], attempt]}
    return changes, out


def no_answer(
    revisit: Doc, request: Mapping[str, Any], by: str, policy: FeedbackPolicy, now: datetime
) -> tuple[Doc, list[Doc]]:
    """Nobody answered: try again later (outside quiet hours), until the last attempt."""
    if revisit["status"] not in OPEN:
        raise Conflict(f"revisit {revisit['_id']} is {revisit['status']}")
    rule = policy.revisit(revisit["mall_id"])
    attempts = [*revisit["attempts"], {"at": now, "by": by, "outcome": request["outcome"], "note": request.get("note")}]
    if len(attempts) >= rule["max_attempts"] or request["outcome"] == "wrong_number":
        event = build_event(
            events.REVISIT_DONE,
            mall_id=revisit["mall_id"],
            complaint_no=revisit["complaint_no"],
            occurred_at=now,
            payload={
                "revisit_id": revisit["_id"],
                "outcome": "unreachable",
                "attempts": len(attempts),
                "score": None,
                "within_deadline": now <= revisit["due_at"],
                "by": by,
            },
        )
        return {"status": "unreachable", "attempts": attempts}, [event]
    calendar = policy.malls[revisit["mall_id"]].calendar
    retry_at = calendar.due(now, rule["retry_after"])
    if revisit["way"] != "app_message":
        retry_at = as_stored(quiet_ends(retry_at, rule["quiet_hours"], calendar.zone))
    return {"status": "retry", "attempts": attempts, "scheduled_at": retry_at}, []


def next_attempt(revisit: Doc) -> datetime | None:
    """When the next call or message is due: the planned time, or after an unanswered attempt
    its retry (no_answer moves `scheduled_at` there); None once the revisit has ended."""
    return revisit["scheduled_at"] if revisit["status"] in OPEN else None


def overdue(revisit: Doc, now: datetime) -> Doc:
    """The one revisit_overdue event of a revisit past its deadline."""
    return build_event(
        events.REVISIT_OVERDUE,
        mall_id=revisit["mall_id"],
        complaint_no=revisit["complaint_no"],
        occurred_at=now,
        payload={"revisit_id": revisit["_id"], "due_at": revisit["due_at"].isoformat()},
    )


def cancelled(revisit: Doc, reason: str, at: datetime) -> tuple[Doc, list[Doc]]:
    """The changes and the revisit_cancelled event of an open revisit that became moot at
    `at` (when the case was reopened or closed, not when feedback heard of it): analytics
    stops its clock then, without a breach when that was in time."""
    event = build_event(
        events.REVISIT_CANCELLED,
        mall_id=revisit["mall_id"],
        complaint_no=revisit["complaint_no"],
        occurred_at=at,
        payload={"revisit_id": revisit["_id"], "reason": reason},
    )
    return {"status": "cancelled", "cancelled": {"at": at, "reason": reason}}, [event]


# --- the answer link -----------------------------------------------------------------------------


class LinkRefused(Exception):
    """A forged or malformed link."""


class LinkExpired(Exception):
    def __init__(self, message: str, linked: str) -> None:
        super().__init__(message)
        self.linked = linked  # what the link was for: a revisit's answer page, or a survey's (R7.12)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(secret: str, revisit_id_: str, expires_at: datetime) -> str:
    """A token for the answer link: the revisit and its expiry, signed (HMAC-SHA256)."""
    body = f"{revisit_id_}|{int(expires_at.timestamp())}".encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def read_link(secret: str, token: str, now: datetime) -> str:
    """The revisit id a token is for; LinkRefused if forged or malformed, LinkExpired if late."""
    try:
        body_text, mac_text = token.split(".")
        body, mac = _unb64(body_text), _unb64(mac_text)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise LinkRefused("this answer link is not valid") from exc
    if not hmac.compare_digest(mac, hmac.new(secret.encode(), body, hashlib.sha256).digest()):
        raise LinkRefused("this answer link is not valid")
    try:  # signed by us, so well formed; read defensively all the same
        revisit, expires = body.decode().rsplit("|", 1)
        expires_at = datetime.fromtimestamp(int(expires), timezone.utc)
    except (ValueError, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise LinkRefused("this answer link is not valid") from exc
    if now > expires_at:
        raise LinkExpired("this answer link has expired; the mall will call you instead", revisit)
    return revisit


def same_answer(recorded: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    return (recorded["score"], sorted(recorded["reasons"]), recorded["comment"]) == (
        request["score"],
        sorted(request.get("reasons", [])),
        request.get("comment"),
    )


# --- the case library (R4.4) ---------------------------------------------------------------------

PROCESS_DETAIL = (
    "source",
    "summary",
    "decision",
    "remedies",
    "points",
    "reason",
    "to_role",
    "kind",
    "total",
    "responsible_department",
    "spot",
)


def library_entry(
    case: Doc, complaint: Mapping[str, Any], lessons: str | None, by: str, automatic: bool, now: datetime
) -> tuple[Doc, Doc]:
    """The case as a lesson: the problem, how it was handled (the timeline, by role, no
    names or numbers of people), and what was learnt; with its case_archived event (for
    the outbox of its insert)."""
    process = [
        {
            "at": _time(e["at"]),
            "role": e["role"],
            "action": e["action"],
            "state": e["state"],
            **{k: scrub(v) for k, v in (e.get("detail") or {}).items() if k in PROCESS_DETAIL},
        }
        for e in case["timeline"]
        if e["action"] not in ("event_not_applied",)
    ]
    demands = complaint.get("demands") or {}
    entry = {
        "_id": case["complaint_no"],
        "mall_id": case["mall_id"],
        "category": case["category"],
        "risk_level": case["risk_level"],
        "merchant_id": complaint.get("merchant_id"),
        "area": complaint.get("area"),
        "channel": case["channel"],
        "problem": {
            "description": scrub(complaint.get("description")),
            "fact": scrub(demands.get("fact")),
            "expectation": scrub(demands.get("expectation")),
        },
        "process": process,
        "outcome": scrub((case.get("resolution") or {}).get("summary")),
        "rounds": case["round"],
        "lessons": scrub(lessons),
        "lessons_pending": not lessons,
        "archived_at": now,
        "archived_by": by,
        "automatic": automatic,
    }
    event = build_event(
        events.CASE_ARCHIVED,
        mall_id=case["mall_id"],
        complaint_no=case["complaint_no"],
        occurred_at=now,
        payload={"category": case["category"], "risk_level": case["risk_level"], "automatic": automatic, "by": by},
    )
    return entry, event


def _time(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def search_filter(query: Mapping[str, Any]) -> dict[str, Any]:
    """A library query: exact category, mall, merchant; a keyword in the problem, process or lessons."""
    selector = {k: query[k] for k in ("category", "mall_id", "merchant_id", "risk_level") if k in query}
    if query.get("q"):
        word = {"$regex": re.escape(query["q"]), "$options": "i"}
        selector["$or"] = [
            {"problem.description": word},
            {"problem.fact": word},
            {"lessons": word},
            {"outcome": word},
            {"process.summary": word},
        ]
    return selector
