"""Intake's own data: the `complaints` collection (one document per complaint with
its outbox), `sequences` (daily complaint-number counters per mall, taken NUMBER_BLOCK
at a time per process: numbers are unique and increase within a process, not gap-free,
see mongo.NumberBlocks), `attachments`
(files that came with a mail, by id, each referenced from its complaint), and for
personal data `audit_log` (full reads) and `retention_runs`."""

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from mallcare_common import audit
from mallcare_common.messaging import push_to_outbox
from mallcare_common.mongo import MongoDatabase, NumberBlocks, Store
from mallcare_common.web import NotFound

NUMBER_BLOCK = 20  # complaint numbers a process takes from a day's counter at once


class ComplaintStore(Store):
    DuplicateChannelRef = DuplicateKeyError

    def __init__(self, db, numbers):
        super().__init__(db)
        self.complaints = db.complaints
        self.outboxes = (db.complaints,)
        self.numbers = numbers

    def next_number(self, key):
        """The next number of the daily counter `key` ("<mall code>-<local date>")."""
        return self.numbers.next(self.db, key)

    def find_by_channel_ref(self, channel, channel_ref):
        return self.complaints.find_one({"channel": channel, "channel_ref": channel_ref})

    def find_duplicate(self, fp, since):
        """An earlier, not rejected complaint with the same fingerprint received since `since`."""
        if fp is None:
            return None
        earlier = self.complaints.find({"fingerprint": fp, "received_at": {"$gte": since}}, {"status": 1})
        return next((doc["_id"] for doc in earlier if doc["status"] != "rejected"), None)

    def insert(self, doc):
        """Raises DuplicateChannelRef when the same channel reference is already stored."""
        self.complaints.insert_one(doc)

    def get(self, number):
        doc = self.find(number)
        if doc is None:
            raise NotFound(f"no complaint {number}")
        return doc

    def find(self, number):
        """Complaint `number`, or None."""
        return self.complaints.find_one({"_id": number})

    def list(self, query):
        selector = {k: query[k] for k in ("mall_id", "channel", "status") if k in query}
        received = {op: query[k] for k, op in (("received_from", "$gte"), ("received_to", "$lte")) if k in query}
        if received:
            selector["received_at"] = received
        total = self.complaints.count_documents(selector)
        skip = (query["page"] - 1) * query["per_page"]
        items = list(
            self.complaints.find(selector, {"outbox": 0})
            .sort([("received_at", DESCENDING), ("_id", DESCENDING)])
            .skip(skip)
            .limit(query["per_page"])
        )
        return items, total

    def waiting(self, malls, channels, page, per_page):
        """Complaints not yet acknowledged (R1.2) of `malls` (None: every mall) and `channels`
        (None: every channel), the earliest acknowledgement deadline first, and how many."""
        selector = {"status": "registered"}
        if malls is not None:
            selector["mall_id"] = {"$in": list(malls)}
        if channels is not None:
            selector["channel"] = {"$in": list(channels)}
        total = self.complaints.count_documents(selector)
        items = list(
            self.complaints.find(selector, {"outbox": 0})
            .sort([("ack_due_at", ASCENDING), ("_id", ASCENDING)])
            .skip((page - 1) * per_page)
            .limit(per_page)
        )
        return items, total

    def exists(self, number, mall_id):
        """Whether complaint `number` is one of mall `mall_id`'s."""
        return self.complaints.find_one({"_id": number, "mall_id": mall_id}, {"_id": 1}) is not None

    def keep_files(self, files):
        """Store files that came with a mail; one kept before (the mail read again) stays."""
        for file in files:
            self.insert_new(self.db.attachments, file)

    def attach(self, number, references):
        """Record the files that came with the complaint, once."""
        if references:
            self.complaints.update_one({"_id": number, "attachments": None}, {"$set": {"attachments": references}})

    def file(self, number, file_id):
        file = self.db.attachments.find_one({"_id": file_id, "complaint_no": number})
        if file is None:
            raise NotFound(f"no attachment {file_id} of {number}")
        return file

    def acknowledge(self, number, record, event, now):
        """Record the first acknowledgement with its event; None if it was already acknowledged.
        An update_one and a read: the embedded store scans every complaint for a find_one_and_update."""
        acknowledged = self.complaints.update_one(
            {"_id": number, "status": "registered"},
            {"$set": {"status": "acknowledged", "acknowledgement": record}, "$push": push_to_outbox(event, now)},
        )
        return self.complaints.find_one({"_id": number}) if acknowledged.matched_count else None


class Complaints(MongoDatabase):
    def setup(self):
        super().setup()
        self.numbers = NumberBlocks(NUMBER_BLOCK)  # this process's blocks of complaint numbers

    def indexes(self, db):
        db.complaints.create_index(
            [("channel", ASCENDING), ("channel_ref", ASCENDING)],
            unique=True,
            name="one_per_channel_ref",
            partialFilterExpression={"channel_ref": {"$type": "string"}},
        )
        # For the lookup: the embedded store does not plan queries with a partial index
        # (explain() shows a collection scan; measured in bench/). A key pattern of its
        # own, since mongod refuses a second index on the same keys without a filter.
        db.complaints.create_index([("channel", ASCENDING), ("channel_ref", ASCENDING), ("received_at", ASCENDING)])
        db.complaints.create_index([("fingerprint", ASCENDING), ("received_at", DESCENDING)])
        db.complaints.create_index([("mall_id", ASCENDING), ("received_at", DESCENDING)])
        db.complaints.create_index([("received_at", DESCENDING)])
        db.complaints.create_index([("pending_events", ASCENDING)])
        # The acknowledgement queue (ComplaintStore.waiting): the statuses and filters, then the
        # deadline it is sorted by. The embedded store scans it for one mall and its channels
        # (staff's usual query); for several malls and several channels at once it scans the
        # collection (explain()), as mongod does not.
        db.complaints.create_index(
            [("status", ASCENDING), ("mall_id", ASCENDING), ("channel", ASCENDING), ("ack_due_at", ASCENDING)]
        )
        # mongod answers {_id, status} from _id alone; the embedded store uses an index
        # only when it holds every field the query names.
        db.complaints.create_index([("_id", ASCENDING), ("status", ASCENDING)])
        db.complaints.create_index([("_id", ASCENDING), ("version", ASCENDING)])  # unit_of_work's compare-and-set
        db.complaints.create_index([("case_state", ASCENDING), ("closed_at", ASCENDING), ("anonymised_at", ASCENDING)])
        db.attachments.create_index([("complaint_no", ASCENDING)])  # retention removes a complaint's files
        audit.indexes(db)

    def wrap(self, db):
        return ComplaintStore(db, self.numbers)
