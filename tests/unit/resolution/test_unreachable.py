"""R4.1, R4.2 (issue 16 finding 7): a resolved case whose revisit ended unreachable
closes by rule, without an answer, once the policy's waiting time
(deadlines.unreachable_close_after, three working days) is over; an answer before
then, or a person reopening or closing the case, drops the pending closure."""

from datetime import timedelta

import pytest

from resolution.domain import actions
from resolution.domain.errors import StateConflict
from resolution.domain.step import Actor, Step
from tests.unit.resolution.conftest import sh

UNREACHABLE = {
    "revisit_id": "SHXJH-20261123-0042-R1",
    "outcome": "unreachable",
    "attempts": 3,
    "score": None,
    "within_deadline": True,
    "by": "E3002",
}


@pytest.fixture
def resolved_case(proposed_case):
    case = proposed_case()
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    return case


def by_rule(case, rule, request, actor, at=None):
    """Apply a rule the service applies for an event or its sweep (not a handler action)."""
    if at is not None:
        case.now = at
    step = Step(case.case, Actor(actor, "service"), case.now)
    rule(step, request, case.policy)
    case.case = {**case.case, **step.changes, "timeline": [*case.case["timeline"], *step.entries]}
    case.events.extend(step.events)
    return step


def test_the_case_closes_without_an_answer_three_working_days_after_the_revisit_ended_unreachable(resolved_case):
    case = resolved_case
    by_rule(case, actions.note_unreachable, UNREACHABLE, "feedback")
    pending = case.case["closure_by_rule"]
    assert pending["close_at"] == sh(2026, 11, 26, 15, 0)  # Monday 15:00 + 3 working days
    assert (pending["revisit_id"], pending["attempts"], case.state) == (UNREACHABLE["revisit_id"], 3, "resolved")
    assert case.case["timeline"][-1]["action"] == "customer_unreachable"

    with pytest.raises(StateConflict, match="not yet"):
        by_rule(case, actions.close_without_answer, {}, "resolution", at=pending["close_at"] - timedelta(seconds=1))
    step = by_rule(case, actions.close_without_answer, {}, "resolution", at=pending["close_at"])
    assert case.state == "closed" and case.case["closure_by_rule"] is None
    closure = case.case["closure"]
    assert closure["without_answer"] is True and closure["by"] == "resolution"
    assert closure["reason"] == (
        f"customer unreachable: revisit {UNREACHABLE['revisit_id']} ended without an answer "
        "after 3 attempt(s); closed by rule 3 working days later"
    )
    entry = case.case["timeline"][-1]
    assert (entry["action"], entry["by"], entry["detail"]["without_answer"]) == ("closed", "resolution", True)
    assert [(e["event_type"], e["payload"]) for e in step.events] == [
        ("case_closed", {"reason": closure["reason"], "without_answer": True, "by": "resolution"})
    ]


def test_a_satisfied_answer_before_then_closes_the_case_as_usual_and_drops_the_pending_closure(resolved_case):
    case = resolved_case
    by_rule(case, actions.note_unreachable, UNREACHABLE, "feedback")
    case.act("closure", by="feedback", at=case.now + timedelta(days=1), reason="customer satisfied (score 5)")
    assert case.case["closure"]["without_answer"] is False and case.case["closure_by_rule"] is None
    dropped = case.case["timeline"][-2]
    assert (dropped["action"], dropped["detail"]["because"]) == (
        "closure_by_rule_dropped",
        "customer satisfied (score 5)",
    )
    with pytest.raises(StateConflict):
        by_rule(case, actions.close_without_answer, {}, "resolution", at=case.now + timedelta(days=5))


def test_a_dissatisfied_answer_before_then_reopens_the_case_and_its_next_resolution_waits_again(resolved_case):
    case = resolved_case
    by_rule(case, actions.note_unreachable, UNREACHABLE, "feedback")
    case.act("reopening", by="feedback", at=case.now + timedelta(hours=5), reason="customer dissatisfied (score 2)")
    assert (case.state, case.case["closure_by_rule"]) == ("reopened", None)
    case.investigate(), case.propose(), case.reply(), case.accept(), case.carry_out(), case.resolve()
    with pytest.raises(StateConflict, match="not waiting"):  # the first round's waiting time does not carry over
        by_rule(case, actions.close_without_answer, {}, "resolution", at=case.now + timedelta(days=10))
    assert case.state == "resolved"


def test_an_unreachable_revisit_of_a_case_no_longer_resolved_changes_nothing(resolved_case):
    case = resolved_case
    case.act("reopening", by="E3011", reason="the refund bounced")
    with pytest.raises(StateConflict, match="cannot wait for an unreachable customer on a case that is reopened"):
        by_rule(case, actions.note_unreachable, UNREACHABLE, "feedback")
