"""Intake throughput and latency: mallcare against a bare kombu + pymongo baseline.

One run, on one RabbitMQ broker (in one fresh vhost, created through the
management API and deleted at the end) and one kind of store, measures two things
at the same offered load (default: 600 messages at 40/s from 8 concurrent senders):

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

2. baseline. What the same guarantees cost with nothing else in the way: plain
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
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path

import requests

from intake.examples import desk_complaint

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
AMQP_PORT = 5672
MGMT = f"http://{HOST}:15672/api"
MGMT_AUTH = ("guest", "guest")
BASELINE_EXCHANGE = "bench.events"
BASELINE_QUEUE = "bench.baseline"
BASELINE_ROUTING_KEY = "complaint_registered"
TRIAGE_EXCHANGE = "triage.events"          # nameko's exchange for triage's events
TRIAGED_ROUTING_KEY = "complaint_triaged"
TRIAGED_QUEUE = "bench.triaged"           # the bench's own subscriber queue
START_TIMEOUT = 90          # s for a store / service / consumer to come up
REQUEST_TIMEOUT = 30        # s per HTTP request or publish
DRAIN_TIMEOUT = 90          # s after the last send for triage / the consumer to catch up
LOADAVG_AT_START = None


# --- the load -------------------------------------------------------------------------------

def unique_complaint(i, run):
    """The example complaint, made unique by channel_ref and phone so that neither
    idempotency nor duplicate detection short-cuts it."""
    return desk_complaint(channel_ref=f"bench-{run}-{i:06d}",
                          customer={"name": "王女士", "phone": f"139{i % 10**8:08d}", "member_id": "M001",
                                    "member_tier": "gold"})


def offer(count, rate, concurrency, send, deadline_s):
    """Call send(i) for i in range(count), request i started no earlier than t0 + i/rate,
    from `concurrency` threads. Returns (rows, t0): a row per request with its scheduled
    and actual start, end, and what send returned (or the exception as text)."""
    rows = [None] * count
    lock = threading.Lock()
    next_i = [0]
    t0 = time.time() + 0.2
    stop_at = t0 + deadline_s
    stop = threading.Event()  # set on Ctrl-C/error in the caller: senders finish their request and quit

    def worker():
        while not stop.is_set():
            with lock:
                i = next_i[0]
                if i >= count:
                    return
                next_i[0] += 1
            scheduled = t0 + i / rate
            wait = scheduled - time.time()
            if wait > 0 and stop.wait(wait):
                return
            start = time.time()
            if start > stop_at:
                rows[i] = {"i": i, "scheduled": scheduled, "start": start, "end": start, "ok": False,
                           "error": "not sent: load deadline passed"}
                continue
            try:
                result = send(i)
                rows[i] = {"i": i, "scheduled": scheduled, "start": start, "end": time.time(), **result}
            except Exception as exc:  # counted, never fatal
                rows[i] = {"i": i, "scheduled": scheduled, "start": start, "end": time.time(), "ok": False,
                           "error": f"{type(exc).__name__}: {exc}"[:300]}

    with ThreadPoolExecutor(concurrency) as pool:
        try:
            for f in [pool.submit(worker) for _ in range(concurrency)]:
                f.result()
        except BaseException:
            stop.set()
            raise
    return [r for r in rows if r is not None], t0


# --- statistics ------------------------------------------------------------------------------

def percentile(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))
    return ordered[k]


def ms_summary(seconds):
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50_ms": _r(percentile(ms, 50)), "p99_ms": _r(percentile(ms, 99)),
            "max_ms": _r(max(ms) if ms else None), "mean_ms": _r(sum(ms) / len(ms) if ms else None)}


def per_second(times, t0):
    """Events per whole second since t0 (to see a slowdown within the run)."""
    buckets = {}
    for t in times:
        k = int(t - t0)
        buckets[k] = buckets.get(k, 0) + 1
    return [buckets.get(k, 0) for k in range(max(buckets) + 1)] if buckets else []


def offered_summary(rows, rate):
    starts = [r["start"] for r in rows]
    lag = [r["start"] - r["scheduled"] for r in rows]
    span = max(starts) - min(starts) if len(starts) > 1 else 0
    return {"target_per_s": rate, "achieved_per_s": _r((len(rows) - 1) / span if span else None),
            "start_lag_p99_ms": _r(percentile([x * 1000 for x in lag], 99)),
            "start_lag_max_ms": _r(max(lag) * 1000 if lag else None)}


def _r(x, nd=1):
    return None if x is None else round(x, nd)


def parse_time(value):
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


# --- CPU accounting (what limits a figure) ----------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid):
    """User + system CPU seconds of one process so far (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def system_busy_s():
    """CPU seconds all cores spent not idle, so far (Linux /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        return (sum(values) - values[3] - values[4]) / CLK_TCK
    except (OSError, ValueError):
        return None


def rabbit_pid():
    try:
        return mgmt("GET", "/nodes")[0].get("os_pid")
    except Exception:
        return None


class CpuWindow:
    """CPU used by each named process, the broker, this script and the whole machine
    between start() and stop(); 'other' is what nobody here used (other load on the box)."""

    def __init__(self, pids):
        self.pids = dict(pids, rabbitmq=rabbit_pid())

    def _sample(self):
        sample = {name: proc_cpu_s(pid) for name, pid in self.pids.items() if pid}
        sample["bench (load generator)"] = sum(os.times()[:2])
        sample["machine"] = system_busy_s()
        return time.monotonic(), sample

    def start(self):
        self.t0, self.s0 = self._sample()

    def stop(self):
        t1, s1 = self._sample()
        wall = t1 - self.t0
        used = {k: s1[k] - self.s0[k] for k in s1 if s1.get(k) is not None and self.s0.get(k) is not None}
        cores = {k: round(v / wall, 2) for k, v in used.items()}
        if "machine" in cores:
            cores["other (not started by this run)"] = round(
                cores["machine"] - sum(v for k, v in cores.items() if k != "machine"), 2)
        return {"window_s": round(wall, 2), "cores_busy": cores}


# --- processes and infrastructure ------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def git(*argv):
    return subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True, timeout=30,
                          check=True).stdout.strip()


def source_tree(ref, tmp):
    """Where the services run from: the checkout itself, or (--ref) a clean export of
    that commit's services/ and deploy/ (so that edits in progress in the working tree
    do not end up in the figures). Returns (root, PYTHONPATH or None, description)."""
    if ref is None:
        try:
            head = git("rev-parse", "HEAD")
            dirty = bool(git("status", "--porcelain", "--", "services", "deploy"))
        except (OSError, subprocess.SubprocessError):
            head, dirty = None, None
        return ROOT, None, {"source": "working tree", "commit": head, "uncommitted_changes": dirty}
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    src = tmp / "src"
    src.mkdir()
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", "--format=tar", commit, "services", "deploy"],
                               stdout=subprocess.PIPE)
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        tar.extractall(src, filter="data")
    if archive.wait(30) != 0:
        raise RuntimeError(f"git archive {commit} failed")
    path = os.pathsep.join(str(src / "services" / pkg / "") for pkg in ("common", "intake", "triage"))
    return src, path, {"source": f"git archive of {ref}", "commit": commit, "uncommitted_changes": False}


class Children:
    """Child processes in their own sessions, stopped in reverse order of start."""

    def __init__(self, log_dir, cwd=ROOT):
        self.log_dir = log_dir
        self.cwd = cwd
        self.procs = []

    def start(self, name, argv, env=None):
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, proc, timeout=20):
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(10)

    def stop_all(self):
        for _, proc in reversed(self.procs):
            try:
                self.stop(proc)
            except Exception as exc:
                print(f"could not stop process {proc.pid}: {exc!r}", file=sys.stderr)

    def tail(self, name, lines=30):
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(proc, sig):
    try:
        os.killpg(proc.pid, sig)  # the child's own session, created by us (start_new_session)
    except ProcessLookupError:
        pass


def wait_until(what, check, timeout, proc=None, children=None, log_name=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    detail = children.tail(log_name) if children and log_name else ""
    state = f"exited with {proc.returncode}" if proc is not None and proc.poll() is not None else "timed out"
    raise RuntimeError(f"{what}: {state} (last error: {last!r})\n{detail}")


def start_store(children, name, tmp):
    data = tmp / f"store-{name}"
    data.mkdir()
    port = free_port()
    proc = children.start(f"store-{name}", [str(BIN / "secantusd-py"), "--host", HOST, "--port", str(port),
                                            "--storage-path", str(data), "--log-level", "WARNING"])
    uri = f"mongodb://{HOST}:{port}/"
    wait_until(f"store {name} (secantusd-py)", lambda: _ping(uri), START_TIMEOUT, proc, children, f"store-{name}")
    return uri, proc


def _ping(uri):
    from pymongo import MongoClient
    with MongoClient(uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500) as client:
        client.admin.command("ping")
        return True


def store_info(uri, embedded):
    from pymongo import MongoClient
    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        try:
            build = client.admin.command("buildInfo").get("version")
        except Exception:
            build = None
    if embedded:
        return {"kind": "SecantusDB (embedded, secantusd-py)", "version": _dist_version("SecantusDB"),
                "reported_server_version": build, "processes": "one per service / baseline"}
    return {"kind": "mongod (MONGO_URI)", "version": build, "uri_host": urllib.parse.urlparse(uri).hostname}


def _dist_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def mgmt(method, path, **kwargs):
    response = requests.request(method, MGMT + path, auth=MGMT_AUTH, timeout=10, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def create_vhost(name):
    vhost = urllib.parse.quote(name, safe="")
    mgmt("PUT", f"/vhosts/{vhost}", json={"description": "mallcare intake benchmark (temporary)"})
    mgmt("PUT", f"/permissions/{vhost}/guest", json={"configure": ".*", "write": ".*", "read": ".*"})
    return f"amqp://guest:guest@{HOST}:{AMQP_PORT}/{vhost}"


def delete_vhost(name):
    requests.delete(f"{MGMT}/vhosts/{urllib.parse.quote(name, safe='')}", auth=MGMT_AUTH, timeout=10)


def queue_consumers(vhost, name_contains):
    queues = mgmt("GET", f"/queues/{urllib.parse.quote(vhost, safe='')}")
    return sum(q.get("consumers", 0) for q in queues if name_contains in q["name"])


def purge_queues(amqp_uri, vhost, name_contains):
    """Empty the matching queues of the vhost; returns how many ready messages they held."""
    from kombu import Connection
    names = [q["name"] for q in mgmt("GET", f"/queues/{urllib.parse.quote(vhost, safe='')}")
             if name_contains in q["name"]]
    with Connection(amqp_uri) as conn:
        return sum(conn.default_channel.queue_purge(name) or 0 for name in names)


def start_service(children, service, env):
    web = env[f"{service.upper()}_WEB_ADDRESS"]
    proc = children.start(service, [str(BIN / "nameko"), "run", "--config", f"services/{service}/config.yml",
                                    f"{service}.service"], env=env)

    def healthy():
        return requests.get(f"http://{web}/health", timeout=2).status_code == 200

    wait_until(f"{service} /health", healthy, START_TIMEOUT, proc, children, service)
    return f"http://{web}", proc


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
    base_env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "AMQP_URI", "PYTHONPATH")}
    if pythonpath:  # ahead of the venv's editable installs of the working tree
        base_env["PYTHONPATH"] = pythonpath
    base_env.update(AMQP_URI=amqp_uri, MALLCARE_POLICY_DIR="deploy/policy", PYTHONUNBUFFERED="1",
                    MALLCARE_CUSTOMER_REF_SECRET="bench-not-secret")
    dbs = {s: f"bench_{run}_{s}" for s in ("intake", "triage")}
    procs = {}
    urls = {}
    for service in ("triage", "intake"):  # subscribers first: intake publishes with mandatory=True
        env = dict(base_env, MONGO_URI=uris[service], **{f"{service.upper()}_MONGO_DATABASE": dbs[service],
                                                         f"{service.upper()}_WEB_ADDRESS": f"{HOST}:{free_port()}"})
        urls[service], procs[service] = start_service(children, service, env)
        if service == "triage":
            wait_until("triage's event queue consumer",
                       lambda: queue_consumers(vhost, "handle_complaint_registered") >= 1,
                       START_TIMEOUT, procs[service], children, "triage")

    # the bench's own subscriber to complaint_triaged, bound before the first complaint is sent
    triaged = TriagedEvents(amqp_uri)
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
            _drop(mongo_uri, dbs.values())


def _offer_to_mallcare(args, run, vhost, urls, procs, stores, triaged, mongo_uri):
    local = threading.local()

    def session():
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    def post(i):
        r = session().post(urls["intake"] + "/complaints", json=unique_complaint(i, run), timeout=REQUEST_TIMEOUT)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        ok = r.status_code == 201 and body.get("status") == "registered"
        return {"ok": ok, "status": r.status_code, "number": body.get("number"),
                **({} if ok else {"error": f"{r.status_code} {r.text[:200]}"})}

    warmup = [post(10**6 + w).get("number") for w in range(args.warmup)]  # opens the pools; not counted
    triaged.wait_for([n for n in warmup if n], time.monotonic() + DRAIN_TIMEOUT)  # so none lands in the window

    print(f"mallcare: offering {args.count} complaints at {args.rate}/s from {args.concurrency} senders",
          file=sys.stderr)
    cpu = CpuWindow({"intake": procs["intake"].pid, "triage": procs["triage"].pid,
                     **{f"store {name}": proc.pid for name, proc in stores.items()}})
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
        "sent": len(rows), "accepted": len(accepted),
        "errors": len(http_errors) + len(not_triaged) + len(pending),
        "http_errors": len(http_errors),
        "error_samples": sorted({r.get("error", "")[:160] for r in http_errors})[:5],
        "wall_s": _r(wall, 2),
        "accepted_per_s": _r(len(accepted) / wall if wall else None),
        "http_latency": ms_summary([r["end"] - r["start"] for r in accepted]),
        "triaged_events": len(arrived), "not_triaged": len(not_triaged),
        "not_triaged_deadline_s": DRAIN_TIMEOUT, "backlog_purged_at_deadline": abandoned,
        "triaged_wall_s": _r(triaged_wall, 2),
        "triaged_per_s": _r(len(arrived) / triaged_wall if triaged_wall else None),
        "sent_to_triaged_event": ms_summary([arrived[r["number"]] - r["start"] for r in accepted
                                             if r["number"] in arrived]),
        "response_to_triaged_event": ms_summary([arrived[r["number"]] - r["end"] for r in accepted
                                                 if r["number"] in arrived]),
        "registered_to_triage": ms_summary(e2e),
        "reached_triage": len(seen), "missing_in_triage": len(pending),
        "duplicate_triaged_events": triaged.duplicates, "subscriber_error": triaged.error,
        "subscriber": f"plain classic queue {TRIAGED_QUEUE} bound to {TRIAGE_EXCHANGE} ({TRIAGED_ROUTING_KEY}), "
                      "consumed by a thread of this script without acks",
        "accepted_per_second_timeline": per_second([r["end"] for r in accepted], t0),
        "triaged_per_second_timeline": per_second(arrived.values(), t0),
        "stores": "own process per service" if not mongo_uri else "MONGO_URI, one database per service",
        "cpu": cpu_used,
        "cpu_while_sending": cpu_sending,
    }
    return result


class TriagedEvents:
    """The bench's subscriber to triage's complaint_triaged events: a plain classic queue
    (not durable, so the extra hop costs the broker little) bound to triage.events, declared
    before the first complaint is sent (triage publishes with mandatory=True: without a bound
    queue an event would wait in its outbox for the 2 s relay sweep), and consumed by a thread
    of this process. For each complaint_no it records this script's time.time() when the event
    arrived, the first time (a repeat is counted as a duplicate)."""

    def __init__(self, amqp_uri):
        self.amqp_uri = amqp_uri
        self.received = {}
        self.duplicates = 0
        self.error = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = None

    @staticmethod
    def queue():
        from kombu import Exchange, Queue
        exchange = Exchange(TRIAGE_EXCHANGE, type="topic", durable=True)  # as nameko declares it
        return Queue(TRIAGED_QUEUE, exchange=exchange, routing_key=TRIAGED_ROUTING_KEY, durable=False,
                     auto_delete=False)

    def start(self):
        from kombu import Connection
        with Connection(self.amqp_uri) as conn:
            self.queue()(conn.default_channel).declare()
        self._thread = threading.Thread(target=self._consume, name="triaged-events", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self.error:
            raise RuntimeError(f"subscriber to {TRIAGE_EXCHANGE} did not start: {self.error}")

    def _on_message(self, body, message):
        now = time.time()
        if not isinstance(body, dict) or body.get("event_type") != TRIAGED_ROUTING_KEY:
            return
        number = body.get("complaint_no")
        if not number:
            return
        if number in self.received:
            self.duplicates += 1
        else:
            self.received[number] = now

    def _consume(self):
        from kombu import Connection
        try:
            with Connection(self.amqp_uri) as conn:
                with conn.Consumer(self.queue(), callbacks=[self._on_message], accept=["json"], no_ack=True):
                    self._ready.set()
                    while not self._stop.is_set():
                        try:
                            conn.drain_events(timeout=0.5)
                        except socket.timeout:
                            pass
        except Exception as exc:
            if not self._stop.is_set():
                self.error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            self._ready.set()

    def wait_for(self, numbers, deadline):
        """Wait until every number has its event, or the deadline (monotonic); returns those without."""
        missing = [n for n in numbers if n not in self.received]
        while missing and time.monotonic() < deadline and not self.error:
            time.sleep(0.05)
            missing = [n for n in missing if n not in self.received]
        return missing

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def _drop(uri, names):
    from pymongo import MongoClient
    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        for name in names:
            client.drop_database(name)


# --- 2. baseline -----------------------------------------------------------------------------

def baseline_entities():
    from kombu import Exchange, Queue
    exchange = Exchange(BASELINE_EXCHANGE, type="topic", durable=True)
    queue = Queue(BASELINE_QUEUE, exchange=exchange, routing_key=BASELINE_ROUTING_KEY, durable=True,
                  queue_arguments={"x-queue-type": "quorum"})
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
    spec = {"amqp_uri": amqp_uri, "mongo_uri": uri, "db": db_name, "count": total,
            "timeout": args.count / args.rate + 120 + DRAIN_TIMEOUT, "out": str(out)}
    consumer = children.start("baseline-consumer", [sys.executable, str(Path(__file__).resolve()),
                                                    "_consume", json.dumps(spec)])
    wait_until("baseline consumer", lambda: queue_consumers(vhost, BASELINE_QUEUE) >= 1,
               START_TIMEOUT, consumer, children, "baseline-consumer")

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
        producer().publish(body, exchange=exchange, routing_key=BASELINE_ROUTING_KEY, delivery_mode=2,
                           mandatory=True, retry=False, timeout=REQUEST_TIMEOUT)
        return {"ok": True, "sent_at": body["sent_at"]}

    cpu = CpuWindow({"consumer": consumer.pid, **({"store baseline": store_proc.pid} if store_proc else {})})
    try:
        for w in range(args.warmup):
            publish(10**6 + w)
        cpu.start()
        print(f"baseline: publishing {args.count} messages at {args.rate}/s from {args.concurrency} senders",
              file=sys.stderr)
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
        "sent": len(rows), "published": len(published), "stored": len(e2e), "stored_in_store": in_store,
        "errors": len(errors) + (len(published) - len(e2e)),
        "error_samples": sorted({r.get("error", "")[:160] for r in errors} | (
            {stored["error"]} if stored.get("error") else set()))[:5],
        "wall_s": _r(last - t0, 2) if last else None,
        "msgs_per_s": _r(len(e2e) / (last - t0) if last else None),
        "publish_confirm_latency": ms_summary([r["end"] - r["start"] for r in published]),
        "publish_to_stored": ms_summary(e2e),
        "publish_to_consumed": ms_summary([by_seq[r["i"]]["received_at"] - by_seq[r["i"]]["sent_at"]
                                           for r in published if r["i"] in by_seq]),
        "stored_per_second_timeline": per_second([by_seq[r["i"]]["stored_at"] for r in published
                                                  if r["i"] in by_seq], t0),
        "cpu": cpu_used,
        "queue": "durable quorum queue via a durable topic exchange",
        "write_concern": "w=1, j=True",
    }
    if store_proc is not None:
        children.stop(store_proc)
    elif mongo_uri:
        _drop(mongo_uri, [db_name])
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
        coll.insert_one({"_id": body["seq"], "sent_at": body["sent_at"], "received_at": received,
                         "payload": body["payload"]})
        records.append({"seq": body["seq"], "sent_at": body["sent_at"], "received_at": received,
                        "stored_at": time.time()})
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

def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def environment(args, store):
    try:
        overview = mgmt("GET", "/overview")
        rabbit = {"version": overview.get("rabbitmq_version"), "erlang": overview.get("erlang_version")}
    except Exception as exc:
        rabbit = {"version": None, "error": repr(exc)}
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_at_start": LOADAVG_AT_START,
        "store": store, "rabbitmq": rabbit,
        "python": platform.python_version(), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "memory_gib": mem_gib,
        "packages": {p: _dist_version(p) for p in ("nameko", "kombu", "amqp", "pymongo", "eventlet", "SecantusDB")},
        "settings": {"count": args.count, "rate": args.rate, "concurrency": args.concurrency,
                     "warmup": args.warmup, "max_workers": os.environ.get("MAX_WORKERS", "10 (config default)"),
                     "mongo_pool_size": os.environ.get("MONGO_POOL_SIZE", "2 (config default)")},
    }


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
    env = result["environment"]
    lines.append("")
    settings = env["settings"]
    lines.append(f"{settings['count']} at {settings['rate']}/s, {settings['concurrency']} senders; "
                 f"store {env['store']['kind']} {env['store']['version']}; RabbitMQ {env['rabbitmq']['version']}; "
                 f"Python {env['python']}; {env['cpu_count']} CPUs; {env['date']}; services from "
                 f"{env['services']['source']} at {(env['services']['commit'] or '?')[:8]}"
                 f"{' + uncommitted changes' if env['services']['uncommitted_changes'] else ''}")
    return "\n".join(lines)


def _interrupt(*_):
    raise KeyboardInterrupt("SIGTERM")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=600, help="messages per side (default 600)")
    parser.add_argument("--rate", type=float, default=40.0, help="offered rate per second (default 40)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent senders (default 8)")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted warm-up messages per side (default 5)")
    parser.add_argument("--ref", help="run the services from a clean export of this git commit instead of the "
                        "working tree (e.g. HEAD, to leave uncommitted edits out)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/intake-<time>.json)")
    args = parser.parse_args(argv)
    if not (0 < args.count <= 20000 and 0 < args.rate <= 5000 and 0 < args.concurrency <= 64
            and 0 <= args.warmup <= 100):
        parser.error("keep --count 1..20000, --rate 0..5000, --concurrency 1..64, --warmup 0..100")

    global LOADAVG_AT_START
    LOADAVG_AT_START = [round(x, 2) for x in os.getloadavg()]
    mongo_uri = os.environ.get("MONGO_URI")
    run = uuid.uuid4().hex[:8]
    vhost = f"mallcare-bench-{run}"
    tmp = Path(tempfile.mkdtemp(prefix="mallcare-bench-"))
    log_dir = tmp / "logs"
    log_dir.mkdir()
    outcome = {"failed": True}
    try:
        return _run(args, mongo_uri, run, vhost, tmp, log_dir, outcome)
    except KeyboardInterrupt:
        print("interrupted; everything this run started has been stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.SubprocessError, requests.RequestException) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if outcome["failed"]:  # keep the logs, not the data
            for item in tmp.iterdir():
                if item != log_dir:
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink()
            print(f"logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args, mongo_uri, run, vhost, tmp, log_dir, outcome):
    started = time.monotonic()
    with ExitStack() as cleanup:
        cleanup.callback(delete_vhost, vhost)
        root, pythonpath, source = source_tree(args.ref, tmp)
        children = Children(log_dir, cwd=root)
        cleanup.callback(children.stop_all)
        signal.signal(signal.SIGTERM, _interrupt)

        amqp_uri = create_vhost(vhost)
        store = {}  # filled in by run_mallcare from the first store it talks to
        mallcare = run_mallcare(args, children, tmp, amqp_uri, vhost, run, mongo_uri, store, pythonpath)
        env = environment(args, store)
        env["services"] = source
        baseline = run_baseline(args, children, tmp, amqp_uri, vhost, run, mongo_uri)
        result = {
            "benchmark": "intake", "environment": env, "mallcare": mallcare, "baseline": baseline,
            "ratios": {
                "throughput": ratio(mallcare["triaged_per_s"], baseline["msgs_per_s"]),
                "accepted_throughput": ratio(mallcare["accepted_per_s"], baseline["msgs_per_s"]),
                "e2e_p50": ratio(mallcare["sent_to_triaged_event"]["p50_ms"],
                                 baseline["publish_to_stored"]["p50_ms"]),
                "e2e_p99": ratio(mallcare["sent_to_triaged_event"]["p99_ms"],
                                 baseline["publish_to_stored"]["p99_ms"]),
                "registered_to_triage_p50": ratio(mallcare["registered_to_triage"]["p50_ms"],
                                                  baseline["publish_to_stored"]["p50_ms"]),
                "registered_to_triage_p99": ratio(mallcare["registered_to_triage"]["p99_ms"],
                                                  baseline["publish_to_stored"]["p99_ms"]),
                "sender_p50": ratio(mallcare["http_latency"]["p50_ms"], baseline["publish_confirm_latency"]["p50_ms"]),
                "sender_p99": ratio(mallcare["http_latency"]["p99_ms"], baseline["publish_confirm_latency"]["p99_ms"]),
            },
            "run_s": None,
        }
        result["run_s"] = round(time.monotonic() - started, 1)
        out = args.out or RESULTS_DIR / f"intake-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(table(result))
        shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
        print(f"\nresults: {shown}  (run took {result['run_s']} s)")
        outcome["failed"] = bool(mallcare["errors"] or baseline["errors"])
    return 1 if outcome["failed"] else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_consume":
        consume(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
