"""DESIGN.md (no dual writes): the outbox relay publishes pending events in order,
marks each one sent only after the broker took it (all it published in one write),
keeps the rest on a failure, and leaves fresh events to the request that wrote them."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import eventlet

from mallcare_common.messaging import new_outbox, publish_pending, push_to_outbox

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def event(n):
    return {"event_id": f"e{n}", "event_type": f"complaint_{n}"}


class Collection:
    """Applies the relay's update (mark_sent's) to documents held in a dict."""

    full_name = "probe.complaints"

    def __init__(self, *docs):
        self.docs = {d["_id"]: d for d in docs}
        self.database = SimpleNamespace(client=self)
        self.writes = 0

    def update_many(self, selector, update, array_filters=None):
        if "$unset" in update:  # what has nothing pending loses the field (a second write of the same mark)
            assert selector["pending_events"] == [] and update["$unset"] == {"pending_events": ""}
            for number in selector["_id"]["$in"]:
                if self.docs[number].get("pending_events") == []:
                    del self.docs[number]["pending_events"]
            return
        self.writes += 1
        [(path, value)] = update["$set"].items()
        assert path == "outbox.$[sent].sent_at"
        marked = array_filters[0]["sent.event.event_id"]["$in"]
        for number in selector["_id"]["$in"]:
            doc = self.docs[number]
            for entry in doc["outbox"]:
                if entry["event"]["event_id"] in marked:
                    entry["sent_at"] = value
            pulled = update["$pull"]["pending_events"]["$in"]
            doc["pending_events"] = [e for e in doc.get("pending_events", []) if e not in pulled]


def complaint(number, *events, created=NOW):
    doc = {"_id": number, **new_outbox(events[0], created)}
    for more in events[1:]:
        pushed = push_to_outbox(more, created)
        doc["outbox"].append(pushed["outbox"])
        doc["pending_events"].append(pushed["pending_events"])
    return doc


def test_publishes_in_order_and_marks_each_sent():
    doc = complaint("N-1", event(1), event(2))
    store, sent = Collection(doc), []
    assert publish_pending(store, lambda kind, body: sent.append(body["event_id"]), "intake", NOW, [doc]) == (2, 0)
    assert sent == ["e1", "e2"]
    assert "pending_events" not in doc and all(e["sent_at"] == NOW for e in doc["outbox"])


def test_a_failure_keeps_that_event_and_the_ones_after_it_pending():
    doc = complaint("N-1", event(1), event(2), event(3))
    other = complaint("N-2", event(4))
    store, sent = Collection(doc, other), []

    def dispatch(kind, body):
        if body["event_id"] == "e2":
            raise ConnectionError("broker down")
        sent.append(body["event_id"])

    assert publish_pending(store, dispatch, "intake", NOW, [doc, other]) == (2, 1)
    assert sent == ["e1", "e4"]
    assert doc["pending_events"] == ["e2", "e3"] and "pending_events" not in other
    assert [e["sent_at"] for e in doc["outbox"]] == [NOW, None, None]
    assert store.writes == 1  # the sweep marks what it published in one write


def test_already_sent_events_are_not_sent_again():
    doc = complaint("N-1", event(1), event(2))
    doc["pending_events"].remove("e1")
    sent = []
    publish_pending(Collection(doc), lambda kind, body: sent.append(body["event_id"]), "intake", NOW, [doc])
    assert sent == ["e2"]


def test_the_sweep_leaves_fresh_events_to_their_writer():
    doc = complaint("N-1", event(1), created=NOW - timedelta(seconds=1))
    sent = []
    publish_pending(
        Collection(doc),
        lambda kind, body: sent.append(body),
        "intake",
        NOW,
        [doc],
        created_before=NOW - timedelta(seconds=3),
    )
    assert sent == [] and doc["pending_events"] == ["e1"]


class SlowCollection(Collection):
    """A write that takes a while (a journaled update), as concurrent requests see it;
    `fail` makes the next write fail."""

    def __init__(self, *docs):
        super().__init__(*docs)
        self.fail = False

    def update_many(self, selector, update, array_filters=None):
        if array_filters is None:  # the field's removal after a mark: not the write under test
            return super().update_many(selector, update)
        fails, self.fail = self.fail, False
        eventlet.sleep(0.02)
        if fails:
            raise ConnectionError("the store does not answer")
        super().update_many(selector, update, array_filters)


def test_concurrent_requests_marks_go_in_one_write_each_returning_once_its_own_is_written():
    docs = [complaint(f"N-{n}", event(n)) for n in range(6)]
    store, sent = SlowCollection(*docs), []
    marked = []

    def request(doc):
        publish_pending(store, lambda kind, body: sent.append(body["event_id"]), "intake", NOW, [doc])
        marked.append("pending_events" not in doc and doc["outbox"][0]["sent_at"] == NOW)

    pool = eventlet.GreenPool()
    for doc in docs:
        pool.spawn(request, doc)
    pool.waitall()
    assert sorted(sent) == [f"e{n}" for n in range(6)] and marked == [True] * 6
    assert store.writes == 2  # the first request's own, then the five that came while it was written


def test_a_failed_write_fails_every_request_whose_marks_it_held_and_they_stay_pending():
    docs = [complaint(f"N-{n}", event(n)) for n in range(3)]
    store = SlowCollection(*docs)
    outcomes = []

    def request(doc):
        try:
            publish_pending(store, lambda kind, body: None, "intake", NOW, [doc])
            outcomes.append("marked")
        except ConnectionError:
            outcomes.append("failed")

    pool = eventlet.GreenPool()
    pool.spawn(request, docs[0])
    eventlet.sleep(0.005)  # the first write is under way: the other two wait together
    store.fail = True
    for doc in docs[1:]:
        pool.spawn(request, doc)
    pool.waitall()
    assert sorted(outcomes) == ["failed", "failed", "marked"]
    assert [d.get("pending_events") for d in docs] == [None, ["e1"], ["e2"]]  # the relay publishes them again
