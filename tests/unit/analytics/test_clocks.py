"""R5.5, R6.2 (deadlines of R1.2, R2.3, R2.4, R3.2, R3.6-R3.9, R4.1, R4.2): every event
that sets a deadline starts its clock and the event that meets it stops it; a clock ends
met, met late or cancelled; a case's closure ends every clock of its handling; the first
response is contact with the customer, not an internal finding; a promised time has its
own clock; at risk at the configured share of the allowed time; the SLA events follow
their contract; per clock kind: start, stop, breach and the report's counts."""

from datetime import datetime, timedelta, timezone

import pytest

from analytics import clocks
from mallcare_common.contracts import EVENT_TYPES, build_event, read_event

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
NUMBER = "SHXJH-20261123-0042"


def event(name, payload, at=T0, number=NUMBER):
    kind = EVENT_TYPES[name]
    return read_event(
        build_event(kind, mall_id="sh-xujiahui", complaint_no=number, occurred_at=at, payload=payload), kind
    )


def iso(delta):
    return (T0 + delta).isoformat()


TRIAGED = {
    "category": "product.quality_defect",
    "category_source": "keywords",
    "risk_level": "low",
    "risk_reasons": [],
    "urgency": "routine",
    "department": "merchant_relations",
    "review_meeting": False,
    "departments_involved": [],
    "owner_id": "E3501",
    "first_response_due_at": iso(timedelta(hours=48)),
    "resolution_due_at": iso(timedelta(hours=168)),
    "policy_version": "v",
    "received_at": iso(timedelta(0)),
    "channel": "desk",
    "merchant_id": "T-17",
}


def test_triage_starts_the_first_response_and_resolution_clocks_of_the_handler():
    ops = clocks.operations(event("complaint_triaged", TRIAGED))
    assert [(op.clock_id, op.fields["due_at"], op.fields["owner"]) for op in ops] == [
        (f"{NUMBER}|first_response|1", T0 + timedelta(hours=48), "E3501"),
        (f"{NUMBER}|resolution|1", T0 + timedelta(hours=168), "E3501"),
    ]
    assert all(op.fields["started_at"] == T0 and op.fields["department"] == "merchant_relations" for op in ops)


@pytest.mark.parametrize(
    "name,payload,stopped",
    [
        (
            "complaint_acknowledged",
            {
                "acknowledged_at": iso(timedelta(seconds=40)),
                "acknowledged_by": "E2001",
                "method": "in_person",
                "ack_due_at": iso(timedelta(minutes=1)),
                "within_deadline": True,
            },
            ["acknowledgement|1"],
        ),
        ("customer_contacted", {"via": "phone", "by": "E3501"}, ["first_response|1"]),
        (
            "execution_task_done",
            {
                "task_id": 2,
                "kind": "refund",
                "due_at": iso(timedelta(hours=24)),
                "done_at": iso(timedelta(hours=3)),
                "within_deadline": True,
                "by": "E3501",
            },
            ["execution|2"],
        ),
        (
            "revisit_done",
            {
                "revisit_id": f"{NUMBER}-R1",
                "outcome": "answered",
                "attempts": 1,
                "score": 5,
                "within_deadline": True,
                "by": "E3002",
            },
            [f"revisit|{NUMBER}-R1"],
        ),
        (
            "incident_handled",
            {
                "handling_due_at": iso(timedelta(hours=48)),
                "within_deadline": True,
                "compensation_fen": 0,
                "by": "R7001",
            },
            ["incident_handling|1"],
        ),
    ],
)
def test_the_event_that_meets_a_deadline_stops_its_clock(name, payload, stopped):
    ops = clocks.operations(event(name, payload))
    assert [op.clock_id for op in ops] == [f"{NUMBER}|{s}" for s in stopped]
    assert all(isinstance(op, clocks.Stop) for op in ops)


def test_a_resolution_stops_its_round_and_a_reopening_starts_the_next():
    resolved = clocks.operations(
        event(
            "case_resolved",
            {
                "spot": False,
                "decision": "upheld",
                "remedy_types": ["refund"],
                "total_fen": 3990,
                "round": 2,
                "category": None,
                "risk_level": "low",
                "department": "d",
                "owner_id": None,
                "channel": "desk",
                "by": "E3501",
            },
        )
    )
    assert [op.clock_id for op in resolved[:2]] == [f"{NUMBER}|first_response|1", f"{NUMBER}|resolution|2"]
    assert resolved[2] == clocks.StopAll(NUMBER, "promised", T0)  # a promise kept
    reopened = clocks.operations(
        event(
            "case_reopened",
            {"reason": "r", "round": 3, "by": "feedback", "resolution_due_at": iso(timedelta(hours=48))},
        )
    )
    assert [(op.clock_id, op.fields["due_at"]) for op in reopened] == [
        (f"{NUMBER}|resolution|3", T0 + timedelta(hours=48))
    ]
    # the handler keeps the new round (the store copies the first round's owner), not "feedback"
    assert reopened[0].fields["owner"] is None and reopened[0].fields["owner_kind"] is None


