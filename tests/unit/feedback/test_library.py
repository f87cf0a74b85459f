"""R4.4: high-risk and typical cases go into the case library as problem, handling
process and lessons learnt, for all staff to learn from - without personal data:
phone numbers, e-mail addresses, ID and member numbers are taken out of every text
(mallcare_common.personal.scrub, tested in tests/unit/common/test_personal.py),
the process keeps roles but not who acted. The library is searched by category,
mall, merchant, risk and a keyword."""

import json
import re
from datetime import datetime, timedelta

import pytest

from feedback import rules
from mallcare_common.contracts import feedback as events

from .conftest import UTC, assert_valid, complaint

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
PERSONAL = (
    "13812345678",
    "13912345678",
    "1381234",
    "5678",
    "021-6488",
    "zhang.san",
    "example.com",
    "31010119900101123X",
    "M00123",
)


# --- the library entry -----------------------------------------------------------------------------


def entry_(seq, at, by, role, action, state, **detail):
    return {"seq": seq, "at": at, "by": by, "role": role, "action": action, "state": state, "detail": detail}


@pytest.fixture
def case():
    """A high-risk case as resolution's get_case RPC returns it (CaseOut: times as ISO strings)."""
    timeline = [
        entry_(
            1,
            "2026-11-23T02:00:00+00:00",
            "triage",
            "service",
            "opened",
            "open",
            department="food_safety",
            owner_id="E3501",
            risk_level="high",
            resolution_due_at="2026-11-24T02:00:00+00:00",
            review_meeting=None,
        ),
        entry_(
            2,
            "2026-11-23T02:30:00+00:00",
            "E3501",
            "handler",
            "finding",
            "investigating",
            id=1,
            source="supplier_qc_report",
            summary="批次抽检不合格；顾客 138-1234-5678 提供了小票",
        ),
        entry_(
            3,
            "2026-11-23T02:40:00+00:00",
            "E3501",
            "handler",
            "note",
            "investigating",
            kind="customer_contact",
            text="顾客张三来电 13812345678",
        ),
        entry_(
            4,
            "2026-11-23T03:00:00+00:00",
            "E3901",
            "operations_director",
            "proposed",
            "proposed",
            proposal_no=1,
            decision="upheld",
            remedies=[{"type": "refund", "amount": "25.00"}, {"type": "cash_compensation", "amount": "1000.00"}],
            total="1025.00",
            warnings=[],
            approver_role="operations_director",
        ),
        entry_(
            5,
            "2026-11-23T03:05:00+00:00",
            "E3901",
            "operations_director",
            "answered",
            "proposed",
            proposal_no=1,
            oral=False,
            appeal_stated=False,
        ),
        entry_(
            6,
            "2026-11-23T03:20:00+00:00",
            "E3501",
            "handler",
            "escalated",
            "escalated",
            reason="manual",
            from_role="handler",
            to_role="supervisor",
            to_staff_id="E3011",
            re_review_due_at="2026-11-23T05:20:00+00:00",
        ),
        entry_(
            7,
            "2026-11-23T04:00:00+00:00",
            "E3501",
            "handler",
            "accepted",
            "accepted",
            proposal_no=1,
            tasks=[{"id": 1, "kind": "refund", "due_at": "2026-11-24T04:00:00+00:00"}],
        ),
        entry_(
            8,
            "2026-11-23T05:00:00+00:00",
            "E3501",
            "handler",
            "task_done",
            "executing",
            task_id=1,
            kind="refund",
            within_deadline=True,
            note="已转账至 zhang.san@example.com 的账户",
            signature_ref="RCPT-1",
        ),
        entry_(
            9,
            "2026-11-23T06:00:00+00:00",
            "E3501",
            "handler",
            "resolved",
            "resolved",
            summary="已按食品安全法赔付；会员 M00123 签收，联系 zhang.san@example.com",
            spot=False,
        ),
        entry_(
            10,
            "2026-11-23T06:01:00+00:00",
            "feedback",
            "service",
            "event_not_applied",
            "resolved",
            event_type="customer_satisfied",
            event_id="ab12",
            reason="a case that is resolved ...",
        ),
        entry_(
            11,
            "2026-11-24T02:00:00+00:00",
            "E3011",
            "supervisor",
            "closed",
            "closed",
            reason="与家属(电话 021-64881234)协商一致",
        ),
    ]
    return {
        "complaint_no": "SHXJH-20261123-0042",
        "mall_id": "sh-xujiahui",
        "state": "closed",
        "round": 1,
        "level": "supervisor",
        "channel": "desk",
        "category": "food.safety_incident",
        "risk_level": "high",
        "urgency": "urgent",
        "department": "food_safety",
        "owner_id": "E3501",
        "received_at": "2026-11-23T02:00:00+00:00",
        "opened_at": "2026-11-23T02:00:00+00:00",
        "findings": [],
        "proposals": [],
        "objections": [],
        "escalations": [],
        "tasks": [],
        "rectifications": [],
        "resolution": {
            "at": "2026-11-23T06:00:00+00:00",
            "by": "E3501",
            "summary": "已按食品安全法赔付",
            "spot": False,
        },
        "closure": {"at": "2026-11-24T02:00:00+00:00", "by": "E3011", "reason": "与家属协商一致"},
        "policy_version": "2026-11-23.1+malls:2026-11-23.1",
        "timeline": timeline,
    }


