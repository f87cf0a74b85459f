"""Triage's own data: `assessments`, one per complaint, keyed by complaint number."""
from pymongo import ASCENDING

from mallcare_common.mongo import MongoDatabase, Store
from mallcare_common.web import NotFound


class AssessmentStore(Store):
    NotFound = NotFound

    def __init__(self, db):
        super().__init__(db)
        self.assessments = db.assessments

    def open_pending(self, complaint_no, fields):
        """Create the assessment once; a redelivered event changes nothing."""
        self.assessments.update_one({"_id": complaint_no}, {"$setOnInsert": fields}, upsert=True)

    def get(self, complaint_no):
        doc = self.assessments.find_one({"_id": complaint_no})
        if doc is None:
            raise NotFound(f"no assessment for {complaint_no}")
        return doc


class Assessments(MongoDatabase):
    def indexes(self, db):
        db.assessments.create_index([("mall_id", ASCENDING), ("status", ASCENDING)])

    def wrap(self, db):
        return AssessmentStore(db)
