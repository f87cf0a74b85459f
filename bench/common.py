"""What the benchmarks in bench/ share: the frame of a run (a fresh RabbitMQ vhost, child
processes in their own sessions, temporary data, cleanup on error, Ctrl-C, SIGTERM or an
overrun), the store and service processes, a subscriber that timestamps events, the load
generator, the statistics and the CPU accounting. Each benchmark script imports what it
needs from here (bench/ is the script's own directory, so `import common` finds this file).
All traffic goes to 127.0.0.1."""

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
from types import SimpleNamespace

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
AMQP_PORT = 5672
MGMT = f"http://{HOST}:15672/api"
MGMT_AUTH = ("guest", "guest")
START_TIMEOUT = 90  # s for a store / service / consumer to come up
REQUEST_TIMEOUT = 30  # s per HTTP request or publish


# --- the load -------------------------------------------------------------------------------


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
                rows[i] = {
                    "i": i,
                    "scheduled": scheduled,
                    "start": start,
                    "end": start,
                    "ok": False,
                    "error": "not sent: load deadline passed",
                }
                continue
            try:
                result = send(i)
                rows[i] = {"i": i, "scheduled": scheduled, "start": start, "end": time.time(), **result}
            except Exception as exc:  # counted, never fatal
                rows[i] = {
                    "i": i,
                    "scheduled": scheduled,
                    "start": start,
                    "end": time.time(),
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }

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
    return {
        "n": len(ms),
        "p50_ms": rnd(percentile(ms, 50)),
        "p99_ms": rnd(percentile(ms, 99)),
        "max_ms": rnd(max(ms) if ms else None),
        "mean_ms": rnd(sum(ms) / len(ms) if ms else None),
    }


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
    return {
        "target_per_s": rate,
        "achieved_per_s": rnd((len(rows) - 1) / span if span else None),
        "start_lag_p99_ms": rnd(percentile([x * 1000 for x in lag], 99)),
        "start_lag_max_ms": rnd(max(lag) * 1000 if lag else None),
    }


def rnd(x, nd=1):
    """round(), passing None through."""
    return None if x is None else round(x, nd)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


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
    times = _system_times()
    return times and (sum(times) - times[3] - times[4]) / CLK_TCK


def _system_times():
    """user nice system idle iowait irq softirq steal, in ticks, or None."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:9]]
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
        self._extra = {}

    def _sample(self):
        sample = {name: proc_cpu_s(pid) for name, pid in self.pids.items() if pid}
        sample["bench (load generator)"] = sum(os.times()[:2])
        sample["machine"] = system_busy_s()
        times = _system_times()
        # parts of "other" that no process is charged with: interrupts handled in softirq
        # (much of the loopback traffic) and time the hypervisor gave to another guest
        self._extra = {"of other: softirq": times[6] / CLK_TCK, "of other: steal": times[7] / CLK_TCK} if times else {}
        return time.monotonic(), sample

    def start(self):
        self.t0, self.s0 = self._sample()
        self.e0 = self._extra

    def stop(self):
        t1, s1 = self._sample()
        wall = t1 - self.t0
        used = {k: s1[k] - self.s0[k] for k in s1 if s1.get(k) is not None and self.s0.get(k) is not None}
        cores = {k: round(v / wall, 2) for k, v in used.items()}
        if "machine" in cores:
            cores["other (not started by this run)"] = round(
                cores["machine"] - sum(v for k, v in cores.items() if k != "machine"), 2
            )
            cores.update({k: round((v - self.e0[k]) / wall, 2) for k, v in self._extra.items() if k in self.e0})
        return {"window_s": round(wall, 2), "cores_busy": cores}


# --- processes and infrastructure ------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def git(*argv):
    return subprocess.run(
        ["git", "-C", str(ROOT), *argv], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()


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
    archive = subprocess.Popen(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "services", "deploy"], stdout=subprocess.PIPE
    )
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        tar.extractall(src, filter="data")
    if archive.wait(30) != 0:
        raise RuntimeError(f"git archive {commit} failed")
    # every service's package directory (and mallcare_common's), ahead of the editable installs
    path = os.pathsep.join(str(pkg) + os.sep for pkg in sorted((src / "services").iterdir()) if pkg.is_dir())
    return src, path, {"source": f"git archive of {ref}", "commit": commit, "uncommitted_changes": False}


class Children:
    """Child processes in their own sessions, stopped in reverse order of start."""

    def __init__(self, log_dir, cwd=ROOT):
        self.log_dir = log_dir
        self.cwd = cwd
        self.procs = []

    def start(self, name, argv, env=None):
        log = open(self.log_dir / f"{name}.log", "wb")
        proc = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
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


# A standalone store: pymongo then sends no retryable-write envelope, whose replies
# secantusd-py keeps 30 minutes and walks on every write (the write-rate cliff; bench/store_probe.py).
STORE_FLAGS = ("--standalone",)


def start_store(children, name, tmp, flags=STORE_FLAGS, port=None):
    """A fresh store process; with the `port` of one stopped before, a restart of it on its data."""
    data = tmp / f"store-{name}"
    data.mkdir(exist_ok=port is not None)
    port = port or free_port()
    proc = children.start(
        f"store-{name}",
        [
            str(BIN / "secantusd-py"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--storage-path",
            str(data),
            "--log-level",
            "WARNING",
            *flags,
        ],
    )
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
        return {
            "kind": "SecantusDB (embedded, secantusd-py)",
            "version": dist_version("SecantusDB"),
            "reported_server_version": build,
            "processes": "one per service / baseline",
        }
    return {"kind": "mongod (MONGO_URI)", "version": build, "uri_host": urllib.parse.urlparse(uri).hostname}


def drop_databases(uri, names):
    from pymongo import MongoClient

    with MongoClient(uri, serverSelectionTimeoutMS=3000) as client:
        for name in names:
            client.drop_database(name)


def dist_version(name):
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
    mgmt("PUT", f"/vhosts/{vhost}", json={"description": "mallcare benchmark (temporary)"})
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

    names = [
        q["name"] for q in mgmt("GET", f"/queues/{urllib.parse.quote(vhost, safe='')}") if name_contains in q["name"]
    ]
    with Connection(amqp_uri) as conn:
        return sum(conn.default_channel.queue_purge(name) or 0 for name in names)


def _fresh_secrets():
    """Fresh secrets and signing keys for each bench run (services refuse to start without
    them), and the JWKS file of the keys' public halves."""
    from mallcare_common.auth import new_secrets, write_jwks

    fresh, jwks = new_secrets()
    handle, path = tempfile.mkstemp(prefix="mallcare-bench-jwks-", suffix=".json")
    os.close(handle)
    write_jwks(path, jwks)
    return {f"MALLCARE_{name}": value for name, value in fresh.items()} | {"MALLCARE_JWKS": path}


