"""Intake throughput and latency: mallcare against a bare nameko chain and a bare kombu + pymongo baseline.

One run, on one RabbitMQ broker (in one fresh vhost, created through the
management API and deleted at the end) and one kind of store, measures three things
one after the other at the same offered load (default: 600 messages at 40/s from 8
concurrent senders):

1. mallcare. The real services as separate OS processes, started the way an
   operator starts them (`nameko run --config services/<svc>/config.yml
   <svc>.service` from the repo root), triage first (intake publishes its events
   with mandatory=True, so triage's queue must exist), each service with its own
   store process. The load is HTTP
   POST /complaints to intake (distinct channel_ref and customer phone on every
   request, so none is a duplicate). Triage does the real assessment of each
   complaint_registered event (a few indexed look-ups in its store, one journaled
   insert with an outbox) and publishes complaint_triaged, mandatory and confirmed,
   to the topic exchange triage.events. Before the first complaint is sent, this
   script binds its own plain classic queue to that exchange (routing key
   complaint_triaged; without a bound queue the event would wait in triage's outbox
   for the 2 s relay sweep) and consumes it in a thread, recording for each
   complaint_no its own time.time() when the event arrived. Recorded:
   - triaged/s: complaint_triaged events received per second of wall time (first
     request sent -> last event received), and how many accepted complaints had no
     event within DRAIN_TIMEOUT after the load (each one an error);
   - accepted/s: 201 "registered" responses per second of wall time (first
     request sent -> last response received);
   - HTTP latency p50/p99 (request sent -> response received, measured by the
     sender);
   - sent -> triaged event received p50/p99, both ends on this script's clock: the
     whole way of a complaint, HTTP and intake, the queue hop, triage's assessment
     and write, its confirmed publish and one more queue hop to this script;
   - registered -> triage p50/p99: from triage's own record
     (GET /assessments/<number>, read after the run for every complaint whose event
     arrived; if some did not, triage's remaining backlog is purged first, so that the
     reads do not queue behind it): `received_at` is intake's clock when it took the
     request (the body carries no received_at) and `opened_at` is triage's clock when
     its event handler stored the assessment. This covers intake's journaled writes,
     the confirmed mandatory publish from its outbox, the quorum queue and triage's
     handler up to the start of its own write.
   The measured window (and its CPU figures) ends with the last triaged event; the
   CPU used up to the last HTTP response is recorded as well (cpu_while_sending).

2. the bare nameko chain (bench/bare_chain.py): the least two nameko services do for
   the same hops. A front service whose HTTP POST does one insert_one (w=1, j=True)
   into its own store process and dispatches one event (nameko's EventDispatcher,
   persistent, confirmed), and a handler service on a quorum queue that does one
   insert_one (w=1, j=True) into its own store process; both started as OS processes
   with `nameko run`, max_workers 10 and a pool of 2 as mallcare's. The same complaint
   body goes by HTTP, driven at capacity: --bare-count requests (800) from
   --bare-concurrency senders (50), each sending its next as soon as it has an answer,
   so that its rate is what the chain can do. Recorded: stored/s (handler inserts done per
   second, first send -> last insert), HTTP latency, sent -> handler's insert done
   (both on this machine's clock). mallcare's triaged/s over the chain's stored/s is
   what mallcare's validation, numbering, look-ups, outbox bookkeeping and triage's
   assessment (and its own confirmed publish, one hop more) cost against the framework.

3. baseline. What the same guarantees cost with nothing else in the way: plain
   kombu publishes (persistent, publisher confirms, mandatory) through a durable
   topic exchange to a durable queue of the same type as mallcare's event queues
   (quorum), in the same vhost, and a plain kombu consumer in its own OS process
   that does one pymongo insert_one per message with the same write concern
   mallcare uses (w=1, j=True) into its own fresh store process of the same kind,
   acking after the insert. The message carries the same complaint body. Same
   count, offered rate and number of senders. Recorded: msgs/s (stored messages
   per second of wall time: first publish -> last insert done), publish->stored
   p50/p99 (time.time() in the message just before publishing -> just after
   insert_one returned), and the confirmed-publish latency seen by the sender.
   mallcare has to do at least this much per complaint (a journaled write, a
   confirmed publish, a queue hop, a write on the other side), so the ratio
   mallcare/baseline (triaged/s against msgs/s, sent -> triaged event received
   against publish -> stored) shows what HTTP, the framework, validation, numbering,
   the outbox bookkeeping, triage's assessment and its own confirmed publish and queue
   hop add on top of the unavoidable work.

The store is the embedded SecantusDB (`secantusd-py`, one process per service,
as scripts/lib.sh and DESIGN.md prescribe: one process is single-core) unless
MONGO_URI is set, in which case everything uses that server with databases named
for this run (dropped at the end). The embedded store is several times slower
than mongod and has a write-rate cliff after a few thousand writes (DESIGN.md);
the default run stays below it (on intake's store about 1,200 updates and 600
inserts, on triage's 600 inserts and 600 updates), and its results say which store
they ran on. This is not the 10,000-update soak DESIGN.md also asks for.

The senders are a fixed pool (--concurrency): request i is sent at start + i/rate
or, when all senders are busy, as soon as one is free. When the service cannot
keep up, the senders fall behind the schedule (recorded as start lag) and the
offered rate drops to what the service sustains, so latencies are those of that
closed loop, not of an unbounded queue.

To say what limits a figure, the CPU each process used during the measured window
is recorded (in cores: the services, their stores, the baseline consumer, the
RabbitMQ node, this script, the whole machine, and "other": load this run did not
start, which makes a run suspect when it is not near 0).

A few warm-up messages per side (--warmup, default 5) are sent first and left
out of the figures (they open connections and pools). --ref runs the services
from a clean `git archive` of a commit instead of the working tree.

Results: a JSON file in bench/results/ and a markdown table on stdout.
Everything the run starts (store processes, services, the baseline consumer,
the vhost) is stopped or deleted at the end, also on error or Ctrl-C.
All traffic goes to 127.0.0.1.

    .venv/bin/python bench/intake_bench.py [--count 600] [--rate 40] [--concurrency 8] [--ref HEAD]
"""

