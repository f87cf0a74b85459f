"""R6.3 and DESIGN.md's event contract: every event is one envelope of plain JSON,
validated before it leaves; readers tolerate added fields and refuse wrong types,
versions and shapes as permanent errors."""

import json
from datetime import datetime, timezone

import pytest

from mallcare_common.contracts import (
    COMPLAINT_ACKNOWLEDGED,
    COMPLAINT_TRIAGED,
    EVENT_TYPES,
    InvalidEvent,
    build_event,
    read_event,
)
from mallcare_common.contracts.resolution import CASE_OBJECTED

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
ACK = {
    "acknowledged_at": NOW.isoformat(),
    "acknowledged_by": "E1",
    "method": "phone",
    "ack_due_at": NOW.isoformat(),
    "within_deadline": True,
}


def test_a_built_event_is_plain_json_with_identity():
    event = build_event(COMPLAINT_ACKNOWLEDGED, mall_id="m", complaint_no="N-1", occurred_at=NOW, payload=ACK)
    assert json.loads(json.dumps(event)) == event
    assert len(event["event_id"]) == 32 and event["schema_version"] == 1
    again = build_event(COMPLAINT_ACKNOWLEDGED, mall_id="m", complaint_no="N-1", occurred_at=NOW, payload=ACK)
    assert again["event_id"] != event["event_id"]


def test_producers_cannot_send_an_invalid_or_extended_payload():
    with pytest.raises(InvalidEvent, match="within_deadline"):
        build_event(
            COMPLAINT_ACKNOWLEDGED,
            mall_id="m",
            complaint_no="N",
            occurred_at=NOW,
            payload={**ACK, "within_deadline": "maybe"},
        )
    with pytest.raises(InvalidEvent, match="phone"):
        build_event(
            COMPLAINT_ACKNOWLEDGED,
            mall_id="m",
            complaint_no="N",
            occurred_at=NOW,
            payload={**ACK, "phone": "13812345678"},
        )


def test_readers_ignore_fields_they_do_not_know():
    event = build_event(COMPLAINT_ACKNOWLEDGED, mall_id="m", complaint_no="N-1", occurred_at=NOW, payload=ACK)
    event["trace_id"] = "abc"
    event["payload"]["added_later"] = 1
    loaded = read_event(event, COMPLAINT_ACKNOWLEDGED)
    assert loaded["payload"]["acknowledged_at"] == NOW and "added_later" not in loaded["payload"]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e.update(schema_version=2),
        lambda e: e.update(event_type="complaint_registered"),
        lambda e: e.pop("event_id"),
        lambda e: e.update(payload="text"),
        lambda e: e["payload"].update(within_deadline="maybe"),
        lambda e: e.update(occurred_at="2026-11-23T07:00:00"),
    ],
)
def test_readers_refuse_broken_events(breakage):
    event = build_event(COMPLAINT_ACKNOWLEDGED, mall_id="m", complaint_no="N-1", occurred_at=NOW, payload=ACK)
    breakage(event)
    with pytest.raises(InvalidEvent):
        read_event(event, COMPLAINT_ACKNOWLEDGED)


def test_a_non_dict_body_is_an_invalid_event():
    with pytest.raises(InvalidEvent):
        read_event("not an envelope", COMPLAINT_ACKNOWLEDGED)


def test_every_event_type_names_its_publisher_and_version():
    for name, event_type in EVENT_TYPES.items():
        assert (
            event_type.name == name
            and event_type.source in ("intake", "triage", "resolution", "feedback", "analytics", "notify")
            and event_type.version >= 1
        )


def test_free_text_leaves_scrubbed_whoever_built_the_payload():
    objected = build_event(
        CASE_OBJECTED,
        mall_id="m",
        complaint_no="N-1",
        occurred_at=NOW,
        payload={"proposal_no": 1, "points": ["退款太少，请回电13812345678", "发邮件到 wang@example.com"], "by": "E1"},
    )
    assert objected["payload"]["points"] == ["退款太少，请回电[phone]", "发邮件到 [e-mail]"]
    assert objected["payload"]["by"] == "E1"
    triaged = {
        "category": None,
        "category_source": "none",
        "risk_level": "high",
        "urgency": "urgent",
        "risk_reasons": [{"reason": "corrected", "level": "high", "detail": "E3011: 顾客身份证110101199003071234"}],
        "department": "customer_service",
        "review_meeting": False,
        "owner_id": None,
        "policy_version": "1",
        "first_response_due_at": NOW.isoformat(),
        "resolution_due_at": NOW.isoformat(),
        "received_at": NOW.isoformat(),
        "channel": "desk",
        "merchant_id": "M12345",
    }
    event = build_event(COMPLAINT_TRIAGED, mall_id="m", complaint_no="N-1", occurred_at=NOW, payload=triaged)
    assert event["payload"]["risk_reasons"][0]["detail"] == "E3011: 顾客身份证[ID number]"
    assert event["payload"]["merchant_id"] == "M12345"  # an identifier, not free text: as it was
