"""R7.5 the merchant scorecard: a merchant's reply to the tenant's case sent to it is an SLA
clock like ours (met, breached, or cancelled when merchant relations takes the case back),
and so is the rectification given to it; the monthly report ranks the merchants by their
complaints, their compliance and their customers' satisfaction, in JSON, the CSV and the page."""

import codecs
import csv
import io

from analytics import clocks, export, html_report
from analytics.wording import Words

from .test_reports import MALLS, T0, WORDS, H, Model, answer, event, registered, triaged

TEA, FRUIT = "T-233", "T-17"


def requested(number, at, request_id=1, merchant=TEA):
    payload = {"request_id": request_id, "merchant_id": merchant, "due_at": (at + 48 * H).isoformat(), "by": "E3501"}
    return event("merchant_reply_requested", number, payload, at)


def replied(number, at, request_id=1, merchant=TEA, due=None):
    payload = {
        "request_id": request_id,
        "merchant_id": merchant,
        "due_at": (due or at).isoformat(),
        "replied_at": at.isoformat(),
        "within_deadline": True,
        "evidence": 2,
        "by": "key:t233-sh",
    }
    return event("merchant_replied", number, payload, at)


def taken_back(number, at, awaiting=True):
    payload = {"request_id": 1, "merchant_id": TEA, "awaiting": awaiting, "reason": "逾期未答复", "by": "E3501"}
    return event("merchant_taken_back", number, payload, at)


def read(envelope):
    from mallcare_common.contracts import EVENT_TYPES, read_event

    return read_event(envelope, EVENT_TYPES[envelope["event_type"]])


def test_the_merchants_reply_is_a_clock_the_merchant_keeps_and_taking_the_case_back_cancels_it():
    """R7.5, seed 001: 把时间、质量标准运用到…其他企业或代理的答复上."""
    [start] = clocks.operations(read(requested("C1", T0)))
    assert (start.clock_id, start.clock) == ("C1|merchant_reply|1", "merchant_reply")
    assert (start.fields["owner"], start.fields["owner_kind"]) == (TEA, "merchant")
    assert start.fields["due_at"] == T0 + 48 * H
    [stop] = clocks.operations(read(replied("C1", T0 + 5 * H)))
    assert (stop.clock_id, stop.at, stop.cancelled) == ("C1|merchant_reply|1", T0 + 5 * H, False)
    [cancel] = clocks.operations(read(taken_back("C1", T0 + 50 * H)))
    assert (cancel.clock_id, cancel.cancelled) == ("C1|merchant_reply|1", True)
    assert clocks.operations(read(taken_back("C1", T0 + 50 * H, awaiting=False))) == []  # replied: met already
    rectification = event(
        "rectification_due",
        "C1",
        {
            "rectification_id": 1,
            "kind": "staff_training",
            "owner_id": None,
            "merchant_id": TEA,
            "due_at": T0.isoformat(),
        },
        T0,
    )
    [start] = clocks.operations(read(rectification))
    assert (start.clock, start.fields["owner"], start.fields["owner_kind"]) == ("rectification", TEA, "merchant")


def merchants_month():
    """Three complaints at the tea shop (two replies met, one breached; one customer satisfied,
    one not), one at the fruit shop (its reply met, satisfied), one at no tenant."""
    model = Model()
    for number, merchant, at in (("C1", TEA, T0), ("C2", TEA, T0 + H), ("C3", TEA, T0 + 2 * H), ("C4", FRUIT, T0)):
        model.take(registered(number, at, merchant=merchant))
        model.take(triaged(number, at, "service.bad_attitude"))
    model.take(registered("C5", T0, merchant=None))
    model.take(triaged("C5", T0, "environment.hygiene", department="facilities", owner="E3201"))
    for number, merchant, outcome in (
        ("C1", TEA, "met"),
        ("C2", TEA, "met"),
        ("C3", TEA, "breached"),
        ("C4", FRUIT, "met"),
    ):
        mine = {"_id": f"{number}|merchant_reply|1", "clock": "merchant_reply", "mall_id": "sh-xujiahui"}
        model.outcome({**mine, "complaint_no": number, "owner": merchant, "owner_kind": "merchant"}, outcome)
    model.take(answer("C1", T0 + 30 * H, True))
    model.take(answer("C2", T0 + 30 * H, False, ["attitude"]))
    model.take(answer("C4", T0 + 30 * H, True))
    return model.report("2026-11", "sh-xujiahui")


def test_the_monthly_report_ranks_the_merchants_by_complaints_compliance_and_satisfaction():
    """R7.5, seed 002: 谁管理、谁举证、谁整改 (the merchant answers for its record)."""
    report = merchants_month()
    assert report["merchant_scorecard"] == [
        {
            "rank": 1,
            "mall_id": "sh-xujiahui",
            "merchant_id": TEA,
            "complaints": 3,
            "rate": 0.6,
            "sla": {"met": 2, "breached": 1, "cancelled": 0, "compliance": 0.6667},
            "satisfaction": {"satisfied": 1, "dissatisfied": 1, "share": 0.5},
        },
        {
            "rank": 2,
            "mall_id": "sh-xujiahui",
            "merchant_id": FRUIT,
            "complaints": 1,
            "rate": 0.2,
            "sla": {"met": 1, "breached": 0, "cancelled": 0, "compliance": 1.0},
            "satisfaction": {"satisfied": 1, "dissatisfied": 0, "share": 1.0},
        },
    ]
    assert all(r["clock"] != "merchant_reply" for r in report["sla"]["services"])  # the merchant's, not a service's
    # nor merchant relations': the department's compliance is its own clocks' (none here)
    assert [r for r in report["sla"]["departments"] if r["department"] == "merchant_relations"] == []
    assert report["overdue"]["count"] == 0  # its late reply is on its scorecard, not our lateness


def test_the_csv_and_the_page_carry_the_scorecard_in_the_readers_words():
    """R7.5: the scorecard goes to the monthly meeting with the rest of the report."""
    report = merchants_month()
    words = Words(WORDS, MALLS, "zh")
    text = codecs.decode(export.to_csv(report, words), "utf-8-sig")
    rows = [r for r in csv.reader(io.StringIO(text)) if r[2] == "商户考核（投诉、时限、满意度）"]
    by_measure = {(r[3], r[4]): r[5] for r in rows}
    assert by_measure[("1 / 上海徐家汇店 / 一点点奶茶", "达标率")] == "66.7%"
    assert by_measure[("1 / 上海徐家汇店 / 一点点奶茶", "投诉")] == "3"
    assert by_measure[("2 / 上海徐家汇店 / 佳农水果", "满意率")] == "100.0%"
    page = html_report.render(report, words)
    assert "商户考核" in page and page.index("一点点奶茶") < page.index("佳农水果", page.index("商户考核"))
