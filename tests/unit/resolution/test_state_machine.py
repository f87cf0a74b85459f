"""R3.1-R3.3, R3.6, R3.7, R4.2: the life of a case as a state machine. Every move
not in TRANSITIONS is refused with a StateConflict naming both states; each action is
refused in a state it does not belong to; the happy path runs open -> ... ->
closed -> reopened and an objection goes proposed -> objected -> escalated -> proposed."""

import itertools

import pytest

from mallcare_common.contracts.resolution import STATES
from resolution.domain import states
from resolution.domain.errors import StateConflict
from resolution.domain.step import Actor, Step

ALLOWED = [(a, b) for a, targets in states.TRANSITIONS.items() for b in targets]
REFUSED = [pair for pair in itertools.product(STATES, STATES) if pair not in ALLOWED]


def test_the_state_machine_covers_every_published_state():
    assert set(states.TRANSITIONS) | {b for _, b in ALLOWED} == set(STATES)
    assert len(REFUSED) == len(STATES) ** 2 - len(ALLOWED) == 79


@pytest.mark.parametrize("state,target", REFUSED)
def test_a_move_not_in_the_transitions_is_refused(state, target):
    step = Step({"state": state, "timeline": [], "mall_id": "sh-xujiahui", "_id": "X"}, Actor("E3501", "handler"), None)
    with pytest.raises(StateConflict) as error:
        step.move(target)
    message = str(error.value)
    assert f"that is {state} cannot become {target}" in message
    assert step.changes == {} and step.state == state


@pytest.mark.parametrize("state,target", ALLOWED)
def test_a_move_in_the_transitions_is_made(state, target):
    step = Step({"state": state, "timeline": []}, Actor("E3501", "handler"), None)
    step.move(target)
    assert step.state == target and step.changes == {"state": target}


def test_the_refusal_lists_what_the_state_allows():
    with pytest.raises(StateConflict, match=r"from proposed: accepted, objected, closed"):
        states.check_transition("proposed", "resolved")
    with pytest.raises(StateConflict, match=r"from reopened: investigating, proposed, closed"):
        states.check_transition("reopened", "resolved")


# --- actions in the wrong state ---------------------------------------------------------------


def test_a_proposal_needs_an_investigation_first(open_case):
    case = open_case()
    with pytest.raises(StateConflict, match="cannot propose on a case that is open"):
        case.propose()
    assert case.state == "open" and case.case["proposals"] == []


def test_the_customer_cannot_accept_before_being_answered(proposed_case):
    case = proposed_case()
    assert case.proposal["status"] == "approved"
    with pytest.raises(StateConflict, match="proposal 1 has not been given to the customer"):
        case.accept()
    with pytest.raises(StateConflict, match="proposal 1 has not been given to the customer"):
        case.object()
    assert case.state == "proposed" and case.case["tasks"] == []


def test_the_customer_is_not_told_before_approval_and_the_approver_role_is_named(proposed_case):
    case = proposed_case(
        remedies=[("refund", "39.90"), ("cash_compensation", "1000")],
        proposal={"legal_basis": "food_safety", "price": "39.90"},
    )
    assert case.proposal["status"] == "awaiting_approval"
    with pytest.raises(StateConflict, match="needs the approval of a supervisor before the customer is told"):
        case.reply()
    assert case.proposal["sent"] is None


def test_an_answer_names_the_current_proposal(proposed_case):
    case = proposed_case()
    with pytest.raises(StateConflict, match=r"proposal 2 is not the current one \(1\)"):
        case.act("reply", proposal_no=2, oral=True)


def test_a_sent_proposal_cannot_be_replaced_before_the_customer_answers(proposed_case):
    case = proposed_case()
    case.reply()
    with pytest.raises(StateConflict, match="was given to the customer; record their answer first"):
        case.propose([("refund", "20")])
    assert len(case.case["proposals"]) == 1


def test_an_unsent_proposal_is_withdrawn_by_a_new_one(proposed_case):
    case = proposed_case()
    case.propose([("refund", "39.90"), ("voucher", "20")])
    assert [(p["no"], p["status"]) for p in case.case["proposals"]] == [(1, "withdrawn"), (2, "approved")]
    assert case.state == "proposed"


