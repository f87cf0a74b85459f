"""Issue 7 (retention) for intake, without a store: a complaint learns when its case
closed (and reopened) whatever order the events arrive in, and anonymising it keeps
the statistics and drops the customer."""

import json
from datetime import datetime, timedelta, timezone

from intake import retention, rules
from mallcare_cli.examples import desk_complaint
from mallcare_common.personal import ANONYMISED

UTC = timezone.utc
CLOSED = datetime(2024, 10, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_a_closing_is_recorded_and_a_later_reopening_clears_it():
    doc = {}
    doc.update(rules.case_state_change(doc, "closed", CLOSED))
    assert (doc["case_state"], doc["closed_at"]) == ("closed", CLOSED)
    doc.update(rules.case_state_change(doc, "reopened", CLOSED + timedelta(days=1)))
    assert (doc["case_state"], doc["closed_at"]) == ("reopened", None)


def test_a_redelivered_or_overtaken_event_changes_nothing():
    doc = {"case_state": "reopened", "case_state_at": CLOSED + timedelta(days=1), "closed_at": None}
    assert rules.case_state_change(doc, "closed", CLOSED) is None  # older
    assert rules.case_state_change(doc, "reopened", CLOSED + timedelta(days=1)) is None  # the same again


def stored_complaint():
    body = desk_complaint(
        customer={
            "name": "王女士",
            "phone": "13812345678",
            "email": "wang@example.com",
            "member_id": "M001",
            "member_tier": "gold",
        },
        description="王女士的草莓发霉了，请回电13812345678",
        demands={"fact": "会员M001，三分之一发霉", "expectation": "退款"},
        tone_note="王女士很激动，一直说要打12315",
    )
    event = {
        "event_type": "complaint_registered",
        "payload": {
            "customer": {"ref": "abc", "contact_masked": "138****5678", "member_tier": "gold"},
            "description": "王女士的草莓发霉了，请回电[phone]",
            "order_no": "SO-778812",
        },
    }
    return {
        **body,
        "_id": "SHXJH-20241001-0001",
        "status": "acknowledged",
        "customer_ref": "abc",
        "fingerprint": "f",
        "case_state": "closed",
        "closed_at": CLOSED,
        "outbox": [{"event": event, "created_at": CLOSED, "sent_at": CLOSED}],
    }


def test_anonymising_drops_the_customer_and_keeps_the_statistics():
    doc = stored_complaint()
    changes = retention.anonymised(doc, NOW)
    after = {**doc, **changes}
    text = json.dumps(after, ensure_ascii=False, default=str)
    for raw in ("王女士", "13812345678", "wang@example.com", "M001", "SO-778812", "138****5678", "abc"):
        assert raw not in text, raw
    assert after["customer"] == {
        "member_tier": "gold",
        "name": ANONYMISED,
        "phone": ANONYMISED,
        "email": ANONYMISED,
        "member_id": ANONYMISED,
    }
    assert after["description"] == "[name]的草莓发霉了，请回电[phone]"
    assert after["demands"] == {"fact": "会员[member id]，三分之一发霉", "expectation": "退款"}
    assert after["tone_note"] == "[name]很激动，一直说要打12315"  # R7.3: the tone stays, the person goes
    for kept in (
        "mall_id",
        "channel",
        "location",
        "product",
        "anger_score",
        "emotion",
        "status",
        "closed_at",
        "staff_involved",
        "channel_ref",
    ):
        assert after[kept] == doc[kept], kept
    assert after["anonymised_at"] == NOW and after["outbox"][0]["sent_at"] == CLOSED


def test_anonymising_drops_the_files_names_and_the_replies_personal_data():
    receipt = {
        "id": "SHXJH-20241001-0001.ab12.1",
        "filename": "王女士的小票.jpg",
        "content_type": "image/jpeg",
        "size": 1200,
        "stored": True,
    }
    reply = {
        "ref": "<r1@example.com>",
        "channel": "email",
        "received_at": CLOSED,
        "replied_to": "ack.1",
        "from_customer": False,
        "sender": "li.na@example.org",
        "text": "王女士的家人，电话13900001111",
        "attachments": [receipt],
    }
    doc = {**stored_complaint(), "attachments": [receipt], "replies": [reply]}
    after = {**doc, **retention.anonymised(doc, NOW)}
    assert after["attachments"] == [{**receipt, "filename": ANONYMISED, "stored": False}]
    assert after["replies"] == [
        {
            **reply,
            "sender": None,
            "text": "[name]的家人，电话[phone]",
            "attachments": [{**receipt, "filename": ANONYMISED, "stored": False}],
        }
    ]


def test_only_complaints_closed_by_the_cutoff_and_not_yet_anonymised_are_due():
    assert retention.due(CLOSED) == {"case_state": "closed", "closed_at": {"$lte": CLOSED}, "anonymised_at": None}
