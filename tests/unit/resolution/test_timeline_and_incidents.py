"""R3.10, R3.9 (and the event contract of R3.1-R3.8): every action appends
timestamped timeline entries (seq, at, by, role, action, state) so that a case can
be replayed, and the events it publishes match their schemas. Store-reported adverse
events: numbered, the contact masked in the event, verified and forwarded by the
store manager (the regional manager's handling due 48 h later) or dismissed,
handled by the regional manager only once forwarded, then communicated."""

import itertools
import json
from datetime import date, timedelta

import pytest
from marshmallow import RAISE, ValidationError

from mallcare_common.contracts import EVENT_TYPES, EnvelopeSchema
from mallcare_common.messaging import new_outbox
from resolution.domain import actions, incidents
from resolution.domain.errors import NoAuthority, StateConflict
from resolution.domain.step import Actor, Step
from resolution.schemas import AgreementIn, CaseOut, CommunicationIn, HandlingIn, IncidentIn, VerificationIn

from .conftest import MONDAY_15

ENTRY_KEYS = {"seq", "at", "by", "role", "action", "state", "detail"}


def assert_valid_events(events):
    for event in events:
        assert EnvelopeSchema().validate(event) == {}
        assert EVENT_TYPES[event["event_type"]].payload(unknown=RAISE).validate(event["payload"]) == {}
        json.dumps(event)  # plain JSON, nothing else


@pytest.fixture
def replayed(proposed_case):
    """A case taken through most actions, a few minutes apart."""
    case = proposed_case()
    case.later(minutes=1).act(
        "expected-resolution", expected_by=(MONDAY_15 + timedelta(days=1)).isoformat(), via="phone"
    )
    case.later(minutes=1).act("notes", kind="customer_contact", via="phone", text="15:02 customer called, wants 10x")
    case.later(minutes=1).reply()
    case.later(minutes=1).object(points=["wants ten times the price"])
    case.later(minutes=1).propose([("refund", "39.90"), ("voucher", "50"), ("cash_compensation", "100")])
    case.later(minutes=1).act("approval", by="E3011", proposal_no=2)
    case.later(minutes=1).reply(by="E3011")
    case.later(minutes=1).accept()
    case.later(minutes=1).act("task-done", task_id=1, note="15:00 refund confirmed")
    case.later(minutes=1).act("task-done", task_id=2)
    case.later(minutes=1).act("task-done", task_id=3, signature_ref="RCPT-9")
    case.later(minutes=1).act("task-done", task_id=4)
    case.later(minutes=1).act(
        "notes", kind="customer_contact", via="phone", text="16:30 customer says the refund arrived"
    )
    case.later(minutes=1).resolve()
    case.later(minutes=1).act("closure", by="feedback", reason="customer satisfied (score 5)")
    case.later(minutes=1).act("reopening", by="E3011", reason="customer called back")
    return case


def test_every_step_is_on_the_timeline_in_order(replayed):
    timeline = replayed.case["timeline"]
    assert all(set(entry) == ENTRY_KEYS for entry in timeline)
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert all(a["at"] <= b["at"] for a, b in itertools.pairwise(timeline))
    assert [e["action"] for e in timeline] == [
        "opened",
        "finding",
        "proposed",
        "approved",
        "time_promised",
        "note",
        "answered",
        "objected",
        "escalated",
        "proposed",
        "approved",
        "answered",
        "accepted",
        "task_done",
        "task_done",
        "task_done",
        "task_done",
        "note",
        "resolved",
        "rectification_due",
        "closed",
        "reopened",
    ]
    assert timeline[0]["by"] == "triage" and timeline[0]["role"] == "service"
    approved = [e for e in timeline if e["action"] == "approved"]
    assert [(e["by"], e["role"]) for e in approved] == [("E3501", "handler"), ("E3011", "supervisor")]
    assert [(e["by"], e["role"]) for e in timeline[-2:]] == [("feedback", "service"), ("E3011", "supervisor")]
    assert timeline[-1]["state"] == "reopened" and timeline[-1]["detail"]["round"] == 2


