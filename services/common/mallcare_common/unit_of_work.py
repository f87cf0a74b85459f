"""The unit of work behind every service's write path: read a document, let the
domain decide, write the decision with a compare-and-set on the document's
`version`, then publish the document's pending outbox events (DESIGN.md: no dual
writes). Somebody who changed the document between the read and the write makes the
write miss; the decision is then taken again on what they wrote, ATTEMPTS times at
most, then Conflict (409; the caller tries again later)."""
from pymongo import ReturnDocument

from .errors import Conflict
from .messaging import publish_pending, push_to_outbox
from .mongo import NotFound

ATTEMPTS = 5


def change(collection, key, decide, dispatch, service, clock, what, kept_changing, attempts=ATTEMPTS, count=None):
    """Apply `decide(document, now)` to the document `key` and return the document
    written. `decide` answers (update, events): a Mongo update of the document's own
    fields and the events its outbox gets; None when there is nothing to do (a
    redelivery), and change returns the document as read; or it raises the domain's
    refusal, which leaves as it is. No such document: NotFound naming `what`. A write
    that keeps losing: Conflict(`kept_changing`). `count(before, after)`, given the
    document as read and as written, moves what the service counts from a change (its
    tallies, its metrics) before the events leave, so whoever gets one finds it counted."""
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
                count(doc, updated)
            if updated.get("pending_events"):   # a document that never had an event has no outbox
                publish_pending(collection, dispatch, service, now, [updated])
            return updated
    raise Conflict(kept_changing)


def write(collection, doc, update, events, now):
    """Write `update` with `events` in the outbox if nobody changed `doc` since it was
    read (then the document with its outbox, to publish from); None otherwise."""
    return collection.find_one_and_update({"_id": doc["_id"], "version": doc.get("version")},
                                          with_outbox(update, events, now), return_document=ReturnDocument.AFTER)


def with_outbox(update, events, now):
    """`update` counting the version up, with `events` pushed to the outbox, pending."""
    update = {**update, "$inc": {**update.get("$inc", {}), "version": 1}}   # a decision's own counts kept
    if events:
        pushes = [push_to_outbox(event, now) for event in events]
        update["$push"] = {**update.get("$push", {}),
                           **{field: {"$each": [p[field] for p in pushes]} for field in ("outbox", "pending_events")}}
    return update
