"""Analytics: read models built from every event (R5); SLA clocks come with its own issue.

For now it keeps each intake and triage event once and answers intake counts per
mall, channel and event type.
"""
from nameko.rpc import rpc

from mallcare_common import web
from mallcare_common.calendar import Clock
from mallcare_common.contracts import (COMPLAINT_ACKNOWLEDGED, COMPLAINT_CORRECTED, COMPLAINT_REASSIGNED,
                                       COMPLAINT_REGISTERED, COMPLAINT_REJECTED, COMPLAINT_TRIAGED, read_event)
from mallcare_common.messaging import event_handler
from mallcare_common.web import http, json_response

from .storage import Events


class AnalyticsService(web.HealthAndMetrics):
    name = "analytics"

    store = Events()
    clock = Clock()

    @event_handler(COMPLAINT_REGISTERED.source, COMPLAINT_REGISTERED.name)
    def handle_complaint_registered(self, body):
        self.store.record(read_event(body, COMPLAINT_REGISTERED), self.clock())

    @event_handler(COMPLAINT_REJECTED.source, COMPLAINT_REJECTED.name)
    def handle_complaint_rejected(self, body):
        self.store.record(read_event(body, COMPLAINT_REJECTED), self.clock())

    @event_handler(COMPLAINT_ACKNOWLEDGED.source, COMPLAINT_ACKNOWLEDGED.name)
    def handle_complaint_acknowledged(self, body):
        self.store.record(read_event(body, COMPLAINT_ACKNOWLEDGED), self.clock())

    @event_handler(COMPLAINT_TRIAGED.source, COMPLAINT_TRIAGED.name)
    def handle_complaint_triaged(self, body):
        self.store.record(read_event(body, COMPLAINT_TRIAGED), self.clock())

    @event_handler(COMPLAINT_REASSIGNED.source, COMPLAINT_REASSIGNED.name)
    def handle_complaint_reassigned(self, body):
        self.store.record(read_event(body, COMPLAINT_REASSIGNED), self.clock())

    @event_handler(COMPLAINT_CORRECTED.source, COMPLAINT_CORRECTED.name)
    def handle_complaint_corrected(self, body):
        self.store.record(read_event(body, COMPLAINT_CORRECTED), self.clock())

    @rpc
    def intake_counts(self, mall_id=None):
        return self.store.intake_counts(mall_id)

    @http("GET", "/reports/intake")
    def intake_counts_http(self, request):
        return json_response(200, {"rows": self.store.intake_counts(request.args.get("mall_id"))})