def test_each_action_appends_its_own_entries_at_its_own_time(replayed):
    seq = 1  # the opening entry
    for step in replayed.steps:
        assert step.entries, f"a step logged nothing: {step.changes}"
        assert [e["seq"] for e in step.entries] == list(range(seq + 1, seq + 1 + len(step.entries)))
        assert {e["at"] for e in step.entries} == {step.now}
        assert {e["by"] for e in step.entries} == {step.actor.id}
        seq += len(step.entries)


def test_the_timeline_says_what_happened_in_its_detail(replayed):
    timeline = replayed.case["timeline"]
    notes = [e["detail"]["text"] for e in timeline if e["action"] == "note"]
    assert notes == ["15:02 customer called, wants 10x", "16:30 customer says the refund arrived"]
    task = next(e for e in timeline if e["action"] == "task_done")
    assert task["detail"]["note"] == "15:00 refund confirmed" and task["state"] == "executing"
    objected = next(e for e in timeline if e["action"] == "objected")
    assert objected["detail"]["points"] == ["wants ten times the price"]
    escalated = next(e for e in timeline if e["action"] == "escalated")
    assert escalated["detail"]["re_review_due_at"] == escalated["at"] + timedelta(hours=2)


def test_an_action_refused_leaves_no_entry(proposed_case):
    case = proposed_case()
    before = list(case.case["timeline"])
    with pytest.raises(StateConflict):
        case.accept()
    assert case.case["timeline"] == before


def test_the_case_and_its_timeline_serialise_for_the_api(replayed):
    out = CaseOut().dump(replayed.case)
    assert out["timeline"][1]["at"] == (MONDAY_15).isoformat()
    assert out["proposals"][1]["compliance"]["total"] == "189.90"
    json.dumps(out, ensure_ascii=False)


def test_every_event_published_matches_its_contract(replayed):
    assert_valid_events(replayed.events)
    assert replayed.event_types() == [
        "case_opened",
        "investigation_noted",
        "proposal_approved",
        "time_promised",
        "customer_contacted",
        "case_proposed",
        "case_objected",
        "case_escalated",
        "proposal_approved",
        "case_proposed",
        "case_accepted",
        "execution_task_done",
        "execution_task_done",
        "execution_task_done",
        "execution_task_done",
        "customer_contacted",
        "rectification_due",
        "case_resolved",
        "case_closed",
        "case_reopened",
    ]
    assert {e["complaint_no"] for e in replayed.events} == {"SHXJH-20261123-0042"}
    assert {e["mall_id"] for e in replayed.events} == {"sh-xujiahui"}
    assert len({e["event_id"] for e in replayed.events}) == len(replayed.events)


def test_key_payload_fields(replayed):
    by_type = {}
    for event in replayed.events:
        by_type.setdefault(event["event_type"], []).append(event["payload"])
    escalated = by_type["case_escalated"][0]
    objected_at = replayed.case["escalations"][0]["at"]
    assert escalated == {
        "reason": "objection",
        "from_role": "handler",
        "to_role": "supervisor",
        "to_staff_id": "E3011",
        "by": "E3501",
        "re_review_due_at": (objected_at + timedelta(hours=2)).isoformat(),
    }
    assert by_type["case_objected"][0] == {"proposal_no": 1, "points": ["wants ten times the price"], "by": "E3501"}
    proposed = by_type["case_proposed"][1]
    assert proposed["total_fen"] == 18990 and proposed["level_role"] == "supervisor"
    assert proposed["remedy_types"] == ["refund", "voucher", "cash_compensation"]
    accepted = by_type["case_accepted"][0]
    assert [t["kind"] for t in accepted["tasks"]] == ["refund", "voucher", "cash_compensation", "product_hold"]
    resolved = by_type["case_resolved"][0]
    assert resolved["spot"] is False and resolved["round"] == 1 and resolved["total_fen"] == 18990
    assert resolved["category"] == "product.quality_defect" and resolved["channel"] == "desk"
    assert by_type["case_opened"][0]["level_role"] == "handler"
    assert by_type["case_opened"][0]["policy_version"] == replayed.policy.version


