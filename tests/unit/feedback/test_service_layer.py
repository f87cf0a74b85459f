"""R4.1, R4.4, R6.1: feedback's event handlers and timers, one worker at a time
(nameko's worker_factory) against the real store: one revisit per resolution, and a
redelivered event changes nothing; a resolution of a complaint feedback has not seen
asks intake for it, and is retried when intake cannot give it; a closed or reopened case
cancels its open revisit once; a revisit past its deadline is reported once; an event
the broker did not take waits in the outbox for the relay. The other services are
worker_factory's mocks (what feedback asks them is asserted); what feedback publishes
is read as its subscribers read it (tests/unit/conftest.Published)."""

from datetime import datetime, timedelta, timezone

import pytest
from nameko.exceptions import RemoteError

from feedback import service as feedback_service
from feedback.service import ComplaintNotSeenYet, FeedbackService
from tests.unit.analytics.test_reports import closed, registered, reopened, resolved
from tests.unit.conftest import relay_after_outage

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
H = timedelta(hours=1)
NUMBER = "SHXJH-20261123-0042"
R1 = f"{NUMBER}-R1"


@pytest.fixture
def feedback(service_worker, monkeypatch):
    """A feedback worker; intake and resolution are worker_factory's mocks."""
    monkeypatch.setattr(feedback_service, "NOT_SEEN_PAUSE", 0)  # the retry's pause is the queue's business
    return service_worker(FeedbackService, T0 + H)


def revisit(feedback, revisit_id=R1):
    return feedback.store.revisits.find_one({"_id": revisit_id})


def test_a_resolution_schedules_one_revisit_and_its_redelivery_changes_nothing(feedback):
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    resolution = resolved(NUMBER, T0 + H)
    feedback.handle_case_resolved(resolution)

    [scheduled] = feedback.dispatch.events
    assert (scheduled["event_type"], scheduled["complaint_no"]) == ("revisit_scheduled", NUMBER)
    assert (scheduled["payload"]["revisit_id"], scheduled["payload"]["way"]) == (R1, "phone_call")
    stored = revisit(feedback)
    assert (stored["status"], stored["contact_masked"], stored.get("pending_events")) == (
        "scheduled",
        "138****5678",
        None,
    )
    assert datetime.fromisoformat(scheduled["payload"]["due_at"]) == stored["due_at"] <= T0 + 25 * H

    feedback.clock.move(minutes=5)
    feedback.handle_case_resolved(resolution)  # at-least-once delivery brings it again
    assert feedback.dispatch.events == [scheduled]
    assert revisit(feedback) == stored
    feedback.intake.get_complaint.assert_not_called()

    feedback.handle_case_resolved(resolved(NUMBER, T0 + 3 * H, round_=2))  # the next round's resolution
    assert feedback.dispatch.types() == ["revisit_scheduled", "revisit_scheduled"]
    assert [r["_id"] for r in feedback.store.revisits.find({"complaint_no": NUMBER})] == [R1, f"{NUMBER}-R2"]


def test_a_resolution_of_a_complaint_not_seen_yet_is_retried_when_intake_cannot_give_it(feedback):
    feedback.intake.get_complaint.side_effect = RemoteError("NotFound", f"no complaint {NUMBER}")
    with pytest.raises(ComplaintNotSeenYet, match=NUMBER):
        feedback.handle_case_resolved(resolved(NUMBER, T0 + H))
    feedback.intake.get_complaint.assert_called_once_with(NUMBER)
    assert feedback.dispatch.events == []
    assert revisit(feedback) is None and feedback.store.complaint(NUMBER) is None


def test_a_resolution_of_a_complaint_not_seen_yet_takes_it_from_intake_once(feedback):
    feedback.intake.get_complaint.return_value = {  # as intake's get_complaint answers: masked
        "number": NUMBER,
        "mall_id": "sh-xujiahui",
        "channel": "wechat",
        "customer": {"contact_masked": "139****0000"},
        "description": "草莓发霉，会员卡 M00123",
        "demands": {"fact": "mouldy", "expectation": "refund"},
        "location": {"area": "B1 fresh food", "merchant_id": "T-17"},
    }
    feedback.handle_case_resolved(resolved(NUMBER, T0 + H))

    feedback.intake.get_complaint.assert_called_once_with(NUMBER)
    kept = feedback.store.complaint(NUMBER)
    assert (kept["channel"], kept["contact_masked"], kept["merchant_id"]) == ("wechat", "139****0000", "T-17")
    assert "M00123" not in kept["description"]  # kept as complaint_registered would carry it: scrubbed
    assert feedback.dispatch.types() == ["revisit_scheduled"] and revisit(feedback)["status"] == "scheduled"

    feedback.handle_case_resolved(resolved(NUMBER, T0 + 3 * H, round_=2))
    feedback.intake.get_complaint.assert_called_once()  # known now
    assert feedback.dispatch.types() == ["revisit_scheduled", "revisit_scheduled"]


