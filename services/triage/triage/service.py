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
from mallcare_common.contracts import COMPLAINT_REGISTERED, InvalidEvent, read_event
from mallcare_common.contracts import resolution as case_events
from mallcare_common.messaging import event_handler, new_outbox, outbox_dispatcher, publish_pending
from mallcare_common.mongo import leased_timer
from mallcare_common.policy import PolicyFiles
from mallcare_common.openapi import Op
from mallcare_common.operations import operation
from mallcare_common.web import signed

from . import rules
from .policy import load_policy
from .schemas import AssessmentOut, AssessmentQueue, CorrectionIn, QueueQuery, ReassignmentIn
from .storage import Assessments

ASSIGN_INTERVAL = 60   # seconds between looks for complaints that still have no owner


class TriageService(Service):
    name = "triage"

    store = Assessments()
    policy = PolicyFiles("triage.yml", load_policy)
    dispatch = outbox_dispatcher()

    @event_handler(COMPLAINT_REGISTERED.source, COMPLAINT_REGISTERED.name)
    def handle_complaint_registered(self, body):
        """Assess once; a redelivered event finds the assessment and changes nothing."""
        event = read_event(body, COMPLAINT_REGISTERED)
        if self.store.exists(event["complaint_no"]):
            return
        policy = self.policy.current
        if event["mall_id"] not in policy.malls:
            raise InvalidEvent(f"unknown mall {event['mall_id']} in {event['event_id']}")
        now = self.clock()
        assessment = rules.assess({**event["payload"], "mall_id": event["mall_id"]}, policy, now, self.store)
        doc, triaged = rules.new_assessment(event, assessment, now)
        doc.update(new_outbox(triaged, now))
        if self.store.insert_new(doc):
            self.store.count_change(None, doc)
            publish_pending(self.store.assessments, self.dispatch, self.name, now, [doc])

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
        doc, now = self.store.find(event["complaint_no"]), self.clock()
        if doc is None:
            raise InvalidEvent(f"{event['event_type']} {event['event_id']}: no assessment {event['complaint_no']}")
        changes, entry = rules.case_status(doc, event, now)
        later = {"$or": [{"status_at": None}, {"status_at": {"$lt": event["occurred_at"]}}]}
        updated = self.store.update(doc["_id"], changes, entry, None, now, where=later)
        if updated is not None:
            self.store.count_change(doc, updated)

    @event_handler(case_events.REVIEW_MEETING_DECIDED.source, case_events.REVIEW_MEETING_DECIDED.name)
    def handle_review_meeting_decided(self, body):
        """R2.4: the meeting's department and owner become the assessment's, announced as a
        reassignment so the case and the SLA clocks name the same; applied once."""
        event = read_event(body, case_events.REVIEW_MEETING_DECIDED)
        doc, now, policy = self.store.find(event["complaint_no"]), self.clock(), self.policy.current
        if doc is None:
            raise InvalidEvent(f"review_meeting_decided {event['event_id']}: no assessment {event['complaint_no']}")
        if doc.get("meeting"):
            return
        changes, entry, published = rules.meeting_decision(doc, event, policy, self.store.open_load(doc["mall_id"]),
                                                           now)
        self._record(doc, changes, entry, published, now, where={"meeting": None})

    @leased_timer(ASSIGN_INTERVAL, lease="assign", ttl=timedelta(seconds=ASSIGN_INTERVAL))
    def assign_unowned(self, lease):
        """R2.5: a complaint that came in while nobody of its department was on shift
        gets an owner as soon as someone is (one replica at a time). Every unowned one is
        looked at, the earliest first, however many wait for a shift elsewhere (the lease
        renewed through a long backlog, so a second replica does not start beside it)."""
        now, policy = self.clock(), self.policy.current
        loads = {}
        for doc in self.store.unowned():
            if not lease.held(self.clock()):
                return
            mall_id = doc["mall_id"]
            if mall_id not in loads:
                loads[mall_id] = self.store.open_load(mall_id)
            load = loads[mall_id]
            owner, note = rules.owner_of(policy, mall_id, doc["department"], doc["category"], load, now)
            if owner:
                changes, entry, event = rules.reassignment(doc, owner.id, self.name, note or "on shift now", policy,
                                                           now)
                if self._record(doc, changes, entry, event, now, where={"owner": None}):   # nobody took it meanwhile
                    load[owner.id] = load.get(owner.id, 0) + 1

    @operation(Op("GET", "/assessments/<string:complaint_no>", "A complaint's assessment with its history.",
                  "assessment.read", responses={200: AssessmentOut}))
    def get_assessment(self, complaint_no):
        caller = self.access.caller()
        doc = self.store.get(complaint_no)
        caller.require("assessment.read", doc["mall_id"])
        return AssessmentOut().dump(doc)

    @operation(Op("POST", "/assessments/<string:complaint_no>/corrections", "Correct category or risk; routing and "
                  "deadlines follow.", "assessment.correct", body=CorrectionIn, signed=True,
                  responses={200: AssessmentOut}))
    def correct_assessment(self, complaint_no, data):
        """Correct category or risk: {field, value, reason}; routing and deadlines follow."""
        caller = self.access.caller()
        correction = CorrectionIn().load(signed(data, caller))
        doc, now, policy = self.store.get(complaint_no), self.clock(), self.policy.current
        caller.require("assessment.correct", doc["mall_id"])
        changes, entry, event = rules.reassessment(doc, correction["field"], correction["value"], correction["by"],
                                                   correction["reason"], policy, now, self.store)
        return self._record(doc, changes, entry, event, now)

    @operation(Op("POST", "/assessments/<string:complaint_no>/owner", "Reassign; the department follows the handler "
                  "(the mall's duty supervisor covers any). After a review meeting only within its department "
                  "(else 409).", "assessment.assign", body=ReassignmentIn, signed=True,
                  responses={200: AssessmentOut}, errors=(409,)))
    def reassign(self, complaint_no, data):
        """Reassign: {owner_id, reason}; the department follows the handler."""
        caller = self.access.caller()
        request = ReassignmentIn().load(signed(data, caller))
        doc, now = self.store.get(complaint_no), self.clock()
        caller.require("assessment.assign", doc["mall_id"])
        changes, entry, event = rules.reassignment(doc, request["owner_id"], request["by"], request["reason"],
                                                   self.policy.current, now)
        return self._record(doc, changes, entry, event, now)

    @operation(Op("GET", "/queue", "Open assessments, the most urgent deadline first.", "assessment.read",
                  query=QueueQuery, responses={200: AssessmentQueue}))
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

    def _record(self, doc, changes, entry, event, now, where=None):
        updated = self.store.update(doc["_id"], changes, entry, event, now, where)
        if updated is None:   # `where` no longer held: somebody else applied it (only the handlers pass one)
            return None
        self.store.count_change(doc, updated)
        publish_pending(self.store.assessments, self.dispatch, self.name, now, [updated])
        return AssessmentOut().dump(updated)
