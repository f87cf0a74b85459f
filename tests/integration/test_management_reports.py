"""R7.13 on the real broker and store: on the policy's day analytics' timer sends last month's
report by itself, once, to each mall's management and each department's head their part,
which notify e-mails at work (the stand-ins' mail catcher); a second run sends nothing; the
half year's report sums its six months; a half-year review's decisions become open
improvement actions."""

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.services import entrypoint_hook

from mallcare_common.contracts import EVENT_TYPES
from tests.helpers import drain, staff, wait_for
from tests.integration.test_gateways import standins
from tests.unit.analytics.test_reports import acknowledged, registered, resolved, triaged

SHANGHAI = ZoneInfo("Asia/Shanghai")
BEFORE = datetime(2026, 6, 1, tzinfo=timezone.utc)  # no deadline has passed yet
SEND_DAY = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)  # analytics.yml: send_on_day 2
MALL = "sh-xujiahui"
MANAGER, DIRECTOR, HEAD = "e3091@staff.mall.example", "e3901@staff.mall.example", "e3011@staff.mall.example"


@pytest.fixture
def outside(tmp_path):
    with standins(tmp_path) as started:
        yield started


@pytest.fixture
def now():
    return {"at": BEFORE}


@pytest.fixture
def system(services, policy_dir, outside, now):
    """Analytics on the test's clock, resolution (the staff directory) and notify, whose e-mail
    goes to the stand-ins; the complaints' events come from the test."""
    outside.point_notify_here(policy_dir)
    system = services(
        "analytics",
        "resolution",
        "notify",
        clocks={"analytics": lambda: now["at"]},
        settings={"notify": {"POLICY_DIR": str(policy_dir)}, "analytics": {"SLA_TICK_SECONDS": 0.2}},
    )
    system.catch_all("analytics")  # what analytics publishes, to count the copies issued
    return system


def local(month, day=10):
    return datetime(2026, month, day, 10, 0, tzinfo=SHANGHAI).astimezone(timezone.utc)


def complaint(number, at, department, resolved_after=None):
    """A complaint of customer service or procurement at Xujiahui, acknowledged at once, then
    resolved in time or never."""
    out = [
        registered(number, at),
        acknowledged(number, at + timedelta(minutes=5), at + timedelta(hours=1)),
        triaged(number, at, "service.bad_attitude", department=department, owner="E3001"),
    ]
    if resolved_after is not None:
        out.append(resolved(number, at + resolved_after))
    return out


def send(system):
    with entrypoint_hook(system.containers["analytics"], "send_monthly_reports") as run:
        run()


