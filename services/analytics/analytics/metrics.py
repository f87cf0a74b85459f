"""Analytics' Prometheus metrics: the SLA picture ops watch (R5.5, R6.2). Labels are
bounded: mall, clock, category, risk level, department, outcome; never a complaint
number or anything about a customer."""

from prometheus_client import Counter, Gauge, Histogram

_TIMES = (60, 300, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 7 * 24 * 3600, 30 * 24 * 3600)

BREACHES = Counter(
    "mallcare_sla_breaches_total",
    "Deadlines that passed unmet.",
    ["mall_id", "clock", "category", "risk_level", "department"],
)
AT_RISK = Counter(
    "mallcare_sla_at_risk_total", "Deadlines that reached their at-risk point unmet.", ["mall_id", "clock"]
)
OPEN = Gauge("mallcare_sla_clocks_open", "Clocks running now.", ["mall_id", "clock"])
OPEN_AT_RISK = Gauge(
    "mallcare_sla_clocks_at_risk",
    "Clocks running now and past their at-risk point (from the sweep's warning, or breach, until they stop).",
    ["mall_id", "clock"],
)
SWEEP_SECONDS = Histogram(
    "mallcare_sla_sweep_seconds",
    "One SLA sweep (a tick of the replica holding the lease): breaches, warnings and the gauges.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ENDED = Counter(
    "mallcare_sla_clocks_ended_total",
    "Clocks by how they ended: met by the deadline, breached (a clock met after its "
    "deadline was counted as breached when the deadline passed), or cancelled (its obligation "
    "lapsed: counted in neither).",
    ["mall_id", "clock", "department", "outcome"],
)
DETECTION_LAG = Histogram(
    "mallcare_sla_detection_lag_seconds", "Deadline -> breach event.", buckets=(0.5, 1, 2, 3, 5, 10, 30, 60, 300, 3600)
)
TIME_TO = {
    "acknowledgement": Histogram(
        "mallcare_time_to_acknowledge_seconds", "Received -> acknowledged.", ["mall_id"], buckets=_TIMES
    ),
    "first_response": Histogram(
        "mallcare_time_to_first_response_seconds", "Received -> first response.", ["mall_id"], buckets=_TIMES
    ),
    "resolution": Histogram(
        "mallcare_time_to_resolve_seconds", "Received -> resolved (first round).", ["mall_id"], buckets=_TIMES
    ),
}
ANSWERS = Counter("mallcare_revisit_answers_total", "Customers' answers on revisits.", ["mall_id", "satisfied"])
SATISFACTION = Gauge("mallcare_satisfaction_ratio", "Share of satisfied answers (target 0.85).", ["mall_id"])
DEAD_LETTERS = Gauge("mallcare_dead_letters", "Messages waiting in the dead-letter queue.")
