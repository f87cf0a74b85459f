"""Analytics: the monthly and quarterly report over 1,000,000 stored complaints, against
scanning the complaints.

One run, on one store process (the embedded SecantusDB, `secantusd-py`, with its own
temporary data directory) and one fresh RabbitMQ vhost:

1. Data. --complaints N (default 1,000,000) complaints over 3 malls (sh-xujiahui,
   bj-chaoyang, gz-tianhe) received in one quarter (2026-10-01..2026-12-31, mall time),
   drawn with a seeded RNG (--seed): channel, category (the taxonomy of
   deploy/policy/triage.yml), area, merchant (40 per mall; about 60% of complaints name
   one), risk (about 80% low, 15% medium, 5% high), department and owner (as triage
   routes them, from the roster), corrections and reassignments, rejections, resolution
   time (longer for the quarter's last days: some still open), reopenings, SLA clocks
   met or breached, satisfaction answers with reasons, escalations and director
   approvals for a share of the high-risk ones. For each complaint a minimal sequence of
   events, plain dicts in the shape `read_event` returns (datetimes as datetimes), is
   folded into its read-model document with the service's own `reports.apply` and
   `reports.apply_clock` (in the order the service would see them), and what the final
   document adds to the tallies (`reports.contributions`) is summed in memory: the same
   figures the service's `$inc`s reach, since `delta` telescopes. The documents go to
   the analytics database's `complaints` (with `v`, the number of changes, as
   storage.py keeps it) by insert_many, the summed tallies to `report_tallies` (`_id`
   `<period>|<mall>`, `period`, `mall_id`, `counts` nested by the dotted paths), and the
   stored tallies are read back through `storage.EventLog.tallies_of` and checked.
   Generating and loading are timed; they are not part of the figures.
   The data is loaded in two steps: the first N/10 complaints (a uniform sample: the
   order of generation is not the order of time), measured, then the rest, measured
   again. So the run also shows the report time at N/10 against N (--no-tenth: only N).

2. mallcare. Analytics from HEAD (`git archive`, --ref) as an OS process, started the way
   an operator starts it (`nameko run --config services/analytics/config.yml
   analytics.service`), MONGO_URI at that store and ANALYTICS_MONGO_DATABASE the filled
   database, on the run's vhost. Timed over HTTP from this script (one keep-alive
   session, one request at a time): GET /reports/monthly?period=2026-11 for the chain and
   each mall, /reports/quarterly?period=2026-Q4 for the chain and sh-xujiahui, and the
   .html variants of the same six, each --warmup times unmeasured (default 2) then
   --repeat times (default 20): p50/p99 per report. Every JSON report's
   counts.received is checked against the generated count (a mismatch is an error).

3. baseline. The naive way on the same store and database: the report computed from the
   complaints themselves, one aggregation per section. Only two sections, so the
   baseline does far less than the report: counts by category ($match month [and mall],
   registered; $group category) and the handling time average ($match ..., resolved_at
   set; $group $avg of resolved_at - received_at). For the month 2026-11 and the quarter
   2026-Q4, the chain and sh-xujiahui, --baseline-runs times each (default 3; fewer
   when a scope's runs pass --baseline-budget seconds). Before it, indexes on (month,
   mall_id) and (quarter, mall_id) are built (their build time is recorded), the
   baseline's best case on a store that uses an index only when it holds every field a
   query names. Each aggregation's result is checked against the generated counts.

Ratios: mallcare report p50 / baseline p50 (both sections together) per scope.

CPU per process (analytics, its store, this script, machine, "other") is recorded for
the report phase and the baseline. Other benchmarks running (`pgrep -f
bench/.*_bench.py`) and the load average at the start are recorded; a run with either
should be repeated. --timeout bounds the whole run (default 2700 s); the store process,
the service, the vhost and the temporary directory (about 2.5 GB at 1M) are removed at
the end, also on error, Ctrl-C or overrun.

    .venv/bin/python bench/report_bench.py --ref HEAD [--complaints 1000000] [--repeat 20]
"""

import argparse
import datetime as dt
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from analytics import reports
from analytics.storage import EventLog
from mallcare_common.malls import load_registry_file

from common import (
    HOST,
    signed_in,
    REQUEST_TIMEOUT,
    ROOT,
    CpuWindow,
    environment,
    free_port,
    ms_summary,
    ratio,
    rnd,
    run_bench,
    service_env,
    start_service,
    start_store,
    store_info,
    write_result,
)

