"""Feedback's own data: `complaints` (what feedback needs of each registered complaint:
channel, masked contact, the problem as told, merchant and area), `revisits` (one per
resolution of a case, keyed <complaint number>-R<round>), `library` (the case
library, one entry per complaint), `closures` (when each case was last closed, and what the
library's monthly review needs of it), `library_reviews` (one per mall and month, R7.14),
`survey_rounds` (one per mall and month, with its sample) and `surveys` (one per customer
asked, R7.12). Revisits, library entries, reviews and surveys carry their outbox."""

from pymongo import ASCENDING

from mallcare_common.mongo import MongoDatabase, Store

from .rules import OPEN


class FeedbackStore(Store):
    def __init__(self, db):
        super().__init__(db)
        self.complaints, self.revisits, self.library = db.complaints, db.revisits, db.library
        self.closures = db.closures  # when each case was last closed
        self.reviews = db.library_reviews
        self.rounds, self.surveys = db.survey_rounds, db.surveys
        self.outboxes = (db.revisits, db.library, db.library_reviews, db.surveys)

    def keep_complaint(
        self, number, mall_id, channel, contact_masked, description, demands, location, customer_ref=None
    ):
        summary = {
            "mall_id": mall_id,
            "channel": channel,
            "contact_masked": contact_masked,
            "customer_ref": customer_ref,  # pseudonymous (intake's): a customer is surveyed once a round
            "description": description,
            "demands": demands,
            "merchant_id": (location or {}).get("merchant_id"),
            "area": (location or {}).get("area"),
        }
        self.complaints.update_one({"_id": number}, {"$setOnInsert": summary}, upsert=True)
        return {"_id": number, **summary}

    def complaint(self, number):
        return self.complaints.find_one({"_id": number})

    def note_closed(self, number, at):
        self.closures.update_one({"_id": number}, {"$max": {"closed_at": at}}, upsert=True)

    def keep_closed_case(self, case):
        """What the library's monthly review needs of a closed case (R7.14)."""
        facts = {k: case.get(k) for k in ("mall_id", "category", "risk_level")}
        self.closures.update_one({"_id": case["complaint_no"]}, {"$set": {**facts, "rounds": case.get("round", 1)}})

    def closures_to_complete(self, limit):
        return list(self.closures.find({"mall_id": {"$exists": False}}).limit(limit))

    def closed_in(self, mall_id, start, end):
        """The cases of a mall last closed in [start, end)."""
        return list(self.closures.find({"mall_id": mall_id, "closed_at": {"$gte": start, "$lt": end}}))

    def complaints_of(self, numbers):
        return {c["_id"]: c for c in self.complaints.find({"_id": {"$in": list(numbers)}})}

    def dissatisfied(self, numbers):
        """Of `numbers`, the complaints whose customer answered dissatisfied at a revisit."""
        found = self.revisits.find(
            {"complaint_no": {"$in": list(numbers)}, "answer.satisfied": False}, {"complaint_no": 1}
        )
        return {r["complaint_no"] for r in found}

    def archived(self, numbers):
        return {e["_id"] for e in self.library.find({"_id": {"$in": list(numbers)}}, {"_id": 1})}

    def closed_since(self, number, at):
        """Whether the case was closed at or after `at` (a resolution that arrives late)."""
        closure = self.closures.find_one({"_id": number})
        return bool(closure and closure["closed_at"] >= at)

    def worklist(self, mall_id, limit):
        """Revisits still to make at a mall (None: every mall), the earliest deadline first (R4.1)."""
        selector = {**({"mall_id": mall_id} if mall_id else {}), "status": {"$in": list(OPEN)}}
        return list(
            self.revisits.find(selector, {"outbox": 0})
            .sort([("due_at", ASCENDING), ("scheduled_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )

    def open_revisits(self, complaint_no):
        return list(self.revisits.find({"complaint_no": complaint_no, "status": {"$in": list(OPEN)}}, {"outbox": 0}))

    def overdue(self, now, limit):
        return list(
            self.revisits.find(
                {"status": {"$in": list(OPEN)}, "due_at": {"$lt": now}, "overdue_reported": False}, {"outbox": 0}
            ).limit(limit)
        )

    def search(self, selector, limit):
        return list(
            self.library.find(selector, {"outbox": 0, "process": 0}).sort([("archived_at", ASCENDING)]).limit(limit)
        )


class Revisits(MongoDatabase):
    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.revisits.create_index([("mall_id", ASCENDING), ("status", ASCENDING), ("due_at", ASCENDING)])
        db.revisits.create_index([("complaint_no", ASCENDING), ("status", ASCENDING)])
        db.revisits.create_index([("status", ASCENDING), ("due_at", ASCENDING), ("overdue_reported", ASCENDING)])
        db.revisits.create_index([("_id", ASCENDING), ("version", ASCENDING)])
        db.revisits.create_index([("pending_events", ASCENDING)])
        db.library.create_index([("mall_id", ASCENDING), ("category", ASCENDING)])
        db.library.create_index([("pending_events", ASCENDING)])
        db.closures.create_index([("mall_id", ASCENDING), ("closed_at", ASCENDING)])
        db.library_reviews.create_index([("pending_events", ASCENDING)])
        db.library_reviews.create_index([("_id", ASCENDING), ("version", ASCENDING)])
        db.surveys.create_index([("pending_events", ASCENDING)])
        db.surveys.create_index([("_id", ASCENDING), ("version", ASCENDING)])

    def wrap(self, db):
        return FeedbackStore(db)
