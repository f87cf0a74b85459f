"""R5.5, R6.2 (deadlines of R1.2, R2.3, R2.4, R3.2, R3.6-R3.9, R4.1): for every kind of
SLA clock, the event that starts it, the event that stops it, its breach when nothing
stops it in time, its cancellation or closure where that applies, and what the monthly
report counts for it. The clock operations are applied in memory the way the store
applies them (an operation per event, outcomes as `clocks.outcome` and the sweep give)."""

from datetime import datetime, timedelta, timezone

import pytest

from analytics import clocks
from analytics.clocks import INCIDENT_CLOCKS
from mallcare_common.contracts.analytics import CLOCKS
from tests.unit.analytics.test_reports import Model, registered, triaged

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
N = "C1"
DUE = T0 + 10 * H


def ev(kind, payload, at=T0, number=N):
    return {
        "event_type": kind,
        "payload": payload,
        "occurred_at": at,
        "mall_id": "sh-xujiahui",
        "complaint_no": number,
        "event_id": f"{kind}-{at.isoformat()}",
    }


class Clocks:
    """The clocks of one complaint in memory, moved as storage.py moves them."""

    def __init__(self):
        self.all = {}

    def _stop(self, clock_id, at, cancelled=False):
        clock = self.all.get(clock_id)
        if clock and clock["stopped_at"] is None:
            clock.update(stopped_at=at, cancelled=cancelled)

    def take(self, event):
        for op in clocks.operations(event):
            if isinstance(op, clocks.Start):
                self.all[op.clock_id] = {"_id": op.clock_id, "clock": op.clock, **op.fields, "stopped_at": None}
            elif isinstance(op, clocks.Promise):
                running = [c for c in self.all.values() if c["clock"] == "promised" and c["stopped_at"] is None]
                if running:
                    running[0]["due_at"] = op.start.fields["due_at"]
                else:
                    self.all[op.start.clock_id] = {
                        "_id": op.start.clock_id,
                        "clock": "promised",
                        **op.start.fields,
                        "stopped_at": None,
                    }
            elif isinstance(op, clocks.Stop):
                self._stop(op.clock_id, op.at, op.cancelled)
            elif isinstance(op, clocks.StopAll):
                for c in [c for c in self.all.values() if c["clock"] == op.clock]:
                    self._stop(c["_id"], op.at)
            elif isinstance(op, clocks.Close):
                for c in list(self.all.values()):
                    if clocks.ending(c["clock"]) and c["started_at"] <= op.at:
                        self._stop(c["_id"], op.at, clocks.ending(c["clock"]) == "cancel")
        return self

    def outcomes(self, now):
        """(clock, final outcome) as the report counts them: met, cancelled, or breached (the
        sweep's breach of a running clock past its deadline, or a clock met late)."""
        out = []
        for c in self.all.values():
            result = clocks.outcome(c)
            if result is None and c["due_at"] <= now:
                result = "breached"
            elif result == "met_late":
                result = "breached"
            if result:
                out.append((c, result))
        return out


