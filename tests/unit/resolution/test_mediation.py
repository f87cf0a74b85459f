"""R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁. A proposal
records the bases its decision rests on (validated), and a case can be referred to third-party
mediation (12315, a consumer association, arbitration) with the referral, its outcome and their
dates on the timeline and in events. Pure rules: the domain's actions without a store or broker."""

from datetime import timedelta

import pytest
from marshmallow import ValidationError

from resolution.domain.errors import StateConflict

SEED = "根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁"


def test_a_proposal_records_the_bases_it_rests_on(proposed_case):
    """R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁 — "按售价退款，
    另送50元券平息": legal liability for the refund, a compromise for the voucher."""
    case = proposed_case(
        [("refund", "39.90"), ("voucher", "50")],
        by="E3011",
        proposal={"bases": ["legal_liability", "compromise"]},
    )
    assert case.proposal["bases"] == ["legal_liability", "compromise"]


def test_an_unknown_basis_is_refused_by_field(proposed_case):
    """R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁 — only the six."""
    with pytest.raises(ValidationError) as refused:
        proposed_case(proposal={"bases": ["goodwill", "fairness"]})
    assert list(refused.value.messages["bases"]) == [0]


def test_a_case_referred_to_12315_keeps_the_referral_its_outcome_and_their_dates(proposed_case):
    """R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁 — the customer
    objected and called 12315 yesterday (工单号 SH12315-2026-88121); the hotline's mediation ends
    in a settlement of 200 yuan three days later; both with their own dates, on the timeline and
    in the events."""
    case = proposed_case([("refund", "39.90")], by="E3011")
    case.reply(by="E3011"), case.object(by="E3011")
    called = case.now - timedelta(days=1)
    case.act("mediation", by="E3011", mediator="12315", reference="SH12315-2026-88121", referred_at=called.isoformat())
    [referral] = case.case["referrals"]
    assert (referral["mediator"], referral["referred_at"], referral["outcome"]) == ("12315", called, None)
    with pytest.raises(StateConflict, match="no outcome yet"):
        case.act("mediation", by="E3011", mediator="12315")
    decided = case.later(days=3).now
    case.act(
        "mediation-outcome",
        by="E3011",
        referral_id=1,
        result="settled",
        summary="调解达成：退款并补偿200元",
        amount="200",
    )
    outcome = case.case["referrals"][0]["outcome"]
    assert (outcome["result"], outcome["decided_at"], outcome["amount_fen"]) == ("settled", decided, 20000)
    assert [e["action"] for e in case.case["timeline"][-2:]] == ["referred", "mediation_concluded"]
    referred, concluded = [e for e in case.events if e["event_type"] in ("case_referred", "mediation_concluded")]
    assert referred["payload"]["referred_at"] == called.isoformat()
    assert (concluded["payload"]["result"], concluded["payload"]["decided_at"]) == ("settled", decided.isoformat())
    with pytest.raises(StateConflict, match="has its outcome already"):
        case.act("mediation-outcome", by="E3011", referral_id=1, result="award", summary="again")


def test_dates_in_the_future_or_an_outcome_before_its_referral_are_refused(open_case):
    """R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁 — the dates are
    facts: not tomorrow's, and no outcome before the case went to the consumer association."""
    case = open_case()
    with pytest.raises(ValidationError) as refused:
        case.act(
            "mediation",
            by="E3501",
            mediator="consumer_association",
            referred_at=(case.now + timedelta(days=1)).isoformat(),
        )
    assert "referred_at" in refused.value.messages
    case.act("mediation", by="E3501", mediator="consumer_association")
    with pytest.raises(ValidationError) as refused:
        case.act(
            "mediation-outcome",
            by="E3501",
            referral_id=1,
            result="not_settled",
            summary="消协调解未成",
            decided_at=(case.now - timedelta(days=2)).isoformat(),
        )
    assert "decided_at" in refused.value.messages
    with pytest.raises(ValidationError) as refused:
        case.act("mediation", by="E3501", mediator="court")
    assert "mediator" in refused.value.messages


def test_a_closed_case_can_still_be_referred_to_arbitration(proposed_case):
    """R7.9, seed 001: 根据法律责任、投诉人的期望、妥协折中、市场效应、公正的观念和必要的第三方仲裁 — after we
    closed it the customer applied for arbitration: recorded all the same."""
    case = proposed_case([("refund", "39.90")], by="E3011")
    case.reply(by="E3011"), case.accept(by="E3011"), case.carry_out(), case.resolve()
    case.act("closure", by="E3011", reason="顾客回访满意")
    case.act("mediation", by="E3011", mediator="arbitration", note="顾客申请仲裁")
    assert case.state == "closed" and case.case["referrals"][0]["mediator"] == "arbitration"
