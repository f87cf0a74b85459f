"""R3.1-R3.10, R2.4, R4.2 on the real broker and store: a complaint registered at
intake and triaged becomes a case in resolution; the seeds' strawberry case is
investigated, answered within the handler's authority, accepted, refunded and
resolved with its whole timeline; an objection escalates with a 2-hour re-review;
a proposal above the handler's limit waits for a supervisor; retried requests do
not double a remedy; feedback's answers reopen and close the case; a dispute gets
its review meeting; a store's adverse event is verified, forwarded, handled and
communicated; the proposal check says "above the law" for a demanded multiple the
law does not grant (issue 16 finding 9); the appeal text states the re-review
deadline in force (issue 16 finding 10)."""

import json
import shutil
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from kombu import Connection
from nameko.testing.services import entrypoint_waiter

from mallcare_cli.examples import desk_complaint
from mallcare_common.contracts import COMPLAINT_TRIAGED, CUSTOMER_DISSATISFIED, CUSTOMER_SATISFIED, build_event
from resolution.service import ResolutionService
from tests.helpers import POLICY_DIR, bearer, catch_all, handled, wait_for, staff as as_staff
from tests.integration.test_event_batches import batches, dead_letters
from tests.helpers import drain as drain_queue

MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # day shift on
HANDLER, SUPERVISOR, DESK, DIRECTOR, STORE_MANAGER = "E3501", "E3011", "D3001", "E3901", "E3091"


@pytest.fixture
def system(services):
    started = time.monotonic()
    # Resolution's clock stands still, so deadlines can be checked exactly; triage's
    # moves from the same Monday morning, so that its outbox sweep (which leaves the
    # newest events to the request that wrote them) retries a publish that failed.
    system = services(
        "resolution",
        "triage",
        "intake",
        clocks={
            "resolution": lambda: MONDAY_10,
            "triage": lambda: MONDAY_10 + timedelta(seconds=time.monotonic() - started),
        },
    )
    system.catch_all("resolution")
    return system


def open_case(system, **overrides):
    with system.case_opened():
        number = system.web["intake"].post("/complaints", json=desk_complaint(**overrides)).json()["number"]
    response = system.web["resolution"].get(f"/cases/{number}")
    assert response.status_code == 200, response.text
    return response.json()


def act(system, number, action, staff, expect=200, **body):
    response = system.web["resolution"].post(f"/cases/{number}/{action}", json=body, headers=as_staff(staff))
    assert response.status_code == expect, response.text
    return response.json()


def drain(system):
    """Events published so far, in order."""
    return drain_queue(system.queues["resolution"])


def wait_events(system, count):
    seen = []
    wait_for(lambda: seen.extend(drain(system)) or len(seen) >= count)
    return seen


STRAWBERRIES = {
    "decision": "upheld",
    "price": "39.90",
    "demanded_amount": "79.80",
    "reasons": [
        "1/3 of the strawberries were mouldy: the scale records and the CCTV confirm the sale",
        "the customer's expectation (refund plus the same value in goods) is fair",
    ],
    "remedies": [
        {"type": "refund", "amount": "39.90"},
        {"type": "voucher", "amount": "39.90", "note": "same value in fresh produce"},
    ],
}


