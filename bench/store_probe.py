"""Store probe: the embedded store's write-rate cliff and the cost of find_one_and_update,
on fresh `secantusd-py` processes started with and without the options under test.

For each variant (how the store is started, and the client's URI options) it measures, each
section on its own fresh store process, every write journaled (w=1, j=True), as writes/s and
as the store process's CPU ms per write (which other load on the machine disturbs less):
1. writes/s for each 1,000 of `--updates` update_one on `_id` (100 small documents); then,
   on the same process, a 400-write loop (200 insert_one, 200 update_one on `_id`) in a
   database of its own, timed before those updates and again after them plus `--inserts`
   more inserts elsewhere: what a long test session does to the tests at its end;
2. ms per update_one, per find_one_and_update (new document returned) and per update_one
   followed by find_one, on `_id` alone, against collections of `--sizes` documents (loaded
   with insert_many);
3. inserts/s for each 1,000 of `--inserts` insert_one, from 1 connection and from 3.

Why (secantus 0.7.0b3, read and profiled): pymongo sends a retryable write (lsid +
txnNumber) to a replica-set primary, which is what `secantusd-py` advertises unless
`--standalone`; the server keeps each one's reply for 30 minutes and walks them all on every
write (transactions.py `_prune_retryable_locked`), sorting them all once there are more than
10,000. find_one_and_update writes with the filter {_id, $and: [query]}, which no index serves
(storage.py `_try_index_id_keys` gives up on a `$` key), so it reads the whole collection.

Usage: .venv/bin/python bench/store_probe.py [--variants default,standalone,noretry]
Bounded: 1 to 5 minutes a variant on the 2-core VM (default is the slow one, and other
work on the machine slows it). Prints the figures; no file is written."""

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from pymongo import MongoClient, ReturnDocument, WriteConcern

from common import Children, proc_cpu_s, start_store

JOURNALED = WriteConcern(w=1, j=True)
VARIANTS = {  # name: (secantusd-py flags, URI options)
    "default": ((), ""),  # how the project started its stores until this probe
    "standalone": (("--standalone",), ""),
    "noretry": ((), "retryWrites=false"),
}


def journaled(client, db, coll):
    return client[db].get_collection(coll, write_concern=JOURNALED)


class Meter:
    """Wall time and the store process's CPU time since the last reading."""

    def __init__(self, pid):
        self.pid = pid
        self.reset()

    def reset(self):
        self.wall, self.cpu = time.perf_counter(), proc_cpu_s(self.pid)

    def read(self, writes):
        """(writes/s, store CPU ms per write) since the last reading."""
        wall, cpu = time.perf_counter(), proc_cpu_s(self.pid)
        out = (round(writes / (wall - self.wall)), round((cpu - self.cpu) * 1000 / writes, 2))
        self.wall, self.cpu = wall, cpu
        return out


def per_thousand(meter, count, write):
    """write(i) for i in range(count); (writes/s, CPU ms/write) of each 1,000."""
    rows = []
    meter.reset()
    for i in range(count):
        write(i)
        if (i + 1) % 1000 == 0:
            rows.append(meter.read(1000))
    return rows


def suite_loop(meter, client, db):
    """What a test does: a few inserts and updates in its own database."""
    coll = journaled(client, db, "docs")
    meter.reset()
    for i in range(200):
        coll.insert_one({"_id": i, "n": 0})
    for i in range(200):
        coll.update_one({"_id": i}, {"$inc": {"n": 1}})
    return meter.read(400)


def cliff(meter, client, updates, inserts):
    before = suite_loop(meter, client, "suite_first")
    coll = journaled(client, "probe", "updates")
    coll.insert_many([{"_id": i, "n": 0} for i in range(100)])
    rates = per_thousand(meter, updates, lambda i: coll.update_one({"_id": i % 100}, {"$inc": {"n": 1}}))
    other = journaled(client, "other", "docs")
    per_thousand(meter, inserts, lambda i: other.insert_one({"_id": i}))
    return rates, before, suite_loop(meter, client, "suite_last")


