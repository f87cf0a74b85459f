"""R5.5, R6.1, R6.2: analytics' keep handlers and its SLA sweep, one worker at a time
(nameko's worker_factory) against the real store: each event is stored once and moves
the clocks and counts once, however often it is delivered; a reassignment that overtook
its complaint_triaged is retried, not applied first; the sweep publishes a clock's
sla_at_risk and sla_breached once each, also when a late stop lands in the middle of a
sweep; a breach the broker did not take waits in the outbox for the relay; the gauges'
running tallies equal a count over the clocks after every kind of clock write. What
analytics publishes is read as its subscribers read it (tests/unit/conftest.Published)."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from pymongo.collection import Collection

from analytics import metrics
from analytics import service as analytics_service
from analytics.service import AnalyticsService, TriageNotSeenYet
from mallcare_common.batches import TAKEN
from tests.unit.analytics.test_reports import acknowledged, answer, event, registered, reopened, resolved, triaged
from tests.unit.conftest import relay_after_outage

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
H = timedelta(hours=1)
NUMBER = "SHXJH-20261123-0042"


@pytest.fixture
def analytics(service_worker, monkeypatch):
    monkeypatch.setattr(analytics_service, "TRIAGE_PAUSE", 0)  # the retry's pause is the queue's business
    return service_worker(AnalyticsService, T0 + H / 4, config={"MALLCARE": {"SLA_TICK_SECONDS": 2}})


def clocks(analytics):
    return {c["clock"]: c for c in analytics.store.clocks.find({"complaint_no": NUMBER}, {"outbox": 0})}


def reassigned(at):
    return event(
        "complaint_reassigned",
        NUMBER,
        {
            "from_owner_id": "E3501",
            "to_owner_id": "E3101",
            "department": "procurement_qc",
            "by": "E3901",
            "reason": "QC",
        },
        at,
    )


def test_each_event_is_kept_once_and_moves_the_clocks_and_counts_once(analytics):
    registration = registered(NUMBER, T0)
    acknowledgement = acknowledged(NUMBER, T0 + H / 2, T0 + H)
    satisfied = answer(NUMBER, T0 + 30 * H, satisfied=True)
    for _ in range(2):  # at-least-once delivery brings each again
        analytics.handle_complaint_registered(registration)
        analytics.handle_complaint_acknowledged(acknowledgement)
        analytics.handle_customer_satisfied(satisfied)

    assert sorted(e["_id"] for e in analytics.store.events.find()) == sorted(
        [registration["event_id"], acknowledgement["event_id"], satisfied["event_id"]]
    )
    assert analytics.store.intake_counts() == [
        {"mall_id": "sh-xujiahui", "event_type": "complaint_acknowledged", "channel": None, "count": 1},
        {"mall_id": "sh-xujiahui", "event_type": "complaint_registered", "channel": "desk", "count": 1},
    ]
    [acknowledgement_clock] = clocks(analytics).values()
    assert acknowledgement_clock["clock"] == "acknowledgement" and acknowledgement_clock["outcome"] == "met"
    [tally] = analytics.store.tallies_of("2026-11", "sh-xujiahui")
    assert (tally["counts"]["received"], tally["counts"]["registered"]) == (1, 1)
    assert analytics.store.answer_tallies() == {"sh-xujiahui": (1, 1)}  # satisfied of all answers
    assert analytics.dispatch.events == []


def test_a_reassignment_that_overtakes_its_triage_is_retried_not_applied_first(analytics):
    reassignment = reassigned(T0 + H)
    with pytest.raises(TriageNotSeenYet, match=NUMBER):
        analytics.handle_complaint_reassigned(reassignment)
    assert analytics.store.events.count_documents({}) == 0  # not kept: its redelivery is applied in full

    analytics.handle_complaint_triaged(triaged(NUMBER, T0, "product.quality_defect"))
    analytics.handle_complaint_reassigned(reassignment)
    found = clocks(analytics)
    assert {name: (c["owner"], c["department"]) for name, c in found.items()} == {
        "first_response": ("E3101", "procurement_qc"),
        "resolution": ("E3101", "procurement_qc"),
    }


def test_the_sweep_publishes_each_warning_and_breach_once(analytics):
    analytics.handle_complaint_triaged(triaged(NUMBER, T0, "product.quality_defect", risk="high"))
    first_response = clocks(analytics)["first_response"]

    analytics.clock.at = first_response["at_risk_at"] - timedelta(seconds=1)
    analytics.watch_clocks()
    assert analytics.dispatch.events == []

    analytics.clock.at = first_response["at_risk_at"]
    analytics.watch_clocks()
    analytics.clock.move(minutes=1)
    analytics.watch_clocks()
    [at_risk] = analytics.dispatch.events
    assert (at_risk["event_type"], at_risk["payload"]["clock"], at_risk["payload"]["owner"]) == (
        "sla_at_risk",
        "first_response",
        "E3501",
    )

    analytics.clock.at = first_response["due_at"] + timedelta(seconds=30)
    analytics.watch_clocks()
    analytics.clock.move(minutes=1)
    analytics.watch_clocks()
    assert analytics.dispatch.types() == ["sla_at_risk", "sla_breached"]
    breach = analytics.dispatch.events[1]["payload"]
    assert (breach["clock"], breach["risk_level"], breach["lag_seconds"]) == ("first_response", "high", 30.0)
    assert clocks(analytics)["first_response"]["breach_reported"] is True


def test_a_breach_the_broker_did_not_take_waits_in_the_outbox_for_the_relay(analytics):
    analytics.handle_complaint_triaged(triaged(NUMBER, T0, "product.quality_defect"))
    analytics.dispatch.broker_down = True
    analytics.clock.at = clocks(analytics)["first_response"]["due_at"] + timedelta(seconds=1)
    analytics.watch_clocks()  # the breach is recorded all the same
    pending = clocks(analytics)["first_response"]["pending_events"]
    assert len(pending) == 1

    # a fresh event is left to the sweep that wrote it a moment ago; then published once
    assert relay_after_outage(analytics) == ([], [("sla_breached", pending[0])])
    assert "pending_events" not in clocks(analytics)["first_response"]


@pytest.mark.parametrize("stopped", ["before the sweep", "between its read and its write", "after the sweep"])
def test_a_clock_stopped_late_around_a_sweep_is_announced_breached_once(analytics, stopped):
    analytics.handle_complaint_registered(registered(NUMBER, T0))  # to be acknowledged within the hour
    late = acknowledged(NUMBER, T0 + 90 * timedelta(minutes=1), T0 + H)
    analytics.clock.at = T0 + 2 * H
    if stopped == "before the sweep":
        analytics.handle_complaint_acknowledged(late)
    elif stopped == "between its read and its write":
        read = analytics.store.reaching_deadline

        def read_then_stopped(now, limit):
            found = read(now, limit)
            analytics.handle_complaint_acknowledged(late)  # its _settle announces the breach
            return found

        analytics.store.reaching_deadline = read_then_stopped
    analytics.watch_clocks()
    if stopped == "after the sweep":
        analytics.handle_complaint_acknowledged(late)
    analytics.watch_clocks()

    assert analytics.dispatch.types() == ["sla_breached"]
    clock = clocks(analytics)["acknowledgement"]
    assert (clock["outcome"], clock["breach_reported"], clock.get("pending_events")) == ("met_late", True, None)


def counted(store):
    """{(mall, clock): (open, at risk)} counted over the clocks: running, and of those the
    ones the sweep flagged at risk (or breached)."""
    running, risky = Counter(), Counter()
    for clock in store.clocks.find({"stopped_at": None, "due_at": {"$ne": None}}):
        running[clock["mall_id"], clock["clock"]] += 1
        risky[clock["mall_id"], clock["clock"]] += clock["at_risk_reported"]
    return {key: (running[key], risky[key]) for key in running}


def tallied(store):
    return {key: counts for key, counts in store.clock_tallies().items() if counts != (0, 0)}


def test_the_gauges_tallies_equal_a_count_over_the_clocks_after_every_kind_of_write(analytics):
    other = "SHXJH-20261123-0043"
    steps = [
        ("started", lambda: analytics.handle_complaint_registered(registered(NUMBER, T0))),
        ("started, another", lambda: analytics.handle_complaint_registered(registered(other, T0))),
        ("triaged", lambda: analytics.handle_complaint_triaged(triaged(NUMBER, T0, "product.quality_defect"))),
        ("met", lambda: analytics.handle_complaint_acknowledged(acknowledged(other, T0 + H / 4, T0 + H))),
        ("at risk", lambda: sweep_at(T0 + 40 * timedelta(minutes=1))),
        ("breached after its warning", lambda: sweep_at(T0 + 2 * H)),
        ("breached without a warning", lambda: sweep_at(T0 + 100 * H)),
        ("stopped late", lambda: analytics.handle_complaint_acknowledged(acknowledged(NUMBER, T0 + 101 * H, T0 + H))),
        ("resolved", lambda: analytics.handle_case_resolved(resolved(NUMBER, T0 + 102 * H))),
        ("reopened", lambda: analytics.handle_case_reopened(reopened(NUMBER, T0 + 103 * H))),
        ("reopened, at risk", lambda: sweep_at(T0 + 103 * H + 40 * H)),
        ("reopened, breached", lambda: sweep_at(T0 + 103 * H + 50 * H)),
    ]

    def sweep_at(at):
        analytics.clock.at = at
        analytics.watch_clocks()

    mall = "sh-xujiahui"
    for step, write in steps:
        write()
        assert tallied(analytics.store) == counted(analytics.store), step
    assert counted(analytics.store) == {(mall, "resolution"): (1, 1)}  # the second round, breached
    # the gauges show the tallies (as the sweep last read them)
    analytics.watch_clocks()
    for name, counts in {"resolution": (1, 1), "acknowledgement": (0, 0), "first_response": (0, 0)}.items():
        shown = (metrics.OPEN.labels(mall, name)._value.get(), metrics.OPEN_AT_RISK.labels(mall, name)._value.get())
        assert shown == counts, name


class CountedCalls:
    """The worker's database or one of its collections, counting the calls on collections
    (a call is a store round trip, or the first of a cursor's)."""

    def __init__(self, target, calls):
        self.target, self.calls = target, calls

    def __getattr__(self, name):
        attr = getattr(self.target, name)
        if isinstance(attr, Collection):
            return CountedCalls(attr, self.calls)
        if isinstance(self.target, Collection) and callable(attr):

            def call(*args, **kwargs):
                self.calls[f"{self.target.name}.{name}"] += 1
                return attr(*args, **kwargs)

            return call
        return attr


def acknowledge_in_one_batch(analytics, numbers):
    """The acknowledgements of `numbers`, in time, taken as one batch: the store calls it made."""
    calls = Counter()
    store = analytics.store
    store.db, store.events, store.clocks = (CountedCalls(c, calls) for c in (store.db, store.events, store.clocks))
    try:
        answers = analytics.take_events(
            [("complaint_acknowledged", acknowledged(n, T0 + H / 4, T0 + H)) for n in numbers]
        )
    finally:
        store.db, store.events, store.clocks = (c.target for c in (store.db, store.events, store.clocks))
    assert answers == [TAKEN] * len(numbers)
    return calls


def met(analytics, numbers):
    """How many of the complaints' acknowledgement clocks the read model counts met."""
    found = analytics.store.db.complaints.find({"_id": {"$in": numbers}}, {"clocks": 1})
    return sum(c["outcome"] == "met" for doc in found for c in doc.get("clocks", {}).values())


def test_a_batch_of_stops_costs_the_store_what_one_stop_does_and_counts_each_once(analytics, monkeypatch):
    """Issue 21 (clocks stopped in bulk), R5.5: a batch of acknowledgements stops and settles
    its clocks in a few writes whatever its size, each clock stopped and counted met once;
    a clock written by someone else between its stop and its outcome is settled alone,
    once; an acknowledgement that came before its registration is settled when the clock
    starts; a redelivered batch changes nothing."""
    few = [f"SHXJH-20261123-{n:04d}" for n in range(1, 4)]
    many = [f"SHXJH-20261123-{n:04d}" for n in range(100, 130)]
    early = "SHXJH-20261123-0999"  # acknowledged before its registration is kept
    analytics.take_events([("complaint_registered", registered(n, T0)) for n in few + many])
    ended = metrics.ENDED.labels("sh-xujiahui", "acknowledgement", "none", "met")._value.get()

    assert acknowledge_in_one_batch(analytics, many) == acknowledge_in_one_batch(analytics, few)
    assert met(analytics, few + many) == 33
    assert tallied(analytics.store) == counted(analytics.store) == {}
    assert metrics.ENDED.labels("sh-xujiahui", "acknowledgement", "none", "met")._value.get() - ended == 33

    # Someone else writes one clock after it was stopped and read: that one goes alone.
    others = [f"SHXJH-20261123-{n:04d}" for n in range(200, 205)]
    analytics.take_events([("complaint_registered", registered(n, T0)) for n in others])
    settle_all = analytics.store.settle_all

    def written_meanwhile(outcomes):
        if outcomes:
            analytics.store.clocks.update_one({"_id": outcomes[0][0]["_id"]}, {"$inc": {"version": 1}})
        return settle_all(outcomes)

    monkeypatch.setattr(analytics.store, "settle_all", written_meanwhile)
    analytics.take_events([("complaint_acknowledged", acknowledged(n, T0 + H / 4, T0 + H)) for n in others])
    monkeypatch.undo()
    assert met(analytics, others) == 5
    assert {c["outcome"] for c in analytics.store.clocks.find({"complaint_no": {"$in": others}})} == {"met"}

    analytics.take_events([("complaint_acknowledged", acknowledged(early, T0 + H / 4, T0 + H))])
    assert met(analytics, [early]) == 0  # stopped, not started: no deadline to meet yet
    analytics.take_events([("complaint_registered", registered(early, T0))])
    assert met(analytics, [early]) == 1

    versions = {c["_id"]: c["version"] for c in analytics.store.clocks.find()}
    acknowledge_in_one_batch(analytics, few + many + others + [early])  # acknowledged again
    assert {c["_id"]: c["version"] for c in analytics.store.clocks.find()} == versions
    assert met(analytics, few + many + others + [early]) == 39
    assert tallied(analytics.store) == counted(analytics.store) == {}
    assert metrics.ENDED.labels("sh-xujiahui", "acknowledgement", "none", "met")._value.get() - ended == 39


def test_stops_whose_batch_failed_before_settling_them_are_settled_on_redelivery(analytics, monkeypatch):
    """R6.1 (at-least-once, counted once), issue 21: a batch that stopped its clocks and
    then failed (the store went away) is delivered again; its clocks are stopped already,
    and are settled then, each once."""
    numbers = [f"SHXJH-20261123-{n:04d}" for n in range(300, 306)]
    analytics.take_events([("complaint_registered", registered(n, T0)) for n in numbers])
    acks = [("complaint_acknowledged", acknowledged(n, T0 + H / 4, T0 + H)) for n in numbers]

    settle_all = analytics.store.settle_all

    def store_gone(outcomes):
        if outcomes:  # once the clocks are stopped
            raise ConnectionError("store gone")
        return settle_all(outcomes)

    monkeypatch.setattr(analytics.store, "settle_all", store_gone)
    with pytest.raises(ConnectionError):
        analytics.take_events(acks)
    monkeypatch.undo()
    assert met(analytics, numbers) == 0
    assert analytics.store.clocks.count_documents({"complaint_no": {"$in": numbers}, "stopped_at": None}) == 0

    analytics.take_events(acks)  # the same messages, delivered again
    assert met(analytics, numbers) == 6
    analytics.take_events(acks)
    assert met(analytics, numbers) == 6
    assert {c["outcome"] for c in analytics.store.clocks.find({"complaint_no": {"$in": numbers}})} == {"met"}


def propose_in_one_batch(analytics, numbers, first_recurrence):
    """Systemic expired-food complaints `numbers`, one pattern, taken as one batch: the
    store calls made on the improvement actions and their claims."""
    calls = Counter()
    store = analytics.store
    store.db = CountedCalls(store.db, calls)
    try:
        analytics.take_events(
            [
                (
                    "complaint_triaged",
                    triaged(n, T0, "product.expired", systemic=True, recurrences=first_recurrence + i),
                )
                for i, n in enumerate(numbers)
            ]
        )
    finally:
        store.db = store.db.target
    return {
        k: v
        for k, v in calls.items()
        if k.split(".")[0] in ("actions", "proposal_claims", "pattern_members", "complaints")
    }


def test_a_burst_of_one_pattern_joins_its_proposal_in_one_write_each_number_once(analytics):
    """Issue 21 (a viral post brings hundreds of one pattern), R2.2, R5.3: the systemic
    complaints of a batch that share a pattern propose one improvement action, or join
    the proposal in the same few writes whatever their number (and whatever the number
    joined before: no write rewrites the list); the proposal lists each complaint once
    and the highest recurrence, also when the batch is delivered again."""
    first = [f"SHXJH-20261123-{n:04d}" for n in range(1, 4)]
    analytics.take_events([("complaint_registered", registered(n, T0)) for n in first])
    propose_in_one_batch(analytics, first, 5)
    few = [f"SHXJH-20261123-{n:04d}" for n in range(10, 13)]
    many = [f"SHXJH-20261123-{n:04d}" for n in range(100, 160)]
    analytics.take_events([("complaint_registered", registered(n, T0)) for n in few + many])

    assert propose_in_one_batch(analytics, many, 8) == propose_in_one_batch(analytics, few, 70)
    [proposal] = map(analytics._action_view, analytics.store.db.actions.find())  # as GET /actions shows it
    assert proposal["complaint_nos"] == sorted(first + few + many)
    assert proposal["recurrences"] == 72  # the highest the batches brought
    propose_in_one_batch(analytics, many, 8)  # delivered again
    [again] = map(analytics._action_view, analytics.store.db.actions.find())
    assert again["complaint_nos"] == sorted(first + few + many) and again["recurrences"] == 72
