"""R1.2, R3.2, R3.3, R3.7, R4.1, R7.1: which message an event makes and by which channel,
one per complaint, kind and ref; quiet hours (no SMS or app push 21:00-09:00, unless the
deadline demands it); retries with back-off until the last attempt; what the gateway's
answer makes of the message and its event, without the contact."""

from datetime import timedelta

import pytest

from mallcare_common.contracts.notify import MESSAGE_FAILED, MESSAGE_SENT
from notify import rules
from tests.unit.notify.conftest import MONDAY_10, assert_valid, complaint, sh


def message(policy, kind="answer", ref="1", now=MONDAY_10, **settings):
    settings.setdefault("detail", {"proposal_no": 1})
    return rules.new_message(kind, ref, complaint(settings.pop("channel_in", "email")), policy, now, **settings)


# --- which channel (R7.1) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel, expected",
    [
        ("email", "email"),
        ("wechat", "wechat"),
        ("app", "app"),
        ("mini_program", "app"),
        ("hotline", "sms"),
        ("web", "sms"),
        ("social", "sms"),
        ("desk", None),
    ],
)
def test_the_acknowledgement_goes_back_by_the_channel_the_complaint_came_in_on(policy, channel, expected):
    assert rules.route("acknowledgement", channel, policy) == expected


def test_a_desk_complaint_gets_its_receipt_slip_at_the_desk_and_its_answer_by_sms(policy):
    assert rules.new_message("acknowledgement", "1", complaint("desk"), policy, MONDAY_10) is None
    answer = rules.new_message("answer", "1", complaint("desk"), policy, MONDAY_10, detail={"proposal_no": 1})
    assert answer["route"] == "sms"


def test_an_anonymous_suggestion_makes_no_message(policy):
    assert (
        rules.new_message("acknowledgement", "1", complaint("suggestion_box", reachable=False), policy, MONDAY_10)
        is None
    )
    assert rules.new_message("answer", "1", complaint("suggestion_box"), policy, MONDAY_10)["route"] == "sms"


