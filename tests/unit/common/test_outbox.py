"""DESIGN.md (no dual writes): the outbox relay publishes pending events in order,
marks each one sent only after the broker took it, keeps the rest on a failure,
and leaves fresh events to the request that wrote them."""

from datetime import datetime, timedelta, timezone

from mallcare_common.messaging import new_outbox, publish_pending, push_to_outbox

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def event(n):
    return {"event_id": f"e{n}", "event_type": f"complaint_{n}"}


class Collection:
    """Applies the relay's two update operators to documents held in a dict."""

    def __init__(self, *docs):
        self.docs = {d["_id"]: d for d in docs}

    def update_one(self, selector, update):
        doc = self.docs[selector["_id"]]
        for path, value in update["$set"].items():
            _, position, field = path.split(".")
            doc["outbox"][int(position)][field] = value
        doc["pending_events"].remove(update["$pull"]["pending_events"])


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
    assert doc["pending_events"] == [] and all(e["sent_at"] == NOW for e in doc["outbox"])


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
    assert doc["pending_events"] == ["e2", "e3"] and other["pending_events"] == []


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
