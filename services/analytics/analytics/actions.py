"""Improvement actions (R5.3) as plain functions: a root-cause analysis (5 Whys) on a
recurring problem, the action it calls for, its owner and due date, tracked to done
with the evidence. An open action past its due date (in the mall's own calendar) is
overdue; that is worked out when read, never stored, so it cannot go stale.

A systemic pattern (R2.2: triage flags the same category recurring at a mall, or at one
merchant, past its threshold) makes analytics propose an action: status `proposed`, the
pattern, how often it recurred and the complaints that made it, once per pattern and
window (fixed windows of the policy's days, counted from 1970-01-01). A person adopts the
proposal by recording the analysis with its `proposal_id`; the proposal becomes that action."""

from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any

from mallcare_common.errors import Conflict
from mallcare_common.personal import masked_fields

STATUSES = ("proposed", "open", "done", "overdue")
FREE_TEXT = ("problem", "whys", "root_cause", "action", "evidence")  # what people wrote: masked in every read
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

Doc = dict[str, Any]  # a stored action, a request or an event, as the store and marshmallow give them


def new_action(data: Mapping[str, Any], action_id: str, now: datetime) -> Doc:
    """The stored action for a validated ActionIn body."""
    return {
        "_id": action_id,
        "mall_id": data["mall_id"],
        "problem": data["problem"],
        "whys": data["whys"],
        "root_cause": data["root_cause"],
        "action": data["action"],
        "owner_id": data["owner_id"],
        "due_date": data["due_date"].isoformat(),
        "status": "open",
        "created_at": now,
        "created_by": data["by"],
        "done_at": None,
        "done_by": None,
        "evidence": None,
    }


def pattern_window(
    mall_id: str, merchant_id: str | None, category: str, received_at: datetime, window_days: int
) -> tuple[str, datetime, datetime]:
    """(key, start, end) of the window a systemic complaint's pattern falls in."""
    days = timedelta(days=window_days)
    start = _EPOCH + days * ((received_at - _EPOCH) // days)
    return f"{mall_id}|{merchant_id or '-'}|{category}|{start:%Y-%m-%d}", start, start + days


def proposal(action_id: str, triaged: Doc, window: tuple[str, datetime, datetime], now: datetime) -> Doc:
    """The proposed action for the first systemic complaint of a pattern in a window.
    `triaged`: the complaint_triaged envelope; `window`: pattern_window's answer. The
    pattern's complaints are kept beside it (storage.join_proposal), not in it."""
    p = triaged["payload"]
    key, start, end = window
    where = f"merchant {p['merchant_id']}" if p["merchant_id"] else "the mall"
    return {
        "_id": action_id,
        "mall_id": triaged["mall_id"],
        "status": "proposed",
        "pattern_key": key,
        "problem": {
            "summary": f"{p['category']} recurred {p['recurrences']} times at {where} since {start:%Y-%m-%d}",
            "category": p["category"],
            "area": None,
            "merchant_id": p["merchant_id"],
        },
        "recurrences": p["recurrences"],
        "window": {"from": start.date().isoformat(), "until": end.date().isoformat()},
        "whys": [],
        "root_cause": None,
        "action": None,
        "owner_id": None,
        "due_date": None,
        "created_at": now,
        "created_by": "analytics",
        "done_at": None,
        "done_by": None,
        "evidence": None,
    }


def adopt(action: Doc, data: Mapping[str, Any], now: datetime) -> Doc:
    """The changes that turn a proposal into the action a person analysed."""
    if action["status"] != "proposed":
        raise Conflict(f"action {action['_id']} is {action['status']}, not a proposal")
    if action["mall_id"] != data["mall_id"]:
        raise Conflict(f"proposal {action['_id']} is for {action['mall_id']}")
    recorded = new_action(data, action["_id"], now)
    # the proposal's pattern, complaints and origin stay; the analysis is the person's
    return {k: v for k, v in recorded.items() if k not in ("_id", "created_at", "created_by")} | {
        "adopted_at": now,
        "adopted_by": data["by"],
    }


def done(action: Doc, data: Mapping[str, Any], now: datetime) -> Doc:
    """The changes that close an action; an action is closed once."""
    if action["status"] == "proposed":
        raise Conflict(
            f"action {action['_id']} is a proposal: record its analysis first (POST /actions with its proposal_id)"
        )
    if action["status"] == "done":
        raise Conflict(f"action {action['_id']} was done on {action['done_at']:%Y-%m-%d} by {action['done_by']}")
    return {"status": "done", "done_at": now, "done_by": data["by"], "evidence": data["evidence"]}


def is_overdue(action: Doc, today: date) -> bool:
    """`today`: the mall's local date."""
    due_date: str = action["due_date"]  # stored as an ISO date
    return action["status"] == "open" and due_date < today.isoformat()


def view(action: Doc, today: date, complaint_nos: list[str]) -> Doc:
    """The action as every read shows it: its free text masked, whether it is overdue, and
    `complaint_nos`, the complaints of its pattern (none for an action a person started)."""
    return {
        **masked_fields({k: v for k, v in action.items() if k != "_id"}, FREE_TEXT),
        "action_id": action["_id"],
        "overdue": is_overdue(action, today),
        # a proposal stored before 2026-12-06 holds its list itself
        "complaint_nos": sorted(set(action.get("complaint_nos", [])) | set(complaint_nos)),
    }


def selection(mall_id: str | None, status: str | None) -> dict[str, str]:
    """The store filter for GET /actions?mall_id=&status=; overdue ones are the open ones
    that `is_overdue` then keeps (each mall has its own today)."""
    query = {"mall_id": mall_id} if mall_id else {}
    if status:
        query["status"] = "open" if status == "overdue" else status
    return query


def action_id(mall_code: str, seq: int) -> str:
    return f"{mall_code}-IA-{seq:04d}"
