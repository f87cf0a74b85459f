"""Analytics: every event kept once (the base of every read model, R5) and the SLA
clocks (R5.5, R6.2).

Each event that sets a deadline starts a clock, the event that meets it stops it
(clocks.py). A sweep every SLA_TICK_SECONDS, under a lease so that one replica
sweeps, publishes `sla_at_risk` and `sla_breached` once per clock, also for the
deadlines that passed while analytics was down. Every published event type has a
consumer here from the day it is published, so none waits unroutable in an outbox.

The sweep's cost follows what fell due, not how many clocks run: it reads the due
clocks from an index on (stopped_at, breach_reported, due_at), the ones past their
at-risk point from one on (stopped_at, at_risk_reported, at_risk_at), a chunk at a
time, and flags a chunk in one bulk write (storage.flag_breaches, flag_risks). Each
clock's update there sets its flag and pushes its event into its own outbox, and is a
compare-and-set on the version the sweep read, with the flag unset. Why that is once
per clock, across replicas, restarts and `_settle`: every write to a clock counts its
version up and no write clears a flag, so of the writes that saw a flag unset at one
version, one at most takes; `_settle` sets breach_reported with its breach event the
same way (unit_of_work.change), so a clock stopped late gets its breach from whichever
of the two wrote first and the other's write misses; and as flag and event are one
document write, a sweeper that dies leaves both or neither. A write that missed is
read again by the next sweep. The chunk's events are published and marked sent in one
update (messaging.publish_written); whatever did not leave, the outbox relay sends.
Then the chunk's breaches are counted (reports, metrics): a breach may be published a
moment before the reports count it, and a sweeper dying in between leaves it to
`python -m analytics.rebuild` either way, as it would have before publishing.
The gauges read running tallies that the clocks' writes move (storage.py), not the
open clocks.

The reports (R5.1-R5.4) read running tallies that each event and each final clock
outcome moves (reports.py), never the complaints; improvement actions (R5.3) are
recorded and tracked here (actions.py). `python -m analytics.rebuild` replays the
stored events into the read model without touching the clocks.

Reports and clocks answer a caller for the malls in their scope; a chain-wide
caller (an analyst, say) may ask for the whole chain.
"""

import logging
import time
from collections import defaultdict
from datetime import timedelta

import eventlet
from kombu import Connection, Queue
from marshmallow import ValidationError
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from nameko.timer import Timer, timer
from werkzeug.wrappers import Response

from mallcare_common import web
from mallcare_common.base import Service
from mallcare_common.batches import ALONE, TAKEN, batched_event_handler, event_batch
from mallcare_common.contracts import (
    COMPLAINT_ACKNOWLEDGED,
    COMPLAINT_CORRECTED,
    COMPLAINT_REASSIGNED,
    COMPLAINT_REGISTERED,
    COMPLAINT_REJECTED,
    COMPLAINT_TRIAGED,
    EVENT_TYPES,
    InvalidEvent,
    read_event,
)
from mallcare_common.contracts import feedback as feedback_events
from mallcare_common.contracts.analytics import CLOCKS
from mallcare_common.contracts import resolution as case_events
from mallcare_common.messaging import DEAD_LETTER_QUEUE, new_outbox, outbox_dispatcher, publish_pending, publish_written
from mallcare_common.mongo import leased_timer, next_sequence
from mallcare_common.labels import load_labels
from mallcare_common.policy import PolicyFiles
from mallcare_common.openapi import Op
from mallcare_common.operations import operation
from mallcare_common.rpc import ask, rpc
from mallcare_common.unit_of_work import change
from mallcare_common.web import CLIENT_ERRORS, http, json_response, signed

from . import actions, clocks, deliveries, export, html_report, live, metrics, reports, reviews
from .policy import load_policy
from .schemas import (
    REPORT,
    ActionDoneIn,
    ActionIn,
    ActionList,
    ActionOut,
    ActionQuery,
    ClocksOut,
    DeliveryList,
    DeliveryOut,
    DeliveryQuery,
    IntakeCountsOut,
    IntakeCountsQuery,
    LiveReportOut,
    LiveReportQuery,
    ReportQuery,
    ReviewIn,
    ReviewList,
    ReviewOut,
    ReviewQuery,
)
from .storage import Events
from .wording import Words

log = logging.getLogger(__name__)

# R7.14: a mall's monthly review of the case library, kept for the monthly report
LIBRARY_REVIEW_EVENTS = (feedback_events.LIBRARY_REVIEW_DUE.name, feedback_events.LIBRARY_REVIEWED.name)
# R7.12: the periodic satisfaction surveys, counted apart from the revisits
SURVEY_EVENTS = (feedback_events.SURVEY_SENT.name, feedback_events.SURVEY_ANSWERED.name)

