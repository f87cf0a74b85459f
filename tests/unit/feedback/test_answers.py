"""R4.1-R4.3: the customer's answer is recorded; a score of 4-5 (satisfied_from) is
satisfied and closes the case, anything lower is dissatisfied with its reasons and
reopens it (R4.2); reasons are the policy's tags. An unanswered call is retried 3 h
later outside quiet hours until the last attempt makes the customer unreachable (a
wrong number at once); a finished revisit takes no more answers; a revisit past its
24 h is reported once; every change is written with its events in the outbox."""

from datetime import datetime, timedelta

import pytest
from marshmallow import ValidationError

from feedback import rules
from feedback.schemas import AttemptIn
from mallcare_common.contracts import feedback as events
from mallcare_common.errors import Conflict
from mallcare_common.unit_of_work import with_outbox

from .conftest import MONDAY_10, SH, assert_valid, local, sh

ASKED = MONDAY_10 + timedelta(hours=2)  # 12:00 in Shanghai, when the call is scheduled
CALLER = "E3002"


@pytest.fixture
def revisit(make_revisit):
    return make_revisit()


def answered(revisit, policy, score, reasons=(), by=CALLER, now=ASKED, **extra):
    return rules.answer(revisit, {"score": score, "reasons": list(reasons), **extra}, by, policy, now)


def apply(revisit, changes):
    return {**revisit, **changes}


# --- the answer (R4.2, R4.3) -----------------------------------------------------------------------


def test_satisfied_from_is_4_in_the_shipped_policy(policy):
    assert policy.rules["satisfied_from"] == 4
    assert [rules.satisfied(s, policy) for s in (1, 2, 3, 4, 5)] == [False, False, False, True, True]


@pytest.mark.parametrize("score", [4, 5])
def test_a_score_of_4_or_5_is_a_satisfied_customer(policy, revisit, score):
    changes, out = answered(revisit, policy, score, comment="很快")
    assert changes["status"] == "answered"
    assert changes["answer"] == {
        "at": ASKED,
        "by": CALLER,
        "score": score,
        "satisfied": True,
        "reasons": [],
        "comment": "很快",
        "via": "staff",
    }
    assert changes["attempts"] == [{"at": ASKED, "by": CALLER, "outcome": "reached"}]
    done, satisfied = out
    assert assert_valid(done, events.REVISIT_DONE)["payload"] == {
        "revisit_id": revisit["_id"],
        "outcome": "answered",
        "attempts": 1,
        "score": score,
        "within_deadline": True,
        "by": CALLER,
    }
    assert assert_valid(satisfied, events.CUSTOMER_SATISFIED)["payload"] == {
        "revisit_id": revisit["_id"],
        "score": score,
        "by": CALLER,
    }
    assert {e["complaint_no"] for e in out} == {"SHXJH-20261123-0042"}
    assert {e["mall_id"] for e in out} == {"sh-xujiahui"}


@pytest.mark.parametrize("score", [3, 2, 1])
def test_a_score_below_4_is_a_dissatisfied_customer_with_reasons(policy, revisit, score):
    changes, out = answered(revisit, policy, score, reasons=["slow", "compensation_unclear"], comment="退款两天才到")
    assert changes["status"] == "answered"
    assert changes["answer"]["satisfied"] is False and changes["answer"]["score"] == score
    assert changes["answer"]["reasons"] == ["slow", "compensation_unclear"]
    assert [e["event_type"] for e in out] == ["revisit_done", "customer_dissatisfied"]
    assert assert_valid(out[1], events.CUSTOMER_DISSATISFIED)["payload"] == {
        "revisit_id": revisit["_id"],
        "score": score,
        "by": CALLER,
        "reasons": ["slow", "compensation_unclear"],
    }
    assert assert_valid(out[0], events.REVISIT_DONE)["payload"]["outcome"] == "answered"


def test_no_customer_satisfied_event_for_a_dissatisfied_one_and_vice_versa(policy, revisit):
    _, low = answered(revisit, policy, 3)
    _, high = answered(revisit, policy, 4)
    assert "customer_satisfied" not in [e["event_type"] for e in low]
    assert "customer_dissatisfied" not in [e["event_type"] for e in high]


