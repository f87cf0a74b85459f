"""Resolution's policy (R3.2-R3.9) as validated data: roles with their rank and
authority limit, the escalation ladder, permissions, statutory remedies, caps,
spot-resolution bounds, deadlines of every task and the staff directory, chain-wide
with per-mall overrides, loaded by mallcare_common.policy.PolicyFiles.

Amounts are yuan in the file and fen (integers) everywhere else. Texts the customer
reads are templates whose durations come from the policy ({re_review} etc.): a
duration written into the text itself, or a placeholder the policy does not know,
is refused at load."""

import re
import string
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mallcare_common.auth import ALL_MALLS
from mallcare_common.calendar import BusinessCalendar
from mallcare_common.malls import MallRegistry
from mallcare_common.policy import AllowedTime
from mallcare_common.retention import retention_months_field

REMEDIES = ("refund", "exchange", "repair", "voucher", "cash_compensation", "apology_letter", "experience_compensation")
ATTRIBUTES = ("product", "service", "environment", "rules", "payment", "logistics")
LEVELS = ("low", "medium", "high")
CUSTOMER_TEXTS = ("appeal_procedure",)
# A duration written as digits or Chinese numerals with its unit ("2 小时", "七天", "3 working days").
_DURATION = re.compile(
    r"([0-9]+(?:\.[0-9]+)?|[一二两三四五六七八九十百半]+)\s*(?:个)?\s*"
    r"(?:工作小时|小时|钟头|分钟|工作日|日|天|周|星期|个月|月|"
    r"working (?:hours?|days?)|hours?|days?|minutes?|weeks?)",
    re.IGNORECASE,
)
_role_list = fields.List(fields.String(), required=True, validate=validate.Length(min=1))


class _Role(Schema):
    rank = fields.Integer(required=True, validate=validate.Range(min=1, max=10))
    limit = fields.Decimal(places=2, required=True, validate=validate.Range(min=0, max=10_000_000))


class _Permissions(Schema):
    high_risk_approvers = _role_list
    cap_override = _role_list
    review_meeting = _role_list
    close_or_reopen = _role_list
    verify_incident = _role_list
    handle_incident = _role_list


class _Statute(Schema):
    law = fields.String(required=True)
    refund = fields.Boolean(required=True)
    multiple = fields.Integer(required=True, validate=validate.Range(min=1, max=100))
    minimum = fields.Decimal(places=2, required=True, validate=validate.Range(min=0))


class _PromotionRule(Schema):
    text = fields.String(
        required=True, validate=validate.Length(min=5), metadata={"description": "as the regulation words it"}
    )
    article = fields.String(
        load_default=None, metadata={"description": "only where checked against the regulation's published text"}
    )
    remedies = fields.List(fields.String(validate=validate.OneOf(REMEDIES)), required=True)


class _Promotion(Schema):
    regulation = fields.String(required=True, validate=validate.Length(min=2))
    kinds = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String(), validate=validate.Length(min=1)),
        required=True,
        metadata={"description": "kind of sale -> the rules that apply to it"},
    )
    rules = fields.Dict(keys=fields.String(), values=fields.Nested(_PromotionRule), required=True)

    @validates_schema
    def _known_rules(self, data, **kwargs):
        unknown = sorted({r for names in data.get("kinds", {}).values() for r in names} - set(data.get("rules", {})))
        if unknown:
            raise ValidationError(f"Unknown rule: {', '.join(unknown)}.", "kinds")


class _Caps(Schema):
    goodwill = fields.Decimal(places=2, required=True, validate=validate.Range(min=0))


class _Spot(Schema):
    max_total = fields.Decimal(places=2, required=True, validate=validate.Range(min=0))
    risk_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), required=True)

    @validates_schema
    def _not_high(self, data, **kwargs):
        # R7.7: a high-risk answer waits for its lead's sign-off; the desk cannot give it at once
        if "high" in data.get("risk_levels", []):
            raise ValidationError(
                "A high-risk complaint is not settled on the spot: its lead signs off the answer.", "risk_levels"
            )