SWEEP_CHUNK = 50  # clocks the SLA sweep flags, publishes and counts at a time
TRIAGE_PAUSE = 2  # seconds before a triage change that overtook its complaint_triaged is retried
KINDS = {"monthly": "month (2026-11)", "quarterly": "quarter (2026-Q4)", "half_year": "half year (2026-H2)"}
REPORTS_INTERVAL = 60  # seconds between looks for a month's report to send (R7.13)


class TriageNotSeenYet(Exception):
    """A reassignment or correction of a complaint whose complaint_triaged has not arrived: retried."""


class SlaTimer(Timer):
    """A timer whose interval is the config's MALLCARE.SLA_TICK_SECONDS (default 2):
    the bound on how late a breach is detected."""

    def setup(self):
        self.interval = _sla_tick(self.container.config)
        super().setup()


def _sla_tick(config):
    return float(config.get("MALLCARE", {}).get("SLA_TICK_SECONDS", 2))


def _sla_lease(service):
    """Three ticks, 6 s at least: a replica that stops sweeping hands over soon."""
    return timedelta(seconds=max(6, 3 * _sla_tick(service.config)))


_GAUGED = set()  # (mall, clock) pairs this process has reported, so that an emptied one goes to 0


def _forget_gauges(service):
    """Another replica sweeps and reports them; stale numbers here would mislead."""
    for mall_id, name in _GAUGED:
        metrics.OPEN.remove(mall_id, name)
        metrics.OPEN_AT_RISK.remove(mall_id, name)
    _GAUGED.clear()


def _keeps(event_type):
    """The entrypoint of one event type: its events come in batches (`take_events`); this
    method takes one alone, as the batch hands it back (a poison message, a change ahead of
    its triage, a batch that failed)."""

    @batched_event_handler(event_type.source, event_type.name)
    def keep(self, body):
        event = read_event(body, event_type)
        if self._ahead_of_triage(event):
            # Its complaint_triaged is on another queue and may be a moment behind: applied
            # first, this change would be overwritten by it. Pause so the delivery limit spans seconds.
            eventlet.sleep(TRIAGE_PAUSE)
            raise TriageNotSeenYet(f"{event['event_type']} {event['event_id']} for {event['complaint_no']}")
        self._take([event])

    keep.__doc__ = f"Keep a {event_type.name} once, alone; start or stop its clocks."
    return keep


