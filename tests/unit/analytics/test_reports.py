"""R5.1, R5.2, R5.4, R5.5: the read model and the running tallies behind the monthly and
quarterly reports, on fixed data with expectations worked out by hand; the same tallies
whatever order the events come in; a corrected category moves its counts; the period
is the mall's local month; the CSV, the spreadsheet and the page say it in the reader's words."""

import codecs
import csv
import html
import io
import random
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from analytics import export, html_report, reports
from analytics.wording import Words
from mallcare_common.labels import load_labels_file
from mallcare_common.malls import load_registry_file
from tests.e2e.conftest import code_words_in
from tests.helpers import ROOT
from mallcare_common.contracts import EVENT_TYPES, build_event, read_event

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
H = timedelta(hours=1)


def event(name, number, payload, at, mall="sh-xujiahui"):
    """The envelope as it travels (the integration test publishes these too)."""
    return build_event(EVENT_TYPES[name], mall_id=mall, complaint_no=number, occurred_at=at, payload=payload)


def registered(number, at, area="fresh produce", merchant="T-17", mall="sh-xujiahui"):
    return event(
        "complaint_registered",
        number,
        {
            "channel": "desk",
            "received_at": at.isoformat(),
            "ack_due_at": (at + H).isoformat(),
            "customer": {"ref": "c1", "contact_masked": "138****5678"},
            "location": {"area": area, "merchant_id": merchant},
            "staff_involved": [],
            "description": "mouldy",
            "demands": {"fact": "x", "expectation": "y"},
            "policy_version": "v",
        },
        at,
        mall,
    )


def triaged(
    number,
    at,
    category,
    risk="low",
    department="merchant_relations",
    owner="E3501",
    kind="complaint_triaged",
    mall="sh-xujiahui",
    **extra,
):
    payload = {
        "category": category,
        "category_source": "keywords",
        "risk_level": risk,
        "risk_reasons": [],
        "urgency": "routine",
        "department": department,
        "review_meeting": False,
        "departments_involved": [],
        "owner_id": owner,
        "first_response_due_at": (at + 48 * H).isoformat(),
        "resolution_due_at": (at + 168 * H).isoformat(),
        "policy_version": "v",
        **extra,
    }
    if kind == "complaint_triaged":
        payload.update(received_at=at.isoformat(), channel="desk", merchant_id=None)
    return event(kind, number, payload, at, mall)


def resolved(number, at, round_=1, mall="sh-xujiahui"):
    return event(
        "case_resolved",
        number,
        {
            "spot": False,
            "decision": "upheld",
            "remedy_types": ["refund"],
            "total_fen": 100,
            "round": round_,
            "category": None,
            "risk_level": "low",
            "department": "d",
            "owner_id": None,
            "channel": "desk",
            "by": "E1",
        },
        at,
        mall,
    )


def answer(number, at, satisfied, reasons=(), mall="sh-xujiahui"):
    payload = {"revisit_id": f"{number}-R1", "score": 5 if satisfied else 2, "by": "E1"}
    if not satisfied:
        payload["reasons"] = list(reasons)
    return event("customer_satisfied" if satisfied else "customer_dissatisfied", number, payload, at, mall)


def escalated(number, at, to_role, mall="sh-xujiahui"):
    return event(
        "case_escalated",
        number,
        {
            "reason": "manual",
            "from_role": "handler",
            "to_role": to_role,
            "to_staff_id": None,
            "re_review_due_at": None,
            "by": "E1",
        },
        at,
        mall,
    )


def closed(number, at, reason="supervisor closed it", by="E3011", mall="sh-xujiahui"):
    return event("case_closed", number, {"reason": reason, "by": by}, at, mall)


def reopened(number, at, round_=2, by="feedback", mall="sh-xujiahui"):
    return event(
        "case_reopened",
        number,
        {"reason": "dissatisfied", "round": round_, "resolution_due_at": (at + 48 * H).isoformat(), "by": by},
        at,
        mall,
    )


def acknowledged(number, at, due, mall="sh-xujiahui"):
    return event(
        "complaint_acknowledged",
        number,
        {
            "acknowledged_at": at.isoformat(),
            "acknowledged_by": "D3001",
            "method": "in_person",
            "ack_due_at": due.isoformat(),
            "within_deadline": at <= due,
        },
        at,
        mall,
    )


