"""Intake's rules as plain functions: deadlines, numbering, review, masking.
No I/O and no clock here: the service passes policy, calendar and `now` in."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Container, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError

from mallcare_common.contracts import COMPLAINT_ACKNOWLEDGED, COMPLAINT_REGISTERED, COMPLAINT_REJECTED, build_event
from mallcare_common.personal import mask_contact, mask_text

if TYPE_CHECKING:  # types only: the rules import no more than they did
    from mallcare_common.calendar import BusinessCalendar

    from .policy import IntakePolicy

Doc = dict[str, Any]  # a stored complaint or a request, as the store and marshmallow give them

# Channel clocks drift; a received_at a little ahead of ours is not an error.
CLOCK_SKEW = timedelta(minutes=5)


def ack_due_at(rule: Mapping[str, Any], calendar: BusinessCalendar, received_at: datetime) -> datetime:
    """R1.2: when the customer must have been told we have their complaint."""
    allowed = timedelta(minutes=rule["minutes"])
    if rule["after_hours"] == "next_opening" and not calendar.is_open(received_at):
        return (calendar.next_opening(received_at) + allowed).astimezone(timezone.utc)
    return (received_at + allowed).astimezone(timezone.utc)


def complaint_number(mall_code: str, local_date: date, seq: int) -> str:
    """R1.5: mall code, the mall's local date, a daily sequence: SHXJH-20261123-0042."""
    return f"{mall_code}-{local_date:%Y%m%d}-{seq:04d}"


def check_mall_and_times(complaint: Mapping[str, Any], malls: Container[str], now: datetime) -> None:
    """Field errors the schema cannot know: the mall must exist, times must not be in the future."""
    errors: dict[str, list[str]] = {}
    if complaint["mall_id"] not in malls:
        errors["mall_id"] = ["Unknown mall."]
    for key in ("received_at", "incident_time"):
        if key in complaint and complaint[key] > now + CLOCK_SKEW:
            errors[key] = ["Must not be in the future."]
    if errors:
        raise ValidationError(errors)


def contact_key(customer: Mapping[str, Any]) -> str | None:
    """The most stable way to reach the customer, normalised, or None."""
    if customer.get("phone"):
        return "phone:" + re.sub(r"\D", "", customer["phone"])[-11:]
    for key in ("email", "member_id", "social_handle"):
        if customer.get(key):
            return f"{key}:{customer[key].strip().lower()}"
    if customer.get("wechat_openid"):  # case matters in an OpenID
        return f"wechat_openid:{customer['wechat_openid']}"
    return None


def customer_ref(secret: str, customer: Mapping[str, Any]) -> str | None:
    """Pseudonymous, stable reference for subscribers (repeat complainants) without the contact itself."""
    key = contact_key(customer)
    if key is None:
        return None
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()[:20]


def meaningful_chars(text: str) -> int:
    """Letters and digits in any script; emoji, punctuation and spaces do not count."""
    return sum(ch.isalnum() for ch in text)


def fingerprint(mall_id: str, ref: str | None, description: str) -> str | None:
    """Same customer, same mall, same words (ignoring spacing and punctuation)."""
    if ref is None:
        return None
    words = "".join(ch for ch in description.lower() if ch.isalnum())
    return hashlib.sha256(f"{mall_id}|{ref}|{words}".encode()).hexdigest()


def review(
    complaint: Mapping[str, Any], settings: Mapping[str, Any], now: datetime, duplicate_of: str | None
) -> Doc | None:
    """R1.4 preliminary review: None if the complaint can be acted on, else the rejection."""
    text = complaint["description"] + " " + (complaint["demands"].get("fact") or "")
    if meaningful_chars(text) < settings["min_description_chars"]:
        return _rejection("insufficient_information", "The description does not say what happened.")
    if contact_key(complaint["customer"]) is None and complaint["channel"] not in settings["anonymous_channels"]:
        return _rejection(
            "insufficient_information",
            "There is no way to reach the customer (phone, email, member id, handle or WeChat OpenID).",
        )
    incident = complaint.get("incident_time")
    if incident and incident < now - timedelta(days=settings["complaint_window_days"]):
        return _rejection("out_of_scope", f"The incident is older than {settings['complaint_window_days']} days.")
    if duplicate_of:
        return _rejection("duplicate", f"The same complaint was registered as {duplicate_of}.", duplicate_of)
    return None


def _rejection(reason: str, detail: str, duplicate_of: str | None = None) -> Doc:
    return {"reason": reason, "detail": detail, "duplicate_of": duplicate_of}


