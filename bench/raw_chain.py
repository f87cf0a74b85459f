"""The raw chain soak.py --baseline measures mallcare against: mallcare's per-complaint hops
and journaled writes, with nothing else. Five bare nameko services (`raw_intake`,
`raw_triage`, `raw_resolution`, `raw_feedback`, `raw_analytics`), each its own OS process on
its own store process, as the soak runs mallcare's. Every write is one insert_one
(w=1, j=True) of a small document (a pool of 2, as mallcare's); every event goes by
nameko's EventDispatcher, persistent, confirmed and mandatory, to a quorum queue per
subscriber and event type (nameko's `evt-<source>-<event>--<service>.<method>`), as
mallcare's outbox relays and handlers do. No validation, numbering, look-ups, outbox,
read models, tallies, metrics, audit, or timers besides the SLA sweep.

The graph below is what one soak complaint costs mallcare, from the services' handlers and
what they publish (services/*/*/service.py, resolution/domain/actions.py spot_resolve,
analytics/clocks.py), checked against a soak's published and handled counts
(`soak.py --duration 30 --rate 2`: per complaint 1 complaint_registered, 1 complaint_triaged,
1 case_opened; per settled one 1 each of case_proposed, case_accepted, execution_task_done,
rectification_due, case_resolved, revisit_scheduled). notify is not part of the soak, so
its subscriptions are not either. N = complaints accepted, S = settled on the spot.

| step | service | inserts into | publishes | subscribers (a queue each) | times |
| --- | --- | --- | --- | --- | --- |
| POST /complaints | intake | complaints | complaint_registered | triage, feedback, analytics | N |
| complaint_registered | triage | assessments | complaint_triaged | resolution, analytics | N |
| complaint_registered | feedback | complaints | | | N |
| complaint_registered | analytics | events (+ clock in memory) | | | N |
| complaint_triaged | resolution | cases | case_opened | analytics | N |
| complaint_triaged | analytics | events | | | N |
| case_opened | analytics | events | | | N |
| GET /cases/<no> (settler waits) | resolution | (a find_one) | | | >= S |
| POST /cases/<no>/spot-resolution | resolution | settlements | the 5 spot events | analytics; feedback | S |
| each spot event but case_resolved | analytics | events | | | 4 S |
| case_resolved | feedback | revisits | revisit_scheduled | analytics | S |
| case_resolved | analytics | events | | | S |
| revisit_scheduled | analytics | events | | | S |
| SLA sweep (2 s): at risk | analytics | clocks | sla_at_risk | resolution | A <= N |
| SLA sweep (2 s): breached | analytics | clocks | sla_breached | resolution | B <= N |
| sla_at_risk, sla_breached | resolution | nothing (*) | | | A, B |

The 5 spot events, in order: case_proposed, case_accepted, execution_task_done (one task:
the refund), rectification_due, case_resolved; feedback takes only case_resolved.
(*) mallcare's resolution returns without a write for a clock that does not escalate, as
the acknowledgement clock does not.

The soak never acknowledges a complaint, so each desk complaint's acknowledgement clock
(intake policy: 1 minute at the desk; analytics policy: at risk at half time) reaches its
at-risk point and its deadline; the sweep publishes breaches first and skips the at-risk of
a clock already past its deadline, as mallcare's does. The clocks are kept in memory (mallcare finds
them in its store). Per complaint that is 9 inserts and 5 events (8 deliveries) with its
clocks, and per settled one 8 inserts and 6 events (7 deliveries) more.

Each service answers GET /counts: its handlers' counts (`ok`, `duplicate` for an insert
refused as already stored) and the events it published, for the reconciliation.
Run as `nameko run --config <yml> raw_chain:RawIntake` (and the others) with this directory
on PYTHONPATH; the store is RAW_MONGO_URI, the acknowledgement clock RAW_ACK_AT_RISK_S and
RAW_ACK_DUE_S (seconds after the complaint was received).
"""

import heapq
import json
import os
import time
import uuid
from collections import Counter
from pathlib import Path

