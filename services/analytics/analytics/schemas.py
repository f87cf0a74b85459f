"""What analytics' HTTP and RPC accept: report queries and improvement actions (R5.3)."""
from marshmallow import Schema, ValidationError, fields, validate, validates

from . import reports
from .actions import STATUSES

_id = dict(validate=validate.Length(min=1, max=64))
_text = dict(validate=validate.Length(min=1, max=2000))


class ReportQuery(Schema):
    period = fields.String(required=True, metadata={"example": "2026-11 or 2026-Q4"})
    mall_id = fields.String(load_default=None, **_id)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "html")))

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
    whys = fields.List(fields.String(validate=validate.Length(min=1, max=500)), required=True,
                       validate=validate.Length(min=1, max=7, error="Give the why-chain: 1 to 7 answers."),
                       metadata={"description": "the 5-Why chain, first why first"})
    root_cause = fields.String(required=True, **_text)
    action = fields.String(required=True, **_text)
    owner_id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    due_date = fields.Date(required=True)
    by = fields.String(required=True, validate=validate.Length(min=1, max=20),
                       metadata={"description": "employee number (over HTTP: the X-Staff-Id header)"})


class ActionDoneIn(Schema):
    evidence = fields.String(required=True, **_text)
    by = fields.String(required=True, validate=validate.Length(min=1, max=20))


class ActionQuery(Schema):
    mall_id = fields.String(load_default=None, **_id)
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))