import argparse
import json
import signal
import socket
import sys
import threading
import time
from functools import partial
from pathlib import Path

import requests

from mallcare_cli.examples import desk_complaint

from common import (
    BIN,
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
    parse_time,
    per_second,
    purge_queues,
    queue_consumers,
    ratio,
    run_bench,
    service_env,
    start_service,
    start_store,
    store_info,
    wait_until,
    write_result,
)
from common import rnd as _r

BASELINE_EXCHANGE = "bench.events"
BASELINE_QUEUE = "bench.baseline"
BASELINE_ROUTING_KEY = "complaint_registered"
TRIAGE_EXCHANGE = "triage.events"  # nameko's exchange for triage's events
TRIAGED_ROUTING_KEY = "complaint_triaged"
TRIAGED_QUEUE = "bench.triaged"  # the bench's own subscriber queue
DRAIN_TIMEOUT = 90  # s after the last send for triage / the consumer to catch up
AT_CAPACITY = 1e6  # an offered rate no sender keeps up with: each sends its next request on an answer


# --- the load -------------------------------------------------------------------------------


def unique_complaint(i, run):
    """The example complaint, made unique by channel_ref and phone so that neither
    idempotency nor duplicate detection short-cuts it."""
    return desk_complaint(
        channel_ref=f"bench-{run}-{i:06d}",
        customer={"name": "王女士", "phone": f"139{i % 10**8:08d}", "member_id": "M001", "member_tier": "gold"},
    )


# --- 1. mallcare -----------------------------------------------------------------------------


def run_mallcare(args, children, tmp, amqp_uri, vhost, run, mongo_uri, store, pythonpath):
    stores = {}
    if mongo_uri:
        uris = {"intake": mongo_uri, "triage": mongo_uri}
    else:
        uris = {}
        for service in ("triage", "intake"):
            uris[service], stores[service] = start_store(children, service, tmp)
    store.update(store_info(uris["triage"], embedded=not mongo_uri))
    base_env = service_env(amqp_uri, pythonpath)
    dbs = {s: f"bench_{run}_{s}" for s in ("intake", "triage")}
    procs = {}
    urls = {}
    for service in ("triage", "intake"):  # subscribers first: intake publishes with mandatory=True
        env = dict(
            base_env,
            MONGO_URI=uris[service],
            **{
                f"{service.upper()}_MONGO_DATABASE": dbs[service],
                f"{service.upper()}_WEB_ADDRESS": f"{HOST}:{free_port()}",
            },
        )
        urls[service], procs[service] = start_service(children, service, env)
        if service == "triage":
            wait_until(
                "triage's event queue consumer",
                lambda: queue_consumers(vhost, "handle_complaint_registered") >= 1,
                START_TIMEOUT,
                procs[service],
                children,
                "triage",
            )

    # the bench's own subscriber to complaint_triaged, bound before the first complaint is sent
    triaged = EventSubscriber(amqp_uri, TRIAGE_EXCHANGE, TRIAGED_ROUTING_KEY, TRIAGED_QUEUE)
    triaged.start()
    try:
        return _offer_to_mallcare(args, run, vhost, urls, procs, stores, triaged, mongo_uri)
    finally:
        triaged.stop()
        for service in ("intake", "triage"):  # stop before the baseline: no idle timers in its way
            children.stop(procs[service])
        for proc in stores.values():
            children.stop(proc)
        if mongo_uri:
            drop_databases(mongo_uri, dbs.values())