def test_a_resolution_that_arrives_after_its_case_was_closed_asks_nobody(feedback):
    feedback.resolution.get_case.return_value = {"complaint_no": NUMBER, "risk_level": "low"}
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    feedback.handle_case_closed(closed(NUMBER, T0 + 2 * H))
    feedback.resolution.get_case.assert_called_once_with(NUMBER)  # whether to archive it (R4.4)

    feedback.handle_case_resolved(resolved(NUMBER, T0 + H))
    assert revisit(feedback) is None and feedback.dispatch.events == []
    feedback.intake.get_complaint.assert_not_called()


def test_a_closed_case_cancels_its_open_revisit_once_and_a_low_risk_case_is_not_archived(feedback):
    feedback.resolution.get_case.return_value = {"complaint_no": NUMBER, "risk_level": "low"}
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    feedback.handle_case_resolved(resolved(NUMBER, T0 + H))
    closing = closed(NUMBER, T0 + 2 * H)
    feedback.handle_case_closed(closing)

    assert feedback.dispatch.types() == ["revisit_scheduled", "revisit_cancelled"]
    cancelled = feedback.dispatch.events[1]
    assert cancelled["payload"] == {"revisit_id": R1, "reason": "case closed"}
    assert cancelled["occurred_at"] == closing["occurred_at"]  # when the case closed, not when feedback heard
    assert revisit(feedback)["status"] == "cancelled"

    feedback.handle_case_closed(closing)
    assert feedback.dispatch.types() == ["revisit_scheduled", "revisit_cancelled"]
    assert feedback.store.library.count_documents({}) == 0


def test_a_closed_high_risk_case_goes_into_the_library_once(feedback):
    feedback.resolution.get_case.return_value = {  # as resolution's get_case answers (CaseOut)
        "complaint_no": NUMBER,
        "mall_id": "sh-xujiahui",
        "category": "product.food_safety",
        "risk_level": "high",
        "channel": "desk",
        "round": 1,
        "state": "closed",
        "resolution": {"summary": "paid ten times the price"},
        "timeline": [
            {
                "seq": 1,
                "at": T0.isoformat(),
                "by": "triage",
                "role": "service",
                "action": "opened",
                "state": "open",
                "detail": {},
            }
        ],
    }
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    closing = closed(NUMBER, T0 + 2 * H)
    feedback.handle_case_closed(closing)

    [archived] = feedback.dispatch.events
    assert archived["event_type"] == "case_archived"
    assert archived["payload"] == {
        "category": "product.food_safety",
        "risk_level": "high",
        "automatic": True,
        "by": "feedback",
    }
    entry = feedback.store.library.find_one({"_id": NUMBER})
    assert (entry["outcome"], entry["lessons_pending"], entry["area"]) == (
        "paid ten times the price",
        True,
        "fresh produce",
    )

    feedback.handle_case_closed(closing)
    assert feedback.dispatch.events == [archived]
    assert feedback.store.library.find_one({"_id": NUMBER}) == entry


def test_a_reopened_case_cancels_its_open_revisit_once(feedback):
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    feedback.handle_case_resolved(resolved(NUMBER, T0 + H))
    reopening = reopened(NUMBER, T0 + 2 * H)
    feedback.handle_case_reopened(reopening)
    feedback.handle_case_reopened(reopening)

    assert feedback.dispatch.types() == ["revisit_scheduled", "revisit_cancelled"]
    assert feedback.dispatch.events[1]["payload"] == {"revisit_id": R1, "reason": "case reopened"}
    assert revisit(feedback)["cancelled"] == {"at": T0 + 2 * H, "reason": "case reopened"}


def test_a_revisit_past_its_deadline_is_reported_once(feedback):
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    feedback.handle_case_resolved(resolved(NUMBER, T0 + H))
    due_at = revisit(feedback)["due_at"]

    feedback.clock.at = due_at
    feedback.report_overdue()
    assert feedback.dispatch.types() == ["revisit_scheduled"]  # due now, not past it

    feedback.clock.move(minutes=1)
    feedback.report_overdue()
    feedback.clock.move(minutes=1)
    feedback.report_overdue()
    assert feedback.dispatch.types() == ["revisit_scheduled", "revisit_overdue"]
    assert feedback.dispatch.events[1]["payload"] == {"revisit_id": R1, "due_at": due_at.isoformat()}
    assert revisit(feedback)["overdue_reported"] is True


def test_an_event_the_broker_did_not_take_waits_in_the_outbox_for_the_relay(feedback):
    feedback.handle_complaint_registered(registered(NUMBER, T0))
    feedback.dispatch.broker_down = True
    feedback.handle_case_resolved(resolved(NUMBER, T0 + H))  # the revisit is stored all the same
    [pending] = revisit(feedback)["pending_events"]

    # a fresh event is left to the worker that wrote it a moment ago; then published once
    assert relay_after_outage(feedback) == ([], [("revisit_scheduled", pending)])
    stored = revisit(feedback)
    assert "pending_events" not in stored and stored["outbox"][0]["sent_at"] == feedback.clock()
