"""R1.1, R1.3: every field of the complaint record is accepted in its shape, and
bad input is refused field by field (wrong types, unknown fields, operator
objects where text belongs); Chinese text and emoji pass untouched."""

import pytest
from marshmallow import ValidationError

from intake.schemas import AcknowledgementIn, ComplaintIn, ListQuery

FULL = {
    "mall_id": "sh-xujiahui",
    "channel": "mini_program",
    "channel_ref": "mp-1",
    "received_at": "2026-11-23T10:00:00.123456+08:00",
    "customer": {
        "name": "李先生",
        "phone": "13900001111",
        "email": "li@example.com",
        "member_id": "M9",
        "member_tier": "vip",
        "social_handle": "@li",
    },
    "location": {"area": "checkout", "merchant_id": "T-3", "merchant_name": "优鲜", "store": "B1"},
    "incident_time": "2026-11-22T18:30:00+08:00",
    "incident_time_band": "evening",
    "staff_involved": ["E1024", "E2048"],
    "product": {"barcode": "6901234567892", "brand": "佳农", "model": "500g"},
    "order_no": "SO-1",
    "description": "结账时多扣了钱 😤",
    "demands": {"fact": "charged twice", "expectation": "refund the double charge"},
    "emotion": "upset",
    "anger_score": 3,
    "tone_note": "语气很冲，说不退钱就去12315",
    "category_hint": "payment.failed_payment",
}


def test_every_r1_3_field_loads():
    loaded = ComplaintIn().load(FULL)
    assert loaded["customer"]["member_tier"] == "vip"
    assert loaded["description"].endswith("😤")
    assert loaded["tone_note"] == "语气很冲，说不退钱就去12315"  # R7.3, seed 002: 簡要記錄客戶語氣、態度
    assert loaded["received_at"].microsecond == 123000  # stored precision


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"channel": "fax"}, "channel"),
        ({"anger_score": 0}, "anger_score"),
        ({"anger_score": True}, "anger_score"),
        ({"description": ""}, "description"),
        ({"description": {"$regex": ".*"}}, "description"),
        ({"mall_id": {"$ne": None}}, "mall_id"),
        ({"product": {"barcode": "12ab"}}, "product"),
        ({"staff_involved": ["E 1; drop"]}, "staff_involved"),
        ({"customer": {"phone": "call me"}}, "customer"),
        ({"customer": {"email": "not-an-email"}}, "customer"),
        ({"incident_time": "yesterday"}, "incident_time"),
        ({"emotion": "meh"}, "emotion"),
        ({"tone_note": "吵" * 201}, "tone_note"),  # R7.3: a short note, not a transcript
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named(patch, field):
    with pytest.raises(ValidationError) as error:
        ComplaintIn().load({**FULL, **patch})
    assert field in error.value.messages


def test_acknowledgement_needs_how_and_takes_who_from_the_caller():
    with pytest.raises(ValidationError) as error:
        AcknowledgementIn().load({"method": "pigeon"})
    assert set(error.value.messages) == {"method"}  # who: the signed-in caller (see the service)


def test_list_query_defaults_and_limits():
    assert ListQuery().load({}) == {"page": 1, "per_page": 20}
    with pytest.raises(ValidationError) as error:
        ListQuery().load({"received_from": "2026-11-23T00:00:00+00:00", "received_to": "2026-11-01T00:00:00+00:00"})
    assert "received_from" in error.value.messages


def test_null_in_an_optional_field_reads_as_the_field_left_out():
    # many JSON clients send null for what they do not have; required fields still refuse it
    optional = {k: None for k in FULL if k not in ("mall_id", "channel", "description")}
    loaded = ComplaintIn().load(
        {**FULL, **optional, "location": {"merchant_id": None, "area": "checkout"}, "customer": None}
    )
    left_out = ComplaintIn().load(
        {
            "mall_id": FULL["mall_id"],
            "channel": FULL["channel"],
            "description": FULL["description"],
            "location": {"area": "checkout"},
        }
    )
    assert loaded == left_out
    assert loaded["customer"] == {} and loaded["staff_involved"] == [] and "anger_score" not in loaded
    with pytest.raises(ValidationError) as error:
        ComplaintIn().load({**FULL, "mall_id": None, "description": None})
    assert error.value.messages == {"mall_id": ["Field may not be null."], "description": ["Field may not be null."]}
    assert AcknowledgementIn().load({"method": "sms", "acknowledged_at": None}) == {"method": "sms"}
