"""Soak: all five services for a bounded time at a steady rate, then a reconciliation.

The five services run as OS processes the way an operator starts them (subscribers first:
intake publishes with mandatory=True), each on its own embedded store process, in a fresh
vhost. For `--duration` seconds the bench POSTs complaints to intake at `--rate` per second
from `--concurrency` senders (loopback only; every complaint a different customer and
description, so none is a duplicate). Every `--resolve-every`-th complaint is settled on
the spot at the desk once its case is open (POST /cases/<n>/spot-resolution as D3001), so
that feedback schedules a revisit for it.

After the load it waits until the counts settle (or `--drain` seconds), then reconciles
from the stores, the services' /metrics and the broker:
- complaints registered = assessments = cases opened; revisits = cases resolved;
- per event type: published (by its source) = handled ok (by each subscriber), and no
  event retried more than the handlers' documented waits explain (`retried`, `held`);
- 0 events pending in any outbox, 0 messages in any queue, 0 dead letters.
It samples the resident memory (RSS) of each service process at the start of the load, every
minute, and at the end, and the depth of the services' queues every 5 s (the highest
backlog shows where it falls behind). Intake's HTTP latency p50/p99 is overall and per minute.

Exit status: 0 reconciled, 1 a count did not match or an HTTP error, 2 could not run,
130 interrupted. Results: bench/results/soak-<time>.json and docs/benchmarks.md."""

import argparse
import queue
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import requests
import yaml

from common import (
    HOST,
    ROOT,
    environment,
    free_port,
    mgmt,
    ms_summary,
    offer,
    offered_summary,
    run_bench,
    service_env,
    signed_in,
    start_service,
    start_store,
    store_info,
    write_result,
)

SERVICES = ("triage", "analytics", "resolution", "feedback", "intake")  # subscribers first
DESK = "D3001"  # a desk clerk of sh-xujiahui who may settle low-risk complaints on the spot
PENDING = {"pending_events": {"$gt": ""}}


def staff_token(staff_id):
    with open(ROOT / "deploy" / "policy" / "resolution.yml", encoding="utf-8") as handle:
        member = next(m for m in yaml.safe_load(handle)["staff"] if m["id"] == staff_id)
    return signed_in(staff_id, member["role"], member["malls"])