def test_resolving_with_open_tasks_lists_them(proposed_case):
    case = proposed_case(remedies=[("refund", "39.90"), ("voucher", "20")])
    case.reply()
    case.accept()
    case.act("task-done", task_id=1)
    with pytest.raises(StateConflict) as error:
        case.resolve()
    assert str(error.value) == "tasks still to carry out: 2 voucher, 3 product_hold"
    assert case.state == "executing"


def test_a_proposal_waits_for_the_review_meeting(open_case):
    case = open_case(
        review_meeting=True, departments_involved=["finance", "procurement_qc"], department="operations_director"
    )
    case.investigate()
    with pytest.raises(StateConflict, match="review meeting has not decided"):
        case.propose()
    case.act(
        "review-meeting",
        by="E3901",
        responsible_department="procurement_qc",
        decision="supplier batch at fault",
        attendees=["E3901", "E3501"],
    )
    case.propose()
    assert case.state == "proposed" and case.case["department"] == "procurement_qc"
    with pytest.raises(StateConflict, match="decided already"):
        case.act("review-meeting", by="E3901", responsible_department="finance", decision="again", attendees=["E3901"])


def test_spot_resolution_only_from_open(open_case):
    case = open_case()
    case.investigate()
    with pytest.raises(StateConflict, match="cannot resolve on the spot a case that is investigating"):
        case.act(
            "spot-resolution",
            decision="upheld",
            reasons=["r"],
            remedies=[{"type": "refund", "amount": 10}],
            summary="refunded at the desk",
        )
    assert case.state == "investigating" and case.case["resolution"] is None


def test_spot_resolution_settles_a_simple_complaint_in_one_step(open_case):
    case = open_case(category="service.bad_attitude")
    case.act(
        "spot-resolution",
        by="D3001",
        decision="upheld",
        reasons=["cashier was rude"],
        remedies=[{"type": "voucher", "amount": 50}, {"type": "apology_letter", "amount": 0}],
        summary="voucher and apology at the desk",
        text="我们向您道歉",
    )
    assert case.state == "resolved"
    assert case.case["resolution"]["spot"] is True
    assert [t["done"] is not None for t in case.case["tasks"]] == [True, True]
    assert case.event_types() == [
        "case_opened",
        "case_proposed",
        "case_accepted",
        "execution_task_done",
        "execution_task_done",
        "rectification_due",
        "case_resolved",
    ]
    assert case.proposal["sent"]["oral"] is True and case.proposal["approvals"][0]["by"] == "D3001"


def test_spot_resolution_refuses_risk_a_dispute_and_large_sums(open_case):
    spot = dict(decision="upheld", reasons=["r"], summary="s")
    with pytest.raises(StateConflict, match="a medium-risk complaint is not resolved on the spot"):
        open_case(risk_level="medium").act("spot-resolution", remedies=[{"type": "refund", "amount": 10}], **spot)
    with pytest.raises(StateConflict, match="in a cross-department dispute"):
        open_case(review_meeting=True, departments_involved=["finance", "facilities"]).act(
            "spot-resolution", remedies=[{"type": "refund", "amount": 10}], **spot
        )
    with pytest.raises(StateConflict, match=r"remedies of 200.01 are above the 200.00 settled on the spot"):
        open_case().act("spot-resolution", by="E3011", remedies=[{"type": "voucher", "amount": "200.01"}], **spot)


def test_a_finished_case_takes_no_more_findings_or_escalations(proposed_case):
    case = proposed_case()
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    with pytest.raises(StateConflict, match="cannot record a finding on a case that is resolved"):
        case.investigate()
    with pytest.raises(StateConflict, match="cannot escalate a case that is resolved"):
        case.act("escalation", reason="manual")


def test_a_task_is_done_once(proposed_case):
    case = proposed_case()
    case.reply(), case.accept()
    case.act("task-done", task_id=1)
    with pytest.raises(StateConflict, match=r"task 1 \(refund\) is done already"):
        case.act("task-done", task_id=1)


def test_approval_only_of_a_proposal_awaiting_it(proposed_case):
    case = proposed_case()
    with pytest.raises(StateConflict, match="proposal 1 is approved, not awaiting approval"):
        case.act("approval", by="E3011", proposal_no=1)


