"""R3.4, R3.5, R3.6: remedies checked against what the law grants (food safety:
refund plus ten times the price, at least 1,000 yuan; fraud: three times, at least
500) and the caps (goodwill above the law; never refund more than the price);
demands above the law are recognised (amounts, multiples of the price and mental
damages, as triage read the customer's demand: issue 16 finding 9) and the appeal route stated; a breach of the
caps needs a reason and an operations director or legal to approve it."""

from dataclasses import replace

import pytest
from marshmallow import ValidationError

from mallcare_common.contracts import COMPLAINT_CORRECTED, build_event, read_event
from resolution.domain import actions, compliance
from resolution.domain.errors import NoAuthority
from resolution.domain.step import Actor, Step


def remedies(*lines):
    return [{"type": t, "amount_fen": a, "note": None} for t, a in lines]


@pytest.fixture
def check(policy):
    def run(lines, legal_basis=None, price=None, demanded=None, mall_id="sh-xujiahui", demand=None):
        return compliance.check_remedies(
            remedies(*lines),
            legal_basis,
            price,
            demanded,
            policy.rules["statutory"],
            policy.section(mall_id, "caps"),
            demand=demand,
        )

    return run


# --- what the law grants -----------------------------------------------------------------------


def test_food_safety_grants_at_least_1000_yuan_plus_the_refund(check):
    got = check([("refund", 3990), ("cash_compensation", 100000)], "food_safety", price=3990)
    assert got["statutory_compensation_fen"] == 100000  # 10 x 39.90 = 399.00 < 1000.00
    assert got["statutory_total_fen"] == 103990  # the refund of 39.90 on top
    assert got["total_fen"] == 103990 and got["compensation_fen"] == 100000
    assert got["law"] == "《中华人民共和国食品安全法》第一百四十八条"
    assert got["breaches"] == [] and got["warnings"] == [] and got["demand_above_statutory"] is False


def test_food_safety_grants_ten_times_a_higher_price(check):
    got = check([("refund", 20000), ("cash_compensation", 200000)], "food_safety", price=20000)
    assert got["statutory_compensation_fen"] == 200000  # 10 x 200.00
    assert got["statutory_total_fen"] == 220000
    assert got["warnings"] == []


@pytest.mark.parametrize("price,granted", [(10000, 50000), (16667, 50001), (30000, 90000)])
def test_fraud_grants_three_times_at_least_500_yuan(check, price, granted):
    got = check([("refund", price), ("cash_compensation", granted)], "fraud", price=price)
    assert got["statutory_compensation_fen"] == granted
    assert got["statutory_total_fen"] == price + granted
    assert "消费者权益保护法" in got["law"] and got["breaches"] == [] and got["warnings"] == []


def test_without_a_legal_basis_the_law_grants_the_price_back(check):
    got = check([("refund", 3990), ("voucher", 3990)], price=3990, demanded=7980)
    assert got["statutory_compensation_fen"] == 0 and got["statutory_total_fen"] == 3990
    assert got["law"] is None and got["breaches"] == []


# --- demands and remedies against the law ------------------------------------------------------


def test_a_demand_above_what_the_law_grants_is_flagged(check):
    got = check([("refund", 3990), ("cash_compensation", 100000)], "food_safety", price=3990, demanded=500000)
    assert got["demand_above_statutory"] is True
    assert got["warnings"] == ["above the law: the customer's demand 5000.00 is above the 1039.90 the law grants"]
    assert got["breaches"] == []


def demand(multiple=None, amount_fen=None, price_fen=None, mental_damages=False):
    return {"multiple": multiple, "amount_fen": amount_fen, "price_fen": price_fen, "mental_damages": mental_damages}


FOOD_LAW, FRAUD_LAW = "《中华人民共和国食品安全法》第一百四十八条", "《中华人民共和国消费者权益保护法》第五十五条"