def test_a_dissatisfied_customer_without_reasons_is_still_dissatisfied(policy, revisit):
    _, out = answered(revisit, policy, 2)
    assert assert_valid(out[1], events.CUSTOMER_DISSATISFIED)["payload"]["reasons"] == []


def test_an_answer_through_the_link_is_the_customers(policy, make_revisit):
    revisit = make_revisit(channel="app", contact=None)
    changes, out = rules.answer(revisit, {"score": 5, "via": "link"}, "customer", policy, ASKED)
    assert (changes["answer"]["by"], changes["answer"]["via"]) == ("customer", "link")
    assert assert_valid(out[1], events.CUSTOMER_SATISFIED)["payload"]["by"] == "customer"


def test_an_answer_after_unanswered_calls_counts_every_attempt(policy, revisit):
    changes, _ = rules.no_answer(revisit, {"outcome": "no_answer"}, CALLER, policy, ASKED)
    retried = apply(revisit, changes)
    changes, out = answered(retried, policy, 4, now=changes["scheduled_at"])
    assert [a["outcome"] for a in changes["attempts"]] == ["no_answer", "reached"]
    assert assert_valid(out[0], events.REVISIT_DONE)["payload"]["attempts"] == 2


def test_an_answer_after_the_deadline_is_recorded_as_late(policy, revisit):
    _, out = answered(revisit, policy, 5, now=revisit["due_at"] + timedelta(minutes=1))
    assert assert_valid(out[0], events.REVISIT_DONE)["payload"]["within_deadline"] is False
    _, on_time = answered(revisit, policy, 5, now=revisit["due_at"])
    assert on_time[0]["payload"]["within_deadline"] is True


def test_an_unknown_reason_tag_is_refused_naming_reasons(policy, revisit):
    with pytest.raises(ValidationError) as refused:
        answered(revisit, policy, 2, reasons=["slow", "rude_cashier", "meh"])
    assert set(refused.value.messages) == {"reasons"}
    [message] = refused.value.messages["reasons"]
    assert message.startswith("Unknown reason tag: meh, rude_cashier;")  # only the unknown ones
    assert "compensation_unclear" in message.split("known:")[1]  # and the tags to choose from


@pytest.mark.parametrize("status", ["answered", "unreachable", "cancelled"])
def test_a_finished_revisit_takes_no_answer_and_no_more_attempts(policy, revisit, status):
    finished = {**revisit, "status": status}
    if status != "unreachable":  # the unreachable customer may still answer: see below
        with pytest.raises(Conflict, match=status):
            answered(finished, policy, 5)
    for outcome in ("no_answer", "wrong_number"):
        with pytest.raises(Conflict, match=status):
            rules.no_answer(finished, {"outcome": outcome}, CALLER, policy, ASKED)


@pytest.mark.parametrize("score,event", [(5, "customer_satisfied"), (2, "customer_dissatisfied")])
def test_an_unreachable_customer_who_answers_later_is_heard(policy, revisit, score, event):
    """Issue 16 finding 7: until resolution closes the case without an answer, a call back
    (or the link) still counts; the revisit had ended, so it announces no second end."""
    late = {**revisit, "status": "unreachable"}
    changes, out = answered(late, policy, score)
    assert changes["status"] == "answered" and changes["answer"]["score"] == score
    assert [e["event_type"] for e in out] == [event]


def test_a_revisit_with_no_way_to_ask_cannot_be_answered(policy, make_revisit):
    with pytest.raises(Conflict):
        answered(make_revisit(contact=None), policy, 5)


# --- no answer, retries, unreachable ---------------------------------------------------------------


def test_no_answer_is_retried_3h_later(policy, revisit):
    changes, out = rules.no_answer(revisit, {"outcome": "no_answer", "note": "voicemail"}, CALLER, policy, ASKED)
    assert out == []
    assert changes == {
        "status": "retry",
        "scheduled_at": ASKED + timedelta(hours=3),
        "attempts": [{"at": ASKED, "by": CALLER, "outcome": "no_answer", "note": "voicemail"}],
    }