def _offer_to_mallcare(args, run, vhost, urls, procs, stores, triaged, mongo_uri):
    local = threading.local()

    def session():
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers.update(signed_in())
        return local.s

    def post(i):
        r = session().post(urls["intake"] + "/complaints", json=unique_complaint(i, run), timeout=REQUEST_TIMEOUT)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        ok = r.status_code == 201 and body.get("status") == "registered"
        return {
            "ok": ok,
            "status": r.status_code,
            "number": body.get("number"),
            **({} if ok else {"error": f"{r.status_code} {r.text[:200]}"}),
        }

    warmup = [post(10**6 + w).get("number") for w in range(args.warmup)]  # opens the pools; not counted
    triaged.wait_for([n for n in warmup if n], time.monotonic() + DRAIN_TIMEOUT)  # so none lands in the window

    print(
        f"mallcare: offering {args.count} complaints at {args.rate}/s from {args.concurrency} senders", file=sys.stderr
    )
    cpu = CpuWindow(
        {
            "intake": procs["intake"].pid,
            "triage": procs["triage"].pid,
            **{f"store {name}": proc.pid for name, proc in stores.items()},
        }
    )
    cpu.start()
    load_deadline = args.count / args.rate + 120
    rows, t0 = offer(args.count, args.rate, args.concurrency, post, load_deadline)
    accepted = [r for r in rows if r["ok"]]
    cpu_sending = cpu.stop()  # first send -> last response: what intake's side used

    # sent -> complaint_triaged received, on this script's clock; bounded wait for the last ones
    not_triaged = triaged.wait_for([r["number"] for r in accepted], time.monotonic() + DRAIN_TIMEOUT)
    cpu_used = cpu.stop()  # the measured window ends with the last triaged event (or the deadline)
    arrived = {r["number"]: triaged.received[r["number"]] for r in accepted if r["number"] not in not_triaged}
    # Past the deadline the rest is given up: drop triage's backlog so that its workers and its
    # store are free to answer the reads below (they share both with the event handler).
    abandoned = purge_queues(triaged.amqp_uri, vhost, "handle_complaint_registered") if not_triaged else 0

    # registered -> received by triage, from triage's record of the complaints it announced
    triage = requests.Session()
    triage.headers.update(signed_in())
    pending = {r["number"]: r for r in accepted if r["number"] in arrived}
    seen = {}
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        misses = 0
        for number in list(pending):
            try:
                resp = triage.get(f"{urls['triage']}/assessments/{number}", timeout=REQUEST_TIMEOUT)
            except requests.RequestException:
                break  # try again after the pause, until the deadline
            if resp.status_code == 200:
                doc = resp.json()
                seen[number] = (parse_time(doc["received_at"]), parse_time(doc["opened_at"]))
                del pending[number]
            elif resp.status_code == 404:
                misses += 1
                if misses >= 20:  # triage is behind: let it work
                    break
            if time.monotonic() >= deadline:
                break
        if pending:
            time.sleep(0.5)
    triage.close()

    ends = [r["end"] for r in rows]
    wall = max(ends) - t0 if rows else 0
    last_triaged = max(arrived.values(), default=None)
    triaged_wall = last_triaged - t0 if last_triaged else None
    e2e = [opened - received for received, opened in seen.values()]
    http_errors = [r for r in rows if not r["ok"]]
    result = {
        "offered": offered_summary(rows, args.rate),
        "sent": len(rows),
        "accepted": len(accepted),
        "errors": len(http_errors) + len(not_triaged) + len(pending),
        "http_errors": len(http_errors),
        "error_samples": sorted({r.get("error", "")[:160] for r in http_errors})[:5],
        "wall_s": _r(wall, 2),
        "accepted_per_s": _r(len(accepted) / wall if wall else None),
        "http_latency": ms_summary([r["end"] - r["start"] for r in accepted]),
        "triaged_events": len(arrived),
        "not_triaged": len(not_triaged),
        "not_triaged_deadline_s": DRAIN_TIMEOUT,
        "backlog_purged_at_deadline": abandoned,
        "triaged_wall_s": _r(triaged_wall, 2),
        "triaged_per_s": _r(len(arrived) / triaged_wall if triaged_wall else None),
        "sent_to_triaged_event": ms_summary(
            [arrived[r["number"]] - r["start"] for r in accepted if r["number"] in arrived]
        ),
        "response_to_triaged_event": ms_summary(
            [arrived[r["number"]] - r["end"] for r in accepted if r["number"] in arrived]
        ),
        "registered_to_triage": ms_summary(e2e),
        "reached_triage": len(seen),
        "missing_in_triage": len(pending),
        "duplicate_triaged_events": triaged.duplicates,
        "subscriber_error": triaged.error,
        "subscriber": f"plain classic queue {TRIAGED_QUEUE} bound to {TRIAGE_EXCHANGE} ({TRIAGED_ROUTING_KEY}), "
        "consumed by a thread of this script without acks",
        "accepted_per_second_timeline": per_second([r["end"] for r in accepted], t0),
        "triaged_per_second_timeline": per_second(arrived.values(), t0),
        "stores": "own process per service" if not mongo_uri else "MONGO_URI, one database per service",
        "cpu": cpu_used,
        "cpu_while_sending": cpu_sending,
    }
    return result


