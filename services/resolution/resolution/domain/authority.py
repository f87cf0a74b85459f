"""Who may approve what (R3.5): an approver's limit, rank and role against a
proposal's total, the case's level, its risk and any cap override; the escalation
ladder; the permissions of the policy."""

from typing import Any

from ..policy import ResolutionPolicy
from .compliance import yuan
from .errors import NoAuthority
from .step import Actor

FIRST_LEVEL = "handler"  # the level a case opens at


def approval_needs(
    total_fen: int, risk_level: str, cap_override: bool, level_role: str, mall_id: str, policy: ResolutionPolicy
) -> dict[str, Any]:
    """What an approver must have: a limit covering the total, a rank at least the
    case's level, and for a high-risk case or a cap override one of the named roles."""
    roles = None
    if risk_level == "high":
        roles = set(policy.rules["permissions"]["high_risk_approvers"])
    if cap_override:
        allowed = set(policy.rules["permissions"]["cap_override"])
        roles = allowed if roles is None else roles & allowed
    return {
        "limit_fen": total_fen,
        "min_rank": policy.role(mall_id, level_role)["rank"],
        "roles": sorted(roles) if roles is not None else None,
    }


def refusals(role: str, needs: dict[str, Any], mall_id: str, policy: ResolutionPolicy) -> list[str]:
    """Why `role` may not approve (empty when it may)."""
    own = policy.role(mall_id, role)
    reasons = []
    if own["limit"] < needs["limit_fen"]:
        reasons.append(f"the total {yuan(needs['limit_fen'])} is above the {role}'s limit {yuan(own['limit'])}")
    if own["rank"] < needs["min_rank"]:
        reasons.append(f"the case is escalated above the {role}'s level")
    if needs["roles"] is not None and role not in needs["roles"]:
        reasons.append(f"only {' or '.join(needs['roles'])} may approve this case")
    return reasons


def lowest_approver(needs: dict[str, Any], mall_id: str, policy: ResolutionPolicy) -> str | None:
    """The least senior role that may approve (what the handler is told to ask for)."""
    fits = [r for r in policy.section(mall_id, "roles") if not refusals(r, needs, mall_id, policy)]
    return min(fits, key=lambda r: (policy.role(mall_id, r)["rank"], policy.role(mall_id, r)["limit"]), default=None)


def next_level(level_role: str, mall_id: str, policy: ResolutionPolicy) -> str:
    """The escalation ladder's first role above the case's level (the top stays the top)."""
    rank = policy.role(mall_id, level_role)["rank"]
    return next((r for r in policy.rules["escalation"] if policy.role(mall_id, r)["rank"] > rank), level_role)


def require(permission: str, actor: Actor, policy: ResolutionPolicy, what: str) -> None:
    if not policy.allowed(permission, actor.role):
        raise NoAuthority(
            f"a {actor.role} may not {what} (allowed: {', '.join(policy.rules['permissions'][permission])})"
        )
