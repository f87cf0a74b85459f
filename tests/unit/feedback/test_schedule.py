"""R4.1: after a resolution the customer is asked within 24 h, `after` 2 h so the
remedy has arrived, never by call or SMS in the mall's quiet hours (21:00-09:00 mall
time; bj-chaoyang 21:30-09:30) - the next allowed time instead, an app message is not
held back. When quiet hours leave no allowed time before the deadline, the last
allowed moment before they began, else the next allowed time flagged beyond the
deadline. The way to ask follows the channel and what contact the customer left."""

from datetime import datetime, time, timedelta

import pytest

from feedback import rules
from mallcare_common.contracts import feedback as events

from .conftest import BJ_QUIET, CHAIN_QUIET, MONDAY_10, SH, assert_valid, local, quiet, sh, with_override

EVERY_20_MINUTES = [MONDAY_10 + timedelta(minutes=m) for m in range(0, 24 * 60, 20)]
BOUNDARIES = [
    sh(2026, 11, 23, h, m) for h, m in ((6, 59), (7, 0), (7, 1), (18, 59), (19, 0), (19, 1), (23, 59), (0, 0))
]


def schedule(policy, resolved_at, way="phone_call", mall_id="sh-xujiahui"):
    return rules.schedule(resolved_at, way, policy.revisit(mall_id), policy.malls.get(mall_id).calendar)


def next_allowed(at, start, end):
    """Independently: `at`, or the end of the quiet hours holding it (mall time)."""
    if not quiet(at, start, end):
        return at
    day = local(at).date()
    candidate = datetime.combine(day, end, tzinfo=SH)
    return candidate if candidate > local(at) else candidate + timedelta(days=1)


# --- calls and SMS outside quiet hours, within 24 h ---------------------------------------------


@pytest.mark.parametrize("way", ["phone_call", "sms"])
@pytest.mark.parametrize("resolved_at", EVERY_20_MINUTES + BOUNDARIES, ids=lambda t: local(t).strftime("%H%M"))
def test_a_call_or_sms_is_asked_2h_after_or_at_the_next_allowed_time_within_24h(policy, way, resolved_at):
    scheduled, due, beyond = schedule(policy, resolved_at, way)
    assert due == resolved_at + timedelta(hours=24)
    assert not beyond
    assert resolved_at + timedelta(hours=2) <= scheduled <= due
    assert not quiet(scheduled, *CHAIN_QUIET), local(scheduled)
    assert scheduled == next_allowed(resolved_at + timedelta(hours=2), *CHAIN_QUIET)


@pytest.mark.parametrize(
    "resolved,expected",
    [
        ((2026, 11, 23, 10, 0), (2026, 11, 23, 12, 0)),  # asked at noon
        ((2026, 11, 23, 18, 59), (2026, 11, 23, 20, 59)),  # just before quiet hours
        ((2026, 11, 23, 19, 0), (2026, 11, 24, 9, 0)),  # 21:00 is quiet: next morning
        ((2026, 11, 23, 22, 30), (2026, 11, 24, 9, 0)),  # resolved in quiet hours
        ((2026, 11, 23, 23, 30), (2026, 11, 24, 9, 0)),  # 01:30 the next day: same morning
        ((2026, 11, 23, 3, 0), (2026, 11, 23, 9, 0)),  # 05:00 -> 09:00 the same day
        ((2026, 11, 23, 7, 0), (2026, 11, 23, 9, 0)),  # exactly when quiet hours end
        ((2026, 11, 23, 7, 30), (2026, 11, 23, 9, 30)),
    ],
)
def test_known_resolution_times_give_the_expected_mall_time(policy, resolved, expected):
    scheduled, due, beyond = schedule(policy, sh(*resolved))
    assert local(scheduled) == datetime(*expected, tzinfo=SH)
    assert (due, beyond) == (sh(*resolved) + timedelta(hours=24), False)


def test_times_are_stored_in_utc_at_millisecond_precision(policy):
    resolved_at = sh(2026, 11, 23, 19, 30, 5, 123456)
    scheduled, due, _ = schedule(policy, resolved_at)
    assert scheduled == sh(2026, 11, 24, 9, 0) and scheduled.utcoffset() == timedelta(0)
    assert due == sh(2026, 11, 24, 19, 30, 5, 123000) and due.utcoffset() == timedelta(0)