def test_only_a_resolved_case_is_closed(proposed_case):
    case = proposed_case()
    with pytest.raises(StateConflict, match="that is proposed is closed only after it is resolved"):
        case.act("closure", by="E3011", reason="customer stopped answering")


# --- whole paths --------------------------------------------------------------------------------


def test_the_happy_path_from_open_to_reopened(open_case):
    case = open_case()
    states = [case.state]
    case.later(minutes=10).investigate()
    states.append(case.state)
    case.later(minutes=10).propose([("refund", "39.90"), ("voucher", "20")])
    states.append(case.state)
    assert case.proposal["status"] == "approved"  # within the handler's own limit
    case.later(minutes=5).reply()
    assert case.proposal["status"] == "sent"
    case.later(minutes=5).accept()
    states.append(case.state)
    case.later(hours=1).act("task-done", task_id=1, note="refund confirmed")
    states.append(case.state)
    case.carry_out()
    case.later(hours=1).resolve()
    states.append(case.state)
    case.later(hours=24).act("closure", by="feedback", reason="customer satisfied (score 5)")
    states.append(case.state)
    case.later(hours=1).act("reopening", by="E3011", reason="customer called back: the voucher did not arrive")
    states.append(case.state)
    assert states == ["open", "investigating", "proposed", "accepted", "executing", "resolved", "closed", "reopened"]
    assert case.case["closure"] is None and case.case["round"] == 2
    assert [e["state"] for e in case.case["timeline"]] == [
        "open",
        "investigating",
        "proposed",
        "proposed",
        "proposed",
        "accepted",
        "executing",
        "executing",
        "executing",
        "resolved",
        "resolved",
        "closed",
        "reopened",
    ]


def test_a_reopened_case_goes_round_again(proposed_case):
    case = proposed_case()
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    case.act("reopening", by="feedback", reason="customer dissatisfied (score 2): slow")
    case.investigate()
    assert case.state == "investigating"
    case.propose([("voucher", "30")])
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    assert case.state == "resolved"
    assert case.case["resolution"]["round"] == 2 and case.case["resolution"]["proposal_no"] == 2


def test_an_accepted_answer_with_nothing_to_carry_out_is_resolved_from_accepted(open_case):
    case = open_case(category="rules.price_dispute")
    case.investigate()
    case.propose([], decision="not_upheld")
    case.reply(), case.accept()
    assert case.state == "accepted" and case.case["tasks"] == []
    case.resolve()
    assert case.state == "resolved"


def test_the_objection_path_goes_up_a_level_and_back_to_proposed(proposed_case):
    case = proposed_case()
    case.reply()
    step = case.later(minutes=30).object(points=["the refund is not enough", "wants a written apology"])
    assert [e["state"] for e in step.entries] == ["objected", "escalated"]
    assert case.state == "escalated" and case.case["level"] == "supervisor"
    assert case.proposal["status"] == "objected"
    assert case.case["objections"][0]["points"] == ["the refund is not enough", "wants a written apology"]
    case.later(minutes=30).propose([("refund", "39.90"), ("apology_letter", "0")])
    assert case.state == "proposed"
    assert [p["status"] for p in case.case["proposals"]] == ["objected", "awaiting_approval"]
    case.act("approval", by="E3011", proposal_no=2)
    case.reply(), case.accept()
    assert case.state == "accepted"


def test_a_customer_can_object_again_and_the_case_keeps_climbing(proposed_case):
    case = proposed_case()
    levels = []
    for approver in ("E3011", "E3091", "E3901"):
        case.reply()
        case.object()
        levels.append(case.case["level"])
        case.propose()
        if case.proposal["status"] == "awaiting_approval":
            case.act("approval", by=approver, proposal_no=case.proposal["no"])
    assert levels == ["supervisor", "store_manager", "operations_director"]


def test_a_supervisor_closes_a_reopened_case_with_a_reason(proposed_case):
    case = proposed_case()
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    case.act("reopening", by="feedback", reason="customer dissatisfied (score 1): wants 10x")
    case.act("closure", by="E3011", reason="demand beyond the law; appeal route given; closed by supervisor")
    assert case.state == "closed"


def test_an_answer_is_given_once(proposed_case):
    case = proposed_case()
    case.reply()
    with pytest.raises(StateConflict, match="proposal 1 is sent: the customer has been told already"):
        case.reply()
