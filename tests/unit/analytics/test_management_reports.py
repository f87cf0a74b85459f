"""R7.13: who gets which part of the month's report and when (seed 004: 定期向商场管理层及相关部门反馈),
the half year's six months summed (seed 000: 每半年召開一次方案評估會議), and a review's decisions as
improvement actions (邀請各部門負責人參與), as pure rules."""

from datetime import date, datetime, timezone

import pytest
from marshmallow import RAISE

from analytics import deliveries, reports, reviews
from analytics.schemas import ReviewIn
from mallcare_common.contracts import analytics as events
from mallcare_common.contracts import read_event

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
STAFF = [  # as resolution's staff_at gives a mall's directory
    {"staff_id": "E3001", "name": "张伟", "role": "handler", "department": "customer_service", "head_of": []},
    {"staff_id": "E3011", "name": "钱芳", "role": "supervisor", "department": "customer_service",
     "head_of": ["customer_service"]},
    {"staff_id": "E3091", "name": "冯军", "role": "store_manager", "department": None, "head_of": []},
    {"staff_id": "E3901", "name": "郑总", "role": "operations_director", "department": "operations_director",
     "head_of": ["procurement_qc"]},
]  # fmt: skip


def test_management_gets_the_whole_report_and_each_head_their_department_part():
    """R7.13, seed 004: 这些分析结果应定期向商场管理层及相关部门反馈 — the store manager and the
    operations director (the policy's roles) get the whole report, the head of customer service
    (钱芳) its part; a director who also heads a department gets both; a handler gets nothing."""
    found = deliveries.recipients(STAFF, ["store_manager", "operations_director"])
    assert [(m["staff_id"], part, dept) for m, part, dept in found] == [
        ("E3011", "department", "customer_service"),
        ("E3091", "management", None),
        ("E3901", "management", None),
        ("E3901", "department", "procurement_qc"),
    ]


@pytest.mark.parametrize(
    ("today", "due"),
    [
        (date(2026, 12, 1), None),  # before the policy's day: November is not out yet
        (date(2026, 12, 2), "2026-11"),
        (date(2026, 12, 31), "2026-11"),  # a day missed (a restart) is caught up
        (date(2027, 1, 2), "2026-12"),  # January sends December's, of the year before
    ],
)
def test_the_month_before_goes_from_the_policys_day(today, due):
    """R7.13, seed 004: 定期向商场管理层及相关部门反馈 — on the mall's calendar, from day 2."""
    assert deliveries.month_due(today, 2) == due


def _report():
    counts = {
        "registered": 5,
        "resolved": 4,
        "overdue": 2,
        "answers": {"satisfied": 3, "dissatisfied": 1},
        "card_department": {
            "customer_service": {"complaints": 3, "resolved": 3, "overdue": 1, "satisfied": 2, "dissatisfied": 1},
            "procurement_qc": {"complaints": 2, "resolved": 1, "overdue": 1, "satisfied": 1},
        },
        "sla_department": {"customer_service": {"met": 3, "breached": 1}, "procurement_qc": {"met": 1, "breached": 1}},
    }
    tallies = [{"mall_id": "sh-xujiahui", "counts": counts}]
    return reports.build_report("monthly", "2026-11", "sh-xujiahui", tallies, [])


def test_a_department_part_has_its_own_figures_and_overdue_cases():
    """R7.13, seed 004: 反馈给相关部门 — the head of customer service reads customer service's
    complaints, SLA compliance and its overdue cases, not the mall's; management reads the mall's."""
    report = _report()
    part = deliveries.figures(report, "customer_service", ["SHXJH-20261105-0003"])
    assert part == {
        "complaints": 3,
        "resolved": 3,
        "overdue": 1,
        "satisfaction": 0.6667,
        "sla_compliance": 0.75,
        "overdue_cases": ["SHXJH-20261105-0003"],
    }
    whole = deliveries.figures(report, None)
    assert (whole["complaints"], whole["overdue"], whole["satisfaction"], whole["sla_compliance"]) == (
        5,
        2,
        0.75,
        0.6667,
    )
    # a department with no complaints that month reads zeros, not another's figures
    assert deliveries.figures(report, "security")["complaints"] == 0


