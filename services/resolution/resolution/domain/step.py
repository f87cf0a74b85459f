"""Who acts, and what one action does to a case or an incident (a Step): the fields
to set, the timeline entries to append (immutable, R3.10) and the events to publish,
as data the service writes in one update with its outbox."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from mallcare_common.contracts import EventType, build_event

from .states import TRANSITIONS, check_transition

# A stored document, a request or an event, as the store and marshmallow give them.
Doc = dict[str, Any]


@dataclass(frozen=True)
class Actor:
    """Who acts: a member of staff (role from the directory) or a service."""

    id: str
    role: str
    name: str = ""


@dataclass
class Step:
    """What one action does to a case (or an incident): fields to set, timeline
    entries, events."""

    transitions = TRANSITIONS
    what = "case"

    case: Doc
    actor: Actor
    now: datetime
    changes: Doc = field(default_factory=dict)
    entries: list[Doc] = field(default_factory=list)
    events: list[Doc] = field(default_factory=list)

    @property
    def state(self) -> str:
        return cast(str, self.changes.get("state", self.case["state"]))

    def get(self, key: str) -> Any:
        return self.changes.get(key, self.case.get(key))

    def move(self, target: str) -> None:
        check_transition(self.state, target, self.transitions, self.what)
        self.changes["state"] = target

    def log(self, action: str, **detail: Any) -> None:
        self.entries.append(
            {
                "seq": len(self.case["timeline"]) + len(self.entries) + 1,
                "at": self.now,
                "by": self.actor.id,
                "role": self.actor.role,
                "action": action,
                "state": self.state,
                "detail": detail,
            }
        )

    def publish(self, event_type: EventType, payload: Doc) -> None:
        self.events.append(
            build_event(
                event_type,
                mall_id=self.case["mall_id"],
                complaint_no=self.case["_id"],
                occurred_at=self.now,
                payload=payload,
            )
        )