def get(system, path, **params):
    response = system.web["analytics"].get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_months_report_goes_once_to_management_and_each_head_and_the_half_year_is_reviewed(system, outside, now):
    """R7.13, seed 004: 这些分析结果应定期向商场管理层及相关部门反馈; seed 000: 每半年召開一次方案評估會議，
    邀請各部門負責人參與 — "客服态度差，排队半小时没人理" in November, twice unanswered: on 2 December
    the store manager (冯军) and the operations director (郑总) get Xujiahui's November report by
    e-mail and the head of customer service (钱芳) her department's part with its overdue
    complaint; run again, nobody gets a second; the half year sums July to December; the
    review meeting's decisions are open actions with their owners."""
    hour = timedelta(hours=1)
    late_service, late_procurement = "SHXJH-20261110-0001", "SHXJH-20261110-0003"
    envelopes = [
        *[e for m in (7, 8, 9, 10) for e in complaint(f"SHXJH-2026{m:02d}10-0001", local(m), "customer_service", hour)],
        *complaint(late_service, local(11), "customer_service"),
        *complaint("SHXJH-20261110-0002", local(11), "customer_service", 2 * hour),
        *complaint(late_procurement, local(11), "procurement_qc"),
        *complaint("SHXJH-20261201-0001", local(12, 1), "customer_service", hour),
    ]
    for e in envelopes:
        system.dispatch(EVENT_TYPES[e["event_type"]].source, e["event_type"], e)
    events = system.db("analytics").events
    mine = {"_id": {"$in": [e["event_id"] for e in envelopes]}, "applied": True}  # resolution adds its own
    wait_for(lambda: events.count_documents(mine) == len(envelopes), timeout=60)
    now["at"] = SEND_DAY.astimezone(timezone.utc)  # November's deadlines have passed: two are overdue
    wait_for(lambda: get(system, "/reports/monthly", period="2026-11", mall_id=MALL)["overdue"]["count"] == 2)

    send(system)
    mails = {to: wait_for(lambda to=to: outside.received(to)) for to in (MANAGER, DIRECTOR, HEAD)}
    assert [len(m) for m in mails.values()] == [1, 1, 1]
    [head] = mails[HEAD]
    assert head["subject"] == "上海徐家汇店2026-11月度投诉报告：客服部"
    assert head["text"].startswith("钱芳：") and "投诉 2 件，已解决 1 件，超时 1 件" in head["text"]
    assert late_service in head["text"] and late_procurement not in head["text"]  # her department's only
    assert "/reports/monthly.html?period=2026-11&mall_id=sh-xujiahui" in head["text"]
    [manager] = mails[MANAGER]
    assert manager["text"].startswith("冯军：") and "投诉 3 件，已解决 1 件，超时 2 件" in manager["text"]
    listed = get(system, "/reports/deliveries", mall_id=MALL, period="2026-11")["items"]
    assert sorted((d["part"], d["staff_id"], d["department"]) for d in listed) == [
        ("department", "E3011", "customer_service"),
        ("management", "E3091", None),
        ("management", "E3901", None),
    ]

    # run again, and once more as if a run had died before it noted the month done: nothing new
    send(system)
    system.db("analytics").report_runs.delete_many({})
    send(system)
    time.sleep(2)  # time for a second mail to arrive, were one sent
    assert [len(outside.received(to)) for to in (MANAGER, DIRECTOR, HEAD)] == [1, 1, 1]
    issued = Counter(
        e["payload"]["delivery_id"] for e in drain(system.queues["analytics"]) if e["event_type"] == "report_issued"
    )
    assert issued["SHXJH-RPT-2026-11:department:E3011:customer_service"] == 1 and set(issued.values()) == {1}
    assert len(get(system, "/reports/deliveries", mall_id=MALL, period="2026-11")["items"]) == 3

    # the half year: its six months' reports summed
    half = get(system, "/reports/half-year", period="2026-H2", mall_id=MALL)
    months = [get(system, "/reports/monthly", period=f"2026-{m:02d}", mall_id=MALL) for m in range(7, 13)]
    assert half["kind"] == "half_year" and half["counts"]["received"] == 8
    assert half["counts"]["received"] == sum(m["counts"]["received"] for m in months)
    assert half["overdue"]["count"] == 2 and half["counts"]["resolved"] == 6
    page = system.web["analytics"].get("/reports/half-year.html", params={"period": "2026-H2", "mall_id": MALL})
    assert page.status_code == 200 and "半年度方案评估报告 2026-H2" in page.text

    # the review meeting with the department heads: its decisions become open actions
    review = {
        "mall_id": MALL,
        "period": "2026-H2",
        "held_on": "2027-01-08",
        "attendees": ["E3011", "E3091", "E3901"],
        "decisions": [
            {
                "decision": "客服高峰期增配一名专员，排队超过10分钟即由主管接待",
                "owner_id": "E3011",
                "due_date": "2027-02-28",
            },
            {"decision": "采购品控部每周抽检生鲜批次并公示结果", "owner_id": "E3091", "due_date": "2027-03-31"},
        ],
    }
    answer = system.web["analytics"].post("/reviews", json=review, headers=staff("E3901"))
    assert answer.status_code == 201, answer.text
    recorded = answer.json()
    assert recorded["review_id"] == "SHXJH-REV-2026-H2" and recorded["recorded_by"] == "E3901"
    open_actions = get(system, "/actions", mall_id=MALL, status="open")["items"]
    mine = [(a["owner_id"], a["due_date"], a["review_id"]) for a in open_actions if a.get("review_id")]
    assert mine == [("E3011", "2027-02-28", "SHXJH-REV-2026-H2"), ("E3091", "2027-03-31", "SHXJH-REV-2026-H2")]
    again = system.web["analytics"].post("/reviews", json=review, headers=staff("E3901"))
    assert again.status_code == 409, again.text
    stranger = system.web["analytics"].post(
        "/reviews", json={**review, "period": "2026-H1", "attendees": ["E4011"]}, headers=staff("E3901")
    )
    assert stranger.status_code == 422 and "attendees" in stranger.json()["fields"], stranger.text
