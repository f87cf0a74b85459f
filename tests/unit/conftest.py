"""Shared by the unit tests: the shipped mall registry; for the service-layer tests, a
worker of one service (nameko's worker_factory) on its own store, what it publishes as
its subscribers see it, a clock the test moves, and another writer racing it."""

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory

from mallcare_common.contracts import EVENT_TYPES, read_event
from mallcare_common.malls import load_registry_file
from mallcare_common.messaging import RELAY_GRACE
from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR


@pytest.fixture(scope="session")
def malls():
    return load_registry_file(POLICY_DIR / "malls.yml")


class Published:
    """A service's `dispatch`: each event it publishes, in order, as plain JSON, once a
    subscriber could read it as the event type it went out under (read_event raises
    otherwise). While `broker_down`, every publish fails as in a broker outage."""

    def __init__(self):
        self.events = []
        self.broker_down = False

    def __call__(self, event_type, body):
        if self.broker_down:
            raise ConnectionError("the broker does not answer")
        body = json.loads(json.dumps(body))
        read_event(body, EVENT_TYPES[event_type])
        self.events.append(body)

    def types(self):
        return [event["event_type"] for event in self.events]


class Now:
    """A service's clock: it stands still until the test moves it on."""

    def __init__(self, at):
        self.at = at

    def __call__(self):
        return self.at

    def move(self, **delta):
        self.at += timedelta(**delta)


@pytest.fixture(scope="session")
def shipped_policy():
    """shipped_policy(Service) -> the service's policy as deploy/policy has it (read once)."""
    loaded = {}

    def of(service_class):
        if service_class not in loaded:
            files = service_class.policy
            loaded[service_class] = load_policy_dir(POLICY_DIR, files.filename, files.load)
        return loaded[service_class]

    return of


@pytest.fixture
def service_worker(started_store, shipped_policy):
    """service_worker(Service, now, **others) -> a worker of Service (worker_factory) on a
    store of its own, with the shipped policy, a Now clock at `now` and a Published
    dispatch; `others` as given, and worker_factory's mocks for the rest (the proxies to
    other services, access)."""

    def make(service_class, now, **others):
        provider = started_store(type(service_class.store), service_class.name)
        return worker_factory(
            service_class,
            store=provider.wrap(provider.database),
            policy=SimpleNamespace(current=shipped_policy(service_class)),
            clock=Now(now),
            dispatch=Published(),
            **others,
        )

    return make


def relay_after_outage(worker):
    """The worker's outbox relay once the broker is back, as its timer ticks: once at once,
    then twice after the grace; what each published, as (event type, event id)."""
    worker.dispatch.broker_down = False
    worker.relay_outbox()
    at_once = [(e["event_type"], e["event_id"]) for e in worker.dispatch.events]
    worker.clock.move(seconds=RELAY_GRACE.total_seconds() + 1)
    worker.relay_outbox()
    worker.relay_outbox()
    return at_once, [(e["event_type"], e["event_id"]) for e in worker.dispatch.events[len(at_once) :]]


class AnotherWriter:
    """A service's collection where somebody else changes a document (counts its `version`
    up) right after each read, for the first `times` reads (None: every read): the
    worker's compare-and-set on what it read misses. `reads` counts the reads."""

    def __init__(self, collection, times=None):
        self.collection, self.times, self.reads = collection, times, 0

    def find_one(self, selector, *args, **kwargs):
        doc = self.collection.find_one(selector, *args, **kwargs)
        self.reads += 1
        if doc is not None and (self.times is None or self.reads <= self.times):
            self.collection.update_one({"_id": doc["_id"]}, {"$inc": {"version": 1}})
        return doc

    def __getattr__(self, name):
        return getattr(self.collection, name)
