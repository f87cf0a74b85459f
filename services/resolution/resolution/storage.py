"""Resolution's own data: `cases`, one per complaint keyed by its number,
`incidents`, one per adverse-event report, and `batch_checks`, one per product batch of a
mall (R7.6); each document carries its immutable
timeline and its outbox. `sequences` numbers the incidents and `incident_requests`
keeps which report a request id made; `audit_log` and `retention_runs` are the
personal-data records (mallcare_common.audit, .retention).

Every change is a compare-and-set on the document's `version` (mallcare_common.
unit_of_work), so two handlers acting on one case at once cannot both win, and a
request id is stored with the change it made, so a retried request finds it done."""

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from mallcare_common import audit
from mallcare_common.mongo import MongoDatabase, Store

from .domain.states import ACTIVE


# the proposed cases read to find those waiting for one role: a chain's backlog of proposals
# awaiting approval is far below this; the earliest deadlines come first if it ever is not
AWAITING_READ = 2000


class CaseStore(Store):
    def __init__(self, db):
        super().__init__(db)
        self.cases, self.incidents, self.batch_checks = db.cases, db.incidents, db.batch_checks
        self.outboxes = (db.cases, db.incidents, db.batch_checks)

    def queue(self, selector, limit):
        """Cases of a mall, handler, department or level, earliest resolution deadline first."""
        selector = dict(selector)
        selector.setdefault("state", {"$in": list(ACTIVE)})
        return list(
            self.cases.find(selector, {"outbox": 0, "timeline": 0})
            .sort([("resolution_due_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )

    def awaiting_approval(self, selector, most=AWAITING_READ):
        """Proposed cases (of a mall, handler, ...) with a proposal awaiting approval, earliest
        resolution deadline first; at most `most` (a state asked for is not theirs: proposed)."""
        selector = {**selector, "state": "proposed", "proposals": {"$elemMatch": {"status": "awaiting_approval"}}}
        return list(
            self.cases.find(selector, {"outbox": 0, "timeline": 0})
            .sort([("resolution_due_at", ASCENDING), ("_id", ASCENDING)])
            .limit(most)
        )

    def rectifications(self, mall_id, status, limit):
        """Rectification tasks of a mall (None: every mall), open or done, earliest due first."""
        wanted = {"done": None} if status == "open" else {"done": {"$ne": None}}
        selector = {**({"mall_id": mall_id} if mall_id else {}), "rectifications": {"$elemMatch": wanted}}
        docs = self.cases.find(selector, {"rectifications": 1, "mall_id": 1})
        items = [
            {**r, "complaint_no": d["_id"], "mall_id": d["mall_id"]}
            for d in docs
            for r in d["rectifications"]
            if (r["done"] is None) == (status == "open")
        ]
        return sorted(items, key=lambda r: r["due_at"])[:limit]

    def with_merchant(self, mall_id, merchant_id, limit):
        """R7.5: the cases with one merchant of a mall now, the earliest reply due first."""
        docs = self.cases.find({"mall_id": mall_id, "merchant_access": merchant_id}, {"outbox": 0, "timeline": 0})
        return sorted(docs, key=lambda c: (c["merchant_requests"][-1]["due_at"], c["_id"]))[:limit]

    def closing_by_rule(self, now):
        """Resolved cases whose customer could not be reached and whose waiting time is over, earliest first."""
        return self.cases.find({"state": "resolved", "closure_by_rule.close_at": {"$lte": now}}, {"outbox": 0}).sort(
            [("closure_by_rule.close_at", ASCENDING), ("_id", ASCENDING)]
        )

    def claim_request(self, request_id, number):
        """The incident number a report's request id belongs to: `number` when this
        request is the first with the id, the earlier one's otherwise (unique _id)."""
        try:
            self.db.incident_requests.insert_one({"_id": request_id, "number": number})
            return number
        except DuplicateKeyError:
            return self.get(self.db.incident_requests, request_id, "request id")["number"]

    def take_over_request(self, request_id, claimed, number):
        """Give the request id to `number` when the report that claimed it never wrote its incident."""
        return (
            self.db.incident_requests.update_one(
                {"_id": request_id, "number": claimed}, {"$set": {"number": number}}
            ).modified_count
            == 1
        )

    def list_incidents(self, mall_id, state, limit):
        """Incidents of a mall (None: every mall), the earliest reported first."""
        selector = {**({"mall_id": mall_id} if mall_id else {}), **({"state": state} if state else {})}
        return list(
            self.incidents.find(selector, {"outbox": 0, "timeline": 0}).sort([("reported_at", ASCENDING)]).limit(limit)
        )

    def list_batch_checks(self, selector, limit):
        """R7.6: batch checks of a mall (None: every mall), a state, a complaint: the latest opened first."""
        selector = {k: v for k, v in selector.items() if v}
        return list(
            self.batch_checks.find(selector, {"outbox": 0, "timeline": 0})
            .sort([("opened_at", DESCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )

    def join_batch_check(self, number, complaint_no):
        """R7.6: a later complaint of the batch joins its check, once; one atomic update, so
        that complaints of one batch opening at once never contend (a step taken meanwhile
        is written again over the new version, its event naming the complaint too)."""
        self.batch_checks.update_one(
            {"_id": number, "complaint_nos": {"$ne": complaint_no}},
            {"$push": {"complaint_nos": complaint_no}, "$inc": {"version": 1}},
        )
        return self.batch_checks.find_one({"_id": number}, {"outbox": 0, "timeline": 0})


def step_update(step, request_id=None):
    """What writing a step takes (unit_of_work): its changes, its timeline entries and
    the request id it answers, and its events."""
    push = {"timeline": {"$each": step.entries}}
    if request_id:
        push["request_ids"] = request_id
    update = {"$push": push}
    if step.changes:
        update["$set"] = step.changes
    return update, step.events


class Cases(MongoDatabase):
    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.cases.create_index([("_id", ASCENDING), ("version", ASCENDING)])
        db.cases.create_index([("mall_id", ASCENDING), ("state", ASCENDING), ("resolution_due_at", ASCENDING)])
        db.cases.create_index([("pending_events", ASCENDING)])
        db.cases.create_index([("mall_id", ASCENDING), ("merchant_access", ASCENDING)])
        db.cases.create_index([("state", ASCENDING), ("closure_by_rule.close_at", ASCENDING), ("_id", ASCENDING)])
        db.incidents.create_index([("_id", ASCENDING), ("version", ASCENDING)])
        db.incidents.create_index([("mall_id", ASCENDING), ("state", ASCENDING), ("reported_at", ASCENDING)])
        db.incidents.create_index([("pending_events", ASCENDING)])
        db.batch_checks.create_index([("_id", ASCENDING), ("version", ASCENDING)])
        db.batch_checks.create_index([("mall_id", ASCENDING), ("state", ASCENDING), ("opened_at", ASCENDING)])
        db.batch_checks.create_index([("complaint_nos", ASCENDING)])
        db.batch_checks.create_index([("pending_events", ASCENDING)])
        db.cases.create_index([("state", ASCENDING), ("closure.at", ASCENDING), ("anonymised_at", ASCENDING)])
        db.incidents.create_index([("state", ASCENDING), ("anonymised_at", ASCENDING)])
        audit.indexes(db)

    def wrap(self, db):
        return CaseStore(db)
