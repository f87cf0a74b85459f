"""Triage's own data: `assessments`, one per complaint, keyed by complaint number,
each with its outbox, changed through mallcare_common.unit_of_work (a compare-and-set
on its `version`); and `tallies`, running counts the rules look up on every
complaint (complaints per mall or merchant, category and day; open complaints per
handler), so that an assessment costs the same however many are stored.

A tally is updated right after the write it counts, not in the same write: a
crash between the two leaves a count short (a whole batch's, when a batch of
assessments was inserted and its tally write failed: the redelivery finds them there),
which only nudges a threshold or a load comparison."""

from collections import Counter
from datetime import timedelta, timezone

from pymongo import ASCENDING, UpdateOne

from mallcare_common.mongo import MongoDatabase, Store
from mallcare_common.web import NotFound

UNOWNED_PAGE = 200  # unowned assessments read at a time by the sweep


class KnownKeys:
    """The tallies this process has seen stored (tallies are never removed), up to LIMIT;
    past it, it forgets them all and learns them again."""

    LIMIT = 10_000

    def __init__(self):
        self.keys = set()

    def __contains__(self, key):
        return key in self.keys

    def add(self, keys):
        if len(self.keys) + len(keys) > self.LIMIT:
            self.keys.clear()
        self.keys.update(keys)


