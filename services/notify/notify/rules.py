"""Notify's rules as plain functions (R1.2, R3.2, R3.3, R3.7, R4.1, R7.1): which message
an event makes and by which channel, when it may go (quiet hours, deadlines), what the
customer reads (the policy's templates), and what each gateway answer does to it
(accepted, tried again later, failed). No I/O and no clock: the service passes in the
documents, the policy, what it read from other services and `now`.

A message is one document per (complaint, kind, ref); `ref` says which one of its kind
(1 for the acknowledgement, the promised time, the proposal, the task, the revisit's
round), so a redelivered event finds its message and makes no second one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from mallcare_common.calendar import as_stored, quiet_ends
from mallcare_common.contracts import build_event
from mallcare_common.contracts import notify as events
from mallcare_common.personal import scrub

if TYPE_CHECKING:  # types only: the rules import no more than they did
    from .policy import NotifyPolicy

Doc = dict[str, Any]  # a stored message or complaint, an event, a case as the services give them

OPEN = ("pending", "retry")  # waiting for their next attempt
STATUSES = ("pending", "sending", "retry", "sent", "failed", "cancelled")
CLAIM = timedelta(minutes=2)  # an attempt's hold on its message; a crashed one is tried again after it
ERROR_CHARS = 300  # of a gateway's answer kept on the message and its event
# The contact each channel sends to: a phone, an address, the WeChat OpenID (intake's wechat
# channel knows the customer by it), the app's member id.
CONTACTS = {"sms": "phone", "email": "email", "wechat": "wechat_openid", "app": "member_id"}
# Messages to the merchant a tenant's case was sent to (R7.5), not to the customer: its contact
# is the mall registry's, its language the mall's.
MERCHANT_KINDS = ("merchant_request",)
# R7.7: staff (a high-risk case's lead) are told at their work address, the one contact the
# staff directory keeps, at any hour; so is R7.13's month's report to management and department heads.
STAFF_CHANNEL = "email"
STAFF_KINDS = ("lead", "report")
_CHINESE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


# --- which message, by which channel ----------------------------------------------------------


def message_id(complaint_no: str, kind: str, ref: str) -> str:
    return f"{complaint_no}:{kind}:{ref}"


def route(kind: str, complaint_channel: str, policy: NotifyPolicy) -> str | None:
    """The channel the complaint's messages of `kind` take (the one it came in on, R7.1);
    None when there is none (an acknowledgement at the desk: the printed receipt slip)."""
    routes = dict(policy.rules["routes"])
    if kind == "acknowledgement":
        routes.update(policy.rules["acknowledgement_routes"])
    chosen: str = routes[complaint_channel]
    return None if chosen == "none" else chosen


def language_of(description: str | None, default: str, available: Mapping[str, Any]) -> str:
    """The customer's language: English for a complaint written in Latin letters without
    a Chinese character (where the policy has English texts), Chinese for one with them,
    else the mall's."""
    text = description or ""
    if _CHINESE.search(text):
        return "zh" if "zh" in available else default
    if _LATIN.search(text) and "en" in available:
        return "en"
    return default


def channel_for(wanted: str, contact: Mapping[str, Any], fallback: list[str]) -> str | None:
    """The route's channel when the customer's contact can take it, else the first of the
    policy's fallbacks that it can; None: no way to reach them."""
    for channel in (wanted, *fallback):
        if contact.get(CONTACTS[channel]):
            return channel
    return None


def send_at(
    channel: str, kind: str, at: datetime, deadline: datetime | None, policy: NotifyPolicy, mall_id: str
) -> datetime:
    """When a message by `channel` may go, from `at`: at once, or when the mall's quiet
    hours end for SMS and app pushes; at once all the same for a kind whose deadline
    (the acknowledgement's, the revisit's) would pass before then."""
    quiet = policy.quiet_hours(mall_id)
    if channel not in quiet["channels"]:
        return at
    allowed = quiet_ends(at, quiet["hours"], policy.malls[mall_id].calendar.zone)
    if allowed > at and deadline is not None and allowed > deadline and kind in quiet["deadline_overrides"]:
        return at
    return as_stored(allowed)


