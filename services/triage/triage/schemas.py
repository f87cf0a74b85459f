"""What triage's HTTP and RPC accept and return."""

from marshmallow import Schema, fields, validate

from mallcare_common.contracts.triage import LEVELS, URGENCIES
from mallcare_common.personal import MaskedOut

_who = dict(required=True, validate=validate.Length(min=1, max=64))


class CorrectionIn(Schema):
    field = fields.String(required=True, validate=validate.OneOf(("category", "risk_level")))
    value = fields.String(required=True, validate=validate.Length(min=1, max=64))
    by = fields.String(**_who)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ReassignmentIn(Schema):
    owner_id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    by = fields.String(**_who)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class QueueQuery(Schema):
    mall_id = fields.String(validate=validate.Length(max=64))
    department = fields.String(validate=validate.Length(max=64))
    owner_id = fields.String(validate=validate.Length(max=20))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class _Owner(Schema):
    id = fields.String()
    name = fields.String()


class _Reason(Schema):
    reason = fields.String()
    level = fields.String(validate=validate.OneOf(LEVELS))
    detail = fields.String()


class _Demand(Schema):
    multiple = fields.Float(allow_none=True, metadata={"description": "e.g. 20 for 要求20倍赔偿"})
    amount_fen = fields.Integer(allow_none=True, metadata={"description": "a sum asked for, in fen"})
    price_fen = fields.Integer(allow_none=True, metadata={"description": "the price named, in fen"})
    mental_damages = fields.Boolean()


class _HistoryEntry(Schema):
    at = fields.AwareDateTime()
    action = fields.String()
    by = fields.String()
    reason = fields.String()
    field = fields.String()
    old = fields.String(allow_none=True)
    new = fields.String()


class _Mood(Schema):
    emotion = fields.String(allow_none=True)
    anger_score = fields.Integer(allow_none=True, metadata={"description": "1 calm .. 5 furious, as judged by staff"})
    tone_note = fields.String(allow_none=True, metadata={"description": "the customer's tone and attitude, briefly"})


class AssessmentOut(MaskedOut):
    # the staff's reasons for corrections and reassignments (triage holds no customer name)
    free_text = ("risk_reasons", "history", "mood")

    complaint_no = fields.String(attribute="_id")
    mall_id = fields.String()
    status = fields.String()
    channel = fields.String()
    merchant_id = fields.String(allow_none=True)
    received_at = fields.AwareDateTime()
    opened_at = fields.AwareDateTime(attribute="triaged_at")
    category = fields.String(allow_none=True)
    category_source = fields.String()
    category_confirmed = fields.Boolean(
        dump_default=True,
        metadata={
            "description": "false while the category is a proposal below the policy's confidence, for a person to "
            "confirm (a correction confirms it)"
        },
    )
    category_confidence = fields.Float(allow_none=True)
    demand = fields.Nested(_Demand, allow_none=True, metadata={"description": "what the expectation asks, parsed"})
    mood = fields.Nested(
        _Mood,
        attribute="complaint",
        metadata={"description": "how the customer was when they complained, as the staff recorded it (R7.3)"},
    )
    risk_level = fields.String(validate=validate.OneOf(LEVELS))
    risk_reasons = fields.List(fields.Nested(_Reason))
    urgency = fields.String(
        validate=validate.OneOf(URGENCIES),
        metadata={"description": "urgent (high risk) or routine; systemic only on assessments made before 2026-12"},
    )
    systemic = fields.Boolean(
        dump_default=False,
        metadata={"description": "the category recurs here at the policy's threshold (R2.2); beside urgency"},
    )
    recurrences = fields.Integer()
    department = fields.String()
    routing_basis = fields.String()
    review_meeting = fields.Boolean()
    departments_involved = fields.List(fields.String())
    owner = fields.Nested(_Owner, allow_none=True)
    first_response_due_at = fields.AwareDateTime()
    resolution_due_at = fields.AwareDateTime()
    policy_version = fields.String()
    history = fields.List(fields.Nested(_HistoryEntry))


class AssessmentQueue(Schema):
    items = fields.List(fields.Nested(AssessmentOut), required=True, metadata={"description": "without history"})
