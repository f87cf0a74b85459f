"""R3.5, R3.6, R2.4, R4.2: authority limits. A handler decides remedies up to the
limit on their own, above it a supervisor approves; a high-risk complaint needs the
operations director or legal whatever the amount; after an objection the case works
one level up; per-mall limits; who may close, reopen and decide a review meeting."""

import pytest
from marshmallow import ValidationError

from resolution.domain import authority
from resolution.domain.errors import NoAuthority, StateConflict

FOOD_SAFETY = {"legal_basis": "food_safety", "price": "39.90"}
STATUTORY = [("refund", "39.90"), ("cash_compensation", "1000")]  # 1039.90


def test_a_handler_decides_within_the_limit_at_once(proposed_case):
    case = proposed_case([("refund", "39.90"), ("voucher", "39.90")], by="E3501")
    proposal = case.proposal
    assert proposal["compliance"]["total_fen"] == 7980
    assert proposal["status"] == "approved"
    assert proposal["approvals"] == [{"by": "E3501", "role": "handler", "at": case.now}]
    assert case.event_types()[-2:] == ["investigation_noted", "proposal_approved"]


def test_above_the_limit_a_supervisor_must_approve(proposed_case):
    case = proposed_case(STATUTORY, by="E3501", proposal=FOOD_SAFETY)
    assert case.proposal["compliance"]["total_fen"] == 103990
    assert case.proposal["status"] == "awaiting_approval" and case.proposal["approvals"] == []
    assert case.proposal["approver_role"] == "supervisor"
    assert "proposal_approved" not in case.event_types()
    with pytest.raises(NoAuthority) as error:
        case.act("approval", by="E3002", proposal_no=1)
    assert str(error.value) == "E3002 (handler) may not approve: the total 1039.90 is above the handler's limit 200.00"
    assert case.proposal["status"] == "awaiting_approval"
    step = case.act("approval", by="E3011", proposal_no=1)
    assert case.proposal["status"] == "approved"
    assert case.proposal["approvals"] == [{"by": "E3011", "role": "supervisor", "at": case.now}]
    assert step.events[0]["payload"] == {
        "proposal_no": 1,
        "approver_role": "supervisor",
        "total_fen": 103990,
        "cap_override": False,
        "by": "E3011",
    }


def test_the_limit_is_inclusive(proposed_case):
    assert proposed_case([("voucher", "200")]).proposal["status"] == "approved"
    assert proposed_case([("voucher", "200.01")]).proposal["status"] == "awaiting_approval"


def test_a_supervisor_decides_within_their_own_limit(proposed_case):
    assert proposed_case(STATUTORY, by="E3011", proposal=FOOD_SAFETY).proposal["status"] == "approved"


def test_a_high_risk_case_needs_the_operations_director_or_legal_even_for_a_small_amount(proposed_case):
    for proposer in ("E3501", "E3011", "E3091"):
        case = proposed_case([("refund", "10")], by=proposer, risk_level="high")
        assert case.proposal["status"] == "awaiting_approval"
        assert case.proposal["approver_role"] == "operations_director"
    for approver in ("E3011", "E3091", "R7001"):
        with pytest.raises(NoAuthority, match="only legal or operations_director may approve this case"):
            case.act("approval", by=approver, proposal_no=1)
    case.act("approval", by="L9001", proposal_no=1)
    assert case.proposal["status"] == "approved"
    assert proposed_case([("refund", "10")], by="E3901", risk_level="high").proposal["status"] == "approved"


def test_after_an_objection_the_case_works_at_supervisor_level(proposed_case):
    case = proposed_case([("refund", "10")])
    case.reply(), case.object()
    assert case.case["level"] == "supervisor"
    case.propose([("refund", "10")], by="E3501")  # well within the handler's limit
    assert case.proposal["status"] == "awaiting_approval"
    assert case.proposal["approver_role"] == "supervisor"
    with pytest.raises(NoAuthority, match="the case is escalated above the handler's level"):
        case.act("approval", by="E3002", proposal_no=2)
    case.act("approval", by="E3011", proposal_no=2)
    assert case.proposal["status"] == "approved"


def test_an_escalated_proposal_by_the_supervisor_is_approved_at_once(proposed_case):
    case = proposed_case([("refund", "10")])
    case.reply(), case.object()
    case.propose([("refund", "10")], by="E3011")
    assert case.proposal["status"] == "approved" and case.proposal["level"] == "supervisor"