def test_a_triage_reassignment_and_correction_are_followed_and_logged(open_case):
    case = open_case()
    step = Step(case.case, Actor("triage", "service"), case.now)
    actions.triage_changed(
        step,
        {
            "event_type": "complaint_reassigned",
            "payload": {
                "from_owner_id": "E3501",
                "to_owner_id": "E3101",
                "department": "procurement_qc",
                "by": "E3011",
                "reason": "supplier issue",
            },
        },
        case.policy,
    )
    assert step.changes == {"owner_id": "E3101", "department": "procurement_qc"}
    assert step.entries[0]["action"] == "reassigned" and step.entries[0]["seq"] == 2
    assert step.events == []


# --- adverse events (R3.9) --------------------------------------------------------------------


def test_incident_numbers():
    assert incidents.incident_number("SHXJH", date(2026, 11, 23), 7) == "SHXJH-AE-20261123-007"
    assert incidents.incident_number("GZTH", date(2027, 2, 6), 123) == "GZTH-AE-20270206-123"


class IncidentDriver:
    def __init__(self, policy, doc, now):
        self.policy, self.doc, self.now = policy, doc, now
        self.events = [e["event"] for e in doc["outbox"]]

    def act(self, rule, schema, by, **data):
        staff = self.policy.staff(by)
        step = incidents.IncidentStep(self.doc, Actor(staff.id, staff.role), self.now)
        rule(step, schema().load({**data, "by": by}), self.policy)
        self.doc = {**self.doc, **step.changes, "timeline": [*self.doc["timeline"], *step.entries]}
        self.events.extend(step.events)
        return step

    def verify(self, by="E3091", confirmed=True, note="confirmed on CCTV"):
        return self.act(incidents.verify, VerificationIn, by, confirmed=confirmed, note=note)

    def agree(self, by="R7001", agreed=True, plan="退还药费并赔偿500元，熟食柜当日停售同批次沙拉"):
        return self.act(incidents.agree, AgreementIn, by, plan=plan, agreed=agreed, via="phone")

    def handle(self, by="R7001", agree=True, **extra):
        if agree and self.doc["state"] == "forwarded" and not self.doc["agreements"]:
            self.agree()
        data = {
            "outcome": "the supplier batch was withdrawn",
            "improvements": ["check cold chain daily"],
            "compensation": "500",
            **extra,
        }
        return self.act(incidents.handle, HandlingIn, by, **data)

    def communicate(self, by="R7001"):
        return self.act(incidents.communicate, CommunicationIn, by, via="phone", note="customer informed")


@pytest.fixture
def incident(policy):
    def make(now=MONDAY_15, **overrides):
        request = IncidentIn().load(
            {
                "by": "E3501",
                "mall_id": "sh-xujiahui",
                "type": "food_safety",
                "description": "customer fell ill after eating deli salad",
                "customer": {"name": "王先生", "phone": "138 1234 5678"},
                "suggested_handling": "medical costs and a refund",
                "related_complaint_no": "SHXJH-20261123-0042",
                "occurred_at": (now - timedelta(hours=3)).isoformat(),
                "place": {"area": "熟食区", "merchant_id": None},
                "request_id": "r-1",
                **overrides,
            }
        )
        doc, reported = incidents.new_incident("SHXJH-AE-20261123-001", request, Actor("E3501", "handler"), policy, now)
        return IncidentDriver(policy, {**doc, **new_outbox(reported, now)}, now)  # as the service inserts it

    return make


def test_a_report_is_numbered_due_in_24_hours_and_masks_the_contact(incident):
    driver = incident()
    doc, [event] = driver.doc, driver.events
    assert doc["_id"] == "SHXJH-AE-20261123-001" and doc["state"] == "reported"
    assert doc["forward_due_at"] == MONDAY_15 + timedelta(hours=24)
    assert doc["request_ids"] == ["r-1"] and doc["timeline"][0]["action"] == "reported"
    assert event["event_type"] == "incident_reported" and event["complaint_no"] == "SHXJH-AE-20261123-001"
    assert event["payload"]["contact_masked"] == "138****5678"
    text = json.dumps(event, ensure_ascii=False)
    assert "12345678" not in text and "1234 5678" not in text and "王先生" not in text
    assert_valid_events(driver.events)