SECRETS = _fresh_secrets()


def service_env(amqp_uri, pythonpath, **extra):
    """The environment the services run with: this one without the settings a run sets
    itself, the run's vhost, the shipped policy, the run's secrets, a public address for
    feedback's answer links (which no bench opens), and `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "AMQP_URI", "PYTHONPATH")}
    if pythonpath:  # ahead of the venv's editable installs of the working tree
        env["PYTHONPATH"] = pythonpath
    env.update(
        AMQP_URI=amqp_uri,
        MALLCARE_POLICY_DIR="deploy/policy",
        PYTHONUNBUFFERED="1",
        MALLCARE_PUBLIC_BASE_URL="https://service.example-mall.cn",
        **SECRETS,
        **extra,
    )
    return env


def signed_in(user="B0001", role="admin", malls=("*",)):
    """The Authorization header of a token the bench's services accept (older trees ignore it)."""
    from mallcare_common.auth import SigningKey, issue_token

    key = SigningKey(SECRETS["MALLCARE_SIGNING_KEY"])
    return {"Authorization": "Bearer " + issue_token(key, user, role, malls, dt.timedelta(days=1))}


def start_service(children, service, env, log_name=None, health="/health"):
    """`log_name` (default: the service's name) names the log, for a bench that starts a
    service more than once. `health` is the path that must answer 200 (the console's
    /health wants all five upstreams; /health/live when a bench starts fewer)."""
    web = env[f"{service.upper()}_WEB_ADDRESS"]
    log_name = log_name or service
    proc = children.start(
        log_name,
        [
            str(BIN / "nameko"),
            "run",
            "--config",
            f"services/{service}/config.yml",
            f"{service}.service:{service.capitalize()}Service",
        ],
        env=env,
    )

    def healthy():
        return requests.get(f"http://{web}{health}", timeout=2).status_code == 200

    wait_until(f"{service} {health}", healthy, START_TIMEOUT, proc, children, log_name)
    return f"http://{web}", proc


# --- a subscriber that timestamps events -----------------------------------------------------