# --- 2. the bare nameko chain -----------------------------------------------------------------


def run_bare_chain(args, children, tmp, amqp_uri, vhost, run, mongo_uri):
    """bench/bare_chain.py's two services, each its own process on its own store, driven like
    mallcare: HTTP POST of the same complaint body at the same offered load."""
    uris, stores = {}, {}
    for side in ("back", "front"):
        if mongo_uri:
            uris[side] = mongo_uri
        else:
            uris[side], stores[side] = start_store(children, f"bare-{side}", tmp)
    dbs = {side: f"bare_{side}" for side in ("back", "front")}  # the services' names (raw_chain.Store)
    config = tmp / "bare-chain.yml"
    config.write_text(
        f"AMQP_URI: {amqp_uri}\nWEB_SERVER_ADDRESS: ${{WEB_SERVER_ADDRESS}}\nmax_workers: 10\nHEARTBEAT: 60\n"
    )
    procs, urls = {}, {}
    for side in ("back", "front"):  # the handler's queue first, as for mallcare
        address = f"{HOST}:{free_port()}"
        env = service_env(
            amqp_uri,
            str(Path(__file__).resolve().parent),
            WEB_SERVER_ADDRESS=address,
            RAW_MONGO_URI=uris[side],
        )
        cls = f"Bare{side.capitalize()}"
        procs[side] = children.start(
            f"bare-{side}", [str(BIN / "nameko"), "run", "--config", str(config), f"bare_chain:{cls}"], env=env
        )
        urls[side] = f"http://{address}"
        ready = f"{urls[side]}/stored" if side == "back" else f"{urls[side]}/complaints"  # GET: 200, or 405
        wait_until(
            f"bare chain {side}",
            partial(answers, ready),
            START_TIMEOUT,
            procs[side],
            children,
            f"bare-{side}",
        )
    wait_until(
        "bare chain's handler queue",
        lambda: queue_consumers(vhost, "bare_back") >= 1,
        START_TIMEOUT,
        procs["back"],
        children,
        "bare-back",
    )
    try:
        return _offer_to_bare_chain(args, run, urls, procs, stores)
    finally:
        for proc in (procs["front"], procs["back"], *stores.values()):
            children.stop(proc)
        if mongo_uri:
            drop_databases(mongo_uri, dbs.values())


def answers(url):
    return requests.get(url, timeout=2).status_code in (200, 405)