def test_twenty_times_a_50_yuan_price_is_above_food_safety_law_though_the_money_meets_its_minimum(check):
    # 要求20倍赔偿 on a 50-yuan yoghurt: 20 x 50 = 1,000 yuan is exactly the law's minimum, yet the law grants 10x
    got = check(
        [("refund", 5000), ("cash_compensation", 100000)],
        "food_safety",
        price=5000,
        demand=demand(multiple=20, price_fen=5000),
    )
    assert got["demand_above_statutory"] is True
    assert got["warnings"] == [f"above the law: the customer asks 20x the price; {FOOD_LAW} grants 10x"]


@pytest.mark.parametrize(
    "basis,multiple,above",
    [("food_safety", 10, False), ("food_safety", 10.5, True), ("fraud", 3, False), ("fraud", 4, True)],
)
def test_a_multiple_is_compared_with_the_statute_of_the_proposal(check, basis, multiple, above):
    got = check([("refund", 5000)], basis, price=5000, demand=demand(multiple=multiple))
    assert got["demand_above_statutory"] is above
    law, grants = (FOOD_LAW, "10x") if basis == "food_safety" else (FRAUD_LAW, "3x")
    assert (
        f"above the law: the customer asks {multiple:g}x the price; {law} grants {grants}" in got["warnings"]
    ) is above


def test_a_multiple_without_a_legal_basis_is_above_the_law_which_gives_the_price_back(check):
    got = check([("refund", 5000)], price=5000, demand=demand(multiple=3))
    assert got["warnings"] == [
        "above the law: the customer asks 3x the price; without a legal basis the law grants the price back only"
    ]


def test_the_amount_triage_read_counts_when_the_handler_names_none(check):
    got = check(
        [("refund", 5000), ("cash_compensation", 100000)], "food_safety", price=5000, demand=demand(amount_fen=500000)
    )
    assert got["warnings"] == ["above the law: the customer's demand 5000.00 is above the 1050.00 the law grants"]
    # the handler's own figure comes first
    got = check(
        [("refund", 5000), ("cash_compensation", 100000)],
        "food_safety",
        price=5000,
        demanded=105000,
        demand=demand(amount_fen=500000),
    )
    assert got["demand_above_statutory"] is False and got["warnings"] == []


def test_mental_damages_are_above_what_either_statute_grants(check):
    got = check(
        [("refund", 5000), ("cash_compensation", 50000)], "fraud", price=5000, demand=demand(mental_damages=True)
    )
    assert got["demand_above_statutory"] is True
    assert got["warnings"] == [
        f"above the law: the customer asks for mental damages (精神损失费); {FRAUD_LAW} grants none"
    ]


def test_a_demand_within_the_law_or_none_at_all_is_not_flagged(check):
    for read in (None, demand(), demand(multiple=10, amount_fen=100000, price_fen=5000)):
        got = check([("refund", 5000), ("cash_compensation", 100000)], "food_safety", price=5000, demand=read)
        assert got["demand_above_statutory"] is False and got["warnings"] == []


def test_a_demand_the_law_covers_is_not_flagged(check):
    got = check([("refund", 3990), ("cash_compensation", 100000)], "food_safety", price=3990, demanded=103990)
    assert got["demand_above_statutory"] is False and got["warnings"] == []


def test_remedies_below_what_the_law_grants_are_warned(check):
    got = check([("refund", 3990), ("voucher", 3990)], "food_safety", price=3990)
    assert got["breaches"] == []
    assert got["warnings"] == [
        "the remedies 79.80 are below the 1039.90 《中华人民共和国食品安全法》第一百四十八条 "
        "grants; the customer can claim the difference"
    ]


@pytest.mark.parametrize("cash,breach", [(130000, False), (130001, True)])
def test_compensation_above_the_law_plus_goodwill_is_a_breach(check, cash, breach):
    got = check([("refund", 3990), ("cash_compensation", cash)], "food_safety", price=3990)
    expected = [f"compensation {cash / 100:.2f} is above the 1000.00 the law grants plus the 300.00 goodwill cap"]
    assert got["breaches"] == (expected if breach else [])


