"""Events published by analytics: the SLA clocks (R5.5, R6.2). Each clock is one
deadline another service set; each of these events is published once per clock."""

from marshmallow import Schema, fields, validate

from .envelope import EventType

CLOCKS = (
    "acknowledgement",
    "first_response",
    "resolution",
    "review_meeting",
    "re_review",
    "execution",
    "rectification",
    "incident_forwarding",
    "incident_handling",
    "incident_communication",
    "revisit",
    "promised",
    "merchant_reply",  # R7.5 the merchant's reply with its evidence, to our deadline
)


class _Clock(Schema):
    clock_id = fields.String(required=True, metadata={"example": "SHXJH-20261123-0042|resolution|1"})
    clock = fields.String(required=True, validate=validate.OneOf(CLOCKS))
    owner = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "employee number, or the department or role that owns it"},
    )
    department = fields.String(allow_none=True, required=True)
    started_at = fields.AwareDateTime(required=True, format="iso")
    due_at = fields.AwareDateTime(required=True, format="iso")


class SlaAtRisk(_Clock):
    at_risk_at = fields.AwareDateTime(
        required=True, format="iso", metadata={"description": "the configured share of the allowed time"}
    )


class SlaBreached(_Clock):
    category = fields.String(allow_none=True, required=True)
    risk_level = fields.String(allow_none=True, required=True)
    lag_seconds = fields.Float(required=True, metadata={"description": "deadline -> this event's detection"})


SLA_AT_RISK = EventType(
    "sla_at_risk",
    "analytics",
    1,
    SlaAtRisk,
    "A deadline is near: most of its allowed time has gone and it is not met yet; "
    "resolution notes it on the case's timeline.",
)
SLA_BREACHED = EventType(
    "sla_breached", "analytics", 1, SlaBreached, "A deadline passed unmet; resolution escalates the case (R3.5, R5.5)."
)

EVENTS = (SLA_AT_RISK, SLA_BREACHED)
