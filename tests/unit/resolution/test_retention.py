"""Issue 7 (retention) for resolution, without a store: a closed case keeps its
decisions and times but its text loses phones, e-mails and member numbers; a
finished incident loses its customer; open incidents are never due."""

import json
from datetime import timedelta

import pytest

from mallcare_common.messaging import new_outbox
from mallcare_common.personal import ANONYMISED
from resolution import retention
from resolution.domain import incidents
from resolution.domain.step import Actor
from resolution.schemas import IncidentIn

from .conftest import MONDAY_15

NOW = MONDAY_15 + timedelta(days=800)
CUTOFF = MONDAY_15 + timedelta(days=60)


def test_a_closed_case_loses_the_contact_in_its_text_and_keeps_the_rest(open_case):
    driver = open_case()
    driver.act("notes", by="E3501", kind="customer_contact", via="phone", text="王女士 13812345678 说退款已到账")
    driver.act("findings", by="E3501", source="customer", summary="顾客邮件 wang@example.com，会员M00123")
    case = {**driver.case, "state": "closed", "closure": {"at": MONDAY_15, "by": "E3091", "reason": "ok"}}
    changes = retention.anonymised_case(case, NOW)
    after = {**case, **changes}
    text = json.dumps(after, ensure_ascii=False, default=str)
    for raw in ("13812345678", "wang@example.com", "M00123"):
        assert raw not in text, raw
    assert "[phone]" in text and "[e-mail]" in text
    for kept in (
        "_id",
        "mall_id",
        "state",
        "category",
        "risk_level",
        "owner_id",
        "resolution_due_at",
        "request_ids",
        "version",
        "round",
    ):
        assert kept not in changes, kept
    assert after["closure"]["at"] == MONDAY_15 and after["anonymised_at"] == NOW
    assert [e["action"] for e in after["timeline"]] == [e["action"] for e in case["timeline"]]


def incident_doc(policy, **overrides):
    request = IncidentIn().load(
        {
            "by": "E3501",
            "mall_id": "sh-xujiahui",
            "type": "injury",
            "description": "李先生在生鲜区滑倒",
            "customer": {"name": "李先生", "phone": "13900001111"},
            "suggested_handling": "联系13900001111",
            "related_complaint_no": "SHXJH-20261123-0042",
            "occurred_at": "2026-11-23T14:20:00+08:00",
            "place": {"area": "生鲜区"},
            **overrides,
        }
    )
    doc, reported = incidents.new_incident(
        "SHXJH-AE-20261123-001", request, Actor("E3501", "handler"), policy, MONDAY_15
    )
    return {**doc, **new_outbox(reported, MONDAY_15)}  # as the service inserts it


def test_a_finished_incident_loses_its_customer(policy):
    doc = {
        **incident_doc(policy),
        "state": "communicated",
        "communication": {"at": MONDAY_15, "by": "E3091", "via": "phone", "note": "李先生已知悉"},
    }
    after = {**doc, **retention.anonymised_incident(doc, NOW)}
    text = json.dumps(after, ensure_ascii=False, default=str)
    for raw in ("李先生", "13900001111"):
        assert raw not in text, raw
    assert after["customer"] == {"name": ANONYMISED, "phone": ANONYMISED}
    assert after["description"] == "[name]在生鲜区滑倒" and after["type"] == "injury"


CLOSED_CASE = {"state": "closed", "closure": {"at": MONDAY_15}}


@pytest.mark.parametrize(
    "state,finished_at,case,due",
    [
        ("communicated", MONDAY_15, None, True),  # finished before the cutoff
        ("dismissed", MONDAY_15, None, True),
        ("communicated", CUTOFF + timedelta(days=1), None, False),  # finished since
        ("communicated", CUTOFF + timedelta(days=1), CLOSED_CASE, True),  # but its complaint is due
        ("communicated", CUTOFF + timedelta(days=1), {"state": "reopened", "closure": None}, False),
        ("handled", MONDAY_15, CLOSED_CASE, False),  # still open: never
        ("reported", MONDAY_15, CLOSED_CASE, False),
    ],
)
def test_which_incidents_are_due(state, finished_at, case, due):
    incident = {"state": state, "communication": {"at": finished_at}, "verification": {"at": finished_at}}
    assert retention.incident_due(incident, CUTOFF, case) is due


def test_an_anonymised_incident_is_not_due_again():
    incident = {"state": "communicated", "communication": {"at": MONDAY_15}, "anonymised_at": NOW}
    assert retention.incident_due(incident, CUTOFF, None) is False
