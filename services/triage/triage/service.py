"""Triage: turns each registered complaint into an assessment it owns (R2.1-R2.6):
category, risk and its reasons, urgency, responsible department, named owner and
deadlines, each recording the policy version used. Corrections and reassignments
by people are recorded and announced; every change leaves through the outbox.
The assessment follows its case: it closes and reopens with it (so open load is
today's work), and takes the review meeting's department and owner (R2.4).
Every HTTP and RPC call is checked against its caller's permission and malls.
"""

from datetime import timedelta

from mallcare_common.base import Service
from mallcare_common.batches import batched_event_handler, event_batch, read_all
from mallcare_common.calendar import as_stored
from mallcare_common.contracts import COMPLAINT_REGISTERED, InvalidEvent, read_event
from mallcare_common.contracts import resolution as case_events
from mallcare_common.messaging import event_handler, new_outbox, outbox_dispatcher, publish_pending
from mallcare_common.mongo import NotFound, leased_timer
from mallcare_common.policy import PolicyFiles
from mallcare_common.openapi import Op
from mallcare_common.operations import operation
from mallcare_common.unit_of_work import change
from mallcare_common.web import signed

from . import rules
from .policy import load_policy
from .schemas import AssessmentOut, AssessmentQueue, CorrectionIn, QueueQuery, ReassignmentIn
from .storage import Assessments, BatchHistory

ASSIGN_INTERVAL = 60  # seconds between looks for complaints that still have no owner


