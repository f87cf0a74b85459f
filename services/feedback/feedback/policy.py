"""Feedback's policy (R4.1-R4.4) as validated data: revisit timing, quiet hours and
the way to ask per channel, what counts as satisfied, reason tags (with the answer
page's words for them) and the case library, chain-wide with per-mall overrides; loaded by
mallcare_common.policy.PolicyFiles."""

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from mallcare_common.contracts.feedback import CONTACT_WAYS, SURVEY_WAYS
from mallcare_common.contracts.intake import CHANNELS
from mallcare_common.malls import Hours, MallRegistry
from mallcare_common.policy import AllowedTime


class _Revisit(Schema):
    after = fields.Nested(AllowedTime, required=True)
    within = fields.Nested(AllowedTime, required=True)
    quiet_hours = Hours(required=True)
    max_attempts = fields.Integer(required=True, validate=validate.Range(min=1, max=10))
    retry_after = fields.Nested(AllowedTime, required=True)
    link_valid = fields.Nested(AllowedTime, required=True)
    ways = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CHANNELS)),
        values=fields.String(validate=validate.OneOf(CONTACT_WAYS)),
        required=True,
    )


class _ReasonLabels(Schema):
    """What the customer's answer page shows for a reason tag, in each of its languages."""

    zh = fields.String(required=True, validate=validate.Length(min=1, max=40))
    en = fields.String(required=True, validate=validate.Length(min=1, max=80))


class _MonthlyReview(Schema):
    """R7.14: which closed cases of a month are candidates for the library, and from which
    day of the next month a review not done is announced."""

    reopened = fields.Boolean(required=True)
    dissatisfied = fields.Boolean(required=True)
    risk_levels = fields.List(fields.String(validate=validate.OneOf(("low", "medium", "high"))), required=True)
    remind_on_day = fields.Integer(required=True, validate=validate.Range(min=1, max=28))


class _Library(Schema):
    automatic_risk_levels = fields.List(
        fields.String(validate=validate.OneOf(("low", "medium", "high"))), required=True
    )
    monthly_review = fields.Nested(_MonthlyReview, required=True)


class _Surveys(Schema):
    """R7.12: each mall's periodic satisfaction survey of a sample of the customers whose
    cases closed in the month before, by SMS or app message (answered by its link)."""

    day_of_month = fields.Integer(required=True, validate=validate.Range(min=1, max=28))
    sample_per_mall = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    link_valid = fields.Nested(AllowedTime, required=True)
    ways = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CHANNELS)),
        values=fields.String(validate=validate.OneOf(SURVEY_WAYS)),
        required=True,
    )


class _Override(Schema):
    revisit = fields.Nested(_Revisit(partial=True))


class FeedbackPolicySchema(Schema):
    version = fields.String(required=True)
    revisit = fields.Nested(_Revisit, required=True)
    satisfied_from = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    reason_tags = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=40)),
        values=fields.Nested(_ReasonLabels),
        required=True,
        validate=validate.Length(min=1),
    )
    library = fields.Nested(_Library, required=True)
    surveys = fields.Nested(_Surveys, required=True)
    mall_overrides = fields.Dict(keys=fields.String(), values=fields.Nested(_Override), load_default=dict)


@dataclass(frozen=True)
class FeedbackPolicy:
    version: str
    malls: MallRegistry
    rules: dict

    def revisit(self, mall_id: str) -> dict[str, Any]:
        return {**self.rules["revisit"], **self.rules["mall_overrides"].get(mall_id, {}).get("revisit", {})}

    def public(self) -> dict[str, Any]:
        return {**self.rules, "version": self.version}


def load_policy(data, malls: MallRegistry) -> FeedbackPolicy:
    rules = FeedbackPolicySchema().load(data)
    missing = sorted(set(CHANNELS) - set(rules["revisit"]["ways"]))
    if missing:
        raise ValidationError({"revisit": {"ways": [f"No way to ask for: {', '.join(missing)}."]}})
    missing = sorted(set(CHANNELS) - set(rules["surveys"]["ways"]))
    if missing:
        raise ValidationError({"surveys": {"ways": [f"No way to survey: {', '.join(missing)}."]}})
    unknown = sorted(set(rules["mall_overrides"]) - set(malls.malls))
    if unknown:
        raise ValidationError({"mall_overrides": [f"Unknown mall: {m}." for m in unknown]})
    policy = FeedbackPolicy(version=f"{rules['version']}+malls:{malls.version}", malls=malls, rules=rules)
    for mall_id in rules["mall_overrides"]:  # an override's `ways` replaces the chain's whole table
        missing = sorted(set(CHANNELS) - set(policy.revisit(mall_id)["ways"]))
        if missing:
            raise ValidationError(
                {"mall_overrides": {mall_id: {"revisit": {"ways": [f"No way to ask for: {', '.join(missing)}."]}}}}
            )
    return policy