def test_the_next_attempt_is_the_planned_time_then_the_retry_and_none_once_ended(policy, revisit):
    assert rules.next_attempt(revisit) == revisit["scheduled_at"]
    changes, _ = rules.no_answer(revisit, {"outcome": "no_answer"}, CALLER, policy, ASKED)
    assert rules.next_attempt(apply(revisit, changes)) == ASKED + timedelta(hours=3)
    changes, _ = answered(revisit, policy, 2, ["slow"])
    assert rules.next_attempt(apply(revisit, changes)) is None


@pytest.mark.parametrize(
    "mall_id,way,at,expected",
    [
        ("sh-xujiahui", "phone_call", (19, 0), (2026, 11, 24, 9, 0)),  # 22:00 is quiet
        ("sh-xujiahui", "sms", (17, 59), (2026, 11, 23, 20, 59)),  # 20:59 is not
        ("sh-xujiahui", "sms", (18, 0), (2026, 11, 24, 9, 0)),  # 21:00 is
        ("bj-chaoyang", "phone_call", (18, 15), (2026, 11, 23, 21, 15)),  # Beijing allows 21:15
        ("bj-chaoyang", "phone_call", (19, 0), (2026, 11, 24, 9, 30)),
        ("sh-xujiahui", "app_message", (19, 0), (2026, 11, 23, 22, 0)),  # app messages are not held back
        ("bj-chaoyang", "app_message", (23, 0), (2026, 11, 24, 2, 0)),
    ],
)
def test_a_retry_is_moved_out_of_quiet_hours_except_for_app_messages(policy, make_revisit, mall_id, way, at, expected):
    channel = {"phone_call": "desk", "sms": "web", "app_message": "app"}[way]
    revisit = make_revisit(channel=channel, mall_id=mall_id)
    assert revisit["way"] == way
    changes, _ = rules.no_answer(revisit, {"outcome": "no_answer"}, CALLER, policy, sh(2026, 11, 23, *at))
    assert local(changes["scheduled_at"]) == datetime(*expected, tzinfo=SH)


def test_the_third_unanswered_attempt_makes_the_customer_unreachable(policy, revisit):
    assert policy.revisit("sh-xujiahui")["max_attempts"] == 3
    now, current = ASKED, revisit
    for expected in ("retry", "retry"):
        changes, out = rules.no_answer(current, {"outcome": "no_answer"}, CALLER, policy, now)
        assert (changes["status"], out) == (expected, [])
        current, now = apply(current, changes), changes["scheduled_at"]
    changes, out = rules.no_answer(current, {"outcome": "no_answer", "note": "no answer again"}, "E3003", policy, now)
    assert changes["status"] == "unreachable" and "scheduled_at" not in changes
    assert len(changes["attempts"]) == 3 and changes["attempts"][-1]["by"] == "E3003"
    [done] = out
    assert assert_valid(done, events.REVISIT_DONE)["payload"] == {
        "revisit_id": revisit["_id"],
        "outcome": "unreachable",
        "attempts": 3,
        "score": None,
        "within_deadline": now <= revisit["due_at"],
        "by": "E3003",
    }


def test_a_wrong_number_makes_the_customer_unreachable_at_once(policy, revisit):
    changes, out = rules.no_answer(revisit, {"outcome": "wrong_number", "note": "空号"}, CALLER, policy, ASKED)
    assert changes == {
        "status": "unreachable",
        "attempts": [{"at": ASKED, "by": CALLER, "outcome": "wrong_number", "note": "空号"}],
    }
    assert assert_valid(out[0], events.REVISIT_DONE)["payload"] == {
        "revisit_id": revisit["_id"],
        "outcome": "unreachable",
        "attempts": 1,
        "score": None,
        "within_deadline": True,
        "by": CALLER,
    }


def test_unreachable_after_the_deadline_is_late(policy, revisit):
    _, out = rules.no_answer(
        revisit, {"outcome": "wrong_number"}, CALLER, policy, revisit["due_at"] + timedelta(seconds=1)
    )
    assert out[0]["payload"]["within_deadline"] is False


# --- overdue and the outbox ------------------------------------------------------------------------


def test_a_revisit_past_its_deadline_gets_one_revisit_overdue(revisit):
    now = revisit["due_at"] + timedelta(minutes=1)
    event = rules.overdue(revisit, now)
    read = assert_valid(event, events.REVISIT_OVERDUE)
    assert read["payload"] == {"revisit_id": revisit["_id"], "due_at": revisit["due_at"]}
    assert (read["occurred_at"], read["complaint_no"], read["mall_id"]) == (now, revisit["complaint_no"], "sh-xujiahui")


