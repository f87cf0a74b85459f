"""Metrics shared by every service, and the /metrics response.

Declared once at module level in the default registry (one service per process).
Labels are bounded: service, event type, mall, channel; never a complaint number
or anything about a customer.
"""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from werkzeug.wrappers import Response

EVENTS_HANDLED = Counter(
    "mallcare_events_handled_total",
    "Events taken off a queue, by outcome (ok, retried, held, dead_lettered).",
    ["service", "event_type", "outcome"],
)
DEAD_LETTERED = Counter(
    "mallcare_events_dead_lettered_total",
    "Messages a handler gave up on and sent to mallcare.dead-letters, by reason (contract, gave_up, "
    "oversized, undecodable, not_an_object).",
    ["service", "queue", "reason"],
)
BATCH_SIZE = Histogram(
    "mallcare_event_batch_size",
    "Events a batch worker was given (batches.py).",
    ["service"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
HANDLER_SECONDS = Histogram("mallcare_event_handler_seconds", "Time an event handler took.", ["service", "event_type"])
EVENTS_PUBLISHED = Counter(
    "mallcare_events_published_total", "Outbox entries confirmed by the broker.", ["service", "event_type"]
)
PUBLISH_FAILURES = Counter(
    "mallcare_outbox_publish_failures_total", "Outbox publish attempts that failed (kept for retry).", ["service"]
)
OUTBOX_PENDING = Gauge(
    "mallcare_outbox_pending",
    "Documents with outbox entries not yet published, as of the last sweep.",
    ["service", "collection"],
)
REFUSED = Counter(
    "mallcare_refused_total",
    "HTTP requests refused at the edge (limits.py), by route and reason: unauthenticated (401), body (413), "
    "address (429: a client address over its requests a minute), refused_keys (429: an address past its "
    "refused API keys), key (429: a key over its per_minute).",
    ["service", "edge", "reason"],
)


def metrics_response() -> Response:
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)


SIGN_INS_REFUSED = Counter(
    "mallcare_sign_ins_refused_total",
    "Refused sign-ins (a 401): the credential presented (none, bearer, api_key) and why (missing, malformed, "
    "unknown_key, expired, invalid); each is also a mallcare.audit log record.",
    ["service", "credential", "reason"],
)
