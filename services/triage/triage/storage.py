"""Triage's own data: `assessments`, one per complaint, keyed by complaint number,
each with its outbox. The history look-ups the rules need are answered here too."""
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from mallcare_common.messaging import push_to_outbox
from mallcare_common.mongo import MongoDatabase, Store
from mallcare_common.web import NotFound


class AssessmentStore(Store):
    NotFound = NotFound

    def __init__(self, db):
        super().__init__(db)
        self.assessments = self.outbox = db.assessments

    def exists(self, complaint_no):
        return self.assessments.count_documents({"_id": complaint_no}, limit=1) > 0

    def insert_new(self, doc):
        """False when the complaint was assessed already (a redelivered event)."""
        try:
            self.assessments.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    def get(self, complaint_no):
        doc = self.assessments.find_one({"_id": complaint_no})
        if doc is None:
            raise NotFound(f"no assessment for {complaint_no}")
        return doc

    def update(self, complaint_no, changes, history_entry, event, now):
        return self.assessments.find_one_and_update(
            {"_id": complaint_no},
            {"$set": changes, "$push": {"history": history_entry, **push_to_outbox(event, now)}},
            return_document=ReturnDocument.AFTER)

    # the rules' history look-ups (see rules.assess)
    def count_by_customer(self, customer_ref, since):
        return self.assessments.count_documents({"customer_ref": customer_ref, "triaged_at": {"$gte": since}})

    def count_recurrences(self, mall_id, merchant_id, category, since):
        """Earlier complaints of this category at this mall, or about this merchant anywhere."""
        at_mall = self.assessments.count_documents(
            {"mall_id": mall_id, "category": category, "triaged_at": {"$gte": since}})
        if not merchant_id:
            return at_mall
        at_merchant = self.assessments.count_documents(
            {"merchant_id": merchant_id, "category": category, "triaged_at": {"$gte": since}})
        return max(at_mall, at_merchant)

    def open_load(self, mall_id):
        rows = self.assessments.aggregate([
            {"$match": {"mall_id": mall_id, "status": "open"}},
            {"$group": {"_id": "$owner.id", "open": {"$sum": 1}}}])
        return {row["_id"]: row["open"] for row in rows if row["_id"]}

    def unowned(self, limit):
        """Open assessments nobody owns yet, earliest deadline first."""
        return self.queue({"owner.id": None}, limit)

    def queue(self, selector, limit):
        return list(self.assessments.find({**selector, "status": "open"}, {"outbox": 0, "history": 0})
                    .sort([("resolution_due_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))


class Assessments(MongoDatabase):
    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.assessments.create_index([("customer_ref", ASCENDING), ("triaged_at", ASCENDING)])
        db.assessments.create_index([("mall_id", ASCENDING), ("category", ASCENDING), ("triaged_at", ASCENDING)])
        db.assessments.create_index([("merchant_id", ASCENDING), ("category", ASCENDING),
                                     ("triaged_at", ASCENDING)])
        db.assessments.create_index([("status", ASCENDING), ("mall_id", ASCENDING), ("department", ASCENDING),
                                     ("owner.id", ASCENDING), ("resolution_due_at", ASCENDING)])
        db.assessments.create_index([("pending_events", ASCENDING)])

    def wrap(self, db):
        return AssessmentStore(db)
