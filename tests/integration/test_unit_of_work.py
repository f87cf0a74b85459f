"""DESIGN.md (no dual writes, compare-and-set): the unit of work every service's write
path goes through (mallcare_common.unit_of_work.change), against the real store: it
writes a decision with its events in the outbox and publishes them, decides again on
what a writer who got there first wrote, gives up with Conflict when it keeps losing,
and writes nothing for a redelivery or a refusal."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pymongo import MongoClient, monitoring

from mallcare_common.errors import Conflict
from mallcare_common.messaging import new_outbox
from mallcare_common.mongo import NotFound
from mallcare_common.unit_of_work import ATTEMPTS, change

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def event(name):
    return {"event_id": f"ev-{name}", "event_type": f"case_{name}"}


class Clock:
    """A minute later at each look, so each attempt's time shows in what it wrote."""

    def __init__(self):
        self.now = NOW

    def __call__(self):
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def cases(mongo_client):
    db = mongo_client[f"t{uuid.uuid4().hex[:8]}"]
    db.cases.insert_one({"_id": "SH-1", "version": 0, "state": "open", "notes": [], **new_outbox(event("opened"), NOW)})
    db.cases.update_one({"_id": "SH-1"}, {"$set": {"outbox.0.sent_at": NOW}, "$pull": {"pending_events": "ev-opened"}})
    yield db.cases
    mongo_client.drop_database(db.name)


@pytest.fixture
def published():
    return []


def run(cases, decide, published, kept_changing="SH-1 kept changing; try again", count=None):
    return change(
        cases,
        "SH-1",
        decide,
        lambda kind, body: published.append(body["event_id"]),
        "probe",
        Clock(),
        "case",
        kept_changing,
        count=count,
    )


def test_a_decision_is_written_with_its_events_and_they_are_published(cases, published):
    def resolve(case, now):
        return {"$set": {"state": "resolved", "resolved_at": now}, "$push": {"notes": "resolved"}}, [event("resolved")]

    updated = run(cases, resolve, published)
    stored = cases.find_one({"_id": "SH-1"})
    assert published == ["ev-resolved"]
    assert "pending_events" not in stored  # nothing pending: the field goes
    assert stored == {k: v for k, v in updated.items() if k != "pending_events"} | {"outbox": stored["outbox"]}
    assert (stored["state"], stored["version"], stored["notes"]) == ("resolved", 1, ["resolved"])
    assert [e["event"]["event_id"] for e in stored["outbox"]] == ["ev-opened", "ev-resolved"]
    assert stored["outbox"][1]["created_at"] == stored["outbox"][1]["sent_at"] == stored["resolved_at"]


def test_the_loser_of_a_race_decides_again_on_the_winners_write(cases, published):
    seen = []

    def loser(case, now):
        seen.append(list(case["notes"]))
        if len(seen) == 1:  # the winner writes between the loser's read and its write
            run(cases, lambda case, now: ({"$push": {"notes": "winner"}}, [event("winner")]), published)
        return {"$push": {"notes": f"loser after {case['notes']}"}}, [event("loser")]

    updated = run(cases, loser, published)
    assert seen == [[], ["winner"]]
    assert updated["notes"] == ["winner", "loser after ['winner']"] and updated["version"] == 2
    assert published == ["ev-winner", "ev-loser"]


def test_a_change_is_counted_from_what_it_was_decided_on_before_its_events_leave(cases, published):
    counted = []

    def loser(case, now):
        if not case["notes"]:  # the winner writes between the loser's read and its write
            run(cases, lambda case, now: ({"$push": {"notes": "winner"}}, [event("winner")]), published)
        return {"$set": {"state": "resolved"}, "$push": {"notes": "loser"}}, [event("loser")]

    def count(before, after):
        counted.append((before["notes"], before["state"], after["state"], list(published)))

    run(cases, loser, published, count=count)
    assert counted == [(["winner"], "open", "resolved", ["ev-winner"])]
    assert published == ["ev-winner", "ev-loser"]
    run(cases, lambda case, now: None, published, count=count)
    assert len(counted) == 1


def test_a_write_that_keeps_losing_gives_up_with_conflict(cases, published):
    tries = []

    def always_overtaken(case, now):
        tries.append(case["version"])
        cases.update_one({"_id": "SH-1"}, {"$inc": {"version": 1}})  # another writer, every time
        return {"$set": {"state": "resolved"}}, [event("resolved")]

    with pytest.raises(Conflict, match="^SH-1 kept changing while resolve was applied$"):
        run(cases, always_overtaken, published, "SH-1 kept changing while resolve was applied")
    assert tries == list(range(ATTEMPTS))
    stored = cases.find_one({"_id": "SH-1"})
    assert stored["state"] == "open" and stored["pending_events"] == [] and len(stored["outbox"]) == 1
    assert published == []


