"""R7.7, seed 002: 高风险投诉需由运营/法务负责人介入. A high-risk case is led, not only approved,
by the mall's operations or legal lead (the policy's high_risk_lead: harm to a person goes to
legal, the rest to operations): the lead is the case's accountable person beside its owner,
is told by the case_lead_assigned event, and every answer to the customer waits for their
sign-off. Pure rules: the domain's actions on a case without a store or a broker."""

import copy

import pytest
import yaml
from marshmallow import ValidationError

from mallcare_common.contracts import COMPLAINT_CORRECTED, build_event, read_event
from resolution.domain import actions
from resolution.domain.errors import NoAuthority, StateConflict
from resolution.domain.step import Actor, Step
from resolution.policy import load_policy
from tests.conftest import POLICY_DIR

SEED = "高风险投诉需由运营/法务负责人介入"


def lead_events(case):
    return [e["payload"] for e in case.events if e["event_type"] == "case_lead_assigned"]


def test_food_poisoning_is_led_by_the_legal_lead_who_is_told_at_once(open_case):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — "吃了你们的熟食上吐下泻，去了急诊" is
    high risk for safety: the legal lead takes it, beside the handler who works it."""
    case = open_case(category="product.quality_defect", risk_level="high", risk_reasons=("safety", "anger"))
    assert case.case["lead"]["staff_id"] == "L9001" and case.case["lead"]["role"] == "legal"
    assert case.case["lead"]["because"] == ["safety"]
    assert case.case["owner_id"] == "E3501"  # the handler still works it
    assert lead_events(case) == [
        {
            "lead_id": "L9001",
            "lead_role": "legal",
            "because": ["safety"],
            "previous_lead_id": None,
            "category": "product.quality_defect",
            "owner_id": "E3501",
        }
    ]
    assert [e["action"] for e in case.case["timeline"]] == ["opened", "lead_assigned"]


def test_a_threat_to_go_to_the_press_is_led_by_the_malls_operations_lead(open_case):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — "不给说法我就发抖音曝光" is high risk for
    media exposure: the mall's operations director leads it (each mall its own)."""
    shanghai = open_case(category="service.bad_attitude", risk_level="high", risk_reasons=("media_exposure",))
    beijing = open_case(
        mall_id="bj-chaoyang",
        category="service.bad_attitude",
        risk_level="high",
        risk_reasons=("media_exposure",),
        owner_id="E4001",
        department="customer_service",
    )
    assert (shanghai.case["lead"]["staff_id"], shanghai.case["lead"]["role"]) == ("E3901", "operations_director")
    assert beijing.case["lead"]["staff_id"] == "E4901"


def test_a_low_or_medium_risk_case_has_no_lead_and_nothing_to_sign_off(open_case):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — only high risk: a mouldy-strawberries
    refund at medium risk is answered once approved, as before."""
    case = open_case(risk_level="medium", risk_reasons=("anger",))
    assert case.case["lead"] is None and lead_events(case) == []
    case.investigate(), case.propose(by="E3011")
    case.reply(by="E3011")
    assert case.proposal["status"] == "sent"


def test_no_answer_reaches_the_customer_until_the_lead_signs_it_off(open_case):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — "孩子喝了你们的酸奶住院了" (safety): approval
    is not enough; the reply is refused (409) until the legal lead signs the answer off, and only
    the lead may sign it; the sign-off is on the timeline."""
    case = open_case(category="product.expired", risk_level="high", risk_reasons=("safety",))
    case.investigate()
    case.propose([("refund", "12.80")])
    case.act("approval", by="E3901", proposal_no=1)  # operations director approves: a high-risk approver
    with pytest.raises(StateConflict, match=r"led by 蒋律师 \(L9001, legal\): proposal 1 .*only once they sign it off"):
        case.reply()
    for someone in ("E3501", "E3901"):  # the handler, and an approver who is not the lead
        with pytest.raises(NoAuthority, match="led by L9001"):
            case.act("sign-off", by=someone, proposal_no=1)
    case.act("sign-off", by="L9001", proposal_no=1, note="已核对食品安全法第一百四十八条")
    assert case.proposal["signed_off"]["by"] == "L9001"
    assert case.case["timeline"][-1]["action"] == "signed_off"
    assert case.case["timeline"][-1]["detail"]["lead_id"] == "L9001"
    with pytest.raises(StateConflict, match="signed off already"):
        case.act("sign-off", by="L9001", proposal_no=1)
    case.reply()
    assert case.proposal["status"] == "sent"


