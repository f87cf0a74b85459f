"""Issue 8, scaling out: two processes of triage and two of analytics share their
service's store and queues (competing consumers). A burst of complaints is split
between the two of each, and still every complaint gets one assessment, one
complaint_triaged event, and is counted once by analytics. The SLA sweep fires in the
process that holds the analytics.sla lease only; killed (kill -9), its lease runs out
and the other process sweeps from then on.

The complaints say they were received at the desk 40-50 s ago: the desk's
acknowledgement clock (1 minute, at risk at half time, deploy/policy) is then at risk
at once and breached within seconds, so no clock or policy needs to be faked."""

import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from kombu import Connection, Exchange, Queue

from tests.helpers import drain, wait_for
from tests.faults.conftest import SETTLE_TIMEOUT, complaint, dead_letters, metric

BURST, AFTER_KILL = 40, 10
TRIAGE, ANALYTICS = ("triage", "triage:2"), ("analytics", "analytics:2")
SLA_TICK = "0.5"  # seconds: the lease's time to live is then its floor, 6 s


def register(system, numbers, received_at):
    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda n: system.call(
                    "POST", "intake", "/complaints", json={**complaint(n), "received_at": received_at.isoformat()}
                ),
                numbers,
            )
        )
    assert [r.status_code for r in responses] == [201] * len(numbers), [r.text for r in responses if not r.ok][:3]
    return [r.json()["number"] for r in responses]


def handled_ok(system, name, event_type):
    return metric(system, name, "mallcare_events_handled_total", event_type=event_type, outcome="ok")


def kept(system, name):
    """Events analytics process `name` stored: the burst's complaint_registered and complaint_triaged."""
    return sum(handled_ok(system, name, t) for t in ("complaint_registered", "complaint_triaged"))


def sla_counts(system, name):
    """(at-risk, breached) acknowledgement clocks this process reported."""
    return (
        metric(system, name, "mallcare_sla_at_risk_total", clock="acknowledgement"),
        metric(system, name, "mallcare_sla_breaches_total", clock="acknowledgement"),
    )


def triage_tallied(store):
    """Complaints the mall tallies of triage count (its recurrence look-ups read them)."""
    with store.client() as client:
        return sum(t["n"] for t in client["triage"].tallies.find({"_id": {"$gt": "mall:", "$lt": "mall;"}}))


def holder_of(store):
    with store.client() as client:
        return client["analytics"].leases.find_one({"_id": "analytics.sla"})


def instance(system, name):
    """mongo.INSTANCE of process `name`: the lease holder's id."""
    return f"{socket.gethostname()}:{system.services[name].pid}"