def complaint(run, i):
    from mallcare_cli.examples import desk_complaint

    return desk_complaint(
        channel_ref=f"soak-{run}-{i}",
        customer={"name": "王女士", "phone": f"139{i:08d}", "member_id": f"M{run}{i}"},
        description=f"昨天买的草莓有三分之一发霉了 🍓 (soak {run} #{i})",
    )


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(round(int(line.split()[1]) / 1024, 1) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None


def metric_samples(url):
    """{(name, frozenset(labels)): value} of a service's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def event_counts(urls):
    """published[event_type] (by any service) and handled[(service, event_type, outcome)]."""
    published, handled = {}, {}
    for url in urls.values():
        for (name, labels), value in metric_samples(url).items():
            labels = dict(labels)
            if name == "mallcare_events_published_total":
                published[labels["event_type"]] = published.get(labels["event_type"], 0) + int(value)
            elif name == "mallcare_events_handled_total":
                key = (labels["service"], labels["event_type"], labels["outcome"])
                handled[key] = handled.get(key, 0) + int(value)
    return published, handled


def queue_depths(vhost):
    """{queue: ready + unacknowledged} of the run's vhost."""
    return {q["name"]: q.get("messages", 0) for q in mgmt("GET", f"/queues/{urllib.parse.quote(vhost, safe='')}")}


def store_counts(uris):
    from pymongo import MongoClient

    counts = {}
    clients = {svc: MongoClient(uri, serverSelectionTimeoutMS=5000) for svc, uri in uris.items()}
    try:
        db = {svc: client[svc] for svc, client in clients.items()}
        counts["complaints_registered"] = db["intake"].complaints.count_documents({"status": {"$ne": "rejected"}})
        counts["complaints_rejected"] = db["intake"].complaints.count_documents({"status": "rejected"})
        counts["assessments"] = db["triage"].assessments.count_documents({})
        counts["cases_opened"] = db["resolution"].cases.count_documents({})
        counts["cases_resolved"] = db["resolution"].cases.count_documents({"resolution": {"$ne": None}})
        counts["revisits"] = db["feedback"].revisits.count_documents({})
        counts["outbox_pending"] = {
            f"{svc}.{name}": n
            for svc, d in db.items()
            for name in d.list_collection_names()
            if (n := d[name].count_documents(PENDING))
        }
    finally:
        for client in clients.values():
            client.close()
    return counts


def reconciled(counts, published, handled, subscribers, depths):
    """The list of mismatches (empty when everything adds up)."""
    problems = []
    if not counts["complaints_registered"] == counts["assessments"] == counts["cases_opened"]:
        problems.append("registered/assessed/opened differ")
    if counts["revisits"] != counts["cases_resolved"]:
        problems.append("revisits differ from resolved cases")
    if counts["outbox_pending"]:
        problems.append(f"outbox pending: {counts['outbox_pending']}")
    for event_type, n in published.items():
        for service in subscribers.get(event_type, ()):
            ok = handled.get((service, event_type, "ok"), 0)
            if ok != n:
                problems.append(f"{event_type}: published {n}, {service} handled {ok}")
    if any(key[2] == "dead_lettered" and n for key, n in handled.items()):
        problems.append("handlers dead-lettered events")
    busy = {q: n for q, n in depths.items() if n}
    if busy:
        problems.append(f"messages left in queues: {busy}")
    return problems


def subscribers_by_event(vhost):
    """{event_type: {service, ...}} from the handler queues the services declared:
    `evt-<source>-<event_type>--<service>.<method>`."""
    found = {}
    for name in queue_depths(vhost):
        if name.startswith("evt-"):
            route, _, handler = name[4:].partition("--")
            found.setdefault(route.partition("-")[2], set()).add(handler.partition(".")[0])
    return found


def _run(args, ctx):
    stores, urls, procs = {}, {}, {}
    for service in SERVICES:
        stores[service], _ = start_store(ctx.children, service, ctx.tmp)
    for service in SERVICES:
        env = service_env(
            ctx.amqp_uri,
            ctx.pythonpath,
            MONGO_URI=stores[service],
            **{f"{service.upper()}_WEB_ADDRESS": f"{HOST}:{free_port()}"},
        )
        urls[service], procs[service] = start_service(ctx.children, service, env)
    admin, desk = signed_in(), staff_token(DESK)
    http = requests.Session()
    http.headers.update(admin)
    to_settle, settled, stop = queue.Queue(), [], threading.Event()

    def send(i):
        response = http.post(f"{urls['intake']}/complaints", json=complaint(ctx.run, i), timeout=30)
        number = response.json().get("number") if response.status_code == 201 else None
        if number and i % args.resolve_every == 0:
            to_settle.put(number)
        return {"ok": response.status_code == 201, "status": response.status_code}

    def settle():
        """Settle each chosen complaint once its case is open (a desk clerk would, minutes later)."""
        session = requests.Session()
        while not (stop.is_set() and to_settle.empty()):
            try:
                number = to_settle.get(timeout=0.5)
            except queue.Empty:
                continue
            deadline = time.monotonic() + 120
            while (
                time.monotonic() < deadline
                and session.get(f"{urls['resolution']}/cases/{number}", headers=admin, timeout=30).status_code != 200
            ):
                time.sleep(0.5)
            response = session.post(
                f"{urls['resolution']}/cases/{number}/spot-resolution",
                headers=desk,
                timeout=30,
                json={
                    "decision": "upheld",
                    "price": "39.90",
                    "summary": "refunded on the spot",
                    "reasons": ["mouldy fruit: refunded at the desk"],
                    "remedies": [{"type": "refund", "amount": "39.90"}],
                },
            )
            settled.append((number, response.status_code))

    samples, depth_max = {"rss_mib": []}, {}

    def sample():
        started, last_rss = time.monotonic(), -60
        while not stop.wait(5):
            for name, n in queue_depths(ctx.vhost).items():
                depth_max[name] = max(depth_max.get(name, 0), n)
            if time.monotonic() - last_rss >= 60:
                last_rss = time.monotonic()
                samples["rss_mib"].append(
                    {"t_s": round(last_rss - started), **{s: rss_mib(p.pid) for s, p in procs.items()}}
                )

    rss_start = {s: rss_mib(p.pid) for s, p in procs.items()}
    settler = threading.Thread(target=settle, daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    settler.start()
    sampler.start()
    count = int(args.duration * args.rate)
    rows, t0 = offer(count, args.rate, args.concurrency, send, args.duration + 60)
    load_s = time.time() - t0
    stop.set()
    settler.join(300)

    # let the last events through, then reconcile
    drain_started = time.monotonic()
    subscribers = subscribers_by_event(ctx.vhost)
    while True:
        counts = store_counts(stores)
        published, handled = event_counts(urls)
        depths = queue_depths(ctx.vhost)
        problems = reconciled(counts, published, handled, subscribers, depths)
        if not problems or time.monotonic() - drain_started > args.drain:
            break
        time.sleep(2)
    drained_s = round(time.monotonic() - drain_started, 1)
    rss_end = {s: rss_mib(p.pid) for s, p in procs.items()}
    sampler.join(10)
    dead_letters = queue_depths(ctx.vhost).get("mallcare.dead-letters", 0)
    if dead_letters:
        problems.append(f"{dead_letters} dead letters")

    latencies = [r["end"] - r["start"] for r in rows if r.get("ok")]
    per_minute = {}
    for r in rows:
        if r.get("ok"):
            per_minute.setdefault(int((r["start"] - t0) // 60), []).append(r["end"] - r["start"])
    errors = [r for r in rows if not r.get("ok")]
    result = {
        "benchmark": "soak",
        "environment": {
            **environment(store_info(stores["intake"], True), ctx.loadavg, vars(args) | {"out": None}),
            "services": ctx.source,
        },
        "load": {
            "complaints_sent": len(rows),
            "accepted": len(latencies),
            "http_errors": len(errors),
            "error_samples": [r.get("error") or r.get("status") for r in errors[:5]],
            "load_s": round(load_s, 1),
            **offered_summary(rows, args.rate),
        },
        "intake_latency": ms_summary(latencies),
        "intake_latency_per_minute": {m: ms_summary(v) for m, v in sorted(per_minute.items())},
        "settled_on_the_spot": {"sent": len(settled), "ok": sum(1 for _, s in settled if s == 200)},
        "reconciliation": {
            **counts,
            "published": published,
            "handled": {f"{s}/{e}/{o}": n for (s, e, o), n in sorted(handled.items())},
            "dead_letters": dead_letters,
            "drained_after_load_s": drained_s,
            "problems": problems,
        },
        "max_queue_depth": {q: n for q, n in sorted(depth_max.items()) if n},
        "rss_mib": {"start": rss_start, "end": rss_end, "every_minute": samples["rss_mib"]},
        "run_s": round(time.monotonic() - ctx.started, 1),
    }
    write_result(result, args.out, "soak", table(result))
    return bool(problems or errors or result["settled_on_the_spot"]["ok"] != len(settled))


def table(result):
    rec, lat, load = result["reconciliation"], result["intake_latency"], result["load"]
    lines = [
        f"| soak | {load['complaints_sent']} complaints at {load['target_per_s']}/s (achieved "
        f"{load['achieved_per_s']}/s), {load['http_errors']} HTTP errors |",
        "|---|---|",
        f"| intake latency p50 / p99 / max | {lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']} ms |",
        f"| registered / assessed / cases / resolved / revisits | {rec['complaints_registered']} / {rec['assessments']}"
        f" / {rec['cases_opened']} / {rec['cases_resolved']} / {rec['revisits']} |",
        f"| outbox pending / dead letters | {sum(rec['outbox_pending'].values())} / {rec['dead_letters']} |",
        f"| drained after the load | {rec['drained_after_load_s']} s |",
        f"| highest queue depth | {max(result['max_queue_depth'].values(), default=0)} |",
    ]
    for service, start in result["rss_mib"]["start"].items():
        lines.append(f"| RSS {service} start -> end | {start} -> {result['rss_mib']['end'][service]} MiB |")
    lines.append(f"| problems | {'; '.join(rec['problems']) or 'none'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--rate", type=float, default=1.0, help="complaints per second (default 1)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument(
        "--resolve-every", type=int, default=5, help="settle every n-th complaint on the spot, for revisits (default 5)"
    )
    parser.add_argument("--drain", type=float, default=300, help="seconds to wait for the counts to settle")
    parser.add_argument("--ref", help="run the services from a clean export of this git commit")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/soak-<time>.json)")
    args = parser.parse_args(argv)
    return run_bench(lambda ctx: _run(args, ctx), args.ref, timeout=args.duration + args.drain + 900)


if __name__ == "__main__":
    sys.exit(main())
