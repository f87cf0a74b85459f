"""Analytics: read models built from every event (R5); SLA clocks come with its own issue.

For now it keeps each intake, triage, resolution and feedback event once and answers intake
counts per mall, channel and event type. Every published event type has a
consumer here from the day it is published, so none waits unroutable in an outbox.
"""
from nameko.rpc import rpc

from mallcare_common import web
from mallcare_common.calendar import Clock
from mallcare_common.contracts import (COMPLAINT_ACKNOWLEDGED, COMPLAINT_CORRECTED, COMPLAINT_REASSIGNED,
                                       COMPLAINT_REGISTERED, COMPLAINT_REJECTED, COMPLAINT_TRIAGED, read_event)
from mallcare_common.contracts import feedback as feedback_events
from mallcare_common.contracts import resolution as case_events
from mallcare_common.messaging import event_handler
from mallcare_common.web import http, json_response

from .storage import Events


def _keeps(event_type):
    """An entrypoint that stores one event type (idempotent on event_id)."""
    @event_handler(event_type.source, event_type.name)
    def keep(self, body):
        self.store.record(read_event(body, event_type), self.clock())
    keep.__doc__ = f"Keep each {event_type.name} once."
    return keep


class AnalyticsService(web.HealthAndMetrics):
    name = "analytics"

    store = Events()
    clock = Clock()

    handle_complaint_registered = _keeps(COMPLAINT_REGISTERED)
    handle_complaint_rejected = _keeps(COMPLAINT_REJECTED)
    handle_complaint_acknowledged = _keeps(COMPLAINT_ACKNOWLEDGED)
    handle_complaint_triaged = _keeps(COMPLAINT_TRIAGED)
    handle_complaint_reassigned = _keeps(COMPLAINT_REASSIGNED)
    handle_complaint_corrected = _keeps(COMPLAINT_CORRECTED)
    handle_case_opened = _keeps(case_events.CASE_OPENED)
    handle_investigation_noted = _keeps(case_events.INVESTIGATION_NOTED)
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
    handle_rectification_due = _keeps(case_events.RECTIFICATION_DUE)
    handle_rectification_done = _keeps(case_events.RECTIFICATION_DONE)
    handle_incident_reported = _keeps(case_events.INCIDENT_REPORTED)
    handle_incident_forwarded = _keeps(case_events.INCIDENT_FORWARDED)
    handle_incident_dismissed = _keeps(case_events.INCIDENT_DISMISSED)
    handle_incident_handled = _keeps(case_events.INCIDENT_HANDLED)
    handle_incident_communicated = _keeps(case_events.INCIDENT_COMMUNICATED)
    handle_revisit_scheduled = _keeps(feedback_events.REVISIT_SCHEDULED)
    handle_customer_satisfied = _keeps(feedback_events.CUSTOMER_SATISFIED)
    handle_customer_dissatisfied = _keeps(feedback_events.CUSTOMER_DISSATISFIED)
    handle_revisit_done = _keeps(feedback_events.REVISIT_DONE)
    handle_revisit_overdue = _keeps(feedback_events.REVISIT_OVERDUE)
    handle_case_archived = _keeps(feedback_events.CASE_ARCHIVED)

    @rpc
    def intake_counts(self, mall_id=None):
        return self.store.intake_counts(mall_id)

    @http("GET", "/reports/intake")
    def intake_counts_http(self, request):
        return json_response(200, {"rows": self.store.intake_counts(request.args.get("mall_id"))})
