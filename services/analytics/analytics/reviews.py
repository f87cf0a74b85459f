"""The half-year review of the complaints programme (R7.13, seed 000: 每半年召開一次方案評估會議,
邀請各部門負責人參與) as plain functions.

Each half year a mall's department heads meet over the half year's report (the six months
summed, GET /reports/half-year) and decide what to change. The meeting is recorded once per
mall and half year (SHXJH-REV-2026-H2): when, who attended, and its decisions; each decision
becomes an improvement action (actions.py) with its owner and due date, tracked to done
like any other, and linked to the review both ways. The actions' ids follow from the review
(SHXJH-IA-2026-H2-01, ...), so a retried recording makes no second set."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

Doc = dict[str, Any]


def review_id(mall_code: str, period: str) -> str:
    return f"{mall_code}-REV-{period}"


def decision_action_id(mall_code: str, period: str, n: int) -> str:
    return f"{mall_code}-IA-{period}-{n:02d}"


def unknown_staff(data: Mapping[str, Any], staff_ids: set[str]) -> dict[str, list[str]]:
    """Field errors for attendees and owners who do not work at the mall (empty: none)."""
    errors: dict[str, list[str]] = {}
    strangers = [a for a in data["attendees"] if a not in staff_ids]
    if strangers:
        errors["attendees"] = [f"Not staff of {data['mall_id']}: {', '.join(strangers)}."]
    for i, decision in enumerate(data["decisions"]):
        if decision["owner_id"] not in staff_ids:
            errors[f"decisions.{i}.owner_id"] = [f"Not staff of {data['mall_id']}: {decision['owner_id']}."]
    return errors


def record(data: Mapping[str, Any], mall_code: str, now: datetime) -> tuple[Doc, list[Doc]]:
    """The review and the open improvement action of each of its decisions."""
    number = review_id(mall_code, data["period"])
    found = []
    for n, decision in enumerate(data["decisions"], 1):
        found.append(
            {
                "_id": decision_action_id(mall_code, data["period"], n),
                "mall_id": data["mall_id"],
                "problem": {
                    "summary": f"{data['period']} review ({data['held_on'].isoformat()}): decision {n}",
                    "category": None,
                    "area": None,
                    "merchant_id": None,
                },
                "whys": [],
                "root_cause": None,
                "action": decision["decision"],
                "owner_id": decision["owner_id"],
                "due_date": decision["due_date"].isoformat(),
                "status": "open",
                "review_id": number,
                "created_at": now,
                "created_by": data["by"],
                "done_at": None,
                "done_by": None,
                "evidence": None,
            }
        )
    review = {
        "_id": number,
        "mall_id": data["mall_id"],
        "period": data["period"],
        "held_on": data["held_on"].isoformat(),
        "attendees": list(data["attendees"]),
        "decisions": [
            {
                "decision": d["decision"],
                "owner_id": d["owner_id"],
                "due_date": d["due_date"].isoformat(),
                "action_id": a["_id"],
            }
            for d, a in zip(data["decisions"], found, strict=True)
        ],
        "recorded_at": now,
        "recorded_by": data["by"],
    }
    return review, found


def view(review: Mapping[str, Any]) -> Doc:
    return {**{k: v for k, v in review.items() if k != "_id"}, "review_id": review["_id"]}
