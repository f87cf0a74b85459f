"""R2.4, R2.5, R4.2: ownership always ends with a person. Every department a mall routes
to has handlers or the mall's named fallback (its duty supervisor), or the policy is
refused naming the mall and the department; a complaint whose department has nobody
at the mall goes to the fallback, one whose handlers are all off shift waits for the
sweep; the assessment follows its case's closing and reopening; the review meeting's
department and owner become the assessment's, and a later reassignment cannot undo them."""

import copy
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from marshmallow import ValidationError

from mallcare_common.errors import Conflict
from tests.conftest import POLICY_DIR
from triage import rules
from triage.policy import load_policy, routable_departments

SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
MALLS = ("sh-xujiahui", "bj-chaoyang", "gz-tianhe")


@pytest.fixture(scope="module")
def shipped():
    return yaml.safe_load((POLICY_DIR / "triage.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def policy(shipped, malls):
    return load_policy(shipped, malls)


def refusal(data, malls):
    with pytest.raises(ValidationError) as refused:
        load_policy(data, malls)
    return refused.value.messages


@pytest.mark.parametrize("mall_id", MALLS)
def test_every_routable_department_of_every_mall_has_someone(policy, mall_id):
    departments = routable_departments(policy.rules, mall_id)
    assert departments >= {
        "procurement_qc",
        "customer_service",
        "facilities",
        "finance",
        "logistics",
        "merchant_relations",
        "security",
        "operations_director",
    }
    for department in departments:
        owner = rules.pick_owner(policy.handlers(mall_id), department, None, {}, MONDAY_10, policy.fallback(mall_id))
        assert owner is not None, f"nobody takes {department} at {mall_id} on a Monday morning"


def test_a_department_without_handlers_or_fallback_is_refused_naming_mall_and_department(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["fallback"].pop("bj-chaoyang")
    broken["roster"]["bj-chaoyang"] = [h for h in broken["roster"]["bj-chaoyang"] if h["department"] != "finance"]
    messages = refusal(broken, malls)
    assert messages == {"roster": ["bj-chaoyang: nobody for finance (no handler and no fallback)."]}


def test_a_mall_without_any_roster_or_fallback_is_refused_for_each_department(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["fallback"].pop("gz-tianhe")
    broken["roster"].pop("gz-tianhe")
    problems = refusal(broken, malls)["roster"]
    assert "gz-tianhe: nobody for security (no handler and no fallback)." in problems
    assert all(p.startswith("gz-tianhe: ") for p in problems) and len(problems) == 8


def test_a_mall_override_routing_to_an_unstaffed_department_is_refused(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["fallback"].pop("sh-xujiahui")
    broken["mall_overrides"]["sh-xujiahui"] = {"routing": {"security": "loss_prevention"}}
    assert refusal(broken, malls) == {
        "roster": ["sh-xujiahui: nobody for loss_prevention (no handler and no fallback)."]
    }


def test_a_fallback_must_be_of_the_malls_roster(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["fallback"]["gz-tianhe"] = "E3011"  # Shanghai's supervisor
    assert refusal(broken, malls) == {"roster": ["gz-tianhe: the fallback E3011 is not in its roster."]}
    broken["fallback"] = {"atlantis": "E1"}
    assert "mall_overrides" in refusal(broken, malls)


def test_the_fallback_takes_a_department_nobody_works_in_and_says_so(policy):
    """gz-tianhe has no delivery team of its own."""
    complaint = {
        "mall_id": "gz-tianhe",
        "channel": "desk",
        "description": "送错了，少送两件",
        "demands": {},
        "customer": {"ref": "c1"},
        "location": {},
        "anger_score": 2,
        "category_hint": None,
        "received_at": MONDAY_10,
    }
    got = rules.assess(complaint, policy, MONDAY_10.replace(hour=23), History())
    assert got["department"] == "logistics"
    assert got["owner"] == {"id": "E5011", "name": "邓超"}
    assert "nobody in logistics at gz-tianhe: duty supervisor E5011 takes it" in got["routing_basis"]


def test_handlers_all_off_shift_leave_it_to_the_sweep_not_the_fallback(policy):
    night = MONDAY_10.replace(hour=23)
    assert (
        rules.pick_owner(
            policy.handlers("bj-chaoyang"), "finance", "payment", {}, night, policy.fallback("bj-chaoyang")
        )
        is None
    )
    assert (
        rules.pick_owner(
            policy.handlers("bj-chaoyang"), "finance", "payment", {}, MONDAY_10, policy.fallback("bj-chaoyang")
        ).id
        == "E4301"
    )


def test_the_fallback_is_never_picked_for_a_departments_ordinary_work(policy):
    """钱芳 (E3011) is in customer service but takes only what nobody else can."""
    owners = {
        rules.pick_owner(
            policy.handlers("sh-xujiahui"),
            "customer_service",
            "service",
            {"E3001": 9, "E3002": 9},
            MONDAY_10.replace(hour=hour),
            policy.fallback("sh-xujiahui"),
        ).id
        for hour in (10, 16, 22)
    }
    assert owners == {"E3001", "E3002"}


class History:
    def __init__(self, load=None):
        self.load = load or {}

    def count_by_customer(self, ref, since):
        return 0

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        return 0

    def open_load(self, mall_id):
        return self.load


def assessment(**overrides):
    return {
        "_id": "SHXJH-20261123-0001",
        "mall_id": "sh-xujiahui",
        "department": "operations_director",
        "owner": {"id": "E3901", "name": "郑总"},
        "category": "product.quality_defect",
        "routing_basis": "dispute spans customer_service, procurement_qc",
        **overrides,
    }


def decided(owner_id=None, department="procurement_qc"):
    return {
        "event_id": "e-meeting",
        "event_type": "review_meeting_decided",
        "occurred_at": MONDAY_10,
        "payload": {
            "responsible_department": department,
            "owner_id": owner_id,
            "by": "E3901",
            "departments_involved": ["customer_service", "procurement_qc"],
        },
    }


def test_the_meetings_named_owner_and_department_become_the_assessments(policy):
    doc = assessment()
    changes, entry, event = rules.meeting_decision(doc, decided("E3102"), policy, {}, MONDAY_10)
    assert (changes["department"], changes["owner"]) == ("procurement_qc", {"id": "E3102", "name": "陈静"})
    assert changes["meeting"]["department"] == "procurement_qc"
    assert entry == {
        **entry,
        "action": "review_meeting",
        "by": "E3901",
        "old": "operations_director",
        "new": "procurement_qc",
    }
    assert event["event_type"] == "complaint_reassigned"
    assert event["payload"] == {
        **event["payload"],
        "from_owner_id": "E3901",
        "to_owner_id": "E3102",
        "department": "procurement_qc",
        "by": "E3901",
    }


def test_a_meeting_naming_nobody_gives_it_to_the_least_loaded_on_shift_else_the_fallback(policy):
    at_four = MONDAY_10.replace(hour=16)
    changes, _, _ = rules.meeting_decision(assessment(), decided(), policy, {"E3101": 4, "E3102": 1}, at_four)
    assert changes["owner"]["id"] == "E3102"
    assert (
        changes["routing_basis"] == "review meeting: procurement_qc is responsible; owner E3102 (least loaded on shift)"
    )
    night = MONDAY_10.replace(hour=23, minute=30)  # all of QC off shift: the meeting's decision does not wait
    changes, entry, event = rules.meeting_decision(assessment(), decided(), policy, {}, night)
    assert changes["owner"]["id"] == "E3011" and event["payload"]["to_owner_id"] == "E3011"
    assert entry["reason"] == (
        "review meeting: procurement_qc is responsible; owner E3011 (nobody in "
        "procurement_qc on shift: the duty supervisor)"
    )
    assert changes["department"] == "procurement_qc"


def test_after_the_meeting_a_reassignment_stays_in_its_department(policy):
    changes, _, _ = rules.meeting_decision(assessment(), decided("E3101"), policy, {}, MONDAY_10)
    doc = assessment(**changes)
    with pytest.raises(
        Conflict, match="the review meeting decided that procurement_qc is responsible; E3001 is in customer_service"
    ):
        rules.reassignment(doc, "E3001", "E3011", "she knows the customer", policy, MONDAY_10)
    moved, _, event = rules.reassignment(doc, "E3102", "E3011", "late shift", policy, MONDAY_10)
    assert (moved["owner"]["id"], moved["department"]) == ("E3102", "procurement_qc")
    covered, _, _ = rules.reassignment(doc, "E3011", "E3011", "I take it myself", policy, MONDAY_10)
    assert (covered["owner"]["id"], covered["department"]) == ("E3011", "procurement_qc")


def test_a_correction_after_the_meeting_keeps_the_meetings_department(policy):
    changes, _, _ = rules.meeting_decision(assessment(), decided("E3101"), policy, {}, MONDAY_10)
    doc = assessment(
        **changes,
        status="open",
        category_source="keywords",
        customer_ref="c1",
        triaged_at=MONDAY_10,
        received_at=MONDAY_10,
        risk_reasons=[],
        risk_level="low",
        complaint={
            "channel": "desk",
            "description": "草莓发霉了，收银员态度还很差",
            "demands": {},
            "customer": {"ref": "c1"},
            "location": {},
            "anger_score": 2,
            "category_hint": None,
            "received_at": MONDAY_10,
        },
    )
    regraded, _, event = rules.reassessment(
        doc, "risk_level", "high", "E3011", "journalist called", policy, MONDAY_10, History()
    )
    assert (regraded["department"], regraded["owner"]["id"]) == ("procurement_qc", "E3101")
    assert event["payload"]["department"] == "procurement_qc"


def test_the_assessment_closes_and_reopens_with_its_case():
    closed = {
        "event_type": "case_closed",
        "occurred_at": MONDAY_10,
        "payload": {"reason": "customer satisfied (score 5)", "by": "feedback"},
    }
    changes, entry = rules.case_status(assessment(status="open"), closed, MONDAY_10)
    assert changes == {"status": "closed", "status_at": MONDAY_10}
    assert (entry["action"], entry["by"]) == ("case_closed", "feedback")
    reopened = {
        "event_type": "case_reopened",
        "occurred_at": MONDAY_10 + timedelta(days=1),
        "payload": {"reason": "customer dissatisfied", "round": 2, "by": "feedback"},
    }
    assert rules.case_status(assessment(status="closed"), reopened, MONDAY_10)[0]["status"] == "open"


def test_without_a_fallback_a_meeting_decided_at_night_waits_for_the_sweep(shipped, malls):
    data = copy.deepcopy(shipped)
    data["fallback"].pop("sh-xujiahui")
    policy = load_policy(data, malls)
    changes, entry, event = rules.meeting_decision(
        assessment(), decided(), policy, {}, MONDAY_10.replace(hour=23, minute=30)
    )
    assert (changes["department"], changes["owner"], event) == ("procurement_qc", None, None)
    assert entry["reason"].endswith("owner none yet (nobody in procurement_qc on shift: the sweep assigns one)")
