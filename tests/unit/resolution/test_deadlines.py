"""R2.3, R3.2, R3.6, R3.7, R3.8, R2.4, R4.2: the deadline of every task a case sets, from the
mall's business calendar at a fixed `now`: refunds in 24 clock hours, vouchers in one
working day (a closed day does not count), the product held on a product complaint,
cash only against a signature, the re-review 2 h after an objection, the review
meeting in 8 working hours, a reopened case's new deadline, rectifications in
working days, once per kind."""

from datetime import timedelta

import pytest
from marshmallow import ValidationError

from .conftest import MONDAY_15, sh

FRIDAY_BEFORE_CLOSED_DAY = sh(2027, 2, 5, 15, 0)  # sh-xujiahui is closed on Sat 2027-02-06


def accepted(proposed_case, remedies, at=MONDAY_15, **triaged):
    case = proposed_case(remedies, by="E3011", now=at, **triaged)
    case.reply(by="E3011")
    case.accept(by="E3011")
    return case


def due(case):
    return {t["kind"]: t["due_at"] for t in case.case["tasks"]}


def test_refund_in_24_clock_hours_and_voucher_in_one_working_day_skipping_a_closed_day(proposed_case):
    case = accepted(
        proposed_case,
        [("refund", "39.90"), ("voucher", "20")],
        at=FRIDAY_BEFORE_CLOSED_DAY,
        category="service.operating_error",
    )
    assert due(case) == {
        "refund": sh(2027, 2, 6, 15, 0),  # clock time runs while the mall is closed
        "voucher": sh(2027, 2, 7, 15, 0),  # Saturday is closed: Sunday is the working day
    }


def test_voucher_on_an_ordinary_day_is_due_the_next_day_at_the_same_time(proposed_case):
    case = accepted(
        proposed_case,
        [("voucher", "20"), ("repair", "50"), ("apology_letter", "0")],
        category="service.operating_error",
    )
    assert due(case) == {
        "voucher": MONDAY_15 + timedelta(days=1),
        "repair": MONDAY_15 + timedelta(days=3),
        "apology_letter": MONDAY_15 + timedelta(days=1),
    }


def test_execution_deadlines_are_in_the_acceptance_event(proposed_case):
    case = accepted(proposed_case, [("refund", "39.90"), ("exchange", "39.90")])
    event = case.events[-1]
    assert event["event_type"] == "case_accepted"
    assert event["payload"]["tasks"] == [
        {"task_id": 1, "kind": "refund", "due_at": (MONDAY_15 + timedelta(hours=24)).isoformat()},
        {"task_id": 2, "kind": "exchange", "due_at": (MONDAY_15 + timedelta(hours=24)).isoformat()},
        {"task_id": 3, "kind": "product_hold", "due_at": (MONDAY_15 + timedelta(hours=24)).isoformat()},
    ]


@pytest.mark.parametrize(
    "category,held",
    [
        ("product.quality_defect", True),
        ("product.expired", True),
        ("service.bad_attitude", False),
        ("environment.hygiene", False),
        (None, False),
    ],
)
def test_the_product_is_held_on_a_product_complaint_only(proposed_case, category, held):
    case = accepted(proposed_case, [("refund", "10")], category=category)
    kinds = [t["kind"] for t in case.case["tasks"]]
    assert kinds == (["refund", "product_hold"] if held else ["refund"])
    if held:
        assert case.case["tasks"][1]["amount_fen"] == 0 and case.case["tasks"][1]["signature_required"] is False


def test_the_product_is_held_once_per_case(proposed_case):
    case = accepted(proposed_case, [("refund", "10")])
    case.carry_out(), case.resolve()
    case.act("reopening", by="feedback", reason="customer dissatisfied (score 2)")
    case.propose([("voucher", "20")], by="E3011")
    case.reply(by="E3011"), case.accept(by="E3011")
    assert [t["kind"] for t in case.case["tasks"]] == ["refund", "product_hold", "voucher"]
    assert [t["id"] for t in case.case["tasks"]] == [1, 2, 3]


