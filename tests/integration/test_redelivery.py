"""Duplicate and out-of-order delivery (R6.1) on the real broker and store: every
event handler of resolution, feedback and analytics is sent the same event twice
and related events in reversed order, and the end state is what a user would check
(triage's one handler: test_triage's redelivery test). Delivery is at least once and
each event type has its own queue, so both happen in production."""

from datetime import datetime, timedelta, timezone

import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import replace_dependencies

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from mallcare_common.contracts import EVENT_TYPES
from resolution.service import ResolutionService
from tests.helpers import handled
from tests.unit.analytics.test_reports import acknowledged, answer, event, registered, resolved, triaged

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai
H = timedelta(hours=1)
NUMBER = "SHXJH-20261123-0042"


def deliver(container, envelope, twice=False):
    """Publish as the event's source would, and wait until the handler has taken it."""
    kind = EVENT_TYPES[envelope["event_type"]]
    dispatch = event_dispatcher({"AMQP_URI": container.config["AMQP_URI"]})
    for _ in range(2 if twice else 1):
        with handled(container, f"handle_{kind.name}", envelope["complaint_no"]):
            dispatch(kind.source, kind.name, envelope)


def publish(container, envelope):
    """Publish without waiting: for an event its handler will put back for a while."""
    kind = EVENT_TYPES[envelope["event_type"]]
    event_dispatcher({"AMQP_URI": container.config["AMQP_URI"]})(kind.source, kind.name, envelope)


def reassigned(at, to_owner="E3101", department="procurement_qc"):
    return event(
        "complaint_reassigned",
        NUMBER,
        {"from_owner_id": "E3501", "to_owner_id": to_owner, "department": department, "by": "E3901", "reason": "QC"},
        at,
    )


def corrected(at):
    """The risk corrected after the reassignment: owner and department as the reassignment left them."""
    return triaged(
        NUMBER,
        at,
        "product.quality_defect",
        risk="high",
        department="procurement_qc",
        owner="E3101",
        kind="complaint_corrected",
        field="risk_level",
        old="low",
        new="high",
        by="E3901",
        reason="journalist called",
    )


def case_event(name, at, **payload):
    return event(name, NUMBER, payload, at)


def start(container_factory, service_config, service, **replacements):
    container = container_factory(service, service_config(service.name))
    replace_dependencies(container, clock=lambda: T0 + 2 * H, **replacements)
    container.start()
    return container


# --- resolution --------------------------------------------------------------------------------


@pytest.fixture
def resolution(container_factory, service_config, web_client):
    container = start(container_factory, service_config, ResolutionService)
    web = web_client(container)
    return container, lambda: web.get(f"/cases/{NUMBER}").json()


def actions(case):
    return [entry["action"] for entry in case["timeline"]]


def test_resolution_applies_each_event_once(resolution):
    container, case = resolution
    deliver(container, triaged(NUMBER, T0, "product.quality_defect"), twice=True)
    deliver(container, reassigned(T0 + H), twice=True)
    deliver(container, corrected(T0 + H), twice=True)
    at_risk = event(
        "sla_at_risk",
        NUMBER,
        {
            "clock_id": f"{NUMBER}|first_response|1",
            "clock": "first_response",
            "owner": "E3101",
            "department": "procurement_qc",
            "started_at": T0.isoformat(),
            "due_at": (T0 + H).isoformat(),
            "at_risk_at": (T0 + 0.8 * H).isoformat(),
        },
        T0 + 0.8 * H,
    )
    deliver(container, at_risk, twice=True)
    breach = event(
        "sla_breached",
        NUMBER,
        {
            "clock_id": f"{NUMBER}|first_response|1",
            "clock": "first_response",
            "owner": "E3101",
            "department": "procurement_qc",
            "started_at": T0.isoformat(),
            "due_at": (T0 + H).isoformat(),
            "category": None,
            "risk_level": "high",
            "lag_seconds": 1.0,
        },
        T0 + H,
    )
    deliver(container, breach, twice=True)
    deliver(container, answer(NUMBER, T0 + 2 * H, satisfied=True), twice=True)  # not resolved: noted once
    deliver(container, answer(NUMBER, T0 + 2 * H, satisfied=False, reasons=["slow"]), twice=True)

    found = case()
    assert (found["owner_id"], found["department"], found["risk_level"]) == ("E3101", "procurement_qc", "high")
    assert found["level"] != "handler" and actions(found).count("escalated") == 1
    assert actions(found).count("reassigned") == 1 and actions(found).count("event_not_applied") == 2
    assert actions(found).count("opened") == 1 and actions(found).count("deadline_at_risk") == 1
    warning = next(e for e in found["timeline"] if e["action"] == "deadline_at_risk")
    assert warning["detail"]["clock"] == "first_response" and warning["detail"]["owner"] == "E3101"