def test_the_strawberry_case_goes_from_complaint_to_resolved_with_its_whole_timeline(system):
    case = open_case(system)
    number = case["complaint_no"]
    assert (case["state"], case["owner_id"], case["department"]) == ("open", HANDLER, "merchant_relations")
    assert case["resolution_due_at"] and case["level"] == "handler"

    act(system, number, "findings", HANDLER, source="records", summary="sold 08:40 at the fresh-produce scale")
    act(system, number, "findings", HANDLER, source="cctv", summary="camera 12 shows the box weighed and sold")
    promised = (MONDAY_10 + timedelta(hours=4)).isoformat()
    case = act(system, number, "expected-resolution", HANDLER, expected_by=promised, via="desk")
    assert case["state"] == "investigating" and len(case["findings"]) == 2
    assert (
        case["expected_resolution"]["expected_by"]
        == datetime.fromisoformat(promised).astimezone(ZoneInfo("UTC")).isoformat()
    )

    case = act(system, number, "proposals", HANDLER, **STRAWBERRIES)
    proposal = case["proposals"][0]
    assert proposal["status"] == "approved" and proposal["approvals"][0]["by"] == HANDLER  # within 200 yuan
    assert proposal["compliance"]["total"] == "79.80"
    assert proposal["compliance"]["statutory_total"] == "39.90"
    assert proposal["compliance"]["demand_above_statutory"] is True  # above-law demand recognised (R3.4)

    case = act(system, number, "reply", HANDLER, proposal_no=1, oral=True, text="全额退款并补偿同等价值商品")
    assert case["proposals"][0]["sent"]["oral"] is True
    assert case["proposals"][0]["sent"]["appeal_procedure"] is None  # what the customer asked for
    case = act(system, number, "acceptance", HANDLER, proposal_no=1)
    tasks = {t["kind"]: t for t in case["tasks"]}
    assert set(tasks) == {"refund", "voucher", "product_hold"}
    assert datetime.fromisoformat(tasks["refund"]["due_at"]) == MONDAY_10 + timedelta(hours=24)
    assert datetime.fromisoformat(tasks["voucher"]["due_at"]) == MONDAY_10 + timedelta(days=1)  # 1 working day

    for kind in ("refund", "product_hold", "voucher"):
        case = act(system, number, "task-done", HANDLER, task_id=tasks[kind]["id"], note=f"{kind} done")
    act(system, number, "notes", HANDLER, kind="customer_contact", via="phone", text="16:30 顾客确认退款已到账")
    case = act(system, number, "resolution", HANDLER, summary="refunded, voucher sent, batch off the shelf")
    assert case["state"] == "resolved"
    assert case["rectifications"][0]["kind"] == "procurement_standard_change"

    timeline = system.web["resolution"].get(f"/cases/{number}/timeline").json()["timeline"]
    assert [e["action"] for e in timeline] == [
        "opened",
        "finding",
        "finding",
        "time_promised",
        "proposed",
        "approved",
        "answered",
        "accepted",
        "task_done",
        "task_done",
        "task_done",
        "note",
        "resolved",
        "rectification_due",
    ]
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert all(e["at"] and e["by"] for e in timeline)
    assert timeline[11]["detail"]["text"] == "16:30 顾客确认退款已到账"

    published = [e["event_type"] for e in wait_events(system, 14)]
    assert (
        published
        == [
            "batch_check_opened",  # R7.6: the strawberries' barcode starts the check of their batch
            "case_opened",
            "investigation_noted",
            "investigation_noted",
            "time_promised",
            "proposal_approved",
            "case_proposed",
            "case_accepted",
            "execution_task_done",
            "execution_task_done",
            "execution_task_done",
            "customer_contacted",
            "rectification_due",
            "case_resolved",
        ][: len(published)]
    )
    assert len(published) == 14


def test_an_objection_escalates_with_a_two_hour_re_review(system):
    number = open_case(system)["complaint_no"]
    act(system, number, "findings", HANDLER, source="records", summary="sale confirmed")
    act(
        system,
        number,
        "proposals",
        HANDLER,
        **{**STRAWBERRIES, "decision": "partly_upheld", "remedies": [{"type": "refund", "amount": "39.90"}]},
    )
    case = act(system, number, "reply", HANDLER, proposal_no=1, oral=False, text="退款 39.90 元")
    assert "12315" in case["proposals"][0]["sent"]["appeal_procedure"]  # differs from the expectation

    case = act(
        system,
        number,
        "objection",
        HANDLER,
        proposal_no=1,
        points=["a refund alone does not cover the trip back", "wants the same value in goods"],
    )
    assert (case["state"], case["level"]) == ("escalated", "supervisor")
    escalation = case["escalations"][-1]
    assert escalation["to_staff_id"] == SUPERVISOR and escalation["reason"] == "objection"
    assert datetime.fromisoformat(escalation["re_review_due_at"]) == MONDAY_10 + timedelta(hours=2)

    # the re-review is the supervisor's: a handler's proposal waits for them
    case = act(system, number, "proposals", HANDLER, **STRAWBERRIES)
    assert case["proposals"][-1]["status"] == "awaiting_approval"
    assert case["proposals"][-1]["approver_role"] == "supervisor"
    act(system, number, "approval", SUPERVISOR, proposal_no=2)
    case = act(system, number, "reply", SUPERVISOR, proposal_no=2, oral=True)
    assert case["state"] == "proposed"

    escalated = [e for e in wait_events(system, 6) if e["event_type"] == "case_escalated"]
    assert datetime.fromisoformat(escalated[0]["payload"]["re_review_due_at"]) == MONDAY_10 + timedelta(hours=2)


