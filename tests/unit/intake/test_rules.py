"""R1.2, R1.4, R1.5: acknowledgement deadlines per channel (incl. after hours and
closed days), complaint numbers, preliminary review, masking and pseudonymous refs."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from marshmallow import ValidationError

from intake import rules
from mallcare_cli.examples import desk_complaint
from mallcare_common.policy import load_policy_dir
from intake.policy import load_policy
from tests.conftest import POLICY_DIR

SH = ZoneInfo("Asia/Shanghai")


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture(scope="module")
def policy():
    return load_policy_dir(POLICY_DIR, "intake.yml", load_policy)


def due(policy, mall_id, channel, received):
    mall = policy.malls.get(mall_id)
    return rules.ack_due_at(policy.acknowledgement_rule(mall_id, channel), mall.calendar, received)


@pytest.mark.parametrize(
    "channel,received,expected",
    [
        ("desk", "2026-11-23 15:00:00", "2026-11-23 15:01:00"),  # 1 minute at the desk
        ("hotline", "2026-11-23 15:00:00", "2026-11-23 15:30:00"),  # 30 minutes while open
        ("app", "2026-11-23 23:10:00", "2026-11-24 10:30:00"),  # after hours: 30 min after opening
        ("web", "2026-11-23 08:00:00", "2026-11-23 10:30:00"),  # before opening
        ("wechat", "2027-02-05 23:00:00", "2027-02-07 10:00:00"),  # closed Sat skipped; Sun opens 09:30
        ("email", "2026-11-23 23:10:00", "2026-11-24 23:10:00"),  # written: 24 h clock time
        ("suggestion_box", "2026-11-23 09:00:00", "2026-11-24 09:00:00"),
    ],
)
def test_acknowledgement_deadlines(policy, channel, received, expected):
    assert due(policy, "sh-xujiahui", channel, at(received)) == at(expected)


def test_a_mall_override_tightens_its_hotline(policy):
    assert due(policy, "gz-tianhe", "hotline", at("2026-11-23 15:00")) == at("2026-11-23 15:15")
    assert due(policy, "gz-tianhe", "web", at("2026-11-23 15:00")) == at("2026-11-23 15:30")


def test_complaint_number_is_readable_and_sortable():
    assert rules.complaint_number("SHXJH", date(2026, 11, 23), 42) == "SHXJH-20261123-0042"


def complaint(**overrides):
    base = {
        "mall_id": "sh-xujiahui",
        "channel": "hotline",
        "customer": {"phone": "138 1234 5678"},
        "description": "收银员态度很差",
        "demands": {},
    }
    base.update(overrides)
    return base


SETTINGS = {
    "min_description_chars": 5,
    "complaint_window_days": 365,
    "duplicate_window_hours": 24,
    "anonymous_channels": ["suggestion_box"],
}
NOW = at("2026-11-23 15:00")


def test_a_complaint_that_can_be_acted_on_passes_review():
    assert rules.review(complaint(), SETTINGS, NOW, None) is None


@pytest.mark.parametrize(
    "overrides,reason",
    [
        ({"description": "差!!", "demands": {}}, "insufficient_information"),
        ({"description": "🤬🤬🤬🤬🤬🤬"}, "insufficient_information"),
        ({"customer": {}}, "insufficient_information"),
        ({"incident_time": NOW - timedelta(days=400)}, "out_of_scope"),
    ],
)
def test_review_rejections(overrides, reason):
    assert rules.review(complaint(**overrides), SETTINGS, NOW, None)["reason"] == reason


def test_a_short_description_passes_when_the_factual_complaint_says_enough():
    assert rules.review(complaint(description="差", demands={"fact": "草莓三分之一发霉"}), SETTINGS, NOW, None) is None


def test_anonymous_is_fine_where_the_channel_allows_it():
    assert rules.review(complaint(channel="suggestion_box", customer={}), SETTINGS, NOW, None) is None


def test_duplicate_names_the_earlier_complaint():
    rejection = rules.review(complaint(), SETTINGS, NOW, "SHXJH-20261123-0001")
    assert rejection == {
        "reason": "duplicate",
        "duplicate_of": "SHXJH-20261123-0001",
        "detail": "The same complaint was registered as SHXJH-20261123-0001.",
    }


def test_masking_and_pseudonymous_reference():
    customer = {"phone": "+86 138-1234-5678"}
    assert rules.mask_contact(customer) == "861****5678"
    assert rules.mask_contact({"phone": "13812345678"}) == "138****5678"
    assert rules.mask_contact({"email": "wang@example.com"}) == "w***@example.com"
    ref = rules.customer_ref("s", {"phone": "13812345678"})
    assert ref == rules.customer_ref("s", {"phone": "138 1234 5678", "email": "x@y.z"})
    assert ref != rules.customer_ref("other-secret", {"phone": "13812345678"})
    assert "5678" not in ref and rules.customer_ref("s", {}) is None


def test_a_wechat_customer_is_known_by_their_openid_as_written():
    """An OpenID's case matters: two that differ in case are two customers."""
    first = rules.customer_ref("s", {"wechat_openid": "oX3kTq1Lm9Zw0000q9Zw"})
    assert first is not None and first == rules.customer_ref("s", {"wechat_openid": "oX3kTq1Lm9Zw0000q9Zw"})
    assert first != rules.customer_ref("s", {"wechat_openid": "ox3ktq1lm9zw0000q9zw"})