def test_an_e_mail_contact_is_masked_too(incident):
    driver = incident(customer={"email": "wang.xiansheng@example.com"})
    assert driver.events[0]["payload"]["contact_masked"] == "w***@example.com"
    assert "wang.xiansheng" not in json.dumps(driver.events[0])


def test_an_unknown_incident_type_is_a_validation_error_on_type(incident):
    with pytest.raises(ValidationError) as error:
        incident(type="alien_abduction")
    assert list(error.value.messages) == ["type"]


def test_the_store_manager_forwards_to_the_regional_manager_due_48_hours_later(incident):
    driver = incident()
    driver.now = MONDAY_15 + timedelta(hours=3)
    step = driver.verify()
    doc = driver.doc
    assert doc["state"] == "forwarded" and doc["regional_manager_id"] == "R7001"
    assert doc["handling_due_at"] == driver.now + timedelta(hours=48)
    assert doc["verification"]["within_deadline"] is True
    payload = step.events[0]["payload"]
    assert step.events[0]["event_type"] == "incident_forwarded"
    assert payload["handling_due_at"] == (driver.now + timedelta(hours=48)).isoformat()
    assert payload["within_deadline"] is True and payload["regional_manager_id"] == "R7001"


def test_a_late_verification_is_recorded_as_late(incident):
    driver = incident()
    driver.now = MONDAY_15 + timedelta(hours=25)
    driver.verify()
    assert driver.doc["verification"]["within_deadline"] is False


@pytest.mark.parametrize("by", ["E3501", "E3011", "R7001", "E3901"])
def test_only_the_store_manager_verifies(incident, by):
    driver = incident()
    with pytest.raises(NoAuthority, match="may not verify an incident"):
        driver.verify(by=by)
    assert driver.doc["state"] == "reported" and driver.doc["verification"] is None


def test_a_report_that_is_not_an_adverse_event_is_dismissed(incident):
    driver = incident()
    step = driver.verify(confirmed=False, note="the customer had not bought the salad here")
    assert driver.doc["state"] == "dismissed" and driver.doc["handling_due_at"] is None
    assert step.events[0]["event_type"] == "incident_dismissed"
    assert step.events[0]["payload"]["reason"] == "the customer had not bought the salad here"
    with pytest.raises(StateConflict):
        driver.handle()
    with pytest.raises(StateConflict):
        driver.verify()


def test_only_the_regional_manager_handles_and_only_once_forwarded(incident):
    driver = incident()
    with pytest.raises(StateConflict, match="an incident that is reported is not awaiting handling"):
        driver.handle()
    driver.verify()
    for by in ("E3091", "E3901", "E3011"):
        with pytest.raises(NoAuthority, match="may not handle an incident"):
            driver.handle(by=by)
    driver.now += timedelta(hours=10)
    step = driver.handle()
    handling = driver.doc["handling"]
    assert driver.doc["state"] == "handled"
    assert handling["compensation_fen"] == 50000 and handling["within_deadline"] is True
    assert handling["improvements"] == ["check cold chain daily"]
    assert step.events[0]["payload"]["compensation_fen"] == 50000
    with pytest.raises(StateConflict):
        driver.handle()


def test_handling_late_is_recorded_as_late(incident):
    driver = incident()
    driver.verify()
    driver.now += timedelta(hours=48, minutes=1)
    step = driver.handle()
    assert driver.doc["handling"]["within_deadline"] is False
    assert step.events[0]["payload"]["within_deadline"] is False


def test_the_customer_is_told_after_the_handling(incident):
    driver = incident()
    with pytest.raises(StateConflict, match="that is reported cannot become communicated"):
        driver.communicate()
    driver.verify()
    with pytest.raises(StateConflict, match="that is forwarded cannot become communicated"):
        driver.communicate()
    driver.handle()
    driver.communicate()
    assert driver.doc["state"] == "communicated" and driver.doc["communication"]["via"] == "phone"
    assert [e["action"] for e in driver.doc["timeline"]] == [
        "reported",
        "forwarded",
        "customer_consulted",
        "handled",
        "communicated",
    ]
    assert [e["seq"] for e in driver.doc["timeline"]] == [1, 2, 3, 4, 5]
    assert [e["event_type"] for e in driver.events] == [
        "incident_reported",
        "incident_forwarded",
        "incident_handled",
        "incident_communicated",
    ]
    assert_valid_events(driver.events)
    with pytest.raises(StateConflict, match="that is communicated cannot become"):
        driver.communicate()


