"""R3.5, R4.1, R4.2, R6.1: resolution's event handlers and timers, one worker at a time
(nameko's worker_factory) against the real store: complaint_triaged opens the case once;
triage's and analytics' and feedback's events are applied once (the event id is the
request id), an event the case's state does not allow is noted, not retried; an event
for a case not opened yet, or for one that another writer keeps changing, is retried;
a case whose customer could not be reached closes by rule once; an event the broker
did not take waits in the outbox for the relay. What resolution publishes is read as
its subscribers read it (tests/unit/conftest.Published)."""

from datetime import timedelta

import pytest

from mallcare_common.contracts import InvalidEvent
from mallcare_common.unit_of_work import ATTEMPTS
from resolution import service as resolution_service
from resolution.service import CaseNotOpenYet, ResolutionService
from tests.unit.analytics.test_reports import answer, event, triaged
from tests.unit.conftest import AnotherWriter, relay_after_outage
from tests.unit.resolution.conftest import MONDAY_15

H = timedelta(hours=1)
NUMBER = "SHXJH-20261123-0042"


@pytest.fixture
def resolution(service_worker, monkeypatch):
    monkeypatch.setattr(resolution_service, "NOT_OPEN_PAUSE", 0)  # the retry's pause is the queue's business
    return service_worker(ResolutionService, MONDAY_15 + H)


def case(resolution):
    return resolution.store.cases.find_one({"_id": NUMBER})


def actions(found):
    return [entry["action"] for entry in found["timeline"]]


def reassigned(at):
    return event(
        "complaint_reassigned",
        NUMBER,
        {
            "from_owner_id": "E3501",
            "to_owner_id": "E3101",
            "department": "procurement_qc",
            "by": "E3901",
            "reason": "QC",
        },
        at,
    )


def breached(clock):
    return event(
        "sla_breached",
        NUMBER,
        {
            "clock_id": f"{NUMBER}|{clock}|1",
            "clock": clock,
            "owner": "E3501",
            "department": "merchant_relations",
            "started_at": MONDAY_15.isoformat(),
            "due_at": (MONDAY_15 + H).isoformat(),
            "category": None,
            "risk_level": "low",
            "lag_seconds": 1.0,
        },
        MONDAY_15 + H,
    )


def test_a_triaged_complaint_opens_one_case_and_its_redelivery_changes_nothing(resolution):
    triage = triaged(NUMBER, MONDAY_15, "product.quality_defect")
    resolution.handle_complaint_triaged(triage)

    [opened] = resolution.dispatch.events
    assert (opened["event_type"], opened["complaint_no"]) == ("case_opened", NUMBER)
    assert (opened["payload"]["owner_id"], opened["payload"]["department"]) == ("E3501", "merchant_relations")
    stored = case(resolution)
    assert (stored["state"], stored["owner_id"], stored.get("pending_events")) == ("open", "E3501", None)

    resolution.clock.move(minutes=5)
    resolution.handle_complaint_triaged(triage)  # at-least-once delivery brings it again
    assert resolution.dispatch.events == [opened]
    assert case(resolution) == stored


def test_a_complaint_triaged_for_a_mall_resolution_does_not_know_breaks_its_contract(resolution):
    with pytest.raises(InvalidEvent, match="unknown mall xx-nowhere"):
        resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect", mall="xx-nowhere"))
    assert case(resolution) is None and resolution.dispatch.events == []


def test_a_reassignment_is_applied_once(resolution):
    resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect"))
    reassignment = reassigned(MONDAY_15 + H / 2)
    resolution.handle_complaint_reassigned(reassignment)
    resolution.handle_complaint_reassigned(reassignment)

    found = case(resolution)
    assert (found["owner_id"], found["department"]) == ("E3101", "procurement_qc")
    assert actions(found) == ["opened", "reassigned"]
    assert found["request_ids"][-1] == reassignment["event_id"]


def test_a_reassignment_that_overtakes_its_triage_is_retried(resolution):
    with pytest.raises(CaseNotOpenYet, match=NUMBER):
        resolution.handle_complaint_reassigned(reassigned(MONDAY_15 + H / 2))
    assert case(resolution) is None and resolution.dispatch.events == []


