"""The case state machine (R3): the moves a case's state may make, and the states
in which an action may be taken."""

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import StateConflict

# R3 the life of a case. Spot resolution (R3.2) goes open -> resolved at the desk;
# an accepted answer without anything to carry out is resolved straight away.
# A case reopened for a dissatisfied customer may also be closed by a supervisor with a
# reason at any point of its new round (R4.2); `close` checks that it was reopened.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("investigating", "resolved"),
    "investigating": ("proposed", "closed"),
    "proposed": ("accepted", "objected", "closed"),
    "objected": ("escalated",),
    "escalated": ("proposed", "closed"),
    "accepted": ("executing", "resolved", "closed"),
    "executing": ("resolved", "closed"),
    "resolved": ("closed", "reopened"),
    "closed": ("reopened",),
    "reopened": ("investigating", "proposed", "closed"),
}
# still being worked: in the handlers' queues, open to findings and escalation
ACTIVE = ("open", "investigating", "proposed", "accepted", "objected", "escalated", "executing", "reopened")


def check_transition(
    state: str, target: str, transitions: Mapping[str, tuple[str, ...]] = TRANSITIONS, what: str = "case"
) -> None:
    if target not in transitions.get(state, ()):
        allowed = ", ".join(transitions.get(state, ())) or "nothing"
        article = "an" if what[0] in "aeiou" else "a"
        raise StateConflict(f"{article} {what} that is {state} cannot become {target} (from {state}: {allowed})")


def check_state(case: Mapping[str, Any], states: Sequence[str], action: str) -> None:
    if case["state"] not in states:
        raise StateConflict(f"cannot {action} a case that is {case['state']} (only when {', '.join(states)})")
