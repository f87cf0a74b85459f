"""Issue 7 (retention), R6.1: intake's event handlers, one worker at a time (nameko's
worker_factory) against the real store. A complaint learns when its case closed and
reopened (retention counts from the closing), once, whatever order the events arrive
in; a write that another writer keeps overtaking is decided again on what they wrote,
and gives up with Conflict (the event is retried) when it keeps losing. The complaint
is stored as registering left it (intake.rules.new_complaint, its event published)."""

from datetime import datetime, timedelta, timezone

import pytest

from intake import rules
from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.errors import Conflict
from mallcare_common.mongo import NotFound
from mallcare_common.unit_of_work import ATTEMPTS
from tests.unit.analytics.test_reports import closed, reopened
from tests.unit.conftest import AnotherWriter

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
H = timedelta(hours=1)
NUMBER = "SHXJH-20261123-0042"


@pytest.fixture
def intake(service_worker):
    worker = service_worker(IntakeService, T0 + 3 * H)
    doc, _ = rules.new_complaint(
        NUMBER,
        {**desk_complaint(), "received_at": T0},
        policy=worker.policy.current,
        ref="r",
        fp=None,
        rejection=None,
        now=T0,
    )
    worker.store.insert({**doc, "outbox": [], "pending_events": []})
    return worker


def complaint(intake):
    return intake.store.get(NUMBER)


def test_a_closed_case_starts_the_retention_period_once(intake):
    closing = closed(NUMBER, T0 + H)
    intake.handle_case_closed(closing)
    first = complaint(intake)
    assert (first["case_state"], first["closed_at"]) == ("closed", T0 + H)

    intake.clock.move(minutes=5)
    intake.handle_case_closed(closing)  # at-least-once delivery brings it again
    assert complaint(intake) == first
    assert intake.dispatch.events == []  # the case's state is intake's own record: nothing to announce


def test_the_later_of_a_closing_and_a_reopening_wins_whichever_arrives_last(intake):
    intake.handle_case_reopened(reopened(NUMBER, T0 + 2 * H))
    intake.handle_case_closed(closed(NUMBER, T0 + H))  # overtaken on its queue by the reopening

    found = complaint(intake)
    assert (found["case_state"], found["case_state_at"], found["closed_at"]) == ("reopened", T0 + 2 * H, None)
    assert found["version"] == 1


def test_a_case_event_for_a_complaint_intake_never_had_is_not_found(intake):
    with pytest.raises(NotFound, match="^no complaint SHXJH-20261123-0099$"):
        intake.handle_case_closed(closed("SHXJH-20261123-0099", T0))


def test_a_write_that_keeps_losing_to_another_writer_gives_up_with_conflict(intake):
    intake.store.complaints = contended = AnotherWriter(intake.store.complaints)
    with pytest.raises(Conflict, match=f"^{NUMBER} kept changing while case_closed was applied$"):
        intake.handle_case_closed(closed(NUMBER, T0 + H))

    assert contended.reads == ATTEMPTS  # decided again on each version the other writer left
    found = complaint(intake)
    assert found.get("case_state") is None and found["version"] == ATTEMPTS


def test_a_write_that_lost_a_race_is_applied_on_what_the_winner_wrote(intake):
    intake.store.complaints = contended = AnotherWriter(intake.store.complaints, times=2)
    intake.handle_case_closed(closed(NUMBER, T0 + H))

    assert contended.reads == 4  # decided on the third, then the write read back
    found = complaint(intake)
    assert (found["case_state"], found["closed_at"], found["version"]) == ("closed", T0 + H, 3)
