"""Issue 7, broker outage: with RabbitMQ out of reach (the proxy between the services
and the broker cut), intake keeps taking complaints over HTTP; when the broker is back,
the outbox relay publishes every stored complaint's event and triage assesses each one,
exactly once."""

from concurrent.futures import ThreadPoolExecutor

from tests.helpers import wait_for
from tests.faults.conftest import SETTLE_TIMEOUT, complaint, dead_letters

BEFORE, DURING, AFTER = 5, 15, 5
# The broker check's answer is cached for 5 s (mallcare_common.health): readiness follows within that.
READINESS_LAG = 10


def register(system, numbers):
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda n: system.call("POST", "intake", "/complaints", json=complaint(n)), numbers))
    assert [r.status_code for r in responses] == [201] * len(numbers), [
        r.text for r in responses if r.status_code != 201
    ]
    return [r.json()["number"] for r in responses]


def health_when(system, status):
    response = system.call("GET", "intake", "/health")
    return response.json() if response.status_code == status else None


def test_intake_takes_complaints_while_the_broker_is_away_and_triage_gets_each_one_after(system):
    store = system.store("shared")
    system.start(store, "triage", "intake")
    accepted = register(system, range(BEFORE))
    wait_for(lambda: system.count("triage", "assessments") == BEFORE, timeout=SETTLE_TIMEOUT)

    system.cut_broker()
    accepted += register(system, range(BEFORE, BEFORE + DURING))
    # stored, their events waiting in the outbox; nothing reached triage
    assert system.count("intake", "complaints") == BEFORE + DURING
    assert system.pending_outbox("intake", "complaints") == DURING
    assert system.count("triage", "assessments") == BEFORE
    assert system.alive("intake") and system.alive("triage")
    # Readiness says which connection is down; liveness still answers, so an orchestrator
    # takes the pod out of rotation without restarting it.
    health = wait_for(lambda: health_when(system, 503), timeout=READINESS_LAG)
    assert health == {
        "service": "intake",
        "status": "degraded",
        "store": "ok",
        "broker": "unreachable",
        "consumers": "ok",
    }
    assert system.call("GET", "intake", "/health/live").status_code == 200

    system.restore_broker()
    assert wait_for(lambda: health_when(system, 200), timeout=READINESS_LAG)["broker"] == "ok"
    accepted += register(system, range(BEFORE + DURING, BEFORE + DURING + AFTER))
    total = BEFORE + DURING + AFTER
    wait_for(lambda: system.count("triage", "assessments") == total, timeout=SETTLE_TIMEOUT)
    wait_for(lambda: system.pending_outbox("intake", "complaints") == 0, timeout=SETTLE_TIMEOUT)

    assert len(set(accepted)) == total == system.count("intake", "complaints")
    for number in accepted:
        assessment = system.call("GET", "triage", f"/assessments/{number}")
        assert assessment.status_code == 200, assessment.text
    assert system.count("triage", "assessments") == total  # one each, none twice
    assert dead_letters(system) == 0
    assert system.alive("intake") and system.alive("triage")
