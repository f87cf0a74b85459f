"""Analytics' own data: `events`, every event it received, keyed by event id.

Keeping the events themselves (not counters) makes handling idempotent and the
read models rebuildable; the counts are aggregated from them on request.
"""
from pymongo import ASCENDING

from mallcare_common.contracts import EVENT_TYPES
from mallcare_common.mongo import MongoDatabase, Store

INTAKE_EVENTS = [name for name, event in EVENT_TYPES.items() if event.source == "intake"]


class EventLog(Store):
    def __init__(self, db):
        super().__init__(db)
        self.events = db.events

    def record(self, event, received_at):
        """Store the event once; a redelivery is a no-op."""
        doc = {k: event[k] for k in ("event_type", "schema_version", "occurred_at", "mall_id", "complaint_no")}
        self.events.update_one({"_id": event["event_id"]},
                               {"$setOnInsert": {**doc, "channel": event["payload"].get("channel"),
                                                 "received_at": received_at}}, upsert=True)

    def intake_counts(self, mall_id=None):
        """Events per mall, channel and type: the intake picture ops look at first."""
        match = {"event_type": {"$in": INTAKE_EVENTS}, **({"mall_id": mall_id} if mall_id else {})}
        rows = self.events.aggregate([
            {"$match": match},
            {"$group": {"_id": {"mall_id": "$mall_id", "event_type": "$event_type", "channel": "$channel"},
                        "count": {"$sum": 1}}},
        ])
        return sorted(({**row["_id"], "count": row["count"]} for row in rows),
                      key=lambda r: (r["mall_id"], r["event_type"], r["channel"] or ""))


class Events(MongoDatabase):
    def indexes(self, db):
        db.events.create_index([("event_type", ASCENDING), ("mall_id", ASCENDING)])
        db.events.create_index([("complaint_no", ASCENDING)])

    def wrap(self, db):
        return EventLog(db)
