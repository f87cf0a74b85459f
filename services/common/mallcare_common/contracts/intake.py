"""Events published by intake. No customer name, phone or email leaves intake:
subscribers get a pseudonymous customer reference and masked contact only."""

from marshmallow import Schema, fields, validate

from .envelope import SCRUBBED, EventType, FreeText

CHANNELS = ("desk", "hotline", "web", "app", "mini_program", "wechat", "social", "email", "suggestion_box")
REJECTION_REASONS = ("insufficient_information", "out_of_scope", "duplicate")
_TOLD = {"description": f"as the customer told it, {SCRUBBED}, and their own name by [name]"}


class _Customer(Schema):
    ref = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "pseudonymous, stable per contact; null when the customer left none"},
    )
    contact_masked = fields.String(allow_none=True, metadata={"example": "138****5678"})
    member_tier = fields.String(allow_none=True)


class _Location(Schema):
    area = fields.String(allow_none=True)
    merchant_id = fields.String(allow_none=True)
    merchant_name = fields.String(allow_none=True)
    store = fields.String(allow_none=True)


class _Product(Schema):
    barcode = fields.String(allow_none=True)
    brand = fields.String(allow_none=True)
    model = fields.String(allow_none=True)


class _Demands(Schema):
    fact = FreeText(allow_none=True, metadata=_TOLD)
    expectation = FreeText(allow_none=True, metadata=_TOLD)


class ComplaintRegistered(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    channel_ref = fields.String(allow_none=True)
    received_at = fields.AwareDateTime(required=True, format="iso")
    ack_due_at = fields.AwareDateTime(required=True, format="iso")
    incident_time = fields.AwareDateTime(allow_none=True, format="iso")
    incident_time_band = fields.String(allow_none=True)
    customer = fields.Nested(_Customer, required=True)
    location = fields.Nested(_Location, required=True)
    staff_involved = fields.List(fields.String(), required=True)
    product = fields.Nested(_Product, allow_none=True)
    order_no = fields.String(allow_none=True)
    description = FreeText(required=True, metadata=_TOLD)
    demands = fields.Nested(_Demands, required=True)
    emotion = fields.String(allow_none=True)
    anger_score = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1, max=5),
        metadata={"description": "1 calm .. 5 furious, as judged by staff"},
    )
    tone_note = FreeText(
        allow_none=True,
        load_default=None,
        metadata={"description": f"staff's short note of the customer's tone and attitude, {SCRUBBED}"},
    )
    category_hint = fields.String(
        allow_none=True, metadata={"description": "category chosen on the channel's form, if any; triage decides"}
    )
    policy_version = fields.String(required=True, metadata={"description": "intake policy used for the decision"})


class ComplaintRejected(Schema):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    received_at = fields.AwareDateTime(required=True, format="iso")
    reason = fields.String(required=True, validate=validate.OneOf(REJECTION_REASONS))
    detail = fields.String(required=True)
    duplicate_of = fields.String(allow_none=True)
    policy_version = fields.String(required=True, metadata={"description": "intake policy used for the decision"})


class ComplaintAcknowledged(Schema):
    acknowledged_at = fields.AwareDateTime(required=True, format="iso")
    acknowledged_by = fields.String(required=True)
    method = fields.String(required=True)
    ack_due_at = fields.AwareDateTime(required=True, format="iso")
    within_deadline = fields.Boolean(required=True)
    message_id = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "notify's message that acknowledged it (acknowledged_by notify); null for a person's"},
    )


class CustomerReplied(Schema):
    channel = fields.String(
        required=True,
        validate=validate.OneOf(CHANNELS),
        metadata={"description": "where the reply came in (e-mail: a reply to one of our mails)"},
    )
    received_at = fields.AwareDateTime(required=True, format="iso")
    replied_to = fields.String(
        allow_none=True,
        metadata={
            "description": "which of our messages it answers, `<kind>.<round>` of that message's id; null when only "
            "the subject's [complaint number] named the complaint",
            "example": "answer.1",
        },
    )
    from_customer = fields.Boolean(
        required=True,
        metadata={
            "description": "sent from the contact the complaint holds (else from another address: read with care)"
        },
    )
    text = FreeText(
        required=True,
        metadata={
            "description": f"the reply's subject and text as written, {SCRUBBED}, and the customer's own name by "
            "[name]; cut at 2,000 characters (the complaint keeps it whole)"
        },
    )
    attachments = fields.Integer(required=True, metadata={"description": "files attached (kept by intake)"})


COMPLAINT_REGISTERED = EventType(
    "complaint_registered",
    "intake",
    1,
    ComplaintRegistered,
    "A valid complaint was taken in and numbered; its acknowledgement is due by ack_due_at.",
)
COMPLAINT_REJECTED = EventType(
    "complaint_rejected",
    "intake",
    1,
    ComplaintRejected,
    "Preliminary review refused a complaint (kept, numbered, with the reason).",
)
COMPLAINT_ACKNOWLEDGED = EventType(
    "complaint_acknowledged",
    "intake",
    1,
    ComplaintAcknowledged,
    "The customer was told the complaint was received; records who, how and whether in time.",
)
CUSTOMER_REPLIED = EventType(
    "customer_replied",
    "intake",
    1,
    CustomerReplied,
    "The customer answered one of our messages about a complaint (an e-mail reply, threaded to its complaint "
    "instead of becoming a new one); intake keeps it on the complaint, resolution on the case's timeline.",
)
