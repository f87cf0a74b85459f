"""Resolution: cases opened and worked to resolved, against a bare pymongo + kombu baseline.

One run, on one RabbitMQ broker (in one fresh vhost, created through the management API
and deleted at the end) and one kind of store, measures two things with the same number
of cases (default 200) and of concurrent workers (default 8):

1. mallcare. Resolution and analytics as separate OS processes, started the way an
   operator starts them (`nameko run --config services/<svc>/config.yml <svc>.service`
   from the repo root, environment as scripts/run.sh sets it), analytics first (it
   consumes every event resolution publishes with mandatory=True; without a bound queue
   the events would wait in resolution's outbox for the 2 s relay sweep), each with its
   own store process. Before anything is published this script binds its own plain queues
   to resolution.events for case_opened and case_resolved and consumes them in threads,
   recording its own time.time() when each case's event arrives.
   - Opening: N complaint_triaged envelopes (mallcare_common.contracts.build_event: mall
     sh-xujiahui, owner E3501, category product.quality_defect, risk low; built before
     the clock starts) are published with plain kombu (persistent, confirmed, mandatory)
     to triage.events, routing key complaint_triaged, from one publisher, as fast as it
     goes (--open-rate 0, the default) or at --open-rate per second. Resolution opens each
     case (one journaled insert with its outbox) and publishes case_opened. Recorded:
     cases opened/s (case_opened events received per second, first publish -> last event)
     and published -> case_opened received p50/p99. In a burst the latency is mostly the
     wait in resolution's queue: the opened/s figure is the capacity, the latency that of
     a backlog of N; --open-rate below the capacity gives the latency of one case.
   - Working: every opened case is worked through the strawberry flow of
     scripts/demo.py (work_case) over HTTP as handler E3501 (a staff token) by --concurrency
     workers, each taking the next case and doing its actions one after another:
     findings, proposals (refund 39.90 + voucher 39.90, price 39.90; within the handler's
     limit, so approved at once), reply, acceptance, task-done for each of the 3 tasks the
     acceptance made (refund, voucher, product hold), resolution: 8 actions per case, each
     a POST /cases/<number>/<action>. Every action reads the case, checks it against the
     rules and the policy, writes it with a version compare-and-set (w=1, j=True) and
     publishes its events (9 per case) from the outbox, confirmed and mandatory, marking
     each sent. Recorded: actions/s (200 responses per second of wall time, first request
     sent -> last response), per-action HTTP latency p50/p99 overall and per action, and
     errors (any answer but 200; a case stops at its first error). After the run every
     case is read back (GET /cases/<number>) and must be `resolved` with 11 timeline
     entries, and a case_resolved event must have arrived for each (within 30 s): each
     miss is an error.

2. baseline. What each action must at least cost, with nothing else in the way: one
   journaled (w=1, j=True) find_one_and_update on a case document with a version
   compare-and-set ({_id, version} -> $inc version, $push a timeline entry, $set the
   state; the same {_id, version} index resolution has) by --concurrency threads over
   plain pymongo against its own fresh store process of the same kind, then (every one of
   the 8 actions publishes at least one event) one confirmed, mandatory, persistent kombu
   publish of an event envelope to a durable topic exchange bound to a durable quorum
   queue (the type of mallcare's event queues) in the same vhost. Same cases, same
   number of operations per case, done one after another by the thread that took the
   case. Recorded: ops/s (first op started -> last op done), per-op latency p50/p99 and
   the two halves (the write, the confirmed publish).

The ratios mallcare/baseline (actions/s against ops/s; HTTP latency against op latency)
show what HTTP, the framework, validation, reading the case, the rules and the policy,
the larger documents (timeline and outbox), the extra events and marking them sent add
on top of the unavoidable work.

The store is the embedded SecantusDB (`secantusd-py`, one process per service and one
for the baseline) unless MONGO_URI is set, in which case everything uses that server with
databases named for this run (dropped at the end). On resolution's store the default run
does about 4,000 writes (per case an insert, 8 compare-and-sets and 10 outbox updates)
and 1,700 reads. The embedded store slows down as writes accumulate, on both sides: the
per-second timelines in the JSON show it.

The CPU each process used in each phase (opening, working, baseline) is recorded in cores
(the services, their stores, the RabbitMQ node, this script, the whole machine, and
"other": load this run did not start, which makes a run suspect when it is not near 0).

--warmup cases per side (default: as many as --concurrency) are opened and worked first
and left out of the figures (they open connections and pools). --ref runs the services
from a clean `git archive` of a commit instead of the working tree. --timeout bounds the
whole run (default 600 s).

Results: a JSON file in bench/results/ and a markdown table on stdout. Everything the run
starts (store processes, services, the vhost, temporary data) is stopped or deleted at the
end, also on error, Ctrl-C or overrun. All traffic goes to 127.0.0.1.

    .venv/bin/python bench/case_bench.py [--cases 200] [--concurrency 8] [--open-rate 0] [--ref HEAD]
"""

