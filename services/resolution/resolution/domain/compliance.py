"""What the law grants for a case and how the remedies compare with it and with the
caps (R3.4). Amounts are integer fen."""

from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import ValidationError

from ..policy import fen

COMPENSATING = ("voucher", "cash_compensation", "experience_compensation")  # more than giving back what was bought


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def check_remedies(
    remedies: Sequence[Mapping[str, Any]],
    legal_basis: str | None,
    price_fen: int | None,
    demanded_fen: int | None,
    statutory: Mapping[str, Any],
    caps: Mapping[str, Any],
    earlier_compensation_fen: int = 0,
    demand: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the law grants for the case and how the remedies compare.

    The law grants the price back, plus, where a legal basis applies, `multiple`
    times the price and at least `minimum`. Compensation, with what earlier rounds
    of the case paid, may exceed what the law grants by the goodwill cap; refunds
    and exchanges together never exceed the price. `breaches` lists what is outside
    the caps (refused unless overridden). `demand` is the customer's demand as triage
    read it (multiple, amount, mental damages); the handler's demanded amount comes first."""
    demand = demand or {}
    statute = statutory.get(legal_basis) if legal_basis else None
    if legal_basis and statute is None:
        raise ValidationError({"legal_basis": [f"Unknown legal basis {legal_basis}; known: {', '.join(statutory)}."]})
    demanded_fen = demanded_fen if demanded_fen is not None else demand.get("amount_fen")
    if statute and price_fen is None:
        raise ValidationError({"price": [f"The price is needed to apply {statute['law']}."]})
    total = sum(r["amount_fen"] for r in remedies)
    compensation = sum(r["amount_fen"] for r in remedies if r["type"] in COMPENSATING)
    granted = max(price_fen * statute["multiple"], fen(statute["minimum"])) if statute else 0
    law_total = None if price_fen is None else (price_fen if not statute or statute["refund"] else 0) + granted
    breaches = []
    goodwill = fen(caps["goodwill"])
    if compensation + earlier_compensation_fen > granted + goodwill:
        earlier = f" (with {yuan(earlier_compensation_fen)} paid earlier)" if earlier_compensation_fen else ""
        breaches.append(
            f"compensation {yuan(compensation)}{earlier} is above the {yuan(granted)} the law grants "
            f"plus the {yuan(goodwill)} goodwill cap"
        )
    restored = sum(r["amount_fen"] for r in remedies if r["type"] in ("refund", "exchange"))
    if price_fen is not None and restored > price_fen:
        breaches.append(f"refund and exchange {yuan(restored)} are above the price {yuan(price_fen)}")
    above = demand_above_law(demand, demanded_fen, law_total, statute)
    warnings = [f"above the law: {reason}" for reason in above]
    if statute and law_total is not None and total < law_total:  # with a statute the price is known
        warnings.append(
            f"the remedies {yuan(total)} are below the {yuan(law_total)} {statute['law']} grants; "
            "the customer can claim the difference"
        )
    return {
        "total_fen": total,
        "compensation_fen": compensation,
        "legal_basis": legal_basis,
        "law": statute["law"] if statute else None,
        "statutory_compensation_fen": granted,
        "statutory_total_fen": law_total,
        "demand_above_statutory": bool(above),
        "breaches": breaches,
        "warnings": warnings,
    }


def _times(multiple: float) -> str:
    return f"{multiple:g}x"


def demand_above_law(
    demand: Mapping[str, Any], demanded_fen: int | None, law_total: int | None, statute: Mapping[str, Any] | None
) -> list[str]:
    """Why the customer asks more than the law grants (empty when it does not): a
    multiple of the price above the statute's (20x where food safety law grants 10x
    meets the 1,000-yuan minimum in money on a 50-yuan item, yet is still above the
    law), an amount above what the law grants for the price, or mental damages,
    which neither statute grants."""
    reasons = []
    multiple = demand.get("multiple")
    granted_multiple = statute["multiple"] if statute else 0
    if multiple is not None and multiple > granted_multiple:
        grants = (
            f"{statute['law']} grants {_times(granted_multiple)}"
            if statute
            else "without a legal basis the law grants the price back only"
        )
        reasons.append(f"the customer asks {_times(multiple)} the price; {grants}")
    if demanded_fen is not None and law_total is not None and demanded_fen > law_total:
        reasons.append(f"the customer's demand {yuan(demanded_fen)} is above the {yuan(law_total)} the law grants")
    if demand.get("mental_damages"):
        reasons.append(
            "the customer asks for mental damages (精神损失费); "
            + (f"{statute['law']} grants none" if statute else "the law grants none for this")
        )
    return reasons


def paid_compensation(case: Mapping[str, Any]) -> int:
    """Compensation the customer accepted in earlier rounds of the case (the goodwill cap is per case)."""
    return sum(p["compliance"]["compensation_fen"] for p in case["proposals"] if p["status"] == "accepted")