def test_an_objection_starts_a_re_review_that_the_next_answer_meets():
    escalated = clocks.operations(
        event(
            "case_escalated",
            {
                "reason": "objection",
                "from_role": "handler",
                "to_role": "supervisor",
                "to_staff_id": "E3011",
                "re_review_due_at": iso(timedelta(hours=2)),
                "by": "E3501",
            },
        )
    )
    assert [(op.clock, op.fields["due_at"], op.fields["owner"]) for op in escalated] == [
        ("re_review", T0 + timedelta(hours=2), "E3011")
    ]
    by_hand = clocks.operations(
        event(
            "case_escalated",
            {
                "reason": "manual",
                "from_role": "handler",
                "to_role": "supervisor",
                "to_staff_id": "E3011",
                "re_review_due_at": None,
                "by": "E3501",
            },
        )
    )
    assert by_hand == []
    answered = clocks.operations(
        event(
            "case_proposed",
            {
                "proposal_no": 2,
                "decision": "upheld",
                "remedy_types": [],
                "total_fen": 0,
                "statutory_total_fen": None,
                "demand_above_statutory": False,
                "oral": True,
                "appeal_stated": False,
                "level_role": "supervisor",
                "by": "E3011",
            },
        )
    )
    assert answered[1] == clocks.StopAll(NUMBER, "re_review", T0)


def test_events_without_a_deadline_touch_no_clock():
    assert (
        clocks.operations(
            event(
                "proposal_approved",
                {"proposal_no": 1, "approver_role": "handler", "total_fen": 0, "cap_override": False, "by": "E3501"},
            )
        )
        == []
    )


def test_a_correction_moves_the_deadlines_and_names_the_new_owner_as_triage_does():
    """R2.4, R5.5: a category corrected to another department goes to that department's
    handler in triage and the case; the handling clocks (and the per-handler SLA table) follow."""
    corrected = {
        **TRIAGED,
        "department": "procurement_qc",
        "owner_id": "E3101",
        "field": "category",
        "old": "service.attitude",
        "new": "product.quality_defect",
        "by": "E3011",
        "reason": "mouldy",
    }
    for key in ("received_at", "channel", "merchant_id"):
        corrected.pop(key)
    ops = clocks.operations(event("complaint_corrected", corrected))
    assert ops == [
        clocks.Move(f"{NUMBER}|first_response|1", T0 + timedelta(hours=48), "procurement_qc"),
        clocks.Move(f"{NUMBER}|resolution|1", T0 + timedelta(hours=168), "procurement_qc"),
        clocks.Reassign(NUMBER, "E3101", "procurement_qc"),
    ]
    unowned = clocks.operations(event("complaint_corrected", {**corrected, "owner_id": None}))
    assert [type(op) for op in unowned] == [clocks.Move, clocks.Move]


def test_an_internal_finding_is_not_the_first_response():
    """R2.3: CCTV or a supplier's word is the investigation, not a response to the customer."""
    assert clocks.operations(event("investigation_noted", {"finding_id": 1, "source": "cctv", "by": "E3501"})) == []


def test_a_closure_ends_every_clock_of_the_handling():
    assert clocks.operations(event("case_closed", {"reason": "r", "by": "E3011"})) == [clocks.Close(NUMBER, T0)]
    assert [clocks.ending(name) for name in ("first_response", "resolution")] == ["stop", "stop"]
    assert {
        clocks.ending(name) for name in ("acknowledgement", "review_meeting", "re_review", "execution", "promised")
    } == {"cancel"}
    assert clocks.ending("rectification") is None  # the mall's improvement outlives the case
    assert clocks.ending("revisit") is None  # feedback ends it: revisit_done or revisit_cancelled


def test_a_clock_started_after_its_end_was_applied_ends_then():
    """Events come on several queues: a closure or a resolution may be applied first."""
    promise = {"clock": "promised", "started_at": T0}
    ends = [
        ("case_resolved", T0 - timedelta(hours=1)),
        ("case_closed", T0 + timedelta(hours=5)),
        ("case_resolved", T0 + timedelta(hours=2)),
    ]
    assert clocks.late_end(promise, ends) == (T0 + timedelta(hours=2), False)
    assert clocks.late_end({"clock": "execution", "started_at": T0}, ends) == (T0 + timedelta(hours=5), True)
    assert clocks.late_end({"clock": "resolution", "started_at": T0}, ends) == (T0 + timedelta(hours=5), False)
    assert clocks.late_end({"clock": "resolution", "started_at": T0 + timedelta(hours=6)}, ends) is None
    assert clocks.late_end({"clock": "rectification", "started_at": T0}, ends) is None


