"""Resolution: owns each complaint's case from triage to closure (R3.1-R3.10) and the
adverse events stores report (R3.9).

A case opens on complaint_triaged and follows triage's reassignments and
corrections; feedback's answers close or reopen it; a customer's reply intake received
goes on its timeline, and so does each message notify sent the customer, or could not.
Handlers act over HTTP
(`POST /cases/<number>/<action>`) or RPC (`act(number, action, data)`), signed in
with their staff token: who acts, their role and their malls come from it. The
ACTIONS tables of domain.actions and domain.incidents list the actions. Each action is
checked against the case's state, the actor's role and mall, the law and the caps (the
domain decides; its refusals are answered here as 409 and 403), then written with its
timeline entries and events in one document update, and the events leave through the
outbox.

Every read shows the texts of cases and incidents masked (phones, e-mails, ID and member
numbers; an incident's customer by name too: personal.MaskedOut), and an incident's
customer masked; the full customer and report come only from
`GET /incidents/<number>/customer?purpose=...` (RPC `incident_customer`), for
`customer.contact` at the incident's mall, and each such read is audited (audit.py).
Closed cases and finished incidents are anonymised after the retention period
(retention.py).

R7.5: merchant relations sends a tenant's case to its merchant (`merchant-request`) and may
take it back (`merchant-takeback`). The merchant signs in with its own key (role
`merchant`, one merchant at one mall) and reaches only `/merchant/cases...`: the cases with
it now, the complaint read from intake with the customer masked, and its reply with
evidence and its rectifications (domain.merchants); any other case is a 404 to it.
"""

import logging
from datetime import timedelta
from functools import partial

import eventlet
from marshmallow import ValidationError
from nameko.rpc import RpcProxy
from prometheus_client import Counter

from mallcare_common import web
from mallcare_common.audit import AuditLog
from mallcare_common.auth import Forbidden
from mallcare_common.base import Service
from mallcare_common.batches import batched_event_handler, event_batch, read_all
from mallcare_common.contracts import (
    COMPLAINT_CORRECTED,
    COMPLAINT_REASSIGNED,
    COMPLAINT_TRIAGED,
    CUSTOMER_DISSATISFIED,
    CUSTOMER_SATISFIED,
    InvalidEvent,
    read_event,
)
from mallcare_common.contracts.analytics import SLA_AT_RISK, SLA_BREACHED
from mallcare_common.contracts.feedback import REVISIT_DONE
from mallcare_common.contracts.intake import CUSTOMER_REPLIED
from mallcare_common.contracts.notify import MESSAGE_FAILED, MESSAGE_SENT
from mallcare_common.contracts.resolution import BATCH_RESULT_PUBLISHED
from mallcare_common.messaging import event_handler, new_outbox, outbox_dispatcher, publish_pending
from mallcare_common.mongo import leased_timer, next_sequence
from mallcare_common.policy import PolicyFiles
from mallcare_common.openapi import Op
from mallcare_common.operations import Created, operation
from mallcare_common.retention import Retention
from mallcare_common.rpc import ask, rpc
from mallcare_common.unit_of_work import change, write
from mallcare_common.web import CLIENT_ERRORS, Conflict, NotFound, signed

from .domain import actions, batches, incidents, merchants
from .domain.errors import NoAuthority, StateConflict
from .domain.opening import new_case
from .domain.step import Actor, Step
from .policy import load_policy
from .retention import anonymise as anonymise_cases
from .schemas import (
    BATCH_ACTIONS,
    CASE_ACTIONS,
    INCIDENT_ACTIONS,
    INCIDENT_CUSTOMER_READ,
    MERCHANT_ACTIONS,
    BatchCheckList,
    BatchCheckOut,
    BatchCheckQuery,
    BatchNoticeList,
    CaseOut,
    CaseQuery,
    CaseQueue,
    Contact,
    IncidentIn,
    IncidentList,
    IncidentOut,
    IncidentQuery,
    MerchantCaseList,
    MerchantCaseOut,
    MerchantCaseQuery,
    ProposalIn,
    RectificationList,
    RectificationOut,
    RectificationQuery,
    StaffContactOut,
    TimelineOut,
)
from .storage import Cases, step_update

