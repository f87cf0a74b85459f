"""Triage's policy (R2.1-R2.6, R7.4) as validated data: taxonomy, classification
(phrase and context rules, negators, demand markers, confidence), risk rules with the
law's multiples, urgency, routing, SLA targets, the handler roster and each mall's
fallback, chain-wide with per-mall overrides, loaded by mallcare_common.policy.PolicyFiles."""

from dataclasses import dataclass, field as attribute
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from mallcare_common.calendar import BusinessCalendar
from mallcare_common.malls import MallRegistry, week_field
from mallcare_common.policy import AllowedTime

from . import learned
from .classify import categories, dictionary
from .text import prepare

LEVELS = ("low", "medium", "high")
URGENCIES = ("urgent", "routine")  # recurrence is the separate `systemic` flag
_words = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)


_terms = fields.List(fields.String(validate=validate.Length(min=1)), required=True, validate=validate.Length(min=1))


class _Phrase(Schema):
    category = fields.String(required=True)
    weight = fields.Float(required=True, validate=validate.Range(min=0.1, max=20))
    terms = _terms


class _Context(Schema):
    category = fields.String(required=True)
    weight = fields.Float(required=True, validate=validate.Range(min=0.1, max=20))
    all = fields.List(_terms, required=True, validate=validate.Length(min=2))
    instead_of = fields.List(fields.String(), load_default=list)
    within = fields.String(load_default="clause", validate=validate.OneOf(("clause", "complaint")))
    also = fields.List(_terms, load_default=list)  # groups that may be said anywhere in the complaint


class _SecondOpinion(Schema):
    temperature = fields.Float(required=True, validate=validate.Range(min=1, max=1000))
    rules_weight = fields.Float(required=True, validate=validate.Range(min=0, max=10))
    sure_problem_score = fields.Float(required=True, validate=validate.Range(min=0.1))
    min_probability = fields.Float(required=True, validate=validate.Range(min=0, max=1))


class _Classification(Schema):
    confidence_threshold = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    full_weight = fields.Float(required=True, validate=validate.Range(min=0.1))
    problem_weight = fields.Float(required=True, validate=validate.Range(min=0.1))
    problem_score = fields.Float(required=True, validate=validate.Range(min=0.1))
    negation_window = fields.Integer(required=True, validate=validate.Range(min=1, max=10))
    negators = _terms
    clause_breaks = _words
    demand_markers = _terms
    batch_markers = _terms  # R7.6: the words before a batch (lot) code
    remedy_words = _words
    user_words = _words
    typos = fields.Dict(
        keys=fields.String(validate=validate.Regexp(r"^[a-z' -]+$")), values=fields.String(), load_default=dict
    )
    folds = fields.Dict(
        keys=fields.String(validate=validate.Length(equal=1)),
        values=fields.String(validate=validate.Length(equal=1)),
        load_default=dict,
    )
    mental_damages = _words
    praise = _words
    phrases = fields.List(fields.Nested(_Phrase), required=True, validate=validate.Length(min=1))
    context = fields.List(fields.Nested(_Context), load_default=list)
    second_opinion = fields.Nested(_SecondOpinion, load_default=None)


class _LegalBasis(Schema):
    label = fields.String(required=True)
    multiple = fields.Float(required=True, validate=validate.Range(min=0))
    minimum = fields.Float(required=True, validate=validate.Range(min=0))
    words = _words


class _RiskRule(Schema):
    level = fields.String(required=True, validate=validate.OneOf(LEVELS))
    words = _words
    unless = _words  # longer phrases a word said inside does not count ("呕吐物" seen is no harm)
    channels = fields.List(fields.String(), load_default=list)
    member_tiers = fields.List(fields.String(), load_default=list)
    min_anger = fields.Integer(validate=validate.Range(min=1, max=5))
    min_previous = fields.Integer(validate=validate.Range(min=1))
    window_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    legal_bases = fields.Dict(keys=fields.String(), values=fields.Nested(_LegalBasis))
    default_basis = fields.String()

    @validates_schema
    def _basis(self, data, **kwargs):
        if "legal_bases" in data and data.get("default_basis") not in data["legal_bases"]:
            raise ValidationError("Must name one of legal_bases.", "default_basis")


class _Systemic(Schema):
    threshold = fields.Integer(required=True, validate=validate.Range(min=2))
    window_days = fields.Integer(required=True, validate=validate.Range(min=1, max=365))


class _Urgency(Schema):
    urgent_risk_levels = fields.List(fields.String(validate=validate.OneOf(LEVELS)), required=True)
    systemic = fields.Nested(_Systemic, required=True)


class _Tenant(Schema):
    department = fields.String(required=True)
    attributes = fields.List(fields.String(), required=True)


