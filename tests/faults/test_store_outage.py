"""Issue 7, store outage: the store process is killed (kill -9) and started again on the
same data directory and port. Meanwhile requests fail at once with a plain 503 (no hang,
no crash, nothing of the store's address in the body); events that arrive for a service
whose store is away are held and requeued, not dead-lettered; afterwards the services
carry on by themselves, every complaint intake acknowledged (201) is there, and each
stored complaint has exactly one assessment."""

from concurrent.futures import ThreadPoolExecutor

from tests.helpers import wait_for
from tests.faults.conftest import SETTLE_TIMEOUT, complaint, dead_letters, metric

GENERIC = {"error": "STORE_UNAVAILABLE", "message": "the service's store is not answering; try again shortly"}


def assert_plain_503(response):
    """The generic words, the request's id to find its log line by, and when to try again."""
    assert response.status_code == 503, response.text
    assert response.json() == {**GENERIC, "request_id": response.headers["X-Request-Id"]}
    assert response.headers["Retry-After"] == "5"


def handled(system, service, outcome):
    return metric(system, service, "mallcare_events_handled_total", outcome=outcome)


def test_services_ride_out_a_store_crash_and_lose_no_acknowledged_complaint(system):
    intake_store, triage_store = system.store("intake"), system.store("triage")
    system.start(triage_store, "triage")
    system.start(intake_store, "intake")
    first = [system.call("POST", "intake", "/complaints", json=complaint(n)).json()["number"] for n in range(3)]
    wait_for(lambda: system.count("triage", "assessments") == 3, timeout=SETTLE_TIMEOUT)

    # triage's store dies: its reads fail plainly, and the events that come meanwhile wait
    triage_store.kill()
    assert_plain_503(system.call("GET", "triage", f"/assessments/{first[0]}"))
    assert system.call("GET", "triage", "/health").status_code == 503
    while_triage_away = [system.call("POST", "intake", "/complaints", json=complaint(n)) for n in range(3, 13)]
    assert [r.status_code for r in while_triage_away] == [201] * 10
    # triage holds the ten events and still answers HTTP, plainly
    wait_for(lambda: handled(system, "triage", "held") == 10, timeout=SETTLE_TIMEOUT)
    assert_plain_503(system.call("GET", "triage", f"/assessments/{first[1]}"))

    # intake's store dies in the middle of a burst: each request either made it (201) or says 503
    with ThreadPoolExecutor(4) as pool:
        burst = [pool.submit(system.call, "POST", "intake", "/complaints", json=complaint(n)) for n in range(13, 53)]
        wait_for(lambda: sum(f.done() for f in burst) >= 8, timeout=SETTLE_TIMEOUT)
        intake_store.kill()
        responses = [f.result() for f in burst]
    assert {r.status_code for r in responses} <= {201, 503}, [
        r.text for r in responses if r.status_code not in (201, 503)
    ]
    for response in responses:
        if response.status_code == 503:
            assert_plain_503(response)
    assert_plain_503(system.call("POST", "intake", "/complaints", json=complaint(99)))
    assert system.alive("intake") and system.alive("triage")
    assert dead_letters(system) == 0

    # both come back on the same data and port; nobody restarts a service
    intake_store.start()
    triage_store.start()
    system.wait_healthy("intake")
    system.wait_healthy("triage")
    acknowledged = first + [r.json()["number"] for r in while_triage_away + responses if r.status_code == 201]
    for number in acknowledged:
        found = system.call("GET", "intake", f"/complaints/{number}")
        assert found.status_code == 200, f"{number} was acknowledged and is gone: {found.text}"
    stored = system.count("intake", "complaints")
    assert stored >= len(acknowledged)
    wait_for(lambda: system.count("triage", "assessments") == stored, timeout=SETTLE_TIMEOUT)
    wait_for(lambda: system.pending_outbox("intake", "complaints") == 0, timeout=SETTLE_TIMEOUT)
    assert system.count("triage", "assessments") == stored
    assert handled(system, "triage", "dead_lettered") == 0 and dead_letters(system) == 0
    assert system.alive("intake") and system.alive("triage")