def clock(number, name, owner, department=None, mall="sh-xujiahui"):
    return {
        "_id": f"{number}|{name}|1",
        "clock": name,
        "mall_id": mall,
        "complaint_no": number,
        "owner": owner,
        "department": department,
    }


class Model:
    """The read model and the tallies in memory, moved exactly as storage.py moves them."""

    def __init__(self):
        self.docs, self.tallies = {}, {}

    def _change(self, number, change):
        before = self.docs.get(number)
        after = change(before or {"_id": number})
        self.docs[number] = after
        for tally, moves in reports.delta(before, after).items():
            self.tallies.setdefault(tally, Counter()).update(moves)

    def take(self, envelope):
        e = read_event(envelope, EVENT_TYPES[envelope["event_type"]])
        self._change(e["complaint_no"], lambda d: reports.apply(d, e, SHANGHAI))

    def outcome(self, c, result):
        self._change(c["complaint_no"], lambda d: reports.apply_clock(d, c, result))

    def tally_docs(self, period):
        docs = []
        for tally, counts in sorted(self.tallies.items()):
            p, mall = tally.split("|")
            if p == period:
                nested = {}
                for path, n in counts.items():
                    *parents, leaf = path.split(".")
                    node = nested
                    for part in parents:
                        node = node.setdefault(part, {})
                    node[leaf] = n
                docs.append({"mall_id": mall, "counts": nested})
        return docs

    def report(self, period, mall_id=None, actions=()):
        docs = [d for d in self.tally_docs(period) if mall_id in (None, d["mall_id"])]
        return reports.build_report(reports.kind_of(period), period, mall_id, docs, list(actions))


def november():
    """Seven complaints at Xujiahui and one at Chaoyang (all November), one rejected."""
    B = "bj-chaoyang"
    evs = []
    # 1: quality defect at T-17, resolved in 2 h, satisfied; first response met
    evs += [
        registered("C1", T0),
        triaged("C1", T0, "product.quality_defect"),
        resolved("C1", T0 + 2 * H),
        answer("C1", T0 + 30 * H, True),
    ]
    # 2: same problem, resolved in 30 h, first dissatisfied (slow), then satisfied: both answers count
    evs += [
        registered("C2", T0 + H),
        triaged("C2", T0 + H, "product.quality_defect"),
        resolved("C2", T0 + 31 * H),
        answer("C2", T0 + 40 * H, False, ["slow"]),
        event(
            "case_reopened",
            "C2",
            {"reason": "r", "round": 2, "resolution_due_at": (T0 + 99 * H).isoformat(), "by": "E1"},
            T0 + 41 * H,
        ),
        resolved("C2", T0 + 50 * H, round_=2),
        answer("C2", T0 + 60 * H, True),
    ]
    # 3: service attitude at another merchant, high risk, escalated to the director, resolved in 100 h, dissatisfied
    evs += [
        registered("C3", T0 + 2 * H, area="level 3", merchant="T-40"),
        triaged("C3", T0 + 2 * H, "service.bad_attitude", risk="high", department="customer_service", owner="E3002"),
        escalated("C3", T0 + 3 * H, "supervisor"),
        escalated("C3", T0 + 4 * H, "operations_director"),
        resolved("C3", T0 + 102 * H),
        answer("C3", T0 + 110 * H, False, ["attitude", "slow"]),
    ]
    # 4: first graded as service.bad_attitude, corrected to environment.facility_failure (counts move);
    # still open, high risk
    evs += [
        registered("C4", T0 + 3 * H, area="parking", merchant=None),
        triaged("C4", T0 + 3 * H, "service.bad_attitude", risk="high", department="customer_service", owner="E3002"),
        triaged(
            "C4",
            T0 + 5 * H,
            "environment.facility_failure",
            risk="high",
            department="property",
            owner="E3101",
            kind="complaint_corrected",
            field="category",
            old="service.bad_attitude",
            new="environment.facility_failure",
            by="E3011",
            reason="a broken lift",
        ),
    ]
    # 5: quality defect at T-17, resolved in 10 h, dissatisfied (compensation)
    evs += [
        registered("C5", T0 + 4 * H),
        triaged("C5", T0 + 4 * H, "product.quality_defect"),
        resolved("C5", T0 + 14 * H),
        answer("C5", T0 + 20 * H, False, ["compensation_unclear"]),
    ]
    # 6: registered, never triaged (unclassified), open
    evs += [registered("C6", T0 + 5 * H, merchant="T-17")]
    # 7: rejected
    evs += [
        event(
            "complaint_rejected",
            "C7",
            {
                "channel": "web",
                "received_at": (T0 + 6 * H).isoformat(),
                "reason": "duplicate",
                "detail": "d",
                "duplicate_of": "C1",
                "policy_version": "v",
            },
            T0 + 6 * H,
        )
    ]
    # 8: Chaoyang, quality defect at B-01, resolved in 1 h, satisfied
    evs += [
        registered("B1", T0, area="food court", merchant="B-01", mall=B),
        triaged("B1", T0, "product.quality_defect", department="merchant_relations", owner="E4001", mall=B),
        resolved("B1", T0 + H, mall=B),
        answer("B1", T0 + 5 * H, True, mall=B),
    ]
    outcomes = [
        (clock("C1", "first_response", "E3501", "merchant_relations"), "met"),
        (clock("C2", "first_response", "E3501", "merchant_relations"), "met"),
        (clock("C3", "first_response", "E3002", "customer_service"), "breached"),
        (clock("C3", "acknowledgement", "desk"), "met"),
        (clock("C4", "first_response", "E3002", "customer_service"), "breached"),
        (clock("C5", "revisit", "feedback"), "breached"),  # counts in SLA, not as overdue
        (clock("B1", "first_response", "E4001", "merchant_relations", mall=B), "met"),
    ]
    return evs, outcomes