def new_complaint(
    number: str,
    complaint: Mapping[str, Any],
    *,
    policy: IntakePolicy,
    ref: str | None,
    fp: str | None,
    rejection: Doc | None,
    now: datetime,
) -> tuple[Doc, Doc]:
    """The stored document and its registered or rejected event (for the outbox of its insert)."""
    mall = policy.malls[complaint["mall_id"]]
    received_at = complaint.get("received_at", now)
    doc: Doc = {
        "_id": number,
        "mall_id": mall.id,
        "channel": complaint["channel"],
        "channel_ref": complaint.get("channel_ref"),
        "received_at": received_at,
        "registered_at": now,
        "customer": complaint["customer"],
        "customer_ref": ref,
        "fingerprint": fp,
        "location": complaint["location"],
        "incident_time": complaint.get("incident_time"),
        "incident_time_band": complaint.get("incident_time_band"),
        "staff_involved": complaint["staff_involved"],
        "product": complaint.get("product"),
        "order_no": complaint.get("order_no"),
        "description": complaint["description"],
        "demands": complaint["demands"],
        "emotion": complaint.get("emotion"),
        "anger_score": complaint.get("anger_score"),
        "tone_note": complaint.get("tone_note"),
        "category_hint": complaint.get("category_hint"),
        "policy_version": policy.version,
        "acknowledgement": None,
    }
    if rejection:
        doc.update(status="rejected", ack_due_at=None, rejection=rejection)
        event = build_event(
            COMPLAINT_REJECTED,
            mall_id=mall.id,
            complaint_no=number,
            occurred_at=now,
            payload={
                "channel": doc["channel"],
                "received_at": received_at.isoformat(),
                **rejection,
                "policy_version": policy.version,
            },
        )
    else:
        rule = policy.acknowledgement_rule(mall.id, doc["channel"])
        doc.update(status="registered", rejection=None, ack_due_at=ack_due_at(rule, mall.calendar, received_at))
        event = build_event(
            COMPLAINT_REGISTERED, mall_id=mall.id, complaint_no=number, occurred_at=now, payload=registered_payload(doc)
        )
    return doc, event


def registered_payload(doc: Doc) -> Doc:
    iso = _iso
    return {
        "channel": doc["channel"],
        "channel_ref": doc["channel_ref"],
        "received_at": iso(doc["received_at"]),
        "ack_due_at": iso(doc["ack_due_at"]),
        "incident_time": iso(doc["incident_time"]),
        "incident_time_band": doc["incident_time_band"],
        "customer": {
            "ref": doc["customer_ref"],
            "contact_masked": mask_contact(doc["customer"]),
            "member_tier": doc["customer"].get("member_tier"),
        },
        "location": {k: doc["location"].get(k) for k in ("area", "merchant_id", "merchant_name", "store")},
        "staff_involved": doc["staff_involved"],
        "product": doc["product"],
        "order_no": doc["order_no"],
        # customers write their phone or e-mail into the text too ("请回电13812345678"), and
        # their name ("王女士说..."): masked as an ordinary read shows it
        "description": mask_text(doc["description"], doc["customer"]),
        "demands": {k: mask_text(doc["demands"].get(k), doc["customer"]) for k in ("fact", "expectation")},
        "emotion": doc["emotion"],
        "anger_score": doc["anger_score"],
        "tone_note": mask_text(doc.get("tone_note"), doc["customer"]),  # staff may name the customer
        "category_hint": doc["category_hint"],
        "policy_version": doc["policy_version"],
    }


def acknowledgement(doc: Doc, ack: Mapping[str, Any], now: datetime) -> tuple[Doc, Doc]:
    """The acknowledgement record and its event (R1.2: recorded who, when, how, in time or
    not, and the message when notify's was it)."""
    at = ack.get("acknowledged_at", now)
    if at > now + CLOCK_SKEW:
        raise ValidationError({"acknowledged_at": ["Must not be in the future."]})
    record = {
        "acknowledged_at": at,
        "acknowledged_by": ack["acknowledged_by"],
        "method": ack["method"],
        "within_deadline": at <= doc["ack_due_at"],
        "message_id": ack.get("message_id"),
    }
    event = build_event(
        COMPLAINT_ACKNOWLEDGED,
        mall_id=doc["mall_id"],
        complaint_no=doc["_id"],
        occurred_at=now,
        payload={**record, "acknowledged_at": at.isoformat(), "ack_due_at": doc["ack_due_at"].isoformat()},
    )
    return record, event


# The acknowledgement's method by the channel notify's message went by.
MESSAGE_METHODS = {"sms": "sms", "email": "email", "wechat": "wechat_message", "app": "app_message"}


def message_acknowledgement(doc: Doc, sent: Mapping[str, Any], now: datetime) -> tuple[Doc, Doc] | None:
    """R1.2, R7.1: notify's acknowledgement was accepted by its gateway (`sent`, message_sent's
    payload): the acknowledgement, at the accepted time, by notify, with the message; None
    when the complaint needs none (acknowledged before, by a clerk or a redelivery, or rejected)."""
    if doc["status"] != "registered":
        return None
    return acknowledgement(
        doc,
        {
            "acknowledged_at": sent["accepted_at"],
            "acknowledged_by": "notify",
            "method": MESSAGE_METHODS[sent["channel"]],
            "message_id": sent["message_id"],
        },
        now,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def case_state_change(doc: Doc, state: str, at: datetime) -> Doc | None:
    """Resolution closed or reopened the complaint's case at `at`: the `$set` that records
    it (retention counts from closed_at), or None when the complaint already knows a
    later change (a redelivery, or an event overtaken by the next one)."""
    if doc.get("case_state_at") is not None and doc["case_state_at"] >= at:
        return None
    return {"case_state": state, "case_state_at": at, "closed_at": at if state == "closed" else None}
