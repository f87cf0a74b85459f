"""R7.8 (seed 002: 退换货需符合《零售商促销行为管理办法》): returns and exchanges of goods sold on
promotion, at clearance or as a free gift follow that regulation's rules in the compliance
check, beside the statutes (food_safety, fraud). The handler names the kind of sale on the
proposal (from the receipt or the price tag); the policy's `promotion` lists, per kind, the
rules that apply and, per rule, its text as the regulation words it and the remedies it
calls for."""

from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import ValidationError

UPHOLDING = ("upheld", "partly_upheld")


def apply_promotion(
    compliance: Mapping[str, Any],
    kind: str | None,
    decision: str | None,
    remedies: Sequence[Mapping[str, Any]],
    promotion: Mapping[str, Any],
) -> dict[str, Any]:
    """`compliance` with the regulation's rules for goods sold as `kind` (None: not on
    promotion, nothing added): `promotion` (kind, regulation, the rules with their text), a
    breach for each rule an upheld complaint's remedies do not meet (refused unless
    overridden), and for a complaint not upheld each rule as a warning (the promotion itself
    is no reason)."""
    if kind is None:
        return {**compliance, "promotion": None}
    if kind not in promotion["kinds"]:
        raise ValidationError({"promotion": [f"Unknown kind of sale {kind}; known: {', '.join(promotion['kinds'])}."]})
    offered, regulation = {r["type"] for r in remedies}, promotion["regulation"]
    rules, breaches, warnings = [], [], []
    for name in promotion["kinds"][kind]:
        rule = promotion["rules"][name]
        rules.append({"rule": name, "text": rule["text"], "article": rule["article"]})
        cite = f"{regulation}{rule['article'] or ''}：“{rule['text']}”"
        if decision not in UPHOLDING:
            warnings.append(f"goods sold as {kind}, not upheld: the sale is no reason to refuse ({cite})")
        elif not offered & set(rule["remedies"]):
            breaches.append(f"goods sold as {kind} are owed one of {', '.join(rule['remedies'])} ({cite})")
    return {
        **compliance,
        "promotion": {"kind": kind, "regulation": regulation, "rules": rules},
        "breaches": [*compliance["breaches"], *breaches],
        "warnings": [*compliance["warnings"], *warnings],
    }
