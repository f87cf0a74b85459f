"""Issue 7, a service killed (kill -9) while it works through a burst: the messages it had
taken but not acknowledged go back to its queue, the restarted process handles them, and
each complaint ends with exactly one assessment, one case and one revisit (and one
complaint_triaged and one revisit_scheduled event, whatever was redelivered), and with
its two messages to the customer (the answer and the refund's notice), none lost to notify
killed while it makes them."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kombu import Connection, Exchange, Queue

from tests.helpers import SPOT_REFUND, drain, staff, wait_for
from tests.faults.conftest import SETTLE_TIMEOUT, complaint, dead_letters

BURST = 40
SERVICES = ("triage", "analytics", "resolution", "feedback", "notify", "intake")


def settle_on_the_spot(system, number):
    return system.call(
        "POST", "resolution", f"/cases/{number}/spot-resolution", headers=staff("D3001"), json=SPOT_REFUND
    )


def kill_mid_burst(system, service, collection, total=BURST):
    """kill -9 `service` once it has stored the first results of the burst but not all
    `total` of them; returns how many it had stored."""
    wait_for(lambda: system.count(service, collection) >= 1, timeout=SETTLE_TIMEOUT, interval=0.02)
    system.kill(service)
    done = system.count(service, collection)
    assert done < total, f"{service} finished the burst before it was killed; the test proves nothing"
    return done


def test_a_service_killed_mid_burst_finishes_every_complaint_exactly_once(system):
    store = system.store("shared")
    system.start(store, *SERVICES)
    with Connection(system.direct_amqp_uri) as conn:
        watch = {}
        for source, event_type in (("triage", "complaint_triaged"), ("feedback", "revisit_scheduled")):
            watch[event_type] = Queue(
                f"test-crash-{event_type}",
                routing_key=event_type,
                channel=conn,
                exchange=Exchange(f"{source}.events", type="topic", durable=True),
            )
            watch[event_type].declare()

        with ThreadPoolExecutor(8) as pool:
            # the kill comes while the burst is still being sent, so the service has work in hand
            posted = [
                pool.submit(system.call, "POST", "intake", "/complaints", json=complaint(n)) for n in range(BURST)
            ]
            kill_mid_burst(system, "triage", "assessments")
            responses = [f.result() for f in posted]
            assert [r.status_code for r in responses] == [201] * BURST
            numbers = [r.json()["number"] for r in responses]
            system.restart("triage")
            wait_for(lambda: system.count("resolution", "cases") == BURST, timeout=SETTLE_TIMEOUT)

            settling = [pool.submit(settle_on_the_spot, system, number) for number in numbers]
            kill_mid_burst(system, "feedback", "revisits")
            kill_mid_burst(system, "notify", "messages", total=2 * BURST)  # two messages a complaint
            settled = [f.result() for f in settling]
            assert [r.status_code for r in settled] == [200] * BURST, [r.text for r in settled if not r.ok][:3]
            system.restart("feedback")
            system.restart("notify")
        wait_for(lambda: system.count("feedback", "revisits") == BURST, timeout=SETTLE_TIMEOUT)
        # a desk complaint settled on the spot: its answer and the refund's notice (the desk's receipt is on paper)
        wait_for(lambda: system.count("notify", "messages") == 2 * BURST, timeout=SETTLE_TIMEOUT)
        # a process killed between its write and its publish leaves the event to its relay's sweep
        for service, collection in (("triage", "assessments"), ("resolution", "cases"), ("feedback", "revisits")):
            wait_for(lambda s=service, c=collection: system.pending_outbox(s, c) == 0, timeout=SETTLE_TIMEOUT)

        assert system.count("triage", "assessments") == BURST
        assert system.count("resolution", "cases") == BURST
        with store.client() as client:
            revisits = sorted(r["_id"] for r in client["feedback"].revisits.find({}, {"_id": 1}))
        assert revisits == sorted(f"{number}-R1" for number in numbers)
        with store.client() as client:
            kinds = Counter(m["kind"] for m in client["notify"].messages.find({}, {"kind": 1}))
        assert kinds == {"answer": BURST, "execution": BURST}
        for event_type, queue in watch.items():
            per_complaint = Counter(e["complaint_no"] for e in drain(queue, unique=True))
            assert per_complaint == Counter(numbers), event_type
    assert dead_letters(system) == 0
    assert all(system.alive(service) for service in SERVICES)
