"""Events taken in batches (mallcare_common.batches; issue 21) on the real broker and
store: analytics keeps a burst of events in a few batches, each event once however often
it is delivered, and a message that cannot be taken goes back alone (retried, then to
the dead letters by itself) while the rest of its batch is kept."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from kombu import Connection, Queue
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import replace_dependencies
from prometheus_client import REGISTRY

from analytics import reports
from analytics.service import AnalyticsService
from analytics.storage import Events
from mallcare_common.batches import ALONE, TAKEN, batched_event_handler, event_batch
from mallcare_common.contracts import EVENT_TYPES, read_event
from mallcare_common.messaging import DEAD_LETTER_QUEUE, DELIVERY_LIMIT
from tests.helpers import wait_for
from tests.unit.analytics.test_reports import clock, registered, triaged
from tests.integration.test_redelivery import NUMBER, reassigned

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
MALL = "sh-xujiahui"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def batches(service):
    """(batches, events in them) so far in this process."""
    return (
        sample("mallcare_event_batch_size_count", service=service),
        sample("mallcare_event_batch_size_sum", service=service),
    )


def kept(event_type):
    return sample("mallcare_events_handled_total", service="analytics", event_type=event_type, outcome="ok")


def received(envelope):
    """The envelope as a handler reads it (times parsed)."""
    return read_event(envelope, EVENT_TYPES[envelope["event_type"]])


def publish(amqp_uri, envelopes):
    dispatch = event_dispatcher({"AMQP_URI": amqp_uri})
    for envelope in envelopes:
        kind = EVENT_TYPES[envelope["event_type"]]
        dispatch(kind.source, kind.name, envelope)


def dead_letters(amqp_uri, count):
    got = []
    with Connection(amqp_uri) as conn:
        queue = Queue(DEAD_LETTER_QUEUE, channel=conn)
        wait_for(lambda: (message := queue.get(no_ack=True)) and got.append(message) or len(got) >= count, timeout=60)
        assert queue.get(no_ack=True) is None, "more dead letters than expected"
    return got


@pytest.fixture
def analytics(container_factory, service_config, mongo_client):
    """Analytics gathering a batch for up to a second, so that a burst is a few batches."""
    config = service_config("analytics")
    config["MALLCARE"] = {**config["MALLCARE"], "EVENT_BATCH_WAIT_MS": 1000, "EVENT_BATCH_SIZE": 50}
    container = container_factory(AnalyticsService, config)
    replace_dependencies(container, clock=lambda: T0)
    container.start()
    return container, mongo_client[config["MONGO_DATABASE"]]


def test_a_burst_is_kept_in_batches_each_event_once(analytics):
    """R6.1: at-least-once delivery, counted once; issue 21: bulk writes."""
    container, db = analytics
    amqp = container.config["AMQP_URI"]
    sent = [registered(f"SHXJH-20261123-{n:04d}", T0) for n in range(1, 81)]
    before, taken = batches("analytics"), kept("complaint_registered")
    publish(amqp, sent + sent[:15])  # 15 delivered twice within the burst

    wait_for(lambda: kept("complaint_registered") - taken >= 95, timeout=60)
    count, size = (now - then for now, then in zip(batches("analytics"), before, strict=True))
    assert size == 95 and count < 95 / 5, f"{size} events in {count} batches"
    assert db.events.count_documents({}) == 80
    assert db.events.count_documents({"applied": True}) == 80
    clocks = list(db.clocks.find({"clock": "acknowledgement"}))
    assert sorted(c["complaint_no"] for c in clocks) == sorted(e["complaint_no"] for e in sent)
    assert {c["version"] for c in clocks} == {1}  # started once each
    tally = db.report_tallies.find_one({"_id": f"2026-11|{MALL}"})
    assert tally["counts"]["received"] == 80 and tally["counts"]["registered"] == 80

    publish(amqp, sent)  # all delivered again, later: nothing moves
    wait_for(lambda: kept("complaint_registered") - taken >= 175, timeout=60)
    assert db.events.count_documents({}) == 80
    assert {c["version"] for c in db.clocks.find({"clock": "acknowledgement"})} == {1}
    assert db.report_tallies.find_one({"_id": f"2026-11|{MALL}"})["counts"] == tally["counts"]


def test_what_a_batch_cannot_take_goes_back_alone(analytics):
    """R1.4, R6.1: an event of another version is dead-lettered by itself; a reassignment
    that overtook its complaint's triage waits for it alone; the rest of the batch is kept."""
    container, db = analytics
    amqp = container.config["AMQP_URI"]
    good = [registered(f"SHXJH-20261123-{n:04d}", T0) for n in range(1, 21)]
    other_version = {**registered("SHXJH-20261123-0099", T0), "schema_version": 2}
    ahead = reassigned(T0)  # published before its triage
    taken = kept("complaint_registered")
    publish(amqp, good[:10] + [other_version, ahead] + good[10:])

    wait_for(lambda: kept("complaint_registered") - taken >= 20, timeout=60)
    assert db.events.count_documents({"event_type": "complaint_registered"}) == 20
    (letter,) = dead_letters(amqp, 1)
    assert letter.headers["x-mallcare-reason"] == "contract" and letter.headers["x-mallcare-attempts"] == 1
    assert db.events.find_one({"_id": other_version["event_id"]}) is None
    assert db.events.find_one({"_id": ahead["event_id"]}) is None  # still waiting for the triage

    publish(amqp, [triaged(NUMBER, T0, "product.quality_defect")])
    wait_for(lambda: db.events.find_one({"_id": ahead["event_id"], "applied": True}), timeout=60)
    resolution = db.clocks.find_one({"_id": f"{NUMBER}|resolution|1"})
    assert (resolution["owner"], resolution["department"]) == ("E3101", "procurement_qc")


