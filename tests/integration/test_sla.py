"""R5.5, R6.2 (deadlines of R1.2, R2.3) on the real broker and store with an injected
clock: a complaint left unanswered breaches its acknowledgement and first-response
clocks exactly once, with two analytics instances sweeping and one restarted; a
deadline that passed while analytics was down is caught up on start; a met deadline
is never reported; the Prometheus endpoint shows the breaches with their labels;
resolution escalates the case on the breach, on its timeline."""

from datetime import timedelta

import pytest
from nameko.testing.services import entrypoint_hook

from mallcare_cli.examples import desk_complaint
from mallcare_common.calendar import utc_now
from tests.helpers import drain, staff, wait_for


@pytest.fixture
def system(services, shift):
    """Every service but feedback; analytics sweeps every 0.2 s on a clock the test moves on."""
    system = services(
        "triage",
        "analytics",
        "resolution",
        "intake",
        clocks={"analytics": lambda: utc_now() + shift["by"]},
        settings={"analytics": {"SLA_TICK_SECONDS": 0.2}},
    )
    system.catch_all("analytics")  # the test's subscriber to what analytics publishes
    return system


@pytest.fixture
def second(system):
    """A second analytics replica, sweeping beside the first (whose /metrics the tests read)."""
    return system.replica("analytics")


def received(system):
    return drain(system.queues["analytics"])


def breaches(metrics_text, clock):
    """{labels: value} of mallcare_sla_breaches_total for one clock."""
    found = {}
    for line in metrics_text.splitlines():
        if line.startswith("mallcare_sla_breaches_total{") and f'clock="{clock}"' in line:
            labels, value = line.rsplit(" ", 1)
            found[labels] = float(value)
    return found


def register(system, **overrides):
    with system.case_opened():
        return system.web["intake"].post("/complaints", json=desk_complaint(**overrides)).json()["number"]


def test_an_unanswered_complaint_breaches_each_clock_once_with_two_instances_and_a_restart(system, shift, second):
    metrics = system.web["analytics"]
    before = breaches(metrics.get("/metrics").text, "acknowledgement")
    number = register(system)
    # analytics has the triage (it labels the breach): its first-response clock runs
    wait_for(lambda: "first_response" in {c["clock"] for c in metrics.get(f"/clocks/{number}").json()["clocks"]})
    shift["by"] = timedelta(seconds=90)  # the desk's 1 minute has gone
    events = wait_for(lambda: [e for e in received(system) if e["event_type"] == "sla_breached"])
    assert [(e["complaint_no"], e["payload"]["clock"]) for e in events] == [(number, "acknowledgement")]
    breach = events[0]["payload"]
    assert breach["owner"] == "desk" and 0 <= breach["lag_seconds"] < 60

    # one instance restarts (the other keeps serving /metrics); nothing fires twice, and
    # the next deadline fires once
    second.stop()
    system.replica("analytics")
    shift["by"] = timedelta(hours=49)  # first response (product: 48 h) has gone too
    later = wait_for(lambda: [e for e in received(system) if e["event_type"] == "sla_breached"])
    assert sorted(e["payload"]["clock"] for e in later) == ["first_response"]
    assert not [e for e in received(system) if e["event_type"] == "sla_breached"]

    after = breaches(metrics.get("/metrics").text, "acknowledgement")
    new = {labels: value - before.get(labels, 0) for labels, value in after.items() if value != before.get(labels)}
    assert len(new) == 1 and list(new.values()) == [1.0]
    labels = next(iter(new))
    assert 'mall_id="sh-xujiahui"' in labels and 'category="product.quality_defect"' in labels
    assert 'department="merchant_relations"' in labels and 'risk_level="low"' in labels

    # resolution took the first-response breach as an escalation
    case = wait_for(lambda: (c := system.web["resolution"].get(f"/cases/{number}").json())["level"] != "handler" and c)
    assert case["level"] == "supervisor" and case["escalations"][-1]["reason"] == "breach"
    assert "first_response deadline" in case["timeline"][-1]["detail"]["text"]


def test_a_deadline_that_passed_while_analytics_was_down_is_caught_up_on_start(system, shift, second):
    for container in (system.containers["analytics"], second):
        container.stop()
    number = register(system, channel_ref="desk-0400")
    shift["by"] = timedelta(minutes=5)
    system.replica("analytics")
    events = wait_for(lambda: [e for e in received(system) if e["event_type"] == "sla_breached"])
    assert [(e["complaint_no"], e["payload"]["clock"]) for e in events] == [(number, "acknowledgement")]
    assert events[0]["payload"]["lag_seconds"] >= 60  # late, and said so


def test_a_deadline_met_in_time_is_never_reported(system, shift, second):
    number = register(system, channel_ref="desk-0500")
    system.web["intake"].post(
        f"/complaints/{number}/acknowledgement", json={"acknowledged_by": "E2001", "method": "in_person"}
    )
    analytics = system.web["analytics"]
    acknowledged = wait_for(
        lambda: [
            c
            for c in analytics.get(f"/clocks/{number}").json()["clocks"]
            if c["clock"] == "acknowledgement" and c["outcome"]
        ]
    )
    assert acknowledged[0]["outcome"] == "met" and acknowledged[0]["breach_reported"] is False
    shift["by"] = timedelta(minutes=5)
    with entrypoint_hook(second, "watch_clocks") as sweep:
        sweep()
    assert not [e for e in received(system) if e["event_type"] == "sla_breached"]
    clocks = {c["clock"]: c for c in analytics.get(f"/clocks/{number}").json()["clocks"]}
    assert clocks["first_response"]["outcome"] is None and clocks["resolution"]["breach_reported"] is False


def test_a_reassigned_complaints_clocks_belong_to_the_new_handler(system):
    number = register(system, channel_ref="desk-0600")
    system.web["triage"].post(
        f"/assessments/{number}/owner",
        headers=staff("E3901"),
        json={"owner_id": "E3101", "reason": "QC knows the supplier"},
    )
    owners = wait_for(
        lambda: (
            (
                found := {
                    c["clock"]: c["owner"] for c in system.web["analytics"].get(f"/clocks/{number}").json()["clocks"]
                }
            ).get("resolution")
            == "E3101"
            and found
        )
    )
    assert owners["first_response"] == "E3101" and owners["acknowledgement"] == "desk"