def fed(evs, outcomes):
    model = Model()
    for e in evs:
        model.take(e)
    for c, result in outcomes:
        model.outcome(c, result)
    return model


def test_the_monthly_report_of_a_mall_matches_the_hand_computed_figures():
    report = fed(*november()).report("2026-11", "sh-xujiahui")
    assert report["counts"] == {"received": 7, "rejected": 1, "registered": 6, "resolved": 4, "open": 2, "reopened": 1}
    assert report["categories"] == [
        {"category": "product.quality_defect", "count": 3, "share": 0.5},
        {"category": "environment.facility_failure", "count": 1, "share": 0.1667},
        {"category": "service.bad_attitude", "count": 1, "share": 0.1667},
        {"category": "unclassified", "count": 1, "share": 0.1667},
    ]
    # 2 h, 30 h (first resolution), 100 h, 10 h: average 35.5 h; the 4th of 4 (ceil 3.6) is in <= 168 h
    h = report["handling_time"]
    assert (h["resolved"], h["average_hours"], h["p90_hours"]) == (4, 35.5, 168)
    assert {b["le_hours"]: b["count"] for b in h["buckets"] if b["count"]} == {4: 1, 24: 1, 48: 1, 168: 1}
    # C3 and C4 breached their first response; C5's revisit breach is not the handling's
    assert report["overdue"] == {"count": 2, "share": 0.3333}
    s = report["satisfaction"]
    # every answer: C2's dissatisfied answer (slow) stays after its later satisfied one
    assert (s["answered"], s["satisfied"], s["dissatisfied"], s["share"], s["meets_target"]) == (5, 2, 3, 0.4, False)
    assert s["reasons"] == [
        {"reason": "slow", "count": 2},
        {"reason": "attitude", "count": 1},
        {"reason": "compensation_unclear", "count": 1},
    ]
    assert s["closed_without_answer"] == 0
    assert report["top_problems"][0] == {
        "category": "product.quality_defect",
        "mall_id": "sh-xujiahui",
        "area": "fresh produce",
        "merchant_id": "T-17",
        "count": 3,
    }
    assert len(report["top_problems"]) == 4
    assert report["merchants"] == [
        {"mall_id": "sh-xujiahui", "merchant_id": "T-17", "complaints": 4, "mall_complaints": 6, "rate": 0.6667},
        {"mall_id": "sh-xujiahui", "merchant_id": "T-40", "complaints": 1, "mall_complaints": 6, "rate": 0.1667},
    ]
    assert report["sla"]["departments"] == [
        {"department": "property", "met": 0, "breached": 1, "cancelled": 0, "compliance": 0.0},
        {"department": "customer_service", "met": 1, "breached": 1, "cancelled": 0, "compliance": 0.5},
        {"department": "merchant_relations", "met": 2, "breached": 1, "cancelled": 0, "compliance": 0.6667},
    ]
    # people only; the desk's acknowledgement and feedback's revisit have their own table
    assert report["sla"]["handlers"] == [
        {"handler": "E3002", "met": 0, "breached": 2, "cancelled": 0, "compliance": 0.0},
        {"handler": "E3501", "met": 2, "breached": 0, "cancelled": 0, "compliance": 1.0},
    ]
    assert report["sla"]["services"] == [
        {"clock": "revisit", "owner": "feedback", "met": 0, "breached": 1, "cancelled": 0, "compliance": 0.0},
        {"clock": "acknowledgement", "owner": "desk", "met": 1, "breached": 0, "cancelled": 0, "compliance": 1.0},
    ]
    assert report["management"] == {
        "high_risk": 2,
        "high_risk_reached_directors": 1,
        "high_risk_share_reached_directors": 0.5,
        "reached_directors": 1,
        "directors": ["operations_director", "legal"],
    }