@pytest.mark.parametrize("resolved_at", EVERY_20_MINUTES, ids=lambda t: local(t).strftime("%H%M"))
def test_an_app_message_is_never_held_back(policy, resolved_at):
    scheduled, due, beyond = schedule(policy, resolved_at, "app_message")
    assert (scheduled, due, beyond) == (resolved_at + timedelta(hours=2), resolved_at + timedelta(hours=24), False)


def test_an_app_message_goes_out_in_the_middle_of_the_night(policy):
    scheduled, _, _ = schedule(policy, sh(2026, 11, 23, 21, 0), "app_message")
    assert local(scheduled) == datetime(2026, 11, 23, 23, 0, tzinfo=SH)


# --- bj-chaoyang's own quiet hours ----------------------------------------------------------------


def test_bj_chaoyang_overrides_only_its_quiet_hours(policy):
    bj, sh_ = policy.revisit("bj-chaoyang"), policy.revisit("sh-xujiahui")
    assert bj["quiet_hours"] == BJ_QUIET and sh_["quiet_hours"] == CHAIN_QUIET
    assert policy.revisit("gz-tianhe")["quiet_hours"] == CHAIN_QUIET
    assert {k: v for k, v in bj.items() if k != "quiet_hours"} == {k: v for k, v in sh_.items() if k != "quiet_hours"}


@pytest.mark.parametrize(
    "resolved,bj_expected,sh_expected",
    [
        ((19, 15), (2026, 11, 23, 21, 15), (2026, 11, 24, 9, 0)),  # 21:15 is still allowed in Beijing
        ((19, 29), (2026, 11, 23, 21, 29), (2026, 11, 24, 9, 0)),
        ((19, 30), (2026, 11, 24, 9, 30), (2026, 11, 24, 9, 0)),  # 21:30 is quiet in Beijing
        ((19, 45), (2026, 11, 24, 9, 30), (2026, 11, 24, 9, 0)),
        ((6, 0), (2026, 11, 23, 9, 30), (2026, 11, 23, 9, 0)),  # 08:00 -> when each mall's quiet hours end
        ((7, 15), (2026, 11, 23, 9, 30), (2026, 11, 23, 9, 15)),
        ((7, 30), (2026, 11, 23, 9, 30), (2026, 11, 23, 9, 30)),
    ],
)
def test_bj_chaoyang_calls_outside_21_30_to_09_30(policy, resolved, bj_expected, sh_expected):
    resolved_at = sh(2026, 11, 23, *resolved)
    bj, _, bj_beyond = schedule(policy, resolved_at, "sms", "bj-chaoyang")
    shanghai, _, _ = schedule(policy, resolved_at, "sms", "sh-xujiahui")
    assert local(bj) == datetime(*bj_expected, tzinfo=SH) and not bj_beyond
    assert local(shanghai) == datetime(*sh_expected, tzinfo=SH)


@pytest.mark.parametrize("resolved_at", EVERY_20_MINUTES, ids=lambda t: local(t).strftime("%H%M"))
def test_bj_chaoyang_never_calls_in_its_quiet_hours(policy, resolved_at):
    scheduled, due, beyond = schedule(policy, resolved_at, "phone_call", "bj-chaoyang")
    assert not quiet(scheduled, *BJ_QUIET) and not beyond
    assert resolved_at + timedelta(hours=2) <= scheduled <= due == resolved_at + timedelta(hours=24)


# --- quiet hours that leave (almost) no time ------------------------------------------------------


@pytest.fixture
def one_hour_a_day(policy):
    """sh-xujiahui may call only 09:00-10:00 mall time."""
    return with_override(policy, "sh-xujiahui", quiet_hours=(time(10, 0), time(9, 0)))


def test_long_quiet_hours_still_use_the_next_allowed_time_when_it_is_within_24h(one_hour_a_day):
    for resolved, expected in (
        ((7, 0), (2026, 11, 23, 9, 0)),  # 09:00 is allowed
        ((9, 0), (2026, 11, 24, 9, 0)),  # exactly 24 h later
        ((9, 40), (2026, 11, 24, 9, 0)),
        ((12, 0), (2026, 11, 24, 9, 0)),
    ):
        resolved_at = sh(2026, 11, 23, *resolved)
        scheduled, due, beyond = schedule(one_hour_a_day, resolved_at)
        assert local(scheduled) == datetime(*expected, tzinfo=SH), resolved
        assert scheduled <= due == resolved_at + timedelta(hours=24) and not beyond