class Keeper:
    """A service on the batch consumer whose work fails for one poisoned event, in a batch
    or alone."""

    name = "keeper"
    kept, batches = [], []

    @batched_event_handler("intake", "complaint_registered")
    def keep(self, body):
        if body["payload"]["description"] == "poison":
            raise ValueError("poisoned")
        Keeper.kept.append(body["event_id"])

    @event_batch
    def take(self, items):
        Keeper.batches.append(len(items))
        if any(body["payload"]["description"] == "poison" for _, body in items):
            raise ValueError("poisoned batch")
        Keeper.kept.extend(body["event_id"] for _, body in items)
        return [TAKEN] * len(items)


class Picky(Keeper):
    """Answers ALONE for the poisoned event instead of failing the batch."""

    name = "picky"

    @event_batch
    def take(self, items):
        Keeper.batches.append(len(items))
        answers = [ALONE if body["payload"]["description"] == "poison" else TAKEN for _, body in items]
        Keeper.kept.extend(body["event_id"] for (_, body), a in zip(items, answers, strict=True) if a == TAKEN)
        return answers


@pytest.mark.parametrize("service", [Keeper, Picky])
def test_a_poisoned_message_is_dead_lettered_alone_and_the_batch_is_kept(service, container_factory, rabbit_config):
    """A batch that fails, or that hands one message back, costs the others nothing: each is
    kept once; the poisoned one is retried alone and dead-lettered by itself."""
    Keeper.kept, Keeper.batches = [], []
    config = {"AMQP_URI": rabbit_config["AMQP_URI"], "MALLCARE": {"EVENT_BATCH_WAIT_MS": 1000}}
    container = container_factory(service, config)
    container.start()
    good = [registered(f"SHXJH-20261123-{n:04d}", T0) for n in range(1, 31)]
    poison = registered("SHXJH-20261123-0666", T0)
    poison["payload"]["description"] = "poison"
    publish(rabbit_config["AMQP_URI"], good[:15] + [poison] + good[15:])

    (letter,) = dead_letters(rabbit_config["AMQP_URI"], 1)
    assert letter.headers["x-mallcare-reason"] == "gave_up"
    assert letter.headers["x-mallcare-error"] == "poisoned"
    assert letter.headers["x-mallcare-attempts"] == DELIVERY_LIMIT + 1
    wait_for(lambda: len(Keeper.kept) >= 30)
    assert sorted(Keeper.kept) == sorted(e["event_id"] for e in good)  # each once
    assert max(Keeper.batches) > 1


def test_a_complaint_written_during_a_bulk_write_is_written_again_alone_and_counted_once(started_store):
    """The read model's bulk write is a compare-and-set per complaint: a complaint another
    writer changed between the batch's read and its write is read again and written alone,
    the others of the batch land, and the tallies end as if each change came alone."""
    first = [received(registered(f"SHXJH-20261123-{n:04d}", T0)) for n in range(1, 6)]
    later = [received(triaged(e["complaint_no"], T0, "product.quality_defect")) for e in first]
    raced = first[0]["complaint_no"]
    overdue = (clock(raced, "resolution", "E3501", "merchant_relations"), "breached")

    racing, alone = (p.wrap(p.database) for p in (started_store(Events, "analytics"), started_store(Events)))
    for store in (racing, alone):
        store.apply_events(first, lambda mall_id: SHANGHAI)
    alone.apply_clocks([overdue])
    alone.apply_events(later, lambda mall_id: SHANGHAI)

    def during(change, number):  # the other writer comes between the batch's read and its write
        def apply(doc):
            if number == raced and doc.get("v") == 1:
                racing.apply_clocks([overdue])
            return change(doc)

        return apply

    written = racing._change_all(
        {e["complaint_no"]: during(lambda doc, e=e: reports.apply(doc, e, SHANGHAI), e["complaint_no"]) for e in later}
    )
    assert set(written) == {e["complaint_no"] for e in later}
    raced_doc = racing.complaint(raced)
    assert raced_doc["category"] == "product.quality_defect" and raced_doc["overdue"] and raced_doc["v"] == 3
    assert racing.tallies_of("2026-11", MALL)[0]["counts"] == alone.tallies_of("2026-11", MALL)[0]["counts"]
    assert racing.tallies_of("2026-11", MALL)[0]["counts"]["overdue"] == 1