def test_cash_compensation_is_done_only_with_the_signed_receipt(proposed_case):
    case = accepted(proposed_case, [("cash_compensation", "100")], category="service.bad_attitude")
    task = case.case["tasks"][0]
    assert task["signature_required"] is True and task["due_at"] == MONDAY_15 + timedelta(hours=24)
    with pytest.raises(ValidationError) as error:
        case.act("task-done", task_id=1)
    assert list(error.value.messages) == ["signature_ref"]
    assert case.case["tasks"][0]["done"] is None and case.state == "accepted"
    case.later(hours=2).act("task-done", task_id=1, signature_ref="RCPT-2026-0042")
    done = case.case["tasks"][0]["done"]
    assert done["signature_ref"] == "RCPT-2026-0042" and done["within_deadline"] is True
    assert case.state == "executing"


def test_a_task_done_late_is_recorded_as_late(proposed_case):
    case = accepted(proposed_case, [("refund", "10")], category="service.bad_attitude")
    step = case.later(hours=24, seconds=1).act("task-done", task_id=1)
    assert case.case["tasks"][0]["done"]["within_deadline"] is False
    assert step.events[0]["payload"]["within_deadline"] is False


def test_an_unknown_task_is_a_validation_error(proposed_case):
    case = accepted(proposed_case, [("refund", "10")])
    with pytest.raises(ValidationError) as error:
        case.act("task-done", task_id=9)
    assert list(error.value.messages) == ["task_id"]


def test_spot_cash_compensation_needs_the_signature(open_case):
    case = open_case(category="service.bad_attitude")
    spot = dict(
        decision="upheld",
        reasons=["r"],
        summary="paid at the desk",
        remedies=[{"type": "cash_compensation", "amount": "50"}],
    )
    with pytest.raises(ValidationError) as error:
        case.act("spot-resolution", **spot)
    assert list(error.value.messages) == ["signature_ref"] and case.state == "open"
    case.act("spot-resolution", signature_ref="RCPT-7", **spot)
    assert case.case["tasks"][0]["done"]["signature_ref"] == "RCPT-7"


def test_a_spot_resolved_product_complaint_leaves_the_product_hold_open(open_case):
    case = open_case()
    case.act(
        "spot-resolution",
        decision="upheld",
        reasons=["r"],
        summary="refund at the desk",
        remedies=[{"type": "refund", "amount": "39.90"}],
    )
    assert [(t["kind"], t["done"] is None) for t in case.case["tasks"]] == [("refund", False), ("product_hold", True)]
    assert case.case["tasks"][1]["due_at"] == MONDAY_15 + timedelta(hours=24)


# --- escalation, meeting, reopening --------------------------------------------------------------


