"""Notify's own data: `messages` (one per complaint, kind and ref, keyed
<complaint number>:<kind>:<ref>, with its attempts and its outbox) and `complaints`
(what notify keeps of each registered complaint: mall, channel, the customer's language
and whether they left any contact; never the contact)."""

from pymongo import ASCENDING, DESCENDING

from mallcare_common.mongo import MongoDatabase, Store

from .rules import OPEN


class NotifyStore(Store):
    def __init__(self, db):
        super().__init__(db)
        self.messages, self.complaints = db.messages, db.complaints
        self.outboxes = (db.messages,)

    def keep_complaint(self, number, mall_id, channel, language, reachable):
        summary = {"mall_id": mall_id, "channel": channel, "language": language, "reachable": reachable}
        self.complaints.update_one({"_id": number}, {"$setOnInsert": summary}, upsert=True)
        return {"_id": number, **summary}

    def complaint(self, number):
        return self.complaints.find_one({"_id": number})

    def due(self, now, limit):
        """Messages whose next attempt is due, and those an attempt that never finished
        (a crash) held past its claim; the earliest first."""
        waiting = (
            self.messages.find({"status": {"$in": list(OPEN)}, "next_attempt_at": {"$lte": now}}, {"outbox": 0})
            .sort([("next_attempt_at", ASCENDING)])
            .limit(limit)
        )
        stuck = self.messages.find({"status": "sending", "claimed_until": {"$lte": now}}, {"outbox": 0}).limit(limit)
        return [*waiting, *stuck]

    def of_complaint(self, complaint_no):
        return list(
            self.messages.find({"complaint_no": complaint_no}, {"outbox": 0}).sort(
                [("created_at", ASCENDING), ("_id", ASCENDING)]
            )
        )

    def failed(self, mall_id, limit):
        """Messages that finally failed at a mall (None: every mall), the latest first."""
        selector = {**({"mall_id": mall_id} if mall_id else {}), "status": "failed"}
        return list(
            self.messages.find(selector, {"outbox": 0})
            .sort([("failure.at", DESCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )

    def open_revisit_messages(self, revisit_id):
        return list(self.messages.find({"detail.revisit_id": revisit_id, "status": {"$in": list(OPEN)}}, {"outbox": 0}))


class Messages(MongoDatabase):
    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.messages.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        db.messages.create_index([("status", ASCENDING), ("claimed_until", ASCENDING)])
        db.messages.create_index([("complaint_no", ASCENDING), ("created_at", ASCENDING)])
        db.messages.create_index([("mall_id", ASCENDING), ("status", ASCENDING), ("failure.at", DESCENDING)])
        db.messages.create_index([("status", ASCENDING), ("failure.at", DESCENDING)])
        db.messages.create_index([("detail.revisit_id", ASCENDING), ("status", ASCENDING)])
        db.messages.create_index([("_id", ASCENDING), ("version", ASCENDING)])
        db.messages.create_index([("pending_events", ASCENDING)])

    def wrap(self, db):
        return NotifyStore(db)
