"""Analytics' policy (R5.5, R5.3): the at-risk share of each SLA clock and the window of
the improvement-action proposals for systemic patterns, as validated data."""

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


class AnalyticsPolicySchema(Schema):
    version = fields.String(required=True)
    sla = fields.Nested(_Sla, required=True)
    improvement = fields.Nested(_Improvement, required=True)


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
