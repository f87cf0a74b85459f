"""Console: what going through the web console's proxy costs staff, against calling intake
directly.

The console (services/console) passes `/api/<service>/<path>` on to the five services with
the caller's own Authorization header, over connections it keeps alive to each service
(it opened a new one per call before issue 21), and answers with the service's bytes.
This bench asks what that hop adds to a staff member's reads.

One run, on one RabbitMQ broker (a fresh vhost, created through the management API and
deleted at the end) and one store:

1. Setup. Intake, with its own store process, then the console, as OS processes started
   the way an operator starts them (`nameko run --config services/<svc>/config.yml
   <svc>.service`), the console with CONSOLE_INTAKE_URL at intake and the other four
   upstreams at ports nothing listens on (the bench calls only /api/intake/...; the
   console is waited for on /health/live, since its /health wants all five). The bench
   binds its own plain queue to intake.events (complaint_registered: intake publishes with
   mandatory=True) and registers --complaints complaints (default 50) at mall
   sh-xujiahui directly with POST /complaints, each with a different channel_ref and
   phone, then waits until every complaint_registered event has arrived, so that intake's
   outbox is empty before anything is timed.

2. The same reads, two ways: (a) directly to intake (the baseline), (b) through the
   console's /api/intake/<path>. Both as the mall's supervisor E3011 (a staff token signed
   with the run's SIGNING_KEY, bench/common.signed_in). Two requests:
     list   GET /complaints?mall_id=sh-xujiahui&per_page=20
     get    GET /complaints/<number>  (the registered numbers in turn)
   The bench keeps one keep-alive requests.Session per sender thread on both paths, as a
   browser would; so (b) differs from (a) by the console's work and its own call to
   intake.
   - Sequential: after --warmup unmeasured steps (default 10), --requests times (default
     400) each request on each path, one at a time from one thread over one session per
     path, interleaved (direct and console alternate, the order swapped on every step) so
     that a drift of the machine falls on both. Every console answer is compared byte for
     byte with the direct answer to the same request just before or after it (a
     difference is an error). Figures: latency p50/p99 per request and path. The console's
     own histogram mallcare_console_upstream_seconds (read from its /metrics before and
     after) gives the mean time its call to intake took, as the console saw it. The
     sockets in TIME_WAIT with intake's port at one end (/proc/net/tcp), counted before
     and after, show how many connections to intake were opened and closed: the bench's
     own stay open, so the rise is the console's.
   - Concurrent: --concurrency closed-loop senders (default 8; common.offer with no
     pacing), --requests of each request per path, in --blocks blocks per path and request
     (default 4), the blocks of the two paths alternating (direct first in even rounds,
     console first in odd ones). Figures: requests/s (200 answers over the blocks' wall
     time, first request sent -> last answer), latency p50/p99 under that load, and the
     CPU each process used per request (from /proc, over the blocks of each path). Each
     block's senders are new threads with new sessions (one new connection per sender
     and block on both paths).

Ratios console/direct: latency p50 and p99 (sequential and concurrent), requests/s.
Every answer must be 200 (anything else is an error; exit status 1).

The store is the embedded SecantusDB (`secantusd-py`) unless MONGO_URI is set, in which
case intake uses that server with a database named for this run (dropped at the end).
The CPU of the machine not started by this run is recorded for each phase ("other");
a run where it is well above 0 should be repeated. --timeout bounds the whole run
(default 300 s); everything the run starts is stopped at the end, also on error, Ctrl-C
or overrun. All traffic goes to 127.0.0.1.

    .venv/bin/python bench/console_bench.py [--complaints 50] [--requests 400] [--concurrency 8] [--ref HEAD]
"""

import argparse
import re
import sys
import threading
import time
from pathlib import Path

import requests

from mallcare_cli.examples import desk_complaint

from common import (
    HOST,
    REQUEST_TIMEOUT,
    CpuWindow,
    EventSubscriber,
    drop_databases,
    environment,
    free_port,
    ms_summary,
    offer,
    proc_cpu_s,
    ratio,
    rnd,
    run_bench,
    service_env,
    signed_in,
    start_service,
    start_store,
    store_info,
    write_result,
)

MALL = "sh-xujiahui"
STAFF = ("E3011", "supervisor", (MALL,))  # the mall's supervisor: complaint.read and .register
PATHS = ("direct", "console")
REGISTERED_WAIT = 60  # s for intake's complaint_registered events to arrive
UNPACED = 1e9  # offer()'s rate for a closed loop: no request waits for its slot