def test_every_kind_of_compensation_counts_towards_the_cap(check):
    got = check(
        [
            ("voucher", 10000),
            ("cash_compensation", 10000),
            ("experience_compensation", 10001),
            ("repair", 50000),
            ("apology_letter", 0),
        ]
    )
    assert got["compensation_fen"] == 30001 and got["total_fen"] == 80001
    assert got["breaches"] == ["compensation 300.01 is above the 0.00 the law grants plus the 300.00 goodwill cap"]


@pytest.mark.parametrize("kind", ["refund", "exchange"])
def test_restoring_more_than_the_price_is_a_breach(check, kind):
    got = check([(kind, 5000)], price=3990)
    assert got["breaches"] == ["refund and exchange 50.00 are above the price 39.90"]
    assert check([(kind, 3991)], price=3990)["breaches"] == ["refund and exchange 39.91 are above the price 39.90"]
    assert check([(kind, 3990)], price=3990)["breaches"] == []


def test_refund_lines_together_above_the_price_are_a_breach(check):
    got = check([("refund", 3990), ("refund", 3990)], price=3990)
    assert got["breaches"]


def test_an_unknown_legal_basis_is_a_validation_error_on_legal_basis(check):
    with pytest.raises(ValidationError) as error:
        check([("refund", 100)], "lemon_law", price=100)
    assert list(error.value.messages) == ["legal_basis"]
    assert "lemon_law" in error.value.messages["legal_basis"][0]
    assert "food_safety, fraud" in error.value.messages["legal_basis"][0]


def test_a_legal_basis_without_the_price_is_a_validation_error_on_price(check):
    with pytest.raises(ValidationError) as error:
        check([("refund", 100)], "fraud")
    assert list(error.value.messages) == ["price"]
    assert "消费者权益保护法" in error.value.messages["price"][0]


# --- the caps on a proposal -------------------------------------------------------------------


def test_a_breach_without_an_override_reason_is_refused(proposed_case):
    case = proposed_case()
    case.act("reply", proposal_no=1, oral=True)
    case.object()
    with pytest.raises(ValidationError) as error:
        case.propose([("refund", "39.90"), ("voucher", "400")], price="39.90")
    messages = error.value.messages["remedies"]
    assert "compensation 400.00 is above the 0.00 the law grants plus the 300.00 goodwill cap" in messages
    assert "an override by operations_director or legal with a reason is needed" in messages
    assert len(case.case["proposals"]) == 1 and case.state == "escalated"


def test_an_override_needs_a_reason_and_an_operations_director_or_legal(proposed_case):
    case = proposed_case(
        [("refund", "39.90"), ("voucher", "400")],
        proposal={"price": "39.90", "cap_override_reason": "third complaint; goodwill for a VIP"},
    )
    proposal = case.proposal
    assert proposal["status"] == "awaiting_approval"
    assert proposal["cap_override_reason"] == "third complaint; goodwill for a VIP"
    assert proposal["needs"]["roles"] == ["legal", "operations_director"]
    assert proposal["approver_role"] == "operations_director"
    for by in ("E3011", "E3091"):  # within their limits, but not allowed to override
        with pytest.raises(NoAuthority, match="only legal or operations_director may approve"):
            case.act("approval", by=by, proposal_no=1)
    step = case.act("approval", by="E3901", proposal_no=1)
    assert case.proposal["status"] == "approved"
    assert step.events[0]["payload"]["cap_override"] is True


def test_legal_may_approve_an_override_too(proposed_case):
    case = proposed_case([("voucher", "400")], proposal={"cap_override_reason": "media exposure"})
    case.act("approval", by="L9001", proposal_no=1)
    assert case.proposal["approvals"] == [{"by": "L9001", "role": "legal", "at": case.now}]


def test_an_override_reason_without_a_breach_is_not_kept(proposed_case):
    case = proposed_case([("voucher", "100")], proposal={"cap_override_reason": "just in case"})
    assert case.proposal["cap_override_reason"] is None and case.proposal["status"] == "approved"


