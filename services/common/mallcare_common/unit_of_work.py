"""The unit of work behind every service's write path: read a document, let the
domain decide, write the decision with a compare-and-set on the document's
`version`, then publish the document's pending outbox events (DESIGN.md: no dual
writes). Somebody who changed the document between the read and the write makes the
write miss; the decision is then taken again on what they wrote, ATTEMPTS times at
most, then Conflict (409; the caller tries again later)."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
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
    read_back: bool = False,
) -> Doc:
    """Apply `decide(document, now)` to the document `key` and return the document
    written. `decide` answers (update, events): a Mongo update of the document's own
    fields and the events its outbox gets; None when there is nothing to do (a
    redelivery), and change returns the document as read; or it raises the domain's
    refusal, which leaves as it is. No such document: NotFound naming `what`. A write
    that keeps losing: Conflict(`kept_changing`). `count(before, after)`, given the
    document as read and as written, moves what the service counts from a change (its
    tallies, its metrics) before the events leave, so whoever gets one finds it counted.
    `read_back`: see `write`."""
    for _ in range(attempts):
        doc = collection.find_one({"_id": key}, {"outbox": 0})
        if doc is None:
            raise NotFound(f"no {what} {key}")
        now = clock()
        decision = decide(doc, now)
        if decision is None:
            return doc
        update, events = decision
        updated = write(collection, doc, update, events, now, read_back)
        if updated is not None:
            if count is not None:
                count(doc, updated)
            if updated.get("pending_events"):  # a document that never had an event has no outbox
                publish_pending(collection, dispatch, service, now, [updated])
            return updated
    raise Conflict(kept_changing)


def write(
    collection: Collection[Doc], doc: Doc, update: Update, events: Sequence[Doc], now: datetime, read_back: bool = False
) -> Doc | None:
    """Write `update` with `events` in the outbox if nobody changed `doc` since it was
    read (then the document with its outbox, to publish from); None otherwise.

    The document is the write's own result (find_one_and_update), unless `read_back`: then
    the write is an update_one and the document is read after it, so it may hold a later
    writer's change too (its outbox holds this write's events either way). That is for a
    caller whose `count` reads only what this write set, on a large collection: the
    embedded store (SecantusDB 0.7) scans the whole collection for every
    find_one_and_update (docs/benchmarks.md, "The embedded store")."""
    query = {"_id": doc["_id"], "version": doc.get("version")}
    if not read_back:
        return collection.find_one_and_update(
            query, with_outbox(update, events, now), return_document=ReturnDocument.AFTER
        )
    if not collection.update_one(query, with_outbox(update, events, now)).matched_count:
        return None
    return collection.find_one({"_id": doc["_id"]})


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
