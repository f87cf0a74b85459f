"""Periodic satisfaction surveys (R7.12, seed 003: 定期進行客戶滿意度調查) as plain functions.

Beside the revisit after each resolution, every mall surveys a sample of the customers
whose cases closed in a month, once that month is over: one round per mall and month,
keyed by its number (SHXJH-SVY-2026-11). Who is asked is policy (feedback.yml, `surveys`):
how many per mall, and the way a customer sampled by each channel is asked. Only customers
an SMS or app message reaches are drawn, since they answer by the signed link; each
customer once a round (the latest of their cases stands for them); the sample is spread
over the complaints' channels in proportion to how many customers each holds (stratified,
largest remainders), and within a channel the customers come in the order of a hash of
the round and the customer, so the same round draws the same sample, whoever draws it.
A survey is one document with its link's expiry and, once answered, the customer's stars
(1-5) and comment; survey_sent and survey_answered tell notify and analytics, which count
surveys apart from revisits. No I/O and no clock: the service passes in what it read and `now`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from mallcare_common.calendar import BusinessCalendar
from mallcare_common.contracts import build_event
from mallcare_common.contracts import feedback as events
from mallcare_common.personal import scrub

from .rules import AlreadyAnswered, contact_kind

Doc = dict[str, Any]
MARK = "-SVY-"  # in every round's and survey's number: a survey's link is told from a revisit's by it


def round_id(mall_code: str, month: str) -> str:
    return f"{mall_code}{MARK}{month}"


def survey_id(round_no: str, n: int) -> str:
    return f"{round_no}-{n:03d}"


def is_survey(number: str) -> bool:
    return MARK in number


# --- who is asked --------------------------------------------------------------------------------


def way(complaint: Mapping[str, Any], ways: Mapping[str, str]) -> str | None:
    """How the customer of `complaint` (what feedback kept of it) is asked: by SMS when they
    left a phone, by app message when they came by the app channels and left any contact;
    None when neither reaches them (an e-mail address alone, no contact at all)."""
    wanted = ways.get(complaint.get("channel", ""))
    if wanted == "sms":
        return "sms" if contact_kind(complaint.get("contact_masked")) == "phone" else None
    if wanted == "app_message" and (complaint.get("customer_ref") or complaint.get("contact_masked")):
        return "app_message"
    return None


def customer_key(complaint: Mapping[str, Any]) -> str:
    """Who the customer is, to ask them once: intake's pseudonymous reference (stable per
    contact); a complaint kept before feedback kept it stands for its customer alone."""
    ref: str | None = complaint.get("customer_ref")
    return f"ref:{ref}" if ref else f"complaint:{complaint['_id']}"


def _order(round_no: str, key: str) -> str:
    return hashlib.sha256(f"{round_no}|{key}".encode()).hexdigest()


def allocate(sizes: Mapping[str, int], n: int) -> dict[str, int]:
    """`n` places over the strata in proportion to their sizes (largest remainders, ties
    to the larger stratum, then by name); every customer when there are `n` or fewer."""
    total = sum(sizes.values())
    if total <= n:
        return dict(sizes)
    exact = {name: n * size / total for name, size in sizes.items()}
    places = {name: int(share) for name, share in exact.items()}
    left = n - sum(places.values())
    for name in sorted(exact, key=lambda s: (-(exact[s] - places[s]), -sizes[s], s))[:left]:
        places[name] += 1
    return places


def sample(
    round_no: str, closures: Iterable[Mapping[str, Any]], complaints: Mapping[str, Mapping[str, Any]], rules: Doc
) -> list[Doc]:
    """The round's sample: [{complaint_no, channel, way, customer}] (`rules`: the policy's
    `surveys`), by channel, in the order drawn. `closures`: the cases of the mall closed in
    the month (feedback's `closures`); `complaints`: what feedback kept of them, by number."""
    latest: dict[str, Doc] = {}  # customer -> the customer's latest closed complaint
    for closure in sorted(closures, key=lambda c: (c["closed_at"], c["_id"])):
        complaint = complaints.get(closure["_id"])
        reached = way(complaint, rules["ways"]) if complaint else None
        if complaint is None or reached is None:
            continue
        key = customer_key(complaint)
        latest[key] = {"complaint_no": closure["_id"], "channel": complaint["channel"], "way": reached, "customer": key}
    strata: dict[str, list[Doc]] = {}
    for entry in latest.values():
        strata.setdefault(entry["channel"], []).append(entry)
    places = allocate({channel: len(entries) for channel, entries in strata.items()}, rules["sample_per_mall"])
    drawn = []
    for channel in sorted(strata):
        ordered = sorted(strata[channel], key=lambda e: _order(round_no, e["customer"]))
        drawn += ordered[: places[channel]]
    return drawn


# --- a round and its surveys ---------------------------------------------------------------------


def new_round(number: str, mall_id: str, month: str, drawn: list[Doc], by: str, now: datetime) -> Doc:
    """The round as drawn: its sample is kept, so a round started again sends what is missing of it."""
    return {
        "_id": number,
        "mall_id": mall_id,
        "month": month,
        "sample": drawn,
        "started_at": now,
        "started_by": by,
    }


def new_surveys(
    round_: Mapping[str, Any], rules: Doc, calendar: BusinessCalendar, now: datetime
) -> list[tuple[Doc, Doc]]:
    """Each survey of the round with its survey_sent (for the outbox of its insert)."""
    expires = calendar.due(now, rules["link_valid"])
    made = []
    for n, drawn in enumerate(round_["sample"], start=1):
        number = survey_id(round_["_id"], n)
        doc = {
            "_id": number,
            "round_no": round_["_id"],
            "mall_id": round_["mall_id"],
            "month": round_["month"],
            "complaint_no": drawn["complaint_no"],
            "channel": drawn["channel"],
            "way": drawn["way"],
            "status": "sent",
            "sent_at": now,
            "link_expires_at": expires,
            "answer": None,
            "version": 0,
        }
        event = build_event(
            events.SURVEY_SENT,
            mall_id=doc["mall_id"],
            complaint_no=doc["complaint_no"],
            occurred_at=now,
            payload={
                "survey_id": number,
                "month": doc["month"],
                "channel": doc["channel"],
                "way": doc["way"],
                "link_expires_at": expires.isoformat(),
            },
        )
        made.append((doc, event))
    return made


def same_answer(survey: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    answer = survey["answer"]
    return bool(answer) and (answer["score"], answer["comment"]) == (request["score"], scrub(request.get("comment")))


def answer(
    survey: Mapping[str, Any], request: Mapping[str, Any], satisfied_from: int, now: datetime
) -> tuple[Doc, list[Doc]]:
    """The customer's stars and comment: (changes, [survey_answered]); a survey takes one answer."""
    if survey["status"] == "answered":
        raise AlreadyAnswered(f"survey {survey['_id']} has been answered already")
    happy = request["score"] >= satisfied_from
    record = {"at": now, "score": request["score"], "satisfied": happy, "comment": scrub(request.get("comment"))}
    event = build_event(
        events.SURVEY_ANSWERED,
        mall_id=survey["mall_id"],
        complaint_no=survey["complaint_no"],
        occurred_at=now,
        payload={
            "survey_id": survey["_id"],
            "month": survey["month"],
            "channel": survey["channel"],
            "score": request["score"],
            "satisfied": happy,
        },
    )
    return {"status": "answered", "answer": record}, [event]
