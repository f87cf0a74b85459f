"""R7.10, seed 003: 每季度進行不良事件和客戶反饋的匯總分析 (adverse events and customer feedback
summarised every quarter): the quarter's report counts the adverse events reported in it by
type, and how many of each step came within its deadline, the regional manager telling the
customer among them; customer feedback is the same report's satisfaction. Folded by the
report tests' Model, as storage.py folds it."""

from datetime import datetime, timedelta, timezone

from tests.unit.analytics.test_reports import Model, event

T0 = datetime(2026, 11, 9, 2, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)


def reported(number, kind, at):
    return event(
        "incident_reported",
        number,
        {
            "type": kind,
            "contact_masked": "138****5678",
            "forward_due_at": (at + 24 * H).isoformat(),
            "related_complaint_no": None,
            "occurred_at": (at - H).isoformat(),
            "place": {"area": "熟食区", "merchant_id": None},
            "by": "D3001",
        },
        at,
    )


def forwarded(number, at, in_time=True):
    payload = {
        "regional_manager_id": "R7001",
        "forward_due_at": at.isoformat(),
        "within_deadline": in_time,
        "handling_due_at": (at + 48 * H).isoformat(),
        "by": "E3091",
    }
    return event("incident_forwarded", number, payload, at)


def handled(number, at, in_time=True, fen=0):
    payload = {
        "handling_due_at": at.isoformat(),
        "within_deadline": in_time,
        "compensation_fen": fen,
        "communicate_due_at": (at + 24 * H).isoformat(),
        "by": "R7001",
    }
    return event("incident_handled", number, payload, at)


def told(number, at, in_time):
    return event("incident_communicated", number, {"within_deadline": in_time, "by": "R7001"}, at)


def test_the_quarter_summarises_its_adverse_events_and_each_step_in_time():
    model = Model()
    one, two, three = (f"SHXJH-AE-20261109-{n:03d}" for n in (1, 2, 3))
    for e in (
        reported(one, "food_safety", T0),
        forwarded(one, T0 + 2 * H),
        handled(one, T0 + 20 * H, fen=50000),
        told(one, T0 + 30 * H, in_time=True),
        reported(two, "injury", T0),
        forwarded(two, T0 + 30 * H, in_time=False),
        handled(two, T0 + 90 * H, in_time=False),
        told(two, T0 + 200 * H, in_time=False),
        reported(three, "food_safety", T0),
        event("incident_dismissed", three, {"reason": "not an adverse event", "by": "E3091"}, T0 + H),
    ):
        model.take(e)
    quarter = model.report("2026-Q4")["incidents"]
    assert (quarter["reported"], quarter["dismissed"], quarter["compensation_fen"]) == (3, 1, 50000)
    assert quarter["types"] == [{"type": "food_safety", "count": 2}, {"type": "injury", "count": 1}]
    assert quarter["forwarded"] == {"count": 2, "in_time": 1, "share_in_time": 0.5}
    assert quarter["told"] == {"count": 2, "in_time": 1, "share_in_time": 0.5}
    assert model.report("2026-11")["incidents"] == quarter  # the month holds them too
    assert model.report("2026-11")["counts"]["received"] == 0  # an adverse event is not a complaint