TRIAGED = {
    "owner_id": "E3501",
    "department": "merchant_relations",
    "received_at": T0,
    "first_response_due_at": DUE,
    "resolution_due_at": DUE,
}
# kind: (the event that starts it, the event that stops it (at T0 + 1 h), the clock's owner)
KINDS = {
    "acknowledgement": (
        ev("complaint_registered", {"received_at": T0, "ack_due_at": DUE, "channel": "desk"}),
        ev("complaint_acknowledged", {"acknowledged_at": T0 + H}, T0 + H),
        "desk",
    ),
    "first_response": (ev("complaint_triaged", TRIAGED), ev("customer_contacted", {"via": "phone"}, T0 + H), "E3501"),
    "resolution": (ev("complaint_triaged", TRIAGED), ev("case_resolved", {"round": 1}, T0 + H), "E3501"),
    "review_meeting": (
        ev("case_opened", {"review_meeting_due_at": DUE, "convenor_id": "E3901", "department": "operations"}),
        ev("review_meeting_decided", {}, T0 + H),
        "E3901",
    ),
    "re_review": (
        ev("case_escalated", {"re_review_due_at": DUE, "to_staff_id": "E3011", "to_role": "supervisor"}),
        ev("case_proposed", {}, T0 + H),
        "E3011",
    ),
    "execution": (
        ev("case_accepted", {"tasks": [{"task_id": 1, "due_at": DUE}], "by": "E3501"}),
        ev("execution_task_done", {"task_id": 1, "done_at": T0 + H}, T0 + H),
        "E3501",
    ),
    "rectification": (
        ev("rectification_due", {"rectification_id": 1, "due_at": DUE, "owner_id": "E3091"}),
        ev("rectification_done", {"rectification_id": 1, "done_at": T0 + H}, T0 + H),
        "E3091",
    ),
    "incident_forwarding": (
        ev("incident_reported", {"forward_due_at": DUE}),
        ev("incident_dismissed", {}, T0 + H),
        "store_manager",
    ),
    "incident_handling": (
        ev("incident_forwarded", {"handling_due_at": DUE, "regional_manager_id": "R7001"}),
        ev("incident_handled", {}, T0 + H),
        "R7001",
    ),
    "incident_communication": (  # R7.10, seed 003: 區域經理需及時將處理結果反饋給客戶
        ev("incident_handled", {"communicate_due_at": DUE, "by": "R7001"}),
        ev("incident_communicated", {}, T0 + H),
        "R7001",
    ),
    "revisit": (
        ev("revisit_scheduled", {"revisit_id": "C1-R1", "due_at": DUE}),
        ev("revisit_done", {"revisit_id": "C1-R1"}, T0 + H),
        "feedback",
    ),
    "promised": (
        ev("time_promised", {"expected_by": DUE, "by": "E3501"}),
        ev("case_resolved", {"round": 1}, T0 + H),
        "E3501",
    ),
    # R7.5 the merchant a tenant's case was sent to keeps it: its scorecard counts it
    "merchant_reply": (
        ev("merchant_reply_requested", {"request_id": 1, "merchant_id": "T-233", "due_at": DUE}),
        ev("merchant_replied", {"request_id": 1, "replied_at": T0 + H}, T0 + H),
        "T-233",
    ),
}
PEOPLE = {
    "first_response",
    "resolution",
    "review_meeting",
    "re_review",
    "execution",
    "rectification",
    "incident_handling",
    "incident_communication",
    "promised",
}


def test_every_clock_kind_is_covered():
    assert set(KINDS) == set(CLOCKS)


def report_counts(outcomes):
    """The monthly report's SLA rows after these outcomes (complaint clocks only)."""
    model = Model()
    model.take(registered(N, T0))
    model.take(triaged(N, T0, "product.quality_defect", department="merchant_relations"))
    for clock, result in outcomes:
        if clock["clock"] in INCIDENT_CLOCKS:
            continue  # adverse events are not complaints (storage.apply_clock skips them)
        model.outcome(clock, result)
    report = model.report("2026-11", "sh-xujiahui")
    return {**report["sla"], "merchants": report["merchant_scorecard"]}