def test_an_event_the_case_does_not_allow_is_noted_once_and_not_retried(resolution):
    resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect"))
    satisfied = answer(NUMBER, MONDAY_15 + H, satisfied=True)  # the case is open, not resolved
    resolution.handle_customer_satisfied(satisfied)
    resolution.handle_customer_satisfied(satisfied)

    found = case(resolution)
    assert found["state"] == "open" and actions(found) == ["opened", "event_not_applied"]
    assert found["timeline"][-1]["detail"]["event_id"] == satisfied["event_id"]
    assert resolution.dispatch.types() == ["case_opened"]


def test_a_breach_escalates_the_case_once(resolution):
    resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect"))
    resolution.handle_sla_breached(breached("revisit"))  # watched on dashboards; nothing moves up
    breach = breached("first_response")
    resolution.handle_sla_breached(breach)
    resolution.handle_sla_breached(breach)

    assert resolution.dispatch.types() == ["case_opened", "case_escalated"]
    escalated = resolution.dispatch.events[1]["payload"]
    assert (escalated["reason"], escalated["from_role"], escalated["to_role"]) == ("breach", "handler", "supervisor")
    found = case(resolution)
    assert found["level"] == "supervisor" and actions(found).count("escalated") == 1


def test_an_event_for_a_case_another_writer_keeps_changing_is_retried(resolution):
    resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect"))
    resolution.store.cases = contended = AnotherWriter(resolution.store.cases)
    with pytest.raises(CaseNotOpenYet, match=f"{NUMBER} kept changing"):
        resolution.handle_complaint_reassigned(reassigned(MONDAY_15 + H / 2))

    assert contended.reads == ATTEMPTS  # the decision was taken again on each new version
    found = case(resolution)
    assert (found["owner_id"], found["version"], actions(found)) == ("E3501", ATTEMPTS, ["opened"])


def test_an_event_whose_write_lost_a_race_is_applied_on_what_the_winner_wrote(resolution):
    resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect"))
    resolution.store.cases = contended = AnotherWriter(resolution.store.cases, times=2)
    resolution.handle_complaint_reassigned(reassigned(MONDAY_15 + H / 2))

    assert contended.reads == 4  # decided on the third, then the write read back
    found = case(resolution)
    assert (found["owner_id"], found["version"], actions(found)) == ("E3101", 3, ["opened", "reassigned"])


def test_a_case_whose_customer_cannot_be_reached_closes_by_rule_once(resolution, proposed_case):
    driver = proposed_case()
    driver.reply(), driver.accept(), driver.carry_out(), driver.resolve()
    resolution.store.cases.insert_one({**driver.case, "pending_events": []})  # its events went out long ago
    resolution.handle_revisit_done(
        event(
            "revisit_done",
            NUMBER,
            {
                "revisit_id": f"{NUMBER}-R1",
                "outcome": "unreachable",
                "attempts": 3,
                "score": None,
                "within_deadline": True,
                "by": "E3002",
            },
            MONDAY_15 + H,
        )
    )
    close_at = case(resolution)["closure_by_rule"]["close_at"]

    resolution.clock.at = close_at - timedelta(seconds=1)
    resolution.close_unreachable()
    assert resolution.dispatch.events == [] and case(resolution)["state"] == "resolved"

    resolution.clock.at = close_at
    resolution.close_unreachable()
    resolution.clock.move(minutes=1)
    resolution.close_unreachable()
    [closed] = resolution.dispatch.events
    assert (closed["event_type"], closed["payload"]["without_answer"], closed["payload"]["by"]) == (
        "case_closed",
        True,
        "resolution",
    )
    found = case(resolution)
    assert found["state"] == "closed" and found["closure_by_rule"] is None and "pending_events" not in found


def test_an_event_the_broker_did_not_take_waits_in_the_outbox_for_the_relay(resolution):
    resolution.dispatch.broker_down = True
    resolution.handle_complaint_triaged(triaged(NUMBER, MONDAY_15, "product.quality_defect"))
    [pending] = case(resolution)["pending_events"]  # the case is open all the same

    # a fresh event is left to the worker that wrote it a moment ago; then published once
    assert relay_after_outage(resolution) == ([], [("case_opened", pending)])
    assert "pending_events" not in case(resolution)