def test_each_copy_is_one_delivery_with_its_event():
    """R7.13, seed 004: 定期向商场管理层及相关部门反馈 — one document and one report_issued per
    report, part and recipient, keyed so that a second try finds it."""
    recipient = ({"staff_id": "E3011", "role": "supervisor"}, "department", "customer_service")
    link = deliveries.link("http://127.0.0.1:8005/reports/monthly.html", "2026-11", "sh-xujiahui")
    doc, event = deliveries.delivery(
        "SHXJH-RPT-2026-11", "sh-xujiahui", "2026-11", recipient, deliveries.figures(_report(), "customer_service"),
        link, NOW,
    )  # fmt: skip
    assert doc["_id"] == "SHXJH-RPT-2026-11:department:E3011:customer_service"
    assert link == "http://127.0.0.1:8005/reports/monthly.html?period=2026-11&mall_id=sh-xujiahui"
    read = read_event(event, events.REPORT_ISSUED)
    assert (read["complaint_no"], read["payload"]["staff_id"], read["payload"]["part"]) == (
        "SHXJH-RPT-2026-11",
        "E3011",
        "department",
    )
    assert events.REPORT_ISSUED.payload(unknown=RAISE).validate(event["payload"]) == {}


def test_a_half_year_is_its_six_months_summed_per_mall():
    """R7.13, seed 000: 每半年召開一次方案評估會議 — 2026-H2 is July to December; the report of
    the half year sums the six months' tallies of each mall."""
    assert reports.kind_of("2026-H2") == "half_year"
    assert reports.months_of("2026-H1") == [f"2026-0{m}" for m in range(1, 7)]
    assert reports.months_of("2026-H2") == ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    with pytest.raises(ValueError):
        reports.kind_of("2026-H3")
    tallies = [
        {"mall_id": "sh-xujiahui", "counts": {"registered": 2, "category": {"service%2Ebad_attitude": 2}}},
        {"mall_id": "sh-xujiahui", "counts": {"registered": 3, "category": {"service%2Ebad_attitude": 1}}},
        {"mall_id": "bj-chaoyang", "counts": {"registered": 4}},
    ]
    assert reports.summed(tallies) == [
        {"mall_id": "bj-chaoyang", "counts": {"registered": 4}},
        {"mall_id": "sh-xujiahui", "counts": {"registered": 5, "category": {"service%2Ebad_attitude": 3}}},
    ]


def test_a_reviews_decisions_become_open_actions_with_owner_and_due_date():
    """R7.13, seed 000: 每半年召開一次方案評估會議，邀請各部門負責人參與 — each decision is an open
    improvement action linked to the review, with ids that follow from it."""
    data = ReviewIn().load(
        {
            "mall_id": "sh-xujiahui",
            "period": "2026-H2",
            "held_on": "2027-01-08",
            "attendees": ["E3011", "E3091"],
            "decisions": [
                {"decision": "生鲜区增加冷链温度巡检", "owner_id": "E3091", "due_date": "2027-02-28"},
                {"decision": "客服热线高峰期增配一名专员", "owner_id": "E3011", "due_date": "2027-03-31"},
            ],
            "by": "E3901",
        }
    )
    review, found = reviews.record(data, "SHXJH", NOW)
    assert review["_id"] == "SHXJH-REV-2026-H2"
    assert [(a["_id"], a["status"], a["owner_id"], a["due_date"], a["review_id"]) for a in found] == [
        ("SHXJH-IA-2026-H2-01", "open", "E3091", "2027-02-28", "SHXJH-REV-2026-H2"),
        ("SHXJH-IA-2026-H2-02", "open", "E3011", "2027-03-31", "SHXJH-REV-2026-H2"),
    ]
    assert [d["action_id"] for d in review["decisions"]] == ["SHXJH-IA-2026-H2-01", "SHXJH-IA-2026-H2-02"]
    assert reviews.unknown_staff(data, {"E3011", "E3091"}) == {}
    assert reviews.unknown_staff(data, {"E3091"}) == {
        "attendees": ["Not staff of sh-xujiahui: E3011."],
        "decisions.1.owner_id": ["Not staff of sh-xujiahui: E3011."],
    }


def test_a_review_names_a_half_year():
    """R7.13, seed 000: 每半年召開一次方案評估會議 — a quarter or a month is refused by field."""
    errors = ReviewIn().validate(
        {"mall_id": "sh-xujiahui", "period": "2026-Q4", "held_on": "2027-01-08", "attendees": [], "decisions": []}
    )
    assert set(errors) >= {"period", "attendees", "decisions", "by"}
