"""Issue 21, R5.5 on the real broker and store: two analytics containers on one store
sweep the same 300 clocks at once, and each clock's sla_at_risk and sla_breached still
reach a subscriber once; the gauges' tallies count each clock once.

Both containers run in this process, so they share its lease holder id (mongo.INSTANCE):
both hold the SLA lease and both sweep on every tick. That is the race the lease makes
rare between processes (a sweeper paused past its lease while another took it), here on
every chunk: the flags' compare-and-sets alone keep each event once."""

import time
from collections import Counter
from datetime import timedelta

import pytest

from mallcare_common.messaging import RELAY_GRACE, RELAY_INTERVAL
from tests.helpers import drain, wait_for
from tests.unit.analytics.test_reports import T0, registered

CLOCKS = 300
MALL = "sh-xujiahui"


@pytest.fixture
def system(services, shift):
    """Analytics on a clock standing at T0 until the test moves it on, sweeping every 0.2 s."""
    system = services(
        "analytics",
        clocks={"analytics": lambda: T0 + shift["by"]},
        settings={"analytics": {"SLA_TICK_SECONDS": 0.2}},
    )
    system.catch_all("analytics")
    return system


def test_two_replicas_sweeping_at_once_announce_each_clock_once(system, shift):
    system.replica("analytics")
    store = system.db("analytics")
    numbers = [f"SHXJH-20261102-{i:04d}" for i in range(CLOCKS)]
    for number in numbers:  # each to be acknowledged within the hour, at risk after half of it
        system.dispatch("intake", "complaint_registered", registered(number, T0))
    wait_for(lambda: store.clocks.count_documents({"clock": "acknowledgement"}) == CLOCKS, timeout=120)
    received = []

    def arrived(event_type):
        received.extend(drain(system.queues["analytics"]))
        return len({e["payload"]["clock_id"] for e in received if e["event_type"] == event_type}) == CLOCKS

    shift["by"] = timedelta(minutes=40)
    wait_for(lambda: arrived("sla_at_risk"), timeout=120)
    shift["by"] = timedelta(hours=2)
    wait_for(lambda: arrived("sla_breached"), timeout=120)
    # more sweeps, and time for the outbox relay to re-publish anything left pending
    time.sleep(RELAY_GRACE.total_seconds() + 2 * RELAY_INTERVAL)
    received.extend(drain(system.queues["analytics"]))

    per_clock = Counter((e["event_type"], e["payload"]["clock_id"]) for e in received)
    assert len(per_clock) == 2 * CLOCKS and set(per_clock.values()) == {1}
    assert {clock_id.split("|")[0] for _, clock_id in per_clock} == set(numbers)
    assert store.clocks.count_documents({"pending_events": {"$gt": ""}}) == 0
    tally = store.tallies.find_one({"_id": f"clocks:{MALL}|acknowledgement"})
    assert (tally["open"], tally["at_risk"]) == (CLOCKS, CLOCKS)  # all running, each flagged once