def test_two_instances_share_the_work_and_one_sweeps_until_it_is_killed(system):
    intake_store, triage_store, analytics_store = (system.store(s) for s in ("intake", "triage", "analytics"))
    system.start(triage_store, *TRIAGE)
    system.start(analytics_store, *ANALYTICS, env={"MALLCARE_SLA_TICK_SECONDS": SLA_TICK})
    system.start(intake_store, "intake")
    with Connection(system.direct_amqp_uri) as conn:
        triaged = Queue(
            "test-scale-triaged",
            routing_key="complaint_triaged",
            channel=conn,
            exchange=Exchange("triage.events", type="topic", durable=True),
        )
        sla = Queue(
            "test-scale-sla",
            routing_key="#",
            channel=conn,
            exchange=Exchange("analytics.events", type="topic", durable=True),
        )
        triaged.declare()
        sla.declare()
        sla_events, holders = [], set()

        def sla_reported(expected):
            sla_events.extend(drain(sla))
            lease = holder_of(analytics_store)
            if lease is not None:
                holders.add(lease["holder"])
            return Counter(e["event_type"] for e in sla_events) == expected

        # at risk at once, due in 20 s: the at-risk sweep comes well before the deadline
        received_at = datetime.now(timezone.utc) - timedelta(seconds=40)
        numbers = register(system, range(BURST), received_at)
        wait_for(lambda: system.count("triage", "assessments") == BURST, timeout=SETTLE_TIMEOUT)
        wait_for(lambda: sla_reported({"sla_at_risk": BURST, "sla_breached": BURST}), timeout=SETTLE_TIMEOUT)

        # competing consumers: both triage processes took a share, and no complaint was assessed twice
        wait_for(lambda: sum(handled_ok(system, name, "complaint_registered") for name in TRIAGE) == BURST)
        shares = {name: handled_ok(system, name, "complaint_registered") for name in TRIAGE}
        assert all(shares.values()), shares
        assert system.count("triage", "assessments") == BURST
        events = drain(triaged)
        assert Counter(e["complaint_no"] for e in events) == Counter(numbers), "one complaint_triaged each"
        # analytics: both processes took events, each event was kept and counted once
        wait_for(lambda: sum(kept(system, name) for name in ANALYTICS) == 2 * BURST)
        shares = {name: kept(system, name) for name in ANALYTICS}
        assert all(shares.values()), shares
        assert system.count("analytics", "events") == 2 * BURST
        rows = system.call("GET", "analytics", "/reports/intake").json()["rows"]
        assert sum(r["count"] for r in rows if r["event_type"] == "complaint_registered") == BURST

        # the sweep: every clock reported once between the two processes, by the one holding
        # the lease. A pause longer than the lease (a loaded machine) hands it over, and the
        # counts split; only then. A breach is published before it is counted: wait for both.
        wait_for(
            lambda: (
                tuple(map(sum, zip(*(sla_counts(system, name) for name in ANALYTICS), strict=True))) == (BURST, BURST)
            )
        )
        lease = holder_of(analytics_store)
        sweeper = next(name for name in ANALYTICS if instance(system, name) == lease["holder"])
        survivor = next(name for name in ANALYTICS if name != sweeper)
        before_kill = sla_counts(system, survivor)
        if holders == {lease["holder"]}:  # seen held by one process all through the burst
            assert before_kill == (0, 0)
        per_clock = Counter((e["event_type"], e["payload"]["clock_id"]) for e in sla_events)
        assert set(per_clock.values()) == {1} and len(per_clock) == 2 * BURST

        # the sweeper dies; the survivor takes the lease once it has run out, and sweeps
        system.kill(sweeper)
        dead_lease_ends = holder_of(analytics_store)["expires_at"]
        later = register(system, range(BURST, BURST + AFTER_KILL), datetime.now(timezone.utc) - timedelta(seconds=50))
        wait_for(
            lambda: sla_reported({"sla_at_risk": BURST + AFTER_KILL, "sla_breached": BURST + AFTER_KILL}),
            timeout=SETTLE_TIMEOUT,
        )
        assert holder_of(analytics_store)["holder"] == instance(system, survivor)
        wait_for(lambda: sla_counts(system, survivor) == tuple(n + AFTER_KILL for n in before_kill))
        taken_over = [e for e in sla_events if e["complaint_no"] in set(later)]
        assert len(taken_over) == 2 * AFTER_KILL
        assert min(datetime.fromisoformat(e["occurred_at"]) for e in taken_over) >= dead_lease_ends
        per_clock = Counter((e["event_type"], e["payload"]["clock_id"]) for e in sla_events)
        assert set(per_clock.values()) == {1} and len(per_clock) == 2 * (BURST + AFTER_KILL)

        # the survivor alone took every later event; nothing was lost or doubled
        wait_for(lambda: kept(system, survivor) == shares[survivor] + 2 * AFTER_KILL, timeout=SETTLE_TIMEOUT)
        assert system.count("analytics", "events") == 2 * (BURST + AFTER_KILL)
        wait_for(lambda: system.count("triage", "assessments") == BURST + AFTER_KILL, timeout=SETTLE_TIMEOUT)
        assert Counter(e["complaint_no"] for e in drain(triaged)) == Counter(later)
        # the running counts both processes of each service moved at once lost nothing
        assert triage_tallied(triage_store) == system.count("triage", "assessments", {"category": {"$ne": None}})
        period = f"{received_at.astimezone(ZoneInfo('Asia/Shanghai')):%Y-%m}"  # the complaints' mall
        report = system.call("GET", survivor, "/reports/monthly", params={"period": period}).json()
        assert report["counts"]["received"] == report["counts"]["registered"] == BURST + AFTER_KILL
    assert dead_letters(system) == 0
    assert all(system.alive(name) for name in (*TRIAGE, survivor, "intake"))