import argparse
import datetime as dt
import queue
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import requests

from mallcare_common.contracts import COMPLAINT_TRIAGED, build_event

from common import (
    HOST,
    signed_in,
    REQUEST_TIMEOUT,
    START_TIMEOUT,
    CpuWindow,
    EventSubscriber,
    drop_databases,
    environment,
    free_port,
    ms_summary,
    offer,
    offered_summary,
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

TRIAGE_EXCHANGE = "triage.events"  # nameko's exchange for triage's events
RESOLUTION_EXCHANGE = "resolution.events"  # and for resolution's
BASELINE_EXCHANGE = "bench.case-events"
BASELINE_QUEUE = "bench.case-baseline"
MALL, HANDLER = "sh-xujiahui", "E3501"
HANDLER_TOKEN = signed_in(HANDLER, "handler", [MALL])
ACTIONS_PER_CASE = 8
TIMELINE_ENTRIES = 11  # opened + 10 entries from the 8 actions
# every event type this run makes resolution publish: analytics must be bound to each
PUBLISHED = (
    "case_opened",
    "investigation_noted",
    "proposal_approved",
    "case_proposed",
    "case_accepted",
    "execution_task_done",
    "rectification_due",
    "case_resolved",
)
DRAIN_TIMEOUT = 90  # s for the last case_opened events after the publishes
RESOLVED_TIMEOUT = 30  # s for the last case_resolved events after the last action
SERVICES = ("analytics", "resolution")  # subscribers first: resolution publishes with mandatory=True


# --- the load -------------------------------------------------------------------------------


def triaged_event(number):
    """What triage announces for the strawberry complaint (tests/unit/resolution/conftest.py)."""
    now = dt.datetime.now(dt.timezone.utc)
    payload = {
        "category": "product.quality_defect",
        "category_source": "keywords",
        "risk_level": "low",
        "risk_reasons": [],
        "urgency": "routine",
        "department": "merchant_relations",
        "review_meeting": False,
        "departments_involved": [],
        "owner_id": HANDLER,
        "first_response_due_at": (now + dt.timedelta(hours=24)).isoformat(),
        "resolution_due_at": (now + dt.timedelta(days=7)).isoformat(),
        "policy_version": "bench",
        "received_at": now.isoformat(),
        "channel": "desk",
        "merchant_id": "T-17",
    }
    return build_event(COMPLAINT_TRIAGED, mall_id=MALL, complaint_no=number, occurred_at=now, payload=payload)


def strawberry_flow(act):
    """scripts/demo.py's work_case: act(action, body) -> the case as it is after the action."""
    act("findings", {"source": "cctv", "summary": "camera 12: the box was weighed and sold this morning"})
    act(
        "proposals",
        {
            "decision": "upheld",
            "price": "39.90",
            "demanded_amount": "79.80",
            "reasons": ["a third of the fruit was mouldy", "refund plus the same value in goods is fair"],
            "remedies": [{"type": "refund", "amount": "39.90"}, {"type": "voucher", "amount": "39.90"}],
        },
    )
    act("reply", {"proposal_no": 1, "oral": True})
    case = act("acceptance", {"proposal_no": 1})
    for task in case["tasks"]:
        act("task-done", {"task_id": task["id"], "note": f"{task['kind']} done"})
    act("resolution", {"summary": "refunded, voucher sent, batch off the shelf"})


# the baseline's operations: each action's name and the state it leaves the case in
BASELINE_STEPS = [
    ("findings", "investigating"),
    ("proposals", "proposed"),
    ("reply", "proposed"),
    ("acceptance", "accepted"),
    ("task-done", "executing"),
    ("task-done", "executing"),
    ("task-done", "executing"),
    ("resolution", "resolved"),
]


class CaseFailed(Exception):
    """An action did not answer 200: the case stops there (the row says why)."""


class Pool:
    """Per-worker resources (an HTTP session, a broker connection) made before the clock
    starts, so that no measured request pays for opening one."""

    def __init__(self, make, size):
        self.items = [make() for _ in range(size)]
        self.free = queue.SimpleQueue()
        for item in self.items:
            self.free.put(item)

    @contextmanager
    def take(self):
        item = self.free.get()
        try:
            yield item
        finally:
            self.free.put(item)


def work(numbers, concurrency, work_case, deadline_s):
    """work_case(number) for every number, `concurrency` at a time, each as soon as a
    worker is free; returns offer's rows (one per case)."""
    rows, _ = offer(len(numbers), float("inf"), concurrency, lambda i: work_case(numbers[i]), deadline_s)
    return rows


def latency_by_action(rows):
    names = dict.fromkeys(r["action"] for r in rows)
    return {
        name: ms_summary([r["end"] - r["start"] for r in rows if r["action"] == name and r["ok"]]) for name in names
    }


def wall(rows):
    ok = [r for r in rows if r["ok"]]
    if not ok:
        return None, None
    span = max(r["end"] for r in ok) - min(r["start"] for r in rows)
    return rnd(span, 2), rnd(len(ok) / span if span else None)


# --- 1. mallcare -----------------------------------------------------------------------------


def run_mallcare(args, ctx, store):
    children, stores, procs, urls = ctx.children, {}, {}, {}
    dbs = {s: f"bench_{ctx.run}_{s}" for s in SERVICES}
    uris = {s: ctx.mongo_uri for s in SERVICES}
    for service in SERVICES if not ctx.mongo_uri else ():
        uris[service], stores[service] = start_store(children, service, ctx.tmp)
    store.update(store_info(uris["resolution"], embedded=not ctx.mongo_uri))
    base_env = service_env(ctx.amqp_uri, ctx.pythonpath)
    for service in SERVICES:
        upper = service.upper()
        env = dict(
            base_env,
            MONGO_URI=uris[service],
            **{f"{upper}_MONGO_DATABASE": dbs[service], f"{upper}_WEB_ADDRESS": f"{HOST}:{free_port()}"},
        )
        urls[service], procs[service] = start_service(children, service, env)
    for source, event_type, consumer in [
        ("triage", "complaint_triaged", "resolution.handle_complaint_triaged"),
        *[("resolution", e, f"analytics.handle_{e}") for e in PUBLISHED],
    ]:
        queue_name = f"evt-{source}-{event_type}--{consumer}"  # nameko's event handler queue
        wait_until(
            f"consumer of {queue_name}",
            lambda name=queue_name: queue_consumers(ctx.vhost, name) >= 1,
            START_TIMEOUT,
            procs[consumer.split(".")[0]],
            children,
            consumer.split(".")[0],
        )

    opened = EventSubscriber(ctx.amqp_uri, RESOLUTION_EXCHANGE, "case_opened", "bench.case_opened")
    resolved = EventSubscriber(ctx.amqp_uri, RESOLUTION_EXCHANGE, "case_resolved", "bench.case_resolved")
    try:
        opened.start()
        resolved.start()
        cpu = CpuWindow({**{s: p.pid for s, p in procs.items()}, **{f"store {s}": p.pid for s, p in stores.items()}})
        return _mallcare(args, ctx, urls, uris, dbs, cpu, opened, resolved)
    finally:
        opened.stop()
        resolved.stop()
        for service in reversed(SERVICES):  # stop before the baseline: no idle timers in its way
            children.stop(procs[service])
        for proc in stores.values():
            children.stop(proc)
        if ctx.mongo_uri:
            drop_databases(ctx.mongo_uri, dbs.values())


def _mallcare(args, ctx, urls, uris, dbs, cpu, opened, resolved):
    from kombu import Connection, Exchange

    url = urls["resolution"]
    exchange = Exchange(TRIAGE_EXCHANGE, type="topic", durable=True)  # as nameko declares it
    conn = Connection(ctx.amqp_uri, transport_options={"confirm_publish": True})
    sessions = Pool(requests.Session, args.concurrency)
    try:
        producer = conn.Producer(conn.default_channel, serializer="json")

        def publish_all(numbers):
            events = [triaged_event(n) for n in numbers]  # built (and validated) before the clock starts

            def publish(i):
                producer.publish(
                    events[i],
                    exchange=exchange,
                    routing_key=COMPLAINT_TRIAGED.name,
                    delivery_mode=2,
                    mandatory=True,
                    retry=False,
                    timeout=REQUEST_TIMEOUT,
                )
                return {"ok": True, "number": numbers[i]}

            rate = args.open_rate or float("inf")
            return offer(len(numbers), rate, 1, publish, len(numbers) / rate + 120 if args.open_rate else 120)

        def work_case(number):
            rows = []
            with sessions.take() as session:

                def act(action, body):
                    start = time.time()
                    try:
                        response = session.post(
                            f"{url}/cases/{number}/{action}", json=body, timeout=REQUEST_TIMEOUT, headers=HANDLER_TOKEN
                        )
                        error = None if response.status_code == 200 else f"{response.status_code} {response.text}"
                    except requests.RequestException as exc:
                        response, error = None, f"{type(exc).__name__}: {exc}"
                    rows.append(
                        {
                            "action": action,
                            "start": start,
                            "end": time.time(),
                            "ok": error is None,
                            **({"error": f"{action}: {error}"[:200]} if error else {}),
                        }
                    )
                    if error:
                        raise CaseFailed(rows[-1]["error"])
                    return response.json()

                try:
                    strawberry_flow(act)
                except CaseFailed as exc:
                    return {"ok": False, "actions": rows, "error": str(exc)}
            return {"ok": True, "actions": rows}

        for session in sessions.items:  # one connection per worker, before the clock starts
            session.get(f"{url}/health", timeout=REQUEST_TIMEOUT)
        warm = [f"SHXJH-B{ctx.run}-W{i:03d}" for i in range(args.warmup)]
        publish_all(warm)
        opened.wait_for(warm, time.monotonic() + DRAIN_TIMEOUT)
        warm_rows = work(warm, args.concurrency, work_case, 120)
        resolved.wait_for(warm, time.monotonic() + RESOLVED_TIMEOUT)

        numbers = [f"SHXJH-B{ctx.run}-{i:05d}" for i in range(args.cases)]
        print(
            f"mallcare: opening {args.cases} cases ({'burst' if not args.open_rate else f'{args.open_rate}/s'})",
            file=sys.stderr,
        )
        cpu.start()
        open_rows, _ = publish_all(numbers)
        not_opened = opened.wait_for(numbers, time.monotonic() + DRAIN_TIMEOUT)
        cpu_open = cpu.stop()

        to_work = [n for n in numbers if n in opened.received]
        print(f"mallcare: working {len(to_work)} cases from {args.concurrency} workers", file=sys.stderr)
        cpu.start()
        case_rows = work(to_work, args.concurrency, work_case, 300)
        cpu_work = cpu.stop()
        done = [r for r in case_rows if r["ok"]]
        resolved.wait_for([to_work[r["i"]] for r in done], time.monotonic() + RESOLVED_TIMEOUT)
    finally:
        conn.release()
        for session in sessions.items:
            session.close()
    analytics = _analytics_events(uris["analytics"], dbs["analytics"], (args.warmup + args.cases) * 11)
    checks = _check_cases(url, to_work)
    in_store = _cases_in_store(uris["resolution"], dbs["resolution"])

    actions = [a for r in case_rows for a in r.get("actions", ())]
    t_first = min((r["start"] for r in open_rows), default=None)
    opened_at = [opened.received[n] for n in numbers if n in opened.received]
    open_wall = max(opened_at) - t_first if opened_at else None
    by_number = {r["number"]: r for r in open_rows if r.get("ok")}
    work_wall, actions_per_s = wall(actions)
    errors = {
        "publish_failed": sum(1 for r in open_rows if not r.get("ok")),
        "not_opened": len(not_opened),
        "http": sum(1 for a in actions if not a["ok"]),
        "cases_not_worked": sum(1 for r in case_rows if not r.get("actions")),
        "cases_not_resolved": sum(1 for c in checks.values() if c != "ok"),
        "case_resolved_missing": sum(1 for n in to_work if n not in resolved.received),
    }
    return {
        "cases": args.cases,
        "concurrency": args.concurrency,
        "warmup_cases": args.warmup,
        "warmup_errors": sum(1 for r in warm_rows if not r["ok"]),
        "errors": sum(errors.values()),
        "error_counts": errors,
        "error_samples": sorted(
            {a.get("error", "")[:160] for a in actions if not a["ok"]}
            | {r.get("error", "")[:160] for r in open_rows if not r.get("ok")}
        )[:5],
        "opening": {
            "offered": offered_summary(open_rows, args.open_rate or "burst"),
            "published": len(by_number),
            "opened": len(opened_at),
            "not_opened_deadline_s": DRAIN_TIMEOUT,
            "wall_s": rnd(open_wall, 2),
            "opened_per_s": rnd(len(opened_at) / open_wall if open_wall else None),
            "publish_confirm_latency": ms_summary([r["end"] - r["start"] for r in by_number.values()]),
            "published_to_case_opened": ms_summary(
                [opened.received[n] - r["start"] for n, r in by_number.items() if n in opened.received]
            ),
            "opened_per_second_timeline": per_second(opened_at, t_first) if t_first else [],
            "duplicate_case_opened_events": opened.duplicates,
            "subscriber_error": opened.error,
            "cpu": cpu_open,
        },
        "working": {
            "cases_worked": len(to_work),
            "cases_completed": len(done),
            "actions_ok": sum(a["ok"] for a in actions),
            "wall_s": work_wall,
            "actions_per_s": actions_per_s,
            "cases_per_s": rnd(len(done) / work_wall if work_wall else None),
            "http_latency": ms_summary([a["end"] - a["start"] for a in actions if a["ok"]]),
            "http_latency_by_action": latency_by_action(actions),
            "case_duration": ms_summary([r["end"] - r["start"] for r in done]),
            "actions_per_second_timeline": per_second(
                [a["end"] for a in actions if a["ok"]], min((a["start"] for a in actions), default=0)
            ),
            "case_resolved_events": len([n for n in to_work if n in resolved.received]),
            "case_resolved_deadline_s": RESOLVED_TIMEOUT,
            "duplicate_case_resolved_events": resolved.duplicates,
            "subscriber_error": resolved.error,
            "case_checks": _tally(checks.values()),
            "cases_with_pending_outbox_after_run": in_store["outbox_pending"],
            "mean_case_bytes": in_store["mean_case_bytes"],
            "analytics": analytics,
            "cpu": cpu_work,
        },
        "subscribers": f"plain classic queues bench.case_opened / bench.case_resolved bound to "
        f"{RESOLUTION_EXCHANGE}, consumed by threads of this script without acks",
        "stores": "own process per service" if not ctx.mongo_uri else "MONGO_URI, one database per service",
    }


def _tally(values):
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def _check_cases(url, numbers):
    """Every case as resolution has it now: 'ok' when resolved with the whole timeline."""
    checks = {}
    with requests.Session() as session:
        for number in numbers:
            try:
                response = session.get(f"{url}/cases/{number}", headers=HANDLER_TOKEN, timeout=REQUEST_TIMEOUT)
            except requests.RequestException as exc:
                checks[number] = type(exc).__name__
                continue
            if response.status_code != 200:
                checks[number] = f"HTTP {response.status_code}"
                continue
            case = response.json()
            entries = len(case.get("timeline", ()))
            checks[number] = (
                "ok"
                if case.get("state") == "resolved" and entries == TIMELINE_ENTRIES
                else f"{case.get('state')} with {entries} timeline entries"
            )
    return checks


def _cases_in_store(uri, db):
    """After the run: how many cases still have unpublished events in their outbox
    (should be 0), and the cases' mean size in the store."""
    from pymongo import MongoClient

    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        return {
            "outbox_pending": client[db].cases.count_documents({"pending_events": {"$gt": ""}}),
            "mean_case_bytes": _mean_size(client[db]),
        }


def _mean_size(db):
    try:
        return db.command("collStats", "cases").get("avgObjSize")
    except Exception:  # informative only
        return None


def _analytics_events(uri, db, expected, timeout=60):
    """How far analytics had got when the work ended, and how long it took to catch up
    (informative: it competes for the same cores)."""
    from pymongo import MongoClient

    started = time.monotonic()
    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        events = client[db].events
        at_end = stored = events.count_documents({})
        while stored < expected and time.monotonic() - started < timeout:
            time.sleep(1)
            stored = events.count_documents({})
    return {
        "expected": expected,
        "stored_when_work_ended": at_end,
        "stored": stored,
        "caught_up_after_s": rnd(time.monotonic() - started, 1) if stored >= expected else None,
    }


# --- 2. baseline -----------------------------------------------------------------------------


def run_baseline(args, ctx):
    from kombu import Connection, Exchange, Queue
    from pymongo import ASCENDING, MongoClient, ReturnDocument, WriteConcern

    store_proc = None
    uri = ctx.mongo_uri
    if not uri:
        uri, store_proc = start_store(ctx.children, "baseline", ctx.tmp)
    db_name = f"bench_{ctx.run}_baseline"
    exchange = Exchange(BASELINE_EXCHANGE, type="topic", durable=True)
    with Connection(ctx.amqp_uri) as conn:
        Queue(
            BASELINE_QUEUE, exchange=exchange, routing_key="#", durable=True, queue_arguments={"x-queue-type": "quorum"}
        )(conn.default_channel).declare()
    client = MongoClient(uri, serverSelectionTimeoutMS=5000)
    cases = client.get_database(db_name, write_concern=WriteConcern(w=1, j=True)).cases
    cases.create_index([("_id", ASCENDING), ("version", ASCENDING)])  # as resolution's
    warm = [f"SHXJH-B{ctx.run}-W{i:03d}" for i in range(args.warmup)]
    numbers = [f"SHXJH-B{ctx.run}-{i:05d}" for i in range(args.cases)]
    now = dt.datetime.now(dt.timezone.utc)
    cases.insert_many(
        [
            {
                "_id": n,
                "mall_id": MALL,
                "state": "open",
                "version": 0,
                "owner_id": HANDLER,
                "timeline": [
                    {
                        "seq": 1,
                        "at": now,
                        "by": "triage",
                        "role": "service",
                        "action": "opened",
                        "state": "open",
                        "detail": {},
                    }
                ],
            }
            for n in warm + numbers
        ]
    )

    def connect():
        conn = Connection(ctx.amqp_uri, transport_options={"confirm_publish": True})
        return conn, conn.Producer(conn.default_channel, serializer="json")  # connected now, not in a measured op

    producers = Pool(connect, args.concurrency)

    def work_case(number):
        rows = []
        with producers.take() as (_, producer):
            for version, (action, state) in enumerate(BASELINE_STEPS):
                start = time.time()
                at = dt.datetime.now(dt.timezone.utc)
                doc = cases.find_one_and_update(
                    {"_id": number, "version": version},
                    {
                        "$inc": {"version": 1},
                        "$set": {"state": state},
                        "$push": {
                            "timeline": {
                                "seq": version + 2,
                                "at": at,
                                "by": HANDLER,
                                "role": "handler",
                                "action": action,
                                "state": state,
                                "detail": {},
                            }
                        },
                    },
                    return_document=ReturnDocument.AFTER,
                )
                written = time.time()
                if doc is None:
                    rows.append(
                        {
                            "action": action,
                            "start": start,
                            "end": written,
                            "ok": False,
                            "error": f"{number} version {version}: compare-and-set missed",
                        }
                    )
                    return {"ok": False, "actions": rows, "error": rows[-1]["error"]}
                event = {
                    "event_id": uuid.uuid4().hex,
                    "event_type": action,
                    "schema_version": 1,
                    "occurred_at": at.isoformat(),
                    "mall_id": MALL,
                    "complaint_no": number,
                    "payload": {"by": HANDLER, "state": state, "version": doc["version"]},
                }
                producer.publish(
                    event,
                    exchange=exchange,
                    routing_key=action,
                    delivery_mode=2,
                    mandatory=True,
                    retry=False,
                    timeout=REQUEST_TIMEOUT,
                )
                rows.append({"action": action, "start": start, "written": written, "end": time.time(), "ok": True})
        return {"ok": True, "actions": rows}

    cpu = CpuWindow({"store baseline": store_proc.pid} if store_proc else {})
    try:
        work(warm, args.concurrency, work_case, 120)
        print(f"baseline: {args.cases} cases x {ACTIONS_PER_CASE} ops from {args.concurrency} threads", file=sys.stderr)
        cpu.start()
        case_rows = work(numbers, args.concurrency, work_case, 300)
        cpu_used = cpu.stop()
        complete = cases.count_documents({"_id": {"$in": numbers}, "version": ACTIONS_PER_CASE})
        mean_bytes = _mean_size(cases.database)
    finally:
        for conn, _ in producers.items:
            conn.release()
        client.close()
    ops = [a for r in case_rows for a in r.get("actions", ())]
    ok = [a for a in ops if a["ok"]]
    span, ops_per_s = wall(ops)
    errors = (
        sum(1 for a in ops if not a["ok"])
        + sum(1 for r in case_rows if not r.get("actions"))
        + (len(numbers) - complete)
    )
    result = {
        "cases": args.cases,
        "errors": errors,
        "error_samples": sorted({r.get("error", "")[:160] for r in case_rows if not r["ok"]})[:5],
        "ops_ok": len(ok),
        "cases_complete_in_store": complete,
        "mean_case_bytes": mean_bytes,
        "wall_s": span,
        "ops_per_s": ops_per_s,
        "op_latency": ms_summary([a["end"] - a["start"] for a in ok]),
        "write_latency": ms_summary([a["written"] - a["start"] for a in ok]),
        "publish_latency": ms_summary([a["end"] - a["written"] for a in ok]),
        "op_latency_by_action": latency_by_action(ops),
        "ops_per_second_timeline": per_second([a["end"] for a in ok], min((a["start"] for a in ops), default=0)),
        "cpu": cpu_used,
        "write": "find_one_and_update {_id, version} -> $inc version, $set state, $push timeline; w=1, j=True",
        "publish": "persistent, confirmed, mandatory; durable topic exchange -> durable quorum queue",
    }
    if store_proc is not None:
        ctx.children.stop(store_proc)
    else:
        drop_databases(uri, [db_name])
    return result


# --- report ----------------------------------------------------------------------------------


def table(result):
    m, b, r = result["mallcare"], result["baseline"], result["ratios"]
    o, w = m["opening"], m["working"]
    lines = [
        "| | mallcare | baseline (pymongo + kombu) | mallcare / baseline |",
        "| --- | --- | --- | --- |",
        f"| throughput (/s) | {w['actions_per_s']} actions ({w['cases_per_s']} cases) | {b['ops_per_s']} ops "
        f"| {r['throughput']} |",
        f"| latency p50 (ms) | {w['http_latency']['p50_ms']} HTTP per action | {b['op_latency']['p50_ms']} per op "
        f"| {r['latency_p50']} |",
        f"| latency p99 (ms) | {w['http_latency']['p99_ms']} | {b['op_latency']['p99_ms']} | {r['latency_p99']} |",
    ]
    for name, s in w["http_latency_by_action"].items():
        base = b["op_latency_by_action"].get(name, {})
        lines.append(
            f"| {name} p50 / p99 (ms) | {s['p50_ms']} / {s['p99_ms']} | {base.get('p50_ms')} / {base.get('p99_ms')} | |"
        )
    lines += [
        f"| baseline op: write / confirmed publish p50 (ms) | | {b['write_latency']['p50_ms']} / "
        f"{b['publish_latency']['p50_ms']} | |",
        f"| opening: cases opened/s; published -> case_opened p50 / p99 (ms) | {o['opened_per_s']}; "
        f"{o['published_to_case_opened']['p50_ms']} / {o['published_to_case_opened']['p99_ms']} | | |",
        f"| errors | {m['errors']} ({', '.join(f'{k} {v}' for k, v in m['error_counts'].items())}) | {b['errors']} | |",
    ]
    env = result["environment"]
    s = env["settings"]
    lines.append("")
    lines.append(
        f"{s['cases']} cases x {ACTIONS_PER_CASE} actions, {s['concurrency']} workers, opening "
        f"{s['open_rate'] or 'in a burst'}; store {env['store']['kind']} {env['store']['version']}; "
        f"RabbitMQ {env['rabbitmq']['version']}; Python {env['python']}; {env['cpu_count']} CPUs; "
        f"{env['date']}; services from {env['services']['source']} at "
        f"{(env['services']['commit'] or '?')[:8]}"
        f"{' + uncommitted changes' if env['services']['uncommitted_changes'] else ''}"
    )
    for phase, cpu in (("opening", o["cpu"]), ("working", w["cpu"]), ("baseline", b["cpu"])):
        lines.append(f"CPU {phase} (cores): " + ", ".join(f"{k} {v}" for k, v in cpu["cores_busy"].items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=200, help="cases per side (default 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent workers (default 8)")
    parser.add_argument(
        "--open-rate",
        type=float,
        default=0.0,
        help="complaint_triaged publishes per second; 0 (default): as fast as one publisher goes",
    )
    parser.add_argument("--warmup", type=int, help="uncounted warm-up cases per side (default: --concurrency)")
    parser.add_argument("--timeout", type=int, default=600, help="limit for the whole run in seconds (default 600)")
    parser.add_argument(
        "--ref",
        help="run the services from a clean export of this git commit instead of the "
        "working tree (e.g. HEAD, to leave uncommitted edits out)",
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/case-<time>.json)")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.concurrency
    if not (
        0 < args.cases <= 2000
        and 0 < args.concurrency <= 64
        and 0 <= args.open_rate <= 5000
        and 0 <= args.warmup <= 100
        and 30 <= args.timeout <= 3600
    ):
        parser.error(
            "keep --cases 1..2000, --concurrency 1..64, --open-rate 0..5000, --warmup 0..100, --timeout 30..3600"
        )
    return run_bench(lambda ctx: _run(args, ctx), args.ref, args.timeout)


def _run(args, ctx):
    """One run in the frame run_bench set up (ctx); True when it finished with errors."""
    store = {}  # filled in by run_mallcare from the first store it talks to
    mallcare = run_mallcare(args, ctx, store)
    env = environment(
        store,
        ctx.loadavg,
        {"cases": args.cases, "concurrency": args.concurrency, "open_rate": args.open_rate, "warmup": args.warmup},
    )
    env["services"] = ctx.source
    baseline = run_baseline(args, ctx)
    w = mallcare["working"]
    result = {
        "benchmark": "case",
        "environment": env,
        "mallcare": mallcare,
        "baseline": baseline,
        "ratios": {
            "throughput": ratio(w["actions_per_s"], baseline["ops_per_s"]),
            "latency_p50": ratio(w["http_latency"]["p50_ms"], baseline["op_latency"]["p50_ms"]),
            "latency_p99": ratio(w["http_latency"]["p99_ms"], baseline["op_latency"]["p99_ms"]),
        },
        "run_s": round(time.monotonic() - ctx.started, 1),
    }
    write_result(result, args.out, "case", table(result))
    return bool(mallcare["errors"] or baseline["errors"])


if __name__ == "__main__":
    sys.exit(main())