@pytest.mark.parametrize("resolved", [(8, 0), (8, 30), (8, 59)])
def test_when_the_next_allowed_time_is_past_24h_the_last_allowed_moment_before_quiet_is_used(one_hour_a_day, resolved):
    resolved_at = sh(2026, 11, 23, *resolved)  # 2 h later it is 10:00-10:59: quiet until tomorrow 09:00
    scheduled, due, beyond = schedule(one_hour_a_day, resolved_at)
    assert not beyond
    assert resolved_at <= scheduled <= due
    assert not quiet(scheduled, time(10, 0), time(9, 0))
    assert sh(2026, 11, 23, 9, 30) <= scheduled < sh(2026, 11, 23, 10, 0)  # the same morning, before 10:00


@pytest.fixture
def one_hour_a_day_within_3h(policy):
    return with_override(policy, "sh-xujiahui", quiet_hours=(time(10, 0), time(9, 0)), within={"hours": 3})


@pytest.mark.parametrize("resolved", [(10, 0), (12, 0), (20, 0)])
def test_no_allowed_time_before_the_deadline_is_flagged_and_asked_at_the_next_allowed_time(
    one_hour_a_day_within_3h, resolved
):
    resolved_at = sh(2026, 11, 23, *resolved)  # resolved in quiet hours, due 3 h later, still quiet
    scheduled, due, beyond = schedule(one_hour_a_day_within_3h, resolved_at)
    assert beyond is True
    assert due == resolved_at + timedelta(hours=3)
    assert local(scheduled) == datetime(2026, 11, 24, 9, 0, tzinfo=SH)


def test_a_short_deadline_still_uses_the_morning_window_when_it_fits(one_hour_a_day_within_3h):
    resolved_at = sh(2026, 11, 23, 8, 0)
    scheduled, due, beyond = schedule(one_hour_a_day_within_3h, resolved_at)
    assert not beyond and resolved_at <= scheduled < sh(2026, 11, 23, 10, 0) <= due


def test_allowed_time_left_before_quiet_begins_is_used_rather_than_flagged(one_hour_a_day_within_3h):
    resolved_at = sh(2026, 11, 23, 9, 40)
    scheduled, due, beyond = schedule(one_hour_a_day_within_3h, resolved_at)
    assert not beyond
    assert resolved_at <= scheduled < sh(2026, 11, 23, 10, 0)


def test_a_call_is_never_scheduled_in_quiet_hours_unless_flagged(policy):
    twenty_minutes = with_override(policy, "sh-xujiahui", quiet_hours=(time(9, 20), time(9, 0)))
    for resolved_at in EVERY_20_MINUTES:
        scheduled, _, beyond = schedule(twenty_minutes, resolved_at)
        assert beyond or not quiet(scheduled, time(9, 20), time(9, 0)), (local(resolved_at), local(scheduled))


# --- the way to ask -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel,contact,way",
    [
        ("desk", "138****5678", "phone_call"),
        ("hotline", "138****5678", "phone_call"),
        ("suggestion_box", "138****5678", "phone_call"),
        ("desk", "w***@example.com", None),  # a call needs a phone
        ("desk", None, None),  # no contact left at the desk: no way at all
        ("suggestion_box", None, None),  # an anonymous suggestion
        ("hotline", "", None),
        ("web", "138****5678", "sms"),
        ("email", "138****5678", "sms"),
        ("social", "138****5678", "sms"),
        ("web", "w***@example.com", "app_message"),  # no phone for the SMS
        ("email", "w***@example.com", "app_message"),
        ("web", None, None),
        ("app", "138****5678", "app_message"),
        ("app", None, "app_message"),  # members of the app are reached in it
        ("mini_program", "w***@example.com", "app_message"),
        ("wechat", None, "app_message"),
    ],
)
def test_the_way_to_ask_follows_channel_and_contact(policy, channel, contact, way):
    assert rules.revisit_way(channel, contact, policy.revisit("sh-xujiahui")) == way


@pytest.mark.parametrize(
    "contact,kind",
    [("138****5678", "phone"), ("****", "phone"), ("w***@example.com", "email"), (None, None), ("", None)],
)
def test_the_kind_of_a_masked_contact(contact, kind):
    assert rules.contact_kind(contact) == kind


# --- the revisit document and its first event -----------------------------------------------------


