"""Events published by triage. Staff are named by employee number; no customer data."""

from marshmallow import Schema, fields, validate

from .envelope import EventType, FreeText

LEVELS = ("low", "medium", "high")
# R2.2, R7.4: high risk is always urgent; recurrence is the separate `systemic` flag.
# "systemic" stays accepted as an urgency so events stored before 2026-12 still load.
URGENCIES = ("urgent", "routine", "systemic")


class _RiskReason(Schema):
    reason = fields.String(required=True)
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    detail = FreeText(required=True)


class _Demand(Schema):
    multiple = fields.Float(allow_none=True, required=True, metadata={"description": "e.g. 20 for 要求20倍赔偿"})
    amount_fen = fields.Integer(allow_none=True, required=True, metadata={"description": "a sum asked for, in fen"})
    price_fen = fields.Integer(allow_none=True, required=True, metadata={"description": "the price named, in fen"})
    mental_damages = fields.Boolean(required=True, metadata={"description": "asks for 精神损失费"})


class Assessment(Schema):
    category = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "attribute.sub_type (R2.1); null until a person classifies it"},
    )
    category_source = fields.String(
        required=True,
        validate=validate.OneOf(("channel_form", "keywords", "none", "corrected")),
        metadata={
            "description": "keywords = read from the text (phrase rules and the learned second opinion); "
            "see category_confirmed"
        },
    )
    risk_level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    risk_reasons = fields.List(fields.Nested(_RiskReason), required=True)
    urgency = fields.String(
        required=True,
        validate=validate.OneOf(URGENCIES),
        metadata={"description": "urgent or routine (systemic only in events before 2026-12)"},
    )
    systemic = fields.Boolean(
        load_default=False,
        metadata={
            "description": "a recurring problem (R2.2): the same category at this mall or merchant reached the "
            "policy's threshold; stands beside urgency; added in v1"
        },
    )
    recurrences = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0),
        metadata={"description": "complaints of this category here in the policy's window, this one included"},
    )
    category_confirmed = fields.Boolean(
        load_default=True,
        metadata={
            "description": "false when the category is a proposal below the confidence threshold, for a person to "
            "confirm"
        },
    )
    category_confidence = fields.Float(allow_none=True, load_default=None, validate=validate.Range(min=0, max=1))
    demand = fields.Nested(
        _Demand,
        allow_none=True,
        load_default=None,
        metadata={"description": "what the customer's expectation asks, read for multiples and amounts"},
    )
    department = fields.String(required=True)
    review_meeting = fields.Boolean(
        required=True, metadata={"description": "cross-department dispute: operations director convenes"}
    )
    departments_involved = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": "the departments a dispute spans (empty unless review_meeting); added in v1"},
    )
    owner_id = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "handler's employee number; null when nobody is on shift"},
    )
    first_response_due_at = fields.AwareDateTime(required=True, format="iso")
    resolution_due_at = fields.AwareDateTime(required=True, format="iso")
    policy_version = fields.String(required=True)


class _Product(Schema):
    barcode = fields.String(allow_none=True, required=True, metadata={"description": "as the channel's form gave it"})
    batch = fields.String(
        allow_none=True, required=True, metadata={"description": "the batch (lot) code, from the text: 批号20261201"}
    )


class ComplaintTriaged(Assessment):
    received_at = fields.AwareDateTime(required=True, format="iso")
    channel = fields.String(required=True)
    merchant_id = fields.String(allow_none=True, required=True)
    product = fields.Nested(
        _Product,
        allow_none=True,
        load_default=None,
        metadata={
            "description": "the goods' barcode and batch code when the complaint names either (R7.6: a product "
            "complaint starts a check of its batch); null otherwise; added in v1"
        },
    )


class ComplaintReassigned(Schema):
    from_owner_id = fields.String(allow_none=True, required=True)
    to_owner_id = fields.String(required=True)
    department = fields.String(required=True)
    by = fields.String(required=True)
    reason = FreeText(required=True)


class ComplaintCorrected(Assessment):
    field = fields.String(required=True, validate=validate.OneOf(("category", "risk_level")))
    old = fields.String(allow_none=True, required=True)
    new = fields.String(required=True)
    by = fields.String(required=True)
    reason = FreeText(required=True)


COMPLAINT_TRIAGED = EventType(
    "complaint_triaged",
    "triage",
    1,
    ComplaintTriaged,
    "Triage graded and routed a complaint: category, risk and why, urgency, department, owner, deadlines.",
)
COMPLAINT_REASSIGNED = EventType(
    "complaint_reassigned",
    "triage",
    1,
    ComplaintReassigned,
    "The complaint has a new owner: given by a person, by the sweep once someone is on shift, or by the "
    "review meeting's decision (R2.4); the department follows.",
)
COMPLAINT_CORRECTED = EventType(
    "complaint_corrected",
    "triage",
    1,
    ComplaintCorrected,
    "A person corrected the category or the risk; routing and deadlines were worked out again.",
)