def test_a_cancelled_clock_counts_neither_as_met_nor_as_breached():
    """R5.5: a clock whose obligation lapsed (a revisit of a reopened case) is shown as
    cancelled and leaves compliance and the overdue count alone."""
    model = Model()
    model.take(registered("X", T0))
    model.take(triaged("X", T0, "product.quality_defect"))
    model.outcome(clock("X", "resolution", "E3501", "merchant_relations"), "met")
    model.outcome({**clock("X", "execution", "E3501", "merchant_relations"), "owner_kind": "person"}, "cancelled")
    model.outcome(clock("X", "revisit", "feedback"), "cancelled")
    report = model.report("2026-11", "sh-xujiahui")
    assert report["overdue"]["count"] == 0
    assert report["sla"]["handlers"] == [
        {"handler": "E3501", "met": 1, "breached": 0, "cancelled": 1, "compliance": 1.0}
    ]
    assert report["sla"]["services"] == [
        {"clock": "revisit", "owner": "feedback", "met": 0, "breached": 0, "cancelled": 1, "compliance": None}
    ]


def test_a_case_closed_without_an_answer_is_counted_apart():
    """R4.2, R5.1: the customer could not be reached; neither satisfied nor dissatisfied."""
    model = Model()
    model.take(registered("X", T0))
    model.take(triaged("X", T0, "product.quality_defect"))
    model.take(resolved("X", T0 + 2 * H))
    model.take(
        event("case_closed", "X", {"reason": "unreachable", "by": "resolution", "without_answer": True}, T0 + 80 * H)
    )
    model.take(registered("Y", T0))
    model.take(event("case_closed", "Y", {"reason": "satisfied", "by": "feedback"}, T0 + 80 * H))  # older event
    s = model.report("2026-11", "sh-xujiahui")["satisfaction"]
    assert (s["answered"], s["satisfied"], s["dissatisfied"], s["closed_without_answer"]) == (0, 0, 0, 1)


def test_a_case_reopened_after_closing_without_an_answer_and_then_answered_counts_once_as_answered():
    """R4.2, R5.1: a supervisor reopens a case closed without an answer; the customer is then
    reached and satisfied: an answer, no longer a closure without one (whatever the order)."""
    evs = [
        registered("X", T0),
        triaged("X", T0, "product.quality_defect"),
        resolved("X", T0 + 2 * H),
        event("case_closed", "X", {"reason": "unreachable", "by": "resolution", "without_answer": True}, T0 + 80 * H),
        event(
            "case_reopened",
            "X",
            {"reason": "customer called", "round": 2, "resolution_due_at": (T0 + 130 * H).isoformat(), "by": "E3011"},
            T0 + 82 * H,
        ),
        resolved("X", T0 + 90 * H, round_=2),
        answer("X", T0 + 95 * H, True),
        event("case_closed", "X", {"reason": "satisfied", "by": "resolution", "without_answer": False}, T0 + 95 * H),
    ]
    for order in (evs, evs[::-1]):
        s = fed(order, []).report("2026-11", "sh-xujiahui")["satisfaction"]
        assert (s["answered"], s["satisfied"], s["closed_without_answer"]) == (1, 1, 0)
    for order in (evs[:5], evs[4::-1]):  # closed without an answer, then reopened: open again
        reopened = fed(order, []).report("2026-11", "sh-xujiahui")
        assert reopened["satisfaction"]["closed_without_answer"] == 0 and reopened["counts"]["open"] == 1