class _Routing(Schema):
    departments = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    unclassified = fields.String(required=True)
    tenant = fields.Nested(_Tenant, required=True)
    security_words = _words
    security = fields.String(required=True)
    cross_department = fields.String(required=True)


def _allowed_table(keys):
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf(keys)), values=fields.Nested(AllowedTime), required=True
    )


class _Sla(Schema):
    first_response = fields.Dict(keys=fields.String(), values=fields.Nested(AllowedTime), required=True)
    resolution = _allowed_table(URGENCIES)
    risk_factor = fields.Dict(
        keys=fields.String(validate=validate.OneOf(LEVELS)),
        values=fields.Float(validate=validate.Range(min=0.05, max=1.0)),
        required=True,
    )

    @validates_schema
    def _complete(self, data, partial=None, **kwargs):
        if partial:  # a mall override names only what it changes
            return
        if "default" not in data.get("first_response", {}):
            raise ValidationError("A default first-response target is needed.", "first_response")
        for key, names in (("resolution", URGENCIES), ("risk_factor", LEVELS)):
            missing = sorted(set(names) - set(data.get(key, {})))
            if missing:
                raise ValidationError(f"Missing: {', '.join(missing)}.", key)


class _Handler(Schema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=20))
    name = fields.String(required=True)
    department = fields.String(required=True)
    skills = fields.List(fields.String(), load_default=list)
    shifts = fields.String(required=True)


class _Override(Schema):
    """Per mall: entries that replace the chain's within a section."""

    sla = fields.Nested(_Sla(partial=True))
    routing = fields.Nested(_Routing(partial=True))
    urgency = fields.Nested(_Urgency(partial=True))


class TriagePolicySchema(Schema):
    version = fields.String(required=True)
    taxonomy = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String(), validate=validate.Length(min=1)),
        required=True,
        validate=validate.Length(min=1),
    )
    classification = fields.Nested(_Classification, required=True)
    risk = fields.Dict(keys=fields.String(), values=fields.Nested(_RiskRule), required=True)
    urgency = fields.Nested(_Urgency, required=True)
    routing = fields.Nested(_Routing, required=True)
    sla = fields.Nested(_Sla, required=True)
    roster = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(_Handler)), required=True)
    fallback = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.Length(min=1, max=20)),
        load_default=dict,
        metadata={"description": "per mall: the duty supervisor's id"},
    )
    shift_patterns = fields.Dict(keys=fields.String(), values=week_field(), required=True)
    mall_overrides = fields.Dict(keys=fields.String(), values=fields.Nested(_Override), load_default=dict)

    @validates_schema
    def _consistent(self, data, **kwargs):
        taxonomy = data.get("taxonomy", {})
        categories = {f"{a}.{s}" for a, subs in taxonomy.items() for s in subs}
        errors = {}
        classification = data.get("classification", {})
        named = {r["category"] for r in [*classification.get("phrases", []), *classification.get("context", [])]}
        named |= {c for r in classification.get("context", []) for c in r["instead_of"]}
        bad = sorted(named - categories)
        if bad:
            errors["classification"] = [f"Not in the taxonomy: {', '.join(bad)}."]
        routing = data.get("routing")
        if routing:
            missing = sorted(set(taxonomy) - set(routing["departments"]))
            if missing:
                errors["routing"] = [f"No department for: {', '.join(missing)}."]
        patterns = data.get("shift_patterns", {})
        unknown = sorted({h["shifts"] for hs in data.get("roster", {}).values() for h in hs} - set(patterns))
        if unknown:
            errors["roster"] = [f"Unknown shift pattern: {', '.join(unknown)}."]
        if errors:
            raise ValidationError(errors)


@dataclass(frozen=True)
class Handler:
    id: str
    name: str
    department: str
    skills: tuple
    shifts: BusinessCalendar  # on shift == "open" in this calendar


