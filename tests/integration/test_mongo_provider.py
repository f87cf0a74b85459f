"""DESIGN.md (store, timers): the shared Mongo provider against the real store,
under eventlet's monkey-patch (pymongo dropped eventlet support in 4.16, so a
pymongo upgrade that breaks this fails here): journaled writes, concurrent green
threads, and the lease that lets one replica's timer run a sweep."""
import uuid
from datetime import datetime, timedelta, timezone

import eventlet
import pytest
from eventlet import patcher
from mock import Mock

from mallcare_common.mongo import Lease, MongoDatabase, acquire_lease, ping


@pytest.fixture
def provider(mongo_uri):
    provider = MongoDatabase()
    provider.container = Mock(config={"MONGO_URI": mongo_uri, "MONGO_DATABASE": f"t{uuid.uuid4().hex[:8]}"},
                              service_name="probe")
    provider.setup()
    provider.start()
    yield provider
    provider.database.client.drop_database(provider.database.name)
    provider.stop()


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
    assert sweep.held(now + timedelta(seconds=1)) and expiry() == now + ttl   # a third not gone: no write
    assert sweep.held(now + timedelta(seconds=5)) and expiry() == now + timedelta(seconds=11)
    assert not acquire_lease(db, "sweep", "replica-b", now + timedelta(seconds=7), ttl)
    assert acquire_lease(db, "sweep", "replica-b", now + timedelta(seconds=11), ttl)   # a stopped renewing
    assert not sweep.held(now + timedelta(seconds=12))   # a sees that b sweeps now, and stops


def test_an_unreachable_store_is_reported_not_hung():
    provider = MongoDatabase()
    provider.container = Mock(config={"MONGO_URI": "mongodb://127.0.0.1:9/", "MONGO_TIMEOUT_MS": 300},
                              service_name="probe")
    provider.setup()
    assert ping(provider.database) is False
    provider.stop()