def test_the_statutory_amount_is_proposed_without_override(proposed_case):
    case = proposed_case(
        [("refund", "39.90"), ("cash_compensation", "1000")],
        by="E3011",
        proposal={"legal_basis": "food_safety", "price": "39.90", "demanded_amount": "1039.90"},
    )
    assert case.proposal["status"] == "approved" and case.proposal["compliance"]["breaches"] == []
    assert case.proposal["compliance"]["statutory_total_fen"] == 103990


def test_the_goodwill_cap_of_gz_tianhe_is_200(check, open_case):
    assert check([("voucher", 25000)], mall_id="gz-tianhe")["breaches"] == [
        "compensation 250.00 is above the 0.00 the law grants plus the 200.00 goodwill cap"
    ]
    assert check([("voucher", 25000)], mall_id="sh-xujiahui")["breaches"] == []
    case = open_case(mall_id="gz-tianhe", owner_id="E5001")
    case.investigate(by="E5001")
    with pytest.raises(ValidationError, match="200.00 goodwill cap"):
        case.propose([("voucher", "250")], by="E5011")


def test_a_demand_above_the_law_is_answered_with_the_appeal_route(proposed_case, policy):
    case = proposed_case([("refund", "39.90")], proposal={"price": "39.90", "demanded_amount": "399"})
    assert case.proposal["compliance"]["demand_above_statutory"] is True
    step = case.reply()
    assert case.proposal["sent"]["appeal_procedure"] == policy.customer_text("appeal_procedure")
    assert "12315" in case.proposal["sent"]["appeal_procedure"]
    assert step.events[0]["payload"]["appeal_stated"] is True


def test_the_appeal_text_the_customer_gets_states_the_re_review_deadline_in_force(open_case, policy):
    """Issue 16 finding 10: with re_review at 4 hours the reply (and the spot answer) say 4 hours."""
    four_hours = replace(
        policy, rules={**policy.rules, "deadlines": {**policy.rules["deadlines"], "re_review": {"hours": 4}}}
    )
    case = open_case()
    case.policy = four_hours
    case.investigate(), case.propose(decision="partly_upheld")
    step = case.reply()
    assert "我们将在 4 小时内安排上一级负责人复核" in case.proposal["sent"]["appeal_procedure"]
    assert "2 小时" not in case.proposal["sent"]["appeal_procedure"]
    assert step.events[0]["payload"]["appeal_stated"] is True
    spot = open_case()
    spot.policy = four_hours
    spot.act(
        "spot-resolution",
        by="D3001",
        decision="partly_upheld",
        price="39.90",
        reasons=["half refunded"],
        remedies=[{"type": "refund", "amount": "20"}],
        summary="half refunded at the desk",
    )
    assert "4 小时内" in spot.proposal["sent"]["appeal_procedure"]


def test_twenty_times_answered_with_what_the_law_grants_states_the_appeal_route(proposed_case, policy):
    case = proposed_case(
        [("refund", "50"), ("cash_compensation", "1000")],
        by="E3901",
        proposal={"legal_basis": "food_safety", "price": "50"},
        category="product.food_safety",
        demand=demand(multiple=20, price_fen=5000),
    )
    step = case.reply(by="E3901")
    assert case.proposal["sent"]["appeal_procedure"] == policy.customer_text("appeal_procedure")
    assert step.events[0]["payload"]["appeal_stated"] is True


def test_an_upheld_answer_within_the_law_states_no_appeal(proposed_case):
    case = proposed_case([("refund", "39.90")], proposal={"price": "39.90", "demanded_amount": "39.90"})
    case.reply()
    assert case.proposal["sent"]["appeal_procedure"] is None


def test_a_partly_upheld_answer_states_the_appeal_route(proposed_case):
    case = proposed_case([("refund", "20")], proposal={"decision": "partly_upheld", "price": "39.90"})
    step = case.reply()
    assert "12315" in case.proposal["sent"]["appeal_procedure"]
    assert step.events[0]["payload"]["appeal_stated"] is True


