"""The public event contract: one envelope, one schema per event type.

Other internal services subscribe to these; see docs/events.md for the catalogue
and the versioning rule (additive changes keep the version; a breaking change is a
new event type published beside the old one).
"""

from . import analytics, feedback, notify, resolution
from .envelope import EnvelopeSchema, EventType, InvalidEvent, build_event, read_event
from .feedback import CUSTOMER_DISSATISFIED, CUSTOMER_SATISFIED
from .intake import COMPLAINT_ACKNOWLEDGED, COMPLAINT_REGISTERED, COMPLAINT_REJECTED, CUSTOMER_REPLIED
from .triage import COMPLAINT_CORRECTED, COMPLAINT_REASSIGNED, COMPLAINT_TRIAGED

EVENT_TYPES = {
    e.name: e
    for e in (
        COMPLAINT_REGISTERED,
        COMPLAINT_REJECTED,
        COMPLAINT_ACKNOWLEDGED,
        CUSTOMER_REPLIED,
        COMPLAINT_TRIAGED,
        COMPLAINT_REASSIGNED,
        COMPLAINT_CORRECTED,
        *resolution.EVENTS,
        *feedback.EVENTS,
        *analytics.EVENTS,
        *notify.EVENTS,
    )
}

__all__ = [
    "EVENT_TYPES",
    "EnvelopeSchema",
    "EventType",
    "InvalidEvent",
    "build_event",
    "read_event",
    "COMPLAINT_REGISTERED",
    "COMPLAINT_REJECTED",
    "COMPLAINT_ACKNOWLEDGED",
    "CUSTOMER_REPLIED",
    "COMPLAINT_TRIAGED",
    "COMPLAINT_REASSIGNED",
    "COMPLAINT_CORRECTED",
    "CUSTOMER_SATISFIED",
    "CUSTOMER_DISSATISFIED",
    "analytics",
    "feedback",
    "notify",
    "resolution",
]