def _offer_to_bare_chain(args, run, urls, procs, stores):
    local = threading.local()

    def post(i):
        if not hasattr(local, "s"):
            local.s = requests.Session()
        body = {"seq": i, "sent_at": time.time(), "payload": unique_complaint(i, run)}
        r = local.s.post(urls["front"] + "/complaints", data=json.dumps(body), timeout=REQUEST_TIMEOUT)
        return {"ok": r.status_code == 201, **({} if r.status_code == 201 else {"error": f"{r.status_code}"})}

    def stored():
        return {
            int(seq): at for seq, at in requests.get(urls["back"] + "/stored", timeout=REQUEST_TIMEOUT).json().items()
        }

    for w in range(args.warmup):
        post(10**6 + w)
    wait_until("bare chain warm-up", lambda: len(stored()) >= args.warmup, DRAIN_TIMEOUT)
    # At capacity: as fast as its senders get answers (a closed loop), so that its rate is
    # what the chain can do, not the load mallcare was offered.
    count, senders = args.bare_count, args.bare_concurrency
    print(f"bare chain: {count} as fast as {senders} senders get answers", file=sys.stderr)
    cpu = CpuWindow(
        {"front": procs["front"].pid, "back": procs["back"].pid, **{f"store {k}": p.pid for k, p in stores.items()}}
    )
    cpu.start()
    rows, t0 = offer(count, AT_CAPACITY, senders, post, 300)
    accepted = [r for r in rows if r["ok"]]
    deadline = time.monotonic() + DRAIN_TIMEOUT
    done = stored()
    while any(r["i"] not in done for r in accepted) and time.monotonic() < deadline:
        time.sleep(0.2)
        done = stored()
    cpu_used = cpu.stop()
    ends = [done[r["i"]] for r in accepted if r["i"] in done]
    last = max(ends, default=None)
    errors = [r for r in rows if not r["ok"]]
    return {
        "offered": offered_summary(rows, AT_CAPACITY),
        "senders": senders,
        "sent": len(rows),
        "accepted": len(accepted),
        "stored": len(ends),
        "errors": len(errors) + len(accepted) - len(ends),
        "error_samples": sorted({r.get("error", "")[:160] for r in errors})[:5],
        "wall_s": _r(last - t0, 2) if last else None,
        "stored_per_s": _r(len(ends) / (last - t0) if last else None),
        "http_latency": ms_summary([r["end"] - r["start"] for r in accepted]),
        "sent_to_stored": ms_summary([done[r["i"]] - r["start"] for r in accepted if r["i"] in done]),
        "stored_per_second_timeline": per_second(ends, t0),
        "cpu": cpu_used,
        "shape": "nameko HTTP POST: insert_one (w=1, j=True) + EventDispatcher; nameko event handler on a quorum "
        "queue: insert_one (w=1, j=True); each its own process and store process (bench/bare_chain.py)",
    }


# --- 3. baseline ------------------------------------------------------------------------------