def test_a_proposal_above_the_handlers_limit_is_refused_until_a_supervisor_approves(system):
    number = open_case(system)["complaint_no"]
    act(system, number, "findings", HANDLER, source="supplier_qc_report", summary="batch failed the mould test")
    case = act(
        system,
        number,
        "proposals",
        HANDLER,
        decision="upheld",
        legal_basis="food_safety",
        price="39.90",
        reasons=["food not meeting the safety standard: refund plus the statutory compensation"],
        remedies=[{"type": "refund", "amount": "39.90"}, {"type": "cash_compensation", "amount": "1000"}],
    )
    proposal = case["proposals"][0]
    assert proposal["status"] == "awaiting_approval" and proposal["approver_role"] == "supervisor"
    assert proposal["compliance"]["statutory_total"] == "1039.90"

    refused = act(system, number, "reply", HANDLER, expect=409, proposal_no=1, oral=True)
    assert "supervisor" in refused["message"]
    refused = act(system, number, "approval", HANDLER, expect=403, proposal_no=1)
    assert "limit" in refused["message"]
    case = act(system, number, "approval", SUPERVISOR, proposal_no=1)
    assert case["proposals"][0]["approvals"] == [
        {"by": SUPERVISOR, "role": "supervisor", "at": MONDAY_10.astimezone(ZoneInfo("UTC")).isoformat()}
    ]
    act(system, number, "reply", HANDLER, proposal_no=1, oral=False)
    case = act(system, number, "acceptance", HANDLER, proposal_no=1)
    cash = next(t for t in case["tasks"] if t["kind"] == "cash_compensation")
    refused = act(system, number, "task-done", HANDLER, expect=422, task_id=cash["id"])
    assert "signature_ref" in refused["fields"]
    act(system, number, "task-done", HANDLER, task_id=cash["id"], signature_ref="RCPT-20261123-007")


def test_cases_awaiting_a_roles_approval_are_found_by_that_role(system):
    number = open_case(system)["complaint_no"]
    act(system, number, "findings", HANDLER, source="records", summary="sale confirmed")

    def waiting(role, expect=200):
        response = system.web["resolution"].get(
            "/cases", params={"awaiting_approval_by": role}, headers=as_staff(SUPERVISOR)
        )
        assert response.status_code == expect, response.text
        return [c["complaint_no"] for c in response.json().get("items", [])]

    assert number not in waiting("supervisor")  # nothing proposed yet
    act(
        system,
        number,
        "proposals",
        HANDLER,
        decision="upheld",
        price="500",
        reasons=["faulty"],
        remedies=[{"type": "refund", "amount": "500"}],
    )  # above the handler's 200 yuan
    assert number in waiting("supervisor") and number not in waiting("store_manager")
    # escalated above the supervisor's level after the proposal: it now waits for the level above
    act(system, number, "escalation", SUPERVISOR, reason="manual")  # to the supervisor's level
    act(system, number, "escalation", SUPERVISOR, reason="manual")  # to the store manager's
    assert number not in waiting("supervisor") and number in waiting("store_manager")
    act(system, number, "approval", STORE_MANAGER, proposal_no=1)
    assert number not in waiting("store_manager")
    assert (
        "awaiting_approval_by"
        in system.web["resolution"]
        .get("/cases", params={"awaiting_approval_by": "nobody"}, headers=as_staff(SUPERVISOR))
        .json()["fields"]
    )


def test_remedies_above_the_caps_need_an_override_by_an_authorised_role(system):
    number = open_case(system)["complaint_no"]
    act(system, number, "findings", HANDLER, source="records", summary="sale confirmed")
    generous = {
        "decision": "upheld",
        "price": "39.90",
        "reasons": ["goodwill"],
        "remedies": [{"type": "voucher", "amount": "500"}],
    }
    refused = act(system, number, "proposals", HANDLER, expect=422, **generous)
    assert any("goodwill cap" in m for m in refused["fields"]["remedies"])
    case = act(system, number, "proposals", HANDLER, cap_override_reason="customer is a key account", **generous)
    assert case["proposals"][0]["approver_role"] == "operations_director"
    act(system, number, "approval", SUPERVISOR, expect=403, proposal_no=1)
    case = act(system, number, "approval", DIRECTOR, proposal_no=1)
    assert case["proposals"][0]["status"] == "approved"


def test_a_retried_request_does_not_double_a_remedy(system):
    number = open_case(system)["complaint_no"]
    act(system, number, "findings", HANDLER, source="records", summary="sale confirmed", request_id="f-1")
    act(system, number, "findings", HANDLER, source="records", summary="sale confirmed", request_id="f-1")
    first = act(system, number, "proposals", HANDLER, request_id="p-1", **STRAWBERRIES)
    again = act(system, number, "proposals", HANDLER, request_id="p-1", **STRAWBERRIES)
    assert len(again["findings"]) == 1 and len(again["proposals"]) == 1
    assert again["timeline"] == first["timeline"]


def test_a_simple_complaint_is_resolved_on_the_spot_at_the_desk(system):
    number = open_case(system)["complaint_no"]
    case = act(
        system,
        number,
        "spot-resolution",
        DESK,
        decision="upheld",
        price="39.90",
        reasons=["mouldy fruit: refunded at the desk"],
        remedies=[{"type": "refund", "amount": "39.90"}],
        summary="refunded on the spot",
    )
    assert case["state"] == "resolved" and case["resolution"]["spot"] is True
    refund = next(t for t in case["tasks"] if t["kind"] == "refund")
    assert refund["done"]["by"] == DESK
    hold = next(t for t in case["tasks"] if t["kind"] == "product_hold")
    assert hold["done"] is None  # the batch still has to come off the shelf
    resolved = [e for e in wait_events(system, 4) if e["event_type"] == "case_resolved"]
    assert resolved[0]["payload"]["spot"] is True and resolved[0]["payload"]["channel"] == "desk"

    # above the desk's own limit it is not settled on the spot
    other = open_case(system, channel_ref="desk-0002", description="草莓发霉了，第二盒")["complaint_no"]
    refused = act(
        system,
        other,
        "spot-resolution",
        DESK,
        expect=403,
        decision="upheld",
        price="150",
        reasons=["x"],
        remedies=[{"type": "refund", "amount": "150"}],
        summary="x",
    )
    assert "limit" in refused["message"]