def test_the_chain_is_the_sum_of_its_malls_and_the_quarter_holds_the_month():
    model = fed(*november())
    chain = model.report("2026-11")
    assert chain["malls"] == ["bj-chaoyang", "sh-xujiahui"]
    assert chain["counts"]["received"] == 8 and chain["counts"]["resolved"] == 5
    assert chain["satisfaction"]["share"] == 0.5  # 3 of 6 answers
    assert chain["handling_time"]["average_hours"] == round((2 + 30 + 100 + 10 + 1) / 5, 2)
    # each merchant's rate is of its own mall's complaints
    assert chain["merchants"][0] == {
        "mall_id": "bj-chaoyang",
        "merchant_id": "B-01",
        "complaints": 1,
        "mall_complaints": 1,
        "rate": 1.0,
    }
    quarter = model.report("2026-Q4")
    assert {k: v for k, v in quarter.items() if k not in ("kind", "period")} == {
        k: v for k, v in chain.items() if k not in ("kind", "period")
    }


def test_the_tallies_do_not_depend_on_the_order_the_events_arrive_in():
    evs, outcomes = november()
    expected = fed(evs, outcomes).tallies
    for seed in range(5):
        shuffled = evs[:]
        random.Random(seed).shuffle(shuffled)
        model = Model()
        for c, result in outcomes[:3]:  # some outcomes before the complaint is seen
            model.outcome(c, result)
        for e in shuffled:
            model.take(e)
        for c, result in outcomes[3:]:
            model.outcome(c, result)
        assert {k: +v for k, v in model.tallies.items()} == {k: +v for k, v in expected.items()}


def test_a_correction_after_counting_moves_the_category_and_department_tallies():
    model = Model()
    model.take(registered("X", T0))
    model.take(triaged("X", T0, "service.bad_attitude", department="customer_service"))
    model.outcome(clock("X", "first_response", "E3002"), "breached")
    counts = model.tallies["2026-11|sh-xujiahui"]
    assert counts["category.service%2Ebad_attitude"] == 1 and counts["sla_department.customer_service.breached"] == 1
    model.take(
        triaged(
            "X",
            T0 + H,
            "environment.facility_failure",
            department="property",
            kind="complaint_corrected",
            field="category",
            old="service.bad_attitude",
            new="environment.facility_failure",
            by="E1",
            reason="r",
        )
    )
    counts = model.tallies["2026-11|sh-xujiahui"]
    assert counts["category.service%2Ebad_attitude"] == 0 and counts["category.environment%2Efacility_failure"] == 1
    assert counts["sla_department.customer_service.breached"] == 0
    assert counts["sla_department.property.breached"] == 1
    # an older grading that arrives late does not undo the correction
    model.take(triaged("X", T0 - H, "product.expired"))
    assert model.docs["X"]["category"] == "environment.facility_failure"


def test_nothing_is_counted_until_the_complaint_and_its_period_are_known():
    model = Model()
    model.take(resolved("Y", T0 + 5 * H))
    model.take(answer("Y", T0 + 6 * H, True))
    assert not any(+c for c in model.tallies.values())
    model.take(registered("Y", T0))
    counts = model.tallies["2026-11|sh-xujiahui"]
    assert counts["received"] == 1 and counts["answers.satisfied"] == 1 and counts["handling.le_8h"] == 1


def test_the_period_is_the_month_and_quarter_in_the_malls_time_zone():
    late = datetime(2026, 12, 31, 17, 30, tzinfo=timezone.utc)  # 01:30 on 1 January in Shanghai
    assert reports.periods_of(late, SHANGHAI) == ("2027-01", "2027-Q1", "2027-01-01")
    assert reports.periods_of(late, timezone.utc) == ("2026-12", "2026-Q4", "2026-12-31")