def requests_of(numbers):
    """The two reads, as path + query relative to intake; `get` takes the i-th number in turn."""
    return {
        "list": lambda i: f"/complaints?mall_id={MALL}&per_page=20",
        "get": lambda i: f"/complaints/{numbers[i % len(numbers)]}",
    }


# --- setup -------------------------------------------------------------------------------------


def start(ctx, store):
    children = ctx.children
    if ctx.mongo_uri:
        uri, store_proc = ctx.mongo_uri, None
    else:
        uri, store_proc = start_store(children, "intake", ctx.tmp)
    store.update(store_info(uri, embedded=not ctx.mongo_uri))
    db = f"bench_{ctx.run}_intake"
    env = service_env(
        ctx.amqp_uri,
        ctx.pythonpath,
        MONGO_URI=uri,
        INTAKE_MONGO_DATABASE=db,
        INTAKE_WEB_ADDRESS=f"{HOST}:{free_port()}",
    )
    intake_url, intake_proc = start_service(children, "intake", env)
    # the other four upstreams at ports nothing listens on: the bench never asks for them
    upstreams = {
        f"CONSOLE_{name.upper()}_URL": f"http://{HOST}:{free_port()}"
        for name in ("triage", "resolution", "feedback", "analytics")
    }
    env = service_env(
        ctx.amqp_uri,
        ctx.pythonpath,
        CONSOLE_WEB_ADDRESS=f"{HOST}:{free_port()}",
        CONSOLE_INTAKE_URL=intake_url,
        **upstreams,
    )
    console_url, console_proc = start_service(children, "console", env, health="/health/live")
    pids = {
        "intake": intake_proc.pid,
        "console": console_proc.pid,
        **({"store intake": store_proc.pid} if store_proc else {}),
    }
    return {"direct": intake_url, "console": console_url + "/api/intake"}, pids, uri, db


def register(ctx, urls, count, headers):
    """`count` complaints straight to intake; their numbers, once their events have arrived."""
    registered = EventSubscriber(ctx.amqp_uri, "intake.events", "complaint_registered", "bench.console.registered")
    registered.start()
    local = threading.local()
    try:

        def post(i):
            if not hasattr(local, "s"):
                local.s = requests.Session()
                local.s.headers.update(headers)
            body = desk_complaint(
                channel_ref=f"bench-console-{ctx.run}-{i:05d}",
                customer={"name": "王女士", "phone": f"139{i:08d}", "member_tier": "gold"},
            )
            r = local.s.post(urls["direct"] + "/complaints", json=body, timeout=REQUEST_TIMEOUT)
            ok = r.status_code == 201
            return {
                "ok": ok,
                "number": r.json().get("number") if ok else None,
                **({} if ok else {"error": f"{r.status_code} {r.text[:200]}"}),
            }

        rows, _ = offer(count, UNPACED, 4, post, 120)
        numbers = [r["number"] for r in rows if r["ok"]]
        failed = sorted({r.get("error", "")[:160] for r in rows if not r["ok"]})
        if failed or len(numbers) != count:
            raise RuntimeError(f"registering the complaints failed: {failed[:3]}")
        missing = registered.wait_for(numbers, time.monotonic() + REGISTERED_WAIT)
        if missing:
            raise RuntimeError(
                f"{len(missing)} complaint_registered events did not arrive "
                f"within {REGISTERED_WAIT} s (intake's outbox would be busy while timing)"
            )
        return numbers
    finally:
        registered.stop()


# --- helpers -----------------------------------------------------------------------------------


def upstream_histogram(console_base):
    """(sum, count) of the console's mallcare_console_upstream_seconds for intake, from its /metrics."""
    text = requests.get(console_base + "/metrics", timeout=REQUEST_TIMEOUT).text
    found = {}
    for part in ("sum", "count"):
        m = re.search(rf'^mallcare_console_upstream_seconds_{part}\{{upstream="intake"\}} (\S+)$', text, re.M)
        found[part] = float(m.group(1)) if m else 0.0
    return found["sum"], found["count"]


def time_wait_towards(port):
    """Sockets in TIME_WAIT (a TCP connection closed less than ~60 s ago) with <port> at either end."""
    count = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "06" and port in (int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)):
                    count += 1
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return count