def test_nothing_to_do_writes_and_publishes_nothing(cases, published):
    cases.update_one({"_id": "SH-1"}, {"$push": {"pending_events": "ev-elsewhere"}})
    before = cases.find_one({"_id": "SH-1"}, {"outbox": 0})
    assert run(cases, lambda case, now: None, published) == before
    assert cases.find_one({"_id": "SH-1"}, {"outbox": 0}) == before
    assert published == []


def test_a_refusal_leaves_as_it_is_and_nothing_is_written(cases, published):
    def refuse(case, now):
        raise Conflict("a case that is open cannot be closed")

    with pytest.raises(Conflict, match="cannot be closed"):
        run(cases, refuse, published)
    assert cases.find_one({"_id": "SH-1"})["version"] == 0 and published == []


def test_no_such_document_is_not_found_by_its_name(cases, published):
    with pytest.raises(NotFound, match="^no case SH-2$"):
        change(cases, "SH-2", lambda case, now: ({}, []), published.append, "probe", Clock(), "case", "")


def test_a_document_that_never_had_an_event_changes_without_one(cases, published):
    cases.insert_one({"_id": "SH-0", "state": "open"})
    updated = change(
        cases,
        "SH-0",
        lambda case, now: ({"$set": {"state": "closed"}}, []),
        published.append,
        "probe",
        Clock(),
        "case",
        "",
    )
    assert updated == {"_id": "SH-0", "state": "closed", "version": 1} and published == []


def test_a_document_written_before_it_had_a_version_gets_one(cases, published):
    cases.insert_one({"_id": "SH-0", "state": "open", "outbox": [], "pending_events": []})
    updated = change(
        cases,
        "SH-0",
        lambda case, now: ({"$set": {"state": "closed"}}, []),
        published.append,
        "probe",
        Clock(),
        "case",
        "",
    )
    assert (updated["state"], updated["version"]) == ("closed", 1)


class Commands(monitoring.CommandListener):
    def __init__(self):
        self.names = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_change_asks_the_store_for_no_find_and_modify(mongo_uri, cases, published):
    """Issue 21 (a day-long run without slowing): the embedded store answers each
    findAndModify by reading every document of the collection, so a case's action slowed
    with each month's cases (the one-hour soak: 30 s a spot settlement at 10,800 cases). A
    change is a read, a compare-and-set update and a read back, each by _id."""
    listener = Commands()
    client = MongoClient(mongo_uri, event_listeners=[listener], tz_aware=True)
    try:
        mine = client[cases.database.name].cases
        updated = run(mine, lambda case, now: ({"$set": {"state": "resolved"}}, [event("resolved")]), published)
    finally:
        client.close()
    assert updated["state"] == "resolved" and published == ["ev-resolved"]
    writes = [n for n in listener.names if n not in ("hello", "isMaster", "ismaster", "endSessions", "ping")]
    assert "findAndModify" not in writes and writes[:3] == ["find", "update", "find"], writes


class OvertakenAfterItsWrite:
    """The cases, where somebody else closes the case right after the first write lands,
    before the writer reads it back."""

    def __init__(self, collection):
        self.collection, self.done = collection, False

    def update_one(self, *args, **kwargs):
        result = self.collection.update_one(*args, **kwargs)
        if not self.done:
            self.done = True
            self.collection.update_one({"_id": "SH-1"}, {"$set": {"state": "closed"}, "$inc": {"version": 1}})
        return result

    def __getattr__(self, name):
        return getattr(self.collection, name)


def test_a_change_counts_its_own_write_when_another_lands_before_the_read_back(cases, published):
    """A count moves tallies by what this write changed: a writer who came after it counts
    its own change, so counting from the document read back would count that twice."""
    counted = []
    updated = run(
        OvertakenAfterItsWrite(cases),
        lambda case, now: ({"$set": {"state": "resolved", "resolution.by": "E3501"}}, [event("resolved")]),
        published,
        count=lambda before, after: counted.append((before["state"], after["state"], after["resolution"])),
    )
    assert counted == [("open", "resolved", {"by": "E3501"})]
    assert updated["state"] == "closed" and published == ["ev-resolved"]  # the document as it is now