def promise_ref(expected_by: datetime) -> str:
    """A promise's ref: the time promised (a new time is a new message, the same one is not)."""
    return f"{expected_by.astimezone(timezone.utc):%Y%m%dT%H%MZ}"


def new_message(
    kind: str,
    ref: str,
    complaint: Mapping[str, Any],
    policy: NotifyPolicy,
    now: datetime,
    *,
    channel: str | None = None,
    not_before: datetime | None = None,
    deadline: datetime | None = None,
    detail: Doc | None = None,
) -> Doc | None:
    """The message of `kind` about `complaint` (what notify keeps of it: mall, channel,
    language, whether the customer left any contact) by `channel` (else the complaint's
    route), due from `not_before` (now) outside the quiet hours; None when the policy
    sends no such message, none by the complaint's channel, or nobody can be told (an
    anonymous suggestion)."""
    to_merchant = kind in MERCHANT_KINDS
    if kind not in policy.rules["kinds"] or not (to_merchant or complaint["reachable"]):
        return None
    wanted = channel or route(kind, complaint["channel"], policy)
    if wanted is None:
        return None
    mall_id, start = complaint["mall_id"], max(not_before or now, now)
    return {
        "_id": message_id(complaint["_id"], kind, ref),
        "complaint_no": complaint["_id"],
        "mall_id": mall_id,
        "kind": kind,
        "ref": ref,
        "language": policy.language(mall_id) if to_merchant else complaint["language"],
        "route": wanted,
        "channel": None,
        "status": "pending",
        "not_before": start,
        "deadline": deadline,
        "next_attempt_at": send_at(wanted, kind, start, deadline, policy, mall_id),
        "claimed_until": None,
        "detail": detail or {},
        "attempts": [],
        "sent": None,
        "failure": None,
        "created_at": now,
        "version": 0,
        "policy_version": policy.version,
    }


def merchant_contact(message: Mapping[str, Any], policy: NotifyPolicy) -> dict[str, Any] | None:
    """Where a message to a merchant goes: its contact in the mall registry as it is now
    (None when the registry no longer lists one)."""
    merchant = policy.malls[message["mall_id"]].merchant(message["detail"]["merchant_id"])
    contact: dict[str, Any] | None = merchant and merchant.get("contact")
    return contact


# --- what the customer reads ------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str | None = None
    html: str | None = None


def _local(at: str | datetime, zone: Any, time_format: str) -> str:
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return moment.astimezone(zone).strftime(time_format)


def context(
    message: Mapping[str, Any],
    policy: NotifyPolicy,
    case: Mapping[str, Any] | None = None,
    revisit: Mapping[str, Any] | None = None,
    survey: Mapping[str, Any] | None = None,
) -> Doc:
    """What the templates of the message's kind are given: the message's own detail (a lead's
    name and role), and for an answer or an execution notice the case (resolution's), for a
    revisit request the revisit, for a survey (R7.12) the survey (feedback's, each with its
    answer link), as their services answer them."""
    mall, words, detail = policy.malls[message["mall_id"]], policy.words(message["language"]), message["detail"]
    zone, time_format = mall.calendar.zone, words["time_format"]
    values: Doc = {"mall": mall.name, "complaint_no": message["complaint_no"], "brief": False}
    kind = message["kind"]
    if kind == "acknowledgement":
        values["received_at"] = _local(detail["received_at"], zone, time_format)
    elif kind == "promise":
        values["expected_by"] = _local(detail["expected_by"], zone, time_format)
    elif kind == "answer":
        assert case is not None
        proposal = next(p for p in case["proposals"] if p["no"] == detail["proposal_no"])
        sent = proposal.get("sent") or {}
        values.update(
            decision=words["decisions"].get(proposal["decision"], proposal["decision"]),
            reasons=proposal["reasons"],
            text=sent.get("text"),
            appeal=sent.get("appeal_procedure"),
            appeal_short=words["appeal_short"],
            remedies=[
                {"name": words["remedies"].get(r["type"], r["type"]), "amount": r["amount"]}
                for r in proposal["remedies"]
            ],
        )
    elif kind == "batch_result":  # R7.6: the goods as the customer named them, the result in the mall's words
        values.update(barcode=detail["barcode"], batch=detail["batch"], summary=detail["summary"])
    elif kind == "merchant_request":
        merchant = mall.merchant(detail["merchant_id"]) or {"name": detail["merchant_id"]}
        values.update(
            merchant=merchant["name"],
            due_at=_local(detail["due_at"], zone, time_format),
            link=policy.rules["merchants"]["page"] + message["complaint_no"],
        )
    elif kind == "execution":
        assert case is not None
        task = next(t for t in case["tasks"] if t["id"] == detail["task_id"])
        values["task"] = {"name": words["remedies"].get(task["kind"], task["kind"]), "amount": task["amount"]}
    elif kind == "lead":
        values.update(role=detail["role"], name=detail["name"])
    elif kind == "report":
        values.update(report_values(detail, words))
    else:
        linked = revisit if kind == "revisit" else survey  # each answered by its link
        assert linked is not None
        values.update(link=linked["answer_link"], valid_until=_local(linked["link_expires_at"], zone, time_format))
    return values