DB = "analytics_report_bench"
MALLS = {"sh-xujiahui": 0.45, "bj-chaoyang": 0.35, "gz-tianhe": 0.20}
MONTH, QUARTER = "2026-11", "2026-Q4"
Q_START = dt.date(2026, 10, 1)
Q_DAYS = 92
MERCHANTS_PER_MALL = 40
BATCH = 10_000
CHANNELS = {
    "desk": 25,
    "hotline": 20,
    "app": 15,
    "mini_program": 12,
    "wechat": 10,
    "web": 6,
    "social": 5,
    "email": 4,
    "suggestion_box": 3,
}
CATEGORIES = {
    "product.quality_defect": 16,
    "product.not_as_described": 6,
    "product.expired": 5,
    "product.damaged": 4,
    "service.bad_attitude": 12,
    "service.operating_error": 6,
    "service.slow_response": 9,
    "environment.hygiene": 6,
    "environment.facility_failure": 7,
    "environment.poor_layout": 3,
    "rules.return_dispute": 8,
    "rules.price_dispute": 5,
    "rules.membership_rights": 3,
    "payment.failed_payment": 3,
    "payment.refund_delay": 4,
    "logistics.late_delivery": 2,
    "logistics.wrong_delivery": 1,
}
DEPARTMENTS = {
    "product": "procurement_qc",
    "service": "customer_service",
    "environment": "facilities",
    "rules": "customer_service",
    "payment": "finance",
    "logistics": "logistics",
}
AREAS = [
    "fresh produce",
    "food court",
    "B1 supermarket",
    "level 1",
    "level 2",
    "level 3",
    "level 4",
    "parking",
    "cinema",
    "kids zone",
    "cashier",
    "service desk",
]
REASONS = ["compensation_unclear", "slow", "attitude", "not_resolved", "unfair", "communication", "other"]
REASON_WEIGHTS = [18, 30, 15, 20, 8, 7, 2]
CODES = {"sh-xujiahui": "SHXJH", "bj-chaoyang": "BJCY", "gz-tianhe": "GZTH"}
# the JSON and HTML reports timed: (path, period, mall or None)
REPORTS = [
    ("monthly", MONTH, None),
    ("monthly", MONTH, "sh-xujiahui"),
    ("monthly", MONTH, "bj-chaoyang"),
    ("monthly", MONTH, "gz-tianhe"),
    ("quarterly", QUARTER, None),
    ("quarterly", QUARTER, "sh-xujiahui"),
]
BASELINE_SCOPES = [(MONTH, None), (MONTH, "sh-xujiahui"), (QUARTER, None), (QUARTER, "sh-xujiahui")]
H = dt.timedelta(hours=1)


# --- 1. the data ---------------------------------------------------------------------------------


def _weighted(table):
    return list(table), list(table.values())


