"""Retention on the store: how long intake's anonymisation takes (issue 7).

Loads `--count` complaints whose case closed 25 months ago and `--recent` closed a
month ago (built by intake's own rules, outbox included) into a fresh embedded
store process (or MONGO_URI), then times, through the same function the command,
the endpoint and the hourly sweep call (mallcare_common.retention.run):

1. a dry run (counts only),
2. the run that anonymises them,
3. a repeated run (nothing left to do).

    .venv/bin/python bench/retention_bench.py [--count 2000] [--recent 500]

Not asserted anywhere; the figures go to docs/benchmarks.md with the machine and store.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient, WriteConcern

from common import BIN, HOST, STORE_FLAGS, _ping, dist_version, free_port, wait_until  # bench/common.py

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "services" / name) for name in ("intake", "common", "cli")]

from intake import retention as intake_retention  # noqa: E402
from intake import rules  # noqa: E402
from intake.policy import load_policy  # noqa: E402
from intake.storage import Complaints  # noqa: E402
from mallcare_cli.examples import desk_complaint  # noqa: E402
from mallcare_common import retention  # noqa: E402
from mallcare_common.calendar import utc_now  # noqa: E402
from mallcare_common.messaging import new_outbox  # noqa: E402
from mallcare_common.policy import load_policy_dir  # noqa: E402


def complaints(policy, count, closed_at, start):
    for i in range(start, start + count):
        body = desk_complaint(
            channel_ref=f"bench-{i}",
            received_at=closed_at,
            customer={"name": "王女士", "phone": f"138{i:08d}", "email": f"c{i}@example.com"},
            description=f"草莓发霉了，请回电138{i:08d}",
        )
        doc, event = rules.new_complaint(
            f"SHXJH-BENCH-{i:06d}", body, policy=policy, ref=f"ref{i}", fp=None, rejection=None, now=closed_at
        )
        yield {
            **doc,
            **new_outbox(event, closed_at),
            "pending_events": [],
            "case_state": "closed",
            "case_state_at": closed_at,
            "closed_at": closed_at,
        }


def timed(db, now, dry_run):
    started = time.monotonic()
    record = retention.run(db, "intake", intake_retention.anonymise, now=now, months=24, dry_run=dry_run, by="bench")
    return {
        "seconds": round(time.monotonic() - started, 2),
        "candidates": record["candidates"],
        "anonymised": record["anonymised"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--recent", type=int, default=500)
    args = parser.parse_args()
    policy = load_policy_dir(ROOT / "deploy" / "policy", "intake.yml", load_policy)
    tmp, server = Path(tempfile.mkdtemp(prefix="retention-bench-")), None
    uri = os.environ.get("MONGO_URI")
    try:
        if not uri:
            port = free_port()
            server = subprocess.Popen(
                [
                    str(BIN / "secantusd-py"),
                    "--host",
                    HOST,
                    "--port",
                    str(port),
                    "--storage-path",
                    str(tmp),
                    "--log-level",
                    "WARNING",
                    *STORE_FLAGS,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            uri = f"mongodb://{HOST}:{port}/"
            wait_until("store (secantusd-py)", lambda: _ping(uri), 90, server)
        client = MongoClient(uri, tz_aware=True, maxPoolSize=2)
        db = client.get_database("retention_bench", write_concern=WriteConcern(w=1, j=True))
        client.drop_database("retention_bench")
        Complaints().indexes(db)
        now = utc_now()
        started = time.monotonic()
        docs = [
            *complaints(policy, args.count, retention.months_before(now, 25), 0),
            *complaints(policy, args.recent, retention.months_before(now, 1), args.count),
        ]
        for at in range(0, len(docs), 500):
            db.complaints.insert_many(docs[at : at + 500])
        loaded = round(time.monotonic() - started, 2)
        result = {"dry_run": timed(db, now, True), "run": timed(db, now, False), "repeated": timed(db, now, False)}
        assert db.complaints.count_documents({"anonymised_at": {"$ne": None}}) == args.count
        client.drop_database("retention_bench")
        client.close()
        print(
            json.dumps(
                {
                    "complaints": {
                        "closed_25_months_ago": args.count,
                        "closed_1_month_ago": args.recent,
                        "load_seconds": loaded,
                    },
                    **result,
                    "machine": {
                        "cpus": os.cpu_count(),
                        "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(),
                    },
                    "store": ("MONGO_URI " + uri)
                    if server is None
                    else f"SecantusDB {dist_version('SecantusDB')} (embedded secantusd-py, one fresh process)",
                },
                indent=2,
            )
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