class TriageService(Service):
    name = "triage"

    store = Assessments()
    policy = PolicyFiles("triage.yml", load_policy)
    dispatch = outbox_dispatcher()

    @batched_event_handler(COMPLAINT_REGISTERED.source, COMPLAINT_REGISTERED.name)
    def handle_complaint_registered(self, body):
        """One registered complaint alone: what its batch handed back (a broken contract
        is dead-lettered from here, anything else retried)."""
        self._assess([self._registered(body)])

    @event_batch
    def take_registered(self, items):
        """Registered complaints in batches (mallcare_common.batches): assessed in order,
        inserted, counted and announced in one write each for the batch."""
        answers, events = read_all(items, self._registered)
        self._assess(events)
        return answers

    def _registered(self, body):
        event = read_event(body, COMPLAINT_REGISTERED)
        if event["mall_id"] not in self.policy.current.malls:
            raise InvalidEvent(f"unknown mall {event['mall_id']} in {event['event_id']}")
        return event

    def _assess(self, events):
        """Assess each complaint once, in order, each seeing the ones before it as if they
        had come one by one (BatchHistory). A redelivered event finds its assessment there
        and changes nothing: in a batch it is looked up first, so that the history of the
        others does not count it twice; alone, the insert's key tells (no round trip)."""
        policy, now = self.policy.current, self.clock()
        if len(events) > 1:
            there = self.store.assessed(e["complaint_no"] for e in events)
            events = [e for e in {e["complaint_no"]: e for e in events}.values() if e["complaint_no"] not in there]
        history = BatchHistory(self.store, {e["payload"]["customer"]["ref"] for e in events} - {None})
        docs = []
        for event in events:
            assessment = rules.assess({**event["payload"], "mall_id": event["mall_id"]}, policy, now, history)
            doc, triaged = rules.new_assessment(event, assessment, now)
            doc.update(new_outbox(triaged, now))
            history.add(doc)
            docs.append(doc)
        inserted = self.store.insert_new_many(self.store.assessments, docs)
        self.store.count_changes([(None, doc) for doc in inserted])
        publish_pending(self.store.assessments, self.dispatch, self.name, now, inserted)

    @event_handler(case_events.CASE_CLOSED.source, case_events.CASE_CLOSED.name)
    def handle_case_closed(self, body):
        """The assessment closes with its case: open load is today's work, not a lifetime count."""
        self._follow_case(read_event(body, case_events.CASE_CLOSED))

    @event_handler(case_events.CASE_REOPENED.source, case_events.CASE_REOPENED.name)
    def handle_case_reopened(self, body):
        self._follow_case(read_event(body, case_events.CASE_REOPENED))

    def _follow_case(self, event):
        """Closing and reopening come on two queues: the later of them (by when it happened)
        wins, and a redelivered or overtaken one changes nothing."""
        at = as_stored(event["occurred_at"])  # to the millisecond, as status_at is stored

        def decide(doc, now):
            if doc.get("status_at") is not None and doc["status_at"] >= at:
                return None
            return (*rules.case_status(doc, event, now), None)

        self._on_event(event, decide)

    @event_handler(case_events.REVIEW_MEETING_DECIDED.source, case_events.REVIEW_MEETING_DECIDED.name)
    def handle_review_meeting_decided(self, body):
        """R2.4: the meeting's department and owner become the assessment's, announced as a
        reassignment so the case and the SLA clocks name the same; applied once."""
        event, policy = read_event(body, case_events.REVIEW_MEETING_DECIDED), self.policy.current

        def decide(doc, now):
            if doc.get("meeting"):
                return None
            return rules.meeting_decision(doc, event, policy, self.store.open_load(doc["mall_id"]), now)

        self._on_event(event, decide)

    @leased_timer(ASSIGN_INTERVAL, lease="assign", ttl=timedelta(seconds=ASSIGN_INTERVAL))
    def assign_unowned(self, lease):
        """R2.5: a complaint that came in while nobody of its department was on shift
        gets an owner as soon as someone is (one replica at a time). Every unowned one is
        looked at, the earliest first, however many wait for a shift elsewhere (the lease
        renewed through a long backlog, so a second replica does not start beside it)."""
        policy, loads = self.policy.current, {}
        for doc in self.store.unowned():
            now = self.clock()
            if not lease.held(now):
                return
            mall_id = doc["mall_id"]
            if rules.owner_of(policy, mall_id, doc["department"], doc["category"], {}, now)[0] is None:
                # nobody can take it yet: no read or write of its own (at night, every complaint
                # of the day waits here; a read each a minute grew the store's load all night)
                continue
            if mall_id not in loads:
                loads[mall_id] = self.store.open_load(mall_id)
            self._assign(doc["_id"], policy, loads[mall_id])

    def _assign(self, complaint_no, policy, load):
        """To the department's least loaded handler on shift now, if anyone is; `load` is the
        sweep's count of the mall's open assessments per handler, counted up here."""
        taken_by = None

        def decide(doc, now):
            nonlocal taken_by
            taken_by = None
            if doc["owner"]:  # somebody took it since the sweep read it
                return None
            owner, note = rules.owner_of(policy, doc["mall_id"], doc["department"], doc["category"], load, now)
            if owner is None:
                return None
            taken_by = owner.id
            return rules.reassignment(doc, owner.id, self.name, note or "on shift now", policy, now)

        self._record(complaint_no, decide, "the assignment")
        if taken_by:
            load[taken_by] = load.get(taken_by, 0) + 1

    @operation(
        Op(
            "GET",
            "/assessments/<string:complaint_no>",
            "A complaint's assessment with its history.",
            "assessment.read",
            responses={200: AssessmentOut},
        )
    )
    def get_assessment(self, complaint_no):
        caller = self.access.caller().require("assessment.read")  # before the look-up: a 404 would say it exists
        doc = self.store.get(complaint_no)
        caller.require("assessment.read", doc["mall_id"])
        return AssessmentOut().dump(doc)

    @operation(
        Op(
            "POST",
            "/assessments/<string:complaint_no>/corrections",
            "Correct category or risk; routing and deadlines follow.",
            "assessment.correct",
            body=CorrectionIn,
            signed=True,
            responses={200: AssessmentOut},
        )
    )
    def correct_assessment(self, complaint_no, data):
        """Correct category or risk: {field, value, reason}; routing and deadlines follow."""
        caller = self.access.caller()
        correction, policy = CorrectionIn().load(signed(data, caller)), self.policy.current

        def decide(doc, now):
            caller.require("assessment.correct", doc["mall_id"])
            return rules.reassessment(
                doc,
                correction["field"],
                correction["value"],
                correction["by"],
                correction["reason"],
                policy,
                now,
                self.store,
            )

        return AssessmentOut().dump(self._record(complaint_no, decide, "the correction"))

    @operation(
        Op(
            "POST",
            "/assessments/<string:complaint_no>/owner",
            "Reassign; the department follows the handler "
            "(the mall's duty supervisor covers any). After a review meeting only within its department "
            "(else 409).",
            "assessment.assign",
            body=ReassignmentIn,
            signed=True,
            responses={200: AssessmentOut},
            errors=(409,),
        )
    )
    def reassign(self, complaint_no, data):
        """Reassign: {owner_id, reason}; the department follows the handler."""
        caller = self.access.caller()
        request, policy = ReassignmentIn().load(signed(data, caller)), self.policy.current

        def decide(doc, now):
            caller.require("assessment.assign", doc["mall_id"])
            return rules.reassignment(doc, request["owner_id"], request["by"], request["reason"], policy, now)

        return AssessmentOut().dump(self._record(complaint_no, decide, "the reassignment"))

    @operation(
        Op(
            "GET",
            "/queue",
            "Open assessments, the most urgent deadline first.",
            "assessment.read",
            query=QueueQuery,
            responses={200: AssessmentQueue},
        )
    )
    def queue(self, query):
        """Open assessments of a mall, department or handler, most urgent deadline first."""
        caller = self.access.caller()
        query = QueueQuery().load(query)
        query["mall_id"] = caller.list_mall("assessment.read", query.get("mall_id"))
        selector = {k: query[k] for k in ("mall_id", "department") if query.get(k)}
        if "owner_id" in query:
            selector["owner.id"] = query["owner_id"]
        items = self.store.queue(selector, query["limit"])
        return {"items": AssessmentOut(many=True, exclude=("history",)).dump(items)}

    def _record(self, complaint_no, decide, doing):
        """Read, decide, compare-and-set (unit_of_work.change): `decide(doc, now)` answers
        (changes, history entry, event or None), or None when there is nothing to do. The
        tallies follow the change before its event leaves; the assessment as it is then."""

        def apply(doc, now):
            decision = decide(doc, now)
            if decision is None:
                return None
            changes, entry, event = decision
            return {"$set": changes, "$push": {"history": entry}}, [event] if event else []

        return change(
            self.store.assessments,
            complaint_no,
            apply,
            self.dispatch,
            self.name,
            self.clock,
            "assessment",
            f"{complaint_no} kept changing while {doing} was applied; try again",
            count=self.store.count_change,
        )

    def _on_event(self, event, decide):
        """An event of the assessment's case; an assessment not there breaks the contract."""
        try:
            self._record(event["complaint_no"], decide, event["event_type"])
        except NotFound:
            raise InvalidEvent(
                f"{event['event_type']} {event['event_id']}: no assessment {event['complaint_no']}"
            ) from None