class EventSubscriber:
    """The bench's own subscriber to one event type: a plain classic queue (not durable, so
    the extra hop costs the broker little) bound to the publishing service's topic exchange
    with the event type as routing key, declared before the load starts (mallcare publishes
    with mandatory=True: without a bound queue an event would wait in the outbox for the 2 s
    relay sweep), and consumed by a thread of this process. For each complaint_no it records
    this script's time.time() when the event arrived, the first time (a repeat is counted as
    a duplicate)."""

    def __init__(self, amqp_uri, exchange, event_type, queue_name):
        self.amqp_uri = amqp_uri
        self.exchange, self.event_type, self.queue_name = exchange, event_type, queue_name
        self.received = {}
        self.duplicates = 0
        self.error = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = None

    def queue(self):
        from kombu import Exchange, Queue

        exchange = Exchange(self.exchange, type="topic", durable=True)  # as nameko declares it
        return Queue(self.queue_name, exchange=exchange, routing_key=self.event_type, durable=False, auto_delete=False)

    def start(self):
        from kombu import Connection

        with Connection(self.amqp_uri) as conn:
            self.queue()(conn.default_channel).declare()
        self._thread = threading.Thread(target=self._consume, name=self.queue_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self.error:
            raise RuntimeError(f"subscriber to {self.exchange} did not start: {self.error}")

    def _on_message(self, body, message):
        now = time.time()
        if not isinstance(body, dict) or body.get("event_type") != self.event_type:
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


# --- the frame of a run, and its report ------------------------------------------------------


class Overrun(BaseException):
    """The run took longer than its overall time limit (a BaseException, so that no
    `except Exception` on the way swallows it)."""


def _interrupt(*_):
    raise KeyboardInterrupt("SIGTERM")


def _overrun(*_):
    raise Overrun()


def run_bench(body, ref=None, timeout=None):
    """Run body(ctx) in a fresh vhost with a temporary directory, and clean up whatever
    happens. ctx: run (an id), vhost, amqp_uri, tmp, log_dir, children (a Children),
    root/pythonpath/source (from source_tree(ref)), mongo_uri (MONGO_URI or None),
    loadavg (at the start), started (monotonic). body returns True when the run finished
    with errors. `timeout` (s) bounds the whole run (SIGALRM). Returns the exit status:
    0 all good, 1 finished with errors, 2 could not run or overran, 130 interrupted.
    On a failure the child processes' logs are kept (their path is printed), never the data."""
    ctx = SimpleNamespace(
        run=uuid.uuid4().hex[:8],
        loadavg=[round(x, 2) for x in os.getloadavg()],
        mongo_uri=os.environ.get("MONGO_URI"),
        started=time.monotonic(),
        tmp=Path(tempfile.mkdtemp(prefix="mallcare-bench-")),
    )
    ctx.vhost = f"mallcare-bench-{ctx.run}"
    ctx.log_dir = ctx.tmp / "logs"
    ctx.log_dir.mkdir()
    failed = True
    try:
        with ExitStack() as cleanup:
            cleanup.callback(delete_vhost, ctx.vhost)
            ctx.root, ctx.pythonpath, ctx.source = source_tree(ref, ctx.tmp)
            ctx.children = Children(ctx.log_dir, cwd=ctx.root)
            cleanup.callback(ctx.children.stop_all)
            signal.signal(signal.SIGTERM, _interrupt)
            if timeout:
                signal.signal(signal.SIGALRM, _overrun)
                signal.alarm(int(timeout))
                cleanup.callback(signal.alarm, 0)  # first thing on the way out: no alarm during cleanup
            ctx.amqp_uri = create_vhost(ctx.vhost)
            failed = bool(body(ctx))
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("interrupted; everything this run started has been stopped", file=sys.stderr)
        return 130
    except Overrun:
        print(
            f"benchmark failed: the run took longer than {timeout} s; everything it started has been stopped",
            file=sys.stderr,
        )
        return 2
    except (RuntimeError, OSError, subprocess.SubprocessError, requests.RequestException) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if failed:  # keep the logs, not the data
            for item in ctx.tmp.iterdir():
                if item != ctx.log_dir:
                    shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink()
            print(f"logs kept in {ctx.log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)


def environment(store, loadavg, settings):
    """Where a run ran: date, load at the start, store, broker, Python, machine, packages, settings."""
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
        "loadavg_at_start": loadavg,
        "store": store,
        "rabbitmq": rabbit,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "memory_gib": mem_gib,
        "packages": {p: dist_version(p) for p in ("nameko", "kombu", "amqp", "pymongo", "eventlet", "SecantusDB")},
        "settings": {
            **settings,
            "max_workers": os.environ.get("MAX_WORKERS", "10 (config default)"),
            "mongo_pool_size": os.environ.get("MONGO_POOL_SIZE", "2 (config default)"),
        },
    }


def write_result(result, out, name, text):
    """The JSON to `out` (default bench/results/<name>-<time>.json) and the table `text` to stdout."""
    out = out or RESULTS_DIR / f"{name}-{dt.datetime.now():%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(text)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"\nresults: {shown}  (run took {result['run_s']} s)")