@dataclass(frozen=True)
class TriagePolicy:
    version: str  # "<triage version>+malls:<registry version>[+model:<second opinion's version>]"
    malls: MallRegistry
    rules: dict[str, Any]
    _rosters: dict[str, list[Handler]] = attribute(
        default_factory=dict, compare=False, repr=False
    )  # mall -> [Handler], built once

    def section(self, mall_id: str, name: str) -> dict[str, Any]:
        """A policy section as it applies at one mall."""
        return {**self.rules[name], **self.rules["mall_overrides"].get(mall_id, {}).get(name, {})}

    def handlers(self, mall_id: str) -> list[Handler]:
        """The mall's handlers the departments' work is shared among (not its fallback)."""
        return [h for h in self.roster(mall_id) if h.id != self.rules["fallback"].get(mall_id)]

    def fallback(self, mall_id: str) -> Handler | None:
        """The mall's duty supervisor, who takes what no handler of the department can; or None."""
        return next((h for h in self.roster(mall_id) if h.id == self.rules["fallback"].get(mall_id)), None)

    def roster(self, mall_id: str) -> list[Handler]:
        """Everyone triage may name as the owner at the mall."""
        if mall_id not in self._rosters:
            mall = self.malls.get(mall_id)
            self._rosters[mall_id] = [
                Handler(
                    h["id"],
                    h["name"],
                    h["department"],
                    tuple(h["skills"]),
                    BusinessCalendar(
                        mall.calendar.timezone, self.rules["shift_patterns"][h["shifts"]], mall.calendar.closed_dates
                    ),
                )
                for h in self.rules["roster"].get(mall_id, [])
            ]
        return self._rosters[mall_id]

    def public(self) -> dict[str, Any]:
        """The policy in force, as an RPC/HTTP answer."""
        classification = {k: v for k, v in self.rules["classification"].items() if k != "dictionary"}
        if classification["second_opinion"]:
            opinion = classification["second_opinion"]
            classification["second_opinion"] = {**opinion, "model": opinion["model"].version}
        return {
            **{k: v for k, v in self.rules.items() if k != "shift_patterns"},
            "classification": classification,
            "shift_patterns": {
                name: {day: f"{o:%H:%M}-{c:%H:%M}" for day, (o, c) in week.items()}
                for name, week in self.rules["shift_patterns"].items()
            },
            "version": self.version,
        }


def load_policy(data, malls: MallRegistry) -> TriagePolicy:
    rules = TriagePolicySchema().load(data)
    unknown = sorted((set(rules["mall_overrides"]) | set(rules["roster"]) | set(rules["fallback"])) - set(malls.malls))
    if unknown:
        raise ValidationError({"mall_overrides": [f"Unknown mall: {m}." for m in unknown]})
    errors = [problem for mall_id in malls.malls for problem in _unowned_departments(rules, mall_id)]
    if errors:
        raise ValidationError({"roster": errors})
    # the tokenizer's user dictionary: every phrase of the policy kept whole (triage.text)
    rules["classification"]["dictionary"] = dictionary(rules["classification"])
    if rules["classification"]["second_opinion"]:
        model = rules["classification"]["second_opinion"]["model"] = learned.shipped()
        unknown = sorted(set(model.categories) - categories(rules))
        if unknown:  # the model would propose what the taxonomy no longer has
            raise ValidationError(
                {
                    "classification": {
                        "second_opinion": [
                            f"The model {model.version} names categories not in the taxonomy: {', '.join(unknown)}; "
                            "rebuild it (python -m triage.learn) or set second_opinion to null."
                        ]
                    }
                }
            )
    # ready at service start and on a reload, not at the first complaint (about 1 s)
    prepare(rules["classification"]["dictionary"], _terms_read(rules))
    version = f"{rules['version']}+malls:{malls.version}"
    if rules["classification"]["second_opinion"]:
        version += f"+model:{rules['classification']['second_opinion']['model'].version}"
    return TriagePolicy(version=version, malls=malls, rules=rules)


def _terms_read(rules):
    """Every term triage looks for in a complaint's text."""
    risk = rules["risk"].values()
    return {
        *rules["classification"]["dictionary"],
        *rules["classification"]["mental_damages"],
        *rules["routing"]["security_words"],
        *(w for rule in risk for w in (*rule.get("words", ()), *rule.get("unless", ()))),
        *(w for rule in risk for basis in rule.get("legal_bases", {}).values() for w in basis["words"]),
    }


def routable_departments(rules, mall_id):
    """Every department a complaint at the mall can be routed to (its overrides applied)."""
    routing = {**rules["routing"], **rules["mall_overrides"].get(mall_id, {}).get("routing", {})}
    return {
        *routing["departments"].values(),
        routing["tenant"]["department"],
        routing["security"],
        routing["cross_department"],
        routing["unclassified"],
    }


def _unowned_departments(rules, mall_id):
    """R2.5 ownership always ends with a person: each routable department of the mall has
    handlers, or the mall names a fallback of its roster. What is wrong, mall and department named."""
    roster = rules["roster"].get(mall_id, [])
    fallback = rules["fallback"].get(mall_id)
    if fallback:
        if fallback not in {h["id"] for h in roster}:
            return [f"{mall_id}: the fallback {fallback} is not in its roster."]
        return []
    staffed = {h["department"] for h in roster}
    return [
        f"{mall_id}: nobody for {department} (no handler and no fallback)."
        for department in sorted(routable_departments(rules, mall_id) - staffed)
    ]
