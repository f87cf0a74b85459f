"""The unit of work behind every service's write path: read a document, let the
domain decide, write the decision with a compare-and-set on the document's
`version`, then publish the document's pending outbox events (DESIGN.md: no dual
writes). Somebody who changed the document between the read and the write makes the
write miss; the decision is then taken again on what they wrote, ATTEMPTS times at
most, then Conflict (409; the caller tries again later)."""

import copy
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pymongo.collection import Collection

from .errors import Conflict
from .messaging import publish_pending, push_to_outbox
from .mongo import Doc, NotFound

ATTEMPTS = 5

Update = dict[str, Any]  # a Mongo update: {"$set": ..., "$push": ...}
Decision = tuple[Update, Sequence[Doc]]  # the update of a document's own fields, and the events of its outbox


def change(
    collection: Collection[Doc],
    key: object,
    decide: Callable[[Doc, datetime], Decision | None],
    dispatch: Callable[[str, Doc], object],
    service: str,
    clock: Callable[[], datetime],
    what: str,
    kept_changing: str,
    attempts: int = ATTEMPTS,
    count: Callable[[Doc, Doc], object] | None = None,
) -> Doc:
    """Apply `decide(document, now)` to the document `key` and return the document
    written. `decide` answers (update, events): a Mongo update of the document's own
    fields and the events its outbox gets; None when there is nothing to do (a
    redelivery), and change returns the document as read; or it raises the domain's
    refusal, which leaves as it is. No such document: NotFound naming `what`. A write
    that keeps losing: Conflict(`kept_changing`). `count(before, after)` moves what the
    service counts from a change (its tallies, its metrics) before the events leave, so
    whoever gets one finds it counted: `before` is the document as read, `after` the same
    with the decision's `$set` applied, so a count reads what this write set and nothing a
    writer after it did (the document read back may hold that too, see `write`)."""
    for _ in range(attempts):
        doc = collection.find_one({"_id": key}, {"outbox": 0})
        if doc is None:
            raise NotFound(f"no {what} {key}")
        now = clock()
        decision = decide(doc, now)
        if decision is None:
            return doc
        update, events = decision
        updated = write(collection, doc, update, events, now)
        if updated is not None:
            if count is not None:
                count(doc, _as_set(doc, update))
            if updated.get("pending_events"):  # a document that never had an event has no outbox
                publish_pending(collection, dispatch, service, now, [updated])
            return updated
    raise Conflict(kept_changing)


def write(collection: Collection[Doc], doc: Doc, update: Update, events: Sequence[Doc], now: datetime) -> Doc | None:
    """Write `update` with `events` in the outbox if nobody changed `doc` since it was
    read (then the document with its outbox, to publish from); None otherwise.

    The write is an update_one and the document is read right after it: another writer
    who comes in those milliseconds shows in it too (this write's events are in its outbox
    either way). Not find_one_and_update, whose own result would be exact: the embedded
    store (SecantusDB 0.7) scans the whole collection for each one, about 20 ms more per
    1,000 documents (docs/benchmarks.md, "The embedded store"), so a case's action or a
    triage correction slowed as the months' cases piled up (the one-hour soak)."""
    if not collection.update_one(
        {"_id": doc["_id"], "version": doc.get("version")}, with_outbox(update, events, now)
    ).matched_count:
        return None
    return collection.find_one({"_id": doc["_id"]})


def _as_set(doc: Doc, update: Update) -> Doc:
    """`doc` with `update`'s `$set` applied (dotted paths into nested documents too)."""
    after = copy.deepcopy(doc)  # a nested set must not reach the caller's document
    for path, value in update.get("$set", {}).items():
        *parents, leaf = path.split(".")
        node = after
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return after


def with_outbox(update: Update, events: Sequence[Doc], now: datetime) -> Update:
    """`update` counting the version up, with `events` pushed to the outbox, pending."""
    update = {**update, "$inc": {**update.get("$inc", {}), "version": 1}}  # a decision's own counts kept
    if events:
        pushes = [push_to_outbox(event, now) for event in events]
        update["$push"] = {
            **update.get("$push", {}),
            **{field: {"$each": [p[field] for p in pushes]} for field in ("outbox", "pending_events")},
        }
    return update
