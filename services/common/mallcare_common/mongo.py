"""The MongoDB dependency provider every service uses, in the shape of
nameko-sqlalchemy's DatabaseSession: the client is built in setup() from config,
closed in stop()/kill(), and each worker gets a small store object.

Config keys: MONGO_URI (plain mongodb:// host lists; no +srv under eventlet),
MONGO_DATABASE (defaults to the service name), MONGO_POOL_SIZE (1-2 on the
embedded store, larger on mongod), MONGO_TIMEOUT_MS (how long a call waits for
an absent store before StoreError: HTTP 503, an event held; see messaging.py).

Writes are journaled (w=1, j=True; "majority" when the URI names a replica set):
an acknowledged complaint must survive a store crash.
"""

import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from pymongo import MongoClient, ReturnDocument, WriteConcern
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

StoreError = PyMongoError
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"  # this process, as a lease holder

Doc = dict[str, Any]  # a stored document, as pymongo gives it


DUPLICATE_KEY = 11000  # the server's error code


class NotFound(Exception):
    """No such document (HTTP 404)."""


def duplicates(exc: BulkWriteError) -> set[int]:
    """The positions of a bulk write's statements refused as duplicate keys; any other
    error, or a write concern not met (not journaled), is raised again."""
    if exc.details.get("writeConcernErrors") or any(
        error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]
    ):
        raise exc
    return {error["index"] for error in exc.details["writeErrors"]}


class Store:
    """What a worker gets: the service's database behind a small domain API."""

    def __init__(self, db: Database[Doc]) -> None:
        self.db = db

    def insert_new(self, collection: Collection[Doc], doc: Doc) -> bool:
        """False when a document with its _id is there already (a redelivery, a retry)."""
        try:
            collection.insert_one(doc)
            return True
        except DuplicateKeyError:
            return False

    def insert_new_many(self, collection: Collection[Doc], docs: list[Doc]) -> list[Doc]:
        """Insert `docs` in one write; the ones that were not there already."""
        if not docs:
            return []
        try:
            collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            there = duplicates(exc)
            return [doc for i, doc in enumerate(docs) if i not in there]
        return docs

    def get(self, collection: Collection[Doc], key: object, what: str) -> Doc:
        """The document without its outbox, or NotFound naming `what` it is."""
        doc = collection.find_one({"_id": key}, {"outbox": 0})
        if doc is None:
            raise NotFound(f"no {what} {key}")
        return doc


class MongoDatabase(DependencyProvider):
    """Subclass and override `indexes(db)` and `wrap(db)` to give workers a domain store."""

    def setup(self) -> None:
        config = self.container.config
        uri = config.get("MONGO_URI", "mongodb://127.0.0.1:27017/")
        self.client: MongoClient[Doc] = MongoClient(
            uri,
            maxPoolSize=int(config.get("MONGO_POOL_SIZE", 2)),
            serverSelectionTimeoutMS=int(config.get("MONGO_TIMEOUT_MS", 5000)),
            tz_aware=True,
        )
        concern = WriteConcern(w="majority", j=True) if "replicaSet=" in uri else WriteConcern(w=1, j=True)
        name = config.get("MONGO_DATABASE") or self.container.service_name
        self.database = self.client.get_database(name, write_concern=concern)

    def start(self) -> None:
        self.indexes(self.database)

    def stop(self) -> None:
        self.client.close()

    def kill(self) -> None:
        self.client.close()

    def get_dependency(self, worker_ctx: Any) -> Store:
        return self.wrap(self.database)

    def indexes(self, db: Database[Doc]) -> None:
        """Create the indexes the store relies on (idempotent)."""

    def wrap(self, db: Database[Doc]) -> Store:
        return Store(db)


def ping(db: Database[Doc]) -> bool:
    """True when the store answers; used by /health."""
    try:
        db.client.admin.command("ping")
        return True
    except PyMongoError:
        return False