class _Deadlines(Schema):
    re_review = fields.Nested(AllowedTime, required=True)
    review_meeting = fields.Nested(AllowedTime, required=True)
    reopened = fields.Nested(AllowedTime, required=True)
    unreachable_close_after = fields.Nested(AllowedTime, required=True)


class _ExecutionRule(AllowedTime):
    signature = fields.Boolean(load_default=False)


class _Rectification(Schema):
    kind = fields.String(required=True)
    working_days = fields.Integer(required=True, validate=validate.Range(min=1, max=365))
    owner_role = fields.String(required=True)


class _Incidents(Schema):
    types = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    forward = fields.Nested(AllowedTime, required=True)
    handle = fields.Nested(AllowedTime, required=True)
    communicate = fields.Nested(AllowedTime, required=True)  # R7.10: the result told to the customer


class _Merchants(Schema):
    """R7.5: which department sends a tenant's case to its merchant and oversees it, and the
    merchant's deadline for its reply with evidence."""

    department = fields.String(required=True, validate=validate.Length(min=1, max=64))
    reply_within = fields.Nested(AllowedTime, required=True)


class _BatchStep(Schema):
    within = fields.Nested(AllowedTime, required=True)
    roles = fields.List(fields.String(), load_default=list)
    departments = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _names_someone(self, data, **kwargs):
        if not data.get("roles") and not data.get("departments"):
            raise ValidationError("A step names at least one role or department.", "roles")


class _BatchChecks(Schema):
    """R7.6: which complaints start a batch check, who takes each step by when, what each verdict allows."""

    attributes = fields.List(fields.String(validate=validate.OneOf(ATTRIBUTES)), required=True)
    steps = fields.Dict(
        keys=fields.String(validate=validate.OneOf(("hold", "inspect", "result", "publish"))),
        values=fields.Nested(_BatchStep),
        required=True,
        validate=validate.Length(equal=4),
    )
    actions = fields.Dict(
        keys=fields.String(validate=validate.OneOf(("safe", "unsafe"))),
        values=fields.List(fields.String(validate=validate.Regexp(r"^[a-z_]{1,40}$")), validate=validate.Length(min=1)),
        required=True,
        validate=validate.Length(equal=2),
    )


class _Staff(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    name = fields.String(required=True)
    role = fields.String(required=True)
    department = fields.String(load_default=None, metadata={"description": "as in triage's roster"})
    malls = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    email = fields.Email(
        load_default=None, metadata={"description": "work address: a high-risk case's lead is told there"}
    )
    head_of = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        load_default=list,
        metadata={
            "description": "R7.13 the departments this person heads at their malls: each month's part goes to them"
        },
    )


class _LeadRule(Schema):
    role = fields.String(required=True)
    risk_reasons = fields.List(fields.String(), load_default=list)
    categories = fields.List(fields.String(), load_default=list)

    @validates_schema
    def _names_something(self, data, **kwargs):
        if not data.get("risk_reasons") and not data.get("categories"):
            raise ValidationError("A rule names at least one risk reason or category.", "risk_reasons")


class _HighRiskLead(Schema):
    default = fields.String(required=True)
    rules = fields.List(fields.Nested(_LeadRule), load_default=list)


class _Override(Schema):
    roles = fields.Dict(keys=fields.String(), values=fields.Nested(_Role))
    caps = fields.Nested(_Caps)
    spot = fields.Nested(_Spot)


