"""What analytics' HTTP and RPC accept: report queries and improvement actions (R5.3)."""

from marshmallow import Schema, ValidationError, fields, validate, validates


from mallcare_common.contracts.analytics import ReportFigures

from . import reports
from .actions import STATUSES

_id = dict(validate=validate.Length(min=1, max=64))
_text = dict(validate=validate.Length(min=1, max=2000))


class ReportQuery(Schema):
    period = fields.String(required=True, metadata={"example": "2026-11 or 2026-Q4"})
    mall_id = fields.String(load_default=None, **_id)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "html", "xlsx")))
    lang = fields.String(
        load_default="zh",
        validate=validate.OneOf(("zh", "en")),
        metadata={"description": "the language of a file's or page's headings and words"},
    )

    @validates("period")
    def _period(self, value, **kwargs):
        try:
            reports.kind_of(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc


class _Problem(Schema):
    """The recurring problem analysed: at least a summary; category, area and merchant
    as the report's top-problems table names them."""

    summary = fields.String(required=True, validate=validate.Length(min=1, max=500))
    category = fields.String(load_default=None, **_id)
    area = fields.String(load_default=None, **_id)
    merchant_id = fields.String(load_default=None, **_id)


class ActionIn(Schema):
    mall_id = fields.String(required=True, **_id)
    problem = fields.Nested(_Problem, required=True)
    whys = fields.List(
        fields.String(validate=validate.Length(min=1, max=500)),
        required=True,
        validate=validate.Length(min=1, max=7, error="Give the why-chain: 1 to 7 answers."),
        metadata={"description": "the 5-Why chain, first why first"},
    )
    root_cause = fields.String(required=True, **_text)
    action = fields.String(required=True, **_text)
    owner_id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    due_date = fields.Date(required=True)
    proposal_id = fields.String(
        validate=validate.Length(min=1, max=40),
        metadata={"description": "the proposal for a systemic pattern this analysis answers; it becomes this action"},
    )
    by = fields.String(
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "employee number (over HTTP: the X-Staff-Id header)"},
    )


class ActionDoneIn(Schema):
    evidence = fields.String(required=True, **_text)
    by = fields.String(required=True, validate=validate.Length(min=1, max=20))


class ActionQuery(Schema):
    mall_id = fields.String(load_default=None, **_id)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class IntakeCountsQuery(Schema):
    mall_id = fields.String(load_default=None, **_id)


class LiveReportQuery(Schema):
    mall_id = fields.String(load_default=None, **_id)


class _LiveCounts(Schema):
    open = fields.Integer(required=True)
    at_risk = fields.Integer(required=True, metadata={"description": "at_risk_at <= now < due_at"})
    breached = fields.Integer(required=True, metadata={"description": "due_at <= now, the clock still running"})


class _LiveStage(_LiveCounts):
    stage = fields.String(
        required=True,
        metadata={
            "description": "the clock's name: the stage the complaint waits in (acknowledgement, resolution, ...)"
        },
    )


class _LiveMall(_LiveCounts):
    mall_id = fields.String(required=True)


class _LiveSatisfaction(Schema):
    answered = fields.Integer(required=True)
    satisfied = fields.Integer(required=True)
    dissatisfied = fields.Integer(required=True)
    share = fields.Float(allow_none=True, required=True)


class LiveReportOut(_LiveCounts):
    """The live SLA picture (analytics/live.py). The totals and by_mall count complaints, each
    once in the state of its worst running clock; by_stage counts the running clocks."""

    as_of = fields.AwareDateTime(required=True)
    mall_id = fields.String(allow_none=True, required=True)
    by_stage = fields.List(fields.Nested(_LiveStage), required=True)
    by_mall = fields.List(
        fields.Nested(_LiveMall), required=True, metadata={"description": "most breached first, then most at risk"}
    )
    at_risk_share = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={
            "description": "per clock: the share of the allowed time after which "
            "a deadline is at risk (deploy/policy/analytics.yml)"
        },
    )
    satisfaction = fields.Nested(
        _LiveSatisfaction,
        required=True,
        metadata={"description": "every answer customers gave so far (the tallies mallcare_satisfaction_ratio reads)"},
    )
    policy_version = fields.String(required=True)


class _Window(Schema):
    from_ = fields.Date(required=True, data_key="from")
    until = fields.Date(required=True, metadata={"description": "exclusive"})