def acquire_lease(db: Database[Doc], name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the named lease; True if `holder` holds it until now + ttl.

    Timers fire on every replica of a service; a sweep runs only where this is True.
    """
    try:
        lease = db.leases.find_one_and_update(
            {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lte": now}}]},
            {"$set": {"holder": holder, "expires_at": now + ttl}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:  # another holder's lease has not expired
        return False
    return lease is not None and str(lease["holder"]) == holder


class Lease:
    """A lease kept through a sweep that may outlast it (a backlog, a slow store):
    `held(now)` renews it once a third of its time has gone, so that another replica
    does not start the same sweep beside this one; False once it was lost."""

    def __init__(self, db: Database[Doc], name: str, holder: str, ttl: timedelta) -> None:
        self.db, self.name, self.holder, self.ttl = db, name, holder, ttl
        self.renewed_at: datetime | None = None

    def held(self, now: datetime) -> bool:
        if self.renewed_at is not None and now - self.renewed_at < self.ttl / 3:
            return True
        if not acquire_lease(self.db, self.name, self.holder, now, self.ttl):
            return False
        self.renewed_at = now
        return True


def leased_timer(
    interval: float,
    lease: str,
    ttl: timedelta | Callable[[Any], timedelta],
    entrypoint: Any = Timer,
    otherwise: Callable[[Any], object] | None = None,
) -> Callable[[Callable[[Any, Lease], object]], Any]:
    """nameko's timer that fires in every replica of a service, its method run in one:
    the holder of the service's lease "<service>.<lease>", taken or renewed for `ttl` at
    each tick (the lease, a Lease, comes in as the method's argument, to renew through a
    long sweep). `ttl` is a timedelta or a function of the service giving one; `entrypoint`
    a Timer subclass; `otherwise(service)` is called on a tick where another replica holds the lease.
    For a service with `store` (whose `db` keeps the leases) and `clock`."""

    def decorate(sweep: Callable[[Any, Lease], object]) -> Any:
        @wraps(sweep)
        def run(self: Any) -> None:
            held = Lease(self.store.db, f"{self.name}.{lease}", INSTANCE, ttl(self) if callable(ttl) else ttl)
            if held.held(self.clock()):
                sweep(self, held)
            elif otherwise is not None:
                otherwise(self)

        return entrypoint.decorator(interval=interval)(run)

    return decorate


def next_sequence(db: Database[Doc], key: str, step: int = 1) -> int:
    """An atomic counter (complaint and incident numbers), counted up by `step`: the last of
    the `step` numbers taken. Two first upserts of a key can race: mongod then raises
    DuplicateKeyError and the embedded store returns nothing; either way, take the next one."""
    for _ in range(5):
        try:
            counter = db.sequences.find_one_and_update(
                {"_id": key}, {"$inc": {"seq": step}}, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            continue
        if counter is not None:
            return int(counter["seq"])
    raise RuntimeError(f"no sequence number for {key}")


class NumberBlocks:
    """Numbers of next_sequence's counters taken `block` at a time by this process: one
    round trip to the store per `block` numbers instead of one per number. Numbers stay
    unique (every block is the counter's alone) and increase within a process; across
    processes they interleave, and a block's unused rest is a gap: at a restart, and when
    a key's day is over (keys name their day). The blocks of the last KEPT keys are kept."""

    KEPT = 64

    def __init__(self, block: int) -> None:
        self.block = block
        self._blocks: OrderedDict[str, tuple[int, int]] = OrderedDict()  # key -> (next, last)
        self._lock = threading.Lock()  # green under eventlet: one refill at a time

    def next(self, db: Database[Doc], key: str) -> int:
        with self._lock:
            number, last = self._blocks.pop(key, (1, 0))
            if number > last:
                last = next_sequence(db, key, self.block)
                number = last - self.block + 1
            self._blocks[key] = (number + 1, last)
            while len(self._blocks) > self.KEPT:
                self._blocks.popitem(last=False)
            return number