import yaml
from nameko.events import EventDispatcher, EventHandler
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from nameko.web.handlers import http
from pymongo import MongoClient, WriteConcern
from pymongo.errors import DuplicateKeyError

SERVICES = ("triage", "analytics", "resolution", "feedback", "intake")  # subscribers first, as the soak starts them
SPOT_EVENTS = ("case_proposed", "case_accepted", "execution_task_done", "rectification_due", "case_resolved")
SLA_TICK_S = 2  # analytics' MALLCARE.SLA_TICK_SECONDS

# (source, event type) -> [(subscriber, collection it inserts into or None, events it publishes)]
SUBSCRIPTIONS = {
    ("intake", "complaint_registered"): [
        ("triage", "assessments", ("complaint_triaged",)),
        ("feedback", "complaints", ()),
        ("analytics", "events", ()),
    ],
    ("triage", "complaint_triaged"): [("resolution", "cases", ("case_opened",)), ("analytics", "events", ())],
    ("resolution", "case_opened"): [("analytics", "events", ())],
    **{("resolution", e): [("analytics", "events", ())] for e in SPOT_EVENTS if e != "case_resolved"},
    ("resolution", "case_resolved"): [("feedback", "revisits", ("revisit_scheduled",)), ("analytics", "events", ())],
    ("feedback", "revisit_scheduled"): [("analytics", "events", ())],
    ("analytics", "sla_at_risk"): [("resolution", None, ())],
    ("analytics", "sla_breached"): [("resolution", None, ())],
}

COUNTS = Counter()  # this process's: "<event type or entrypoint> ok|duplicate", "published <event type>"


def name(service):
    return f"raw_{service}"


def event_id(complaint_no, event_type):
    """Each event type happens at most once per complaint here: a redelivery has the same id."""
    return f"{complaint_no}:{event_type}"


def acknowledgement_clock(policy_dir):
    """(at risk, due) in seconds after a desk complaint is received, from the shipped policy."""
    policy_dir = Path(policy_dir)
    intake = yaml.safe_load((policy_dir / "intake.yml").read_text(encoding="utf-8"))
    analytics = yaml.safe_load((policy_dir / "analytics.yml").read_text(encoding="utf-8"))
    due = intake["acknowledgement"]["desk"]["minutes"] * 60
    share = analytics["sla"]["at_risk_share_by_clock"].get("acknowledgement", analytics["sla"]["at_risk_share"])
    return due * share, due


def expected_inserts(accepted, settled, at_risk, breached):
    """{(service, collection): documents} the graph above stores for these counts."""
    n, s = accepted, settled
    return {
        ("intake", "complaints"): n,
        ("triage", "assessments"): n,
        ("feedback", "complaints"): n,
        ("resolution", "cases"): n,
        ("resolution", "settlements"): s,
        ("feedback", "revisits"): s,
        ("analytics", "events"): 3 * n + 6 * s,
        ("analytics", "clocks"): at_risk + breached,
    }


class Store(DependencyProvider):
    """The service's database on its own store, with mallcare's write concern and pool size."""

    def setup(self):
        self.client = MongoClient(os.environ["RAW_MONGO_URI"], maxPoolSize=2)
        self.db = self.client.get_database(self.container.service_name, write_concern=WriteConcern(w=1, j=True))

    def stop(self):
        self.client.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.db


class QuorumEventHandler(EventHandler):
    def setup(self):
        super().setup()
        self.queue.queue_arguments = {"x-queue-type": "quorum"}


def dispatcher():
    return EventDispatcher(mandatory=True)  # confirmed by default


def envelope(event_type, complaint_no, payload=None):
    return {
        "event_id": event_id(complaint_no, event_type),
        "event_type": event_type,
        "complaint_no": complaint_no,
        "occurred_at": time.time(),
        "payload": payload or {},
    }


def store_once(db, collection, doc, counter):
    """One insert; False (counted as a duplicate) when it was stored before."""
    try:
        db[collection].insert_one(doc)
    except DuplicateKeyError:
        COUNTS[f"{counter} duplicate"] += 1
        return False
    return True


def publish(dispatch, event_type, complaint_no, payload=None):
    dispatch(event_type, envelope(event_type, complaint_no, payload))
    COUNTS[f"published {event_type}"] += 1


