"""R4.1, R4.2, issue 7's retention (issue 16 finding 7) on the real broker and store: a
customer feedback cannot reach after the last attempt does not keep the case resolved
for ever. Resolution learns it from revisit_done (once, however often delivered), and
once the policy's waiting time (deadlines.unreachable_close_after: three working days)
has passed its sweep closes the case by rule, without an answer; feedback then takes no
late answer, intake starts the retention period, and the retention runs anonymise it
like any closed case. A customer who calls back before then is heard, and the case
closes as usual."""

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.services import entrypoint_hook

from mallcare_cli.examples import desk_complaint
from mallcare_common.retention import months_before
from tests.helpers import SPOT_REFUND, drain, handled, wait_for, staff as as_staff

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
DESK, CALLER = "D3001", "E3002"


@pytest.fixture
def clock(shift):
    """One clock that moves from Monday morning and that the test moves on (`shift`), as
    time passes for a customer nobody reaches."""
    started = time.monotonic()
    return lambda: MONDAY_10 + timedelta(seconds=time.monotonic() - started) + shift["by"]


@pytest.fixture
def system(services, clock):
    """The four services on that clock."""
    names = ("feedback", "resolution", "triage", "intake")
    system = services(*names, clocks=dict.fromkeys(names, clock))
    # every event of both (publishes are mandatory, and analytics is not running)
    system.catch_all("resolution", "feedback")
    return system


def call(system, service, method, path, staff=None, expect=200, **body):
    response = system.web[service].request(
        method, path, json=body if method == "POST" else None, headers=as_staff(staff) if staff else {}
    )
    assert response.status_code == expect, response.text
    return response.json()


def resolved_and_unreachable(system):
    """A complaint settled at the desk whose revisit found nobody after the last attempt,
    once resolution has heard it (the case waits to close by rule)."""
    with system.case_opened():
        number = call(system, "intake", "POST", "/complaints", DESK, expect=201, **desk_complaint())["number"]
    with handled(system.containers["feedback"], "handle_case_resolved", number):
        call(system, "resolution", "POST", f"/cases/{number}/spot-resolution", DESK, **SPOT_REFUND)
    revisit_id = f"{number}-R1"
    with handled(system.containers["resolution"], "handle_revisit_done", number):
        for _ in range(3):  # feedback.yml: max_attempts 3
            revisit = call(system, "feedback", "POST", f"/revisits/{revisit_id}/attempts", CALLER, outcome="no_answer")
    assert revisit["status"] == "unreachable"
    case = call(system, "resolution", "GET", f"/cases/{number}")
    assert case["closure_by_rule"], case
    return number, revisit_id, case


def sweep(system, number):
    with entrypoint_hook(system.containers["resolution"], "close_unreachable") as close_unreachable:
        close_unreachable()
    return call(system, "resolution", "GET", f"/cases/{number}")


def test_an_unreachable_customers_case_closes_without_an_answer_and_is_anonymised_in_time(system, shift, clock):
    number, revisit_id, case = resolved_and_unreachable(system)
    pending = case["closure_by_rule"]
    close_at = datetime.fromisoformat(pending["close_at"])
    assert (pending["revisit_id"], pending["attempts"], case["state"]) == (revisit_id, 3, "resolved")
    # three working days (the mall opens every day this week): Thursday, the time it was noted
    assert close_at - datetime.fromisoformat(pending["noted_at"]) == timedelta(days=3)
    assert case["timeline"][-1]["action"] == "customer_unreachable"
    # feedback's revisit_done delivered again: applied once (its event id)
    [done] = [e for e in drain(system.queues["feedback"], unique=True) if e["event_type"] == "revisit_done"]
    with handled(system.containers["resolution"], "handle_revisit_done", number):
        system.dispatch("feedback", "revisit_done", done)
    assert call(system, "resolution", "GET", f"/cases/{number}")["timeline"] == case["timeline"]

    assert sweep(system, number)["state"] == "resolved"  # the waiting time is not over
    shift["by"] = close_at - clock() + timedelta(minutes=1)
    with (
        handled(system.containers["feedback"], "handle_case_closed", number),
        handled(system.containers["intake"], "handle_case_closed", number),
    ):
        case = sweep(system, number)
    assert case["state"] == "closed" and case["closure_by_rule"] is None
    assert case["closure"]["without_answer"] is True and case["closure"]["by"] == "resolution"
    assert case["closure"]["reason"].startswith(f"customer unreachable: revisit {revisit_id} ended without an answer")
    closed = case["timeline"][-1]
    assert (closed["action"], closed["by"], closed["detail"]["without_answer"]) == ("closed", "resolution", True)
    assert sweep(system, number)["timeline"] == case["timeline"]  # a second look changes nothing
    seen = []
    wait_for(
        lambda: seen.extend(e for e in drain(system.queues["resolution"]) if e["event_type"] == "case_closed") or seen
    )
    [event] = {e["event_id"]: e for e in seen}.values()
    assert event["payload"] == {"reason": case["closure"]["reason"], "without_answer": True, "by": "resolution"}

    # feedback takes no late answer now; intake knows the case closed, and when
    late = call(
        system, "feedback", "POST", f"/revisits/{revisit_id}/attempts", CALLER, expect=409, outcome="reached", score=5
    )
    assert "closed" in late["message"]
    complaint = call(system, "intake", "GET", f"/complaints/{number}")
    assert datetime.fromisoformat(complaint["closed_at"]) == datetime.fromisoformat(case["closure"]["at"])

    # retention_months (24) later, both services' retention runs anonymise it like any closed case
    now = clock()
    shift["by"] += months_before(now, -25) - now
    for service in ("intake", "resolution"):
        run = call(system, service, "POST", "/retention/run")
        assert (run["candidates"], run["anonymised"]) == (1, 1), service
    assert call(system, "intake", "GET", f"/complaints/{number}")["customer"]["contact_masked"] == "[anonymised]"
    assert call(system, "resolution", "GET", f"/cases/{number}")["anonymised_at"]


def test_a_customer_who_calls_back_in_time_is_heard_and_the_closure_by_rule_dropped(system, shift):
    number, revisit_id, case = resolved_and_unreachable(system)
    close_at = datetime.fromisoformat(case["closure_by_rule"]["close_at"])
    shift["by"] = timedelta(days=1)
    with handled(system.containers["resolution"], "handle_customer_satisfied", number):
        revisit = call(
            system,
            "feedback",
            "POST",
            f"/revisits/{revisit_id}/attempts",
            CALLER,
            outcome="reached",
            score=5,
            comment="回电：退款已收到",
        )
    assert revisit["status"] == "answered"
    case = call(system, "resolution", "GET", f"/cases/{number}")
    assert case["state"] == "closed" and case["closure_by_rule"] is None
    assert case["closure"]["without_answer"] is False
    assert case["closure"]["reason"] == "customer satisfied (score 5)"
    assert "closure_by_rule_dropped" in [e["action"] for e in case["timeline"]]
    shift["by"] = close_at - MONDAY_10 + timedelta(days=1)
    assert sweep(system, number)["timeline"] == case["timeline"]
