"""Analytics' policy (R5.5, R5.3, R7.13): the at-risk share of each SLA clock, the window of
the improvement-action proposals for systemic patterns, and who gets the month's report
when, as validated data."""

from dataclasses import dataclass

from marshmallow import Schema, fields, validate

from mallcare_common.contracts.analytics import CLOCKS
from mallcare_common.malls import MallRegistry

_share = fields.Float(validate=validate.Range(min=0.05, max=0.99))


class _Sla(Schema):
    at_risk_share = fields.Float(required=True, validate=validate.Range(min=0.05, max=0.99))
    at_risk_share_by_clock = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CLOCKS)), values=_share, load_default=dict
    )


class _Improvement(Schema):
    # triage's systemic window (deploy/policy/triage.yml urgency.systemic.window_days)
    proposal_window_days = fields.Integer(required=True, validate=validate.Range(min=1, max=366))


class _ManagementReports(Schema):
    """R7.13: the month's report sent by itself to each mall's management and each department's head."""

    send_on_day = fields.Integer(required=True, validate=validate.Range(min=1, max=28))
    management_roles = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)), required=True, validate=validate.Length(min=1)
    )
    page = fields.Url(
        required=True,
        require_tld=False,
        metadata={"description": "analytics' monthly report page as staff reach it; the period and mall follow"},
    )


class AnalyticsPolicySchema(Schema):
    version = fields.String(required=True)
    sla = fields.Nested(_Sla, required=True)
    improvement = fields.Nested(_Improvement, required=True)
    management_reports = fields.Nested(_ManagementReports, required=True)


@dataclass(frozen=True)
class AnalyticsPolicy:
    version: str
    malls: MallRegistry
    rules: dict

    def at_risk_share(self, clock):
        sla = self.rules["sla"]
        return sla["at_risk_share_by_clock"].get(clock, sla["at_risk_share"])

    def public(self):
        return {**self.rules, "version": self.version}


def load_policy(data, malls: MallRegistry) -> AnalyticsPolicy:
    rules = AnalyticsPolicySchema().load(data)
    return AnalyticsPolicy(version=f"{rules['version']}+malls:{malls.version}", malls=malls, rules=rules)