class AssessmentStore(Store):
    def __init__(self, db, known_tallies):
        super().__init__(db)
        self.known_tallies = known_tallies
        self.assessments = db.assessments
        self.outboxes = (db.assessments,)

    def get(self, complaint_no):
        doc = self.assessments.find_one({"_id": complaint_no})
        if doc is None:
            raise NotFound(f"no assessment for {complaint_no}")
        return doc

    # the rules' history look-ups (see rules.assess)
    def count_by_customer(self, customer_ref, since):
        """A customer's complaints are few, so counting the records themselves is cheap."""
        return self.assessments.count_documents({"customer_ref": customer_ref, "triaged_at": {"$gte": since}})

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        """Complaints of this category at this mall, or about this merchant anywhere,
        on the days from `since` to `until` (whole days: the window is day-grained)."""
        return max(self.recurrences_by_scope(mall_id, merchant_id, category, since, until).values())

    def recurrences_by_scope(self, mall_id, merchant_id, category, since, until):
        """{"mall:<id>": n, "merchant:<id>": n} (the merchant's when there is one)."""
        first, last = _day(since), _day(until)
        days = [(first + timedelta(days=d)).isoformat() for d in range((last - first).days + 1)]
        scopes = _scopes(mall_id, merchant_id)
        ids = [f"{scope}|{category}|{day}" for scope in scopes for day in days]
        totals = dict.fromkeys(scopes, 0)
        for tally in self.db.tallies.find({"_id": {"$in": ids}}):  # both scopes in one read
            totals[tally["_id"].partition("|")[0]] += tally["n"]
        return totals

    def customers_since(self, refs, since):
        """How many complaints each of `refs` made since `since`, in one read."""
        found = self.assessments.find(
            {"customer_ref": {"$in": list(refs)}, "triaged_at": {"$gte": since}}, {"customer_ref": 1}
        )
        return Counter(doc["customer_ref"] for doc in found)

    def assessed(self, complaint_nos):
        """Which of these complaints have their assessment already."""
        return {doc["_id"] for doc in self.assessments.find({"_id": {"$in": list(complaint_nos)}}, {"_id": 1})}

    def open_load(self, mall_id):
        return {t["handler"]: t["n"] for t in self.db.tallies.find({"mall_id": mall_id, "handler": {"$gt": ""}})}

    def count_change(self, before, after):
        """Move the tallies from what `before` counted (None for a new assessment) to `after`."""
        self.count_changes([(before, after)])

    def count_changes(self, changes):
        """Move the tallies for each (before, after) of `changes`: tallies this process knows
        exist in one update_many per step (one journaled write for a batch of new
        assessments), the others upserted in one bulk write."""
        steps, fields = Counter(), {}
        counted = [(doc, step) for before, after in changes for doc, step in ((before, -1), (after, 1)) if doc]
        for doc, step in counted:
            day = _day(doc["triaged_at"]).isoformat()
            if doc["category"]:
                steps[f"mall:{doc['mall_id']}|{doc['category']}|{day}"] += step
                if doc["merchant_id"]:
                    steps[f"merchant:{doc['merchant_id']}|{doc['category']}|{day}"] += step
            if doc["owner"] and doc["status"] == "open":
                key = f"load:{doc['mall_id']}|{doc['owner']['id']}"
                steps[key] += step
                fields[key] = {"mall_id": doc["mall_id"], "handler": doc["owner"]["id"]}
        new = [key for key, step in steps.items() if step and key not in self.known_tallies]
        if new:
            self.db.tallies.bulk_write(
                [
                    UpdateOne(
                        {"_id": key},
                        {"$inc": {"n": steps[key]}, **({"$set": fields[key]} if key in fields else {})},
                        upsert=True,
                    )
                    for key in new
                ],
                ordered=False,
            )
            self.known_tallies.add(new)
        by_step = {}
        for key, step in steps.items():
            if step and key not in new:
                by_step.setdefault(step, []).append(key)
        for step, keys in by_step.items():
            self.db.tallies.update_many({"_id": {"$in": keys}}, {"$inc": {"n": step}})

    def unowned(self, page=UNOWNED_PAGE):
        """Every open assessment nobody owns yet, the earliest triaged first, read a page
        at a time after the last one seen: complaints nobody can take yet (however many)
        never hide the newer ones behind them."""
        after = {}
        while True:
            found = list(
                self.assessments.find(
                    {"owner.id": None, "status": "open", **after}, {"outbox": 0, "history": 0, "complaint": 0}
                )
                .sort([("triaged_at", ASCENDING), ("_id", ASCENDING)])
                .limit(page)
            )
            yield from found
            if len(found) < page:
                return
            last = found[-1]
            after = {
                "$or": [
                    {"triaged_at": {"$gt": last["triaged_at"]}},
                    {"triaged_at": last["triaged_at"], "_id": {"$gt": last["_id"]}},
                ]
            }

    def queue(self, selector, limit):
        return list(
            self.assessments.find({**selector, "status": "open"}, {"outbox": 0, "history": 0})
            .sort([("resolution_due_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )


def _day(at):
    return at.astimezone(timezone.utc).date()


def _scopes(mall_id, merchant_id):
    return [f"mall:{mall_id}"] + ([f"merchant:{merchant_id}"] if merchant_id else [])


class BatchHistory:
    """The rules' history look-ups (rules.History) for a batch of complaints assessed in
    order: what is stored, read once for the batch (a customer's complaints for all the
    batch's customers in one read; a mall's loads and a category's counts once each), plus
    the batch's own assessments made before each one, which are not stored yet. So each
    complaint is assessed as it would have been alone, one after the other."""

    def __init__(self, store, refs):
        self.store, self.refs = store, set(refs)
        self.assessed = []  # this batch's, in order
        self._customers, self._recurrences, self._loads = {}, {}, {}

    def add(self, doc):
        self.assessed.append(doc)

    def count_by_customer(self, ref, since):
        """`ref` is one of the batch's customers (`refs`), all read at the first call."""
        if since not in self._customers:  # one window (the policy's) for the whole batch
            self._customers[since] = self.store.customers_since(self.refs, since)
        return self._customers[since][ref] + sum(doc["customer_ref"] == ref for doc in self.assessed)

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        key = (mall_id, merchant_id, category, since, until)
        if key not in self._recurrences:
            self._recurrences[key] = self.store.recurrences_by_scope(*key)
        totals = dict(self._recurrences[key])
        for doc in self.assessed:  # triaged now: inside the window
            if doc["category"] == category:
                for scope in set(_scopes(doc["mall_id"], doc["merchant_id"])) & set(totals):
                    totals[scope] += 1
        return max(totals.values())

    def open_load(self, mall_id):
        if mall_id not in self._loads:
            self._loads[mall_id] = self.store.open_load(mall_id)
        load = Counter(self._loads[mall_id])
        load.update(doc["owner"]["id"] for doc in self.assessed if doc["mall_id"] == mall_id and doc["owner"])
        return dict(load)


class Assessments(MongoDatabase):
    def setup(self):
        super().setup()
        self.known_tallies = KnownKeys()

    def indexes(self, db):
        # The embedded store uses an index only when it holds every field a query names.
        db.assessments.create_index([("customer_ref", ASCENDING), ("triaged_at", ASCENDING)])
        db.tallies.create_index([("mall_id", ASCENDING), ("handler", ASCENDING)])
        db.assessments.create_index(
            [
                ("status", ASCENDING),
                ("mall_id", ASCENDING),
                ("department", ASCENDING),
                ("owner.id", ASCENDING),
                ("resolution_due_at", ASCENDING),
            ]
        )
        db.assessments.create_index([("pending_events", ASCENDING)])
        db.assessments.create_index([("_id", ASCENDING), ("version", ASCENDING)])  # unit_of_work's compare-and-set
        db.assessments.create_index(
            [("status", ASCENDING), ("owner.id", ASCENDING), ("triaged_at", ASCENDING), ("_id", ASCENDING)]
        )

    def wrap(self, db):
        return AssessmentStore(db, self.known_tallies)
