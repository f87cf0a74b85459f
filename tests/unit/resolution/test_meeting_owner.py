"""R2.4, R2.5: the review meeting names the owner of the department it decides: one of
that department at the case's mall, announced with the decision so that triage, the
case and the SLA clocks name the same person."""

import pytest
from marshmallow import ValidationError


def meeting_case(open_case):
    return open_case(
        review_meeting=True,
        departments_involved=["finance", "procurement_qc"],
        department="operations_director",
        owner_id="E3901",
    )


def test_the_named_owner_is_announced_with_the_decision(open_case):
    step = meeting_case(open_case).act(
        "review-meeting",
        by="E3901",
        responsible_department="procurement_qc",
        owner_id="E3102",
        decision="QC owns the batch",
        attendees=["E3101", "E3301"],
    )
    assert step.events[0]["event_type"] == "review_meeting_decided"
    assert (step.events[0]["payload"]["responsible_department"], step.events[0]["payload"]["owner_id"]) == (
        "procurement_qc",
        "E3102",
    )


def test_a_meeting_that_names_nobody_announces_no_owner(open_case):
    case = meeting_case(open_case)
    step = case.act(
        "review-meeting", by="E3901", responsible_department="finance", decision="finance refunds", attendees=["E3301"]
    )
    assert step.events[0]["payload"]["owner_id"] is None
    assert case.case["department"] == "finance"


def test_the_named_owner_must_work_in_the_department_decided(open_case):
    case = meeting_case(open_case)
    with pytest.raises(ValidationError, match="E3301 is not in procurement_qc") as refused:
        case.act(
            "review-meeting",
            by="E3901",
            responsible_department="procurement_qc",
            owner_id="E3301",
            decision="QC owns the batch",
            attendees=["E3101", "E3301"],
        )
    assert "owner_id" in refused.value.messages
    assert case.case["review_meeting"]["decided_at"] is None and case.case["department"] == "operations_director"