def test_feedback_reopens_a_dissatisfied_customers_case_and_closes_a_satisfied_ones(system):
    number = open_case(system)["complaint_no"]
    act(
        system,
        number,
        "spot-resolution",
        DESK,
        decision="upheld",
        price="39.90",
        reasons=["refund"],
        remedies=[{"type": "refund", "amount": "39.90"}],
        summary="refunded on the spot",
    )
    dispatch = system.dispatch
    unhappy = build_event(
        CUSTOMER_DISSATISFIED,
        mall_id="sh-xujiahui",
        complaint_no=number,
        occurred_at=MONDAY_10,
        payload={"revisit_id": "rv-1", "score": 2, "by": "E3002", "reasons": ["slow"]},
    )
    with entrypoint_waiter(system.containers["resolution"], "handle_customer_dissatisfied"):
        dispatch("feedback", "customer_dissatisfied", unhappy)
    with entrypoint_waiter(system.containers["resolution"], "handle_customer_dissatisfied"):
        dispatch("feedback", "customer_dissatisfied", unhappy)  # redelivered: no second reopening
    case = system.web["resolution"].get(f"/cases/{number}").json()
    assert (case["state"], case["round"]) == ("reopened", 2)
    assert datetime.fromisoformat(case["resolution_due_at"]) == MONDAY_10 + timedelta(hours=48)
    assert [e["action"] for e in case["timeline"]].count("reopened") == 1

    act(system, number, "findings", HANDLER, source="customer", summary="customer says the refund was late")
    act(
        system,
        number,
        "proposals",
        HANDLER,
        decision="upheld",
        reasons=["apologise"],
        remedies=[{"type": "apology_letter", "amount": "0"}],
    )
    act(system, number, "reply", HANDLER, proposal_no=2, oral=True)
    case = act(system, number, "acceptance", HANDLER, proposal_no=2)
    assert {t["kind"] for t in case["tasks"] if not t["done"]} == {"apology_letter", "product_hold"}
    for task in case["tasks"]:
        if not task["done"]:
            act(system, number, "task-done", HANDLER, task_id=task["id"])
    act(system, number, "resolution", HANDLER, summary="apology letter sent")
    happy = build_event(
        CUSTOMER_SATISFIED,
        mall_id="sh-xujiahui",
        complaint_no=number,
        occurred_at=MONDAY_10,
        payload={"revisit_id": "rv-2", "score": 5, "by": "E3002"},
    )
    with entrypoint_waiter(system.containers["resolution"], "handle_customer_satisfied"):
        dispatch("feedback", "customer_satisfied", happy)
    case = system.web["resolution"].get(f"/cases/{number}").json()
    assert case["state"] == "closed" and case["closure"]["reason"] == "customer satisfied (score 5)"


def test_a_dispute_waits_for_the_operations_directors_review_meeting(system):
    case = open_case(
        system, description="买到发霉的草莓，退款一周没到账，收银员态度还很差", location={"area": "checkout"}
    )
    number = case["complaint_no"]
    meeting = case["review_meeting"]
    assert meeting["convenor_id"] == DIRECTOR and "finance" in meeting["departments"]
    act(system, number, "findings", DIRECTOR, source="staff_interview", summary="cashier and QC heard")
    refused = act(system, number, "proposals", DIRECTOR, expect=409, **STRAWBERRIES)
    assert "review meeting" in refused["message"]
    act(
        system,
        number,
        "review-meeting",
        HANDLER,
        expect=403,
        responsible_department="finance",
        decision="x",
        attendees=[HANDLER],
    )
    case = act(
        system,
        number,
        "review-meeting",
        DIRECTOR,
        responsible_department="procurement_qc",
        decision="QC owns the mouldy batch; finance chases the refund",
        attendees=["E3101", "E3301"],
    )
    assert case["department"] == "procurement_qc" and case["review_meeting"]["within_deadline"] is True
    act(system, number, "proposals", DIRECTOR, **STRAWBERRIES)