@pytest.mark.parametrize("objected_at", [MONDAY_15, sh(2026, 11, 23, 21, 30)])
def test_the_re_review_is_due_exactly_2_hours_after_the_objection(proposed_case, objected_at):
    case = proposed_case()
    case.reply()
    step = case.act("objection", at=objected_at, proposal_no=1, points=["not enough"])
    escalation = case.case["escalations"][-1]
    assert escalation["re_review_due_at"] == objected_at + timedelta(hours=2)  # clock time, past closing too
    assert escalation["to_role"] == "supervisor" and escalation["to_staff_id"] == "E3011"
    assert step.events[-1]["payload"]["re_review_due_at"] == (objected_at + timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(
    "opened_at,meeting_due",
    [
        (sh(2026, 11, 23, 11, 0), sh(2026, 11, 23, 19, 0)),  # inside opening hours
        (sh(2026, 11, 23, 20, 0), sh(2026, 11, 24, 16, 0)),  # 2 h tonight, 6 h tomorrow
        (sh(2026, 11, 23, 23, 0), sh(2026, 11, 24, 18, 0)),  # after hours: from the next opening
        (sh(2026, 11, 24, 6, 0), sh(2026, 11, 24, 18, 0)),  # before opening
        (sh(2027, 2, 5, 20, 0), sh(2027, 2, 7, 15, 30)),  # 2 h Fri, closed Sat, 6 h from Sun 09:30
    ],
)
def test_the_review_meeting_is_due_in_8_working_hours(open_case, opened_at, meeting_due):
    case = open_case(
        now=opened_at,
        review_meeting=True,
        departments_involved=["finance", "procurement_qc"],
        department="operations_director",
    )
    assert case.case["review_meeting"]["due_at"] == meeting_due
    assert case.events[0]["payload"]["review_meeting_due_at"] == meeting_due.isoformat()
    assert case.events[0]["payload"]["convenor_id"] == "E3901"


def test_a_case_without_a_dispute_has_no_meeting(open_case):
    case = open_case()
    assert case.case["review_meeting"] is None
    assert case.events[0]["payload"]["review_meeting_due_at"] is None


def test_a_meeting_decided_late_is_recorded_as_late(open_case):
    case = open_case(review_meeting=True, departments_involved=["finance", "facilities"])
    step = case.later(hours=30).act(
        "review-meeting", by="E3901", responsible_department="facilities", decision="the lift", attendees=["E3901"]
    )
    assert case.case["review_meeting"]["within_deadline"] is False
    assert step.events[0]["payload"]["within_deadline"] is False


def test_a_reopened_case_has_a_new_deadline_48_hours_later_and_round_2(proposed_case):
    case = accepted(proposed_case, [("refund", "10")])
    case.carry_out(), case.resolve()
    reopened_at = case.later(hours=30).now
    step = case.act("reopening", by="feedback", reason="customer dissatisfied (score 2): refund late")
    assert case.case["round"] == 2
    assert case.case["resolution_due_at"] == reopened_at + timedelta(hours=48)
    assert step.events[0]["payload"] == {
        "reason": "customer dissatisfied (score 2): refund late",
        "round": 2,
        "resolution_due_at": (reopened_at + timedelta(hours=48)).isoformat(),
        "by": "feedback",
    }


def test_a_promised_time_beyond_the_deadline_is_marked(open_case):
    case = open_case(resolution_due_at=MONDAY_15 + timedelta(days=2))
    case.act("expected-resolution", expected_by=(MONDAY_15 + timedelta(days=1)).isoformat(), via="phone")
    assert case.case["expected_resolution"]["beyond_deadline"] is False
    case.act("expected-resolution", expected_by=(MONDAY_15 + timedelta(days=3)).isoformat(), via="sms")
    assert case.case["expected_resolution"]["beyond_deadline"] is True
    assert case.case["expected_resolution"]["via"] == "sms"
    # R3.2, R7.1: each promise is told to analytics, which keeps a clock for it
    promised = [e["payload"] for e in case.events if e["event_type"] == "time_promised"]
    assert promised == [
        {
            "expected_by": (MONDAY_15 + timedelta(days=1)).isoformat(),
            "via": "phone",
            "beyond_deadline": False,
            "by": "E3501",
        },
        {
            "expected_by": (MONDAY_15 + timedelta(days=3)).isoformat(),
            "via": "sms",
            "beyond_deadline": True,
            "by": "E3501",
        },
    ]


def test_a_note_of_contact_with_the_customer_is_the_first_response(open_case):
    """R2.3: contact with the customer publishes customer_contacted; an internal note, or a
    contact note that does not say how, does not."""
    case = open_case()
    case.act("notes", kind="internal", text="asked the supplier for the batch")
    with pytest.raises(ValidationError) as refused:
        case.act("notes", kind="customer_contact", text="called the customer")
    assert "via" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        case.act("notes", kind="internal", via="phone", text="no customer here")
    assert "via" in refused.value.messages
    case.act("notes", kind="customer_contact", via="phone", text="10:05 called the customer, refund explained")
    assert [(e["event_type"], e["payload"]) for e in case.events if e["event_type"] == "customer_contacted"] == [
        ("customer_contacted", {"via": "phone", "by": "E3501"})
    ]
    assert case.case["timeline"][-1]["detail"]["via"] == "phone"


# --- rectification (R3.8) -----------------------------------------------------------------------


def resolved(proposed_case, category, at=MONDAY_15):
    case = accepted(proposed_case, [("refund", "10")], at=at, category=category)
    case.carry_out(by="E3011")
    case.resolve(by="E3011")
    return case


def test_a_service_complaint_leads_to_staff_training_in_3_working_days(proposed_case):
    case = resolved(proposed_case, "service.bad_attitude")
    assert [(r["kind"], r["owner_id"], r["due_at"], r["done"]) for r in case.case["rectifications"]] == [
        ("staff_training", "E3011", MONDAY_15 + timedelta(days=3), None)
    ]
    event = next(e for e in case.events if e["event_type"] == "rectification_due")
    assert event["payload"] == {
        "rectification_id": 1,
        "kind": "staff_training",
        "owner_id": "E3011",
        "merchant_id": None,  # the mall's own: the case was not with its merchant (R7.5)
        "due_at": (MONDAY_15 + timedelta(days=3)).isoformat(),
    }


def test_rectification_working_days_skip_the_closed_day(proposed_case):
    case = resolved(proposed_case, "service.bad_attitude", at=sh(2027, 2, 4, 15, 0))
    assert case.case["rectifications"][0]["due_at"] == sh(2027, 2, 8, 15, 0)  # Fri, (Sat closed), Sun, Mon


def test_staff_training_goes_to_the_supervisor_of_that_mall(proposed_case):
    case = proposed_case([("refund", "10")], by="E5011", mall_id="gz-tianhe", category="service.bad_attitude")
    case.reply(by="E5011"), case.accept(by="E5011"), case.carry_out(by="E5011"), case.resolve(by="E5011")
    assert case.case["rectifications"][0]["owner_id"] == "E5011"


@pytest.mark.parametrize(
    "category,kind,owner,days",
    [
        ("product.quality_defect", "procurement_standard_change", "E3091", 10),
        ("environment.facility_failure", "maintenance", "E3011", 2),
    ],
)
def test_product_and_facility_complaints_lead_to_their_rectification(proposed_case, category, kind, owner, days):
    case = resolved(proposed_case, category)
    [item] = case.case["rectifications"]
    assert (item["kind"], item["owner_id"]) == (kind, owner)
    assert item["due_at"] == MONDAY_15 + timedelta(days=days)  # the mall opens every day that fortnight


@pytest.mark.parametrize("category", ["payment.refund_delay", "logistics.late_delivery", None])
def test_no_rectification_where_the_policy_has_none(proposed_case, category):
    case = resolved(proposed_case, category)
    assert case.case["rectifications"] == []
    assert "rectification_due" not in case.event_types()


def test_a_rectification_is_created_once_per_kind_even_when_resolved_again(proposed_case):
    case = resolved(proposed_case, "service.bad_attitude")
    case.act("reopening", by="feedback", reason="customer dissatisfied (score 1)")
    case.propose([("voucher", "20")], by="E3011")
    case.reply(by="E3011"), case.accept(by="E3011"), case.carry_out(by="E3011"), case.resolve(by="E3011")
    assert case.state == "resolved" and case.case["round"] == 2
    assert [r["kind"] for r in case.case["rectifications"]] == ["staff_training"]
    assert case.event_types().count("rectification_due") == 1


def test_a_rectification_by_hand_and_its_completion(proposed_case):
    case = resolved(proposed_case, "service.bad_attitude")
    with pytest.raises(ValidationError) as error:
        case.act("rectifications", by="E3011", kind="signage", description="price tags", owner_id="E5011")
    assert list(error.value.messages) == ["owner_id"]
    case.act(
        "rectifications", by="E3011", kind="signage", description="fix the price tags", owner_id="E3091", working_days=2
    )
    assert case.case["rectifications"][1]["due_at"] == MONDAY_15 + timedelta(days=2)
    case.later(days=1).act("rectification-done", by="E3011", rectification_id=1, evidence="training sign-in sheet")
    assert case.case["rectifications"][0]["done"]["within_deadline"] is True
    case.later(days=2).act("rectification-done", by="E3091", rectification_id=2, evidence="photos")
    assert case.case["rectifications"][1]["done"]["within_deadline"] is False
