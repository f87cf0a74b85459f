"""R2.1-R2.5, R7.4: each of triage's rule tables on its own, then the whole assessment:
categories from the form or from Chinese and English phrases, risk with its reasons,
urgent / routine with the systemic flag beside it, routing by responsibility, owner by
shift and load, deadlines by category and risk (clock and working time)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from tests.conftest import POLICY_DIR
from triage import classify, rules
from mallcare_common.policy import load_policy_dir
from triage.policy import load_policy

SH = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SH)


@pytest.fixture(scope="module")
def policy():
    return load_policy_dir(POLICY_DIR, "triage.yml", load_policy)


def complaint(**overrides):
    base = {
        "mall_id": "sh-xujiahui",
        "channel": "desk",
        "description": "",
        "demands": {},
        "customer": {"ref": "c1", "member_tier": "regular"},
        "location": {},
        "anger_score": 3,
        "category_hint": None,
        "received_at": MONDAY_10,
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    "text,expected",
    [
        ("草莓有三分之一发霉了", "product.quality_defect"),
        ("The milk was past its expiry date, expired", "product.expired"),
        ("收银员态度很差，还吼我", "service.bad_attitude"),
        ("cashier overcharged me, scanned twice", "service.operating_error"),
        ("卫生间很脏，有异味", "environment.hygiene"),
        ("扶梯坏了", "environment.facility_failure"),
        ("退款一周了还没到账", "payment.refund_delay"),
        ("配送慢，两天没送到", "logistics.late_delivery"),
    ],
)
def test_phrases_propose_a_category(policy, text, expected):
    reading = classify.read(complaint(description=text), policy.rules)
    assert (reading.category, reading.source, reading.confirmed) == (expected, "keywords", True)


def test_the_channel_form_wins_when_it_is_in_the_taxonomy(policy):
    form = classify.read(complaint(description="发霉", category_hint="rules.price_dispute"), policy.rules)
    assert (form.category, form.source, form.confirmed) == ("rules.price_dispute", "channel_form", True)
    made_up = classify.read(complaint(description="发霉", category_hint="made.up"), policy.rules)
    assert (made_up.category, made_up.source) == ("product.quality_defect", "keywords")


def test_no_phrase_leaves_the_category_to_a_person(policy):
    reading = classify.read(complaint(description="I want to talk to the manager"), policy.rules)
    assert (reading.category, reading.source, reading.confirmed) == (None, "none", False)


def risk(policy, previous=0, **overrides):
    c = complaint(**overrides)
    reading = classify.read(c, policy.rules)
    return rules.assess_risk(c, policy.rules["risk"], previous, reading, reading.category)


@pytest.mark.parametrize(
    "overrides,previous,reason,level",
    [
        ({"channel": "social"}, 0, "media_exposure", "high"),
        ({"description": "不解决我就发微博曝光"}, 0, "media_exposure", "high"),
        ({"description": "孩子吃了以后拉肚子"}, 0, "safety", "high"),
        ({"description": "鞋子开胶了", "demands": {"expectation": "十倍赔偿"}}, 0, "beyond_statutory", "medium"),
        ({"customer": {"ref": "c1", "member_tier": "vip"}}, 0, "key_customer", "medium"),
        ({"anger_score": 5}, 0, "anger", "medium"),
        ({}, 2, "repeat_complainant", "medium"),
    ],
)
def test_each_risk_reason_is_recorded_with_its_level(policy, overrides, previous, reason, level):
    got_level, reasons = risk(policy, previous, **overrides)
    assert got_level == level
    assert [r["reason"] for r in reasons] == [reason] and reasons[0]["detail"]


def test_the_highest_reason_sets_the_level_and_all_are_kept(policy):
    level, reasons = risk(policy, anger_score=5, description="吃了过敏", demands={"expectation": "要二十倍赔偿"})
    assert level == "high"
    assert {r["reason"] for r in reasons} == {"safety", "beyond_statutory", "anger"}


def test_a_plain_complaint_is_low_risk(policy):
    assert risk(policy, 1, description="价签和收银价不一致") == ("low", [])


def test_high_risk_is_always_urgent_and_recurrence_does_not_change_it(policy):
    """R2.2, finding 3: urgency is by risk only; the fifth food poisoning of a month is
    urgent and systemic, not due in 30 days."""
    urgency = policy.rules["urgency"]
    assert rules.decide_urgency("high", urgency) == "urgent"
    assert rules.decide_urgency("medium", urgency) == "routine"
    assert rules.decide_urgency("low", urgency) == "routine"


@pytest.mark.parametrize(
    "text,location,department,meeting",
    [
        ("草莓发霉", {}, "procurement_qc", False),
        ("收银员态度差", {}, "customer_service", False),
        ("电梯坏了", {}, "facilities", False),
        ("答应的退款一周了还没到账", {}, "finance", False),
        ("配送慢，两天没送到", {}, "logistics", False),
        ("草莓发霉", {"merchant_id": "T-17"}, "merchant_relations", False),
        ("店里很脏", {"merchant_id": "T-17"}, "facilities", False),
        ("钱包被偷了，保安态度差", {}, "security", False),
        ("???", {}, "customer_service", False),
        # a tenant's product and the same tenant's staff are one responsible party
        ("奶茶里有头发，店员态度还很差", {"merchant_id": "T-17"}, "merchant_relations", False),
    ],
)
def test_routing_by_responsibility(policy, text, location, department, meeting):
    got = rules.assess(complaint(description=text, location=location), policy, MONDAY_10, History())
    assert (got["department"], got["review_meeting"]) == (department, meeting)


def test_a_dispute_across_departments_goes_to_the_operations_director(policy):
    got = rules.assess(
        complaint(description="买到发霉的草莓，一半都烂了；答应的退款一周没到账；收银员态度还很差，翻白眼"),
        policy,
        MONDAY_10,
        History(),
    )
    assert got["department"] == "operations_director" and got["review_meeting"]
    assert got["departments_involved"] == ["customer_service", "finance", "procurement_qc"]
    assert got["category"] == "product.quality_defect"  # the first-mentioned problem
    assert "finance" in got["routing_basis"] and "procurement_qc" in got["routing_basis"]


def test_owner_is_on_shift_least_loaded_then_skilled(policy):
    handlers = policy.handlers("sh-xujiahui")
    at_ten = MONDAY_10
    at_four = MONDAY_10.replace(hour=16)  # both customer-service shifts
    assert rules.pick_owner(handlers, "customer_service", "service", {}, at_ten).id == "E3001"  # only one on
    assert rules.pick_owner(handlers, "customer_service", "service", {"E3001": 3, "E3002": 1}, at_four).id == "E3002"
    # equal load: E3001 also knows rules
    assert rules.pick_owner(handlers, "customer_service", "rules", {"E3001": 1, "E3002": 1}, at_four).id == "E3001"
    assert rules.pick_owner(handlers, "finance", "payment", {}, MONDAY_10.replace(hour=22)) is None


def test_deadlines_by_category_and_risk(policy):
    sla, calendar = policy.rules["sla"], policy.malls.get("sh-xujiahui").calendar
    first, resolution = rules.deadlines("service.bad_attitude", "routine", "low", sla, calendar, MONDAY_10)
    assert first == MONDAY_10 + timedelta(hours=24) and resolution == MONDAY_10 + timedelta(days=7)
    first, _ = rules.deadlines("product.quality_defect", "routine", "low", sla, calendar, MONDAY_10)
    assert first == MONDAY_10 + timedelta(hours=48)
    first, resolution = rules.deadlines("product.quality_defect", "urgent", "high", sla, calendar, MONDAY_10)
    assert first == MONDAY_10 + timedelta(hours=24) and resolution == MONDAY_10 + timedelta(hours=12)
    assert first.utcoffset() == timedelta(0)


def test_working_hours_skip_closing_time_and_closed_days(policy):
    sla = {**policy.rules["sla"], "first_response": {"default": {"working_hours": 2}}}
    calendar = policy.malls.get("sh-xujiahui").calendar
    friday_night = datetime(2027, 2, 5, 21, 30, tzinfo=SH)  # Sat 2027-02-06 is closed
    first, _ = rules.deadlines(None, "routine", "low", sla, calendar, friday_night)
    assert first == datetime(2027, 2, 7, 11, 0, tzinfo=SH)  # 30 min Fri + 90 min from Sun 09:30


class History:
    def __init__(self, by_customer=0, recurrences=0, load=None):
        self.by_customer, self.recurrences, self.load = by_customer, recurrences, load or {}

    def count_by_customer(self, ref, since):
        return self.by_customer

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        return self.recurrences

    def open_load(self, mall_id):
        return self.load


def test_a_whole_assessment_records_its_policy_version(policy):
    got = rules.assess(
        complaint(description="昨天买的草莓发霉了，要二十倍赔偿", anger_score=5),
        policy,
        MONDAY_10,
        History(by_customer=2, recurrences=4, load={"E3101": 2}),
    )
    assert got["category"] == "product.quality_defect" and got["category_source"] == "keywords"
    assert got["category_confirmed"] and got["category_confidence"] == 1.0
    assert got["risk_level"] == "medium"
    assert {r["reason"] for r in got["risk_reasons"]} == {"beyond_statutory", "anger", "repeat_complainant"}
    assert got["demand"] == {"multiple": 20, "amount_fen": None, "price_fen": None, "mental_damages": False}
    assert (got["urgency"], got["systemic"], got["recurrences"]) == ("routine", True, 5)
    assert got["department"] == "procurement_qc" and got["owner"] == {"id": "E3101", "name": "王强"}
    assert got["first_response_due_at"] == MONDAY_10 + timedelta(hours=36)  # 48 h x 0.75 for medium
    assert got["policy_version"] == policy.version


def test_a_mall_override_applies_only_there(policy):
    gz = rules.assess(complaint(mall_id="gz-tianhe", description="态度差"), policy, MONDAY_10, History())
    sh = rules.assess(complaint(description="态度差"), policy, MONDAY_10, History())
    assert gz["first_response_due_at"] == MONDAY_10 + timedelta(hours=12)
    assert sh["first_response_due_at"] == MONDAY_10 + timedelta(hours=24)


@pytest.mark.parametrize("field, value", [("risk_level", "à5"), ("risk_level", "High"), ("category", "product")])
def test_a_correction_to_a_value_the_policy_does_not_know_is_refused_by_field(policy, field, value):
    # found by the fuzz run: an unknown risk level was a KeyError (HTTP 500) deep in the deadlines
    with pytest.raises(ValidationError) as refused:
        rules.reassessment({}, field, value, "E3011", "wrong", policy, MONDAY_10, history=None)
    assert list(refused.value.messages) == ["value"]
