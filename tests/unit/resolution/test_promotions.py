"""R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》. Goods sold on promotion, at clearance or
as a free gift follow the regulation's rules in the compliance check, beside the statutes: the
handler names the kind of sale on the proposal, and each rule of that kind (its text as the
regulation words it, the remedies it calls for) is checked. Pure rules: no store, no broker."""

import copy

import pytest
import yaml
from marshmallow import ValidationError

from resolution.domain import actions
from resolution.domain.step import Actor
from resolution.policy import load_policy
from tests.conftest import POLICY_DIR

NO_REFUSAL = "零售商不得以促销为由拒绝退换货或者为消费者退换货设置障碍"
REGULATION = "《零售商促销行为管理办法》（商务部令2006年第18号）"


def check(case, policy, decision, remedies, promotion, price="19.90"):
    request = {
        "decision": decision,
        "remedies": [{"type": t, "amount_fen": a, "note": None} for t, a in remedies],
        "price_fen": round(float(price) * 100),
        "promotion": promotion,
    }
    return actions.check_proposal(case.case, request, Actor("E3501", "handler"), policy)


def test_a_spoilt_yoghurt_bought_at_half_price_is_still_refunded_or_exchanged(open_case, policy):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — "买一送一的酸奶打开就是坏的，店员说特价商品不退不换":
    a voucher instead of a refund or exchange is a breach, quoting the regulation; a refund passes."""
    case = open_case(category="product.quality_defect")
    refused = check(case, policy, "upheld", [("voucher", 1990)], "promotion")
    assert refused["promotion"]["regulation"] == REGULATION and refused["promotion"]["kind"] == "promotion"
    assert [r["rule"] for r in refused["promotion"]["rules"]] == ["no_refusal", "after_sales_kept"]
    assert any(NO_REFUSAL in b for b in refused["breaches"])
    assert refused["you_may_approve"] is False
    refunded = check(case, policy, "upheld", [("refund", 1990)], "promotion")
    assert refunded["breaches"] == [] and refunded["you_may_approve"] is True


def test_clearance_goods_not_upheld_carry_the_rule_as_a_warning(open_case, policy):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — "clearance jacket, the zip broke after
    one wear, they said clearance is final sale": not upheld is allowed (the zip was torn by
    force, say) but the answer is warned that the sale itself is no reason."""
    case = open_case(category="product.quality_defect")
    got = check(case, policy, "not_upheld", [], "clearance")
    assert got["breaches"] == []
    assert any("no reason to refuse" in w and NO_REFUSAL in w for w in got["warnings"])


def test_a_free_gift_is_repaired_like_a_bought_one(open_case, policy):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — "满赠的保温杯漏水": a gift's after-sales
    service is not reduced; repairing it meets the rule."""
    case = open_case(category="product.quality_defect")
    assert check(case, policy, "upheld", [("repair", 0)], "gift", price="0")["breaches"] == []
    assert check(case, policy, "upheld", [("apology_letter", 0)], "gift", price="0")["breaches"] != []


def test_goods_not_on_promotion_meet_no_promotion_rule_and_an_unknown_kind_is_refused(open_case, policy):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — only when the handler names the sale."""
    case = open_case(category="product.quality_defect")
    assert check(case, policy, "upheld", [("voucher", 1990)], None)["promotion"] is None
    with pytest.raises(ValidationError) as refused:
        check(case, policy, "upheld", [("refund", 1990)], "flash_sale")
    assert "promotion" in refused.value.messages


def test_a_proposal_on_promoted_goods_without_a_refund_or_exchange_is_refused_unless_overridden(proposed_case):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — made, not only checked: the breach
    refuses it (422) until an operations director or legal overrides with a reason."""
    with pytest.raises(ValidationError) as refused:
        proposed_case([("voucher", "19.90")], proposal={"promotion": "promotion", "price": "19.90"})
    assert any(NO_REFUSAL in m for m in refused.value.messages["remedies"])


def test_a_rule_without_its_text_or_a_kind_naming_an_unknown_rule_is_refused(malls):
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — the legal text is policy data, checked at load."""
    data = yaml.safe_load((POLICY_DIR / "resolution.yml").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    del broken["promotion"]["rules"]["no_refusal"]["text"]
    with pytest.raises(ValidationError):
        load_policy(broken, malls)
    broken = copy.deepcopy(data)
    broken["promotion"]["kinds"]["clearance"] = ["final_sale"]
    with pytest.raises(ValidationError) as refused:
        load_policy(broken, malls)
    assert "final_sale" in str(refused.value.messages)
