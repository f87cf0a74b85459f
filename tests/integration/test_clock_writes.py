"""R5.5 on the real broker and store: analytics writes a clock's outcome and its SLA
events through the unit of work, a compare-and-set on the clock's version. A deadline
met late before any sweep saw it is announced once, by the late stop; a sweep that
read a clock before it was stopped, moved, reassigned or promised again reports
nothing on what it read (the next sweep looks again)."""

import uuid

import pytest
from kombu import Connection, Exchange, Queue
from nameko.testing.services import entrypoint_hook

from analytics import clocks
from analytics.service import AnalyticsService
from analytics.storage import EventLog, Events, due, past_risk_point
from tests.helpers import drain, wait_for
from tests.integration.test_redelivery import NUMBER, T0, deliver, start
from tests.unit.analytics.test_reports import H, acknowledged, registered


@pytest.fixture
def analytics(container_factory, service_config, web_client, rabbit_config):
    """Analytics at T0 + 2 h whose sweep does not tick by itself, and a subscriber to its events."""
    config = service_config("analytics")
    config["MALLCARE"] = {**config["MALLCARE"], "SLA_TICK_SECONDS": 3600}
    container = start(container_factory, lambda name: config, AnalyticsService)
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        events = Queue(
            "test-clock-writes",
            routing_key="#",
            channel=conn,
            exchange=Exchange("analytics.events", type="topic", durable=True),
        )
        events.declare()
        yield container, web_client(container), events


def breaches_counted(web):
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in web.get("/metrics").text.splitlines()
        if line.startswith("mallcare_sla_breaches_total{") and 'clock="acknowledgement"' in line
    )


def test_a_deadline_met_late_before_any_sweep_is_announced_once_by_the_stop(analytics):
    container, web, events = analytics
    counted = breaches_counted(web)
    deliver(container, registered(NUMBER, T0))  # to be acknowledged within the hour
    deliver(container, acknowledged(NUMBER, T0 + 1.5 * H, T0 + H), twice=True)

    clock = next(c for c in web.get(f"/clocks/{NUMBER}").json()["clocks"] if c["clock"] == "acknowledgement")
    assert (clock["outcome"], clock["breach_reported"]) == ("met_late", True)
    announced = wait_for(lambda: drain(events))
    assert [(e["event_type"], e["payload"]["clock"]) for e in announced] == [("sla_breached", "acknowledgement")]
    assert announced[0]["payload"]["owner"] == "desk"
    assert breaches_counted(web) == counted + 1

    with entrypoint_hook(container, "watch_clocks") as sweep:
        sweep()
    assert drain(events) == [] and breaches_counted(web) == counted + 1


RUNNING = {
    "mall_id": "sh-xujiahui",
    "complaint_no": NUMBER,
    "started_at": T0,
    "due_at": T0 + H,
    "owner": "E3501",
    "owner_kind": "person",
    "department": "merchant_relations",
}
RESOLUTION, PROMISED = clocks.clock_id(NUMBER, "resolution"), clocks.clock_id(NUMBER, "promised", "first")
WRITES = {
    "nothing": (RESOLUTION, lambda store: None),
    "stopped": (RESOLUTION, lambda store: store.stop_all([clocks.Stop(RESOLUTION, T0 + 2 * H)])),
    "moved": (RESOLUTION, lambda store: store.move(clocks.Move(RESOLUTION, T0 + 3 * H, "procurement_qc"), 0.75)),
    "reassigned": (RESOLUTION, lambda store: store.reassign(clocks.Reassign(NUMBER, "E3101", "merchant_relations"))),
    "promised again": (
        PROMISED,
        lambda store: store.promise(
            clocks.Promise(
                NUMBER,
                clocks.Start(
                    clocks.clock_id(NUMBER, "promised", "second"),
                    "promised",
                    {**RUNNING, "started_at": T0 + H / 2, "due_at": T0 + 4 * H},
                ),
            ),
            0.75,
        ),
    ),
}


@pytest.fixture
def store(mongo_client):
    db = mongo_client[f"t{uuid.uuid4().hex[:8]}"]
    yield EventLog(db)
    mongo_client.drop_database(db.name)


@pytest.mark.parametrize("written", WRITES)
def test_the_sweep_reports_a_clock_only_as_it_read_it(store, written):
    clock_id, write_meanwhile = WRITES[written]
    kind = clock_id.split("|")[1]
    store.start(clocks.Start(clock_id, kind, RUNNING), 0.75)
    now = T0 + 2 * H
    [read] = store.reaching_deadline(now, limit=10)  # past its deadline, as the sweep finds it
    write_meanwhile(store)
    reported = store.flag_breaches([(read, clocks.breach_event(read, {}, now))], now)
    stored = store.clocks.find_one({"_id": clock_id})
    assert bool(reported) == (written == "nothing") == stored["breach_reported"]
    assert len(stored.get("outbox", [])) == (written == "nothing")


@pytest.mark.parametrize("query", [due, past_risk_point])
def test_the_sweeps_queries_ride_an_index(store, query):
    """The sweep's cost follows what fell due: its queries read an index, not every open clock."""
    Events().indexes(store.db)
    store.start(clocks.Start(RESOLUTION, "resolution", RUNNING), 0.75)
    plan = store.db.command("explain", {"find": "clocks", "filter": query(T0 + 2 * H)})["queryPlanner"]["winningPlan"]
    assert "IXSCAN" in str(plan) and "COLLSCAN" not in str(plan), plan