def test_a_triage_reassignment_moves_the_case(system):
    number = open_case(system)["complaint_no"]
    triage_web = system.web["resolution"].__class__(system.containers["triage"])
    with entrypoint_waiter(system.containers["resolution"], "handle_complaint_reassigned"):
        triage_web.post(
            f"/assessments/{number}/owner",
            headers=as_staff("E3901"),
            json={"owner_id": "E3101", "reason": "QC knows the supplier"},
        )
    case = system.web["resolution"].get(f"/cases/{number}").json()
    assert (case["owner_id"], case["department"]) == ("E3101", "procurement_qc")
    assert case["timeline"][-1]["action"] == "reassigned"


def triaged_event(number, mall="sh-xujiahui", **payload):
    """A complaint_triaged event as triage sends it (fields triage reads from the text, such
    as the demand, chosen by the test)."""
    return build_event(
        COMPLAINT_TRIAGED,
        mall_id=mall,
        complaint_no=number,
        occurred_at=MONDAY_10,
        payload={
            "category": "product.quality_defect",
            "category_source": "keywords",
            "risk_level": "low",
            "risk_reasons": [],
            "urgency": "routine",
            "department": "procurement_qc",
            "review_meeting": False,
            "owner_id": HANDLER,
            "channel": "desk",
            "merchant_id": None,
            "first_response_due_at": (MONDAY_10 + timedelta(hours=1)).isoformat(),
            "resolution_due_at": (MONDAY_10 + timedelta(hours=12)).isoformat(),
            "received_at": MONDAY_10.isoformat(),
            "policy_version": "test",
            **payload,
        },
    )


def open_from_triage(container, amqp, number, **payload):
    """A case opened from a complaint_triaged event sent as triage sends it."""
    with handled(container, "handle_complaint_triaged"):
        event_dispatcher({"AMQP_URI": amqp})("triage", "complaint_triaged", triaged_event(number, **payload))


def test_the_proposal_check_says_above_the_law_for_twenty_times_a_50_yuan_price(system):
    """要求20倍赔偿 on a 50-yuan yoghurt: 20 x 50 = 1,000 yuan meets food safety law's minimum in
    money, but the law grants ten times: the check before sending says so, and why."""
    number = "SHXJH-20261123-0920"
    open_from_triage(
        system.containers["resolution"],
        system.amqp,
        number,
        category="product.food_safety",
        risk_level="high",
        urgency="urgent",
        demand={"multiple": 20, "amount_fen": None, "price_fen": 5000, "mental_damages": False},
    )
    case = system.web["resolution"].get(f"/cases/{number}").json()
    assert case["demand"] == {"multiple": 20, "amount_fen": None, "price_fen": 5000, "mental_damages": False}
    act(system, number, "findings", HANDLER, source="records", summary="the yoghurt was past its date")
    draft = {
        "decision": "upheld",
        "reasons": ["sold past its date"],
        "legal_basis": "food_safety",
        "price": "50",
        "remedies": [{"type": "refund", "amount": "50"}, {"type": "cash_compensation", "amount": "1000"}],
    }
    checked = act(system, number, "proposal-check", HANDLER, **draft)
    assert checked["demand_above_statutory"] is True
    assert checked["warnings"] == [
        "above the law: the customer asks 20x the price; 《中华人民共和国食品安全法》第一百四十八条 grants 10x"
    ]
    case = act(system, number, "proposals", HANDLER, **draft)
    assert case["proposals"][0]["compliance"]["demand_above_statutory"] is True


