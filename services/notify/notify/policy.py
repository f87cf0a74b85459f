"""Notify's policy (R7.1) as validated data: the channel each message takes, quiet hours,
retries, the gateways of each channel and the texts in each language, chain-wide with
per-mall overrides; loaded by mallcare_common.policy.PolicyFiles.

The texts are Jinja2 templates compiled in a sandbox (policy is data an operator edits:
a template may read the values it is given, never call into the service), each tried at
load on a sample of what it will be given, so that a misspelt variable is refused with
the file rather than failing a message later."""

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

from mallcare_common.contracts.intake import CHANNELS
from mallcare_common.contracts.notify import KINDS, MESSAGE_CHANNELS
from mallcare_common.malls import Hours, MallRegistry

GATEWAY_KINDS = ("smtp", "aliyun_sms", "wechat", "webhook")
PARTS = ("short", "subject", "text")
ROUTES = (*MESSAGE_CHANNELS, "none")
TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)

# What each kind's templates are given (rules.context builds the real ones), to try them at load.
_COMMON = {"mall": "上海徐家汇店", "complaint_no": "SHXJH-20261123-0042", "brief": False}
_REMEDY = {"name": "退款", "amount": "39.90"}
SAMPLES = {
    "acknowledgement": {"received_at": "11月23日 10:00"},
    "promise": {"expected_by": "11月25日 18:00"},
    "batch_result": {"batch": "20261201", "barcode": None, "summary": "该批次酸奶胀袋，已全部下架并退回供应商"},
    "answer": {
        "decision": "支持您的诉求",
        "reasons": ["草莓霉变"],
        "remedies": [_REMEDY],
        "text": "已为您退款。",
        "appeal": "如对处理结果有异议……",
        "appeal_short": "如有异议……",
    },
    "execution": {"task": _REMEDY},
    "merchant_request": {
        "merchant": "一点点奶茶",
        "due_at": "11月25日 18:00",
        "link": "https://care.example.com/merchant/cases/SHXJH-20261123-0042",
    },
    # as long as feedback's links are: the brief SMS must fit with it
    "revisit": {
        "link": "https://care.example.com/answers?token=" + "x" * 44 + "." + "y" * 43,
        "valid_until": "11月26日 12:00",
    },
    "lead": {"role": "legal", "name": "蒋律师"},
    "survey": {
        "link": "https://care.example.com/answers?token=" + "x" * 48 + "." + "y" * 43,
        "valid_until": "12月10日 12:00",
    },
    "report": {
        "name": "钱芳",
        "period": "2026-11",
        "department": "客服部",
        "link": "http://127.0.0.1:8005/reports/monthly.html?period=2026-11&mall_id=sh-xujiahui",
        "figures": {
            "complaints": 12,
            "resolved": 10,
            "overdue": 1,
            "overdue_cases": ["SHXJH-20261123-0042"],
            "satisfaction": "90%",
            "sla_compliance": "95%",
        },
    },
}


class _Gateway(Schema):
    """One channel's gateway: its kind, and the settings that kind takes (notify.gateways)."""

    class Meta:
        unknown = INCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(GATEWAY_KINDS))
    secrets = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.Regexp(r"^[A-Z][A-Z0-9_]*$")),
        load_default=dict,
        metadata={"description": "setting -> the name of the secret it takes"},
    )


class _Quiet(Schema):
    hours = Hours(required=True)
    channels = fields.List(fields.String(validate=validate.OneOf(MESSAGE_CHANNELS)), required=True)
    deadline_overrides = fields.List(fields.String(validate=validate.OneOf(KINDS)), required=True)


class _Retry(Schema):
    max_attempts = fields.Integer(required=True, validate=validate.Range(min=1, max=20))
    first_after_seconds = fields.Integer(required=True, validate=validate.Range(min=1, max=86400))
    factor = fields.Float(required=True, validate=validate.Range(min=1, max=10))
    max_after_seconds = fields.Integer(required=True, validate=validate.Range(min=1, max=86400))


class _Kind(Schema):
    short = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=500))
    text = fields.String(required=True, validate=validate.Length(min=1, max=10000))


class _Language(Schema):
    time_format = fields.String(required=True, validate=validate.Length(min=2, max=40))
    decisions = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    remedies = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    departments = fields.Dict(
        keys=fields.String(), values=fields.String(), load_default=dict, metadata={"description": "R7.13 reports"}
    )
    appeal_short = fields.String(required=True, validate=validate.Length(min=1, max=200))
    html = fields.String(required=True, validate=validate.Length(min=1, max=20000))
    templates = fields.Dict(
        keys=fields.String(validate=validate.OneOf(KINDS)), values=fields.Nested(_Kind), required=True
    )


class _KindOverride(Schema):
    short = fields.String(validate=validate.Length(min=1, max=2000))
    subject = fields.String(validate=validate.Length(min=1, max=500))
    text = fields.String(validate=validate.Length(min=1, max=10000))


class _Override(Schema):
    default_language = fields.String()
    quiet_hours = fields.Nested(_Quiet)
    gateways = fields.Dict(
        keys=fields.String(validate=validate.OneOf(MESSAGE_CHANNELS)), values=fields.Nested(_Gateway)
    )
    templates = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)), values=fields.Nested(_KindOverride)),
    )


class _Merchants(Schema):
    """R7.5: how a merchant is told of a tenant's case sent to it, and where it reads and answers it."""

    channel = fields.String(required=True, validate=validate.OneOf(("email", "sms")))
    page = fields.Url(
        required=True,
        require_tld=False,
        metadata={"description": "resolution's merchant cases, as the merchant reaches them; the number follows"},
    )


