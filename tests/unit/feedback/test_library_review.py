"""R7.14, seed 002: 每月更新客诉案例库 (the case library updated every month): each mall
reviews the cases it closed in the month gone that are worth a lesson (reopened, a
dissatisfied customer, the policy's risk levels) and not in the library yet, adding each
with its lessons or passing it over; a review not done is announced once from the
policy's day of the next month, a review done once, and the monthly report counts both.
Feedback's worker against the real store, resolution and access as worker_factory's mocks
(what resolution answers for each case is given), as in test_service_layer.py."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from analytics import reports
from analytics.service import AnalyticsService
from feedback import library_review
from feedback.service import FeedbackService
from mallcare_common.errors import Conflict
from tests.unit.analytics.test_reports import closed, registered, resolved

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
H = timedelta(hours=1)
SUPERVISOR = "E3011"


def number(n):
    return f"SHXJH-20261123-{n:04d}"


REOPENED, MEDIUM, UNHAPPY, HAPPY, HIGH, DECEMBER = (number(n) for n in range(1, 7))
CASES = {  # as resolution's get_case answers: round, risk level
    REOPENED: (2, "low"),
    MEDIUM: (1, "medium"),
    UNHAPPY: (1, "low"),
    HAPPY: (1, "low"),
    HIGH: (1, "high"),
    DECEMBER: (2, "low"),
}


def case(complaint_no):
    rounds, risk = CASES[complaint_no]
    return {
        "complaint_no": complaint_no,
        "mall_id": "sh-xujiahui",
        "category": "product.quality",
        "risk_level": risk,
        "channel": "desk",
        "round": rounds,
        "state": "closed",
        "resolution": {"summary": "换了一盒新鲜的草莓"},
        "timeline": [],
    }


@pytest.fixture
def feedback(service_worker):
    worker = service_worker(FeedbackService, T0)
    worker.resolution.get_case.side_effect = case
    worker.access.caller.return_value.user = SUPERVISOR
    return worker


def close_the_month(feedback):
    """Six cases of sh-xujiahui: five closed in November (Shanghai), one on 1 December."""
    for n in CASES:
        feedback.handle_complaint_registered(registered(n, T0))
    feedback.handle_case_resolved(resolved(UNHAPPY, T0 + H))
    feedback.record_attempt(f"{UNHAPPY}-R1", {"outcome": "reached", "score": 2, "reasons": ["slow"]})
    for n in (REOPENED, MEDIUM, UNHAPPY, HAPPY, HIGH):
        feedback.handle_case_closed(closed(n, T0 + 2 * H))
    # 00:30 on 1 December in Shanghai is still 30 November in UTC: the mall's month counts
    feedback.handle_case_closed(closed(DECEMBER, datetime(2026, 12, 1, 0, 30, tzinfo=SH).astimezone(timezone.utc)))


def review(feedback, month="2026-11"):
    return feedback.get_library_review(month, {"mall_id": "sh-xujiahui"})


def decide(feedback, complaint_no, decision, **more):
    body = {"mall_id": "sh-xujiahui", "complaint_no": complaint_no, "decision": decision, **more}
    return feedback.decide_library_candidate("2026-11", body)


def test_a_month_is_reviewed_once_each_candidate_added_or_passed_and_announced_once(feedback, service_worker):
    close_the_month(feedback)
    found = review(feedback)
    assert found["review_no"] == "SHXJH-LIB-2026-11" and found["undecided"] == 3
    assert {c["complaint_no"]: c["reasons"] for c in found["candidates"]} == {
        REOPENED: ["reopened"],
        MEDIUM: ["risk_medium"],
        UNHAPPY: ["dissatisfied"],
    }  # the satisfied low-risk case is no lesson; the high-risk one is in the library already
    assert [c["complaint_no"] for c in review(feedback, "2026-12")["candidates"]] == [DECEMBER]

    # November has not ended: its review is not announced (October's is) and cannot be done yet
    feedback.clock.at = datetime(2026, 11, 30, 23, 0, tzinfo=SH).astimezone(timezone.utc)
    feedback.remind_library_reviews()
    assert {e["payload"]["month"] for e in feedback.dispatch.events if e["event_type"] == "library_review_due"} == {
        "2026-10"
    }
    feedback.dispatch.events.clear()
    with pytest.raises(Conflict, match="2026-11 has not ended"):
        feedback.finish_library_review("2026-11", {"mall_id": "sh-xujiahui"})

    # from 1 December (the policy's day) the review of November is announced, once
    feedback.clock.at = datetime(2026, 12, 1, 9, 0, tzinfo=SH).astimezone(timezone.utc)
    for _ in range(2):
        feedback.remind_library_reviews()
    due = [e for e in feedback.dispatch.events if e["event_type"] == "library_review_due"]
    assert {(e["complaint_no"], e["payload"]["month"], e["payload"]["candidates"]) for e in due} == {
        ("SHXJH-LIB-2026-11", "2026-11", 3),
        ("BJCY-LIB-2026-11", "2026-11", 0),
        ("GZTH-LIB-2026-11", "2026-11", 0),
    }
    assert len(due) == 3

    with pytest.raises(ValidationError) as refused:
        decide(feedback, REOPENED, "add")
    assert "lessons" in refused.value.messages
    with pytest.raises(Conflict, match="not a candidate"):
        decide(feedback, HAPPY, "pass", reason="没有新的经验")
    lesson = "复开原因：第一次只换货未解释原因。经验：换货时说明原因并当场确认满意。"
    decide(feedback, REOPENED, "add", lessons=lesson)
    entry = feedback.store.library.find_one({"_id": REOPENED})
    assert (entry["lessons"], entry["automatic"], entry["archived_by"]) == (lesson, False, SUPERVISOR)
    decide(feedback, MEDIUM, "pass", reason="同类案例已入库")
    with pytest.raises(Conflict, match="1 candidates are not decided yet"):
        feedback.finish_library_review("2026-11", {"mall_id": "sh-xujiahui"})
    decide(feedback, UNHAPPY, "pass", reason="處理慢，已有同類案例")

    done = feedback.finish_library_review("2026-11", {"mall_id": "sh-xujiahui"})
    assert (done["undecided"], done["done_by"]) == (0, SUPERVISOR)
    assert [c["decision"]["decision"] for c in done["candidates"]] == ["add", "pass", "pass"]
    [reviewed] = [e for e in feedback.dispatch.events if e["event_type"] == "library_reviewed"]
    assert reviewed["payload"] == {"month": "2026-11", "candidates": 3, "added": 1, "passed": 2, "by": SUPERVISOR}
    with pytest.raises(Conflict, match="was done on"):
        feedback.finish_library_review("2026-11", {"mall_id": "sh-xujiahui"})
    with pytest.raises(Conflict, match="was done on"):
        decide(feedback, UNHAPPY, "add", lessons="again")
    feedback.remind_library_reviews()  # a review done is not announced again
    assert len([e for e in feedback.dispatch.events if e["event_type"].startswith("library_")]) == 4

    # analytics keeps what the events tell (one redelivered, in any order) and the report counts it
    told = [e for e in feedback.dispatch.events if e["event_type"].startswith("library_")]
    analytics = service_worker(AnalyticsService, feedback.clock())
    analytics.take_events([(e["event_type"], e) for e in [*reversed(told), told[0]]])
    counted = analytics._report("monthly", "2026-11", None)["library_reviews"]
    assert (counted["done"], counted["due"], counted["added"]) == (1, 2, 1)
    assert [(r["mall_id"], r["done"], r["candidates"]) for r in counted["items"]] == [
        ("bj-chaoyang", False, 0),
        ("gz-tianhe", False, 0),
        ("sh-xujiahui", True, 3),
    ]


def test_a_bad_month_or_mall_is_a_field_error(feedback):
    for month in ("2026-13", "0000-05", "9999-12"):  # not a month, or one the calendar cannot hold
        with pytest.raises(ValidationError) as refused:
            review(feedback, month)
        assert "month" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        feedback.get_library_review("2026-11", {"mall_id": "nowhere"})
    assert "mall_id" in refused.value.messages


def test_the_months_are_the_malls():
    assert library_review.month_of(datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc), SH) == "2026-12"
    assert library_review.month_span("2026-12", SH) == (
        datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc),
        datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc),
    )
    assert library_review.month_before("2027-01") == "2026-12"
    assert reports.months_of("2026-Q4") == ["2026-10", "2026-11", "2026-12"]


def test_a_case_closed_before_the_review_existed_is_a_candidate_once_resolution_tells_its_rest(feedback):
    """R7.14: closures kept before 2026-12-06 know only when; the review's look asks resolution
    for the rest, so that November's review lists them (one resolution cannot answer waits)."""
    feedback.handle_complaint_registered(registered(REOPENED, T0))
    feedback.store.closures.insert_one({"_id": REOPENED, "closed_at": T0 + 2 * H})  # as kept before
    feedback.store.closures.insert_one({"_id": HAPPY, "closed_at": T0 + 2 * H})
    answers = {REOPENED: case(REOPENED)}

    def get_case(number):
        if number not in answers:
            raise ConnectionError("resolution did not answer")
        return answers[number]

    feedback.resolution.get_case.side_effect = get_case
    assert review(feedback)["candidates"] == []
    feedback.clock.at = datetime(2026, 12, 1, 9, 0, tzinfo=SH).astimezone(timezone.utc)
    feedback.remind_library_reviews()
    assert [c["complaint_no"] for c in review(feedback)["candidates"]] == [REOPENED]
    assert feedback.store.closures.find_one({"_id": HAPPY}).get("mall_id") is None  # asked again next look