class ResolutionPolicySchema(Schema):
    version = fields.String(required=True)
    retention_months = retention_months_field()
    roles = fields.Dict(
        keys=fields.String(), values=fields.Nested(_Role), required=True, validate=validate.Length(min=1)
    )
    escalation = _role_list
    permissions = fields.Nested(_Permissions, required=True)
    high_risk_lead = fields.Nested(_HighRiskLead, required=True)
    statutory = fields.Dict(keys=fields.String(), values=fields.Nested(_Statute), required=True)
    promotion = fields.Nested(_Promotion, required=True)
    caps = fields.Nested(_Caps, required=True)
    spot = fields.Nested(_Spot, required=True)
    deadlines = fields.Nested(_Deadlines, required=True)
    execution = fields.Dict(
        keys=fields.String(validate=validate.OneOf(REMEDIES)), values=fields.Nested(_ExecutionRule), required=True
    )
    product_hold = fields.Nested(AllowedTime, required=True)
    rectification = fields.Dict(
        keys=fields.String(validate=validate.OneOf(ATTRIBUTES)), values=fields.Nested(_Rectification), required=True
    )
    incidents = fields.Nested(_Incidents, required=True)
    merchants = fields.Nested(_Merchants, required=True)
    batch_checks = fields.Nested(_BatchChecks, required=True)
    appeal_window_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "days after the answer within which the customer may ask for a re-review"},
    )
    appeal_procedure = fields.String(required=True, validate=validate.Length(min=10))
    staff = fields.List(fields.Nested(_Staff), required=True)
    mall_overrides = fields.Dict(keys=fields.String(), values=fields.Nested(_Override), load_default=dict)

    @validates_schema
    def _consistent(self, data, **kwargs):
        roles = set(data.get("roles", {}))
        errors = {}

        def unknown(names):
            return sorted(set(names) - roles)

        bad = unknown(data.get("escalation", []))
        if bad:
            errors["escalation"] = [f"Unknown role: {', '.join(bad)}."]
        bad = unknown(r for names in data.get("permissions", {}).values() for r in names)
        if bad:
            errors["permissions"] = [f"Unknown role: {', '.join(bad)}."]
        lead = data.get("high_risk_lead") or {}
        for key, named in (
            ("staff", [s["role"] for s in data.get("staff", [])]),
            ("rectification", [r["owner_role"] for r in data.get("rectification", {}).values()]),
            ("high_risk_lead", [lead.get("default", ""), *(r["role"] for r in lead.get("rules", []))] if lead else []),
        ):
            bad = unknown(named)
            if bad:
                errors[key] = [f"Unknown role: {', '.join(bad)}."]
        missing = sorted(set(REMEDIES) - set(data.get("execution", {})))
        if missing:
            errors["execution"] = [f"No execution rule for: {', '.join(missing)}."]
        for name in CUSTOMER_TEXTS:
            problems = template_problems(data.get(name), placeholders(data))
            if problems:
                errors[name] = problems
        ids = [s["id"] for s in data.get("staff", [])]
        if len(ids) != len(set(ids)):
            errors.setdefault("staff", []).append("Employee numbers must be unique.")
        if errors:
            raise ValidationError(errors)


def duration_words(allowed):
    """An AllowedTime in the customer's words: {"hours": 2} -> "2 小时"."""
    unit, amount = next(iter(allowed.items()))
    return f"{amount:g} " + {"hours": "小时", "working_hours": "个工作小时", "working_days": "个工作日"}[unit]


def placeholders(rules):
    """What a customer text may name, from the policy it describes: each deadline by its
    name ({re_review} -> "2 小时") and {appeal_window} ("7 日"). Missing parts (a policy
    refused for them anyway) are left out."""
    words = {name: duration_words(allowed) for name, allowed in (rules.get("deadlines") or {}).items()}
    if rules.get("appeal_window_days"):
        words["appeal_window"] = f"{rules['appeal_window_days']} 日"
    return words