def test_a_new_proposal_after_an_objection_needs_a_new_sign_off(open_case):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — every answer, not only the first."""
    case = open_case(category="service.bad_attitude", risk_level="high", risk_reasons=("media_exposure",))
    case.investigate(by="E3901")
    case.propose([("apology_letter", "0")], by="E3901", decision="partly_upheld")
    case.act("sign-off", by="E3901", proposal_no=1)
    case.reply(by="E3901")
    case.object(by="E3901")
    case.propose([("voucher", "100")], by="E3901")
    with pytest.raises(StateConflict, match="sign it off"):
        case.reply(by="E3901")


def corrected(case, risk_level, reasons, category=None):
    payload = {
        **{k: case.case[k] for k in ("category", "risk_level", "urgency", "department", "owner_id")},
        "category": category or case.case["category"],
        "risk_level": risk_level,
        "category_source": "corrected",
        "risk_reasons": [{"reason": r, "level": risk_level, "detail": r} for r in reasons],
        "review_meeting": False,
        "first_response_due_at": case.case["first_response_due_at"].isoformat(),
        "resolution_due_at": case.case["resolution_due_at"].isoformat(),
        "policy_version": "test",
        "field": "risk_level",
        "old": case.case["risk_level"],
        "new": risk_level,
        "by": "E3011",
        "reason": "顾客说要找记者",
        "demand": None,
    }
    event = build_event(
        COMPLAINT_CORRECTED, mall_id="sh-xujiahui", complaint_no=case.case["_id"], occurred_at=case.now, payload=payload
    )
    step = Step(case.case, Actor("triage", "service"), case.now)
    actions.triage_changed(step, read_event(event, COMPLAINT_CORRECTED), case.policy)
    case.case = {**case.case, **step.changes, "timeline": [*case.case["timeline"], *step.entries]}
    case.events.extend(step.events)


def test_a_correction_that_raises_the_risk_brings_in_the_lead_and_a_harm_found_later_the_legal_one(open_case):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — a supervisor raises a rude-staff complaint
    to high ("顾客说要找记者"): the operations lead takes it; when it turns out the customer was
    hurt, the legal lead takes over, and the handover is on the timeline."""
    case = open_case(category="service.bad_attitude", risk_level="medium", risk_reasons=("anger",))
    corrected(case, "high", ["anger", "media_exposure"])
    assert case.case["lead"]["staff_id"] == "E3901"
    corrected(case, "high", ["media_exposure", "safety"])
    assert case.case["lead"]["staff_id"] == "L9001"
    assert [(e["lead_id"], e["previous_lead_id"]) for e in lead_events(case)] == [("E3901", None), ("L9001", "E3901")]
    corrected(case, "high", ["media_exposure", "safety"])  # the same grading again: no new lead
    assert len(lead_events(case)) == 2


def test_a_policy_that_would_settle_high_risk_at_the_desk_is_refused(malls):
    """R7.7, seed 002: 高风险投诉需由运营/法务负责人介入 — the desk's spot settlement gives the answer
    at once, so it can never include high risk (its lead signs off first)."""
    data = yaml.safe_load((POLICY_DIR / "resolution.yml").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["spot"]["risk_levels"] = ["low", "high"]
    with pytest.raises(ValidationError) as refused:
        load_policy(broken, malls)
    assert "signs off" in str(refused.value.messages["spot"])
    broken = copy.deepcopy(data)
    broken["high_risk_lead"]["rules"][0]["role"] = "lawyer"
    with pytest.raises(ValidationError) as refused:
        load_policy(broken, malls)
    assert refused.value.messages["high_risk_lead"] == ["Unknown role: lawyer."]
