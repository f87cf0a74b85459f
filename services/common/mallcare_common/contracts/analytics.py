"""Events published by analytics: the SLA clocks (R5.5, R6.2). Each clock is one
deadline another service set; each of these events is published once per clock. And
R7.13: each month's report issued to a member of the mall's management or a department's
head, once per recipient (notify e-mails it)."""

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

PARTS = ("management", "department")  # R7.13 the whole report, or one department's part of it


class ReportFigures(Schema):
    """The part's figures in the mail: a short summary; the page has the rest."""

    complaints = fields.Integer(required=True)
    resolved = fields.Integer(required=True)
    overdue = fields.Integer(required=True)
    satisfaction = fields.Float(required=True, allow_none=True, metadata={"description": "share of answers"})
    sla_compliance = fields.Float(required=True, allow_none=True, metadata={"description": "met / (met + breached)"})
    overdue_cases = fields.List(
        fields.String(), required=True, metadata={"description": "a department's overdue complaints (at most 20)"}
    )


class ReportIssued(Schema):
    delivery_id = fields.String(required=True, metadata={"example": "SHXJH-RPT-2026-11:department:E3011"})
    period = fields.String(required=True, metadata={"example": "2026-11"})
    part = fields.String(required=True, validate=validate.OneOf(PARTS))
    department = fields.String(required=True, allow_none=True, metadata={"description": "the department's part"})
    staff_id = fields.String(required=True, metadata={"description": "the recipient, in resolution's staff directory"})
    role = fields.String(required=True)
    link = fields.String(required=True, metadata={"description": "the report's page"})
    figures = fields.Nested(ReportFigures, required=True)


REPORT_ISSUED = EventType(
    "report_issued",
    "analytics",
    1,
    ReportIssued,
    "R7.13: the month's report (or a department's part of it) for one member of the mall's management "
    "or one department's head; notify e-mails it to them at work. The envelope's complaint_no is the "
    "report's number (SHXJH-RPT-2026-11).",
)

EVENTS = (SLA_AT_RISK, SLA_BREACHED, REPORT_ISSUED)