def test_a_manual_escalation_raises_the_level_without_changing_the_state(open_case):
    case = open_case()
    case.investigate()
    step = case.act("escalation", reason="manual", note="customer asks for the manager")
    assert case.state == "investigating" and case.case["level"] == "supervisor"
    assert [e["action"] for e in step.entries] == ["escalated", "note"]
    assert case.case["escalations"][0]["to_staff_id"] == "E3011"
    assert case.case["escalations"][0]["re_review_due_at"] is None


def test_next_level_walks_the_ladder_and_stays_at_the_top(policy):
    walk, level = [], "handler"
    for _ in range(5):
        level = authority.next_level(level, "sh-xujiahui", policy)
        walk.append(level)
    assert walk == ["supervisor", "store_manager", "operations_director", "operations_director", "operations_director"]
    assert authority.next_level("desk_staff", "sh-xujiahui", policy) == "supervisor"
    assert authority.next_level("regional_manager", "sh-xujiahui", policy) == "operations_director"
    assert authority.next_level("legal", "sh-xujiahui", policy) == "legal"


def test_escalation_by_hand_climbs_to_the_top_and_stays(open_case):
    case = open_case()
    case.investigate()
    for _ in range(4):
        case.act("escalation", by="E3011", reason="breach")
    assert [(e["from_role"], e["to_role"], e["to_staff_id"]) for e in case.case["escalations"]] == [
        ("handler", "supervisor", "E3011"),
        ("supervisor", "store_manager", "E3091"),
        ("store_manager", "operations_director", "E3901"),
        ("operations_director", "operations_director", "E3901"),
    ]


@pytest.mark.parametrize(
    "mall_id,handler,status,approver_role",
    [
        ("gz-tianhe", "E5001", "awaiting_approval", "supervisor"),
        ("sh-xujiahui", "E3501", "approved", "handler"),
    ],
)
def test_the_handler_limit_is_100_at_gz_tianhe_and_200_at_sh_xujiahui(
    proposed_case, mall_id, handler, status, approver_role
):
    case = proposed_case([("refund", "150")], by=handler, mall_id=mall_id, owner_id=handler)
    assert case.proposal["status"] == status
    assert case.proposal["approver_role"] == approver_role


def test_the_lowest_approver_by_amount(policy):
    def lowest(total_fen, risk="low", override=False, level="handler"):
        needs = authority.approval_needs(total_fen, risk, override, level, "sh-xujiahui", policy)
        return authority.lowest_approver(needs, "sh-xujiahui", policy)

    assert lowest(10000) == "desk_staff"
    assert lowest(20000) == "handler"
    assert lowest(200000) == "supervisor"
    assert lowest(200001) == "store_manager"
    assert lowest(1000001) == "operations_director"
    assert lowest(5000001) == "legal"
    assert lowest(10000001) is None
    assert lowest(100, level="store_manager") == "store_manager"
    assert lowest(100, risk="high") == "operations_director"
    assert lowest(100, override=True) == "operations_director"


def test_refusals_give_every_reason(policy):
    needs = authority.approval_needs(300000, "high", False, "supervisor", "sh-xujiahui", policy)
    assert authority.refusals("handler", needs, "sh-xujiahui", policy) == [
        "the total 3000.00 is above the handler's limit 200.00",
        "the case is escalated above the handler's level",
        "only legal or operations_director may approve this case",
    ]
    assert authority.refusals("operations_director", needs, "sh-xujiahui", policy) == []


def test_spot_resolution_is_within_the_persons_own_limit(open_case):
    spot = dict(
        decision="upheld", reasons=["r"], summary="voucher at the desk", remedies=[{"type": "voucher", "amount": "150"}]
    )
    case = open_case(category="service.bad_attitude")
    with pytest.raises(NoAuthority, match=r"D3001 \(desk_staff\) may not settle this on the spot: the total 150.00"):
        case.act("spot-resolution", by="D3001", **spot)
    assert case.state == "open"
    case.act("spot-resolution", by="E3501", **spot)
    assert case.state == "resolved"


# --- who may close, reopen and decide a review meeting ------------------------------------------


@pytest.fixture
def resolved_case(proposed_case):
    case = proposed_case()
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    return case