@pytest.mark.parametrize(
    "counts,bound",
    [
        ([0, 0, 0, 9, 1, 0, 0, 0, 0, 0], 24),  # the 9th of 10 is in <= 24 h
        ([0, 0, 0, 8, 2, 0, 0, 0, 0, 0], 48),
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 3], None),
    ],
)  # beyond 30 days: no bound
def test_p90_is_the_bound_of_the_bucket_holding_the_90th_percentile(counts, bound):
    assert reports.p90_bound(counts) == bound


def test_periods_are_months_or_quarters():
    assert reports.kind_of("2026-11") == "monthly" and reports.kind_of("2026-Q4") == "quarterly"
    for bad in ("2026-13", "2026-Q5", "26-11", "2026/11", "2026-1"):
        with pytest.raises(ValueError):
            reports.kind_of(bad)


def test_no_customer_data_is_kept_with_the_events():
    kept = reports.kept_payload(registered("Z", T0)["payload"])
    assert not {"customer", "description", "demands", "staff_involved"} & set(kept)
    assert kept["location"]["merchant_id"] == "T-17"


WORDS = load_labels_file(ROOT / "deploy" / "policy" / "labels.yml")
MALLS = load_registry_file(ROOT / "deploy" / "policy" / "malls.yml")


def a_report_with_an_action():
    action = {
        "action_id": "SHXJH-IA-0001",
        "mall_id": "sh-xujiahui",
        "problem": {"summary": "mouldy <fruit>"},
        "root_cause": "cold chain",
        "action": "audit",
        "owner_id": "E3091",
        "due_date": "2026-12-01",
        "overdue": True,
    }
    return fed(*november()).report("2026-11", "sh-xujiahui", [action])


def test_the_csv_opens_in_excel_with_words_in_the_readers_language():
    report = a_report_with_an_action()
    data = export.to_csv(report, Words(WORDS, MALLS, "zh"))
    assert data.startswith(codecs.BOM_UTF8)  # Excel reads it as UTF-8 only so
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["期间", "范围", "部分", "项目", "指标", "数值"]
    assert ["2026-11", "上海徐家汇店", "概况", "", "受理", "7"] in rows
    assert ["2026-11", "上海徐家汇店", "投诉类型占比", "商品质量问题", "占比", "50.0%"] in rows
    assert ["2026-11", "上海徐家汇店", "概况", "", "P90（小时，所在区间上限）", "168"] in rows
    assert ["2026-11", "上海徐家汇店", "未完成改进措施", "SHXJH-IA-0001", "截止", "2026-12-01"] in rows
    assert ["2026-11", "上海徐家汇店", "SLA 达标率：渠道与服务", "告知顾客 / 服务台", "达标", "1"] in rows
    assert not [r for r in rows if r[2] == "SLA 达标率：处理人" and r[3] in ("desk", "服务台")]
    problems = [r for r in rows if r[2] == "高频问题 Top 10"]
    assert problems and all("佳农水果" in r[3] or "-" in r[3] for r in problems)
    english = list(csv.reader(io.StringIO(export.to_csv(report, Words(WORDS, MALLS, "en")).decode("utf-8-sig"))))
    assert english[0] == ["Period", "Scope", "Section", "Item", "Measure", "Value"]
    assert ["2026-11", "Shanghai Xujiahui", "Share by category", "Quality defect", "Share", "50.0%"] in english
    assert not code_words_in(" ".join(" ".join(r) for r in rows[1:]), "zh")