@pytest.fixture
def kept():
    return complaint(
        description="孩子吃了熟食区的鸡肉后呕吐，请回电 13812345678 或 zhang.san@example.com",
        demands={
            "fact": "child vomited; ID 31010119900101123X on file",
            "expectation": "medical costs, call 139-1234-5678",
        },
    )


def test_the_entry_describes_the_problem_without_personal_data(case, kept):
    entry = rules.library_entry(case, kept, None, "feedback", True, NOW)[0]
    assert entry["problem"] == {
        "description": "孩子吃了熟食区的鸡肉后呕吐，请回电 [phone] 或 [e-mail]",
        "fact": "child vomited; ID [ID number] on file",
        "expectation": "medical costs, call [phone]",
    }
    assert (entry["_id"], entry["mall_id"], entry["category"], entry["risk_level"], entry["channel"]) == (
        "SHXJH-20261123-0042",
        "sh-xujiahui",
        "food.safety_incident",
        "high",
        "desk",
    )
    assert (entry["merchant_id"], entry["area"], entry["rounds"]) == ("T-17", "B1 fresh food", 1)
    assert entry["outcome"] == "已按食品安全法赔付"
    assert (entry["archived_at"], entry["archived_by"], entry["automatic"]) == (NOW, "feedback", True)


def test_the_process_keeps_roles_and_steps_but_not_people(case, kept):
    entry = rules.library_entry(case, kept, None, "feedback", True, NOW)[0]
    process = entry["process"]
    assert [s["action"] for s in process] == [
        "opened",
        "finding",
        "note",
        "proposed",
        "answered",
        "escalated",
        "accepted",
        "task_done",
        "resolved",
        "closed",
    ]  # not event_not_applied
    assert [s["role"] for s in process] == [
        "service",
        "handler",
        "handler",
        "operations_director",
        "operations_director",
        "handler",
        "handler",
        "handler",
        "handler",
        "supervisor",
    ]
    assert [s["state"] for s in process][-2:] == ["resolved", "closed"]
    assert all("by" not in s for s in process)
    text = json.dumps(process, default=str, ensure_ascii=False)
    for staff in ("E3501", "E3901", "E3011"):  # owners, escalation targets: gone too
        assert staff not in text
    for personal in PERSONAL:
        assert personal not in text, personal
    assert "张三" not in text  # a note's free text is not kept


def test_process_times_are_datetimes_again(case, kept):
    process = rules.library_entry(case, kept, None, "feedback", True, NOW)[0]["process"]
    assert process[0]["at"] == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert all(isinstance(s["at"], datetime) and s["at"].utcoffset() == timedelta(0) for s in process)
    assert [s["at"] for s in process] == sorted(s["at"] for s in process)


def test_the_process_keeps_what_was_decided_with_text_scrubbed(case, kept):
    steps = {s["action"]: s for s in rules.library_entry(case, kept, None, "feedback", True, NOW)[0]["process"]}
    assert steps["finding"]["source"] == "supplier_qc_report"
    assert steps["finding"]["summary"] == "批次抽检不合格；顾客 [phone] 提供了小票"
    assert steps["proposed"]["decision"] == "upheld" and steps["proposed"]["total"] == "1025.00"
    assert steps["proposed"]["remedies"] == [
        {"type": "refund", "amount": "25.00"},
        {"type": "cash_compensation", "amount": "1000.00"},
    ]
    assert steps["escalated"]["to_role"] == "supervisor" and "to_staff_id" not in steps["escalated"]
    assert steps["resolved"]["summary"] == "已按食品安全法赔付；会员 [member id] 签收，联系 [e-mail]"
    assert steps["resolved"]["spot"] is False
    assert steps["closed"]["reason"] == "与家属(电话 [phone])协商一致"
    assert "note" not in steps["task_done"] and "text" not in steps["note"]
    assert "owner_id" not in steps["opened"]


def test_an_automatic_entry_waits_for_its_lessons(case, kept):
    entry = rules.library_entry(case, kept, None, "feedback", True, NOW)[0]
    assert entry["lessons"] is None and entry["lessons_pending"] is True


def test_a_handlers_entry_has_its_lessons_scrubbed(case, kept):
    entry = rules.library_entry(case, kept, "熟食区每批次留样；回访请拨 13812345678", "E3501", False, NOW)[0]
    assert entry["lessons"] == "熟食区每批次留样；回访请拨 [phone]"
    assert entry["lessons_pending"] is False and entry["automatic"] is False and entry["archived_by"] == "E3501"


def test_the_entry_carries_its_case_archived_event(case, kept):
    entry, event = rules.library_entry(case, kept, None, "feedback", True, NOW)
    read = assert_valid(event, events.CASE_ARCHIVED)
    assert read["payload"] == {
        "category": "food.safety_incident",
        "risk_level": "high",
        "automatic": True,
        "by": "feedback",
    }
    assert (read["complaint_no"], read["mall_id"], read["occurred_at"]) == ("SHXJH-20261123-0042", "sh-xujiahui", NOW)


