"""What the event stream costs the outbox relay: `publish_pending` over `--count` events,
one document and one call at a time (as a request relays its own event), with the
dispatcher the services use (mallcare_common.messaging.OutboxDispatcher: the live publish,
then the write to the stream `mallcare.events`, each confirmed and mandatory) against
nameko's EventDispatcher with the same options (the live publish alone, as before the
stream). Both mark each event sent in the store (mark_sent, journaled). `--rounds` rounds
each, taken in turn (live alone, then with the stream) on a fresh RabbitMQ vhost, where a
durable quorum queue bound to every event stands for the subscribers; the store is a fresh
`secantusd-py` process (or MONGO_URI). Figures: events/s and ms per event of each round,
the medians, and their ratio.

Usage: .venv/bin/python bench/stream_bench.py [--count 1000] [--rounds 3]
Bounded: about a minute on the 2-core VM. Writes bench/results/stream-<time>.json."""

import argparse
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from kombu import Connection, Exchange, Queue
from nameko.events import EventDispatcher
from pymongo import MongoClient, WriteConcern

from common import Children, create_vhost, delete_vhost, environment, rnd, start_store, store_info, write_result
from mallcare_common.event_stream import EVENT_STREAM
from mallcare_common.messaging import OutboxDispatcher, new_outbox, publish_pending

SERVICE = "bench"
RETRY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.2, "interval_max": 0.5}  # as outbox_dispatcher()


def dispatch_of(dispatcher_class, amqp_uri):
    """The dispatch callable a worker of a `bench` service would be handed."""
    dispatcher = dispatcher_class(mandatory=True, retry_policy=RETRY)
    dispatcher.container = SimpleNamespace(service_name=SERVICE, config={"AMQP_URI": amqp_uri}, serializer="json")
    dispatcher.setup()
    return dispatcher.get_dependency(SimpleNamespace(context_data={}))


def event(n):
    return {
        "event_id": uuid.uuid4().hex,
        "event_type": "complaint_registered",
        "schema_version": 1,
        "occurred_at": datetime.now(timezone.utc).isoformat(),
        "mall_id": "sh-xujiahui",
        "complaint_no": f"SHXJH-20261206-{n:04d}",
        "payload": {"channel": "desk", "description": "草莓有三分之一发霉了" * 4},
    }


def one_round(collection, dispatch, count):
    """Seconds to relay `count` events, each in its own document, one publish_pending each."""
    now = datetime.now(timezone.utc)
    docs = [{"_id": uuid.uuid4().hex, **new_outbox(event(n), now)} for n in range(count)]
    collection.insert_many(docs)
    started = time.perf_counter()
    for doc in docs:
        assert publish_pending(collection, dispatch, SERVICE, now, [doc]) == (1, 0)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    began, loadavg = time.monotonic(), os.getloadavg()
    vhost = f"bench_stream_{uuid.uuid4().hex[:8]}"
    amqp_uri = create_vhost(vhost)
    with tempfile.TemporaryDirectory(prefix="mallcare-bench-") as tmp:
        children = Children(Path(tmp))
        try:
            mongo_uri = os.environ.get("MONGO_URI") or start_store(children, "relay", Path(tmp))[0]
            with Connection(amqp_uri) as conn:  # the subscribers' stand-in: every event is routed
                Queue(
                    "bench.subscriber",
                    Exchange(f"{SERVICE}.events", type="topic", durable=True),
                    routing_key="#",
                    durable=True,
                    queue_arguments={"x-queue-type": "quorum"},
                )(conn.default_channel).declare()
            variants = {
                "live publish alone": dispatch_of(EventDispatcher, amqp_uri),
                "live publish + stream write": dispatch_of(OutboxDispatcher, amqp_uri),
            }
            client = MongoClient(mongo_uri, tz_aware=True)
            collection = client[f"bench_stream_{vhost}"].get_collection(
                "outbox", write_concern=WriteConcern(w=1, j=True)
            )
            one_round(collection, variants["live publish + stream write"], 20)  # warm-up: connections, the stream
            seconds = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, dispatch in variants.items():
                    seconds[name].append(one_round(collection, dispatch, args.count))
            client.drop_database(collection.database.name)
            store = store_info(mongo_uri, embedded="MONGO_URI" not in os.environ)
            client.close()
        finally:
            children.stop_all()
            delete_vhost(vhost)
    rows = {
        name: {
            "events_per_s": [rnd(args.count / s) for s in runs],
            "ms_per_event": [rnd(1000 * s / args.count, 2) for s in runs],
            "median_ms_per_event": rnd(1000 * statistics.median(runs) / args.count, 2),
        }
        for name, runs in seconds.items()
    }
    alone, both = (rows[name]["median_ms_per_event"] for name in variants)
    result = {
        "count": args.count,
        "rounds": args.rounds,
        "stream": EVENT_STREAM,
        "variants": rows,
        "ratio_with_stream": rnd(both / alone, 2),
        "environment": environment(store, loadavg, {}),
        "run_s": rnd(time.monotonic() - began),
    }
    text = "| relay of one event | events/s per round | ms per event (median) |\n|---|---|---|\n" + "\n".join(
        f"| {name} | {', '.join(map(str, row['events_per_s']))} | {row['median_ms_per_event']} |"
        for name, row in rows.items()
    )
    write_result(result, args.out, "stream", text + f"\n\nwith the stream / alone: {result['ratio_with_stream']}")


if __name__ == "__main__":
    main()