def test_a_promised_time_stops_the_first_response_and_starts_its_own_clock():
    ops = clocks.operations(
        event(
            "time_promised",
            {"expected_by": iso(timedelta(hours=30)), "via": "phone", "beyond_deadline": False, "by": "E3501"},
        )
    )
    assert ops[0] == clocks.Stop(f"{NUMBER}|first_response|1", T0)
    assert isinstance(ops[1], clocks.Promise) and ops[1].start.clock == "promised"
    assert (ops[1].start.fields["due_at"], ops[1].start.fields["owner"]) == (T0 + timedelta(hours=30), "E3501")


def test_a_cancelled_revisit_cancels_its_clock():
    ops = clocks.operations(event("revisit_cancelled", {"revisit_id": f"{NUMBER}-R1", "reason": "case reopened"}))
    assert ops == [clocks.Stop(f"{NUMBER}|revisit|{NUMBER}-R1", T0, cancelled=True)]


@pytest.mark.parametrize(
    "clock,outcome",
    [
        ({"due_at": T0, "stopped_at": T0 - timedelta(hours=1), "cancelled": True}, "cancelled"),
        ({"due_at": T0, "stopped_at": T0 - timedelta(hours=1), "cancelled": False}, "met"),
        # cancelled an hour after the deadline passed: it was breached then, whether or not the sweep saw it
        ({"due_at": T0, "stopped_at": T0 + timedelta(hours=1), "cancelled": True}, "met_late"),
        ({"due_at": T0, "stopped_at": T0 + timedelta(hours=1), "cancelled": False}, "met_late"),
    ],
)
def test_a_clock_cancelled_in_time_is_neither_met_nor_late(clock, outcome):
    assert clocks.outcome(clock) == outcome


def test_at_risk_comes_at_the_share_of_the_allowed_time():
    assert clocks.at_risk_at(T0, T0 + timedelta(hours=10), 0.8) == T0 + timedelta(hours=8)
    assert clocks.at_risk_at(T0, T0 - timedelta(hours=1), 0.8) == T0  # a deadline before its start


@pytest.mark.parametrize(
    "stopped,result",
    [
        (None, None),
        (timedelta(hours=1), "met"),
        (timedelta(hours=2), "met"),
        (timedelta(hours=2, seconds=1), "met_late"),
    ],
)
def test_a_clock_ends_met_or_met_late(stopped, result):
    clock = {"due_at": T0 + timedelta(hours=2), "stopped_at": stopped and T0 + stopped}
    assert clocks.outcome(clock) == result
    assert clocks.outcome({"due_at": None, "stopped_at": T0}) is None  # its start has not arrived yet


def test_the_sla_events_follow_their_contract():
    clock = {
        "_id": f"{NUMBER}|resolution|1",
        "clock": "resolution",
        "mall_id": "sh-xujiahui",
        "complaint_no": NUMBER,
        "owner": "E3501",
        "department": "merchant_relations",
        "started_at": T0,
        "due_at": T0 + timedelta(hours=24),
        "at_risk_at": T0 + timedelta(hours=19, minutes=12),
    }
    risk = clocks.at_risk_event(clock, T0 + timedelta(hours=20))
    assert risk["event_type"] == "sla_at_risk" and risk["payload"]["at_risk_at"] == iso(timedelta(hours=19, minutes=12))
    late = clocks.breach_event(
        clock, {"category": "product.quality_defect", "risk_level": "low"}, T0 + timedelta(hours=24, seconds=3)
    )
    assert late["payload"]["lag_seconds"] == 3.0 and late["payload"]["category"] == "product.quality_defect"
    assert read_event(late, EVENT_TYPES["sla_breached"])["payload"]["due_at"] == T0 + timedelta(hours=24)


def test_a_reassignment_gives_the_running_handling_clocks_to_the_new_handler():
    ops = clocks.operations(
        event(
            "complaint_reassigned",
            {
                "from_owner_id": "E3501",
                "to_owner_id": "E3101",
                "department": "procurement_qc",
                "by": "E3901",
                "reason": "QC knows the supplier",
            },
        )
    )
    assert ops == [clocks.Reassign(NUMBER, "E3101", "procurement_qc")]