def test_a_contact_that_cannot_take_the_channel_falls_back_and_no_contact_is_nobody(policy):
    fallback = policy.rules["fallback"]
    assert rules.channel_for("wechat", {"wechat_openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}, fallback) == "wechat"
    assert rules.channel_for("wechat", {"social_handle": "@wang", "phone": "13812345678"}, fallback) == "sms"
    assert rules.channel_for("sms", {"email": "wang@example.com"}, fallback) == "email"
    assert rules.channel_for("app", {"phone": "13812345678", "email": "wang@example.com"}, fallback) == "sms"
    assert rules.channel_for("sms", {"name": "王女士"}, fallback) is None


@pytest.mark.parametrize(
    "description, language",
    [
        ("草莓约1/3霉变", "zh"),
        ("The strawberries I bought were mouldy", "en"),
        ("13812345678", "zh"),
        ("Mouldy 草莓", "zh"),
        (None, "zh"),
    ],
)
def test_the_customer_is_written_to_in_the_language_they_wrote_in(policy, description, language):
    assert rules.language_of(description, "zh", policy.rules["languages"]) == language


# --- once per complaint, kind and ref ----------------------------------------------------------


def test_a_redelivered_event_makes_the_same_message_and_a_new_promise_a_new_one(policy):
    first = message(policy, "promise", rules.promise_ref(sh(2026, 11, 25, 18, 0)), detail={})
    again = message(
        policy, "promise", rules.promise_ref(sh(2026, 11, 25, 18, 0)), now=MONDAY_10 + timedelta(hours=1), detail={}
    )
    later = message(policy, "promise", rules.promise_ref(sh(2026, 11, 26, 18, 0)), detail={})
    assert first["_id"] == again["_id"] == "SHXJH-20261123-0042:promise:20261125T1000Z"
    assert later["_id"] != first["_id"]
    assert message(policy, "answer", "1")["_id"] != message(policy, "answer", "2")["_id"]
    assert message(policy, "answer", "1")["_id"] != message(policy, "execution", "1", detail={"task_id": 1})["_id"]


def test_a_kind_the_policy_does_not_send_makes_no_message(policy):
    import dataclasses

    quiet = dataclasses.replace(policy, rules={**policy.rules, "kinds": ["acknowledgement"]})
    assert rules.new_message("answer", "1", complaint(), quiet, MONDAY_10) is None


# --- quiet hours ---------------------------------------------------------------------------------


def test_an_sms_at_night_waits_for_the_morning_and_an_email_does_not(policy):
    night = sh(2026, 11, 23, 22, 30)
    by_sms = message(policy, now=night, channel_in="hotline")
    by_email = message(policy, now=night, channel_in="email")
    assert by_sms["next_attempt_at"] == sh(2026, 11, 24, 9, 0)
    assert by_email["next_attempt_at"] == night
    assert message(policy, now=night, channel_in="app")["next_attempt_at"] == sh(2026, 11, 24, 9, 0)
    assert message(policy, now=night, channel_in="wechat")["next_attempt_at"] == night


def test_each_mall_keeps_its_own_quiet_hours(policy):
    at_2115 = sh(2026, 11, 23, 21, 15)
    beijing = rules.new_message(
        "answer",
        "1",
        complaint("hotline", "bj-chaoyang", number="BJCY-20261123-0001"),
        policy,
        at_2115,
        detail={"proposal_no": 1},
    )
    shanghai = message(policy, now=at_2115, channel_in="hotline")
    assert beijing["next_attempt_at"] == at_2115  # quiet from 21:30 there
    assert shanghai["next_attempt_at"] == sh(2026, 11, 24, 9, 0)


def test_an_acknowledgement_due_before_the_morning_goes_at_night_and_one_due_later_waits(policy):
    night = sh(2026, 11, 23, 21, 20)
    due_tonight = rules.new_message(
        "acknowledgement",
        "1",
        complaint("hotline"),
        policy,
        night,
        deadline=night + timedelta(minutes=30),
        detail={"received_at": night},
    )
    due_tomorrow = rules.new_message(
        "acknowledgement",
        "1",
        complaint("hotline"),
        policy,
        night,
        deadline=sh(2026, 11, 24, 10, 30),
        detail={"received_at": night},
    )
    assert due_tonight["next_attempt_at"] == night
    assert due_tomorrow["next_attempt_at"] == sh(2026, 11, 24, 9, 0)
    answer = message(policy, now=night, channel_in="hotline", deadline=night + timedelta(minutes=30))
    assert answer["next_attempt_at"] == sh(2026, 11, 24, 9, 0)  # an answer has no such deadline


def test_a_revisit_request_waits_for_the_time_feedback_scheduled(policy):
    scheduled = MONDAY_10 + timedelta(hours=2)
    revisit = message(
        policy,
        "revisit",
        "1",
        not_before=scheduled,
        deadline=MONDAY_10 + timedelta(hours=24),
        channel="sms",
        detail={"revisit_id": "SHXJH-20261123-0042-R1"},
    )
    assert (revisit["route"], revisit["next_attempt_at"]) == ("sms", scheduled)


def test_a_fallback_channel_in_its_quiet_hours_holds_the_message_until_they_end(policy):
    night = sh(2026, 11, 23, 23, 0)
    by_email = message(policy, now=night, channel_in="email")
    assert rules.held(by_email, "email", policy, night) is None
    held = rules.held(by_email, "sms", policy, night)
    assert held == {"status": "retry", "claimed_until": None, "next_attempt_at": sh(2026, 11, 24, 9, 0)}


# --- attempts: back-off, outcomes, events ---------------------------------------------------------


def test_the_back_off_doubles_from_the_first_wait_up_to_the_longest(policy):
    retry = policy.rules["retry"]
    waits = [rules.backoff(n, retry).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_gateway_down_is_tried_again_later_until_the_last_attempt_then_it_fails(policy):
    msg = {**message(policy, channel_in="email"), "status": "sending"}
    now = MONDAY_10
    for attempt in range(1, policy.rules["retry"]["max_attempts"]):
        changes, out = rules.temporary(msg, "email", "smtp", "421 service not available", policy, now)
        assert (changes["status"], out, len(changes["attempts"])) == ("retry", [], attempt)
        assert changes["next_attempt_at"] == now + rules.backoff(attempt, policy.rules["retry"])
        msg, now = {**msg, **changes}, changes["next_attempt_at"]
    changes, out = rules.temporary(msg, "email", "smtp", "421 service not available", policy, now)
    assert changes["status"] == "failed" and changes["failure"]["reason"] == "gave_up"
    failed = assert_valid(out[0], MESSAGE_FAILED)["payload"]
    assert (failed["reason"], failed["attempts"], failed["channel"], failed["gateway"]) == (
        "gave_up",
        8,
        "email",
        "smtp",
    )


def test_a_retry_that_falls_in_the_quiet_hours_waits_for_the_morning(policy):
    late = sh(2026, 11, 23, 20, 59, 50)
    msg = message(policy, now=late, channel_in="hotline")
    changes, _ = rules.temporary(msg, "sms", "aliyun_sms", "503", policy, late)
    assert changes["next_attempt_at"] == sh(2026, 11, 24, 9, 0)


def test_an_accepted_message_is_sent_once_with_its_event_and_no_contact(policy):
    msg = message(policy, channel_in="email")
    changes, out = rules.accepted(msg, "email", "smtp", "<x@notify.mallcare>", MONDAY_10)
    assert changes["status"] == "sent" and changes["sent"]["gateway"] == "smtp"
    sent = assert_valid(out[0], MESSAGE_SENT)
    assert sent["payload"] == {
        "message_id": msg["_id"],
        "kind": "answer",
        "ref": "1",
        "attempts": 1,
        "channel": "email",
        "gateway": "smtp",
        "accepted_at": MONDAY_10,
    }


def test_a_refusal_fails_at_once_and_the_gateways_answer_is_kept_without_the_contact(policy):
    msg = message(policy, channel_in="hotline")
    changes, out = rules.failed(
        msg, "sms", "aliyun_sms", "refused", "isv.MOBILE_NUMBER_ILLEGAL: 13812345678", MONDAY_10
    )
    assert changes["status"] == "failed"
    assert changes["attempts"][-1]["error"] == changes["failure"]["error"] == "isv.MOBILE_NUMBER_ILLEGAL: [phone]"
    failed = assert_valid(out[0], MESSAGE_FAILED)["payload"]
    assert (failed["reason"], failed["error"]) == ("refused", "isv.MOBILE_NUMBER_ILLEGAL: [phone]")


def test_a_message_under_way_is_not_cancelled_but_one_waiting_is(policy):
    waiting = message(policy, "revisit", "1", channel="sms", detail={"revisit_id": "R"})
    assert rules.cancelled(waiting, "revisit done: answered", MONDAY_10)["status"] == "cancelled"
    assert rules.cancelled({**waiting, "status": "sending"}, "revisit done: answered", MONDAY_10) is None
