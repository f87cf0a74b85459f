"""What a customer sees of their own complaint on the status page (R7.2): whether the number
and phone they typed are that complaint's, and its progress in steps a customer follows,
from intake's record and, once triage and resolution have it, its case. Pure: no I/O, no
clock; the service passes in the complaint as stored and the case as resolution answers
`get_case` (JSON: times as ISO 8601)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .rules import contact_key

# The case's timeline entries a customer hears about, as the step the page names; the rest
# (approvals, tasks, notes, reassignments, clocks) are the staff's own.
CUSTOMER_STEPS = {
    "opened": "routed",
    "finding": "investigating",
    "time_promised": "promised",
    "answered": "answered",
    "accepted": "accepted",
    "objected": "reviewing",
    "spot_settled": "resolved",
    "resolved": "resolved",
    "closed": "closed",
    "reopened": "reopened",
}
# Where the case stands, in the words the page has for it (an open case whose owner is still
# to be found, at night, is "routed": with the department, nobody named yet).
CASE_STAGES = {
    "open": "assigned",
    "investigating": "investigating",
    "proposed": "answered",
    "objected": "reviewing",
    "escalated": "reviewing",
    "accepted": "carrying_out",
    "executing": "carrying_out",
    "resolved": "resolved",
    "closed": "closed",
    "reopened": "reopened",
}


def owns(complaint: Mapping[str, Any], phone: str) -> bool:
    """Whether `phone` (as the customer typed it) is the one the complaint was filed with:
    its digits, the last eleven (+86 138 0013 8000 and 13800138000 are one number). A
    complaint without a phone (or anonymised) is nobody's to look up here."""
    stored = (complaint.get("customer") or {}).get("phone")
    if not stored or sum(ch.isdigit() for ch in phone) < 7:
        return False
    typed, kept = contact_key({"phone": phone}), contact_key({"phone": stored})
    return typed is not None and kept is not None and hmac.compare_digest(typed, kept)


def progress(complaint: Mapping[str, Any], case: Mapping[str, Any] | None) -> dict[str, Any]:
    """The page's stage (`stage`), the steps so far with when (`steps`, oldest first; a step
    repeated in a row is shown once: three findings are one "investigating"), the time the
    customer was promised (`promised_by`) and, for a complaint not taken up, why (`rejection`)."""
    found: list[tuple[datetime, str]] = [(complaint["received_at"], "received")]
    if complaint.get("acknowledgement"):
        found.append((complaint["acknowledgement"]["acknowledged_at"], "acknowledged"))
    if complaint["status"] == "rejected":
        return {
            "stage": "rejected",
            "steps": _steps(found),
            "promised_by": None,
            "rejection": complaint["rejection"]["reason"],
        }
    stage, promised_by = ("acknowledged" if complaint.get("acknowledgement") else "received"), None
    if case is not None:
        stage = CASE_STAGES.get(case["state"], stage)
        if stage == "assigned" and not case.get("owner_id"):
            stage = "routed"
        found += [
            (_time(entry["at"]), CUSTOMER_STEPS[entry["action"]])
            for entry in case.get("timeline") or ()
            if entry["action"] in CUSTOMER_STEPS
        ]
        promise = case.get("expected_resolution")
        if promise and stage not in ("resolved", "closed"):
            promised_by = _time(promise["expected_by"])
    return {"stage": stage, "steps": _steps(found), "promised_by": promised_by, "rejection": None}


def _steps(found: list[tuple[datetime, str]]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for at, step in sorted(found, key=lambda pair: pair[0]):  # stable: a tie keeps the order found
        if not steps or steps[-1]["step"] != step:
            steps.append({"step": step, "at": at})
    return steps


def _time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