INCIDENT_STATES = ("reported", "forwarded", "dismissed", "handled", "communicated")
INCIDENT_ALLOWED = [(a, b) for a, targets in incidents.TRANSITIONS.items() for b in targets]


@pytest.mark.parametrize(
    "state,target", [p for p in itertools.product(INCIDENT_STATES, INCIDENT_STATES) if p not in INCIDENT_ALLOWED]
)
def test_an_incident_move_not_in_the_transitions_is_refused(state, target):
    step = incidents.IncidentStep({"state": state, "timeline": []}, Actor("R7001", "regional_manager"), None)
    with pytest.raises(StateConflict, match=f"incident that is {state} cannot become {target} "):
        step.move(target)


# --- R7.10: adverse events complete (seed 003) ----------------------------------------------------


def test_a_report_records_when_and_where_it_happened(incident):
    """R7.10, seed 003: 店員需認真記錄事件信息，包括時間、地點、事件描述、客戶信息."""
    driver = incident(place={"area": "二楼儿童游乐区", "merchant_id": "T-17"})
    assert driver.doc["occurred_at"] == MONDAY_15 - timedelta(hours=3)
    assert driver.doc["place"] == {"area": "二楼儿童游乐区", "merchant_id": "T-17"}
    [reported] = driver.events
    assert reported["payload"]["place"] == {"area": "二楼儿童游乐区", "merchant_id": "T-17"}
    assert reported["payload"]["occurred_at"] == (MONDAY_15 - timedelta(hours=3)).isoformat()
    assert_valid_events(driver.events)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"occurred_at": (MONDAY_15 + timedelta(hours=1)).isoformat()}, "occurred_at"),
        ({"place": {"area": "熟食区", "merchant_id": "T-404"}}, "place"),
    ],
)
def test_a_time_to_come_or_a_merchant_the_mall_has_not_is_a_field_error(incident, overrides, field):
    with pytest.raises(ValidationError) as refused:
        incident(**overrides)
    assert field in refused.value.messages


def test_the_handling_waits_for_a_plan_the_customer_agreed(incident):
    """R7.10, seed 003: 詢問客戶意見，確認處理方案: a plan turned down is kept, and the
    handling waits until the customer agrees one."""
    driver = incident()
    driver.verify()
    with pytest.raises(StateConflict, match="the customer has not agreed a handling plan"):
        driver.handle(agree=False)
    with pytest.raises(NoAuthority):
        driver.agree(by="E3091")  # the regional manager consults the customer, not the store manager
    driver.agree(agreed=False, plan="只退还药费")
    with pytest.raises(StateConflict, match="has not agreed"):
        driver.handle(agree=False)
    driver.agree(agreed=True)
    driver.handle(agree=False)
    assert [(a["plan"], a["agreed"]) for a in driver.doc["agreements"]] == [
        ("只退还药费", False),
        ("退还药费并赔偿500元，熟食柜当日停售同批次沙拉", True),
    ]
    assert [e["action"] for e in driver.doc["timeline"]] == [
        "reported",
        "forwarded",
        "customer_consulted",
        "customer_consulted",
        "handled",
    ]


def test_the_regional_manager_tells_the_customer_within_the_policys_hours(incident):
    """R7.10, seed 003: 處理完成後，區域經理需及時將處理結果反饋給客戶."""
    driver = incident()
    driver.verify()
    step = driver.handle()
    due = driver.doc["communicate_due_at"]
    assert due == driver.now + timedelta(hours=24)  # the policy's incidents.communicate
    assert step.events[0]["payload"]["communicate_due_at"] == due.isoformat()
    with pytest.raises(NoAuthority, match="may not tell the customer"):
        driver.communicate(by="E3091")
    driver.now = due + timedelta(minutes=1)
    step = driver.communicate()
    assert driver.doc["communication"]["within_deadline"] is False
    assert step.events[0]["payload"] == {"within_deadline": False, "by": "R7001"}
