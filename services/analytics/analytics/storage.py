"""Analytics' own data: `events`, every event it received, keyed by event id (the
rebuildable base of every read model); `labels`, each complaint's category, risk
and department as triage last graded them; `clocks`, one per deadline (see
clocks.py), with the outbox of the SLA events; `tallies`, satisfied and
dissatisfied answers per mall."""
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from mallcare_common.contracts import EVENT_TYPES
from mallcare_common.messaging import push_to_outbox
from mallcare_common.mongo import MongoDatabase, Store

from . import clocks

INTAKE_EVENTS = [name for name, event in EVENT_TYPES.items() if event.source == "intake"]
OPEN = {"stopped_at": None, "due_at": {"$ne": None}}


class EventLog(Store):
    def __init__(self, db):
        super().__init__(db)
        self.events, self.clocks = db.events, db.clocks
        self.outboxes = (db.clocks,)

    def record(self, event, received_at):
        """Store the event once; False when it was stored before (a redelivery)."""
        doc = {k: event[k] for k in ("event_type", "schema_version", "occurred_at", "mall_id", "complaint_no")}
        result = self.events.update_one({"_id": event["event_id"]},
                                        {"$setOnInsert": {**doc, "channel": event["payload"].get("channel"),
                                                          "received_at": received_at}}, upsert=True)
        return result.upserted_id is not None

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

    # --- labels and tallies ---------------------------------------------------------------------

    def label(self, complaint_no, **values):
        self.db.labels.update_one({"_id": complaint_no}, {"$set": values}, upsert=True)

    def labels_of(self, complaint_no):
        return self.db.labels.find_one({"_id": complaint_no}) or {}

    def count_answer(self, mall_id, satisfied):
        """Running satisfied/dissatisfied counts of a mall; returns (satisfied, all)."""
        tally = self.db.tallies.find_one_and_update(
            {"_id": f"answers:{mall_id}"}, {"$inc": {"satisfied" if satisfied else "dissatisfied": 1}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return tally.get("satisfied", 0), tally.get("satisfied", 0) + tally.get("dissatisfied", 0)

    def answer_tallies(self):
        return {t["_id"].split(":", 1)[1]: (t.get("satisfied", 0), t.get("satisfied", 0) + t.get("dissatisfied", 0))
                for t in self.db.tallies.find({"_id": {"$gt": "answers:", "$lt": "answers;"}})}

    # --- clocks ---------------------------------------------------------------------------------

    def start(self, op, share):
        f = op.fields
        self.clocks.update_one({"_id": op.clock_id}, {
            "$set": {**f, "clock": op.clock, "at_risk_at": clocks.at_risk_at(f["started_at"], f["due_at"], share)},
            "$setOnInsert": {"stopped_at": None, "outcome": None, "at_risk_reported": False,
                             "breach_reported": False}}, upsert=True)
        return self.clocks.find_one({"_id": op.clock_id})

    def stop(self, clock_id, at):
        """Stop once; a clock whose start has not arrived yet is created stopped."""
        try:
            self.clocks.update_one({"_id": clock_id, "stopped_at": None}, {
                "$set": {"stopped_at": at},
                "$setOnInsert": {"due_at": None, "outcome": None, "at_risk_reported": False,
                                 "breach_reported": False}}, upsert=True)
        except DuplicateKeyError:   # stopped before: a redelivery
            return None
        return self.clocks.find_one({"_id": clock_id})

    def stop_all(self, complaint_no, clock, at):
        found = list(self.clocks.find({"complaint_no": complaint_no, "clock": clock, **OPEN}, {"_id": 1}))
        return [c for c in (self.stop(doc["_id"], at) for doc in found) if c]

    def move(self, op, share):
        clock = self.clocks.find_one({"_id": op.clock_id})
        if clock is None or clock.get("started_at") is None:
            return None
        self.clocks.update_one({"_id": op.clock_id}, {"$set": {
            "due_at": op.due_at, "department": op.department,
            "at_risk_at": clocks.at_risk_at(clock["started_at"], op.due_at, share)}})
        return self.clocks.find_one({"_id": op.clock_id})

    def settle(self, clock, changes, event, now):
        """Record a clock's outcome (and its breach event, if any) once; the updated clock or None."""
        update = {"$set": changes}
        if event:
            update["$push"] = push_to_outbox(event, now)
        return self.clocks.find_one_and_update({"_id": clock["_id"], "outcome": None}, update,
                                               return_document=ReturnDocument.AFTER)

    def report(self, clock, flag, event, changes, now):
        """Set `flag` (at_risk_reported / breach_reported) and queue its event, once."""
        return self.clocks.find_one_and_update(
            {"_id": clock["_id"], flag: False, "stopped_at": None},
            {"$set": {flag: True, **changes}, "$push": push_to_outbox(event, now)},
            return_document=ReturnDocument.AFTER)

    def reaching_risk(self, now, limit):
        return list(self.clocks.find({"stopped_at": None, "at_risk_reported": False, "at_risk_at": {"$lte": now}},
                                     {"outbox": 0}).limit(limit))

    def reaching_deadline(self, now, limit):
        return list(self.clocks.find({"stopped_at": None, "breach_reported": False, "due_at": {"$lte": now}},
                                     {"outbox": 0}).limit(limit))

    def open_counts(self, now):
        """{(mall_id, clock): (open, at_risk)} over the clocks still running."""
        counts = {}
        for c in self.clocks.find(OPEN, {"mall_id": 1, "clock": 1, "at_risk_at": 1}):
            key = (c["mall_id"], c["clock"])
            running, risky = counts.get(key, (0, 0))
            counts[key] = (running + 1, risky + (c["at_risk_at"] <= now))
        return counts


class Events(MongoDatabase):
    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.events.create_index([("event_type", ASCENDING), ("mall_id", ASCENDING)])
        db.events.create_index([("complaint_no", ASCENDING)])
        db.clocks.create_index([("stopped_at", ASCENDING), ("breach_reported", ASCENDING), ("due_at", ASCENDING)])
        db.clocks.create_index([("stopped_at", ASCENDING), ("at_risk_reported", ASCENDING),
                                ("at_risk_at", ASCENDING)])
        db.clocks.create_index([("complaint_no", ASCENDING), ("clock", ASCENDING), ("stopped_at", ASCENDING),
                                ("due_at", ASCENDING)])
        db.clocks.create_index([("stopped_at", ASCENDING), ("due_at", ASCENDING)])
        db.clocks.create_index([("pending_events", ASCENDING)])

    def wrap(self, db):
        return EventLog(db)