log = logging.getLogger(__name__)

ACTIONS_TOTAL = Counter(
    "mallcare_resolution_actions_total", "Actions on cases and incidents, by outcome.", ["action", "outcome"]
)

NOT_OPEN_PAUSE = 2  # seconds before an event for a case not opened yet goes back to its queue
# Breaches of these deadlines move the case up a level; the others (execution tasks,
# rectifications, revisits, incidents) are watched on dashboards and alerts.
ESCALATING_CLOCKS = ("first_response", "resolution", "re_review", "review_meeting")
# R7.13: notify's messages that carry a report to staff, about no case: not for a timeline
STAFF_REPORTS = ("report",)
CLOSING_INTERVAL = 60  # seconds between looks for unreachable customers' cases due to close by rule


class CaseNotOpenYet(Exception):
    """A triage or feedback event for a case this service has not opened yet: retried."""


def decide(rule, step, request, policy):
    """Apply a domain rule to a step; its refusals leave as the client errors HTTP and RPC
    answer (409 Conflict, 403 Forbidden), with the domain's message."""
    try:
        rule(step, request, policy)
    except StateConflict as exc:
        raise Conflict(str(exc)) from exc
    except NoAuthority as exc:
        raise Forbidden(str(exc)) from exc


class ResolutionService(Service):
    name = "resolution"

    store = Cases()
    policy = PolicyFiles("resolution.yml", load_policy)
    dispatch = outbox_dispatcher()
    audit = AuditLog()
    retention = Retention(anonymise_cases)
    intake = RpcProxy("intake")  # a merchant reads the complaint as intake shows it (masked)

    # --- events -------------------------------------------------------------------------------

    @batched_event_handler(COMPLAINT_TRIAGED.source, COMPLAINT_TRIAGED.name)
    def handle_complaint_triaged(self, body):
        """One triaged complaint alone: what its batch handed back (a broken contract is
        dead-lettered from here, anything else retried)."""
        self._open_cases([self._triaged(body)])

    @event_batch
    def take_triaged(self, items):
        """Triaged complaints in batches (mallcare_common.batches): their cases opened in
        one insert and announced in one mark-sent."""
        answers, events = read_all(items, self._triaged)
        self._open_cases(events)
        return answers

    def _triaged(self, body):
        event = read_event(body, COMPLAINT_TRIAGED)
        if event["mall_id"] not in self.policy.current.malls:
            raise InvalidEvent(f"unknown mall {event['mall_id']} in {event['event_id']}")
        return event

    def _open_cases(self, events):
        """Open each case once; a redelivered event finds it and changes nothing. A product
        complaint naming its batch joins the batch's check first (R7.6), so that a crash in
        between leaves the case to the redelivery, which joins it again to no effect."""
        now, policy = self.clock(), self.policy.current
        cases, published = [], []
        for event in events:
            case, made = new_case(event, policy, now)
            case.update(new_outbox(made[0], now, *made[1:]))
            cases.append(case)
            number = batches.attach(case, event, policy)
            if number and self._join_batch_check(number, case, now)["state"] == "published":
                published.append(case)
        opened = self.store.insert_new_many(self.store.cases, cases)
        publish_pending(self.store.cases, self.dispatch, self.name, now, opened)
        for case in published:  # its batch's result was published before it came: it has it at once
            check = self.store.get(self.store.batch_checks, case["batch_check_no"], "batch check")
            self._note_batch_result(check, case["_id"])

    def _join_batch_check(self, number, case, now):
        """The batch's check, opened by this case or joined by it (R7.6)."""
        check, opened = batches.new_check(number, case, self.policy.current, now)
        check.update(new_outbox(opened, now))
        if self.store.insert_new(self.store.batch_checks, check):
            publish_pending(self.store.batch_checks, self.dispatch, self.name, now, [check])
            return check
        return self.store.join_batch_check(number, case["_id"])

    @event_handler(BATCH_RESULT_PUBLISHED.source, BATCH_RESULT_PUBLISHED.name)
    def handle_batch_result_published(self, body):
        """R7.6: a batch's published result goes on the timeline of every case of the batch."""
        event = read_event(body, BATCH_RESULT_PUBLISHED)
        check = self.store.get(self.store.batch_checks, event["complaint_no"], "batch check")
        for complaint_no in event["payload"]["complaint_nos"]:
            self._note_batch_result(check, complaint_no)

    def _note_batch_result(self, check, complaint_no):
        """The result on one case's timeline, once (its request id is the check's)."""
        request_id = f"{check['_id']}:result"

        def apply(case, now):
            if request_id in case["request_ids"]:
                return None
            step = Step(case, Actor(self.name, "service"), now)
            batches.note_result(step, check, self.policy.current)
            return step_update(step, request_id)

        change(
            self.store.cases,
            complaint_no,
            apply,
            self.dispatch,
            self.name,
            self.clock,
            "case",
            f"{complaint_no} kept changing while its batch's result was noted",
        )

    @event_handler(COMPLAINT_REASSIGNED.source, COMPLAINT_REASSIGNED.name)
    def handle_complaint_reassigned(self, body):
        event = read_event(body, COMPLAINT_REASSIGNED)
        self._on_event(COMPLAINT_REASSIGNED, event, actions.triage_changed, event)

    @event_handler(COMPLAINT_CORRECTED.source, COMPLAINT_CORRECTED.name)
    def handle_complaint_corrected(self, body):
        event = read_event(body, COMPLAINT_CORRECTED)
        self._on_event(COMPLAINT_CORRECTED, event, actions.triage_changed, event)

    @event_handler(SLA_BREACHED.source, SLA_BREACHED.name)
    def handle_sla_breached(self, body):
        """A breach escalates (R3.5, R5.5): the case goes one level up, on its timeline; a
        merchant's late reply (R7.5) is written on the timeline for merchant relations."""
        event = read_event(body, SLA_BREACHED)
        clock = event["payload"]
        if clock["clock"] == "merchant_reply":  # R7.5: merchant relations sees it and chases the merchant
            self._on_event(SLA_BREACHED, event, merchants.note_overdue, clock)
            return
        if clock["clock"] not in ESCALATING_CLOCKS:
            return
        note = f"{clock['clock']} deadline {clock['due_at'].isoformat()} passed ({clock['owner'] or 'no owner'})"
        self._on_event(SLA_BREACHED, event, actions.escalate, {"reason": "breach", "note": note})

    @event_handler(SLA_AT_RISK.source, SLA_AT_RISK.name)
    def handle_sla_at_risk(self, body):
        """A near deadline is written on the case's timeline for its owner; nothing escalates."""
        event = read_event(body, SLA_AT_RISK)
        clock = event["payload"]
        if clock["clock"] not in ESCALATING_CLOCKS:
            return
        self._on_event(
            SLA_AT_RISK, event, actions.note_at_risk, {k: clock[k] for k in ("clock", "due_at", "owner", "at_risk_at")}
        )

    @event_handler(CUSTOMER_REPLIED.source, CUSTOMER_REPLIED.name)
    def handle_customer_replied(self, body):
        """The customer's answer to one of our messages goes on the case's timeline (R3.10)."""
        event = read_event(body, CUSTOMER_REPLIED)
        self._on_event(CUSTOMER_REPLIED, event, actions.note_customer_reply, event["payload"])

    @event_handler(CUSTOMER_DISSATISFIED.source, CUSTOMER_DISSATISFIED.name)
    def handle_customer_dissatisfied(self, body):
        """R4.2: the case reopens, with a new deadline."""
        event = read_event(body, CUSTOMER_DISSATISFIED)
        answer = event["payload"]
        reason = f"customer dissatisfied (score {answer['score']}): {', '.join(answer['reasons']) or 'no reason given'}"
        self._on_event(CUSTOMER_DISSATISFIED, event, actions.reopen, {"reason": reason})

    @event_handler(CUSTOMER_SATISFIED.source, CUSTOMER_SATISFIED.name)
    def handle_customer_satisfied(self, body):
        event = read_event(body, CUSTOMER_SATISFIED)
        reason = f"customer satisfied (score {event['payload']['score']})"
        self._on_event(CUSTOMER_SATISFIED, event, actions.close, {"reason": reason})

    @event_handler(REVISIT_DONE.source, REVISIT_DONE.name)
    def handle_revisit_done(self, body):
        """R4.1, R4.2: a revisit that ended unreachable sets the case to close by rule
        after the policy's waiting time; an answered one is handled by the answer's event."""
        event = read_event(body, REVISIT_DONE)
        if event["payload"]["outcome"] == "unreachable":
            self._on_event(REVISIT_DONE, event, actions.note_unreachable, event["payload"])

    @event_handler(MESSAGE_SENT.source, MESSAGE_SENT.name)
    def handle_message_sent(self, body):
        """R3.10, R7.1: every message to the customer is on the timeline (masked)."""
        event = read_event(body, MESSAGE_SENT)
        if event["payload"]["kind"] in STAFF_REPORTS:
            return
        self._on_event(MESSAGE_SENT, event, actions.note_message, {"action": "message_sent", **event["payload"]})

    @event_handler(MESSAGE_FAILED.source, MESSAGE_FAILED.name)
    def handle_message_failed(self, body):
        """A message that could not reach the customer is on the timeline, for the owner to follow up."""
        event = read_event(body, MESSAGE_FAILED)
        if event["payload"]["kind"] in STAFF_REPORTS:
            return
        self._on_event(MESSAGE_FAILED, event, actions.note_message, {"action": "message_failed", **event["payload"]})

    @leased_timer(CLOSING_INTERVAL, lease="closing", ttl=timedelta(seconds=3 * CLOSING_INTERVAL))
    def close_unreachable(self, lease):
        """Close, without an answer, every case whose unreachable customer's waiting time is
        over, oldest first (one replica at a time: a lease, renewed through a backlog). A
        case a handler changed meanwhile is left to the next look."""
        now, policy = self.clock(), self.policy.current
        for case in self.store.closing_by_rule(now):
            at = self.clock()
            if not lease.held(at):
                return
            step = Step(case, Actor(self.name, "service"), at)
            actions.close_without_answer(step, {}, policy)
            updated = write(self.store.cases, case, *step_update(step), at)
            if updated is not None:
                publish_pending(self.store.cases, self.dispatch, self.name, at, [updated])

    # --- cases --------------------------------------------------------------------------------

    @operation(
        Op(
            "GET",
            "/cases",
            "Open cases, the earliest deadline first.",
            "case.read",
            query=CaseQuery,
            responses={200: CaseQueue},
        )
    )
    def queue(self, query):
        """Open cases of a mall, handler, department or level, or whose proposal awaits a role's
        approval, earliest deadline first."""
        caller = self.access.caller()
        query = CaseQuery().load(query)
        query["mall_id"] = caller.list_mall("case.read", query.get("mall_id"))
        selector = {k: query[k] for k in ("mall_id", "owner_id", "department", "level", "state") if query.get(k)}
        role = query.get("awaiting_approval_by")
        if role:
            # who a proposal waits for is worked out now (the case may have been regraded or
            # escalated since), so every proposed case is read and the limit applies after
            policy = self.policy.current
            items = [c for c in self.store.awaiting_approval(selector) if actions.awaiting_approver(c, policy) == role]
            items = items[: query["limit"]]
        else:
            items = self.store.queue(selector, query["limit"])
        return {"items": CaseOut(many=True, exclude=("timeline",)).dump(items)}

    @operation(
        Op(
            "GET",
            "/cases/<string:complaint_no>",
            "A case with its whole timeline (R3.10).",
            "case.read",
            responses={200: CaseOut},
        )
    )
    def get_case(self, complaint_no):
        return self._get_case(self.access.caller(), complaint_no)

    @operation(
        Op(
            "GET",
            "/cases/<string:complaint_no>/timeline",
            "A case's timeline.",
            "case.read",
            responses={200: TimelineOut},
        )
    )
    def get_timeline(self, complaint_no):
        case = self._get_case(self.access.caller(), complaint_no)
        return {"complaint_no": complaint_no, "timeline": case["timeline"]}

    @operation(*CASE_ACTIONS)
    def act(self, complaint_no, action, data):
        """One handler action on a case (see ACTIONS); returns the case as it is now."""
        caller = self.access.caller()
        if action not in actions.ACTIONS:
            raise NotFound(f"no action {action}; actions: {', '.join(actions.ACTIONS)}")
        schema, rule = actions.ACTIONS[action]
        return CaseOut().dump(
            self._act(caller, self.store.cases, complaint_no, action, schema().load(signed(data, caller)), rule, Step)
        )

    @operation(
        Op(
            "POST",
            "/cases/<string:complaint_no>/proposal-check",
            "What a draft proposal would meet: the law, the caps, who must approve.",
            "case.act",
            body=ProposalIn,
            signed=True,
        )
    )
    def check_proposal(self, complaint_no, data):
        """What a draft proposal would meet before it is made: the law, the caps, who must approve."""
        caller = self.access.caller()
        request = ProposalIn().load(signed(data, caller))
        case = self.store.get(self.store.cases, complaint_no, "case")
        actor = self._actor(caller, case["mall_id"], "case.act")
        return web.jsonable(actions.check_proposal(case, request, actor, self.policy.current))

    @operation(
        Op(
            "GET",
            "/rectifications",
            "Rectification tasks, the earliest due first (R3.8).",
            "case.read",
            query=RectificationQuery,
            responses={200: RectificationList},
        )
    )
    def rectifications(self, query):
        """R3.8: rectification tasks of the caller's mall (or the one named), open (default) or
        done, earliest due first."""
        caller = self.access.caller()
        query = RectificationQuery().load(query)
        mall_id = caller.list_mall("case.read", query.get("mall_id"))
        items = self.store.rectifications(mall_id, query["status"], query["limit"])
        return {"items": RectificationOut(many=True).dump(items)}

    @operation(
        Op(
            "GET",
            "/staff/<string:staff_id>/contact",
            "Where a member of staff is told at work: notify's read, for a high-risk case's lead (R7.7).",
            "staff.notify",
            responses={200: StaffContactOut},
        )
    )
    def staff_contact(self, staff_id):
        self.access.caller().require("staff.notify")
        staff = self.policy.current.staff(staff_id)
        if staff is None:
            raise NotFound(f"no staff {staff_id}")
        return StaffContactOut().dump(staff)

    @rpc(expected_exceptions=CLIENT_ERRORS)
    def staff_at(self, mall_id):
        """R7.13: who works at a mall, with their role and the departments they head: analytics
        sends each month's report to the mall's management and its part to each department's head."""
        self.access.caller().require("staff.notify")
        return [
            {"staff_id": s.id, "name": s.name, "role": s.role, "department": s.department, "head_of": list(s.head_of)}
            for s in self.policy.current.staff_at(mall_id)
        ]

    def _get_case(self, caller, complaint_no):
        """The case with its whole timeline (R3.10)."""
        case = self.store.get(self.store.cases, complaint_no, "case")
        caller.require("case.read", case["mall_id"])
        return CaseOut().dump(case)

    # --- a merchant's own cases (R7.5) ----------------------------------------------------------

    @operation(
        Op(
            "GET",
            "/merchant/cases",
            "The cases sent to the signed-in merchant and not taken back, the earliest reply due first (R7.5).",
            "merchant.case",
            query=MerchantCaseQuery,
            responses={200: MerchantCaseList},
        )
    )
    def merchant_cases(self, query):
        caller = self.access.caller().require("merchant.case")
        query = MerchantCaseQuery().load(query)
        items = self.store.with_merchant(caller.malls[0], caller.merchant, query["limit"])
        views = [merchants.view(case, caller.merchant) for case in items]
        return {"items": MerchantCaseOut(many=True, exclude=("complaint",)).dump(views)}

    @operation(
        Op(
            "GET",
            "/merchant/cases/<string:complaint_no>",
            "One case sent to the signed-in merchant: the complaint with the customer masked, what we "
            "asked and by when, its replies and rectifications (R7.5).",
            "merchant.case",
            responses={200: MerchantCaseOut},
        )
    )
    def merchant_case(self, complaint_no):
        caller = self.access.caller().require("merchant.case")
        case = self._merchants_case(caller, complaint_no)
        complaint = ask(self.access, self.intake.get_complaint, complaint_no)
        return MerchantCaseOut().dump(merchants.view(case, caller.merchant, complaint))

    @operation(*MERCHANT_ACTIONS)
    def merchant_act(self, complaint_no, action, data):
        """What the merchant does on a case sent to it (actions.MERCHANT_ACTIONS)."""
        caller = self.access.caller().require("merchant.case")
        if action not in actions.MERCHANT_ACTIONS:
            raise NotFound(f"no action {action}; actions: {', '.join(actions.MERCHANT_ACTIONS)}")
        schema, rule = actions.MERCHANT_ACTIONS[action]
        request = schema().load(signed(data, caller))  # a bad body is the same 422 whatever the case
        self._merchants_case(caller, complaint_no)
        updated = self._act(
            caller,
            self.store.cases,
            complaint_no,
            f"merchant-{action}",
            request,
            partial(rule, merchant_id=caller.merchant),
            Step,
            permission="merchant.case",
        )
        return MerchantCaseOut().dump(merchants.view(updated, caller.merchant))

    def _merchants_case(self, caller, complaint_no):
        """The case, when it is with the caller's merchant; 404 otherwise (another merchant's case,
        or one taken back, is not theirs to know of)."""
        case = self.store.cases.find_one({"_id": complaint_no}, {"outbox": 0})
        if case is None or case["mall_id"] not in caller.malls or not merchants.with_merchant(case, caller.merchant):
            raise NotFound(f"no case {complaint_no} with merchant {caller.merchant}")
        return case

    # --- product batches (R7.6) -----------------------------------------------------------------

    @operation(
        Op(
            "GET",
            "/batch-checks",
            "Product batch checks of a mall, or of a complaint's batch, the latest opened first (R7.6).",
            "case.read",
            query=BatchCheckQuery,
            responses={200: BatchCheckList},
        )
    )
    def list_batch_checks(self, query):
        caller = self.access.caller()
        query = BatchCheckQuery().load(query)
        mall_id = caller.list_mall("case.read", query.get("mall_id"))
        selector = {"mall_id": mall_id, "state": query.get("state"), "complaint_nos": query.get("complaint_no")}
        items = self.store.list_batch_checks(selector, query["limit"])
        return {"items": [self._batch_out(c, exclude=("timeline",)) for c in items]}

    @operation(
        Op(
            "GET",
            "/batch-checks/<string:number>",
            "A product batch's check with its steps and timeline (R7.6).",
            "case.read",
            responses={200: BatchCheckOut},
        )
    )
    def get_batch_check(self, number):
        caller = self.access.caller().require("case.read")  # before the look-up: a 404 would say it exists
        check = self.store.get(self.store.batch_checks, number, "batch check")
        caller.require("case.read", check["mall_id"])
        return self._batch_out(check)

    @operation(
        Op(
            "GET",
            "/malls/<string:mall_id>/batch-notices",
            "A mall's published batch results, the latest first: what its public notice page shows (R7.6).",
            "case.read",
            responses={200: BatchNoticeList},
        )
    )
    def batch_notices(self, mall_id):
        self.access.caller().require("case.read", mall_id)
        checks = self.store.list_batch_checks({"mall_id": mall_id, "state": "published"}, 100)
        checks = sorted(checks, key=lambda c: c["published"]["at"], reverse=True)
        return BatchNoticeList().dump({"items": [batches.notice(c) for c in checks]})

    @operation(*BATCH_ACTIONS)
    def act_on_batch_check(self, number, action, data):
        """A step of a batch check (batches.ACTIONS), by whom resolution.yml names."""
        caller = self.access.caller()
        if action not in batches.ACTIONS:
            raise NotFound(f"no action {action}; actions: {', '.join(batches.ACTIONS)}")
        schema, rule = batches.ACTIONS[action]
        updated = self._act(
            caller,
            self.store.batch_checks,
            number,
            f"batch-{action}",
            schema().load(signed(data, caller)),
            rule,
            batches.BatchStep,
        )
        return self._batch_out(updated)

    def _batch_out(self, check, exclude=()):
        return BatchCheckOut(exclude=exclude).dump(
            {**check, "next_step": batches.next_step(check, self.policy.current)}
        )

    # --- adverse events (R3.9) ------------------------------------------------------------------

    @operation(
        Op(
            "POST",
            "/incidents",
            "Report an adverse event (R3.9); the same request_id again returns the same incident (200).",
            "incident.report",
            body=IncidentIn,
            signed=True,
            responses={201: IncidentOut, 200: IncidentOut},
            errors=(409,),
        )
    )
    def report_incident(self, data):
        """R3.9: a store reports an adverse event; the same request id again returns the same incident."""
        incident, created = self._report_incident(self.access.caller(), data)
        return Created("incident", incident, created)

    @operation(
        Op(
            "GET",
            "/incidents",
            "Incidents, the earliest reported first.",
            "incident.read",
            query=IncidentQuery,
            responses={200: IncidentList},
        )
    )
    def list_incidents(self, query):
        caller = self.access.caller()
        query = IncidentQuery().load(query)
        mall_id = caller.list_mall("incident.read", query.get("mall_id"))
        items = self.store.list_incidents(mall_id, query.get("state"), query["limit"])
        return {"items": IncidentOut(many=True, exclude=("timeline", "customer")).dump(items)}

    @operation(
        Op(
            "GET",
            "/incidents/<string:number>",
            "The whole report, the customer masked.",
            "incident.read",
            responses={200: IncidentOut},
        )
    )
    def get_incident(self, number):
        """The whole report, the customer masked: for staff of the incident's mall only."""
        caller = self.access.caller().require("incident.read")  # before the look-up: a 404 would say it exists
        incident = self.store.get(self.store.incidents, number, "incident")
        caller.require("incident.read", incident["mall_id"])
        return IncidentOut().dump(incident)

    @operation(INCIDENT_CUSTOMER_READ)
    def incident_customer(self, number, query):
        """The full customer, audited: 403 without customer.contact, 422 without a purpose, 410 once anonymised."""
        caller = self.access.caller().require("incident.read")  # before the look-up: a 404 would say it exists
        incident = self.store.get(self.store.incidents, number, "incident")
        caller.require("incident.read", incident["mall_id"])
        record = self.audit(
            self.store.db,
            caller,
            subject="incident",
            doc=incident,
            purpose_args=query,
            now=self.clock(),
            permission="customer.contact",
        )
        return {
            "number": number,
            "mall_id": incident["mall_id"],
            "customer": Contact().dump(incident["customer"]),
            "description": incident["description"],
            "suggested_handling": incident["suggested_handling"],
            "audit_id": record["_id"],
        }

    @operation(*INCIDENT_ACTIONS)
    def act_on_incident(self, number, action, data):
        caller = self.access.caller()
        if action not in incidents.ACTIONS:
            raise NotFound(f"no action {action}; actions: {', '.join(incidents.ACTIONS)}")
        schema, rule = incidents.ACTIONS[action]
        return IncidentOut().dump(
            self._act(
                caller,
                self.store.incidents,
                number,
                f"incident-{action}",
                schema().load(signed(data, caller)),
                rule,
                incidents.IncidentStep,
                permission="incident.act",
            )
        )

    # --- the one way a case or an incident changes ---------------------------------------------

    def _report_incident(self, caller, data):
        request = IncidentIn().load(signed(data, caller))
        policy, now = self.policy.current, self.clock()
        if request["mall_id"] not in policy.malls:
            raise ValidationError({"mall_id": ["Unknown mall."]})
        actor = self._actor(caller, request["mall_id"], "incident.report")
        mall = policy.malls.get(request["mall_id"])
        day = mall.calendar.local(now).date()
        number = incidents.incident_number(mall.code, day, next_sequence(self.store.db, f"{mall.code}-AE-{day}"))
        # refuses bad input before any claim
        doc, reported = incidents.new_incident(number, request, actor, policy, now)
        doc.update(new_outbox(reported, now))
        if request.get("request_id"):
            earlier = self._earlier_report(request["request_id"], number)
            if earlier is not None:
                ACTIONS_TOTAL.labels("incident-report", "repeated").inc()
                return IncidentOut().dump(earlier), False
        self.store.insert_new(self.store.incidents, doc)
        publish_pending(self.store.incidents, self.dispatch, self.name, now, [doc])
        ACTIONS_TOTAL.labels("incident-report", "ok").inc()
        return IncidentOut().dump(doc), True

    def _actor(self, caller, mall_id, permission):
        """Who acts, as their token says: refused unless their role may and the mall is theirs."""
        caller.require(permission, mall_id)
        staff = self.policy.current.staff(caller.user)
        return Actor(caller.user, caller.role, staff.name if staff else caller.user)

    def _earlier_report(self, request_id, number):
        """The incident an earlier report with this request id made (a moment behind, if
        both race), or None when this report is the first: it claimed the id for `number`,
        or took over the claim of a report whose incident was never written."""
        claimed = self.store.claim_request(request_id, number)
        if claimed == number:
            return None
        for _ in range(20):
            earlier = self.store.incidents.find_one({"_id": claimed}, {"outbox": 0})
            if earlier is not None:
                return earlier
            eventlet.sleep(0.1)
        if self.store.take_over_request(request_id, claimed, number):
            return None
        raise Conflict("another report with this request id is being written; try again")

    def _act(self, caller, collection, number, action, request, rule, step_class, permission="case.act"):
        """Read, decide, compare-and-set (unit_of_work.change); a request id already applied
        returns the document as it is."""
        request_id, outcome = request.get("request_id"), "ok"

        def apply(doc, now):
            nonlocal outcome
            if request_id and request_id in doc["request_ids"]:
                outcome = "repeated"
                return None
            step = step_class(doc, self._actor(caller, doc["mall_id"], permission), now)
            try:
                decide(rule, step, request, self.policy.current)
            except CLIENT_ERRORS:
                ACTIONS_TOTAL.labels(action, "refused").inc()
                raise
            return step_update(step, request_id)

        updated = change(
            collection,
            number,
            apply,
            self.dispatch,
            self.name,
            self.clock,
            step_class.what,
            f"{number} kept changing while {action} was applied; try again",
        )
        ACTIONS_TOTAL.labels(action, outcome).inc()
        return updated

    def _on_event(self, event_type, event, rule, request):
        """Apply another service's event to its case once (the event id is the request id).
        An event the case's state does not allow is recorded on the timeline, not retried."""
        policy, actor = self.policy.current, Actor(event_type.source, "service")

        def apply(case, now):
            if event["event_id"] in case["request_ids"]:
                return None
            step = Step(case, actor, now)
            try:
                rule(step, request, policy)
            except StateConflict as exc:
                log.warning("%s %s not applied to %s: %s", event["event_type"], event["event_id"], case["_id"], exc)
                step = Step(case, actor, now)
                step.log(
                    "event_not_applied", event_type=event["event_type"], event_id=event["event_id"], reason=str(exc)
                )
            return step_update(step, event["event_id"])

        try:
            change(
                self.store.cases,
                event["complaint_no"],
                apply,
                self.dispatch,
                self.name,
                self.clock,
                "case",
                f"{event['complaint_no']} kept changing while {event['event_type']} was applied",
            )
        except NotFound:
            # its complaint_triaged is on another queue and may be a moment behind:
            # pause before the retry so the delivery limit spans seconds, not milliseconds
            eventlet.sleep(NOT_OPEN_PAUSE)
            raise CaseNotOpenYet(f"{event['event_type']} {event['event_id']} for {event['complaint_no']}") from None
        except Conflict as exc:
            raise CaseNotOpenYet(str(exc)) from exc