def template_problems(text, known):
    """Why a customer text cannot be used: unknown placeholders, or durations written into
    it (they would not follow the policy when it changes). Empty when it is fine."""
    if not text:
        return []
    problems, literal = [], []
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return [f"Not a template: {exc}."]
    for chunk, name, spec, conversion in parts:
        literal.append(chunk)
        if name is None:
            continue
        if name not in known or spec or conversion:
            problems.append(
                f"Unknown placeholder {{{name}}}; known: " + ", ".join(f"{{{k}}}" for k in sorted(known)) + "."
            )
    for found in _DURATION.finditer("".join(literal)):
        problems.append(
            f'The duration "{found.group(0)}" is written into the text; use the placeholder of '
            "the deadline it states ("
            + ", ".join(f"{{{k}}}" for k in sorted(known))
            + ") so the text follows the policy."
        )
    return problems


@dataclass(frozen=True)
class Staff:
    id: str
    name: str
    role: str
    malls: tuple
    department: str = None
    email: str = None
    head_of: tuple = ()


@dataclass(frozen=True)
class ResolutionPolicy:
    version: str  # "<resolution version>+malls:<registry version>"
    malls: MallRegistry
    rules: dict[str, Any]

    def section(self, mall_id: str, name: str) -> dict[str, Any]:
        """A policy section as it applies at one mall."""
        return {**self.rules[name], **self.rules["mall_overrides"].get(mall_id, {}).get(name, {})}

    def role(self, mall_id: str, name: str) -> dict[str, int]:
        """{rank, limit} of a role at a mall; limit in fen."""
        role = self.section(mall_id, "roles")[name]
        return {"rank": role["rank"], "limit": fen(role["limit"])}

    def staff(self, staff_id: str) -> Staff | None:
        entry = next((s for s in self.rules["staff"] if s["id"] == staff_id), None)
        return entry and _staff(entry)

    def staff_at(self, mall_id: str) -> list[Staff]:
        """Who works at the mall itself (not the chain-wide "*"), in the directory's order."""
        return [_staff(s) for s in self.rules["staff"] if mall_id in s["malls"]]

    def first_staff(self, mall_id: str, role: str) -> Staff | None:
        """Who a task for `role` at a mall goes to: the first such person in the directory."""
        return next((_staff(s) for s in self.rules["staff"] if s["role"] == role and mall_id in s["malls"]), None)

    def allowed(self, permission: str, role: str) -> bool:
        return role in self.rules["permissions"][permission]

    def calendar(self, mall_id: str) -> BusinessCalendar:
        return self.malls.get(mall_id).calendar

    def customer_text(self, name: str) -> str:
        """A text the customer reads, its durations filled in from this policy."""
        return self.rules[name].format_map(placeholders(self.rules))

    def public(self) -> dict[str, Any]:
        return {**self.rules, "version": self.version}


def _staff(entry: dict[str, Any]) -> Staff:
    return Staff(
        entry["id"],
        entry["name"],
        entry["role"],
        tuple(entry["malls"]),
        entry["department"],
        entry["email"],
        tuple(entry["head_of"]),
    )


def fen(yuan: Decimal | int | str) -> int:
    """Yuan (Decimal, int or str) to integer fen."""
    return int((Decimal(str(yuan)) * 100).to_integral_value())


def load_policy(data, malls: MallRegistry) -> ResolutionPolicy:
    rules = ResolutionPolicySchema().load(data)
    errors = {}
    # "*": a chain-wide member (an operations director over every mall); first_staff never picks them
    unknown = sorted({m for s in rules["staff"] for m in s["malls"]} - set(malls.malls) - {ALL_MALLS})
    if unknown:
        errors["staff"] = [f"Unknown mall: {m}." for m in unknown]
    unknown = sorted(set(rules["mall_overrides"]) - set(malls.malls))
    if unknown:
        errors["mall_overrides"] = [f"Unknown mall: {m}." for m in unknown]
    bad = sorted({r for o in rules["mall_overrides"].values() for r in o.get("roles", {})} - set(rules["roles"]))
    if bad:
        errors.setdefault("mall_overrides", []).append(f"Unknown role: {', '.join(bad)}.")
    if errors:
        raise ValidationError(errors)
    return ResolutionPolicy(version=f"{rules['version']}+malls:{malls.version}", malls=malls, rules=rules)
