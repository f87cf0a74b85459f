"""DESIGN.md (store, timers): the shared Mongo provider against the real store,
under eventlet's monkey-patch (pymongo dropped eventlet support in 4.16, so a
pymongo upgrade that breaks this fails here): journaled writes, concurrent green
threads, the lease that lets one replica's timer run a sweep (mongo.leased_timer), and
numbers taken from a counter in blocks (mongo.NumberBlocks)."""

from datetime import datetime, timedelta, timezone

import eventlet
import pytest
from eventlet import patcher
from mock import Mock
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.testing.services import worker_factory
from nameko.timer import Timer

from mallcare_common.calendar import Clock
from mallcare_common.mongo import (
    INSTANCE,
    Lease,
    MongoDatabase,
    NumberBlocks,
    acquire_lease,
    leased_timer,
    ping,
)


@pytest.fixture
def provider(started_store):
    return started_store(MongoDatabase)


def test_pymongo_runs_under_the_monkey_patch(provider):
    assert patcher.is_monkey_patched("socket")
    db = provider.get_dependency(Mock()).db
    assert db.write_concern.document == {"w": 1, "j": True}
    pool = eventlet.GreenPool(20)
    list(pool.imap(lambda i: db.probe.insert_one({"_id": i}), range(200)))
    assert db.probe.count_documents({}) == 200
    assert ping(db)


def test_only_one_holder_has_the_lease_until_it_expires(provider):
    db = provider.database
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    ttl = timedelta(seconds=10)
    assert acquire_lease(db, "sweep", "replica-a", now, ttl)
    assert not acquire_lease(db, "sweep", "replica-b", now + timedelta(seconds=5), ttl)
    assert acquire_lease(db, "sweep", "replica-a", now + timedelta(seconds=5), ttl)  # renewal
    assert acquire_lease(db, "sweep", "replica-b", now + timedelta(seconds=16), ttl)  # a's lease ran out
    assert not acquire_lease(db, "sweep", "replica-a", now + timedelta(seconds=17), ttl)


def test_a_lease_held_through_a_long_sweep_is_renewed_as_it_goes(provider):
    db = provider.database
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    ttl = timedelta(seconds=6)
    sweep = Lease(db, "sweep", "replica-a", ttl)

    def expiry():
        return db.leases.find_one({"_id": "sweep"})["expires_at"]

    assert sweep.held(now) and expiry() == now + ttl
    assert sweep.held(now + timedelta(seconds=1)) and expiry() == now + ttl  # a third not gone: no write
    assert sweep.held(now + timedelta(seconds=5)) and expiry() == now + timedelta(seconds=11)
    assert not acquire_lease(db, "sweep", "replica-b", now + timedelta(seconds=7), ttl)
    assert acquire_lease(db, "sweep", "replica-b", now + timedelta(seconds=11), ttl)  # a stopped renewing
    assert not sweep.held(now + timedelta(seconds=12))  # a sees that b sweeps now, and stops


class Sweeper:
    """A service with a leased timer, as every service's sweeps are declared."""

    name = "probe"
    store = MongoDatabase()
    clock = Clock()

    def __init__(self):
        self.swept = []

    @leased_timer(5, lease="sweep", ttl=timedelta(seconds=10))
    def sweep(self, lease):
        self.swept.append(lease)

    @leased_timer(5, lease="report", ttl=lambda service: timedelta(seconds=3 * service.tick))
    def report(self, lease):
        self.swept.append(lease)


def test_a_leased_timer_runs_its_sweep_only_where_the_lease_is_held(provider):
    db = provider.database
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    at = {"now": now}
    service = worker_factory(Sweeper, store=provider.wrap(db), clock=lambda: at["now"])
    [timer] = getattr(Sweeper.sweep, ENTRYPOINT_EXTENSIONS_ATTR)
    assert type(timer) is Timer and timer.interval == 5  # nameko's timer fires in every replica

    assert acquire_lease(db, "probe.sweep", "replica-b", now, timedelta(seconds=10))
    at["now"] = now + timedelta(seconds=5)
    service.sweep()  # replica-b sweeps: not here
    assert service.swept == []
    at["now"] = now + timedelta(seconds=11)  # replica-b stopped renewing
    service.sweep()
    [lease] = service.swept
    assert db.leases.find_one({"_id": "probe.sweep"}) == {
        "_id": "probe.sweep",
        "holder": INSTANCE,
        "expires_at": now + timedelta(seconds=21),
    }
    assert not acquire_lease(db, "probe.sweep", "replica-b", now + timedelta(seconds=20), timedelta(seconds=10))
    assert lease.held(now + timedelta(seconds=16))  # the sweep renews it as it goes
    assert db.leases.find_one({"_id": "probe.sweep"})["expires_at"] == now + timedelta(seconds=26)

    service.tick = 4  # a time to live the service works out
    service.report()
    assert db.leases.find_one({"_id": "probe.report"})["expires_at"] == now + timedelta(seconds=23)


def test_a_leased_timer_tells_a_replica_that_does_not_sweep(provider):
    """Analytics forgets its gauges on such a tick: the sweeping replica reports them."""
    db = provider.database
    now = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    passed = []

    class Watcher(Sweeper):
        @leased_timer(2, lease="watch", ttl=timedelta(seconds=6), otherwise=passed.append)
        def watch(self, lease):
            self.swept.append(lease)

    service = worker_factory(Watcher, store=provider.wrap(db), clock=lambda: now)
    assert acquire_lease(db, "probe.watch", "replica-b", now, timedelta(seconds=6))
    service.watch()
    assert (service.swept, passed) == ([], [service])  # told with the service, to act on it
    service.sweep()  # another lease: free
    assert len(service.swept) == 1 and passed == [service]


def test_an_unreachable_store_is_reported_not_hung():
    provider = MongoDatabase()
    provider.container = Mock(
        config={"MONGO_URI": "mongodb://127.0.0.1:9/", "MONGO_TIMEOUT_MS": 300}, service_name="probe"
    )
    provider.setup()
    assert ping(provider.database) is False
    provider.stop()


def test_numbers_taken_in_blocks_are_unique_across_processes_and_cost_a_write_per_block(provider):
    db = provider.database
    replicas = [NumberBlocks(5), NumberBlocks(5)]  # two processes' blocks of one counter
    pool = eventlet.GreenPool(20)
    taken = list(pool.imap(lambda i: (i % 2, replicas[i % 2].next(db, "SHXJH-2026-11-23")), range(40)))
    numbers = [number for _, number in taken]
    assert len(set(numbers)) == 40
    for replica in (0, 1):  # a process's own numbers increase
        mine = [number for who, number in taken if who == replica]
        assert mine == sorted(mine)
    # 8 blocks of 5 (a write each), and one more when the two first upserts raced (next_sequence)
    assert db.sequences.find_one({"_id": "SHXJH-2026-11-23"})["seq"] in (40, 45)
    assert replicas[0].next(db, "SHXJH-2026-11-24") == 1  # another day, another counter