def test_a_reassignment_that_overtakes_its_triage_still_moves_the_case(resolution):
    container, case = resolution
    with handled(container, "handle_complaint_reassigned", NUMBER):  # its tries before the case are put back
        publish(container, reassigned(T0 + H))
        deliver(container, triaged(NUMBER, T0, "product.quality_defect"))
    assert (case()["owner_id"], case()["department"]) == ("E3101", "procurement_qc")


# --- feedback ----------------------------------------------------------------------------------


class Resolution:
    """Feedback asks resolution for a closed case (to archive high-risk ones)."""

    def get_case(self, number):
        return {"complaint_no": number, "risk_level": "low"}


@pytest.fixture
def feedback(container_factory, service_config, web_client):
    container = start(container_factory, service_config, FeedbackService, resolution=Resolution())
    web = web_client(container)
    return container, lambda: [
        r
        for r in web.get("/revisits", params={"mall_id": "sh-xujiahui"}).json()["items"]
        if r["complaint_no"] == NUMBER
    ]


def test_feedback_applies_each_event_once(feedback):
    container, open_revisits = feedback
    deliver(container, registered(NUMBER, T0), twice=True)
    deliver(container, resolved(NUMBER, T0 + H), twice=True)
    assert [r["revisit_id"] for r in open_revisits()] == [f"{NUMBER}-R1"]
    deliver(
        container,
        case_event(
            "case_reopened",
            T0 + 2 * H,
            reason="dissatisfied",
            round=2,
            resolution_due_at=(T0 + 50 * H).isoformat(),
            by="feedback",
        ),
        twice=True,
    )
    assert open_revisits() == []
    deliver(container, resolved(NUMBER, T0 + 3 * H, round_=2), twice=True)
    assert [r["revisit_id"] for r in open_revisits()] == [f"{NUMBER}-R2"]
    deliver(container, case_event("case_closed", T0 + 4 * H, reason="supervisor closed it", by="E3011"), twice=True)
    assert open_revisits() == []


def test_a_resolution_that_arrives_after_its_case_was_closed_asks_nobody(feedback):
    container, open_revisits = feedback
    deliver(container, registered(NUMBER, T0))
    deliver(container, case_event("case_closed", T0 + 2 * H, reason="supervisor closed it", by="E3011"))
    deliver(container, resolved(NUMBER, T0 + H))
    assert open_revisits() == []


# --- analytics ---------------------------------------------------------------------------------


@pytest.fixture
def analytics(container_factory, service_config, web_client):
    container = start(container_factory, service_config, AnalyticsService)
    web = web_client(container)
    return container, web, lambda: {c["clock"]: c for c in web.get(f"/clocks/{NUMBER}").json()["clocks"]}


def test_analytics_counts_each_event_once(analytics):
    container, web, clocks = analytics
    answers_before = satisfied_answers(web)
    for envelope in (
        registered(NUMBER, T0),
        acknowledged(NUMBER, T0 + H / 2, T0 + H),
        triaged(NUMBER, T0, "product.quality_defect"),
        reassigned(T0 + H),
        resolved(NUMBER, T0 + 2 * H),
        answer(NUMBER, T0 + 3 * H, satisfied=True),
    ):
        deliver(container, envelope, twice=True)
    found = clocks()
    assert {name: c["outcome"] for name, c in found.items()} == {
        "acknowledgement": "met",
        "first_response": "met",
        "resolution": "met",
    }
    assert found["resolution"]["owner"] == "E3101"
    assert {(r["event_type"], r["count"]) for r in web.get("/reports/intake").json()["rows"]} == {
        ("complaint_registered", 1),
        ("complaint_acknowledged", 1),
    }
    assert satisfied_answers(web) == answers_before + 1


def satisfied_answers(web):
    """The counter is per process, and other tests in it count answers too."""
    for line in web.get("/metrics").text.splitlines():
        if line.startswith('mallcare_revisit_answers_total{mall_id="sh-xujiahui",satisfied="true"} '):
            return float(line.split()[-1])
    return 0.0


def test_a_reassignment_or_correction_that_overtakes_its_triage_still_reaches_the_clocks(analytics):
    container, web, clocks = analytics
    with (
        handled(container, "handle_complaint_reassigned", NUMBER),
        handled(container, "handle_complaint_corrected", NUMBER),
    ):  # their tries before the triage are put back
        publish(container, reassigned(T0 + H))
        publish(container, corrected(T0 + H))
        deliver(container, triaged(NUMBER, T0, "product.quality_defect"))
    corrected_due = datetime.fromisoformat(corrected(T0 + H)["payload"]["resolution_due_at"])
    assert clocks()["resolution"]["owner"] == "E3101"
    assert datetime.fromisoformat(clocks()["resolution"]["due_at"]) == corrected_due
    assert clocks()["first_response"]["owner"] == "E3101"
