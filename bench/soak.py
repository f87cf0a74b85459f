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

With `--baseline` the raw chain (bench/raw_chain.py: mallcare's hops and journaled writes
per complaint with nothing else, five bare nameko services each on its own store process)
runs right after, in the same vhost, once mallcare's processes are stopped, on fresh
stores, with the same rate, duration, senders and settlements. Its reconciliation: every
event published handled ok once by each subscriber, the documents in each collection as
many as the graph expects (none refused as stored before), its queues empty. A table
compares the two: highest queue depth, counts settled after the load, intake (entry)
HTTP p50/p99, the cores the services and stores used during the load, and whether every
message was stored exactly once.

Exit status: 0 reconciled (both, with --baseline), 1 a count did not match or an HTTP
error, 2 could not run, 130 interrupted. Results: bench/results/soak-<time>.json and docs/benchmarks.md."""

import argparse
import os
import queue
import sys
import threading
import time
import urllib.parse
from functools import partial
from pathlib import Path

import requests
import yaml

import raw_chain
from common import (
    BIN,
    HOST,
    ROOT,
    START_TIMEOUT,
    CpuWindow,
    environment,
    free_port,
    mgmt,
    ms_summary,
    offer,
    offered_summary,
    ratio,
    run_bench,
    service_env,
    signed_in,
    start_service,
    start_store,
    store_info,
    wait_until,
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


def drive(args, ctx, urls, procs, headers, watched, check):
    """Offer the soak's load to a chain: POST urls["intake"]/complaints at the rate, settle
    every resolve-every-th at urls["resolution"] (headers: the POST's, the settlement's and
    the case look-up's), sample the depth of the `watched` queues, the RSS of the services
    in `procs` and the CPU of all of them (services and "store <service>"), then wait until
    check() -> (details, problems) finds nothing wrong, or --drain s."""
    services = {s: p for s, p in procs.items() if not s.startswith("store ")}
    post_headers, desk, admin = headers
    http = requests.Session()
    http.headers.update(post_headers)
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
                if watched(name):
                    depth_max[name] = max(depth_max.get(name, 0), n)
            if time.monotonic() - last_rss >= 60:
                last_rss = time.monotonic()
                samples["rss_mib"].append(
                    {"t_s": round(last_rss - started), **{s: rss_mib(p.pid) for s, p in services.items()}}
                )

    rss_start = {s: rss_mib(p.pid) for s, p in services.items()}
    settler = threading.Thread(target=settle, daemon=True)
    sampler = threading.Thread(target=sample, daemon=True)
    cpu = CpuWindow({name: p.pid for name, p in procs.items()})
    cpu.start()
    settler.start()
    sampler.start()
    count = int(args.duration * args.rate)
    rows, t0 = offer(count, args.rate, args.concurrency, send, args.duration + 60)
    load_s = time.time() - t0
    cpu_load = cpu.stop()
    stop.set()
    settler.join(300)

    # let the last events through, then reconcile
    drain_started = time.monotonic()
    while True:
        details, problems = check()
        if not problems or time.monotonic() - drain_started > args.drain:
            break
        time.sleep(2)
    drained_s = round(time.monotonic() - drain_started, 1)
    rss_end = {s: rss_mib(p.pid) for s, p in services.items()}
    sampler.join(10)

    latencies = [r["end"] - r["start"] for r in rows if r.get("ok")]
    per_minute = {}
    for r in rows:
        if r.get("ok"):
            per_minute.setdefault(int((r["start"] - t0) // 60), []).append(r["end"] - r["start"])
    errors = [r for r in rows if not r.get("ok")]
    return {
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
        "reconciliation": {**details, "drained_after_load_s": drained_s, "problems": problems},
        "max_queue_depth": {q: n for q, n in sorted(depth_max.items()) if n},
        "rss_mib": {"start": rss_start, "end": rss_end, "every_minute": samples["rss_mib"]},
        "cpu_during_load": cpu_load,
    }


def failed(part):
    return bool(
        part["reconciliation"]["problems"]
        or part["load"]["http_errors"]
        or part["settled_on_the_spot"]["ok"] != part["settled_on_the_spot"]["sent"]
    )


def run_mallcare(args, ctx):
    stores, urls, procs = {}, {}, {}
    for service in SERVICES:
        stores[service], procs[f"store {service}"] = start_store(ctx.children, service, ctx.tmp)
    for service in SERVICES:
        env = service_env(
            ctx.amqp_uri,
            ctx.pythonpath,
            MONGO_URI=stores[service],
            **{f"{service.upper()}_WEB_ADDRESS": f"{HOST}:{free_port()}"},
        )
        urls[service], procs[service] = start_service(ctx.children, service, env)
    admin = signed_in()
    subscribers = {}

    def check():
        if not subscribers:  # from the queues the services declared (all of them by now)
            subscribers.update(subscribers_by_event(ctx.vhost))
        counts = store_counts(stores)
        published, handled = event_counts(urls)
        depths = queue_depths(ctx.vhost)
        details = {
            **counts,
            "published": published,
            "handled": {f"{s}/{e}/{o}": n for (s, e, o), n in sorted(handled.items())},
        }
        return details, reconciled(counts, published, handled, subscribers, depths)

    part = drive(
        args,
        ctx,
        urls,
        procs,
        (admin, staff_token(DESK), admin),
        lambda name: not name.startswith("evt-raw_"),
        check,
    )
    dead_letters = queue_depths(ctx.vhost).get("mallcare.dead-letters", 0)
    part["reconciliation"]["dead_letters"] = dead_letters
    if dead_letters:
        part["reconciliation"]["problems"].append(f"{dead_letters} dead letters")
    store = store_info(stores["intake"], True)
    for proc in reversed(procs.values()):  # services, then stores: nothing of mallcare's runs during the raw chain
        ctx.children.stop(proc)
    return part, store


def run_raw_chain(args, ctx):
    """bench/raw_chain.py's five services, each its own process on its own store, driven
    like mallcare's: the same complaints, senders, rate and settlements."""
    config = ctx.tmp / "raw-chain.yml"
    config.write_text(
        f"AMQP_URI: {ctx.amqp_uri}\nWEB_SERVER_ADDRESS: ${{WEB_SERVER_ADDRESS}}\n"
        "max_workers: ${MAX_WORKERS:10}\nHEARTBEAT: 60\n"
    )
    at_risk_s, due_s = raw_chain.acknowledgement_clock(ctx.root / "deploy" / "policy")
    stores, urls, procs = {}, {}, {}
    for service in raw_chain.SERVICES:
        stores[service], procs[f"store {service}"] = start_store(ctx.children, f"raw-{service}", ctx.tmp)
    for service in raw_chain.SERVICES:
        address = f"{HOST}:{free_port()}"
        env = service_env(
            ctx.amqp_uri,
            str(Path(__file__).resolve().parent),
            WEB_SERVER_ADDRESS=address,
            RAW_MONGO_URI=stores[service],
            RAW_ACK_AT_RISK_S=str(at_risk_s),
            RAW_ACK_DUE_S=str(due_s),
        )
        log = f"raw-{service}"
        cls = f"Raw{service.capitalize()}"
        procs[service] = ctx.children.start(
            log, [str(BIN / "nameko"), "run", "--config", str(config), f"raw_chain:{cls}"], env=env
        )
        urls[service] = f"http://{address}"
        wait_until(
            f"raw {service}",
            partial(answers, f"{urls[service]}/counts"),
            START_TIMEOUT,
            procs[service],
            ctx.children,
            log,
        )
    queues = sum(len(subs) for subs in raw_chain.SUBSCRIPTIONS.values())
    wait_until(
        f"the raw chain's {queues} queues",
        lambda: sum(1 for q in raw_queues(ctx.vhost) if q.get("consumers")) == queues,
        START_TIMEOUT,
    )

    part = drive(
        args,
        ctx,
        urls,
        procs,
        ({}, {}, {}),
        lambda name: name.startswith("evt-raw_"),
        lambda: raw_reconciliation(ctx.vhost, stores, urls),
    )
    for proc in reversed(procs.values()):
        ctx.children.stop(proc)
    return part


def answers(url):
    return requests.get(url, timeout=2).status_code == 200


def raw_queues(vhost):
    return [q for q in mgmt("GET", f"/queues/{urllib.parse.quote(vhost, safe='')}") if q["name"].startswith("evt-raw_")]


def raw_reconciliation(vhost, stores, urls):
    """The raw chain's counts against its graph: every published event handled ok once by
    each subscriber, every insert stored once (documents per collection = expected from the
    graph, no duplicate refused), no message left in its queues."""
    from pymongo import MongoClient

    counts = {s: requests.get(f"{url}/counts", timeout=10).json() for s, url in urls.items()}
    published, handled = {}, {}  # {event_type: n}, {"service/event_type or entrypoint/outcome": n}
    for service, service_counts in counts.items():
        for key, n in service_counts.items():
            first, second = key.split()
            if first == "published":
                published[second] = published.get(second, 0) + n
            else:
                handled[f"{service}/{first}/{second}"] = n
    stored = {}
    for service, uri in stores.items():
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            db = client[raw_chain.name(service)]
            for collection in db.list_collection_names():
                stored[f"{service}.{collection}"] = db[collection].count_documents({})
    expected = {
        f"{s}.{c}": n
        for (s, c), n in raw_chain.expected_inserts(
            counts["intake"].get("published complaint_registered", 0),
            counts["resolution"].get("spot_resolution ok", 0),
            published.get("sla_at_risk", 0),
            published.get("sla_breached", 0),
        ).items()
        if n
    }
    problems = []
    if stored != expected:
        problems.append(f"stored {stored}, expected from the graph {expected}")
    for (_, event_type), subs in raw_chain.SUBSCRIPTIONS.items():
        for subscriber, _, _ in subs:
            ok = handled.get(f"{subscriber}/{event_type}/ok", 0)
            if ok != published.get(event_type, 0):
                problems.append(f"{event_type}: published {published.get(event_type, 0)}, {subscriber} handled {ok}")
    duplicates = {k: n for k, n in handled.items() if k.endswith("/duplicate")}
    if duplicates:
        problems.append(f"stored twice (refused): {duplicates}")
    busy = {q["name"]: q.get("messages", 0) for q in raw_queues(vhost) if q.get("messages")}
    if busy:
        problems.append(f"messages left in queues: {busy}")
    return {"stored": stored, "expected": expected, "published": published, "handled": handled}, problems


def _run(args, ctx):
    mallcare, store = run_mallcare(args, ctx)
    result = {
        "benchmark": "soak",
        "environment": {
            **environment(store, ctx.loadavg, vars(args) | {"out": None}),
            "services": ctx.source,
        },
        **mallcare,
    }
    if args.baseline:
        raw = run_raw_chain(args, ctx)
        result["raw_chain"] = raw
        result["ratios_to_raw_chain"] = ratios(mallcare, raw)
        result["environment"]["loadavg_after_raw_chain"] = [round(x, 2) for x in os.getloadavg()]
    result["run_s"] = round(time.monotonic() - ctx.started, 1)
    write_result(result, args.out, "soak", table(result))
    return failed(mallcare) or (args.baseline and failed(result["raw_chain"]))


def highest(part):
    """(depth, queue) of the highest queue depth sampled, or (0, None)."""
    return max(((n, q) for q, n in part["max_queue_depth"].items()), default=(0, None))


def busy_cores(part):
    """Cores the chain's processes (services and stores) used during the load."""
    cores = part["cpu_during_load"]["cores_busy"]
    return round(sum(v for k, v in cores.items() if k not in NOT_THE_CHAIN and not k.startswith("of other")), 2)


NOT_THE_CHAIN = ("machine", "rabbitmq", "bench (load generator)", "other (not started by this run)")


def ratios(mallcare, raw):
    return {
        "intake_p50": ratio(mallcare["intake_latency"]["p50_ms"], raw["intake_latency"]["p50_ms"]),
        "intake_p99": ratio(mallcare["intake_latency"]["p99_ms"], raw["intake_latency"]["p99_ms"]),
        "highest_queue_depth": ratio(highest(mallcare)[0], highest(raw)[0]),
        "drained_after_load": ratio(
            mallcare["reconciliation"]["drained_after_load_s"], raw["reconciliation"]["drained_after_load_s"]
        ),
        "cores_during_load": ratio(busy_cores(mallcare), busy_cores(raw)),
    }


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
        f"| highest queue depth | {highest(result)[0]} |",
    ]
    for service, start in result["rss_mib"]["start"].items():
        lines.append(f"| RSS {service} start -> end | {start} -> {result['rss_mib']['end'][service]} MiB |")
    lines.append(f"| problems | {'; '.join(rec['problems']) or 'none'} |")
    if "raw_chain" in result:
        lines += ["", *comparison(result, result["raw_chain"], result["ratios_to_raw_chain"])]
    return "\n".join(lines)