CALLS = (  # name, call(collection, _id)
    ("update_one", lambda coll, k: coll.update_one({"_id": k}, {"$inc": {"n": 1}})),
    (
        "find_one_and_update",
        lambda coll, k: coll.find_one_and_update({"_id": k}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER),
    ),
    (  # the same result in two calls, not atomic: a write in between shows in the read
        "update_one + find_one",
        lambda coll, k: coll.update_one({"_id": k}, {"$inc": {"n": 1}}) and coll.find_one({"_id": k}),
    ),
)


def cost_by_size(meter, client, sizes, calls=200):
    rows = []
    for size in sizes:
        coll = journaled(client, "probe", f"size{size}")
        coll.insert_many([{"_id": f"k{i}", "n": 0, "pad": "x" * 200} for i in range(size)])
        keys = [f"k{(i * 7) % size}" for i in range(calls)]
        row = {"documents": size}
        for name, call in CALLS:
            meter.reset()
            for k in keys:
                call(coll, k)
            per_s, cpu_ms = meter.read(calls)
            row[name] = (round(1000 / per_s, 2), cpu_ms)
        rows.append(row)
    return rows


def concurrent_inserts(meter, uri, inserts, connections):
    """insert_one from `connections` clients (one socket each) at once; (inserts/s, CPU
    ms/insert) per 1,000."""
    clients = [MongoClient(uri, maxPoolSize=1) for _ in range(connections)]
    done, rows, lock = [0], [], threading.Lock()

    def run(client, offset):
        coll = journaled(client, "probe", "inserts")
        for i in range(offset, inserts, connections):
            coll.insert_one({"_id": i})
            with lock:
                done[0] += 1
                if done[0] % 1000 == 0:
                    rows.append(meter.read(1000))

    meter.reset()
    threads = [threading.Thread(target=run, args=(c, n)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return rows


def variant(children, tmp, name, args):
    flags, options = VARIANTS[name]

    def store(section):
        uri, proc = start_store(children, f"{name}-{section}", tmp, flags=flags)
        return Meter(proc.pid), uri + (f"?{options}" if options else "")

    out = {}
    meter, uri = store("cliff")
    with MongoClient(uri) as client:
        out["updates"], out["suite_before"], out["suite_after"] = cliff(meter, client, args.updates, args.inserts)
    meter, uri = store("size")
    with MongoClient(uri) as client:
        out["by_size"] = cost_by_size(meter, client, args.sizes)
    for connections in (1, 3):
        out[f"inserts_{connections}"] = concurrent_inserts(*store(f"ins{connections}"), args.inserts, connections)
    children.stop_all()
    children.procs.clear()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="default,standalone", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--updates", type=int, default=15000)
    parser.add_argument("--inserts", type=int, default=5000)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[500, 3000])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mallcare-store-probe-"))
    children = Children(tmp)
    started = time.monotonic()
    try:
        for name in args.variants.split(","):
            flags, options = VARIANTS[name]
            out = variant(children, tmp, name, args)
            print(f"\n== {name}: secantusd-py {' '.join(flags) or '(no option)'}, URI {options or '(no option)'}")
            print("(writes/s, store CPU ms per write) for each 1,000")
            print(f"update_one:                 {out['updates']}")
            print(f"insert_one, 1 connection:   {out['inserts_1']}")
            print(f"insert_one, 3 connections:  {out['inserts_3']}")
            print(
                f"a test's 400 writes: {out['suite_before']} on the fresh store, "
                f"{out['suite_after']} after {args.updates + args.inserts + 500} writes elsewhere"
            )
            print("(ms per call, store CPU ms per call)")
            for row in out["by_size"]:
                print(
                    f"{row['documents']:>6} documents: update_one {row['update_one']}, "
                    f"find_one_and_update {row['find_one_and_update']}, "
                    f"update_one + find_one {row['update_one + find_one']}"
                )
            sys.stdout.flush()
    finally:
        children.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nrun took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