def handler(subscriber, source, event_type, collection, follow_ups):
    """The entrypoint of one subscription: one insert (or none), then its follow-up events."""
    method = f"handle_{event_type}"

    @QuorumEventHandler.decorator(name(source), event_type)
    def handle(self, body):
        number = body["complaint_no"]
        if collection and not store_once(self.db, collection, {"_id": body["event_id"], "at": time.time()}, event_type):
            return
        if subscriber == "analytics" and event_type == "complaint_registered":
            start_clock(number, body["payload"]["received_at"])
        for follow_up in follow_ups:
            publish(self.dispatch, follow_up, number)
        COUNTS[f"{event_type} ok"] += 1

    handle.__name__ = method
    return method, handle


def service(subscriber, **entrypoints):
    """A nameko service class with a store, a dispatcher, /counts, `entrypoints` and one
    handler per subscription of `subscriber` in SUBSCRIPTIONS."""

    def counts(self, request):
        return 200, json.dumps(COUNTS)

    attrs = {
        "name": name(subscriber),
        "db": Store(),
        "dispatch": dispatcher(),
        "counts": http("GET", "/counts")(counts),
    }
    for (source, event_type), subs in SUBSCRIPTIONS.items():
        for sub, collection, follow_ups in subs:
            if sub == subscriber:
                method, handle = handler(subscriber, source, event_type, collection, follow_ups)
                attrs[method] = handle
    return type(f"Raw{subscriber.capitalize()}", (), {**attrs, **entrypoints})


# --- intake: the complaint's entry ------------------------------------------------------------


def register(self, request):
    body = json.loads(request.get_data(as_text=True))
    number = uuid.uuid4().hex
    self.db.complaints.insert_one({"_id": number, **body})
    publish(self.dispatch, "complaint_registered", number, {**body, "received_at": time.time()})
    return 201, json.dumps({"number": number})


# --- resolution: the desk's settlement ---------------------------------------------------------


def get_case(self, request, number):
    found = self.db.cases.find_one({"_id": event_id(number, "complaint_triaged")})
    return (200, json.dumps({"number": number})) if found else (404, "")


def spot_resolution(self, request, number):
    if not store_once(self.db, "settlements", {"_id": number, "at": time.time()}, "spot_resolution"):
        return 409, ""
    for event_type in SPOT_EVENTS:
        publish(self.dispatch, event_type, number)
    COUNTS["spot_resolution ok"] += 1
    return 200, json.dumps({"number": number})


# --- analytics: the acknowledgement clocks, in memory -------------------------------------------

AT_RISK, DUE = [float(os.environ.get(k, 0)) for k in ("RAW_ACK_AT_RISK_S", "RAW_ACK_DUE_S")]
RISKS, BREACHES = [], []  # heaps of (when, complaint_no)


def start_clock(number, received_at):
    heapq.heappush(RISKS, (received_at + AT_RISK, number))
    heapq.heappush(BREACHES, (received_at + DUE, number))


def sweep(self):
    """Breaches first, then warnings (not for a clock already past its deadline), one
    insert and one event each, in one worker as mallcare's sweep."""
    for heap, event_type in ((BREACHES, "sla_breached"), (RISKS, "sla_at_risk")):
        while heap and heap[0][0] <= time.time():
            when, number = heapq.heappop(heap)
            if event_type == "sla_at_risk" and time.time() >= when - AT_RISK + DUE:
                continue
            if store_once(self.db, "clocks", {"_id": event_id(number, event_type), "at": time.time()}, "sweep"):
                publish(self.dispatch, event_type, number)


RawTriage = service("triage")
RawFeedback = service("feedback")
RawAnalytics = service("analytics", sweep=timer(interval=SLA_TICK_S)(sweep))
RawResolution = service(
    "resolution",
    get_case=http("GET", "/cases/<string:number>")(get_case),
    spot_resolution=http("POST", "/cases/<string:number>/spot-resolution")(spot_resolution),
)
RawIntake = service("intake", register=http("POST", "/complaints")(register))
