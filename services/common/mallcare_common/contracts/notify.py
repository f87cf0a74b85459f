"""Events published by notify (R1.2, R3.2, R3.3, R3.7, R4.1, R7.1, R7.5, R7.7): each message
to a customer (or, merchant_request, to the merchant a tenant's case was sent to; or, lead, to
a high-risk case's lead; or, report, R7.13, the month's report to a member of a mall's
management or a department's head) once a gateway accepted it, or once it finally failed. Never the contact it
went to: kind, channel, gateway and times only. Intake meets the acknowledgement
clock on an accepted acknowledgement; resolution puts both on the case's timeline."""

from marshmallow import Schema, fields, validate

from .envelope import EventType, FreeText

KINDS = (
    "acknowledgement",
    "promise",
    "answer",
    "execution",
    "revisit",
    "merchant_request",
    "lead",
    "survey",
    "report",
    "batch_result",
)
MESSAGE_CHANNELS = ("sms", "email", "wechat", "app")
FAILURES = ("refused", "gave_up", "no_contact", "contact_gone")


class _Message(Schema):
    message_id = fields.String(required=True, metadata={"example": "SHXJH-20261123-0042:acknowledgement:1"})
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    ref = fields.String(
        required=True,
        metadata={
            "description": "which one of its kind: 1 (acknowledgement), the promised time (promise), the proposal "
            "(answer), the task (execution), the round (revisit), the request (merchant_request), "
            "the lead's employee number (lead), the month surveyed (survey), "
            "the part and recipient (report: management:E3091)"
        },
    )
    attempts = fields.Integer(required=True, metadata={"description": "gateway attempts, this one included"})


class MessageSent(_Message):
    channel = fields.String(required=True, validate=validate.OneOf(MESSAGE_CHANNELS))
    gateway = fields.String(required=True, metadata={"description": "the gateway that accepted it, e.g. smtp"})
    accepted_at = fields.AwareDateTime(
        required=True, format="iso", metadata={"description": "when the gateway accepted it"}
    )


class MessageFailed(_Message):
    channel = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(MESSAGE_CHANNELS),
        metadata={"description": "null when no channel could take it (no contact)"},
    )
    gateway = fields.String(required=True, allow_none=True)
    reason = fields.String(
        required=True,
        validate=validate.OneOf(FAILURES),
        metadata={
            "description": "refused by the gateway, gave up after the last attempt, no contact for any channel, "
            "or the customer's record was anonymised"
        },
    )
    error = FreeText(required=True, allow_none=True, metadata={"description": "the last gateway's answer"})
    failed_at = fields.AwareDateTime(required=True, format="iso")


MESSAGE_SENT = EventType(
    "message_sent",
    "notify",
    1,
    MessageSent,
    "A gateway accepted a message to the customer; an acknowledgement meets intake's clock.",
)
MESSAGE_FAILED = EventType(
    "message_failed",
    "notify",
    1,
    MessageFailed,
    "A message to the customer could not be sent (refused, or after the last attempt): a person follows up.",
)

EVENTS = (MESSAGE_SENT, MESSAGE_FAILED)