class ActionOut(Schema):
    """An improvement action as answered (actions.view). A proposal (status proposed) has
    the pattern and its complaints but no analysis yet (whys empty, the rest null)."""

    action_id = fields.String(required=True)
    mall_id = fields.String(required=True)
    problem = fields.Nested(_Problem, required=True)
    whys = fields.List(fields.String(), required=True)
    root_cause = fields.String(required=True, allow_none=True)
    action = fields.String(required=True, allow_none=True)
    owner_id = fields.String(required=True, allow_none=True)
    due_date = fields.Date(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(("proposed", "open", "done")))
    pattern_key = fields.String(metadata={"description": "mall|merchant or -|category|window start"})
    recurrences = fields.Integer(metadata={"description": "the pattern's count when triage flagged it"})
    complaint_nos = fields.List(fields.String(), metadata={"description": "the complaints that made the pattern"})
    window = fields.Nested(_Window)
    adopted_at = fields.AwareDateTime()
    adopted_by = fields.String()
    created_at = fields.AwareDateTime(required=True)
    created_by = fields.String(required=True)
    done_at = fields.AwareDateTime(allow_none=True)
    done_by = fields.String(allow_none=True)
    evidence = fields.String(allow_none=True)
    overdue = fields.Boolean(required=True)
    review_id = fields.String(metadata={"description": "R7.13 the half-year review whose decision this is"})


class ActionList(Schema):
    items = fields.List(fields.Nested(ActionOut), required=True)


class ClocksOut(Schema):
    complaint_no = fields.String(required=True)
    clocks = fields.List(fields.Dict(), required=True)


class IntakeCountsOut(Schema):
    rows = fields.List(fields.Dict(), required=True)


# --- R7.13: the report sent to management and the departments; the half-year review ----------


def _half_year(value):
    if not (len(value) == 7 and value[:4].isdigit() and value[4:] in ("-H1", "-H2")):
        raise ValidationError("A half year, as 2026-H2.")


class DeliveryQuery(Schema):
    mall_id = fields.String(load_default=None, **_id)
    period = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="A month, as 2026-11."),
        metadata={"example": "2026-11"},
    )
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class DeliveryOut(Schema):
    """One copy of a month's report issued to one person (deliveries.py); notify e-mails it."""

    delivery_id = fields.String(required=True)
    report_no = fields.String(required=True)
    mall_id = fields.String(required=True)
    period = fields.String(required=True)
    part = fields.String(required=True, validate=validate.OneOf(("management", "department")))
    department = fields.String(required=True, allow_none=True)
    staff_id = fields.String(required=True)
    role = fields.String(required=True)
    link = fields.String(required=True)
    figures = fields.Nested(ReportFigures, required=True)
    issued_at = fields.AwareDateTime(required=True)


class DeliveryList(Schema):
    items = fields.List(fields.Nested(DeliveryOut), required=True)


class _Decision(Schema):
    decision = fields.String(required=True, **_text)
    owner_id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    due_date = fields.Date(required=True)


class ReviewIn(Schema):
    """The half-year review meeting: when, the department heads who attended, what it decided."""

    mall_id = fields.String(required=True, **_id)
    period = fields.String(required=True, validate=_half_year, metadata={"example": "2026-H2"})
    held_on = fields.Date(required=True)
    attendees = fields.List(
        fields.String(validate=validate.Length(min=1, max=20)),
        required=True,
        validate=validate.Length(min=1, max=50),
        metadata={"description": "employee numbers of the department heads (and others) who attended"},
    )
    decisions = fields.List(
        fields.Nested(_Decision),
        required=True,
        validate=validate.Length(min=1, max=50),
        metadata={"description": "each becomes an open improvement action with its owner and due date"},
    )
    by = fields.String(
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"description": "employee number (over HTTP: the token's user)"},
    )


class _DecisionOut(Schema):
    decision = fields.String(required=True)
    owner_id = fields.String(required=True)
    due_date = fields.Date(required=True)
    action_id = fields.String(required=True)


class ReviewOut(Schema):
    review_id = fields.String(required=True)
    mall_id = fields.String(required=True)
    period = fields.String(required=True)
    held_on = fields.Date(required=True)
    attendees = fields.List(fields.String(), required=True)
    decisions = fields.List(fields.Nested(_DecisionOut), required=True)
    recorded_at = fields.AwareDateTime(required=True)
    recorded_by = fields.String(required=True)
    actions = fields.List(fields.Nested(ActionOut), metadata={"description": "the decisions' actions as they stand"})


class ReviewQuery(Schema):
    mall_id = fields.String(load_default=None, **_id)
    period = fields.String(load_default=None, validate=_half_year)


class ReviewList(Schema):
    items = fields.List(fields.Nested(ReviewOut), required=True)


# The reports' summary in the OpenAPI document
REPORT = "The report of one mall, or of the whole chain (no mall_id, for chain-wide callers)"