class Generator:
    """Complaints one by one from a seeded RNG, as read-model documents built with the
    service's own reports.apply / apply_clock; the tallies their contributions add up to."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.registry = registry = load_registry_file(ROOT / "deploy" / "policy" / "malls.yml")
        self.zones = {m: reports.zone_of(registry, m) for m in MALLS}
        self.roster = _roster()
        self.seq = Counter()
        self.tallies = {}  # tally id -> Counter of dotted paths
        self.expected = Counter()  # (period, mall or None, what) -> count: checks the report and the baseline
        self.handling = Counter()  # (period, mall or None) -> summed handling seconds
        self.malls, self.mall_w = _weighted(MALLS)
        self.channels, self.channel_w = _weighted(CHANNELS)
        self.categories, self.category_w = _weighted(CATEGORIES)
        self.merchants = {m: [f"{CODES[m][0]}-{k:02d}" for k in range(1, MERCHANTS_PER_MALL + 1)] for m in MALLS}
        # a few merchants draw most complaints (Zipf-like weights)
        self.merchant_w = [1 / (k**0.8) for k in range(1, MERCHANTS_PER_MALL + 1)]
        self.events_applied = 0

    def _eid(self):
        return f"{self.rng.getrandbits(128):032x}"

    def complaint(self):
        r = self.rng
        mall = r.choices(self.malls, self.mall_w)[0]
        zone = self.zones[mall]
        day = Q_START + dt.timedelta(days=r.randrange(Q_DAYS))
        minute = int(min(max(r.gauss(15.5 * 60, 3 * 60), 9 * 60 + 30), 22 * 60 + 30))  # opening hours, peak afternoon
        local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, r.randrange(60), tzinfo=zone)
        received = local.astimezone(dt.timezone.utc)
        self.seq[(mall, day)] += 1
        number = f"{CODES[mall]}-{day:%Y%m%d}-{self.seq[(mall, day)]:04d}"
        channel = r.choices(self.channels, self.channel_w)[0]
        events, clocks_ = [], []

        def ev(kind, at, payload):
            events.append(
                {
                    "event_id": self._eid(),
                    "event_type": kind,
                    "schema_version": 1,
                    "occurred_at": at,
                    "mall_id": mall,
                    "complaint_no": number,
                    "payload": payload,
                }
            )

        if r.random() < 0.03:  # rejected at intake
            ev(
                "complaint_rejected",
                received,
                {
                    "channel": channel,
                    "received_at": received,
                    "reason": r.choice(["insufficient_information", "out_of_scope", "duplicate"]),
                    "detail": "bench",
                    "duplicate_of": None,
                    "policy_version": "bench",
                },
            )
            return self._fold(number, events, clocks_)

        merchant = r.choices(self.merchants[mall], self.merchant_w)[0] if r.random() < 0.6 else None
        area = r.choice(AREAS)
        ev(
            "complaint_registered",
            received,
            {
                "channel": channel,
                "received_at": received,
                "ack_due_at": received + H,
                "location": {"area": area, "merchant_id": merchant},
                "policy_version": "bench",
            },
        )
        ack_at = received + dt.timedelta(minutes=r.expovariate(1 / 20))
        clocks_.append(("acknowledgement", channel, None, "met" if ack_at <= received + H else "breached"))
        if r.random() < 0.005:  # never triaged (unclassified, open)
            return self._fold(number, events, clocks_)

        category = r.choices(self.categories, self.category_w)[0]
        risk = r.choices(("low", "medium", "high"), (80, 15, 5))[0]
        department, owner = self._route(mall, category, merchant, r)
        # clocks.py: the clocks keep triage's owner; a correction moves their department, a reassignment nothing
        clock_owner, clock_department = owner, department
        triaged_at = received + dt.timedelta(seconds=r.randrange(5, 300))
        ev(
            "complaint_triaged",
            triaged_at,
            {
                "category": category,
                "category_source": "keywords",
                "risk_level": risk,
                "risk_reasons": [],
                "urgency": "urgent" if risk == "high" else "routine",
                "department": department,
                "review_meeting": False,
                "departments_involved": [],
                "owner_id": owner,
                "first_response_due_at": triaged_at + 24 * H,
                "resolution_due_at": triaged_at + 168 * H,
                "policy_version": "bench",
                "received_at": received,
                "channel": channel,
                "merchant_id": merchant,
            },
        )
        if r.random() < 0.02:  # the category corrected by a supervisor
            old, category = category, r.choices(self.categories, self.category_w)[0]
            department, owner = self._route(mall, category, merchant, r)
            clock_department = department
            ev(
                "complaint_corrected",
                triaged_at + dt.timedelta(hours=r.uniform(0.5, 6)),
                {
                    "category": category,
                    "category_source": "manual",
                    "risk_level": risk,
                    "risk_reasons": [],
                    "urgency": "routine",
                    "department": department,
                    "review_meeting": False,
                    "departments_involved": [],
                    "owner_id": owner,
                    "first_response_due_at": triaged_at + 24 * H,
                    "resolution_due_at": triaged_at + 168 * H,
                    "policy_version": "bench",
                    "field": "category",
                    "old": old,
                    "new": category,
                    "by": "E3011",
                    "reason": "bench",
                },
            )
        if r.random() < 0.05:  # reassigned to a colleague
            department2, owner2 = self._route(mall, category, merchant, r)
            ev(
                "complaint_reassigned",
                triaged_at + dt.timedelta(hours=r.uniform(1, 12)),
                {
                    "from_owner_id": owner,
                    "to_owner_id": owner2,
                    "department": department2,
                    "reason": "bench",
                    "by": "E3011",
                },
            )
            department, owner = department2, owner2

        # handling time: hours, log-normal, shorter for high risk; the quarter's last days leave some open
        hours = r.lognormvariate(math.log(14 if risk == "low" else 10 if risk == "medium" else 18), 1.0)
        resolved_at = received + dt.timedelta(hours=hours)
        end_of_quarter = dt.datetime(2027, 1, 1, tzinfo=zone).astimezone(dt.timezone.utc)
        resolved = resolved_at < end_of_quarter and r.random() > 0.02
        clocks_.append(("first_response", clock_owner, clock_department, "met" if r.random() < 0.93 else "breached"))
        due = 168 if risk == "low" else 126 if risk == "medium" else 84
        if resolved or received + due * H < end_of_quarter:
            clocks_.append(
                ("resolution", clock_owner, clock_department, "met" if resolved and hours <= due else "breached")
            )

        if risk == "high":
            if r.random() < 0.6:
                ev(
                    "case_escalated",
                    triaged_at + dt.timedelta(hours=r.uniform(0.2, 4)),
                    {
                        "reason": "high_risk",
                        "from_role": "handler",
                        "to_role": "supervisor",
                        "to_staff_id": None,
                        "re_review_due_at": None,
                        "by": owner,
                    },
                )
            if r.random() < 0.35:
                ev(
                    "case_escalated",
                    triaged_at + dt.timedelta(hours=r.uniform(4, 24)),
                    {
                        "reason": "high_risk",
                        "from_role": "supervisor",
                        "to_role": "operations_director",
                        "to_staff_id": None,
                        "re_review_due_at": None,
                        "by": "E3011",
                    },
                )
            elif r.random() < 0.15:
                ev(
                    "proposal_approved",
                    triaged_at + dt.timedelta(hours=r.uniform(4, 48)),
                    {
                        "proposal_no": 1,
                        "approver_role": r.choice(["operations_director", "legal"]),
                        "total_fen": r.randrange(1000, 500000),
                        "cap_override": True,
                        "by": "E3901",
                    },
                )
        elif r.random() < 0.03:
            ev(
                "case_escalated",
                triaged_at + dt.timedelta(hours=r.uniform(1, 48)),
                {
                    "reason": "objection",
                    "from_role": "handler",
                    "to_role": "supervisor",
                    "to_staff_id": None,
                    "re_review_due_at": None,
                    "by": owner,
                },
            )
        if resolved:
            ev(
                "case_resolved",
                resolved_at,
                {
                    "spot": hours < 1,
                    "decision": "upheld",
                    "remedy_types": ["refund"],
                    "total_fen": r.randrange(0, 50000),
                    "round": 1,
                    "category": category,
                    "risk_level": risk,
                    "department": department,
                    "owner_id": owner,
                    "channel": channel,
                    "by": owner,
                },
            )
            if r.random() < 0.7:  # revisited and answered
                at = resolved_at + dt.timedelta(hours=r.uniform(2, 30))
                satisfied = r.random() < (0.88 if hours < 48 else 0.7)
                self._answer(ev, at, satisfied, number, hours)
                if not satisfied and r.random() < 0.25:  # reopened, resolved again, asked again
                    ev(
                        "case_reopened",
                        at + H,
                        {"reason": "dissatisfied", "round": 2, "resolution_due_at": at + 73 * H, "by": "E3011"},
                    )
                    again = at + dt.timedelta(hours=r.uniform(3, 72))
                    if again < end_of_quarter:
                        ev(
                            "case_resolved",
                            again,
                            {
                                "spot": False,
                                "decision": "upheld",
                                "remedy_types": ["voucher"],
                                "total_fen": 2000,
                                "round": 2,
                                "category": category,
                                "risk_level": risk,
                                "department": department,
                                "owner_id": owner,
                                "channel": channel,
                                "by": owner,
                            },
                        )
                        satisfied = r.random() < 0.75
                        self._answer(ev, again + dt.timedelta(hours=r.uniform(2, 30)), satisfied, number, hours)
                if satisfied:
                    ev(
                        "case_closed",
                        at + dt.timedelta(minutes=5),
                        {"by": "feedback", "reason": "satisfied", "without_answer": False},  # as the contract loads it
                    )
        return self._fold(number, events, clocks_)

    def _answer(self, ev, at, satisfied, number, hours):
        r = self.rng
        payload = {
            "revisit_id": f"{number}-R1",
            "score": r.choice((4, 5)) if satisfied else r.choice((1, 2, 3)),
            "by": "E3011",
        }
        if not satisfied:
            weights = list(REASON_WEIGHTS)
            if hours > 48:
                weights[1] *= 3  # slow
            payload["reasons"] = sorted(set(r.choices(REASONS, weights, k=r.choice((1, 1, 2, 3)))))
        ev("customer_satisfied" if satisfied else "customer_dissatisfied", at, payload)

    def _route(self, mall, category, merchant, r):
        attribute = category.split(".")[0]
        if merchant and attribute in ("product", "service"):
            department = "merchant_relations"
        elif r.random() < 0.01:
            department = "security"
        else:
            department = DEPARTMENTS[attribute]
        handlers = self.roster[mall].get(department) or self.roster[mall]["customer_service"]
        return department, r.choice(handlers)

    def _fold(self, number, events, clocks_):
        """The read-model document after the events and the clocks' outcomes, as the service
        folds them (reports.apply / apply_clock), and its contributions summed in."""
        mall = events[0]["mall_id"]
        zone = self.zones[mall]
        doc = {"_id": number}
        changes = 0
        for event in events:
            doc = reports.apply(doc, event, zone)
            changes += 1
        for name, owner, department, outcome in clocks_:
            clock = {
                "_id": f"{number}|{name}|1",
                "clock": name,
                "mall_id": mall,
                "complaint_no": number,
                "owner": owner,
                "department": department,
            }
            doc = reports.apply_clock(doc, clock, outcome)
            changes += 1
        doc["v"] = changes
        self.events_applied += changes
        for tally, add in reports.contributions(doc).items():
            self.tallies.setdefault(tally, Counter()).update(add)
        if doc.get("registered") and not doc.get("rejected"):
            for period in (doc["month"], doc["quarter"]):
                for scope in (mall, None):
                    self.expected[(period, scope, "registered")] += 1
                    self.expected[(period, scope, "category", doc.get("category") or "unclassified")] += 1
                    seconds = reports.handling_seconds(doc)
                    if seconds is not None:
                        self.expected[(period, scope, "resolved")] += 1
                        self.handling[(period, scope)] += seconds
        for period in (doc["month"], doc["quarter"]):
            for scope in (mall, None):
                self.expected[(period, scope, "received")] += 1
        return doc

    def tally_docs(self):
        """The tallies as storage.py keeps them: `counts` nested by the dotted paths."""
        docs = []
        for tally, counts in sorted(self.tallies.items()):
            period, mall = tally.split("|", 1)
            nested = {}
            for path, n in counts.items():
                if not n:
                    continue
                *parents, leaf = path.split(".")
                node = nested
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = n
            docs.append({"_id": tally, "period": period, "mall_id": mall, "counts": nested})
        return docs


def _roster():
    import yaml

    with open(ROOT / "deploy" / "policy" / "triage.yml", encoding="utf-8") as f:
        roster = yaml.safe_load(f)["roster"]
    out = {}
    for mall, staff in roster.items():
        by_dept = {}
        for person in staff:
            by_dept.setdefault(person["department"], []).append(person["id"])
        out[mall] = by_dept
    return out


def load(gen, db, count, batch):
    """Generate `count` complaints and insert them in batches of `batch` (the next batch is
    generated while the store writes the previous one). Returns the timings."""
    t0 = time.monotonic()
    gen_s = 0.0
    with ThreadPoolExecutor(1) as writer:
        pending = None
        done = 0
        while done < count:
            g0 = time.monotonic()
            docs = [gen.complaint() for _ in range(min(batch, count - done))]
            gen_s += time.monotonic() - g0
            if pending is not None:
                pending.result()
            pending = writer.submit(db.complaints.insert_many, docs, ordered=False)
            done += len(docs)
            if done % (batch * 10) == 0 or done == count:
                el = time.monotonic() - t0
                print(f"  {done:,} complaints in {el:.0f} s ({done / el:,.0f}/s)", file=sys.stderr, flush=True)
        pending.result()
    wall = time.monotonic() - t0
    t1 = time.monotonic()
    for doc in gen.tally_docs():
        db.report_tallies.replace_one({"_id": doc["_id"]}, doc, upsert=True)
    return {
        "complaints": count,
        "wall_s": rnd(wall),
        "generate_s": rnd(gen_s),
        "complaints_per_s": rnd(count / wall if wall else None),
        "tallies_s": rnd(time.monotonic() - t1, 2),
    }


def check_tallies(gen, db):
    """The stored tallies, read through storage.EventLog.tallies_of, equal the sums in memory."""
    store = EventLog(db)
    expected = {d["_id"]: d for d in gen.tally_docs()}
    problems = []
    for period in (MONTH, "2026-10", "2026-12", QUARTER):
        stored = {d["_id"]: d for d in store.tallies_of(period)}
        for mall in MALLS:
            tid = reports.tally_id(period, mall)
            if stored.get(tid) != expected.get(tid):
                problems.append(f"{tid}: stored tally differs from the generated sums")
            if store.tallies_of(period, mall) != ([stored[tid]] if tid in stored else []):
                problems.append(f"{tid}: tallies_of(period, mall) differs")
    return problems


# --- 2. mallcare ---------------------------------------------------------------------------------


def time_reports(url, gen, warmup, repeat):
    results, errors = {}, []
    with requests.Session() as session:
        session.headers.update(signed_in("A7001", "analyst"))  # the chain's analyst: every mall
        for shape in ("json", "html"):
            for kind, period, mall in REPORTS:
                path = f"/reports/{kind}{'.html' if shape == 'html' else ''}"
                params = {"period": period, **({"mall_id": mall} if mall else {})}
                name = f"{kind} {period} {mall or 'chain'} {shape}"
                times, size = [], None
                for i in range(warmup + repeat):
                    start = time.perf_counter()
                    response = session.get(url + path, params=params, timeout=REQUEST_TIMEOUT)
                    took = time.perf_counter() - start
                    if response.status_code != 200:
                        errors.append(f"{name}: HTTP {response.status_code} {response.text[:200]}")
                        break
                    if i >= warmup:
                        times.append(took)
                    size = len(response.content)
                if shape == "json" and not errors:
                    got = response.json()["counts"]
                    want = {w: gen.expected[(period, mall, w)] for w in ("received", "registered", "resolved")}
                    if {w: got[w] for w in want} != want:
                        errors.append(f"{name}: counts {got} != generated {want}")
                results[name] = {**ms_summary(times), "bytes": size}
    return results, errors


def time_in_process(db, registry, repeat):
    """The same work without HTTP and the service: tallies_of (the store's read), then
    build_report and html_report.render, in this process; milliseconds p50 each."""
    from analytics import html_report
    from analytics.wording import Words
    from mallcare_common import web
    from mallcare_common.labels import load_labels_file

    store = EventLog(db)
    words = Words(load_labels_file(ROOT / "deploy" / "policy" / "labels.yml"), registry)
    out = {}
    for kind, period, mall in REPORTS:
        read, build, html = [], [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            tallies = store.tallies_of(period, mall)
            t1 = time.perf_counter()
            report = web.jsonable(reports.build_report(kind, period, mall, tallies, []))
            t2 = time.perf_counter()
            html_report.render(report, words)
            t3 = time.perf_counter()
            read.append(t1 - t0)
            build.append(t2 - t1)
            html.append(t3 - t2)
        out[f"{kind} {period} {mall or 'chain'}"] = {
            "read_tallies_p50_ms": ms_summary(read)["p50_ms"],
            "build_report_p50_ms": ms_summary(build)["p50_ms"],
            "render_html_p50_ms": ms_summary(html)["p50_ms"],
        }
    return out


# --- 3. baseline ---------------------------------------------------------------------------------


def baseline_pipelines(period, mall):
    """The first $match names only the period and the mall: the fields of the baseline's
    index (the store uses an index only when it holds every field a query names); the rest
    is filtered in a second stage."""
    field = "quarter" if "Q" in period else "month"
    scope = {"$match": {field: period, **({"mall_id": mall} if mall else {})}}
    return {
        "categories": [
            scope,
            {"$match": {"registered": True, "rejected": {"$ne": True}}},
            {"$group": {"_id": "$category", "count": {"$sum": 1}}},
        ],
        "handling_average": [
            scope,
            {"$match": {"registered": True, "rejected": {"$ne": True}, "resolved_at": {"$ne": None}}},
            {
                "$group": {
                    "_id": None,
                    "n": {"$sum": 1},
                    "avg_ms": {"$avg": {"$subtract": ["$resolved_at", "$received_at"]}},
                }
            },
        ],
    }


def run_baseline(db, gen, runs, budget):
    results, errors = {}, []
    for period, mall in BASELINE_SCOPES:
        name = f"{period} {mall or 'chain'}"
        rows, spent = [], 0.0
        for _ in range(runs):
            run = {}
            for section, pipeline in baseline_pipelines(period, mall).items():
                start = time.perf_counter()
                out = list(db.complaints.aggregate(pipeline, allowDiskUse=True))
                run[section] = time.perf_counter() - start
                if _run_is_wrong(section, out, gen, period, mall):
                    errors.append(f"baseline {name} {section}: result differs from the generated data")
            run["both"] = run["categories"] + run["handling_average"]
            rows.append(run)
            spent += run["both"]
            if spent > budget:
                break
        results[name] = {
            "runs": len(rows),
            **{
                section: ms_summary([r[section] for r in rows])
                for section in ("categories", "handling_average", "both")
            },
        }
    return results, errors


def _run_is_wrong(section, out, gen, period, mall):
    if section == "categories":
        got = {(row["_id"] or "unclassified"): row["count"] for row in out}
        want = {k[3]: n for k, n in gen.expected.items() if k[:3] == (period, mall, "category")}
        return got != want
    n = gen.expected[(period, mall, "resolved")]
    if not out:
        return n != 0
    mean_s = gen.handling[(period, mall)] / n if n else None
    # the baseline averages milliseconds, the tallies whole seconds (clamped at 0): within a second
    return out[0]["n"] != n or abs(out[0]["avg_ms"] / 1000 - mean_s) > 1


def explain(db, period, mall):
    """Which plan the store picks for the baseline's match (informative)."""
    try:
        plan = db.command(
            "explain",
            {"aggregate": "complaints", "pipeline": baseline_pipelines(period, mall)["categories"], "cursor": {}},
        )
        return str(plan.get("queryPlanner") or plan.get("stages") or plan)[:400]
    except Exception as exc:
        return f"explain not available: {exc!r}"[:200]


# --- the run -------------------------------------------------------------------------------------


def other_benchmarks():
    out = subprocess.run(["pgrep", "-af", r"bench/.*_bench\.py"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if int(line.split()[0]) != os.getpid()]


def measure(args, ctx, gen, db, url, service_pid, store_pid, complaints):
    print(f"timing reports over {complaints:,} complaints", file=sys.stderr, flush=True)
    cpu = CpuWindow({"analytics": service_pid, "store": store_pid})
    cpu.start()
    timed, errors = time_reports(url, gen, args.warmup, args.repeat)
    cpu_reports = cpu.stop()
    in_process = time_in_process(db, gen.registry, max(3, args.repeat // 2))
    print(f"baseline over {complaints:,} complaints", file=sys.stderr, flush=True)
    cpu.start()
    base, base_errors = run_baseline(db, gen, args.baseline_runs, args.baseline_budget)
    cpu_base = cpu.stop()
    ratios = {}
    for period, mall in BASELINE_SCOPES:
        kind = "quarterly" if "Q" in period else "monthly"
        m = timed[f"{kind} {period} {mall or 'chain'} json"]
        b = base[f"{period} {mall or 'chain'}"]["both"]
        ratios[f"{period} {mall or 'chain'}"] = {
            "p50": _fine_ratio(m["p50_ms"], b["p50_ms"]),
            "p99_vs_max": _fine_ratio(m["p99_ms"], b["max_ms"]),
            "baseline_p50_over_mallcare_p50": ratio(b["p50_ms"], m["p50_ms"]),
        }
    return {
        "complaints": complaints,
        "reports": timed,
        "in_process": in_process,
        "baseline": base,
        "ratios_mallcare_over_baseline": ratios,
        "errors": errors + base_errors,
        "cpu_reports": cpu_reports,
        "cpu_baseline": cpu_base,
    }


def _fine_ratio(a, b):
    """a / b to 3 significant digits (the ratios here are far below 0.01)."""
    return float(f"{a / b:.3g}") if a is not None and b else None


def _run(args, ctx):
    from pymongo import ASCENDING, MongoClient

    others = other_benchmarks()
    if others:
        print("warning: other benchmarks running: " + "; ".join(others), file=sys.stderr)
    uri, store_proc = start_store(ctx.children, "analytics", ctx.tmp)
    client = MongoClient(uri, tz_aware=True, socketTimeoutMS=(args.baseline_budget + 600) * 1000)
    db = client[DB]
    gen = Generator(args.seed)
    steps = [args.complaints // 10, args.complaints] if args.tenth else [args.complaints]
    loads, measured, service = [], [], None
    try:
        loaded = 0
        for target in steps:
            print(f"loading {target - loaded:,} complaints (to {target:,})", file=sys.stderr, flush=True)
            loads.append(load(gen, db, target - loaded, args.batch))
            loaded = target
            problems = check_tallies(gen, db)
            index_s = None
            if not db.complaints.index_information().get("month_1_mall_id_1"):
                t0 = time.monotonic()
                db.complaints.create_index([("month", ASCENDING), ("mall_id", ASCENDING)])
                db.complaints.create_index([("quarter", ASCENDING), ("mall_id", ASCENDING)])
                index_s = rnd(time.monotonic() - t0)
            loads[-1].update(
                baseline_index_build_s=(
                    index_s if index_s is not None else "built at the first step, kept up by the inserts"
                ),
                tally_check_problems=problems,
                store_bytes=_dir_bytes(ctx.tmp / "store-analytics"),
            )
            if service is None:
                env = dict(
                    service_env(ctx.amqp_uri, ctx.pythonpath),
                    MONGO_URI=uri,
                    ANALYTICS_MONGO_DATABASE=DB,
                    ANALYTICS_WEB_ADDRESS=f"{HOST}:{free_port()}",
                )
                service = start_service(ctx.children, "analytics", env)
            step = measure(args, ctx, gen, db, service[0], service[1].pid, store_proc.pid, target)
            step["errors"] += problems
            step["baseline_plan"] = explain(db, MONTH, "sh-xujiahui")
            measured.append(step)
        env = environment(
            store_info(uri, embedded=True),
            ctx.loadavg,
            {
                "complaints": args.complaints,
                "seed": args.seed,
                "repeat": args.repeat,
                "warmup": args.warmup,
                "baseline_runs": args.baseline_runs,
                "baseline_budget_s": args.baseline_budget,
                "batch": args.batch,
            },
        )
        env["services"] = ctx.source
        env["other_benchmarks_at_start"] = others
        result = {
            "benchmark": "report",
            "environment": env,
            "loads": loads,
            "steps": measured,
            "events_applied": gen.events_applied,
            "tallies": len(gen.tallies),
            "tally_fields": {t: len(c) for t, c in sorted(gen.tallies.items())},
            "flat": _flat(measured),
            "run_s": round(time.monotonic() - ctx.started, 1),
        }
        write_result(result, args.out, "report", table(result))
        return any(s["errors"] for s in measured)
    finally:
        client.close()


def _dir_bytes(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _flat(steps):
    """Report p50 at N over p50 at N/10, and the same for the baseline (1 = flat)."""
    if len(steps) < 2:
        return None
    small, big = steps
    return {
        "reports_p50_N_over_tenth": {
            k: ratio(big["reports"][k]["p50_ms"], small["reports"][k]["p50_ms"]) for k in big["reports"]
        },
        "baseline_p50_N_over_tenth": {
            k: ratio(big["baseline"][k]["both"]["p50_ms"], small["baseline"][k]["both"]["p50_ms"])
            for k in big["baseline"]
        },
    }


def table(result):
    lines = []
    for step in result["steps"]:
        n = step["complaints"]
        lines += [
            f"### {n:,} complaints",
            "",
            "| report (HTTP) | p50 (ms) | p99 (ms) | bytes | in this process p50 (ms): read tallies / build / html |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, s in step["reports"].items():
            p = step["in_process"][name.rsplit(" ", 1)[0]]
            lines.append(
                f"| {name} | {s['p50_ms']} | {s['p99_ms']} | {s['bytes']} | {p['read_tallies_p50_ms']} / "
                f"{p['build_report_p50_ms']} / {p['render_html_p50_ms']} |"
            )
        lines += [
            "",
            "| baseline scope | runs | categories p50 (ms) | handling avg p50 (ms) | both p50 (ms) "
            "| mallcare / baseline p50 |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        ratios = step["ratios_mallcare_over_baseline"]
        for name, b in step["baseline"].items():
            lines.append(
                f"| {name} | {b['runs']} | {b['categories']['p50_ms']} | "
                f"{b['handling_average']['p50_ms']} | {b['both']['p50_ms']} | "
                f"{ratios[name]['p50']} (baseline {ratios[name]['baseline_p50_over_mallcare_p50']}x) |"
            )
        lines.append("")
        lines.append(f"errors: {step['errors'] or 'none'}")
        for phase in ("cpu_reports", "cpu_baseline"):
            lines.append(f"{phase} (cores): " + ", ".join(f"{k} {v}" for k, v in step[phase]["cores_busy"].items()))
        lines.append("")
    for load_ in result["loads"]:
        lines.append(
            f"load: {load_['complaints']:,} complaints in {load_['wall_s']} s "
            f"({load_['complaints_per_s']}/s; generating {load_['generate_s']} s); "
            f"index build {load_['baseline_index_build_s']}; store {load_['store_bytes'] / 1e9:.2f} GB"
        )
    env = result["environment"]
    lines.append(
        f"store {env['store']['kind']} {env['store']['version']}; Python {env['python']}; "
        f"{env['cpu_count']} CPUs; {env['date']}; load at start {env['loadavg_at_start']}; services from "
        f"{env['services']['source']} at {(env['services']['commit'] or '?')[:8]}"
    )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--complaints", type=int, default=1_000_000, help="stored complaints (default 1,000,000)")
    parser.add_argument(
        "--no-tenth", dest="tenth", action="store_false", help="measure at N only (default: at N/10, then at N)"
    )
    parser.add_argument("--repeat", type=int, default=20, help="measured requests per report (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests per report first (default 2)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="runs per baseline scope (default 3)")
    parser.add_argument(
        "--baseline-budget",
        type=int,
        default=240,
        help="no further run of a baseline scope once its runs took this many seconds (default 240)",
    )
    parser.add_argument("--batch", type=int, default=BATCH, help=f"complaints per insert_many (default {BATCH})")
    parser.add_argument("--seed", type=int, default=20261123, help="RNG seed of the data")
    parser.add_argument("--timeout", type=int, default=2700, help="limit for the whole run in seconds (default 2700)")
    parser.add_argument(
        "--ref", help="run analytics from a clean export of this git commit instead of the working tree (e.g. HEAD)"
    )
    parser.add_argument("--out", type=Path, help="result file (default bench/results/report-<time>.json)")
    args = parser.parse_args(argv)
    if not (
        1000 <= args.complaints <= 2_000_000
        and 1 <= args.repeat <= 500
        and 0 <= args.warmup <= 20
        and 1 <= args.baseline_runs <= 10
        and 100 <= args.batch <= 100_000
        and 60 <= args.timeout <= 7200
    ):
        parser.error(
            "keep --complaints 1000..2000000, --repeat 1..500, --warmup 0..20, --baseline-runs 1..10, "
            "--batch 100..100000, --timeout 60..7200"
        )
    return run_bench(lambda ctx: _run(args, ctx), args.ref, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
