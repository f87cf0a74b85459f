"""The case library's monthly review (R7.14, seed 002: 每月更新客诉案例库) as plain functions.

Each month gone, every mall looks at the cases it closed that month that are worth a
lesson and are not in the library yet: the candidates. What makes a case a candidate is
policy (feedback.yml, `library.monthly_review`): it was reopened, the customer said they
were dissatisfied at a revisit, or its risk level is one the policy names. A reviewer
adds a candidate to the library with its lessons, or passes it over with a reason; the
review is done when every candidate is decided. From the policy's day of the month on,
a review of the month before that is not done is announced once (`library_review_due`);
a review done is announced once (`library_reviewed`), and the monthly report counts both.
A review is a document per mall and month, keyed by its number (SHXJH-LIB-2026-11).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone, tzinfo
from typing import Any

from mallcare_common.contracts import build_event
from mallcare_common.contracts import feedback as events
from mallcare_common.errors import Conflict

Doc = dict[str, Any]
DECISIONS = ("add", "pass")


def month_of(at: datetime, zone: tzinfo) -> str:
    """The mall's calendar month of `at`, as 2026-11."""
    return f"{at.astimezone(zone):%Y-%m}"


def month_span(month: str, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start, end) of the mall's month, in UTC."""
    year, number = int(month[:4]), int(month[5:])
    start = datetime(year, number, 1, tzinfo=zone)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def month_before(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def review_id(mall_code: str, month: str) -> str:
    return f"{mall_code}-LIB-{month}"


def reasons(closure: Mapping[str, Any], dissatisfied: bool, rules: Mapping[str, Any]) -> list[str]:
    """Why a closed case is worth a look for the library (none: it is not a candidate).
    `closure`: what feedback kept when the case closed; `rules`: `library.monthly_review`."""
    found = []
    if rules["reopened"] and closure.get("rounds", 1) > 1:
        found.append("reopened")
    if rules["dissatisfied"] and dissatisfied:
        found.append("dissatisfied")
    if closure.get("risk_level") in rules["risk_levels"]:
        found.append(f"risk_{closure['risk_level']}")
    return found


def candidates(
    closures: Iterable[Mapping[str, Any]],
    dissatisfied: set[str],
    archived: set[str],
    review: Mapping[str, Any] | None,
    rules: Mapping[str, Any],
) -> list[Doc]:
    """The month's candidates, oldest closure first, each with its reasons and the review's
    decision so far. A case in the library already is one only if this review added it."""
    decided = (review or {}).get("decisions", {})
    found = []
    for closure in sorted(closures, key=lambda c: (c["closed_at"], c["_id"])):
        number = closure["_id"]
        why = reasons(closure, number in dissatisfied, rules)
        if not why or (number in archived and number not in decided):
            continue
        found.append(
            {
                "complaint_no": number,
                "category": closure.get("category"),
                "risk_level": closure.get("risk_level"),
                "rounds": closure.get("rounds", 1),
                "closed_at": closure["closed_at"],
                "reasons": why,
                "decision": decided.get(number),
            }
        )
    return found


def new_review(number: str, mall_id: str, month: str) -> Doc:
    return {
        "_id": number,
        "mall_id": mall_id,
        "month": month,
        "decisions": {},
        "reminded_at": None,
        "done_at": None,
        "done_by": None,
    }


def decide(
    review: Mapping[str, Any],
    found: list[Doc],
    complaint_no: str,
    decision: str,
    reason: str | None,
    by: str,
    now: datetime,
) -> Doc:
    """The $set of one decision on a candidate; a done review takes no more (409)."""
    if review.get("done_at"):
        raise Conflict(f"review {review['_id']} was done on {review['done_at']:%Y-%m-%d} by {review['done_by']}")
    if complaint_no not in {c["complaint_no"] for c in found}:
        raise Conflict(f"{complaint_no} is not a candidate of review {review['_id']}")
    return {f"decisions.{complaint_no}": {"decision": decision, "reason": reason, "by": by, "at": now}}


def reminder(review: Mapping[str, Any], found: list[Doc], now: datetime) -> tuple[Doc, list[Doc]]:
    """The reminder's changes and event, none for a review reminded or done already."""
    if review.get("reminded_at") or review.get("done_at"):
        return {}, []
    event = build_event(
        events.LIBRARY_REVIEW_DUE,
        mall_id=review["mall_id"],
        complaint_no=review["_id"],
        occurred_at=now,
        payload={"month": review["month"], "candidates": len(found)},
    )
    return {"reminded_at": now}, [event]


def done(review: Mapping[str, Any], found: list[Doc], by: str, month_ended: bool, now: datetime) -> tuple[Doc, Doc]:
    """The changes and event of a finished review: the month is over and each candidate decided."""
    if review.get("done_at"):
        raise Conflict(f"review {review['_id']} was done on {review['done_at']:%Y-%m-%d} by {review['done_by']}")
    if not month_ended:
        raise Conflict(f"{review['month']} has not ended: its review is done once it has")
    undecided = [c["complaint_no"] for c in found if not c["decision"]]
    if undecided:
        raise Conflict(f"{len(undecided)} candidates are not decided yet: {', '.join(undecided[:10])}")
    added = sum(c["decision"]["decision"] == "add" for c in found)
    counts = {"candidates": len(found), "added": added, "passed": len(found) - added}
    event = build_event(
        events.LIBRARY_REVIEWED,
        mall_id=review["mall_id"],
        complaint_no=review["_id"],
        occurred_at=now,
        payload={"month": review["month"], **counts, "by": by},
    )
    return {"done_at": now, "done_by": by, "counts": counts}, event