def test_the_update_sets_the_changes_counts_the_version_and_queues_the_events(policy, revisit):
    changes, out = answered(revisit, policy, 2, reasons=["slow"])
    update = with_outbox({"$set": changes}, out, ASKED)
    assert update["$set"] == changes
    assert update["$inc"] == {"version": 1}
    assert update["$push"]["pending_events"] == {"$each": [e["event_id"] for e in out]}
    assert update["$push"]["outbox"] == {"$each": [{"event": e, "created_at": ASKED, "sent_at": None} for e in out]}
    assert set(update) == {"$set", "$inc", "$push"}


def test_an_update_without_events_pushes_nothing(policy, revisit):
    changes, out = rules.no_answer(revisit, {"outcome": "no_answer"}, CALLER, policy, ASKED)
    assert with_outbox({"$set": changes}, out, ASKED) == {"$set": changes, "$inc": {"version": 1}}


def test_overdue_is_marked_reported_with_its_event(revisit):
    now = revisit["due_at"] + timedelta(minutes=1)
    event = rules.overdue(revisit, now)
    update = with_outbox({"$set": {"overdue_reported": True}}, [event], now)
    assert update["$set"] == {"overdue_reported": True}
    assert update["$push"]["pending_events"] == {"$each": [event["event_id"]]}


# --- what staff may send (AttemptIn) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"by": CALLER, "outcome": "reached", "score": 5},
        {"by": CALLER, "outcome": "reached", "score": 1, "reasons": ["slow"], "comment": "太慢"},
        {"by": CALLER, "outcome": "no_answer", "note": "voicemail"},
        {"by": CALLER, "outcome": "wrong_number"},
    ],
)
def test_staff_attempts_that_make_sense_are_accepted(data):
    loaded = AttemptIn().load(data)
    assert loaded["outcome"] == data["outcome"] and loaded.get("score") == data.get("score")
    assert loaded["reasons"] == data.get("reasons", [])


@pytest.mark.parametrize(
    "data",
    [
        {"by": CALLER, "outcome": "reached"},  # reached but no score
        {"by": CALLER, "outcome": "no_answer", "score": 3},  # a score nobody gave
        {"by": CALLER, "outcome": "wrong_number", "score": 5},
        {"by": CALLER, "outcome": "reached", "score": 0},
        {"by": CALLER, "outcome": "reached", "score": 6},
        {"by": CALLER, "outcome": "reached", "score": "5"},  # strict integer
    ],
)
def test_a_score_without_reached_or_reached_without_score_is_refused_on_score(data):
    with pytest.raises(ValidationError) as refused:
        AttemptIn().load(data)
    assert set(refused.value.messages) == {"score"}


@pytest.mark.parametrize(
    "data,field",
    [
        ({"outcome": "reached", "score": 5}, "by"),
        ({"by": CALLER, "outcome": "hung_up"}, "outcome"),
        ({"by": CALLER, "outcome": "reached", "score": 5, "reasons": [""]}, "reasons"),
        ({"by": CALLER, "outcome": "no_answer", "note": "x" * 2001}, "note"),
        ({"by": CALLER, "outcome": "no_answer", "reasons": ["slow"]}, "reasons"),  # nobody gave them
    ],
)
def test_other_bad_attempts_are_refused_on_their_field(data, field):
    with pytest.raises(ValidationError) as refused:
        AttemptIn().load(data)
    assert field in refused.value.messages


def test_a_cancelled_revisit_announces_itself(revisit):
    """R4.2, R5.5: a revisit made moot by a reopening or a closure says so, so that its
    SLA clock stops instead of breaching."""
    changes, out = rules.cancelled(revisit, "case closed", ASKED)
    assert changes == {"status": "cancelled", "cancelled": {"at": ASKED, "reason": "case closed"}}
    assert [(e["event_type"], e["complaint_no"], e["payload"]) for e in out] == [
        ("revisit_cancelled", revisit["complaint_no"], {"revisit_id": revisit["_id"], "reason": "case closed"})
    ]
    assert_valid(out[0], events.REVISIT_CANCELLED)