def sessions(headers):
    """One keep-alive session per thread, with `headers` (the staff token)."""
    local = threading.local()

    def session():
        if not hasattr(local, "s"):
            local.s = requests.Session()
            local.s.headers.update(headers)
        return local.s

    return session


# --- 2a. sequential ----------------------------------------------------------------------------


def sequential(urls, reads, steps, session):
    times = {(kind, path): [] for kind in reads for path in PATHS}
    errors, mismatches = [], []
    for i in steps:
        for kind, make in reads.items():
            target = make(i)
            order = PATHS if i % 2 == 0 else PATHS[::-1]
            bodies = {}
            for path in order:
                t = time.perf_counter()
                r = session().get(urls[path] + target, timeout=REQUEST_TIMEOUT)
                elapsed = time.perf_counter() - t
                bodies[path] = r.content
                if r.status_code != 200:
                    errors.append(f"{path} {kind}: {r.status_code} {r.text[:120]}")
                else:
                    times[(kind, path)].append(elapsed)
            if bodies["direct"] != bodies["console"]:
                mismatches.append(f"{kind} {target}")
    return times, errors, mismatches


# --- 2b. concurrent ----------------------------------------------------------------------------


def concurrent(urls, reads, n, blocks, concurrency, pids, headers):
    session = sessions(headers)  # per sender thread; offer() starts new threads for each block
    rows = {(kind, path): [] for kind in reads for path in PATHS}
    walls = {key: [] for key in rows}
    cpu_s = {path: {name: 0.0 for name in pids} for path in PATHS}
    done = {path: 0 for path in PATHS}
    sizes = [n // blocks + (1 if b < n % blocks else 0) for b in range(blocks)]
    offset = 0
    for b, size in enumerate(sizes):
        for kind, make in reads.items():
            for path in PATHS if b % 2 == 0 else PATHS[::-1]:

                def send(i, path=path, make=make, offset=offset):
                    r = session().get(urls[path] + make(offset + i), timeout=REQUEST_TIMEOUT)
                    return {
                        "ok": r.status_code == 200,
                        "status": r.status_code,
                        **({} if r.status_code == 200 else {"error": f"{r.status_code} {r.text[:120]}"}),
                    }

                before = {name: proc_cpu_s(pid) for name, pid in pids.items()}
                block, _ = offer(size, UNPACED, concurrency, send, 120)
                after = {name: proc_cpu_s(pid) for name, pid in pids.items()}
                for name in pids:
                    if before[name] is not None and after[name] is not None:
                        cpu_s[path][name] += after[name] - before[name]
                done[path] += len(block)
                rows[(kind, path)].extend(block)
                if block:
                    walls[(kind, path)].append(max(r["end"] for r in block) - min(r["start"] for r in block))
        offset += size
    return rows, walls, cpu_s, done


# --- the run -----------------------------------------------------------------------------------


def _run(args, ctx):
    """One run in the frame run_bench set up (ctx); True when it finished with errors."""
    # the token is made here, in the main thread: signed_in imports mallcare_common.auth, and a
    # first import of nameko/eventlet from a sender thread leaves the thread pool unable to join
    headers = signed_in(*STAFF)
    store = {}
    urls, pids, uri, db = start(ctx, store)
    intake_port = int(urls["direct"].rsplit(":", 1)[1])
    console_base = urls["console"][: -len("/api/intake")]
    env = environment(
        store,
        ctx.loadavg,
        {
            "complaints": args.complaints,
            "requests": args.requests,
            "concurrency": args.concurrency,
            "blocks": args.blocks,
            "warmup": args.warmup,
            "staff": STAFF[0] + " " + STAFF[1],
        },
    )
    env["services"] = ctx.source
    try:
        t_reg = time.monotonic()
        numbers = register(ctx, urls, args.complaints, headers)
        register_s = time.monotonic() - t_reg
        reads = requests_of(numbers)
        print(
            f"registered {len(numbers)} complaints in {register_s:.1f} s; sequential: {args.requests} of each "
            f"request per path",
            file=sys.stderr,
        )

        session = sessions(headers)  # this thread's one keep-alive session on each path
        _, warm_errors, warm_mismatches = sequential(urls, reads, range(-args.warmup, 0), session)
        cpu = CpuWindow(pids)
        hist0 = upstream_histogram(console_base)
        tw0 = time_wait_towards(intake_port)
        cpu.start()
        seq_times, seq_errors, mismatches = sequential(urls, reads, range(args.requests), session)
        cpu_seq = cpu.stop()
        tw1 = time_wait_towards(intake_port)
        hist1 = upstream_histogram(console_base)
        upstream_calls = hist1[1] - hist0[1]
        seq_errors += warm_errors
        mismatches += warm_mismatches

        print(
            f"concurrent: {args.concurrency} senders, {args.requests} of each request per path in {args.blocks} blocks",
            file=sys.stderr,
        )
        cpu = CpuWindow(pids)
        cpu.start()
        rows, walls, cpu_s, done = concurrent(urls, reads, args.requests, args.blocks, args.concurrency, pids, headers)
        cpu_conc = cpu.stop()
    finally:
        if ctx.mongo_uri:
            drop_databases(ctx.mongo_uri, [db])

    sequential_result = {}
    for kind in reads:
        sequential_result[kind] = {path: ms_summary(seq_times[(kind, path)]) for path in PATHS}
    concurrent_result = {}
    conc_errors = []
    for kind in reads:
        per = {}
        for path in PATHS:
            block_rows = rows[(kind, path)]
            ok = [r for r in block_rows if r["ok"]]
            conc_errors += [r.get("error", "")[:160] for r in block_rows if not r["ok"]]
            wall = sum(walls[(kind, path)])
            per[path] = {
                "requests": len(block_rows),
                "ok": len(ok),
                "wall_s": rnd(wall, 2),
                "requests_per_s": rnd(len(ok) / wall if wall else None),
                "requests_per_s_by_block": [
                    rnd((sum(1 for r in chunk if r["ok"]) / w) if w else None)
                    for chunk, w in zip(_chunks(block_rows, args), walls[(kind, path)], strict=True)
                ],
                "latency": ms_summary([r["end"] - r["start"] for r in ok]),
            }
        concurrent_result[kind] = per
    cpu_per_request = {
        path: {name: rnd(1000 * s / done[path], 2) if done[path] else None for name, s in cpu_s[path].items()}
        for path in PATHS
    }
    ratios = {}
    for kind in reads:
        s, c = sequential_result[kind], concurrent_result[kind]
        ratios[kind] = {
            "sequential_p50": ratio(s["console"]["p50_ms"], s["direct"]["p50_ms"]),
            "sequential_p99": ratio(s["console"]["p99_ms"], s["direct"]["p99_ms"]),
            "concurrent_requests_per_s": ratio(c["console"]["requests_per_s"], c["direct"]["requests_per_s"]),
            "concurrent_p50": ratio(c["console"]["latency"]["p50_ms"], c["direct"]["latency"]["p50_ms"]),
            "concurrent_p99": ratio(c["console"]["latency"]["p99_ms"], c["direct"]["latency"]["p99_ms"]),
        }
    errors = len(seq_errors) + len(mismatches) + len(conc_errors)
    result = {
        "benchmark": "console",
        "environment": env,
        "setup": {"complaints_registered": len(numbers), "register_s": rnd(register_s, 2)},
        "sequential": sequential_result,
        "sequential_console_upstream": {
            "calls": int(upstream_calls),
            "mean_ms": rnd(1000 * (hist1[0] - hist0[0]) / upstream_calls if upstream_calls else None, 2),
            "what": "mallcare_console_upstream_seconds for intake: the console's call to intake "
            "(connect if it has no open connection, intake's work, reading the answer), as the console timed it",
        },
        "concurrent": concurrent_result,
        "cpu_ms_per_request_concurrent": cpu_per_request,
        "tcp_to_intake_sequential": {
            "time_wait_before": tw0,
            "time_wait_after": tw1,
            "closed_connections": tw1 - tw0 if tw0 is not None and tw1 is not None else None,
            "console_calls": int(upstream_calls),
            "what": "sockets in TIME_WAIT with intake's port at one end (/proc/net/tcp), before and after the "
            "sequential phase (its ~2 s sockets from setup are still there); the bench's own session "
            "to intake stays open, so the rise is the connections the console opened and closed",
        },
        "ratios_console_over_direct": ratios,
        "errors": errors,
        "error_samples": sorted(set(seq_errors + [f"differs from direct: {m}" for m in mismatches] + conc_errors))[:5],
        "cpu": {"sequential": cpu_seq, "concurrent": cpu_conc},
        "run_s": round(time.monotonic() - ctx.started, 1),
    }
    write_result(result, args.out, "console", table(result))
    return bool(errors)


def _chunks(block_rows, args):
    """The rows of one (request, path) split back into their blocks (offer() keeps each block's order)."""
    sizes = [args.requests // args.blocks + (1 if b < args.requests % args.blocks else 0) for b in range(args.blocks)]
    out, at = [], 0
    for size in sizes:
        out.append(block_rows[at : at + size])
        at += size
    return out


def table(result):
    s, c, r = result["sequential"], result["concurrent"], result["ratios_console_over_direct"]
    lines = [
        "| request | path | sequential p50 / p99 (ms) | concurrent requests/s | concurrent p50 / p99 (ms) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind in s:
        for path in PATHS:
            lines.append(
                f"| {kind} | {path} | {s[kind][path]['p50_ms']} / {s[kind][path]['p99_ms']} "
                f"| {c[kind][path]['requests_per_s']} | {c[kind][path]['latency']['p50_ms']} / "
                f"{c[kind][path]['latency']['p99_ms']} |"
            )
        lines.append(
            f"| {kind} | **console / direct** | {r[kind]['sequential_p50']} / {r[kind]['sequential_p99']} "
            f"| {r[kind]['concurrent_requests_per_s']} | {r[kind]['concurrent_p50']} / "
            f"{r[kind]['concurrent_p99']} |"
        )
    up = result["sequential_console_upstream"]
    cpu = result["cpu_ms_per_request_concurrent"]
    env = result["environment"]
    settings = env["settings"]
    lines += [
        "",
        f"console's call to intake (its own histogram, sequential): mean {up['mean_ms']} ms over {up['calls']} calls",
        "CPU ms per request (concurrent): "
        + "; ".join(f"{path}: " + ", ".join(f"{name} {v}" for name, v in cpu[path].items()) for path in PATHS),
        f"connections to intake closed during the sequential phase (TIME_WAIT): "
        f"{result['tcp_to_intake_sequential']['closed_connections']} for "
        f"{result['tcp_to_intake_sequential']['console_calls']} console calls",
        f"errors: {result['errors']} {result['error_samples'] or ''}",
        "",
        f"{settings['complaints']} complaints; {settings['requests']} of each request per path; "
        f"{settings['concurrency']} senders in {settings['blocks']} blocks; "
        f"store {env['store']['kind']} {env['store']['version']}; RabbitMQ {env['rabbitmq']['version']}; "
        f"Python {env['python']}; {env['cpu_count']} CPUs; {env['date']}; services from "
        f"{env['services']['source']} at {(env['services']['commit'] or '?')[:8]}"
        f"{' + uncommitted changes' if env['services']['uncommitted_changes'] else ''}",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--complaints", type=int, default=50, help="complaints registered first (default 50)")
    parser.add_argument(
        "--requests",
        type=int,
        default=400,
        help="requests of each kind per path, sequential and concurrent each (default 400)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders (default 8)")
    parser.add_argument(
        "--blocks",
        type=int,
        default=4,
        help="concurrent blocks per path and request, the paths alternating (default 4)",
    )
    parser.add_argument(
        "--warmup", type=int, default=10, help="uncounted sequential steps before the measured ones (default 10)"
    )
    parser.add_argument("--timeout", type=int, default=300, help="limit for the whole run in seconds (default 300)")
    parser.add_argument(
        "--ref",
        help="run the services from a clean export of this git commit instead of the "
        "working tree (e.g. HEAD, to leave uncommitted edits out)",
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/console-<time>.json)")
    args = parser.parse_args(argv)
    if not (
        1 <= args.complaints <= 1000
        and 1 <= args.requests <= 5000
        and 1 <= args.concurrency <= 32
        and 1 <= args.blocks <= min(20, args.requests)
        and 0 <= args.warmup <= 100
        and 10 <= args.timeout <= 1800
    ):
        parser.error(
            "keep --complaints 1..1000, --requests 1..5000, --concurrency 1..32, "
            "--blocks 1..min(20, --requests), --warmup 0..100, --timeout 10..1800"
        )
    return run_bench(lambda ctx: _run(args, ctx), args.ref, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