class NotifyPolicySchema(Schema):
    version = fields.String(required=True)
    routes = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CHANNELS)),
        values=fields.String(validate=validate.OneOf(ROUTES)),
        required=True,
    )
    acknowledgement_routes = fields.Dict(
        keys=fields.String(validate=validate.OneOf(CHANNELS)),
        values=fields.String(validate=validate.OneOf(ROUTES)),
        load_default=dict,
    )
    fallback = fields.List(fields.String(validate=validate.OneOf(MESSAGE_CHANNELS)), required=True)
    kinds = fields.List(fields.String(validate=validate.OneOf(KINDS)), required=True)
    execution_kinds = fields.List(fields.String(), required=True)
    quiet_hours = fields.Nested(_Quiet, required=True)
    retry = fields.Nested(_Retry, required=True)
    sms_max_chars = fields.Integer(required=True, validate=validate.Range(min=40, max=1000))
    gateways = fields.Dict(
        keys=fields.String(validate=validate.OneOf(MESSAGE_CHANNELS)), values=fields.Nested(_Gateway), required=True
    )
    default_language = fields.String(required=True)
    languages = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z]{2}$")), values=fields.Nested(_Language), required=True
    )
    merchants = fields.Nested(_Merchants, required=True)
    mall_overrides = fields.Dict(keys=fields.String(), values=fields.Nested(_Override), load_default=dict)


@dataclass(frozen=True)
class NotifyPolicy:
    version: str
    malls: MallRegistry
    rules: dict
    compiled: dict  # (mall_id or "", language, kind, part) -> template; (.., language, "html", "") the e-mail's HTML

    def _override(self, mall_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.rules["mall_overrides"].get(mall_id, {})
        return found

    def quiet_hours(self, mall_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._override(mall_id).get("quiet_hours", self.rules["quiet_hours"])
        return found

    def gateway(self, mall_id: str, channel: str) -> dict[str, Any]:
        found: dict[str, Any] = {**self.rules["gateways"], **self._override(mall_id).get("gateways", {})}[channel]
        return found

    def language(self, mall_id: str) -> str:
        found: str = self._override(mall_id).get("default_language", self.rules["default_language"])
        return found

    def words(self, language: str) -> dict[str, Any]:
        found: dict[str, Any] = self.rules["languages"][language]
        return found

    def template(self, mall_id: str, language: str, kind: str, part: str) -> Any:
        """The mall's own template of this part where it has one, else the chain's."""
        return self.compiled.get((mall_id, language, kind, part)) or self.compiled[("", language, kind, part)]

    def public(self) -> dict[str, Any]:
        return {**self.rules, "version": self.version}


def _compile(environment, source, sample, where, limit=None):
    """The template, tried on the sample; a `short` one's brief form must fit `limit` (an SMS)."""
    try:
        template = environment.from_string(source)
        template.render(sample)
        brief = template.render({**sample, "brief": True}).strip()
    except TemplateError as exc:
        raise ValidationError({where: [f"Template: {exc.message or exc}."]}) from exc
    if limit is not None and len(brief) > limit:
        raise ValidationError(
            {where: [f"Its brief form is {len(brief)} characters on a sample, over sms_max_chars ({limit})."]}
        )
    return template


def _compile_all(rules):
    compiled = {}
    for language, words in rules["languages"].items():
        missing = sorted(set(KINDS) - set(words["templates"]))
        if missing:
            raise ValidationError({f"languages.{language}.templates": [f"Missing: {', '.join(missing)}."]})
        compiled[("", language, "html", "")] = _compile(
            HTML, words["html"], {**_COMMON, "text": "…\n\n…"}, f"languages.{language}.html"
        )
        for kind, parts in words["templates"].items():
            sample = {**_COMMON, **SAMPLES[kind]}
            for part in PARTS:
                compiled[("", language, kind, part)] = _compile(
                    TEXT,
                    parts[part],
                    sample,
                    f"languages.{language}.templates.{kind}.{part}",
                    rules["sms_max_chars"] if part == "short" else None,
                )
    for mall_id, override in rules["mall_overrides"].items():
        for language, kinds in override.get("templates", {}).items():
            if language not in rules["languages"]:
                raise ValidationError({f"mall_overrides.{mall_id}.templates": [f"Unknown language: {language}."]})
            for kind, parts in kinds.items():
                for part, source in parts.items():
                    compiled[(mall_id, language, kind, part)] = _compile(
                        TEXT,
                        source,
                        {**_COMMON, **SAMPLES[kind]},
                        f"mall_overrides.{mall_id}.templates.{language}.{kind}.{part}",
                        rules["sms_max_chars"] if part == "short" else None,
                    )
    return compiled


def load_policy(data, malls: MallRegistry) -> NotifyPolicy:
    rules = NotifyPolicySchema().load(data)
    errors = {}
    missing = sorted(set(CHANNELS) - set(rules["routes"]))
    if missing:
        errors["routes"] = [f"No route for: {', '.join(missing)}."]
    unconfigured = sorted(set(MESSAGE_CHANNELS) - set(rules["gateways"]))
    if unconfigured:
        errors["gateways"] = [f"No gateway for: {', '.join(unconfigured)}."]
    unknown = sorted(set(rules["mall_overrides"]) - set(malls.malls))
    if unknown:
        errors["mall_overrides"] = [f"Unknown mall: {m}." for m in unknown]
    languages = {
        rules["default_language"],
        *(o["default_language"] for o in rules["mall_overrides"].values() if "default_language" in o),
    }
    if languages - set(rules["languages"]):
        errors["default_language"] = [f"No texts in: {', '.join(sorted(languages - set(rules['languages'])))}."]
    if errors:
        raise ValidationError(errors)
    return NotifyPolicy(
        version=f"{rules['version']}+malls:{malls.version}", malls=malls, rules=rules, compiled=_compile_all(rules)
    )
