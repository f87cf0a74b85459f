"""SLA breach detection lag: how late analytics announces a deadline that passed, against
a bare heap-and-sleep detector.

One run, on one RabbitMQ broker (one fresh vhost, created through the management API and
deleted at the end) and one kind of store, measures:

1. mallcare, once per --tick (default: 2 s, the shipped MALLCARE_SLA_TICK_SECONDS, then
   0.5 s). Analytics alone, started the way an operator starts it
   (`nameko run --config services/analytics/config.yml analytics.service`, environment as
   scripts/run.sh sets it, MALLCARE_SLA_TICK_SECONDS set to the tick), with its own fresh
   store process. Before anything is published this script binds its own plain classic
   queues to analytics.events for sla_breached and sla_at_risk (both: analytics publishes
   them with mandatory=True, and an unroutable at-risk event would stay first in the
   clock's outbox, where the breach event would wait behind it) and consumes them in
   threads, recording its own time.time() when each clock's event arrives.
   - Warm-up: --warmup clocks due 3 s after their start (not counted), so that analytics'
     publisher connection and the first sweeps are behind it.
   - The clocks: --clocks complaint_registered envelopes (mallcare_common.contracts.build_event,
     a desk complaint at sh-xujiahui; received_at = now, ack_due_at = now + --lead +
     --window * i / (N - 1), so the deadlines fall due evenly over the window; every time at
     millisecond precision, as stored), published with plain kombu (persistent, confirmed,
     mandatory) to intake.events, routing key complaint_registered, from one publisher, in
     one burst (--publish-rate 0, the default) or at --publish-rate per second, all before
     the first deadline. Each starts one acknowledgement clock; at-risk at half its time
     (deploy/policy/analytics.yml: acknowledgement 0.5). --lead defaults to --window, so
     every at-risk point (at lead/2 .. (lead + window)/2) comes before the first deadline
     and the sweeps that announce breaches do no at-risk work; a shorter --lead overlaps
     the two (the steady state of a real mall has both at once).
   - Background: from 2 s before the first deadline to 2 s after the last, --background-rate
     further complaint_registered per second (default 20) whose acknowledgement is due in
     a day, so analytics keeps storing events and starting clocks while it sweeps.
   - Recorded per clock: detection lag = this script's time when sla_breached arrived minus
     the clock's due_at (the lag as ops see it), split into the event's own lag_seconds
     (due_at -> the sweep's `now`, taken when the sweep starts) and sweep start -> received
     (the sweep's work on the clocks ahead of this one, the confirmed publish, the queue
     hop). From the events' occurred_at (the sweep's `now`): how often the sweeps that
     found breaches ran and how many each found. At-risk: received minus at_risk_at.
     Errors: a clock without sla_breached when the bench stopped waiting (--drain s after
     the last deadline at most, or --quiet s without any SLA event), more than one event for
     a clock (a duplicate), an event for a clock that was not due (a background or unknown
     clock), failed publishes, subscriber errors; for sla_at_risk, what the design promises:
     a warning for each clock whose at-risk point a sweep reached before its deadline, none
     after it (one the sweep reached overdue gets its breach alone: analytics records it as
     passed over, flagged at risk without an event, and the bench counts it apart).
   - The sweep's time per tick: analytics' mallcare_sla_sweep_seconds over the ticks while
     the deadlines fall due (read from /metrics before and after). --open-clocks N writes N
     further running clocks due in a day straight into analytics' store before it starts
     (then restarts that store process, so both runs start on a fresh one), to compare it
     with a run without them.
     Afterwards the store is read once: clocks reported, outbox entries still pending,
     events kept; and analytics' /metrics (mallcare_sla_detection_lag_seconds).

2. baseline. The least any detector can do: a plain Python process (this script in
   `_detect` mode) holding the same number of deadlines over the same window (the same
   lead) in a heap, sleeping until the earliest is due and then making one confirmed,
   persistent, mandatory kombu publish to a durable topic exchange, to which this script's
   subscriber (the same kind of plain queue and thread) is bound. Recorded: received - due
   p50/p95/p99/max. No background load: the floor, not a competitor.

The ratios mallcare / baseline (detection lag p50 and p99) say how far the sweep is from
the floor; most of it is the tick by design (a breach waits up to a tick for the next
sweep, half a tick on average), and the rest is what a sweep costs.

The store is the embedded SecantusDB (`secantusd-py`, a fresh process per analytics run)
unless MONGO_URI is set, in which case analytics uses that server with databases named for
this run (dropped at the end). The CPU each process used while the deadlines fell due is
recorded in cores (analytics, its store, the RabbitMQ node, this script, the machine, and
"other": load this run did not start).

--ref runs analytics from a clean `git archive` of a commit instead of the working tree.
--timeout bounds the whole run (default 2400 s). Results: a JSON file in bench/results/ and
a markdown table on stdout. Everything the run starts (store processes, analytics, the
detector, the vhost, temporary data) is stopped or deleted at the end, also on error,
Ctrl-C or overrun. All traffic goes to 127.0.0.1.

    .venv/bin/python bench/sla_bench.py --ref HEAD [--clocks 2000] [--window 60] [--tick 2 --tick 0.5]
        [--open-clocks 100000]
"""

import argparse
import datetime as dt
import heapq
from itertools import pairwise
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import requests

from mallcare_common.contracts import COMPLAINT_REGISTERED, build_event

