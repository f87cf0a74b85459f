"""Triage: turns each registered complaint into an assessment it owns (R2).

For now it records every registered complaint as awaiting triage; the
classification, risk, routing and deadlines come with its own issue.
"""
from nameko.rpc import rpc

from mallcare_common import web
from mallcare_common.calendar import Clock
from mallcare_common.contracts import COMPLAINT_REGISTERED, read_event
from mallcare_common.messaging import event_handler
from mallcare_common.web import NotFound, http, json_response

from .storage import Assessments


class TriageService(web.HealthAndMetrics):
    name = "triage"

    store = Assessments()
    clock = Clock()

    @event_handler(COMPLAINT_REGISTERED.source, COMPLAINT_REGISTERED.name)
    def handle_complaint_registered(self, body):
        event = read_event(body, COMPLAINT_REGISTERED)
        payload = event["payload"]
        self.store.open_pending(event["complaint_no"], {
            "mall_id": event["mall_id"],
            "status": "awaiting_triage",
            "channel": payload["channel"],
            "description": payload["description"],
            "registered_event_id": event["event_id"],
            "received_at": payload["received_at"],
            "opened_at": self.clock(),
        })

    @rpc(expected_exceptions=NotFound)
    def get_assessment(self, complaint_no):
        return _public(self.store.get(complaint_no))

    @http("GET", "/assessments/<string:complaint_no>")
    def get_assessment_http(self, request, complaint_no):
        return json_response(200, _public(self.store.get(complaint_no)))


def _public(doc):
    return {"complaint_no": doc["_id"], "mall_id": doc["mall_id"], "status": doc["status"],
            "channel": doc["channel"], "received_at": doc["received_at"].isoformat(),
            "opened_at": doc["opened_at"].isoformat()}