def test_text_that_starts_like_a_formula_stays_text_in_the_csv_and_the_spreadsheet():
    """A root cause or an area someone typed as =HYPERLINK(...) must not run in Excel."""
    report = a_report_with_an_action()
    report["actions"]["items"][0]["root_cause"] = '=HYPERLINK("http://x.example","点我")'
    report["actions"]["items"][0]["action"] = "-2+3"
    rows = list(csv.reader(io.StringIO(export.to_csv(report, Words(WORDS, MALLS, "zh")).decode("utf-8-sig"))))
    assert [
        "2026-11",
        "上海徐家汇店",
        "未完成改进措施",
        "SHXJH-IA-0001",
        "根因",
        '\'=HYPERLINK("http://x.example","点我")',
    ] in rows
    assert ["2026-11", "上海徐家汇店", "未完成改进措施", "SHXJH-IA-0001", "措施", "'-2+3"] in rows
    book = openpyxl.load_workbook(io.BytesIO(export.to_xlsx(report, Words(WORDS, MALLS, "zh"))))
    cells = [cell for row in book["未完成改进措施"].iter_rows(min_row=2) for cell in row]
    typed = {cell.value: cell.data_type for cell in cells if isinstance(cell.value, str)}
    assert typed['=HYPERLINK("http://x.example","点我")'] == "s" and typed["-2+3"] == "s"
    assert "f" not in {cell.data_type for cell in cells}


def test_the_spreadsheet_has_a_sheet_per_section_with_words_numbers_and_percentages():
    report = a_report_with_an_action()
    book = openpyxl.load_workbook(io.BytesIO(export.to_xlsx(report, Words(WORDS, MALLS, "zh"))))
    assert book.sheetnames[:3] == ["概况", "投诉类型占比", "处理时长"]
    assert "SLA 达标率：部门" in book.sheetnames and "未完成改进措施" in book.sheetnames
    summary = {row[0]: row[1] for row in book["概况"].iter_rows(values_only=True)}
    assert summary["期间"] == "2026-11" and summary["范围"] == "上海徐家汇店"
    assert summary["受理"] == 7 and isinstance(summary["受理"], int)  # numbers a user can add up
    categories = book["投诉类型占比"]
    assert [c.value for c in categories[1]] == ["类型", "次数", "占比"] and categories["A1"].font.bold
    first = [c for c in categories[2]]
    assert first[0].value == "商品质量问题" and first[1].value == 3
    assert first[2].value == 0.5 and first[2].number_format == "0.0%"  # shown as 50.0%
    actions = list(book["未完成改进措施"].iter_rows(values_only=True))
    assert actions[1][:3] == ("SHXJH-IA-0001", "上海徐家汇店", "mouldy <fruit>") and actions[1][-1] == "超时"
    services = list(book["SLA 达标率：渠道与服务"].iter_rows(values_only=True))
    assert ("告知顾客", "服务台") in [r[:2] for r in services]
    text = " ".join(str(v) for sheet in book for row in sheet.iter_rows(values_only=True) for v in row if v)
    assert not code_words_in(text.replace("mouldy <fruit>", "").replace("cold chain", ""), "zh")
    english = openpyxl.load_workbook(io.BytesIO(export.to_xlsx(report, Words(WORDS, MALLS, "en"))))
    assert english.sheetnames[:3] == ["Summary", "Share by category", "Handling time"]
    assert all(len(name) <= 31 for name in english.sheetnames)
    assert english["Share by category"]["A2"].value == "Quality defect"
    assert export.file_name(report, "xlsx") == "mallcare-sh-xujiahui-2026-11.xlsx"


def test_the_page_speaks_the_readers_language_with_charts_and_no_code_word():
    report = a_report_with_an_action()
    page = html_report.render(report, Words(WORDS, MALLS, "zh"))
    assert page.startswith("<!DOCTYPE html><html lang=zh-CN>") and "<svg" in page and "<script" not in page
    assert "满意度（目标 85%）" in page and "mouldy &lt;fruit&gt;" in page
    assert "SLA 达标率：渠道、服务与角色" in page and "告知顾客 / 服务台" in page and "商品质量问题" in page
    assert "aria-label='图表: 投诉类型占比'" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    shown = re.sub(r"<[^>]+>", " ", page.split("</style>")[1])
    assert not code_words_in(html.unescape(shown).replace("mouldy <fruit>", "").replace("cold chain", ""), "zh")
    english = html_report.render(report, Words(WORDS, MALLS, "en"))
    assert "<html lang=en>" in english and "Satisfaction (target 85%)" in english
    assert "Acknowledgement / Service desk" in english and "Shanghai Xujiahui" in english
    assert not code_words_in(html.unescape(re.sub(r"<[^>]+>", " ", english.split("</style>")[1])), "en")
