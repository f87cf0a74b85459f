"""Intake's policy: acknowledgement targets per channel (R1.2) and preliminary
review thresholds (R1.4), chain-wide with per-mall overrides, each mall's WeChat
official account and complaint mailbox (R7.2; their secrets by name), the limits of the
customer's own pages and each mall's poster (R7.2), plus the chain's mall registry.
Loaded by mallcare_common.policy.PolicyFiles: a broken file stops the start with
field-level messages instead of running on a guess."""

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
    return fields.Dict(keys=fields.String(validate=validate.OneOf(CHANNELS)), values=fields.Nested(_AckRule), **kwargs)


class _Override(Schema):
    acknowledgement = _ack_table()
    review = fields.Nested(_Review)


def _secret_name(**kwargs):
    """The name a secret goes by in the secrets file (or MALLCARE_<NAME>): never the secret itself."""
    return fields.String(
        validate=validate.Regexp(
            r"^[A-Z][A-Z0-9_]{2,63}$", error="A secret's name, such as WECHAT_TOKEN_SH_XUJIAHUI, not the secret."
        ),
        **kwargs,
    )


class _WechatAccount(Schema):
    account = fields.String(
        required=True,
        validate=validate.Regexp(r"^gh_[A-Za-z0-9]{4,32}$", error="The official account's original ID (gh_...)."),
    )
    token = _secret_name(required=True)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Mailbox(Schema):
    host = fields.String(required=True, validate=validate.Length(min=1, max=253))
    port = fields.Integer(strict=True, validate=validate.Range(min=1, max=65535))
    # tls: IMAPS (993); starttls: IMAP (143) upgraded; none: only to a server on this host
    security = fields.String(load_default="tls", validate=validate.OneOf(("tls", "starttls", "none")))
    user = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = _secret_name(required=True)
    folder = fields.String(load_default="INBOX", validate=validate.Length(min=1, max=200))

    @validates_schema
    def _not_in_clear(self, data, **kwargs):
        if data.get("security") == "none" and data.get("host") not in LOOPBACK:
            raise ValidationError("A password goes unencrypted only to this host: use tls or starttls.", "security")


class _Words(Schema):
    zh = fields.String(required=True, validate=validate.Length(min=1, max=100))
    en = fields.String(required=True, validate=validate.Length(min=1, max=100))


class _Poster(Schema):
    """What a mall's poster lists beside the page's QR code (each left off when not given)."""

    hotline = fields.String(validate=validate.Regexp(r"^[0-9+][0-9 ()-]{4,24}$", error="A phone number to call."))
    wechat = fields.String(
        validate=validate.Length(min=1, max=40), metadata={"description": "the official account's name to search for"}
    )
    desk = fields.Nested(_Words, metadata={"description": "where the service desk is"})


class _PerMinute(Schema):
    submissions = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))
    lookups = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))


class _Portal(Schema):
    per_address_per_minute = fields.Nested(_PerMinute, required=True)
    posters = fields.Dict(keys=fields.String(), values=fields.Nested(_Poster), load_default=dict)


class IntakePolicySchema(Schema):
    version = fields.String(required=True)
    acknowledgement = _ack_table(required=True)
    review = fields.Nested(_Review, required=True)
    retention_months = retention_months_field()
    mall_overrides = fields.Dict(keys=fields.String(), values=fields.Nested(_Override), load_default=dict)
    # R7.2, per mall: the official account whose messages come to the callback, the complaint mailbox
    wechat = fields.Dict(keys=fields.String(), values=fields.Nested(_WechatAccount), load_default=dict)
    mailboxes = fields.Dict(keys=fields.String(), values=fields.Nested(_Mailbox), load_default=dict)
    # R7.2: the customer's own pages (intake.portal), their limits and each mall's poster
    portal = fields.Nested(_Portal, required=True)

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
    version: str  # "<intake version>+malls:<registry version>", recorded on every complaint
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
    named = {section: rules[section] for section in ("mall_overrides", "wechat", "mailboxes")}
    named["portal"] = rules["portal"]["posters"]
    unknown = {
        section: [f"Unknown mall: {m}." for m in sorted(set(malls_named) - set(malls.malls))]
        for section, malls_named in named.items()
    }
    if any(unknown.values()):
        raise ValidationError({section: messages for section, messages in unknown.items() if messages})
    return IntakePolicy(version=f"{rules['version']}+malls:{malls.version}", malls=malls, rules=rules)
