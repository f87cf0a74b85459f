"""R2.1, R2.4, R2.5, R6.1: triage's event handlers and its owner sweep, one worker at a
time (nameko's worker_factory) against the real store: a registered complaint is
assessed once, and a redelivered event changes nothing; the assessment closes and
reopens with its case, the later of the two winning whichever arrives last; the review
meeting's decision is taken once; a complaint that came in while nobody of its
department was on shift gets an owner when someone is. What triage publishes is read
as its subscribers read it (tests/unit/conftest.Published)."""

from datetime import datetime, timedelta, timezone

import pytest

from mallcare_common.contracts import InvalidEvent
from tests.unit.analytics.test_reports import closed, event, registered, reopened
from tests.unit.conftest import AnotherWriter
from triage.service import TriageService

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai: the day shift works
H = timedelta(hours=1)
NUMBER = "SHXJH-20261123-0042"


@pytest.fixture
def triage(service_worker):
    return service_worker(TriageService, T0)


def assessment(triage):
    return triage.store.assessments.find_one({"_id": NUMBER}, {"outbox": 0})


def test_a_registered_complaint_is_assessed_once_and_its_redelivery_changes_nothing(triage):
    registration = registered(NUMBER, T0)
    triage.handle_complaint_registered(registration)

    [triaged] = triage.dispatch.events
    assert (triaged["event_type"], triaged["complaint_no"]) == ("complaint_triaged", NUMBER)
    assert (triaged["payload"]["category"], triaged["payload"]["owner_id"]) == ("product.quality_defect", "E3501")
    stored = assessment(triage)
    assert (stored["status"], stored["owner"]["id"], stored["registered_event_id"]) == (
        "open",
        "E3501",
        registration["event_id"],
    )

    triage.clock.move(minutes=5)
    triage.handle_complaint_registered(registration)  # at-least-once delivery brings it again
    assert triage.dispatch.events == [triaged]
    assert assessment(triage) == stored
    assert triage.store.open_load("sh-xujiahui") == {"E3501": 1}  # counted once


def test_a_complaint_at_a_mall_triage_does_not_know_breaks_its_contract(triage):
    with pytest.raises(InvalidEvent, match="unknown mall xx-nowhere"):
        triage.handle_complaint_registered(registered(NUMBER, T0, mall="xx-nowhere"))
    assert assessment(triage) is None and triage.dispatch.events == []


def test_the_assessment_follows_its_case_and_the_later_change_wins_whatever_arrives_last(triage):
    triage.handle_complaint_registered(registered(NUMBER, T0))
    closing, reopening = closed(NUMBER, T0 + 2 * H), reopened(NUMBER, T0 + 3 * H)

    triage.handle_case_closed(closing)
    assert assessment(triage)["status"] == "closed" and triage.store.open_load("sh-xujiahui") == {"E3501": 0}
    triage.handle_case_reopened(reopening)
    triage.handle_case_closed(closing)  # redelivered, or overtaken on its queue: older than the reopening
    triage.handle_case_reopened(reopening)

    found = assessment(triage)
    assert (found["status"], found["status_at"]) == ("open", T0 + 3 * H)
    assert [entry["action"] for entry in found["history"]] == ["triaged", "case_closed", "case_reopened"]
    assert triage.store.open_load("sh-xujiahui") == {"E3501": 1}
    assert triage.dispatch.types() == ["complaint_triaged"]  # following the case announces nothing


def test_a_case_event_for_a_complaint_triage_never_assessed_breaks_its_contract(triage):
    with pytest.raises(InvalidEvent, match=f"no assessment {NUMBER}"):
        triage.handle_case_closed(closed(NUMBER, T0 + H))


def test_the_review_meetings_decision_is_taken_once(triage):
    triage.handle_complaint_registered(registered(NUMBER, T0))
    decided = event(
        "review_meeting_decided",
        NUMBER,
        {
            "responsible_department": "procurement_qc",
            "owner_id": "E3101",
            "departments_involved": ["merchant_relations", "procurement_qc"],
            "due_at": (T0 + 24 * H).isoformat(),
            "within_deadline": True,
            "by": "E3901",
        },
        T0 + H,
    )
    triage.handle_review_meeting_decided(decided)
    triage.handle_review_meeting_decided(decided)

    assert triage.dispatch.types() == ["complaint_triaged", "complaint_reassigned"]
    reassigned = triage.dispatch.events[1]["payload"]
    assert (reassigned["from_owner_id"], reassigned["to_owner_id"], reassigned["department"], reassigned["by"]) == (
        "E3501",
        "E3101",
        "procurement_qc",
        "E3901",
    )
    found = assessment(triage)
    assert (found["department"], found["owner"]["id"]) == ("procurement_qc", "E3101")
    assert triage.store.open_load("sh-xujiahui") == {"E3501": 0, "E3101": 1}


def test_a_complaint_taken_while_nobody_is_on_shift_gets_one_owner_when_someone_is(triage):
    night = T0 + 13 * H  # 23:00 in Shanghai; finance works 09:00-18:00
    registration = registered(NUMBER, night)
    registration["payload"]["description"] = "退款一周了还没到账"  # a payment problem: finance's
    triage.clock.at = night
    triage.handle_complaint_registered(registration)
    assert assessment(triage)["owner"] is None

    kept = triage.store.assessments
    triage.store.assessments = counted = AnotherWriter(kept, times=0)  # counts the reads of one assessment
    triage.assign_unowned()
    assert counted.reads == 0, "nobody can take it at night: the sweep reads it no further"
    assert assessment(triage)["owner"] is None and triage.dispatch.types() == ["complaint_triaged"]

    triage.clock.at = night + 10 * H  # 09:00 the next day
    before = counted.reads
    triage.assign_unowned()
    assert counted.reads - before == 2  # read again, taken with a compare-and-set, read back
    triage.store.assessments = kept
    triage.clock.move(minutes=1)
    triage.assign_unowned()
    assert triage.dispatch.types() == ["complaint_triaged", "complaint_reassigned"]
    reassigned = triage.dispatch.events[1]["payload"]
    assert (reassigned["from_owner_id"], reassigned["to_owner_id"], reassigned["by"]) == (None, "E3301", "triage")
    assert assessment(triage)["owner"] == {"id": "E3301", "name": "赵敏"}
    assert triage.store.open_load("sh-xujiahui") == {"E3301": 1}