def row_of(sla, kind, owner):
    if kind == "merchant_reply":
        return next((r["sla"] for r in sla["merchants"] if r["merchant_id"] == owner), None)
    if kind in PEOPLE:
        return next((r for r in sla["handlers"] if r["handler"] == owner), None)
    return next((r for r in sla["services"] if (r["clock"], r["owner"]) == (kind, owner)), None)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_clock_starts_stops_and_breaches(kind):
    start, stop, owner = KINDS[kind]
    started = Clocks().take(start)
    [clock] = [c for c in started.all.values() if c["clock"] == kind]
    assert (clock["started_at"], clock["due_at"], clock["owner"]) == (T0, DUE, owner)
    assert (clock["owner_kind"] == "person") == (kind in PEOPLE)

    met = Clocks().take(start).take(stop).outcomes(T0 + 30 * H)
    assert [r for c, r in met if c["clock"] == kind] == ["met"]
    breached = Clocks().take(start).outcomes(DUE)  # nothing stopped it by its deadline
    assert [r for c, r in breached if c["clock"] == kind] == ["breached"]
    assert Clocks().take(start).outcomes(DUE - timedelta(seconds=1)) == []  # running: nothing to count yet

    if kind in INCIDENT_CLOCKS:
        return  # adverse events are not complaints: not in the complaint report
    for outcomes, (n_met, n_breached) in ((met, (1, 0)), (breached, (0, 1))):
        row = row_of(report_counts([(c, r) for c, r in outcomes if c["clock"] == kind]), kind, owner)
        assert (row["met"], row["breached"]) == (n_met, n_breached)


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {*INCIDENT_CLOCKS, "rectification", "revisit"}))
def test_a_closure_meets_or_cancels_each_clock_of_the_case_and_none_breaches_after(kind):
    """R4.2: a supervisor closes the case at T0 + 2 h; nothing of it breaches later."""
    start, _, owner = KINDS[kind]
    closed = Clocks().take(start).take(ev("case_closed", {"reason": "r", "without_answer": False}, T0 + 2 * H))
    outcomes = [(c, r) for c, r in closed.outcomes(T0 + 300 * H) if c["clock"] == kind]
    expected = "met" if kind in ("first_response", "resolution") else "cancelled"
    assert [r for _, r in outcomes] == [expected]
    row = row_of(report_counts(outcomes), kind, owner)
    assert (row["met"], row["breached"], row["cancelled"]) == ((1, 0, 0) if expected == "met" else (0, 0, 1))


def test_a_closure_after_the_deadline_is_met_late_for_the_resolution():
    closed = Clocks().take(KINDS["resolution"][0]).take(ev("case_closed", {}, DUE + H))
    assert [(c["clock"], r) for c, r in closed.outcomes(DUE + 300 * H)] == [
        ("first_response", "breached"),
        ("resolution", "breached"),
    ]


def test_a_rectification_outlives_the_closure():
    closed = Clocks().take(KINDS["rectification"][0]).take(ev("case_closed", {}, T0 + H))
    assert [r for _, r in closed.outcomes(DUE)] == ["breached"]


def test_a_new_promise_moves_the_promised_time():
    promised = (
        Clocks()
        .take(KINDS["promised"][0])
        .take(ev("time_promised", {"expected_by": DUE + 5 * H, "by": "E3501"}, T0 + H))
    )
    assert [c["due_at"] for c in promised.all.values()] == [DUE + 5 * H]
    assert promised.outcomes(DUE + H) == []  # not breached at the first promise's time


def test_a_revisit_answered_in_time_is_met_even_when_the_closure_it_caused_is_applied_first():
    """R4.1: the satisfied answer's revisit_done and the case_closed it causes come on two queues."""
    start, done, _ = KINDS["revisit"]
    closed = ev("case_closed", {"reason": "customer satisfied (score 5)", "without_answer": False}, T0 + 2 * H)
    for order in ((start, done, closed), (start, closed, done)):
        clocks_ = Clocks()
        for e in order:
            clocks_.take(e)
        assert [r for _, r in clocks_.outcomes(DUE + 300 * H)] == ["met"]


def test_a_closure_leaves_an_open_revisit_to_feedbacks_cancellation():
    start = KINDS["revisit"][0]
    closed = Clocks().take(start).take(ev("case_closed", {"reason": "r", "without_answer": False}, T0 + 2 * H))
    assert closed.all[clocks.clock_id(N, "revisit", "C1-R1")]["stopped_at"] is None
    closed.take(ev("revisit_cancelled", {"revisit_id": "C1-R1", "reason": "case closed"}, T0 + 2 * H))
    assert [r for _, r in closed.outcomes(DUE + 300 * H)] == ["cancelled"]


def test_a_cancelled_revisit_does_not_breach():
    start = KINDS["revisit"][0]
    cancelled = (
        Clocks().take(start).take(ev("revisit_cancelled", {"revisit_id": "C1-R1", "reason": "case reopened"}, T0 + H))
    )
    assert [r for _, r in cancelled.outcomes(DUE + 300 * H)] == ["cancelled"]
