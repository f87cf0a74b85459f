"""Intake's policy: acknowledgement targets per channel (R1.2) and preliminary
review thresholds (R1.4), chain-wide with per-mall overrides, plus the chain's
mall registry. Loaded by mallcare_common.policy.PolicyFiles: a broken file stops
the start with field-level messages instead of running on a guess."""
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mallcare_common.contracts.intake import CHANNELS
from mallcare_common.malls import MallRegistry
from mallcare_common.retention import retention_months_field


class _AckRule(Schema):
    minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=7 * 24 * 60))
    after_hours = fields.String(required=True, validate=validate.OneOf(("clock", "next_opening")))


class _Review(Schema):
    min_description_chars = fields.Integer(strict=True, validate=validate.Range(min=1, max=200))
    complaint_window_days = fields.Integer(strict=True, validate=validate.Range(min=1, max=3650))
    duplicate_window_hours = fields.Integer(strict=True, validate=validate.Range(min=1, max=24 * 30))
    anonymous_channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)))


def _ack_table(**kwargs):
    return fields.Dict(keys=fields.String(validate=validate.OneOf(CHANNELS)),
                       values=fields.Nested(_AckRule), **kwargs)


class _Override(Schema):
    acknowledgement = _ack_table()
    review = fields.Nested(_Review)


class IntakePolicySchema(Schema):
    version = fields.String(required=True)
    acknowledgement = _ack_table(required=True)
    review = fields.Nested(_Review, required=True)
    retention_months = retention_months_field()
    mall_overrides = fields.Dict(keys=fields.String(), values=fields.Nested(_Override), load_default=dict)

    @validates_schema
    def _complete(self, data, **kwargs):
        missing = sorted(set(CHANNELS) - set(data.get("acknowledgement", {})))
        if missing:
            raise ValidationError(f"No acknowledgement rule for: {', '.join(missing)}.", "acknowledgement")
        missing = sorted(set(_Review().fields) - set(data.get("review", {})))
        if missing:
            raise ValidationError(f"Missing review settings: {', '.join(missing)}.", "review")


@dataclass(frozen=True)
class IntakePolicy:
    version: str            # "<intake version>+malls:<registry version>", recorded on every complaint
    malls: MallRegistry
    rules: dict

    def acknowledgement_rule(self, mall_id: str, channel: str) -> dict[str, Any]:
        override = self.rules["mall_overrides"].get(mall_id, {}).get("acknowledgement", {})
        return override.get(channel) or self.rules["acknowledgement"][channel]

    def review(self, mall_id: str) -> dict[str, Any]:
        override = self.rules["mall_overrides"].get(mall_id, {}).get("review", {})
        return {**self.rules["review"], **override}

    def public(self) -> dict[str, Any]:
        """The policy in force, as an RPC/HTTP answer."""
        return {**self.rules, "version": self.version}


def load_policy(intake_data, malls: MallRegistry) -> IntakePolicy:
    rules = IntakePolicySchema().load(intake_data)
    unknown = sorted(set(rules["mall_overrides"]) - set(malls.malls))
    if unknown:
        raise ValidationError({"mall_overrides": [f"Unknown mall: {m}." for m in unknown]})
    return IntakePolicy(version=f"{rules['version']}+malls:{malls.version}", malls=malls, rules=rules)