def test_check_proposal_tells_the_handler_in_yuan_before_proposing(open_case, policy):
    case = open_case()
    request = {
        "remedies": remedies(("refund", 3990), ("cash_compensation", 100000)),
        "legal_basis": "food_safety",
        "price_fen": 3990,
        "demanded_fen": 500000,
    }
    got = actions.check_proposal(case.case, request, Actor("E3501", "handler"), policy)
    assert got["total"] == "1039.90" and got["statutory_total"] == "1039.90"
    assert got["statutory_compensation"] == "1000.00" and got["demand_above_statutory"] is True
    assert got["approver_role"] == "supervisor" and got["you_may_approve"] is False


def test_the_case_keeps_the_demand_triage_read_and_the_check_compares_it(open_case, policy):
    case = open_case(category="product.food_safety", risk_level="high", demand=demand(multiple=20, price_fen=5000))
    assert case.case["demand"]["multiple"] == 20
    request = {
        "remedies": remedies(("refund", 5000), ("cash_compensation", 100000)),
        "legal_basis": "food_safety",
        "price_fen": 5000,
    }
    got = actions.check_proposal(case.case, request, Actor("E3501", "handler"), policy)
    assert got["demand_above_statutory"] is True
    assert got["warnings"] == [f"above the law: the customer asks 20x the price; {FOOD_LAW} grants 10x"]


@pytest.mark.parametrize("carried,kept", [(demand(multiple=20, price_fen=5000), 20), (None, 3)])
def test_a_correction_carries_the_demand_to_the_case_or_leaves_it_as_it_was(open_case, policy, carried, kept):
    case = open_case(demand=demand(multiple=3))
    corrected = build_event(
        COMPLAINT_CORRECTED,
        mall_id="sh-xujiahui",
        complaint_no=case.case["_id"],
        occurred_at=case.now,
        payload={
            **{k: case.case[k] for k in ("category", "risk_level", "urgency", "department", "owner_id")},
            "category_source": "corrected",
            "risk_reasons": [],
            "review_meeting": False,
            "first_response_due_at": case.case["first_response_due_at"].isoformat(),
            "resolution_due_at": case.case["resolution_due_at"].isoformat(),
            "policy_version": "test",
            "field": "category",
            "old": "product.quality_defect",
            "new": "product.quality_defect",
            "by": "E3901",
            "reason": "reread",
            "demand": carried,
        },
    )
    step = Step(case.case, Actor("triage", "service"), case.now)
    actions.triage_changed(step, read_event(corrected, COMPLAINT_CORRECTED), policy)
    assert {**case.case, **step.changes}["demand"]["multiple"] == kept


def test_goodwill_paid_in_an_earlier_round_counts_towards_the_cap(proposed_case):
    case = proposed_case([("voucher", "300")], by="E3011")
    case.reply(by="E3011"), case.accept(by="E3011"), case.carry_out(), case.resolve()
    case.act("reopening", by="feedback", reason="customer dissatisfied (score 2)")
    with pytest.raises(ValidationError):
        case.propose([("voucher", "300")], by="E3011")


@pytest.mark.parametrize("decision,appeal", [("upheld", False), ("partly_upheld", True)])
def test_an_answer_on_the_spot_states_the_appeal_route_when_it_differs(open_case, decision, appeal):
    case = open_case(category="service.bad_attitude")
    case.act(
        "spot-resolution",
        decision=decision,
        reasons=["cashier was rude"],
        summary="apology at the desk",
        remedies=[{"type": "apology_letter", "amount": 0}],
    )
    sent = case.proposal["sent"]
    assert sent["oral"] is True
    assert (sent["appeal_procedure"] is not None) is appeal


@pytest.mark.parametrize("amount", ["1.005", "39.999", 0.001])
def test_amounts_with_more_than_two_decimals_are_refused_not_rounded(open_case, amount):
    case = open_case()
    case.investigate()
    with pytest.raises(ValidationError) as refused:
        case.propose([("refund", amount)])
    assert refused.value.messages == {"remedies": {0: {"amount": ["At most two decimals (fen)."]}}}