def baseline_entities():
    from kombu import Exchange, Queue

    exchange = Exchange(BASELINE_EXCHANGE, type="topic", durable=True)
    queue = Queue(
        BASELINE_QUEUE,
        exchange=exchange,
        routing_key=BASELINE_ROUTING_KEY,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    return exchange, queue


def run_baseline(args, children, tmp, amqp_uri, vhost, run, mongo_uri):
    from kombu import Connection
    from pymongo import MongoClient

    store_proc = None
    if mongo_uri:
        uri = mongo_uri
    else:
        uri, store_proc = start_store(children, "baseline", tmp)
    db_name = f"bench_{run}_baseline"
    exchange, queue = baseline_entities()
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()

    total = args.count + args.warmup
    out = tmp / "baseline-consumer.json"
    spec = {
        "amqp_uri": amqp_uri,
        "mongo_uri": uri,
        "db": db_name,
        "count": total,
        "timeout": args.count / args.rate + 120 + DRAIN_TIMEOUT,
        "out": str(out),
    }
    consumer = children.start(
        "baseline-consumer", [sys.executable, str(Path(__file__).resolve()), "_consume", json.dumps(spec)]
    )
    wait_until(
        "baseline consumer",
        lambda: queue_consumers(vhost, BASELINE_QUEUE) >= 1,
        START_TIMEOUT,
        consumer,
        children,
        "baseline-consumer",
    )

    local = threading.local()
    connections = []
    conn_lock = threading.Lock()

    def producer():
        if not hasattr(local, "p"):
            conn = Connection(amqp_uri, transport_options={"confirm_publish": True})
            with conn_lock:
                connections.append(conn)
            local.p = conn.Producer(serializer="json")
        return local.p

    def publish(i):
        body = {"seq": i, "sent_at": time.time(), "payload": unique_complaint(i, run)}
        producer().publish(
            body,
            exchange=exchange,
            routing_key=BASELINE_ROUTING_KEY,
            delivery_mode=2,
            mandatory=True,
            retry=False,
            timeout=REQUEST_TIMEOUT,
        )
        return {"ok": True, "sent_at": body["sent_at"]}

    cpu = CpuWindow({"consumer": consumer.pid, **({"store baseline": store_proc.pid} if store_proc else {})})
    try:
        for w in range(args.warmup):
            publish(10**6 + w)
        cpu.start()
        print(
            f"baseline: publishing {args.count} messages at {args.rate}/s from {args.concurrency} senders",
            file=sys.stderr,
        )
        rows, t0 = offer(args.count, args.rate, args.concurrency, publish, args.count / args.rate + 120)
    finally:
        for conn in connections:
            conn.release()

    cpu_used = cpu.stop()
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while consumer.poll() is None and time.monotonic() < deadline:  # it exits once it has stored them all
        if not out.exists():
            cpu_used = cpu.stop()  # its last sample before it exits (a gone process has no /proc)
        time.sleep(0.05)
    if consumer.poll() is None:
        cpu_used = cpu.stop()
        children.stop(consumer)  # SIGTERM: it writes what it has and exits
    stored = json.loads(out.read_text()) if out.exists() else {"messages": [], "error": "consumer wrote nothing"}
    by_seq = {m["seq"]: m for m in stored["messages"] if m["seq"] < 10**6}
    published = [r for r in rows if r["ok"]]
    e2e = [by_seq[r["i"]]["stored_at"] - by_seq[r["i"]]["sent_at"] for r in published if r["i"] in by_seq]
    # check what the consumer reports against what is in the store
    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        in_store = client[db_name].messages.count_documents({"_id": {"$lt": 10**6}})
    last = max((by_seq[r["i"]]["stored_at"] for r in published if r["i"] in by_seq), default=None)
    errors = [r for r in rows if not r["ok"]]
    result = {
        "offered": offered_summary(rows, args.rate),
        "sent": len(rows),
        "published": len(published),
        "stored": len(e2e),
        "stored_in_store": in_store,
        "errors": len(errors) + (len(published) - len(e2e)),
        "error_samples": sorted(
            {r.get("error", "")[:160] for r in errors} | ({stored["error"]} if stored.get("error") else set())
        )[:5],
        "wall_s": _r(last - t0, 2) if last else None,
        "msgs_per_s": _r(len(e2e) / (last - t0) if last else None),
        "publish_confirm_latency": ms_summary([r["end"] - r["start"] for r in published]),
        "publish_to_stored": ms_summary(e2e),
        "publish_to_consumed": ms_summary(
            [by_seq[r["i"]]["received_at"] - by_seq[r["i"]]["sent_at"] for r in published if r["i"] in by_seq]
        ),
        "stored_per_second_timeline": per_second(
            [by_seq[r["i"]]["stored_at"] for r in published if r["i"] in by_seq], t0
        ),
        "cpu": cpu_used,
        "queue": "durable quorum queue via a durable topic exchange",
        "write_concern": "w=1, j=True",
    }
    if store_proc is not None:
        children.stop(store_proc)
    elif mongo_uri:
        drop_databases(mongo_uri, [db_name])
    return result


def consume(spec):
    """The baseline consumer (its own process): one insert_one per message, ack after it."""
    from kombu import Connection
    from pymongo import MongoClient, WriteConcern

    _, queue = baseline_entities()
    client = MongoClient(spec["mongo_uri"], maxPoolSize=2, serverSelectionTimeoutMS=5000)
    coll = client.get_database(spec["db"], write_concern=WriteConcern(w=1, j=True)).messages
    records = []
    error = None
    deadline = time.monotonic() + spec["timeout"]
    terminate = []
    signal.signal(signal.SIGTERM, lambda *_: terminate.append(1))

    def on_message(body, message):
        received = time.time()
        coll.insert_one(
            {"_id": body["seq"], "sent_at": body["sent_at"], "received_at": received, "payload": body["payload"]}
        )
        records.append(
            {"seq": body["seq"], "sent_at": body["sent_at"], "received_at": received, "stored_at": time.time()}
        )
        message.ack()

    try:
        with Connection(spec["amqp_uri"]) as conn:
            with conn.Consumer(queue, callbacks=[on_message], accept=["json"], prefetch_count=10):
                while len(records) < spec["count"] and time.monotonic() < deadline and not terminate:
                    try:
                        conn.drain_events(timeout=1)
                    except socket.timeout:
                        pass
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
        Path(spec["out"]).write_text(json.dumps({"messages": records, "error": error}))


# --- report ----------------------------------------------------------------------------------


def table(result):
    m, b, r = result["mallcare"], result["baseline"], result["ratios"]
    lines = [
        "| | mallcare | baseline (kombu + pymongo) | mallcare / baseline |",
        "| --- | --- | --- | --- |",
        f"| throughput (/s) | {m['triaged_per_s']} triaged ({m['accepted_per_s']} accepted) "
        f"| {b['msgs_per_s']} stored | {r['throughput']} ({r['accepted_throughput']}) |",
        f"| end-to-end p50 (ms) | {m['sent_to_triaged_event']['p50_ms']} sent -> triaged event received "
        f"| {b['publish_to_stored']['p50_ms']} publish -> stored | {r['e2e_p50']} |",
        f"| end-to-end p99 (ms) | {m['sent_to_triaged_event']['p99_ms']} | {b['publish_to_stored']['p99_ms']} "
        f"| {r['e2e_p99']} |",
        f"| registered -> triage p50 / p99 (ms) | {m['registered_to_triage']['p50_ms']} / "
        f"{m['registered_to_triage']['p99_ms']} (opened_at - received_at) "
        f"| {b['publish_to_stored']['p50_ms']} / {b['publish_to_stored']['p99_ms']} publish -> stored "
        f"| {r['registered_to_triage_p50']} / {r['registered_to_triage_p99']} |",
        f"| sender latency p50 / p99 (ms) | {m['http_latency']['p50_ms']} / {m['http_latency']['p99_ms']} HTTP "
        f"| {b['publish_confirm_latency']['p50_ms']} / {b['publish_confirm_latency']['p99_ms']} confirmed publish "
        f"| {r['sender_p50']} / {r['sender_p99']} |",
        f"| offered rate achieved (/s); senders behind schedule, max (ms) "
        f"| {m['offered']['achieved_per_s']}; {m['offered']['start_lag_max_ms']} "
        f"| {b['offered']['achieved_per_s']}; {b['offered']['start_lag_max_ms']} | |",
        f"| errors | {m['errors']} ({m['http_errors']} HTTP, {m['not_triaged']} without a triaged event "
        f"within {m['not_triaged_deadline_s']} s, {m['missing_in_triage']} announced but not readable in triage) "
        f"| {b['errors']} | |",
    ]
    c, rc = result["bare_chain"], result["ratios_to_bare_chain"]
    lines += [
        "",
        "| | mallcare | bare nameko chain | mallcare / bare chain |",
        "| --- | --- | --- | --- |",
        f"| throughput (/s) | {m['triaged_per_s']} triaged | {c['stored_per_s']} stored by the handler "
        f"| {rc['throughput']} |",
        f"| end-to-end p50 / p99 (ms) | {m['sent_to_triaged_event']['p50_ms']} / "
        f"{m['sent_to_triaged_event']['p99_ms']} | {c['sent_to_stored']['p50_ms']} / "
        f"{c['sent_to_stored']['p99_ms']} sent -> handler's insert done | {rc['e2e_p50']} / {rc['e2e_p99']} |",
        f"| HTTP p50 / p99 (ms) | {m['http_latency']['p50_ms']} / {m['http_latency']['p99_ms']} "
        f"| {c['http_latency']['p50_ms']} / {c['http_latency']['p99_ms']} | {rc['http_p50']} / {rc['http_p99']} |",
        f"| offered rate achieved (/s) | {m['offered']['achieved_per_s']} | {c['offered']['achieved_per_s']} | |",
        f"| errors | {m['errors']} | {c['errors']} | |",
    ]
    env = result["environment"]
    lines.append("")
    settings = env["settings"]
    lines.append(
        f"{settings['count']} at {settings['rate']}/s, {settings['concurrency']} senders; "
        f"store {env['store']['kind']} {env['store']['version']}; RabbitMQ {env['rabbitmq']['version']}; "
        f"Python {env['python']}; {env['cpu_count']} CPUs; {env['date']}; services from "
        f"{env['services']['source']} at {(env['services']['commit'] or '?')[:8]}"
        f"{' + uncommitted changes' if env['services']['uncommitted_changes'] else ''}"
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=600, help="messages per side (default 600)")
    parser.add_argument("--rate", type=float, default=40.0, help="offered rate per second (default 40)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders (default 8)")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted warm-up messages per side (default 5)")
    parser.add_argument(
        "--bare-count", type=int, default=800, help="requests to the bare nameko chain, sent at capacity (default 800)"
    )
    parser.add_argument(
        "--bare-concurrency", type=int, default=50, help="concurrent senders to the bare nameko chain (default 50)"
    )
    parser.add_argument(
        "--ref",
        help="run the services from a clean export of this git commit instead of the "
        "working tree (e.g. HEAD, to leave uncommitted edits out)",
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/intake-<time>.json)")
    args = parser.parse_args(argv)
    if not (
        0 < args.count <= 20000 and 0 < args.rate <= 5000 and 0 < args.concurrency <= 64 and 0 <= args.warmup <= 100
    ):
        parser.error("keep --count 1..20000, --rate 0..5000, --concurrency 1..64, --warmup 0..100")

    return run_bench(lambda ctx: _run(args, ctx), args.ref)


def _run(args, ctx):
    """One run in the frame run_bench set up (ctx); True when it finished with errors."""
    store = {}  # filled in by run_mallcare from the first store it talks to
    mallcare = run_mallcare(
        args, ctx.children, ctx.tmp, ctx.amqp_uri, ctx.vhost, ctx.run, ctx.mongo_uri, store, ctx.pythonpath
    )
    env = environment(
        store,
        ctx.loadavg,
        {"count": args.count, "rate": args.rate, "concurrency": args.concurrency, "warmup": args.warmup},
    )
    env["services"] = ctx.source
    bare = run_bare_chain(args, ctx.children, ctx.tmp, ctx.amqp_uri, ctx.vhost, ctx.run, ctx.mongo_uri)
    baseline = run_baseline(args, ctx.children, ctx.tmp, ctx.amqp_uri, ctx.vhost, ctx.run, ctx.mongo_uri)
    result = {
        "benchmark": "intake",
        "environment": env,
        "mallcare": mallcare,
        "bare_chain": bare,
        "baseline": baseline,
        "ratios_to_bare_chain": {
            "throughput": ratio(mallcare["triaged_per_s"], bare["stored_per_s"]),
            "e2e_p50": ratio(mallcare["sent_to_triaged_event"]["p50_ms"], bare["sent_to_stored"]["p50_ms"]),
            "e2e_p99": ratio(mallcare["sent_to_triaged_event"]["p99_ms"], bare["sent_to_stored"]["p99_ms"]),
            "http_p50": ratio(mallcare["http_latency"]["p50_ms"], bare["http_latency"]["p50_ms"]),
            "http_p99": ratio(mallcare["http_latency"]["p99_ms"], bare["http_latency"]["p99_ms"]),
        },
        "ratios": {
            "throughput": ratio(mallcare["triaged_per_s"], baseline["msgs_per_s"]),
            "accepted_throughput": ratio(mallcare["accepted_per_s"], baseline["msgs_per_s"]),
            "e2e_p50": ratio(mallcare["sent_to_triaged_event"]["p50_ms"], baseline["publish_to_stored"]["p50_ms"]),
            "e2e_p99": ratio(mallcare["sent_to_triaged_event"]["p99_ms"], baseline["publish_to_stored"]["p99_ms"]),
            "registered_to_triage_p50": ratio(
                mallcare["registered_to_triage"]["p50_ms"], baseline["publish_to_stored"]["p50_ms"]
            ),
            "registered_to_triage_p99": ratio(
                mallcare["registered_to_triage"]["p99_ms"], baseline["publish_to_stored"]["p99_ms"]
            ),
            "sender_p50": ratio(mallcare["http_latency"]["p50_ms"], baseline["publish_confirm_latency"]["p50_ms"]),
            "sender_p99": ratio(mallcare["http_latency"]["p99_ms"], baseline["publish_confirm_latency"]["p99_ms"]),
        },
        "run_s": round(time.monotonic() - ctx.started, 1),
    }
    write_result(result, args.out, "intake", table(result))
    return bool(mallcare["errors"] or bare["errors"] or baseline["errors"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_consume":
        consume(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