def comparison(m, r, x):
    def depth(part):
        n, q = highest(part)
        return f"{n} ({q})" if q else "0"

    def once(part):
        problems = part["reconciliation"]["problems"]
        return "yes" if not problems else "no: " + "; ".join(problems)[:300]

    def sent(part):
        load = part["load"]
        return f"{load['accepted']} of {load['complaints_sent']} at {load['achieved_per_s']}/s"

    ml, rl = m["intake_latency"], r["intake_latency"]
    return [
        "| same load, same run | mallcare | raw chain | mallcare / raw chain |",
        "| --- | --- | --- | --- |",
        f"| complaints accepted | {sent(m)} | {sent(r)} | |",
        f"| settled on the spot (ok / sent) | {m['settled_on_the_spot']['ok']} / {m['settled_on_the_spot']['sent']} "
        f"| {r['settled_on_the_spot']['ok']} / {r['settled_on_the_spot']['sent']} | |",
        f"| intake / entry HTTP p50 / p99 (ms) | {ml['p50_ms']} / {ml['p99_ms']} | {rl['p50_ms']} / {rl['p99_ms']} "
        f"| {x['intake_p50']} / {x['intake_p99']} |",
        f"| highest queue depth | {depth(m)} | {depth(r)} | {x['highest_queue_depth']} |",
        f"| counts settled after the load (s) | {m['reconciliation']['drained_after_load_s']} "
        f"| {r['reconciliation']['drained_after_load_s']} | {x['drained_after_load']} |",
        f"| cores used by services + stores during the load | {busy_cores(m)} | {busy_cores(r)} "
        f"| {x['cores_during_load']} |",
        f"| every message stored exactly once | {once(m)} | {once(r)} | |",
    ]


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
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="then run the raw chain (bench/raw_chain.py) with the same load, on fresh stores, and compare",
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/soak-<time>.json)")
    args = parser.parse_args(argv)
    return run_bench(
        lambda ctx: _run(args, ctx), args.ref, timeout=(args.duration + args.drain + 900) * (2 if args.baseline else 1)
    )


if __name__ == "__main__":
    sys.exit(main())