def test_promoted_goods_follow_the_promotion_regulation_in_the_check_and_the_proposal(system):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — "买一送一的酸奶打开就是坏的，店员说特价商品不退不换":
    the check before sending quotes the regulation's rules for goods sold on promotion, and a
    voucher in place of a refund or an exchange is refused (422) with the rule's text; a refund
    at the price paid goes through, its compliance keeping which rules applied."""
    number = "SHXJH-20261123-0921"
    open_from_triage(system.containers["resolution"], system.amqp, number, category="product.quality_defect")
    act(system, number, "findings", HANDLER, source="customer", summary="酸奶胀袋变质，小票显示买一送一")
    draft = {
        "decision": "upheld",
        "reasons": ["变质商品，促销不影响退换"],
        "promotion": "promotion",
        "price": "12.90",
        "remedies": [{"type": "voucher", "amount": "12.90"}],
    }
    checked = act(system, number, "proposal-check", HANDLER, **draft)
    assert checked["promotion"]["regulation"] == "《零售商促销行为管理办法》（商务部令2006年第18号）"
    assert [r["text"] for r in checked["promotion"]["rules"]][
        0
    ] == "零售商不得以促销为由拒绝退换货或者为消费者退换货设置障碍"
    refused = act(system, number, "proposals", HANDLER, 422, **draft)
    assert any("不得以促销为由拒绝退换货" in m for m in refused["fields"]["remedies"])
    case = act(system, number, "proposals", HANDLER, **{**draft, "remedies": [{"type": "refund", "amount": "12.90"}]})
    assert case["proposals"][0]["compliance"]["promotion"]["kind"] == "promotion"
    assert case["proposals"][0]["compliance"]["breaches"] == []


def test_a_decision_names_its_bases_and_a_referral_to_12315_comes_back_with_its_outcome(system):
    """R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁 — the
    answer rests on legal liability and a compromise; the customer objects and goes to 12315
    (工单 SH12315-2026-88121, referred the day before); the hotline's mediation settles. The
    referral and the outcome, each with its date, are on the case, its timeline and in events
    through the outbox."""
    number = "SHXJH-20261123-0922"
    open_from_triage(system.containers["resolution"], system.amqp, number)
    drain(system)
    act(system, number, "findings", SUPERVISOR, source="customer", summary="草莓霉变属实")
    case = act(
        system,
        number,
        "proposals",
        SUPERVISOR,
        decision="partly_upheld",
        reasons=["按售价退款；十倍赔偿无法律依据，另送券以示歉意"],
        bases=["legal_liability", "compromise"],
        remedies=[{"type": "refund", "amount": "39.90"}, {"type": "voucher", "amount": "50"}],
    )
    assert case["proposals"][0]["bases"] == ["legal_liability", "compromise"]
    refused = act(
        system, number, "proposals", SUPERVISOR, 422, decision="upheld", reasons=["x"], remedies=[], bases=["luck"]
    )
    assert list(refused["fields"]["bases"]) == ["0"]
    act(system, number, "reply", SUPERVISOR, proposal_no=1, oral=True)
    act(system, number, "objection", SUPERVISOR, proposal_no=1, points=["要求十倍赔偿"])
    called = "2026-11-22T10:00:00+08:00"
    act(system, number, "mediation", SUPERVISOR, mediator="12315", reference="SH12315-2026-88121", referred_at=called)
    case = act(
        system,
        number,
        "mediation-outcome",
        SUPERVISOR,
        referral_id=1,
        result="settled",
        summary="调解达成：退款加补偿",
        amount="100",
    )
    [referral] = case["referrals"]
    assert (referral["mediator"], referral["reference"], referral["outcome"]["result"]) == (
        "12315",
        "SH12315-2026-88121",
        "settled",
    )
    assert [e["action"] for e in case["timeline"][-2:]] == ["referred", "mediation_concluded"]
    published = {e["event_type"]: e["payload"] for e in wait_events(system, 7)}
    assert published["case_referred"]["referred_at"] == "2026-11-22T02:00:00+00:00"
    assert published["mediation_concluded"]["result"] == "settled"
    assert published["mediation_concluded"]["amount_fen"] == 10000


def test_a_stores_adverse_event_is_verified_forwarded_handled_and_communicated(system):
    web = system.web["resolution"]
    report = {
        "mall_id": "sh-xujiahui",
        "type": "injury",
        "occurred_at": "2026-11-01T10:00:00+08:00",
        "place": {"area": "一楼生鲜区"},
        "description": "顾客在生鲜区滑倒，膝盖擦伤",
        "customer": {"name": "李先生", "phone": "13900001111"},
        "request_id": "ae-1",
        "suggested_handling": "陪同就医，承担医药费",
    }
    created = web.post("/incidents", json=report, headers=as_staff(HANDLER))
    assert created.status_code == 201, created.text
    incident = created.json()
    number = incident["number"]
    assert number.startswith("SHXJH-AE-") and incident["state"] == "reported"
    again = web.post("/incidents", json=report, headers=as_staff(HANDLER))  # a retried report
    assert (again.status_code, again.json()["number"]) == (200, number)
    assert datetime.fromisoformat(incident["forward_due_at"]) == MONDAY_10 + timedelta(hours=24)

    def incident_act(action, staff, expect=200, **body):
        response = web.post(f"/incidents/{number}/{action}", json=body, headers=as_staff(staff))
        assert response.status_code == expect, response.text
        return response.json()

    incident_act("verification", HANDLER, expect=403, confirmed=True, note="x")
    incident = incident_act("verification", "E3091", confirmed=True, note="CCTV shows the wet floor")
    assert incident["state"] == "forwarded" and incident["regional_manager_id"] == "R7001"
    assert datetime.fromisoformat(incident["handling_due_at"]) == MONDAY_10 + timedelta(hours=48)
    incident_act("handling", "R7001", expect=409, outcome="x", compensation="0", improvements=["y"])  # ask first
    incident_act("agreement", "R7001", plan="承担医药费并赔偿800元", agreed=True, via="phone", note="李先生同意")
    incident = incident_act(
        "handling",
        "R7001",
        outcome="medical costs covered",
        compensation="800",
        improvements=["non-slip mats at the fish counter", "floor checks every 30 min"],
    )
    assert incident["handling"]["compensation"] == "800.00"
    incident_act("communication", HANDLER, expect=403, via="phone", note="x")  # the regional manager tells them
    incident = incident_act("communication", "R7001", via="phone", note="customer informed and agreed")
    assert incident["state"] == "communicated" and incident["communication"]["within_deadline"] is True
    assert [e["action"] for e in incident["timeline"]] == [
        "reported",
        "forwarded",
        "customer_consulted",
        "handled",
        "communicated",
    ]
    assert incident["place"] == {"area": "一楼生鲜区", "merchant_id": None}
    # the report shows the customer masked; the full contact is an audited read for staff of that mall
    assert web.get(f"/incidents/{number}", headers=as_staff("E4001")).status_code == 403
    shown = web.get(f"/incidents/{number}", headers=as_staff(HANDLER)).json()
    assert shown["customer"] == {
        "name_masked": "李**",
        "contact_masked": "139****1111",
        "reachable_by": ["phone"],
        "member_tier": None,
    }
    full = f"/incidents/{number}/customer"
    assert web.get(full, params={"purpose": "arrange the hospital visit"}).status_code == 403  # admin: no
    assert web.get(full, params={"purpose": "x"}, headers=as_staff("E4001")).status_code == 403
    assert web.get(full, headers=as_staff(HANDLER)).status_code == 422
    read = web.get(full, params={"purpose": "arrange the hospital visit"}, headers=as_staff(HANDLER))
    assert read.json()["customer"] == {"name": "李先生", "phone": "13900001111"}
    [audited] = web.get("/audit", params={"mall_id": "sh-xujiahui"}).json()["items"]
    assert (audited["user"], audited["number"], audited["purpose"]) == (HANDLER, number, "arrange the hospital visit")
    listed = web.get("/incidents", params={"mall_id": "sh-xujiahui"}).json()["items"]
    assert [i["number"] for i in listed] == [number] and "customer" not in listed[0]

    reported = next(e for e in wait_events(system, 4) if e["event_type"] == "incident_reported")
    assert reported["complaint_no"] == number and reported["payload"]["contact_masked"] == "139****1111"
    assert "13900001111" not in json.dumps(reported) and "李先生" not in json.dumps(reported, ensure_ascii=False)


def test_bad_requests_get_clear_errors_and_change_nothing(system):
    number = open_case(system)["complaint_no"]
    web = system.web["resolution"]
    signed_out = web.post(
        f"/cases/{number}/findings", json={"source": "cctv", "summary": "x"}, headers={"Authorization": None}
    )
    assert signed_out.status_code == 401 and signed_out.json()["error"] == "UNAUTHENTICATED"
    analyst = web.post(
        f"/cases/{number}/findings", json={"source": "cctv", "summary": "x"}, headers=bearer("A7001", "analyst")
    )
    assert analyst.status_code == 403 and analyst.json()["error"] == "FORBIDDEN"
    assert act(system, number, "findings", "E4001", expect=403, source="cctv", summary="x")  # another mall
    bad = act(system, number, "proposals", HANDLER, expect=409, **STRAWBERRIES)  # still open: investigate first
    assert "open" in bad["message"]
    bad = act(system, number, "findings", HANDLER, expect=422, source="gossip", summary="")
    assert set(bad["fields"]) == {"source", "summary"}
    assert act(system, number, "teleport", HANDLER, expect=404)["error"] == "NOT_FOUND"
    assert web.get("/cases/NOPE-1").status_code == 404
    case = web.get(f"/cases/{number}").json()
    assert case["state"] == "open" and [e["action"] for e in case["timeline"]] == ["opened"]


def test_rpc_gives_the_same_answers_and_queues_by_deadline(system):
    number = open_case(system)["complaint_no"]
    with system.rpc(as_staff(HANDLER)) as rpc:
        case = rpc.resolution.act(number, "findings", {"source": "cctv", "summary": "seen"})
        assert case["state"] == "investigating"
        queue = rpc.resolution.queue({"mall_id": "sh-xujiahui", "owner_id": HANDLER})
    assert [c["complaint_no"] for c in queue["items"]] == [number]
    assert system.web["resolution"].get("/cases", params={"owner_id": "E3001"}).json()["items"] == []


def test_the_policy_in_force_is_shown_and_a_broken_one_is_refused(
    container_factory, service_config, web_client, tmp_path
):
    policy_dir = tmp_path / "policy"
    shutil.copytree(POLICY_DIR, policy_dir)
    config = service_config("resolution")
    config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(policy_dir)}
    container = container_factory(ResolutionService, config)
    container.start()
    web = web_client(container)
    shown = web.get("/policy").json()
    assert shown["roles"]["handler"]["limit"] == "200.00" and shown["version"].startswith("2026-")

    broken = (
        (policy_dir / "resolution.yml")
        .read_text(encoding="utf-8")
        .replace("escalation: [supervisor,", "escalation: [chairman,")
    )
    (policy_dir / "resolution.yml").write_text(broken, encoding="utf-8")
    refused = web.post("/policy/reload")
    assert refused.status_code == 422 and "chairman" in json.dumps(refused.json()["fields"])
    assert web.get("/policy").json()["version"] == shown["version"]


def test_the_appeal_text_the_customer_gets_follows_the_re_review_deadline(services, policy_dir):
    """Issue 16 finding 10: the reply states the re-review time of the policy in force; a
    policy whose appeal text writes a duration of its own is refused, naming the field."""
    system = services(
        "resolution", clocks={"resolution": lambda: MONDAY_10}, settings={"resolution": {"POLICY_DIR": str(policy_dir)}}
    )
    container = system.containers["resolution"]
    policy_file = policy_dir / "resolution.yml"
    shipped = policy_file.read_text(encoding="utf-8")

    def answered(number):
        open_from_triage(container, system.amqp, number)
        act(system, number, "findings", HANDLER, source="records", summary="sale confirmed")
        act(
            system,
            number,
            "proposals",
            HANDLER,
            **{**STRAWBERRIES, "decision": "partly_upheld", "remedies": [{"type": "refund", "amount": "39.90"}]},
        )
        case = act(system, number, "reply", HANDLER, proposal_no=1, oral=False, text="退款 39.90 元")
        return case["proposals"][0]["sent"]["appeal_procedure"]

    assert "我们将在 2 小时内安排上一级负责人复核" in answered("SHXJH-20261123-0931")
    policy_file.write_text(shipped.replace("re_review: {hours: 2}", "re_review: {hours: 4}"), encoding="utf-8")
    assert system.web["resolution"].post("/policy/reload").status_code == 200
    text = answered("SHXJH-20261123-0932")
    assert "我们将在 4 小时内安排上一级负责人复核" in text and "2 小时" not in text

    policy_file.write_text(shipped.replace("{re_review}", "2 小时"), encoding="utf-8")
    refused = system.web["resolution"].post("/policy/reload")
    assert refused.status_code == 422 and "written into the text" in str(refused.json()["fields"]["appeal_procedure"])


def test_a_report_retried_while_the_first_is_being_written_makes_one_incident(system):
    report = {
        "mall_id": "sh-xujiahui",
        "type": "property_damage",
        "occurred_at": "2026-11-01T10:00:00+08:00",
        "place": {"area": "一楼生鲜区"},
        "description": "购物车撞坏顾客的车门",
        "customer": {"phone": "13900002222"},
        "suggested_handling": "赔偿维修费",
        "request_id": "ae-race",
    }
    pool = eventlet.GreenPool()
    answers = list(
        pool.imap(lambda _: system.web["resolution"].post("/incidents", json=report, headers=as_staff(DESK)), range(5))
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["number"] for a in answers}) == 1
    listed = system.web["resolution"].get("/incidents", params={"mall_id": "sh-xujiahui"}).json()["items"]
    assert len(listed) == 1


def test_a_burst_of_triaged_complaints_opens_each_case_once_in_batches(container_factory, service_config, mongo_client):
    """Issue 21 (batches where they help), R3.1, R6.1: cases are opened in batches; a
    triaged complaint delivered twice opens one case and announces it once; one from a
    mall the chain does not have is dead-lettered by itself, and the rest of its batch
    is opened."""
    config = service_config("resolution")
    config["MALLCARE"] = {**config["MALLCARE"], "EVENT_BATCH_WAIT_MS": 1000}
    resolution = container_factory(ResolutionService, config)
    resolution.start()
    amqp, db = config["AMQP_URI"], mongo_client[config["MONGO_DATABASE"]]
    numbers = [f"SHXJH-20261123-{n:04d}" for n in range(700, 720)]
    sent = [triaged_event(number) for number in numbers]
    stray = triaged_event("XXNOW-20261123-0001", mall="xx-nowhere")
    announced = []
    with Connection(amqp) as conn:
        published = catch_all(conn, "resolution")["resolution"]
        before = batches("resolution")
        dispatch = event_dispatcher({"AMQP_URI": amqp})
        for event in sent[:10] + [stray] + sent[10:] + sent[:5]:  # five delivered twice
            dispatch("triage", "complaint_triaged", event)
        [dead] = dead_letters(amqp, 1)
        wait_for(lambda: announced.extend(drain_queue(published)) or len(announced) >= 20, timeout=30)
        eventlet.sleep(1)  # nothing more comes
        announced += drain_queue(published)

    assert json.loads(dead.body)["event_id"] == stray["event_id"]
    assert sorted(e["complaint_no"] for e in announced) == numbers
    assert {e["event_type"] for e in announced} == {"case_opened"}
    assert sorted(c["_id"] for c in db.cases.find({}, {"_id": 1})) == numbers
    count, size = (now - then for now, then in zip(batches("resolution"), before, strict=True))
    assert size == 26 and count <= 26 / 5, f"{size} events in {count} batches"