def test_the_registered_event_carries_the_masked_customer_and_scrubbed_text(policy):
    complaint = desk_complaint(
        customer={"name": "王女士", "phone": "13812345678", "email": "wang@example.com"},
        description="草莓发霉，请回电13812345678或发邮件 wang@example.com",
        demands={"fact": "会员M00123的草莓发霉", "expectation": "王女士要求退款"},
    )
    complaint["received_at"] = at("2026-11-23 15:00:00")
    doc, event = rules.new_complaint(
        "SHXJH-20261123-0001", complaint, policy=policy, ref="r", fp=None, rejection=None, now=at("2026-11-23 15:00:00")
    )
    payload = event["payload"]
    assert payload["customer"] == {"ref": "r", "contact_masked": "138****5678", "member_tier": None}
    assert payload["description"] == "草莓发霉，请回电[phone]或发邮件 [e-mail]"
    assert payload["demands"] == {"fact": "会员[member id]的草莓发霉", "expectation": "[name]要求退款"}
    for raw in ("13812345678", "wang@example.com", "王女士", "M00123"):
        assert raw not in str(event)
    assert doc["description"] == complaint["description"]  # the record itself keeps what was said


def test_fingerprint_ignores_spacing_and_punctuation_but_not_the_words():
    a = rules.fingerprint("m", "r", "草莓 发霉了！")
    assert a == rules.fingerprint("m", "r", "草莓发霉了")
    assert a != rules.fingerprint("m", "r", "草莓坏了")
    assert a != rules.fingerprint("other-mall", "r", "草莓发霉了")
    assert rules.fingerprint("m", None, "草莓发霉了") is None


def test_unknown_mall_and_future_times_are_field_errors(policy):
    with pytest.raises(ValidationError) as error:
        rules.check_mall_and_times({"mall_id": "nowhere", "received_at": NOW + timedelta(hours=1)}, policy.malls, NOW)
    assert set(error.value.messages) == {"mall_id", "received_at"}


def test_acknowledgement_records_whether_it_was_in_time():
    doc = {"_id": "N-1", "mall_id": "sh-xujiahui", "ack_due_at": NOW}
    late, _ = rules.acknowledgement(doc, {"acknowledged_by": "E1", "method": "phone"}, NOW + timedelta(minutes=1))
    on_time, event = rules.acknowledgement(doc, {"acknowledged_by": "E1", "method": "phone"}, NOW)
    assert (late["within_deadline"], on_time["within_deadline"]) == (False, True)
    assert event["event_type"] == "complaint_acknowledged" and event["payload"]["within_deadline"] is True


@pytest.mark.parametrize(
    "channel, method", [("sms", "sms"), ("email", "email"), ("wechat", "wechat_message"), ("app", "app_message")]
)
def test_notifys_accepted_acknowledgement_is_the_acknowledgement_by_its_channel(channel, method):
    """R1.2, R7.1: the complaint is acknowledged when notify's gateway accepted the message."""
    doc = {"_id": "N-1", "mall_id": "sh-xujiahui", "status": "registered", "ack_due_at": NOW}
    sent = {"message_id": "N-1:acknowledgement:1", "channel": channel, "accepted_at": NOW - timedelta(minutes=2)}
    record, event = rules.message_acknowledgement(doc, sent, NOW)
    assert record == {
        "acknowledged_at": NOW - timedelta(minutes=2),
        "acknowledged_by": "notify",
        "method": method,
        "within_deadline": True,
        "message_id": "N-1:acknowledgement:1",
    }
    assert event["payload"]["message_id"] == "N-1:acknowledgement:1"


@pytest.mark.parametrize("status", ["acknowledged", "rejected"])
def test_a_complaint_acknowledged_before_or_rejected_takes_no_acknowledgement_from_notify(status):
    doc = {"_id": "N-1", "mall_id": "sh-xujiahui", "status": status, "ack_due_at": NOW}
    sent = {"message_id": "N-1:acknowledgement:1", "channel": "sms", "accepted_at": NOW}
    assert rules.message_acknowledgement(doc, sent, NOW) is None
