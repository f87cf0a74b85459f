"""Improvement actions (R5.3) as plain functions: a root-cause analysis (5 Whys) on a
recurring problem, the action it calls for, its owner and due date, tracked to done
with the evidence. An open action past its due date (in the mall's own calendar) is
overdue; that is worked out when read, never stored, so it cannot go stale."""
from mallcare_common.web import Conflict

STATUSES = ("open", "done", "overdue")


def new_action(data, action_id, now):
    """The stored action for a validated ActionIn body."""
    return {"_id": action_id, "mall_id": data["mall_id"], "problem": data["problem"], "whys": data["whys"],
            "root_cause": data["root_cause"], "action": data["action"], "owner_id": data["owner_id"],
            "due_date": data["due_date"].isoformat(), "status": "open", "created_at": now,
            "created_by": data["by"], "done_at": None, "done_by": None, "evidence": None}


def done(action, data, now):
    """The changes that close an action; an action is closed once."""
    if action["status"] == "done":
        raise Conflict(f"action {action['_id']} was done on {action['done_at']:%Y-%m-%d} by {action['done_by']}")
    return {"status": "done", "done_at": now, "done_by": data["by"], "evidence": data["evidence"]}


def is_overdue(action, today):
    """`today`: the mall's local date."""
    return action["status"] == "open" and action["due_date"] < today.isoformat()


def view(action, today):
    return {**{k: v for k, v in action.items() if k != "_id"}, "action_id": action["_id"],
            "overdue": is_overdue(action, today)}


def selection(mall_id, status):
    """The store filter for GET /actions?mall_id=&status=; overdue ones are the open ones
    that `is_overdue` then keeps (each mall has its own today)."""
    query = {"mall_id": mall_id} if mall_id else {}
    if status:
        query["status"] = "open" if status == "overdue" else status
    return query


def action_id(mall_code, seq):
    return f"{mall_code}-IA-{seq:04d}"