class AnalyticsService(Service):
    name = "analytics"

    store = Events()
    policy = PolicyFiles("analytics.yml", load_policy)
    labels = PolicyFiles("labels.yml", lambda data, malls: load_labels(data))  # the reports' words
    config = Config()
    dispatch = outbox_dispatcher()
    resolution = RpcProxy("resolution")  # the staff directory: who gets the month's report (R7.13)

    handle_complaint_registered = _keeps(COMPLAINT_REGISTERED)
    handle_complaint_rejected = _keeps(COMPLAINT_REJECTED)
    handle_complaint_acknowledged = _keeps(COMPLAINT_ACKNOWLEDGED)
    handle_complaint_triaged = _keeps(COMPLAINT_TRIAGED)
    handle_complaint_reassigned = _keeps(COMPLAINT_REASSIGNED)
    handle_complaint_corrected = _keeps(COMPLAINT_CORRECTED)
    handle_case_opened = _keeps(case_events.CASE_OPENED)
    handle_case_lead_assigned = _keeps(case_events.CASE_LEAD_ASSIGNED)
    handle_investigation_noted = _keeps(case_events.INVESTIGATION_NOTED)
    handle_customer_contacted = _keeps(case_events.CUSTOMER_CONTACTED)
    handle_time_promised = _keeps(case_events.TIME_PROMISED)
    handle_review_meeting_decided = _keeps(case_events.REVIEW_MEETING_DECIDED)
    handle_proposal_approved = _keeps(case_events.PROPOSAL_APPROVED)
    handle_case_proposed = _keeps(case_events.CASE_PROPOSED)
    handle_case_accepted = _keeps(case_events.CASE_ACCEPTED)
    handle_case_objected = _keeps(case_events.CASE_OBJECTED)
    handle_case_escalated = _keeps(case_events.CASE_ESCALATED)
    handle_execution_task_done = _keeps(case_events.EXECUTION_TASK_DONE)
    handle_case_resolved = _keeps(case_events.CASE_RESOLVED)
    handle_case_reopened = _keeps(case_events.CASE_REOPENED)
    handle_case_closed = _keeps(case_events.CASE_CLOSED)
    handle_case_referred = _keeps(case_events.CASE_REFERRED)
    handle_mediation_concluded = _keeps(case_events.MEDIATION_CONCLUDED)
    handle_rectification_due = _keeps(case_events.RECTIFICATION_DUE)
    handle_rectification_done = _keeps(case_events.RECTIFICATION_DONE)
    handle_merchant_reply_requested = _keeps(case_events.MERCHANT_REPLY_REQUESTED)
    handle_merchant_replied = _keeps(case_events.MERCHANT_REPLIED)
    handle_merchant_taken_back = _keeps(case_events.MERCHANT_TAKEN_BACK)
    handle_incident_reported = _keeps(case_events.INCIDENT_REPORTED)
    handle_incident_forwarded = _keeps(case_events.INCIDENT_FORWARDED)
    handle_incident_dismissed = _keeps(case_events.INCIDENT_DISMISSED)
    handle_incident_handled = _keeps(case_events.INCIDENT_HANDLED)
    handle_incident_communicated = _keeps(case_events.INCIDENT_COMMUNICATED)
    handle_batch_check_opened = _keeps(case_events.BATCH_CHECK_OPENED)
    handle_batch_check_step_done = _keeps(case_events.BATCH_CHECK_STEP_DONE)
    handle_batch_result_published = _keeps(case_events.BATCH_RESULT_PUBLISHED)
    handle_revisit_scheduled = _keeps(feedback_events.REVISIT_SCHEDULED)
    handle_customer_satisfied = _keeps(feedback_events.CUSTOMER_SATISFIED)
    handle_customer_dissatisfied = _keeps(feedback_events.CUSTOMER_DISSATISFIED)
    handle_revisit_done = _keeps(feedback_events.REVISIT_DONE)
    handle_revisit_cancelled = _keeps(feedback_events.REVISIT_CANCELLED)
    handle_revisit_overdue = _keeps(feedback_events.REVISIT_OVERDUE)
    handle_case_archived = _keeps(feedback_events.CASE_ARCHIVED)
    handle_library_review_due = _keeps(feedback_events.LIBRARY_REVIEW_DUE)
    handle_library_reviewed = _keeps(feedback_events.LIBRARY_REVIEWED)
    handle_survey_sent = _keeps(feedback_events.SURVEY_SENT)
    handle_survey_answered = _keeps(feedback_events.SURVEY_ANSWERED)

    @event_batch
    def take_events(self, items):
        """Every kept event type's messages, in batches (mallcare_common.batches): each kept
        once, all of them in bulk writes. An event that breaks its contract, or a change of a
        complaint whose triage has not been applied, goes back to its handler alone."""
        answers, events, triaged = [], [], set()
        for name, body in items:
            try:
                event = read_event(body, EVENT_TYPES[name])
            except InvalidEvent:
                answers.append(ALONE)
                continue
            if event["complaint_no"] not in triaged and self._ahead_of_triage(event):
                answers.append(ALONE)
                continue
            if name == "complaint_triaged":
                triaged.add(event["complaint_no"])
            events.append(event)
            answers.append(TAKEN)
        self._take(events)
        return answers

    # the interval comes from config in SlaTimer.setup
    @leased_timer(2, lease="sla", ttl=_sla_lease, entrypoint=SlaTimer, otherwise=_forget_gauges)
    def watch_clocks(self, lease):
        """At-risk and breach events, once per clock; on start this catches up on every
        deadline that passed while no replica was sweeping."""
        started = time.monotonic()
        # Breaches first: a backlog of warnings must not delay them.
        if self._sweep(lease, self.store.reaching_deadline, self._breaches) and self._sweep(
            lease, self.store.reaching_risk, self._warnings
        ):
            self._set_gauges()
        metrics.SWEEP_SECONDS.observe(time.monotonic() - started)

    @leased_timer(REPORTS_INTERVAL, lease="management-reports", ttl=timedelta(seconds=REPORTS_INTERVAL))
    def send_monthly_reports(self, lease):
        """R7.13: from the policy's day of each month (the mall's calendar) the month before's
        report goes, once, to the mall's management whole and to each department's head its
        part (deliveries.py), as a report_issued event per copy that notify e-mails."""
        policy, now = self.policy.current, self.clock()
        rules = policy.rules["management_reports"]
        for mall in policy.malls.malls.values():
            month = deliveries.month_due(now.astimezone(mall.calendar.zone).date(), rules["send_on_day"])
            if month is None:
                continue
            number = deliveries.report_number(mall.code, month)
            if self.store.reports_issued(number):
                continue
            try:
                staff = ask(self.access, self.resolution.staff_at, mall.id)
            except Exception as exc:  # resolution away: the next tick tries again
                log.warning("%s: the staff directory did not answer (%r); not sent yet", number, exc)
                return
            report = web.jsonable(self._report("monthly", month, mall.id))
            for recipient in deliveries.recipients(staff, rules["management_roles"]):
                department = recipient[2]
                overdue = self.store.overdue_complaints(mall.id, month, department) if department else []
                doc, event = deliveries.delivery(
                    number,
                    mall.id,
                    month,
                    recipient,
                    deliveries.figures(report, department, overdue),
                    deliveries.link(rules["page"], month, mall.id),
                    now,
                )
                doc.update(new_outbox(event, now))
                if self.store.issue_report(doc):
                    publish_pending(self.store.db.report_deliveries, self.dispatch, self.name, now, [doc])
            self.store.report_done(number, now)

    @operation(
        Op(
            "GET",
            "/reports/deliveries",
            "R7.13: each copy of a month's report issued to a mall's management or a department's head.",
            "report.read",
            query=DeliveryQuery,
            responses={200: DeliveryList},
        )
    )
    def report_deliveries(self, query):
        q = DeliveryQuery().load(query)
        mall_id = self.access.caller().list_mall("report.read", q["mall_id"])
        return {"items": DeliveryOut(many=True).dump(self.store.deliveries(mall_id, q["period"], q["limit"]))}

    @http(
        Op(
            "GET",
            "/reports/half-year",
            f"{REPORT}, for a half year (R7.13: the six months summed, for the review meeting); "
            "format=csv, xlsx or html for a file, in `lang`.",
            "report.read",
            query=ReportQuery,
            responses={200: (None, "text/csv", export.XLSX, "text/html")},
        )
    )
    def half_year_http(self, request):
        return self._report_response("half_year", request)

    @http(
        Op(
            "GET",
            "/reports/half-year.html",
            f"{REPORT}, for a half year, as a page.",
            "report.read",
            query=ReportQuery,
            responses={200: "text/html"},
        )
    )
    def half_year_html(self, request):
        return self._report_response("half_year", request, "html")

    @operation(
        Op(
            "POST",
            "/reviews",
            "R7.13: record a mall's half-year review meeting (once per half year): its attendees and "
            "decisions, each of which becomes an open improvement action with its owner and due date.",
            "action.write",
            body=ReviewIn,
            signed=True,
            responses={201: ReviewOut},
            errors=(409,),
        )
    )
    def record_review(self, data):
        caller = self.access.caller()
        data = ReviewIn().load(signed(data, caller))
        caller.require("action.write", data["mall_id"])
        mall = self._mall(data["mall_id"])
        staff = {s["staff_id"] for s in ask(self.access, self.resolution.staff_at, mall.id)}
        errors = reviews.unknown_staff(data, staff)
        if errors:
            raise ValidationError(errors)
        review, found = reviews.record(data, mall.code, self.clock())
        if not self.store.add_review(review, found):
            raise web.Conflict(f"the review of {data['period']} at {mall.id} is recorded already ({review['_id']})")
        return self._review_view(review)

    @operation(
        Op(
            "GET",
            "/reviews",
            "R7.13: the half-year review meetings recorded, with their decisions' actions as they stand.",
            "report.read",
            query=ReviewQuery,
            responses={200: ReviewList},
        )
    )
    def list_reviews(self, query):
        q = ReviewQuery().load(query)
        mall_id = self.access.caller().list_mall("report.read", q["mall_id"])
        selection = {**({"mall_id": mall_id} if mall_id else {}), **({"period": q["period"]} if q["period"] else {})}
        return {"items": [self._review_view(r) for r in self.store.reviews(selection, 200)]}

    def _review_view(self, review):
        found = self.store.actions_by_id(d["action_id"] for d in review["decisions"])
        return web.jsonable({**reviews.view(review), "actions": self._action_views(found)})

    @timer(interval=15)
    def watch_dead_letters(self):
        """How many messages wait in the dead-letter queue (every replica reports it)."""
        try:
            with Connection(self.config[AMQP_URI_CONFIG_KEY]) as conn:
                _, count, _ = Queue(DEAD_LETTER_QUEUE, channel=conn.default_channel).queue_declare(passive=True)
        except Exception as exc:  # the queue not declared yet, or the broker away: try again later
            log.debug("dead-letter depth unknown: %r", exc)
            return
        metrics.DEAD_LETTERS.set(count)

    @operation(
        Op(
            "GET",
            "/reports/intake",
            "Complaints received per mall, channel and outcome.",
            "report.read",
            query=IntakeCountsQuery,
            responses={200: IntakeCountsOut},
        )
    )
    def intake_counts(self, query):
        mall_id = self.access.caller().list_mall("report.read", IntakeCountsQuery().load(query)["mall_id"])
        return {"rows": self.store.intake_counts(mall_id)}

    @operation(
        Op(
            "GET",
            "/clocks/<string:complaint_no>",
            "Every SLA clock of a complaint or incident.",
            "sla.read",
            responses={200: ClocksOut},
        )
    )
    def clocks_of(self, complaint_no):
        """Every SLA clock of a complaint (or incident): due, at risk, stopped, outcome."""
        caller = self.access.caller()
        caller.require("sla.read")
        found = sorted(
            self.store.clocks.find({"complaint_no": complaint_no}, {"outbox": 0, "pending_events": 0}),
            key=lambda c: c["_id"],
        )
        if found:
            caller.require("sla.read", found[0]["mall_id"])
        return {"complaint_no": complaint_no, "clocks": web.jsonable(found)}

    # --- reports (R5.1-R5.5) and improvement actions (R5.3) ------------------------------------

    @http(
        Op(
            "GET",
            "/reports/monthly",
            f"{REPORT}, for a month; format=csv, xlsx (a spreadsheet) or html for a file, in `lang`.",
            "report.read",
            query=ReportQuery,
            responses={200: (None, "text/csv", export.XLSX, "text/html")},
        )
    )
    def monthly_http(self, request):
        return self._report_response("monthly", request)

    @http(
        Op(
            "GET",
            "/reports/quarterly",
            f"{REPORT}, for a quarter; format=csv, xlsx (a spreadsheet) or html for a file, in `lang`.",
            "report.read",
            query=ReportQuery,
            responses={200: (None, "text/csv", export.XLSX, "text/html")},
        )
    )
    def quarterly_http(self, request):
        return self._report_response("quarterly", request)

    @http(
        Op(
            "GET",
            "/reports/monthly.html",
            f"{REPORT}, for a month, as a page.",
            "report.read",
            query=ReportQuery,
            responses={200: "text/html"},
        )
    )
    def monthly_html(self, request):
        return self._report_response("monthly", request, "html")

    @http(
        Op(
            "GET",
            "/reports/quarterly.html",
            f"{REPORT}, for a quarter, as a page.",
            "report.read",
            query=ReportQuery,
            responses={200: "text/html"},
        )
    )
    def quarterly_html(self, request):
        return self._report_response("quarterly", request, "html")

    @rpc(expected_exceptions=CLIENT_ERRORS)
    def report(self, kind, period, mall_id=None):
        """The monthly or quarterly report of one mall, or of the whole chain (mall_id None):
        over RPC always the object (HTTP gives it as a CSV file or a page too)."""
        query = ReportQuery().load({"period": period, **({"mall_id": mall_id} if mall_id else {})})
        mall_id = self.access.caller().list_mall("report.read", query["mall_id"])
        return web.jsonable(self._report(kind, query["period"], mall_id))

    @operation(
        Op(
            "GET",
            "/reports/live",
            "Open now, at risk and breached, by stage and by mall, from the SLA clocks "
            "still running; the at-risk share per clock. One mall, or the chain (no mall_id, for chain-wide "
            "callers).",
            "report.read",
            query=LiveReportQuery,
            responses={200: LiveReportOut},
        )
    )
    def live_report(self, query):
        """What is open now, at risk and breached, by stage and by mall (the ops dashboard)."""
        mall_id = self.access.caller().list_mall("report.read", LiveReportQuery().load(query)["mall_id"])
        return self._live(mall_id)

    def _live(self, mall_id):
        if mall_id:
            self._mall(mall_id)
        policy = self.policy.current
        report = live.live_report(
            self.store.running_clocks(),
            self.clock(),
            {name: policy.at_risk_share(name) for name in CLOCKS},
            mall_id,
            malls=list(policy.malls.malls),
            answers=self.store.answer_tallies(),
        )
        return web.jsonable({**report, "policy_version": policy.version})

    @operation(
        Op(
            "POST",
            "/actions",
            "Record a 5-Why analysis and the improvement action it calls for (R5.3); "
            "with proposal_id, the analysis of a proposal, which becomes this action.",
            "action.write",
            body=ActionIn,
            signed=True,
            responses={201: ActionOut},
            errors=(409,),
        )
    )
    def record_action(self, data):
        return self._record_action(self.access.caller(), data)

    @operation(
        Op(
            "POST",
            "/actions/<string:action_id>/done",
            "Close an action with its evidence (once).",
            "action.write",
            body=ActionDoneIn,
            signed=True,
            responses={200: ActionOut},
            errors=(409,),
        )
    )
    def action_done(self, action_id, data):
        return self._action_done(self.access.caller(), action_id, data)

    @operation(
        Op(
            "GET",
            "/actions",
            "Improvement actions: proposed (for a systemic pattern), open, done or overdue.",
            "report.read",
            query=ActionQuery,
            responses={200: ActionList},
        )
    )
    def list_actions(self, query):
        caller = self.access.caller()
        q = ActionQuery().load(query)
        q["mall_id"] = caller.list_mall("report.read", q["mall_id"])
        if q["mall_id"]:
            self._mall(q["mall_id"])
        found = self._action_views(self.store.actions(actions.selection(q["mall_id"], q["status"]), q["limit"]))
        return {"items": [a for a in found if q["status"] != "overdue" or a["overdue"]]}

    @operation(
        Op("GET", "/actions/<string:action_id>", "One improvement action.", "report.read", responses={200: ActionOut})
    )
    def get_action(self, action_id):
        caller = self.access.caller()
        action = self.store.action(action_id)
        caller.require("report.read", action["mall_id"])
        return self._action_view(action)

    def _record_action(self, caller, body):
        """A 5-Why analysis of a recurring problem and the action it calls for (R5.3); with
        a proposal_id, the analysis of that proposal, which becomes this action."""
        data = ActionIn().load(signed(body, caller))
        caller.require("action.write", data["mall_id"])
        mall = self._mall(data["mall_id"])
        if data.get("proposal_id"):
            try:
                proposal = self.store.action(data["proposal_id"])
            except web.NotFound:  # a field of the body names nothing: the body is wrong (422), not the path
                raise ValidationError({"proposal_id": [f"No proposal {data['proposal_id']}."]}) from None
            changes = actions.adopt(proposal, data, self.clock())
            adopted = self.store.adopt_action(data["proposal_id"], changes)
            if adopted is None:  # adopted by someone else meanwhile: this answers 409
                return self._record_action(caller, body)
            return self._action_view(adopted)
        seq = next_sequence(self.store.db, f"actions:{mall.id}")
        return self._action_view(
            self.store.add_action(actions.new_action(data, actions.action_id(mall.code, seq), self.clock()))
        )

    def _action_done(self, caller, action_id, body):
        data = ActionDoneIn().load(signed(body, caller))
        action = self.store.action(action_id)
        caller.require("action.write", action["mall_id"])
        changes = actions.done(action, data, self.clock())
        closed = self.store.close_action(action_id, changes)
        if closed is None:  # done by someone else meanwhile: this answers 409 with who and when
            return self._action_done(caller, action_id, body)
        return self._action_view(closed)

    def _report_response(self, kind, request, shape=None):
        caller = self.access.caller(request)
        query = ReportQuery().load(request.args.to_dict())
        query["mall_id"] = caller.list_mall("report.read", query["mall_id"])
        report = web.jsonable(self._report(kind, query["period"], query["mall_id"]))
        shape = shape or query["format"]
        words = Words(self.labels.current, self.policy.current.malls, query["lang"])
        if shape in ("csv", "xlsx"):
            body, mimetype = (
                (export.to_csv(report, words), "text/csv")
                if shape == "csv"
                else (export.to_xlsx(report, words), export.XLSX)
            )
            name = export.file_name(report, shape)
            return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})
        if shape == "html":
            return Response(html_report.render(report, words), mimetype="text/html")
        return json_response(200, report)

    def _report(self, kind, period, mall_id):
        if kind not in KINDS or reports.kind_of(period) != kind:
            raise ValidationError({"period": [f"{kind!r} needs a {KINDS.get(kind, 'monthly or quarterly period')}"]})
        if mall_id:
            self._mall(mall_id)
        open_actions = self.store.actions(actions.selection(mall_id, "open"), limit=500)
        tallies = (
            reports.summed(self.store.tallies_of_months(reports.months_of(period), mall_id))
            if kind == "half_year"  # R7.13: six months' tallies summed, each mall apart
            else self.store.tallies_of(period, mall_id)
        )
        return reports.build_report(
            kind,
            period,
            mall_id,
            tallies,
            self._action_views(open_actions),
            proposed=self.store.count_actions(actions.selection(mall_id, "proposed")),
            library_reviews=self.store.library_reviews(reports.months_of(period), mall_id),
            surveys=self.store.surveys(reports.months_of(period), mall_id),
        )

    def _mall(self, mall_id):
        mall = self.policy.current.malls.get(mall_id)
        if mall is None:
            raise ValidationError({"mall_id": [f"Unknown mall {mall_id!r}."]})
        return mall

    def _action_view(self, action):
        return self._action_views([action])[0]

    def _action_views(self, found):
        """The actions as every read shows them, each with its pattern's complaints (one read for all)."""
        members = self.store.pattern_members({a["pattern_key"] for a in found if a.get("pattern_key")})
        malls = self.policy.current.malls
        return [
            web.jsonable(
                actions.view(
                    a,
                    self.clock().astimezone(reports.zone_of(malls, a["mall_id"])).date(),
                    members.get(a.get("pattern_key"), []),
                )
            )
            for a in found
        ]

    # --- applying events ------------------------------------------------------------------------

    def _ahead_of_triage(self, event):
        """A reassignment or correction of a complaint whose complaint_triaged has not been applied."""
        return event["event_type"] in ("complaint_reassigned", "complaint_corrected") and not self.store.triaged(
            event["complaint_no"]
        )

    def _take(self, events):
        """Keep `events` (in arrival order) once each, move the read model, the labels and the
        tallies, and start or stop their clocks: bulk writes where the events are many."""
        events = self.store.record(events, self.clock())  # a redelivery was applied the first time
        if not events:
            return
        malls = self.policy.current.malls
        self.store.apply_events(events, lambda mall_id: reports.zone_of(malls, mall_id))
        self.store.label(
            {
                e["complaint_no"]: {k: e["payload"][k] for k in ("category", "risk_level", "department")}
                for e in events
                if e["event_type"] in ("complaint_triaged", "complaint_corrected")
            }
        )
        self.store.keep_library_reviews([e for e in events if e["event_type"] in LIBRARY_REVIEW_EVENTS])
        self.store.keep_surveys([e for e in events if e["event_type"] in SURVEY_EVENTS])
        self._propose(
            [
                e
                for e in events
                if e["event_type"] == "complaint_triaged" and e["payload"]["systemic"] and e["payload"]["category"]
            ]
        )
        for event in events:
            kind = event["event_type"]
            if kind in ("customer_satisfied", "customer_dissatisfied"):
                happy = kind == "customer_satisfied"
                metrics.ANSWERS.labels(event["mall_id"], str(happy).lower()).inc()
                satisfied, answers = self.store.count_answer(event["mall_id"], happy)
                metrics.SATISFACTION.labels(event["mall_id"]).set(satisfied / answers)
        policy = self.policy.current
        ops = [op for event in events for op in clocks.operations(event)]
        # Starts first, in one write: a stop of the same clock is applied either way round (clocks.py).
        self._settle_all(self.store.start_all([op for op in ops if isinstance(op, clocks.Start)], policy.at_risk_share))
        stops = []  # a run of stops in a row, written together before the next other change
        for op in ops:
            if isinstance(op, clocks.Start):
                continue
            if isinstance(op, clocks.Stop):
                stops.append(op)
                continue
            if isinstance(op, clocks.StopAll):
                stops += self.store.stops_of_kind(op.complaint_no, op.clock, op.at)
                continue
            if isinstance(op, clocks.Close):
                stops += self.store.closing(op.complaint_no, op.at)
                continue
            self._settle_all(self.store.stop_all(stops))
            stops = []
            if isinstance(op, clocks.Promise):
                self._settle(self.store.promise(op, policy.at_risk_share("promised")))
            elif isinstance(op, clocks.Reassign):
                self.store.reassign(op)
            else:
                self.store.move(op, policy.at_risk_share(op.clock_id.split("|")[1]))
        self._settle_all(self.store.stop_all(stops))
        self.store.applied(events)

    def _propose(self, systemic):
        """R2.2, R5.3: the first systemic complaint of a pattern in a window proposes an
        improvement action; later ones of the window join that proposal. `systemic`: a
        batch's complaint_triaged envelopes flagged systemic, each pattern's in one write (a
        burst brings hundreds of one pattern, and the proposal's list grows with them)."""
        days = self.policy.current.rules["improvement"]["proposal_window_days"]
        patterns = defaultdict(list)
        for triaged in systemic:
            p = triaged["payload"]
            patterns[
                actions.pattern_window(triaged["mall_id"], p["merchant_id"], p["category"], p["received_at"], days)
            ].append(triaged)
        for window, found in patterns.items():
            latest = max(found, key=lambda t: t["payload"]["recurrences"])
            numbers = [t["complaint_no"] for t in found]
            if self.store.claim_proposal(window[0]):
                p, mall = latest["payload"], self._mall(latest["mall_id"])
                until = max(t["payload"]["received_at"] for t in found)
                numbers += self.store.pattern_complaints(
                    mall.id, p["merchant_id"], p["category"], max(window[1], until - timedelta(days=days)), until
                )
                seq = next_sequence(self.store.db, f"actions:{mall.id}")
                self.store.add_action(actions.proposal(actions.action_id(mall.code, seq), latest, window, self.clock()))
            self.store.join_proposal(window[0], numbers, latest["payload"]["recurrences"])

    def _sweep(self, lease, reaching, report):
        """`report(found, now)` the clocks `reaching(now, SWEEP_CHUNK)` finds, a chunk at a
        time, until a chunk is short or none of it was flagged (written meanwhile: the next
        tick reads those again). Each chunk is flagged, published and counted before the
        next is read, so the first of a burst leave early, and its events are stamped with
        the time they are written (their lag is true, and the outbox relay, which waits
        RELAY_GRACE, leaves them to this sweep: published before they are counted, so that
        the counting does not keep them waiting that long). A sweep through a backlog outlasts the
        lease: it renews it as it goes, and stops (False) if another replica took it
        meanwhile (a pause longer than the lease)."""
        while True:
            now = self.clock()
            if not lease.held(now):
                return False
            found = reaching(now, SWEEP_CHUNK)
            if not found:
                return True
            if not report(found, now) or len(found) < SWEEP_CHUNK:
                return True

    def _breaches(self, found, now):
        labels = self.store.labels_of_many({c["complaint_no"] for c in found})
        flagged = self.store.flag_breaches(
            [(c, clocks.breach_event(c, labels.get(c["complaint_no"], {}), now)) for c in found], now
        )
        self._publish(flagged, now)
        self._count_breaches([clock for clock, _ in flagged], labels, now)
        return len(flagged)

    def _warnings(self, found, now):
        """A clock already overdue gets its breach, not a warning."""
        passed = self.store.pass_over_risks([c for c in found if c["due_at"] <= now])
        flagged = self.store.flag_risks([(c, clocks.at_risk_event(c, now)) for c in found if c["due_at"] > now], now)
        self._publish(flagged, now)
        for clock, _ in flagged:
            metrics.AT_RISK.labels(clock["mall_id"], clock["clock"]).inc()
        return passed + len(flagged)

    def _publish(self, flagged, now):
        """The events just flagged; a clock with an older event still pending (the broker
        refused it) is left to the relay, which keeps their order."""
        publish_written(
            self.store.clocks,
            self.dispatch,
            self.name,
            now,
            [(c["_id"], e) for c, e in flagged if not c.get("pending_events")],
        )

    def _settle(self, clock):
        """A stopped clock with a deadline, once: met, met late (its breach published now if
        the sweep had not caught it yet), or cancelled."""
        if clock is None or clocks.outcome(clock) is None:
            return
        breach = None  # (labels, time) of the breach settling it announces

        def decide(clock, now):
            nonlocal breach
            breach, result = None, clocks.outcome(clock)
            if clock.get("outcome") is not None or result is None:  # settled already: its start and stop both try
                return None
            update = {"$set": {"outcome": result}}
            if result == "met_late" and not clock["breach_reported"]:
                breach = self.store.labels_of(clock["complaint_no"]), now
                update["$set"]["breach_reported"] = True
                return update, [clocks.breach_event(clock, *breach)]
            return update, []

        def count(clock, settled):
            self._count_settled([(clock, settled)])
            if breach is not None:
                self._count_breaches([settled], {settled["complaint_no"]: breach[0]}, breach[1])

        change(
            self.store.clocks,
            clock["_id"],
            decide,
            self.dispatch,
            self.name,
            self.clock,
            "clock",
            f"clock {clock['_id']} kept changing while it was settled",
            count=count,
        )

    def _settle_all(self, stopped):
        """Settle stopped clocks once each, as `_settle` does: those whose outcome announces
        nothing (met, cancelled, a breach announced already) in one write; a breach to
        announce, or a clock written meanwhile, alone."""
        quiet, alone = [], []
        for clock in {c["_id"]: c for c in stopped}.values():  # a clock started twice in a batch is settled once
            result = clocks.outcome(clock)
            if result is None or clock.get("outcome") is not None:  # settled already: its start and stop both try
                continue
            if result == "met_late" and not clock["breach_reported"]:
                alone.append(clock)
            else:
                quiet.append((clock, result))
        settled, changed = self.store.settle_all(quiet)
        self._count_settled(settled)
        for clock in alone + changed:
            self._settle(clock)

    def _count_settled(self, settled):
        """The read model (in one write) and the metrics moved by clocks just settled:
        [(clock as read, as written)]. A cancelled clock whose breach was announced stays breached."""
        ended = [
            (before, after)
            for before, after in settled
            if after["outcome"] == "met" or (after["outcome"] == "cancelled" and not before["breach_reported"])
        ]
        self.store.apply_clocks([(after, after["outcome"]) for _, after in ended])
        for before, after in ended:
            department = before.get("department") or "none"
            metrics.ENDED.labels(before["mall_id"], before["clock"], department, after["outcome"]).inc()
        for before, after in settled:
            if before["clock"] in metrics.TIME_TO and before["_id"].endswith("|1") and after["outcome"] != "cancelled":
                metrics.TIME_TO[before["clock"]].labels(before["mall_id"]).observe(
                    (before["stopped_at"] - before["started_at"]).total_seconds()
                )

    def _count_breaches(self, breached, labels, now):
        """The read model moved by `breached` clocks in one write, and the metrics; `labels`
        by complaint number."""
        self.store.apply_clocks([(clock, "breached") for clock in breached])
        for clock in breached:
            graded = labels.get(clock["complaint_no"], {})
            department = clock.get("department") or graded.get("department") or "none"
            metrics.BREACHES.labels(
                clock["mall_id"],
                clock["clock"],
                graded.get("category") or "none",
                graded.get("risk_level") or "none",
                department,
            ).inc()
            metrics.ENDED.labels(clock["mall_id"], clock["clock"], department, "breached").inc()
            metrics.DETECTION_LAG.observe(max((now - clock["due_at"]).total_seconds(), 0.0))

    def _set_gauges(self):
        counts = self.store.clock_tallies()
        for (mall_id, name), (running, risky) in counts.items():
            metrics.OPEN.labels(mall_id, name).set(running)
            metrics.OPEN_AT_RISK.labels(mall_id, name).set(risky)
        for mall_id, name in _GAUGED - set(counts):
            metrics.OPEN.labels(mall_id, name).set(0)
            metrics.OPEN_AT_RISK.labels(mall_id, name).set(0)
        _GAUGED.update(counts)
        for mall_id, (satisfied, answers) in self.store.answer_tallies().items():
            if answers:
                metrics.SATISFACTION.labels(mall_id).set(satisfied / answers)