def test_a_complaint_not_kept_and_a_case_without_resolution_still_make_an_entry(case):
    case = {**case, "resolution": None, "category": None}
    entry, event = rules.library_entry(case, {}, "典型案例", "E3501", False, NOW)
    assert entry["problem"] == {"description": None, "fact": None, "expectation": None}
    assert (entry["outcome"], entry["merchant_id"], entry["area"], entry["category"]) == (None, None, None, None)
    assert assert_valid(event, events.CASE_ARCHIVED)["payload"]["category"] is None


def test_the_outcome_is_scrubbed_too(case, kept):
    case["resolution"]["summary"] = "已按食品安全法赔付；会员 M00123 签收，联系 zhang.san@example.com"
    entry = rules.library_entry(case, kept, None, "feedback", True, NOW)[0]
    assert entry["outcome"] == "已按食品安全法赔付；会员 [member id] 签收，联系 [e-mail]"


def test_objection_points_are_scrubbed(case, kept):
    case["timeline"].insert(
        5,
        entry_(
            6,
            "2026-11-23T03:10:00+00:00",
            "E3501",
            "handler",
            "objected",
            "objected",
            proposal_no=1,
            points=["要求十倍赔偿", "请联系其丈夫 13912345678"],
        ),
    )
    steps = {s["action"]: s for s in rules.library_entry(case, kept, None, "feedback", True, NOW)[0]["process"]}
    assert steps["objected"]["points"] == ["要求十倍赔偿", "请联系其丈夫 [phone]"]


def test_a_case_as_resolution_really_dumps_it_makes_an_entry():
    """The real get_case shape: a case driven through resolution's own rules, dumped by CaseOut."""
    from mallcare_common.policy import load_policy_dir
    from resolution.policy import load_policy
    from resolution.schemas import CaseOut
    from tests.conftest import POLICY_DIR
    from tests.unit.resolution.conftest import MONDAY_15, CaseDriver, triaged_event

    policy = load_policy_dir(POLICY_DIR, "resolution.yml", load_policy)
    driver = CaseDriver.open(policy, triaged_event(now=MONDAY_15), MONDAY_15)
    driver.act("findings", source="cctv", summary="顾客 13812345678 的草莓发霉")
    driver.later(minutes=5).propose()
    driver.reply()
    driver.accept()
    driver.carry_out()
    driver.later(minutes=5).resolve()
    dumped = CaseOut().dump(driver.case)
    entry = rules.library_entry(dumped, complaint(), "收银前抽检", "E3501", False, NOW)[0]
    assert [s["action"] for s in entry["process"]] == [e["action"] for e in dumped["timeline"]]
    assert [s["role"] for s in entry["process"]] == [e["role"] for e in dumped["timeline"]]
    assert [s["at"] for s in entry["process"]] == [e["at"] for e in driver.case["timeline"]]
    assert entry["process"][1]["summary"] == "顾客 [phone] 的草莓发霉"
    assert entry["outcome"] == "refunded and apologised" and entry["category"] == "product.quality_defect"
    assert all("by" not in s for s in entry["process"])


# --- searching the library -------------------------------------------------------------------------


def test_search_by_exact_fields_only():
    query = {
        "category": "food.safety_incident",
        "mall_id": "sh-xujiahui",
        "merchant_id": "T-17",
        "risk_level": "high",
        "limit": 50,
    }
    assert rules.search_filter(query) == {
        "category": "food.safety_incident",
        "mall_id": "sh-xujiahui",
        "merchant_id": "T-17",
        "risk_level": "high",
    }
    assert rules.search_filter({"limit": 50}) == {}
    assert rules.search_filter({"merchant_id": "T-17", "q": ""}) == {"merchant_id": "T-17"}


def test_a_keyword_is_searched_case_insensitively_in_problem_outcome_process_and_lessons():
    selector = rules.search_filter({"category": "product.quality_defect", "q": "Mould"})
    assert selector["category"] == "product.quality_defect"
    fields = [next(iter(clause)) for clause in selector["$or"]]
    assert set(fields) == {"problem.description", "problem.fact", "lessons", "outcome", "process.summary"}
    assert all(
        clause[f] == {"$regex": "Mould", "$options": "i"} for clause, f in zip(selector["$or"], fields, strict=True)
    )


@pytest.mark.parametrize(
    "q,matches,misses",
    [
        ("a.b(", "see A.B( here", "axb("),
        ("39.90", "refund 39.90 yuan", "refund 39x90"),
        ("*", "rated * stars", "anything"),
        ("留样", "熟食区每批次留样", "熟食区"),
        ("[phone]", "call [phone]", "call p"),
    ],
)
def test_a_keyword_is_taken_literally(q, matches, misses):
    word = rules.search_filter({"q": q})["$or"][0]["problem.description"]
    assert word["$options"] == "i"
    pattern = re.compile(word["$regex"], re.IGNORECASE)
    assert pattern.search(matches) and not pattern.search(misses)