def report_values(detail: Mapping[str, Any], words: Mapping[str, Any]) -> Doc:
    """R7.13: what a report's mail says: who it is for, the month, the part (the whole mall's,
    or a department's in its words), the figures (shares as percentages) and the page's link."""
    figures = detail["figures"]

    def percent(share: float | None) -> str:
        return "—" if share is None else f"{share:.0%}"

    department = detail["department"]
    return {
        "name": detail["name"],
        "period": detail["period"],
        "department": department and words["departments"].get(department, department),
        "link": detail["link"],
        "figures": {
            **{k: figures[k] for k in ("complaints", "resolved", "overdue", "overdue_cases")},
            "satisfaction": percent(figures["satisfaction"]),
            "sla_compliance": percent(figures["sla_compliance"]),
        },
    }


def render(message: Mapping[str, Any], channel: str, values: Mapping[str, Any], policy: NotifyPolicy) -> Rendered:
    """The message as the channel takes it: an e-mail's subject, text and HTML; the short
    text for SMS, WeChat and the app. An SMS over the policy's length is rendered in its
    brief form, and cut only if that is still too long."""
    mall_id, language, kind = message["mall_id"], message["language"], message["kind"]

    def text(part: str, **more: Any) -> str:
        rendered: str = policy.template(mall_id, language, kind, part).render({**values, **more})
        return rendered.strip()

    if channel == "email":
        body = text("text")
        html = policy.template("", language, "html", "").render({**values, "text": body})
        return Rendered(text=body, subject=text("subject"), html=html)
    short, limit = text("short"), policy.rules["sms_max_chars"]
    if channel == "sms" and len(short) > limit:
        short = text("short", brief=True)
        if len(short) > limit:
            short = short[: limit - 1] + "…"
    return Rendered(text=short)


# --- what each attempt's outcome does ---------------------------------------------------------


def backoff(attempts: int, retry: Mapping[str, Any]) -> timedelta:
    """The wait after the `attempts`-th failed attempt: first_after, then `factor` times
    the last wait, at most max_after."""
    seconds = retry["first_after_seconds"] * retry["factor"] ** (attempts - 1)
    return timedelta(seconds=min(seconds, retry["max_after_seconds"]))


def claim(now: datetime) -> Doc:
    """The `$set` of an attempt starting: the message is held until CLAIM has passed."""
    return {"status": "sending", "claimed_until": now + CLAIM}


def _attempt(
    message: Mapping[str, Any], channel: str | None, gateway: str | None, outcome: str, error: str | None, now: datetime
) -> list[Doc]:
    return [
        *message["attempts"],
        {"at": now, "channel": channel, "gateway": gateway, "outcome": outcome, "error": _error(error)},
    ]


