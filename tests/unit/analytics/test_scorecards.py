"""R7.11: accountability and the cost of complaints, in the monthly report (seed 001:
建立奖励和/或惩罚体系; 顾客投诉得不到及时圆满解决的责任; 问题没有解决所带来的开销可以量化; seed 004:
将服务质量与绩效挂钩). A scorecard per handler, department and mall: complaints, resolved,
resolved at first contact (on the spot, never reopened), reopen and escalation rates,
overdue, satisfaction of the answers and SLA compliance; the compensation paid by mall,
category and merchant, the remedies by type, and what the reopened cases cost. Folded
by the same Model as the other report tests, and in the CSV HR opens."""

import csv
import io
from datetime import datetime, timedelta, timezone

from analytics import export, html_report
from analytics.wording import Words
from tests.unit.analytics.test_reports import (
    Model,
    answer,
    escalated,
    event,
    registered,
    reopened,
    triaged,
)

T0 = datetime(2026, 11, 9, 2, 0, tzinfo=timezone.utc)  # a Monday morning in Shanghai
H = timedelta(hours=1)
QUICK, TWICE, ESCALATED, WAITING = (f"SHXJH-20261109-{n:04d}" for n in range(1, 5))


def resolution(number, at, round_, spot, fen, remedies, owner, department):
    return event(
        "case_resolved",
        number,
        {
            "spot": spot,
            "decision": "upheld",
            "remedy_types": remedies,
            "total_fen": fen,
            "round": round_,
            "category": "product.quality",
            "risk_level": "low",
            "department": department,
            "owner_id": owner,
            "channel": "desk",
            "by": owner,
        },
        at,
    )


def a_month():
    model = Model()
    events = [
        # 草莓烂了, settled at the desk: 50 yuan back, satisfied
        registered(QUICK, T0, merchant="T-17"),
        triaged(QUICK, T0, "product.quality", department="merchant_relations", owner="E3501"),
        resolution(QUICK, T0 + H, 1, True, 5000, ["refund"], "E3501", "merchant_relations"),
        answer(QUICK, T0 + 5 * H, satisfied=True),
        # 退款太慢: refunded, dissatisfied, reopened, then exchanged with a voucher, satisfied
        registered(TWICE, T0, merchant="T-17"),
        triaged(TWICE, T0, "product.quality", department="merchant_relations", owner="E3501"),
        resolution(TWICE, T0 + 2 * H, 1, False, 10000, ["refund"], "E3501", "merchant_relations"),
        answer(TWICE, T0 + 6 * H, satisfied=False, reasons=["slow"]),
        reopened(TWICE, T0 + 7 * H),
        resolution(TWICE, T0 + 30 * H, 2, False, 2000, ["exchange", "voucher"], "E3501", "merchant_relations"),
        answer(TWICE, T0 + 40 * H, satisfied=True),
        # 食品变质 at the supermarket, escalated to the director, nothing paid
        registered(ESCALATED, T0, merchant=None),
        triaged(ESCALATED, T0, "product.expired", department="procurement_qc", owner="E3101"),
        escalated(ESCALATED, T0 + 3 * H, "operations_director"),
        resolution(ESCALATED, T0 + 20 * H, 1, False, 0, ["apology_letter"], "E3101", "procurement_qc"),
        # still waiting
        registered(WAITING, T0, merchant=None),
        triaged(WAITING, T0, "product.expired", department="procurement_qc", owner="E3101"),
    ]
    for e in events:
        model.take(e)
    return model.report("2026-11")


def test_each_handler_department_and_mall_has_its_scorecard():
    cards = a_month()["scorecards"]
    by_handler = {c["handler"]: c for c in cards["handlers"]}
    e3501, e3101 = by_handler["E3501"], by_handler["E3101"]
    assert (e3501["complaints"], e3501["resolved"], e3501["first_contact"], e3501["reopened"]) == (2, 2, 1, 1)
    assert (e3501["first_contact_rate"], e3501["reopen_rate"], e3501["escalation_rate"]) == (0.5, 0.5, 0.0)
    assert (e3501["satisfied"], e3501["dissatisfied"], e3501["satisfaction"]) == (2, 1, 0.6667)
    assert (e3101["complaints"], e3101["resolved"], e3101["escalated"], e3101["escalation_rate"]) == (2, 1, 1, 0.5)
    assert e3101["satisfaction"] is None  # nobody answered: no rate, not zero
    departments = {c["department"]: c["complaints"] for c in cards["departments"]}
    assert departments == {"merchant_relations": 2, "procurement_qc": 2}
    [mall] = cards["malls"]
    assert (mall["mall_id"], mall["complaints"], mall["resolved"], mall["first_contact"]) == ("sh-xujiahui", 4, 3, 1)


def test_the_cost_of_complaints_is_counted_by_category_merchant_remedy_and_reopening():
    cost = a_month()["cost"]
    assert cost["total_fen"] == 5000 + 10000 + 2000
    assert cost["reopened_fen"] == 12000  # both rounds of the case that had to be reopened
    assert cost["categories"] == [{"category": "product.quality", "fen": 17000}]
    assert cost["merchants"] == [{"mall_id": "sh-xujiahui", "merchant_id": "T-17", "fen": 17000}]
    assert {r["remedy"]: r["count"] for r in cost["remedies"]} == {
        "refund": 2,
        "exchange": 1,
        "voucher": 1,
        "apology_letter": 1,
    }


def test_hr_opens_the_scorecards_and_the_cost_in_the_csv_in_words():
    from tests.unit.analytics.test_reports import MALLS, WORDS  # the report tests' words and malls

    text = export.to_csv(a_month(), Words(WORDS, MALLS, "zh")).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cells = {(r[2], r[3], r[4]): r[5] for r in rows[1:]}
    assert cells[("处理人绩效", "E3501", "首次接触解决率")] == "50.0%"
    assert cells[("部门绩效", "招商商户管理部", "投诉量")] == "2"
    assert cells[("补偿金额（按商户）", "上海徐家汇店 / 佳农水果", "金额（元）")] == "170.0"
    assert cells[("概况", "", "补偿总额（元）")] == "170.0"


def test_the_report_page_shows_the_scorecards_and_the_cost_in_words():
    from tests.unit.analytics.test_reports import MALLS, WORDS

    page = html_report.render(a_month(), Words(WORDS, MALLS, "en"))
    for words in ("Scorecard: handlers", "First-contact resolution", "Merchant relations", "The cost of complaints"):
        assert words in page, words
    assert "<td class=n>170.00</td>" not in page and "170.00" in page  # yuan, as text
    assert "<td>None</td>" not in page and "merchant_relations" not in page  # no rate is "None"
