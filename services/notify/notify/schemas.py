"""What notify's HTTP and RPC accept and return: messages as staff follow them, masked
(kind, channel, gateway, times and the gateways' answers without the contact; never the
address or number a message went to)."""

from marshmallow import Schema, fields, validate

from mallcare_common.contracts.notify import KINDS, MESSAGE_CHANNELS

from .rules import STATUSES


class MessagesQuery(Schema):
    complaint_no = fields.String(required=True, validate=validate.Length(min=1, max=40))


class FailedQuery(Schema):
    mall_id = fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "default: the caller's mall (every mall, chain-wide); staff of several malls name one"
        },
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class _Attempt(Schema):
    at = fields.AwareDateTime()
    channel = fields.String(allow_none=True)
    gateway = fields.String(allow_none=True)
    outcome = fields.String(metadata={"description": "accepted, temporary, refused, no_contact, contact_gone"})
    error = fields.String(allow_none=True, metadata={"description": "the gateway's answer, scrubbed of contacts"})


class _Sent(Schema):
    at = fields.AwareDateTime()
    gateway = fields.String()
    provider_id = fields.String(allow_none=True, metadata={"description": "the provider's id of the message"})


class _Failure(Schema):
    at = fields.AwareDateTime()
    reason = fields.String(metadata={"description": "refused, gave_up, no_contact, contact_gone, cancelled"})
    error = fields.String(allow_none=True)


class MessageOut(Schema):
    message_id = fields.String(attribute="_id")
    complaint_no = fields.String()
    mall_id = fields.String()
    kind = fields.String(validate=validate.OneOf(KINDS))
    ref = fields.String(metadata={"description": "which one of its kind (proposal, task, round, promised time)"})
    language = fields.String()
    route = fields.String(
        validate=validate.OneOf(MESSAGE_CHANNELS),
        metadata={"description": "the channel the complaint came in by calls for"},
    )
    channel = fields.String(
        allow_none=True,
        metadata={
            "description": "the channel it went by (a fallback when the customer's contact could not take the route)"
        },
    )
    status = fields.String(validate=validate.OneOf(STATUSES))
    not_before = fields.AwareDateTime()
    deadline = fields.AwareDateTime(allow_none=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    attempts = fields.List(fields.Nested(_Attempt))
    sent = fields.Nested(_Sent, allow_none=True)
    failure = fields.Nested(_Failure, allow_none=True)
    created_at = fields.AwareDateTime()
    policy_version = fields.String()


class MessageList(Schema):
    items = fields.List(fields.Nested(MessageOut), required=True)