def _error(error: str | None) -> str | None:
    """A gateway's answer as kept: without the contact it may quote, and short."""
    if error is None:
        return None
    kept: str = scrub(error)
    return kept if len(kept) <= ERROR_CHARS else kept[: ERROR_CHARS - 1] + "…"


def _event(message: Mapping[str, Any], event_type: Any, payload: Doc, now: datetime) -> Doc:
    return build_event(
        event_type,
        mall_id=message["mall_id"],
        complaint_no=message["complaint_no"],
        occurred_at=now,
        payload={"message_id": message["_id"], "kind": message["kind"], "ref": message["ref"], **payload},
    )


def accepted(
    message: Mapping[str, Any], channel: str, gateway: str, provider_id: str | None, now: datetime
) -> tuple[Doc, list[Doc]]:
    """The gateway accepted it: sent (the `$set` and its message_sent)."""
    attempts = _attempt(message, channel, gateway, "accepted", None, now)
    event = _event(
        message,
        events.MESSAGE_SENT,
        {"attempts": len(attempts), "channel": channel, "gateway": gateway, "accepted_at": now.isoformat()},
        now,
    )
    return {
        "status": "sent",
        "channel": channel,
        "claimed_until": None,
        "attempts": attempts,
        "sent": {"at": now, "gateway": gateway, "provider_id": provider_id},
    }, [event]


def failed(
    message: Mapping[str, Any],
    channel: str | None,
    gateway: str | None,
    reason: str,
    error: str | None,
    now: datetime,
    attempts: list[Doc] | None = None,
) -> tuple[Doc, list[Doc]]:
    """The message ends unsent (`reason`: refused, gave_up, no_contact, contact_gone): the
    `$set` and its message_failed, for a person to follow up."""
    attempts = attempts if attempts is not None else _attempt(message, channel, gateway, reason, error, now)
    event = _event(
        message,
        events.MESSAGE_FAILED,
        {
            "attempts": len(attempts),
            "channel": channel,
            "gateway": gateway,
            "reason": reason,
            "error": _error(error),
            "failed_at": now.isoformat(),
        },
        now,
    )
    return {
        "status": "failed",
        "channel": channel,
        "claimed_until": None,
        "attempts": attempts,
        "failure": {"at": now, "reason": reason, "error": _error(error)},
    }, [event]


def temporary(
    message: Mapping[str, Any],
    channel: str | None,
    gateway: str | None,
    error: str,
    policy: NotifyPolicy,
    now: datetime,
) -> tuple[Doc, list[Doc]]:
    """The gateway (or the contact's read) failed for now: tried again after the back-off,
    outside the quiet hours unless the deadline demands it; after the last attempt, failed."""
    attempts = _attempt(message, channel, gateway, "temporary", error, now)
    retry = policy.rules["retry"]
    if len(attempts) >= retry["max_attempts"]:
        return failed(message, channel, gateway, "gave_up", error, now, attempts)
    later = now + backoff(len(attempts), retry)
    next_at = send_at(
        channel or message["route"], message["kind"], later, message["deadline"], policy, message["mall_id"]
    )
    return {
        "status": "retry",
        "channel": channel,
        "claimed_until": None,
        "attempts": attempts,
        "next_attempt_at": as_stored(next_at),
    }, []


def held(message: Mapping[str, Any], channel: str, policy: NotifyPolicy, now: datetime) -> Doc | None:
    """The `$set` that holds a message whose channel (a fallback's) is in its quiet hours
    until they end; None when it may go now."""
    at = send_at(channel, message["kind"], now, message["deadline"], policy, message["mall_id"])
    if at <= now:
        return None
    return {"status": "retry", "claimed_until": None, "next_attempt_at": at}


def moot(reason: str, now: datetime) -> Doc:
    """The `$set` of a message no longer to send (its revisit ended before it went)."""
    return {
        "status": "cancelled",
        "claimed_until": None,
        "failure": {"at": now, "reason": "cancelled", "error": reason},
    }


def cancelled(message: Mapping[str, Any], reason: str, now: datetime) -> Doc | None:
    """`moot` for a message still waiting; None once it is under way or done."""
    return moot(reason, now) if message["status"] in OPEN else None