from common import (
    HOST,
    REQUEST_TIMEOUT,
    START_TIMEOUT,
    CpuWindow,
    EventSubscriber,
    drop_databases,
    environment,
    free_port,
    offer,
    offered_summary,
    parse_time,
    percentile,
    per_second,
    queue_consumers,
    ratio,
    rnd,
    run_bench,
    service_env,
    start_service,
    start_store,
    store_info,
    wait_until,
    write_result,
)

INTAKE_EXCHANGE = "intake.events"  # nameko's exchange for intake's events
ANALYTICS_EXCHANGE = "analytics.events"  # and for analytics'
BASELINE_EXCHANGE = "bench.sla-baseline"
ANALYTICS_QUEUE = "evt-intake-complaint_registered--analytics.handle_complaint_registered"
MALL = "sh-xujiahui"
WARMUP_DUE_S = 3.0  # a warm-up clock is due this long after its start
BACKGROUND_DUE = dt.timedelta(days=1)  # background clocks: neither at risk nor due during a run
BACKGROUND_MARGIN_S = 2.0  # background from this long before the first deadline to after the last
AT_RISK_SHARE = 0.5  # deploy/policy/analytics.yml, acknowledgement


def as_stored(at):
    """UTC at millisecond precision, as analytics stores it (mallcare_common.calendar.as_stored)."""
    return at.astimezone(dt.timezone.utc).replace(microsecond=at.microsecond // 1000 * 1000)


def utc(ts):
    return as_stored(dt.datetime.fromtimestamp(ts, dt.timezone.utc))


def registered_event(number, received, due):
    """A desk complaint as intake announces it (intake.rules.registered_payload), no personal data."""
    payload = {
        "channel": "desk",
        "channel_ref": None,
        "received_at": received.isoformat(),
        "ack_due_at": due.isoformat(),
        "incident_time": None,
        "incident_time_band": None,
        "customer": {"ref": None, "contact_masked": None, "member_tier": None},
        "location": {"area": "B1", "merchant_id": "T-17", "merchant_name": "Fresh Corner", "store": None},
        "staff_involved": [],
        "product": None,
        "order_no": None,
        "description": "A box of strawberries bought this morning was a third mouldy.",
        "demands": {"fact": "mouldy fruit", "expectation": "refund"},
        "emotion": None,
        "anger_score": None,
        "category_hint": None,
        "policy_version": "bench",
    }
    return build_event(COMPLAINT_REGISTERED, mall_id=MALL, complaint_no=number, occurred_at=received, payload=payload)


# --- statistics ------------------------------------------------------------------------------


def lag_summary(seconds):
    """Milliseconds: p50 / p95 / p99 / max / mean, nearest rank."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        **{f"p{p}_ms": rnd(percentile(ms, p)) for p in (50, 95, 99)},
        "max_ms": rnd(max(ms) if ms else None),
        "min_ms": rnd(min(ms) if ms else None),
        "mean_ms": rnd(sum(ms) / len(ms) if ms else None),
    }


# --- the subscriber --------------------------------------------------------------------------


class ClockSubscriber(EventSubscriber):
    """EventSubscriber keyed by the clock: per clock the first event's arrival time and the
    fields of its payload, and every event id that came for it (more than one event for a
    clock is a duplicate; the same event id twice, a re-publish of one event)."""

    FIELDS = ("clock_id", "due_at", "at_risk_at", "lag_seconds", "started_at")

    def __init__(self, *args):
        super().__init__(*args)
        self.first = {}
        self.event_ids = {}
        self.last_event_at = None  # time.time() of the latest event, of any clock

    def _on_message(self, body, message):
        now = time.time()
        if not isinstance(body, dict) or body.get("event_type") != self.event_type:
            return
        payload = body.get("payload") or {}
        key = payload.get("clock_id") or body.get("complaint_no")
        if not key:
            return
        self.last_event_at = now
        self.event_ids.setdefault(key, []).append(body.get("event_id"))
        if key in self.first:
            self.duplicates += 1
            return
        self.first[key] = {
            "received": now,
            "occurred_at": body.get("occurred_at"),
            **{f: payload.get(f) for f in self.FIELDS if f in payload},
        }
        self.received[body.get("complaint_no")] = now

    def wait_quiet(self, quiet_s, deadline):
        """Wait until no event has arrived for quiet_s (late duplicates), or the deadline."""
        seen = -1
        while time.monotonic() < deadline:
            count = sum(len(ids) for ids in list(self.event_ids.values()))
            if count == seen:
                return
            seen = count
            time.sleep(quiet_s)

    def tally(self, expected, ignored=()):
        """Against the expected clock ids: missing, clocks with more than one event (and how
        many of those were the same event re-published), events for clocks that were neither
        expected nor `ignored` (the warm-up's)."""
        ids = dict(self.event_ids)
        doubled = {k: v for k, v in ids.items() if k not in ignored and len(v) > 1}
        missing = sorted(k for k in expected if k not in self.first)
        return {
            "expected": len(expected),
            "received": len(expected) - len(missing),
            "missing": len(missing),
            "missing_sample": missing[:10],
            "clocks_with_duplicates": len(doubled),
            "duplicate_events": sum(len(v) - 1 for v in doubled.values()),
            "duplicates_same_event_id": sum(len(v) - len(set(v)) for v in doubled.values()),
            "duplicate_sample": {k: v for k, v in list(doubled.items())[:5]},
            "unexpected_clocks": sorted(k for k in ids if k not in expected and k not in ignored)[:20],
            "unexpected_count": sum(1 for k in ids if k not in expected and k not in ignored),
        }


def subscriber(amqp_uri, exchange, event_type, name):
    sub = ClockSubscriber(amqp_uri, exchange, event_type, name)
    sub.start()
    return sub


# --- 1. mallcare -----------------------------------------------------------------------------


class Publisher:
    """One confirmed connection to intake.events, connected when made (not in a measured
    publish); publish(event) -> {"ok": True} once the broker confirmed it."""

    def __init__(self, amqp_uri):
        from kombu import Connection, Exchange

        self.exchange = Exchange(INTAKE_EXCHANGE, type="topic", durable=True)  # as nameko declares it
        self.conn = Connection(amqp_uri, transport_options={"confirm_publish": True})
        self.producer = self.conn.Producer(self.conn.default_channel, serializer="json")

    def __call__(self, event):
        self.producer.publish(
            event,
            exchange=self.exchange,
            routing_key=COMPLAINT_REGISTERED.name,
            delivery_mode=2,
            mandatory=True,
            retry=False,
            timeout=REQUEST_TIMEOUT,
        )
        return {"ok": True}

    def release(self):
        self.conn.release()


def run_mallcare(args, ctx, tick, tag, store):
    """One analytics run at one tick; returns its figures."""
    children = ctx.children
    db = f"bench_{ctx.run}_analytics_{tag}"
    store_proc = None
    uri = ctx.mongo_uri
    if not uri:
        uri, store_proc = start_store(children, f"analytics-{tag}", ctx.tmp)
    if args.open_clocks:
        fill_s = open_clocks(uri, db, args.open_clocks)
        print(f"mallcare tick {tick} s: {args.open_clocks} open clocks written in {fill_s:.0f} s", file=sys.stderr)
        if store_proc is not None:  # a fresh process, as the run without them has (DESIGN.md: the write-rate cliff)
            children.stop(store_proc)
            uri, store_proc = start_store(
                children, f"analytics-{tag}", ctx.tmp, port=int(uri.rsplit(":", 1)[1].strip("/"))
            )
    if not store:
        store.update(store_info(uri, embedded=not ctx.mongo_uri))
    env = dict(
        service_env(ctx.amqp_uri, ctx.pythonpath),
        MONGO_URI=uri,
        ANALYTICS_MONGO_DATABASE=db,
        ANALYTICS_WEB_ADDRESS=f"{HOST}:{free_port()}",
        MALLCARE_SLA_TICK_SECONDS=str(tick),
    )
    url, proc = start_service(children, "analytics", env, log_name=f"analytics-{tag}")
    subs = []
    try:
        wait_until(
            f"consumer of {ANALYTICS_QUEUE}",
            lambda: queue_consumers(ctx.vhost, ANALYTICS_QUEUE) >= 1,
            START_TIMEOUT,
            proc,
            children,
            f"analytics-{tag}",
        )
        breached = subscriber(ctx.amqp_uri, ANALYTICS_EXCHANGE, "sla_breached", f"bench.sla_breached.{tag}")
        subs.append(breached)
        at_risk = subscriber(ctx.amqp_uri, ANALYTICS_EXCHANGE, "sla_at_risk", f"bench.sla_at_risk.{tag}")
        subs.append(at_risk)
        cpu = CpuWindow({"analytics": proc.pid, **({"store analytics": store_proc.pid} if store_proc else {})})
        result = _mallcare(args, ctx, tick, tag, url, uri, db, cpu, breached, at_risk)
        result["log"] = f"analytics-{tag}.log"
        return result
    finally:
        for sub in subs:
            sub.stop()
        children.stop(proc)
        if store_proc is not None:
            children.stop(store_proc)
        elif ctx.mongo_uri:
            drop_databases(ctx.mongo_uri, [db])


def _mallcare(args, ctx, tick, tag, url, uri, db, cpu, breached, at_risk):
    prefix = f"SHXJH-S{ctx.run}{tag}"
    publishers = []

    def publisher():
        publishers.append(Publisher(ctx.amqp_uri))
        return publishers[-1]

    def clock_id(number):
        return f"{number}|acknowledgement|1"

    drain_s = max(30.0, 10 * tick)  # for the warm-up
    stop_bg = threading.Event()
    try:
        # warm-up: analytics' publisher connection and the first sweeps
        now = utc(time.time())
        warm = [
            registered_event(f"{prefix}-W{i:03d}", now, now + dt.timedelta(seconds=WARMUP_DUE_S))
            for i in range(args.warmup)
        ]
        publish = publisher()
        warm_rows, _ = offer(len(warm), float("inf"), 1, lambda i: publish(warm[i]), 60)
        warm_missing = breached.wait_for([e["complaint_no"] for e in warm], time.monotonic() + WARMUP_DUE_S + drain_s)

        # the clocks: built (and validated) before any is published, all due after --lead
        n = args.clocks
        t0 = time.time()
        received = utc(t0)
        dues = [
            as_stored(received + dt.timedelta(seconds=args.lead + args.window * i / max(n - 1, 1))) for i in range(n)
        ]
        numbers = [f"{prefix}-{i:05d}" for i in range(n)]
        events = [registered_event(numbers[i], received, dues[i]) for i in range(n)]
        due_by_clock = {clock_id(numbers[i]): dues[i].timestamp() for i in range(n)}
        r0 = received.timestamp()
        risk_by_clock = {k: r0 + AT_RISK_SHARE * (d - r0) for k, d in due_by_clock.items()}
        first_due, last_due = dues[0].timestamp(), dues[-1].timestamp()
        build_s = time.time() - t0
        print(
            f"mallcare tick {tick} s: publishing {n} clocks due over {args.window} s from "
            f"{args.lead} s on ({'burst' if not args.publish_rate else f'{args.publish_rate}/s'})",
            file=sys.stderr,
        )
        rate = args.publish_rate or float("inf")
        pub_rows, _ = offer(n, rate, 1, lambda i: publish(events[i]), max(first_due - time.time() - 1, 1))
        published_at = max((r["end"] for r in pub_rows if r["ok"]), default=None)
        ingested_at = _wait_ingested(ctx.amqp_uri, first_due)

        # background load while the deadlines fall due
        bg = {"rows": [], "error": None}
        bg_start = first_due - BACKGROUND_MARGIN_S
        bg_count = int((last_due - first_due + 2 * BACKGROUND_MARGIN_S) * args.background_rate)
        bg_publish = publisher()  # its own connection (kombu's are not shared between threads)

        def background():
            try:
                if stop_bg.wait(max(bg_start - time.time(), 0)):
                    return

                def send(i):
                    if stop_bg.is_set():
                        return {"ok": False, "error": "not sent: the run stopped"}
                    now = utc(time.time())
                    return bg_publish(registered_event(f"{prefix}-BG{i:05d}", now, now + BACKGROUND_DUE))

                bg["rows"], _ = offer(bg_count, args.background_rate, 1, send, bg_count / args.background_rate + 30)
            except Exception as exc:
                bg["error"] = f"{type(exc).__name__}: {exc}"[:300]

        thread = threading.Thread(target=background, name="background", daemon=True)
        thread.start()

        time.sleep(max(first_due - 1 - time.time(), 0))
        cpu.start()
        sweeps_before = _sweep_histogram(url)
        expected = list(due_by_clock)
        _drain(breached, at_risk, expected, last_due, max(args.quiet, 5 * tick), args.drain)
        cpu_used = cpu.stop()
        sweep_time = _sweep_time(sweeps_before, _sweep_histogram(url))
        last_arrival = max((breached.first[k]["received"] for k in expected if k in breached.first), default=None)
        at_risk.wait_for(numbers, time.monotonic() + 5)
        stop_bg_at = last_due + BACKGROUND_MARGIN_S
        thread.join(max(stop_bg_at - time.time(), 0) + 35)
        stop_bg.set()
        # late duplicates: the outbox relay re-publishes what is still pending after 3 s, every 2 s
        breached.wait_quiet(max(6.0, 3 * tick), time.monotonic() + 30)
    finally:
        stop_bg.set()
        for p in publishers:
            p.release()

    stored = _analytics_store(uri, db, prefix, set(expected) - set(breached.first), set(expected) - set(at_risk.first))
    metrics = _detection_metrics(url)
    warm_ids = {clock_id(e["complaint_no"]) for e in warm}
    b_tally = breached.tally(set(expected), warm_ids)
    r_tally = at_risk.tally(set(expected), warm_ids)

    got = {k: breached.first[k] for k in expected if k in breached.first}
    detection = [g["received"] - due_by_clock[k] for k, g in got.items()]
    own_lag = [g["lag_seconds"] for g in got.values() if g.get("lag_seconds") is not None]
    sweep_to_received = [g["received"] - parse_time(g["occurred_at"]) for g in got.values()]
    due_mismatch = sum(1 for k, g in got.items() if abs(parse_time(g["due_at"]) - due_by_clock[k]) > 0.0005)
    sweeps = _sweeps(got)
    risky = {k: at_risk.first[k] for k in expected if k in at_risk.first}
    risk_lag = [g["received"] - parse_time(g["at_risk_at"]) for g in risky.values()]
    risk_mismatch = sum(1 for k, g in risky.items() if abs(parse_time(g["at_risk_at"]) - risk_by_clock[k]) > 0.002)
    # A warning is promised only for a clock whose at-risk point a sweep reached before its
    # deadline; one the sweep reached overdue gets its breach alone (analytics flags it at
    # risk without an event: `at_risk_passed_over` in the store).
    passed_over = stored.pop("at_risk_passed_over_ids")
    risk_after_due = sum(1 for k, g in risky.items() if parse_time(g["occurred_at"]) > due_by_clock[k])
    bg_rows = bg["rows"]
    pub_failed = sum(1 for r in pub_rows + warm_rows + bg_rows if not r["ok"])
    errors = {
        "breach_missing": b_tally["missing"],
        "breach_duplicate_events": b_tally["duplicate_events"],
        "breach_for_unexpected_clock": b_tally["unexpected_count"],
        "at_risk_missing": r_tally["missing"] - len(passed_over),
        "at_risk_after_deadline": risk_after_due,
        "at_risk_for_passed_over_clock": sum(1 for k in passed_over if k in at_risk.first),
        "at_risk_duplicate_events": r_tally["duplicate_events"],
        "at_risk_for_unexpected_clock": r_tally["unexpected_count"],
        "publish_failed": pub_failed,
        "background_error": int(bool(bg["error"])),
        "subscriber_error": int(bool(breached.error or at_risk.error)),
        "warmup_breach_missing": len(warm_missing),
        "due_at_mismatch": due_mismatch,
        "at_risk_at_mismatch": risk_mismatch,
    }
    by_due_second = {}
    for k, g in got.items():
        s = int(due_by_clock[k] - first_due)
        by_due_second[s] = max(by_due_second.get(s, 0), g["received"] - due_by_clock[k])
    return {
        "tick_s": tick,
        "clocks": n,
        "window_s": args.window,
        "lead_s": args.lead,
        "warmup_clocks": args.warmup,
        "errors": sum(errors.values()),
        "error_counts": errors,
        "breaches": b_tally,
        "at_risk": {**r_tally, "passed_over": len(passed_over), "expected": r_tally["expected"] - len(passed_over)},
        "open_clocks": args.open_clocks,
        "sweep_time_per_tick": sweep_time,
        "detection_lag": lag_summary(detection),
        "lag_seconds_in_event": lag_summary(own_lag),
        "sweep_start_to_received": lag_summary(sweep_to_received),
        "sweeps": sweeps,
        "at_risk_lag": lag_summary(risk_lag),
        "detection_lag_max_by_due_second_ms": [
            rnd(by_due_second.get(s, 0) * 1000) for s in range(int(last_due - first_due) + 1)
        ],
        "breaches_received_per_second": per_second([g["received"] for g in got.values()], first_due),
        "last_breach_after_last_due_s": rnd(last_arrival - last_due, 3) if last_arrival else None,
        "first_breach_after_first_due_s": rnd(min(g["received"] for g in got.values()) - first_due, 3) if got else None,
        "publishing": {
            "build_s": rnd(build_s, 2),
            "offered": offered_summary(pub_rows, args.publish_rate or "burst"),
            "published": sum(1 for r in pub_rows if r["ok"]),
            "published_s": rnd(published_at - t0, 2) if published_at else None,
            "analytics_queue_empty_after_s": rnd(ingested_at - t0, 2) if ingested_at else None,
            "first_due_after_s": rnd(first_due - t0, 2),
            "all_ingested_before_first_due": ingested_at is not None and ingested_at < first_due,
        },
        "background": {
            "target_per_s": args.background_rate,
            "planned": bg_count,
            "sent": sum(1 for r in bg_rows if r["ok"]),
            "offered": offered_summary(bg_rows, args.background_rate) if bg_rows else None,
            "error": bg["error"],
        },
        "analytics_store_after": {**stored, "events_expected": len(warm) + n + sum(1 for r in bg_rows if r["ok"])},
        "analytics_metrics": metrics,
        "subscriber_errors": [e for e in (breached.error, at_risk.error) if e],
        "cpu": cpu_used,
    }


def _wait_ingested(amqp_uri, until):
    """When analytics' complaint_registered queue had no ready message left (passive
    declares every 0.2 s), or None if that was not before `until` (epoch)."""
    from kombu import Connection, Queue

    with Connection(amqp_uri) as conn:
        channel = conn.default_channel
        while time.time() < until:
            _, ready, _ = Queue(ANALYTICS_QUEUE, channel=channel).queue_declare(passive=True)
            if ready == 0:
                return time.time()
            time.sleep(0.2)
    return None


def _sweeps(got):
    """The sweeps that found breaches, from the events' occurred_at (each sweep's `now`):
    how often they ran, how many breaches each announced, and how long from its start to
    its last breach received."""
    by_sweep = {}
    for g in got.values():
        by_sweep.setdefault(g["occurred_at"], []).append(g["received"])
    starts = sorted(by_sweep, key=parse_time)
    times = [parse_time(s) for s in starts]
    gaps = [b - a for a, b in pairwise(times)]
    sizes = [len(by_sweep[s]) for s in starts]
    spans = [max(by_sweep[s]) - parse_time(s) for s in starts]
    return {
        "count": len(starts),
        "interval": lag_summary(gaps),
        "breaches_per_sweep": {"p50": percentile(sizes, 50), "max": max(sizes, default=None)},
        "start_to_last_breach_received": lag_summary(spans),
    }


def _drain(breached, at_risk, expected, last_due, quiet_s, cap_s):
    """Wait for the breaches after the last deadline: until every expected clock has its
    sla_breached, or no SLA event at all (breach or at-risk: analytics still working through
    a backlog announces one or the other) has arrived for quiet_s, or cap_s after the last
    deadline."""
    while time.time() < last_due + cap_s and sum(1 for k in expected if k in breached.first) < len(expected):
        last = max(t or 0 for t in (breached.last_event_at, at_risk.last_event_at, last_due))
        if time.time() - last > quiet_s:
            return
        time.sleep(0.2)


def _analytics_store(uri, db, prefix, not_received, at_risk_not_received):
    """After the run, once: clocks reported, outbox entries still pending (should be 0), and
    of the clocks whose breach never arrived, how many analytics had reported (published,
    or pending in the outbox, but not received: a loss) and how many it had not (late);
    of those without a warning, the ones analytics passed over (flagged at risk with no
    at-risk event: overdue when a sweep reached them)."""
    from pymongo import MongoClient

    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        d = client[db]
        measured = {"complaint_no": {"$regex": f"^{re.escape(prefix)}-[0-9]"}}
        reported = {c["_id"] for c in d.clocks.find({**measured, "breach_reported": True}, {"_id": 1})}
        passed_over = {
            c["_id"]
            for c in d.clocks.find(
                {**measured, "at_risk_reported": True, "at_risk_event_id": {"$exists": False}}, {"_id": 1}
            )
        }
        return {
            "missing_breach_reported_by_analytics": len(not_received & reported),
            "missing_breach_not_reported_yet": len(not_received - reported),
            "at_risk_passed_over_ids": passed_over & at_risk_not_received,
            "at_risk_passed_over": len(passed_over),
            "events": d.events.count_documents({}),
            "clocks": d.clocks.count_documents({}),
            "breach_reported": d.clocks.count_documents({"breach_reported": True}),
            "breach_reported_measured": d.clocks.count_documents({**measured, "breach_reported": True}),
            "at_risk_reported": d.clocks.count_documents({"at_risk_reported": True}),
            "clocks_with_pending_outbox": d.clocks.count_documents({"pending_events": {"$gt": ""}}),
        }


def open_clocks(uri, db, count):
    """`count` running acknowledgement clocks due in a day (never at risk or due in a run),
    written straight into analytics' store as its start writes them, with the tally its
    gauges read; returns the seconds it took."""
    from pymongo import MongoClient

    t0 = time.time()
    now = utc(t0)
    due = now + BACKGROUND_DUE

    def clock(i):
        number = f"SHXJH-OPEN-{i:06d}"
        return {
            "_id": f"{number}|acknowledgement|1",
            "mall_id": MALL,
            "complaint_no": number,
            "clock": "acknowledgement",
            "started_at": now,
            "due_at": due,
            "at_risk_at": now + (due - now) * AT_RISK_SHARE,
            "owner": "desk",
            "owner_kind": "channel",
            "department": None,
            "stopped_at": None,
            "outcome": None,
            "at_risk_reported": False,
            "breach_reported": False,
            "version": 1,
        }

    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        d = client[db]
        for first in range(0, count, 1000):
            d.clocks.insert_many([clock(i) for i in range(first, min(first + 1000, count))])
        d.tallies.insert_one(
            {"_id": f"clocks:{MALL}|acknowledgement", "mall_id": MALL, "clock": "acknowledgement", "open": count}
        )
    return time.time() - t0


SWEEP_METRIC = "mallcare_sla_sweep_seconds"


def _sweep_histogram(url):
    """analytics' mallcare_sla_sweep_seconds now: {"buckets": {le: count}, "sum", "count"}, or None."""
    try:
        text = requests.get(f"{url}/metrics", timeout=REQUEST_TIMEOUT).text
    except requests.RequestException:
        return None
    found = {"buckets": {}, "sum": None, "count": None}
    for line in text.splitlines():
        if line.startswith(SWEEP_METRIC + "_bucket{"):
            le = re.search(r'le="([^"]+)"', line).group(1)
            found["buckets"][float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(SWEEP_METRIC + "_sum "):
            found["sum"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(SWEEP_METRIC + "_count "):
            found["count"] = float(line.rsplit(" ", 1)[1])
    return found if found["count"] is not None else None


def _sweep_time(before, after):
    """The sweeps between two readings of the histogram: how many, their mean, and the
    bucket bounds holding their p50 and p99 (ms); None for an analytics without the metric."""
    if not before or not after:
        return None
    n = after["count"] - before["count"]
    if n <= 0:
        return {"ticks": 0}

    def bound(p):
        for le in sorted(after["buckets"]):
            if after["buckets"][le] - before["buckets"].get(le, 0) >= n * p / 100:
                return None if le == float("inf") else rnd(le * 1000)
        return None

    return {
        "ticks": int(n),
        "mean_ms": rnd((after["sum"] - before["sum"]) / n * 1000),
        "p50_le_ms": bound(50),
        "p99_le_ms": bound(99),
    }


def _detection_metrics(url):
    """analytics' own mallcare_sla_detection_lag_seconds histogram, as /metrics shows it."""
    try:
        text = requests.get(f"{url}/metrics", timeout=REQUEST_TIMEOUT).text
    except requests.RequestException as exc:
        return {"error": repr(exc)}
    found = {}
    for line in text.splitlines():
        if line.startswith("mallcare_sla_detection_lag_seconds"):
            name, value = line.rsplit(" ", 1)
            found[name.replace("mallcare_sla_detection_lag_seconds", "")] = float(value)
    return found


# --- 2. baseline -----------------------------------------------------------------------------


def run_baseline(args, ctx):
    """The heap-and-sleep detector in its own process, the bench's subscriber as on the mallcare side."""
    sub = subscriber(ctx.amqp_uri, BASELINE_EXCHANGE, "sla_breached", "bench.sla_baseline")
    try:
        n = args.clocks
        t0 = time.time()
        dues = {f"BASE-{i:05d}": t0 + args.lead + args.window * i / max(n - 1, 1) for i in range(n)}
        out = ctx.tmp / "detector.json"
        spec = {
            "amqp_uri": ctx.amqp_uri,
            "deadlines": list(dues.items()),
            "out": str(out),
            "timeout": args.lead + args.window + 60,
        }
        spec_file = ctx.tmp / "detector-spec.json"
        spec_file.write_text(json.dumps(spec))
        print(f"baseline: {n} deadlines in a heap, due over {args.window} s from {args.lead} s on", file=sys.stderr)
        detector = ctx.children.start(
            "detector", [sys.executable, str(Path(__file__).resolve()), "_detect", str(spec_file)]
        )
        cpu = CpuWindow({"detector": detector.pid})
        time.sleep(max(min(dues.values()) - 1 - time.time(), 0))
        cpu.start()
        sub.wait_for(list(dues), time.monotonic() + (max(dues.values()) - time.time()) + 30)
        cpu_used = cpu.stop()
        sub.wait_quiet(2.0, time.monotonic() + 10)
        try:
            detector.wait(10)
        except Exception:
            ctx.children.stop(detector)
        report = json.loads(out.read_text()) if out.exists() else {"error": "detector wrote nothing"}
    finally:
        sub.stop()
    tally = sub.tally(set(dues))
    lags = [sub.first[k]["received"] - d for k, d in dues.items() if k in sub.first]
    return {
        "clocks": n,
        "window_s": args.window,
        "lead_s": args.lead,
        "errors": tally["missing"]
        + tally["duplicate_events"]
        + tally["unexpected_count"]
        + int(bool(report.get("error") or sub.error)),
        "breaches": tally,
        "detection_lag": lag_summary(lags),
        "detector_publish": report.get("publish"),
        "detector_overshoot": report.get("overshoot"),
        "detector_error": report.get("error"),
        "subscriber_error": sub.error,
        "cpu": cpu_used,
        "detector": "heapq of (due, clock); time.sleep until the earliest is due; one persistent, confirmed, "
        "mandatory kombu publish per deadline to a durable topic exchange",
    }


def detect(spec):
    """The baseline detector (its own process): the deadlines in a heap, sleep until the
    earliest is due, publish, repeat."""
    from kombu import Connection, Exchange

    exchange = Exchange(BASELINE_EXCHANGE, type="topic", durable=True)
    heap = [(due, clock) for clock, due in spec["deadlines"]]
    heapq.heapify(heap)
    publish_s, overshoot, error = [], [], None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.time() + spec["timeout"]
    try:
        with Connection(spec["amqp_uri"], transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer(conn.default_channel, serializer="json")
            while heap and not stop and time.time() < deadline:
                due, clock = heap[0]
                wait = due - time.time()
                if wait > 0:
                    time.sleep(min(wait, 1.0))  # wake at least every second to notice SIGTERM
                    continue
                heapq.heappop(heap)
                now = time.time()
                overshoot.append(now - due)
                producer.publish(
                    {
                        "event_type": "sla_breached",
                        "complaint_no": clock,
                        "payload": {"clock_id": clock, "lag_seconds": round(now - due, 6)},
                    },
                    exchange=exchange,
                    routing_key="sla_breached",
                    delivery_mode=2,
                    mandatory=True,
                    retry=False,
                    timeout=REQUEST_TIMEOUT,
                )
                publish_s.append(time.time() - now)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    Path(spec["out"]).write_text(
        json.dumps(
            {"publish": lag_summary(publish_s), "overshoot": lag_summary(overshoot), "left": len(heap), "error": error}
        )
    )


# --- report ----------------------------------------------------------------------------------


def table(result):
    b = result["baseline"]
    lines = [
        "| | breaches received / expected (dup) | detection lag p50 / p95 / p99 / max (ms) | lag_seconds in event "
        "p50 / p99 / max (ms) | sweep start -> received p50 / p99 (ms) | sweeps: interval p50 / max (ms), breaches "
        "per sweep p50 / max | at-risk received / expected (dup), lag p50 / p99 (ms) | ratio p50 / p99 | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    sweep_lines = []
    for key, m in result["mallcare"].items():
        d, o, s, w, r = (
            m["detection_lag"],
            m["lag_seconds_in_event"],
            m["sweep_start_to_received"],
            m["sweeps"],
            m["at_risk"],
        )
        rt = result["ratios"][key]
        t = m.get("sweep_time_per_tick") or {}
        sweep_lines.append(
            f"tick {m['tick_s']} s, {m['open_clocks']} other clocks open: sweep per tick while the deadlines fell "
            f"due: {t.get('ticks')} ticks, mean {t.get('mean_ms')} ms, p50 <= {t.get('p50_le_ms')} ms, p99 <= "
            f"{t.get('p99_le_ms')} ms; at-risk passed over (overdue when swept): {r['passed_over']}"
        )
        lines.append(
            f"| mallcare, tick {m['tick_s']} s | {m['breaches']['received']} / {m['breaches']['expected']} "
            f"({m['breaches']['duplicate_events']}) | {d['p50_ms']} / {d['p95_ms']} / {d['p99_ms']} / {d['max_ms']} "
            f"| {o['p50_ms']} / {o['p99_ms']} / {o['max_ms']} | {s['p50_ms']} / {s['p99_ms']} "
            f"| {w['interval']['p50_ms']} / {w['interval']['max_ms']}, {w['breaches_per_sweep']['p50']} / "
            f"{w['breaches_per_sweep']['max']} | {r['received']} / {r['expected']} ({r['duplicate_events']}), "
            f"{m['at_risk_lag']['p50_ms']} / {m['at_risk_lag']['p99_ms']} | {rt['p50']} / {rt['p99']} "
            f"| {m['errors']} |"
        )
    d = b["detection_lag"]
    lines.append(
        f"| baseline (heap + sleep) | {b['breaches']['received']} / {b['breaches']['expected']} "
        f"({b['breaches']['duplicate_events']}) | {d['p50_ms']} / {d['p95_ms']} / {d['p99_ms']} / "
        f"{d['max_ms']} | | | | | 1 | {b['errors']} |"
    )
    env = result["environment"]
    s = env["settings"]
    lines.append("")
    lines.extend(sweep_lines)
    lines.append(
        f"{s['clocks']} clocks due over {s['window']} s from {s['lead']} s on, published "
        f"{s['publish_rate'] or 'in a burst'}; background {s['background_rate']}/s; store "
        f"{env['store']['kind']} {env['store']['version']}; RabbitMQ {env['rabbitmq']['version']}; "
        f"Python {env['python']}; {env['cpu_count']} CPUs; load at start {env['loadavg_at_start']}; "
        f"{env['date']}; analytics from {env['services']['source']} at "
        f"{(env['services']['commit'] or '?')[:8]}"
        f"{' + uncommitted changes' if env['services']['uncommitted_changes'] else ''}"
    )
    for m in result["mallcare"].values():
        p = m["publishing"]
        lines.append(
            f"tick {m['tick_s']} s: published in {p['published_s']} s, analytics' queue empty after "
            f"{p['analytics_queue_empty_after_s']} s, first due at {p['first_due_after_s']} s; background "
            f"{m['background']['sent']} sent; store after: {m['analytics_store_after']}"
        )
        lines.append(
            f"CPU tick {m['tick_s']} s (cores): " + ", ".join(f"{k} {v}" for k, v in m["cpu"]["cores_busy"].items())
        )
    lines.append("CPU baseline (cores): " + ", ".join(f"{k} {v}" for k, v in b["cpu"]["cores_busy"].items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clocks", type=int, default=2000, help="clocks whose deadlines fall due (default 2000)")
    parser.add_argument("--window", type=float, default=60.0, help="s over which they fall due (default 60)")
    parser.add_argument(
        "--lead",
        type=float,
        help="s from their start to the first deadline (default: --window, so that every at-risk "
        "point, at half a clock's time, comes before the first deadline)",
    )
    parser.add_argument(
        "--publish-rate",
        type=float,
        default=0.0,
        help="complaint_registered publishes per second; 0 (default): one burst",
    )
    parser.add_argument(
        "--background-rate",
        type=float,
        default=20.0,
        help="far-deadline complaint_registered per second while the deadlines fall due (default 20)",
    )
    parser.add_argument(
        "--tick",
        type=float,
        action="append",
        help="MALLCARE_SLA_TICK_SECONDS for a mallcare run; repeat for several runs (default: 2 and 0.5)",
    )
    parser.add_argument(
        "--open-clocks",
        type=int,
        default=0,
        help="running clocks due in a day, written straight into analytics' store before it starts (its store "
        "process then restarted, as a fresh one), to compare the sweep's time per tick with a run without (default 0)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="uncounted warm-up clocks per run (default 5)")
    parser.add_argument(
        "--drain",
        type=float,
        default=600.0,
        help="s after the last deadline to wait for the last breaches at most (default 600)",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=30.0,
        help="stop waiting when no SLA event came for this long (s; at least 5 ticks; default 30)",
    )
    parser.add_argument("--timeout", type=int, default=2400, help="limit for the whole run in seconds (default 2400)")
    parser.add_argument(
        "--ref",
        help="run analytics from a clean export of this git commit instead of the "
        "working tree (e.g. HEAD, to leave uncommitted edits out)",
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/sla-<time>.json)")
    args = parser.parse_args(argv)
    args.tick = args.tick or [2.0, 0.5]
    if args.lead is None:
        args.lead = max(args.window, 10.0)
    if not (
        0 < args.clocks <= 20000
        and 1 <= args.window <= 600
        and 5 <= args.lead <= 600
        and 0 <= args.publish_rate <= 5000
        and 0 < args.background_rate <= 500
        and all(0.05 <= t <= 60 for t in args.tick)
        and len(args.tick) <= 4
        and 0 <= args.warmup <= 100
        and 0 <= args.open_clocks <= 200000
        and 10 <= args.drain <= 1800
        and 5 <= args.quiet <= 300
        and 60 <= args.timeout <= 3600
    ):
        parser.error(
            "keep --clocks 1..20000, --window 1..600, --lead 5..600, --publish-rate 0..5000, "
            "--background-rate 0..500, --tick 0.05..60 (at most 4), --warmup 0..100, --open-clocks 0..200000, "
            "--drain 10..1800, "
            "--quiet 5..300, --timeout 60..3600"
        )
    if args.publish_rate and args.clocks / args.publish_rate >= args.lead:
        parser.error(
            "--clocks / --publish-rate must be below --lead: every clock is published before the first deadline"
        )
    return run_bench(lambda ctx: _run(args, ctx), args.ref, args.timeout)


def _run(args, ctx):
    """One run in the frame run_bench set up (ctx); True when it finished with errors."""
    store = {}
    mallcare = {}
    for i, tick in enumerate(args.tick):
        mallcare[f"tick_{tick:g}"] = run_mallcare(args, ctx, tick, "abcd"[i], store)
    env = environment(
        store,
        ctx.loadavg,
        {
            "clocks": args.clocks,
            "window": args.window,
            "lead": args.lead,
            "publish_rate": args.publish_rate,
            "background_rate": args.background_rate,
            "ticks": args.tick,
            "warmup": args.warmup,
            "open_clocks": args.open_clocks,
        },
    )
    env["services"] = ctx.source
    env["loadavg_after_mallcare"] = [round(x, 2) for x in os.getloadavg()]
    baseline = run_baseline(args, ctx)
    base = baseline["detection_lag"]
    result = {
        "benchmark": "sla",
        "environment": env,
        "mallcare": mallcare,
        "baseline": baseline,
        "ratios": {
            k: {
                "p50": ratio(m["detection_lag"]["p50_ms"], base["p50_ms"]),
                "p99": ratio(m["detection_lag"]["p99_ms"], base["p99_ms"]),
            }
            for k, m in mallcare.items()
        },
        "run_s": round(time.monotonic() - ctx.started, 1),
    }
    write_result(result, args.out, "sla", table(result))
    return bool(baseline["errors"] or any(m["errors"] for m in mallcare.values()))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_detect":
        detect(json.loads(Path(sys.argv[2]).read_text()))
    else:
        sys.exit(main())