def test_a_desk_complaint_gets_a_scheduled_phone_revisit_with_its_event(policy, new_revisit):
    now = MONDAY_10 + timedelta(seconds=3)
    doc, event = new_revisit(now=now)
    assert doc["_id"] == "SHXJH-20261123-0042-R1"
    assert (doc["status"], doc["way"], doc["round"], doc["mall_id"]) == ("scheduled", "phone_call", 1, "sh-xujiahui")
    assert doc["resolved_at"] == MONDAY_10
    assert doc["scheduled_at"] == MONDAY_10 + timedelta(hours=2)
    assert doc["due_at"] == MONDAY_10 + timedelta(hours=24)
    assert doc["beyond_deadline"] is False
    assert doc["link_expires_at"] is None  # asked by phone: no answer link
    assert (doc["attempts"], doc["answer"], doc["version"], doc["overdue_reported"]) == ([], None, 0, False)
    assert doc["contact_masked"] == "138****5678" and doc["created_at"] == now
    assert doc["policy_version"] == policy.version
    read = assert_valid(event, events.REVISIT_SCHEDULED)
    assert (read["mall_id"], read["complaint_no"], read["occurred_at"]) == ("sh-xujiahui", "SHXJH-20261123-0042", now)
    assert read["payload"] == {
        "revisit_id": doc["_id"],
        "round": 1,
        "way": "phone_call",
        "scheduled_at": doc["scheduled_at"],
        "due_at": doc["due_at"],
        "beyond_deadline": False,
    }


def test_an_app_complaint_gets_an_app_message_with_a_72h_link(make_revisit):
    doc = make_revisit(channel="app", contact=None, at=sh(2026, 11, 23, 20, 30))
    assert (doc["status"], doc["way"]) == ("scheduled", "app_message")
    assert doc["scheduled_at"] == sh(2026, 11, 23, 22, 30)  # not held back
    assert doc["link_expires_at"] == doc["scheduled_at"] + timedelta(hours=72)


def test_a_web_complaint_gets_an_sms_outside_quiet_hours_with_a_link(new_revisit):
    doc, event = new_revisit(channel="web", contact="139****0001", at=sh(2026, 11, 23, 20, 30))
    assert doc["way"] == "sms"
    assert doc["scheduled_at"] == sh(2026, 11, 24, 9, 0)
    assert doc["link_expires_at"] == sh(2026, 11, 27, 9, 0)
    assert assert_valid(event, events.REVISIT_SCHEDULED)["payload"]["way"] == "sms"


def test_a_bj_chaoyang_revisit_waits_for_09_30(make_revisit):
    doc = make_revisit(mall_id="bj-chaoyang", at=sh(2026, 11, 23, 19, 45))
    assert doc["_id"] == "BJCY-20261123-0042-R1"
    assert local(doc["scheduled_at"]) == datetime(2026, 11, 24, 9, 30, tzinfo=SH)


def test_each_round_has_its_own_revisit(new_revisit):
    doc, event = new_revisit(round_=2)
    assert doc["_id"] == "SHXJH-20261123-0042-R2"
    assert assert_valid(event, events.REVISIT_SCHEDULED)["payload"]["round"] == 2


def test_a_flagged_revisit_says_so_in_its_event(one_hour_a_day_within_3h, new_revisit):
    doc, event = new_revisit(at=sh(2026, 11, 23, 12, 0), policy=one_hour_a_day_within_3h)
    assert doc["beyond_deadline"] is True and doc["due_at"] == sh(2026, 11, 23, 15, 0)
    assert assert_valid(event, events.REVISIT_SCHEDULED)["payload"]["beyond_deadline"] is True


@pytest.mark.parametrize(
    "channel,contact", [("desk", None), ("suggestion_box", None), ("desk", "w***@example.com"), ("web", None)]
)
def test_without_a_way_to_ask_the_revisit_is_unreachable_at_once(new_revisit, channel, contact):
    now = MONDAY_10 + timedelta(seconds=1)
    doc, event = new_revisit(channel=channel, contact=contact, now=now)
    assert (doc["status"], doc["way"], doc["scheduled_at"], doc["due_at"], doc["link_expires_at"]) == (
        "unreachable",
        None,
        None,
        None,
        None,
    )
    read = assert_valid(event, events.REVISIT_DONE)
    assert read["payload"] == {
        "revisit_id": doc["_id"],
        "outcome": "unreachable",
        "attempts": 0,
        "score": None,
        "within_deadline": True,
        "by": "feedback",
    }
    assert read["occurred_at"] == now