def test_a_handler_may_not_close_or_reopen(resolved_case):
    with pytest.raises(NoAuthority, match="a handler may not close a case"):
        resolved_case.act("closure", by="E3501", reason="done")
    assert resolved_case.state == "resolved"
    with pytest.raises(NoAuthority, match="a handler may not reopen a case"):
        resolved_case.act("reopening", by="E3501", reason="again")
    assert resolved_case.state == "resolved" and resolved_case.case["round"] == 1


@pytest.mark.parametrize("by", ["E3011", "E3091", "E3901", "L9001"])
def test_a_supervisor_and_above_close_with_a_reason(resolved_case, by):
    step = resolved_case.act("closure", by=by, reason="customer unreachable after three calls")
    assert resolved_case.state == "closed"
    assert resolved_case.case["closure"]["reason"] == "customer unreachable after three calls"
    assert step.events[0]["payload"] == {
        "reason": "customer unreachable after three calls",
        "without_answer": False,
        "by": by,
    }


def test_a_supervisor_reopens_and_feedback_closes(resolved_case):
    resolved_case.act("closure", by="feedback", reason="customer satisfied (score 5)")
    assert resolved_case.state == "closed"
    resolved_case.act("reopening", by="E3011", reason="customer called again")
    assert resolved_case.state == "reopened"


def test_only_the_operations_director_decides_a_review_meeting(open_case):
    case = open_case(
        review_meeting=True, departments_involved=["customer_service", "finance"], department="operations_director"
    )
    assert case.case["review_meeting"]["convenor_id"] == "E3901"
    for by in ("E3501", "E3011", "E3091", "L9001"):
        with pytest.raises(NoAuthority, match="may not decide a review meeting"):
            case.act("review-meeting", by=by, responsible_department="finance", decision="finance", attendees=["E3901"])
    assert case.case["review_meeting"]["decided_at"] is None
    step = case.act(
        "review-meeting",
        by="E3901",
        responsible_department="finance",
        decision="the refund delay is finance's",
        attendees=["E3901", "E3011"],
    )
    assert case.case["department"] == "finance" and case.case["review_meeting"]["decided_by"] == "E3901"
    assert step.events[0]["payload"]["responsible_department"] == "finance"
    assert step.events[0]["payload"]["departments_involved"] == ["customer_service", "finance"]


def test_approval_needs_are_worked_out_again_when_the_case_was_regraded_meanwhile(proposed_case):
    """A proposal waiting for a supervisor on a case triage has since graded high risk
    now needs the operations director or legal (R3.5)."""
    case = proposed_case(remedies=(("refund", "39.90"), ("voucher", "250")))
    assert case.proposal["status"] == "awaiting_approval" and case.proposal["approver_role"] == "supervisor"
    case.case = {**case.case, "risk_level": "high"}  # what a complaint_corrected event does
    with pytest.raises(NoAuthority, match="only legal or operations_director may approve"):
        case.act("approval", by="E3011", proposal_no=1)
    case.act("approval", by="E3901", proposal_no=1)
    assert case.proposal["status"] == "approved" and case.proposal["approver_role"] == "operations_director"


def test_feedback_cannot_close_a_case_that_is_not_resolved(proposed_case):
    case = proposed_case()
    case.reply(), case.accept(), case.carry_out(), case.resolve()
    case.act("reopening", by="feedback", reason="customer dissatisfied (score 2)")
    with pytest.raises(StateConflict, match="closed only after it is resolved"):
        case.act("closure", by="feedback", reason="customer satisfied (score 5)")
    with pytest.raises(NoAuthority):
        case.act("closure", by="E3501", reason="a handler may not close")


def test_the_review_meeting_names_the_new_owner(open_case):
    case = open_case(
        review_meeting=True,
        departments_involved=["finance", "procurement_qc"],
        department="operations_director",
        owner_id="E3901",
    )
    case.act(
        "review-meeting",
        by="E3901",
        responsible_department="procurement_qc",
        owner_id="E3101",
        decision="QC owns the batch",
        attendees=["E3101", "E3301"],
    )
    assert (case.case["department"], case.case["owner_id"]) == ("procurement_qc", "E3101")
    other = open_case(review_meeting=True, departments_involved=["finance", "procurement_qc"])
    with pytest.raises(ValidationError, match="E4101"):
        other.act(
            "review-meeting",
            by="E3901",
            responsible_department="procurement_qc",
            owner_id="E4101",
            decision="x",
            attendees=["E3101"],
        )
