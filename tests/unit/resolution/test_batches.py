"""R7.6 product batches checked and the result published (seed 002: 核查同批次商品并公示结果), as
the domain decides it: which complaint starts the check of which batch, who takes each step by
when, what each verdict allows, and what the mall's public notice shows."""

from datetime import timedelta

import pytest
from marshmallow import ValidationError

from resolution.domain import batches
from resolution.domain.errors import NoAuthority, StateConflict
from resolution.domain.opening import new_case
from resolution.domain.step import Actor

from .conftest import MONDAY_15, triaged_event
from .test_timeline_and_incidents import assert_valid_events

YOGURT = {"barcode": None, "batch": "20261201"}
QC, CUSTOMER_SERVICE, STORE_MANAGER = "E3101", "E3001", "E3091"  # at sh-xujiahui, resolution.yml's directory


def opened_case(policy, product, complaint_no="SHXJH-20261123-0042", category="product.quality_defect"):
    event = triaged_event(complaint_no=complaint_no, category=category)
    event["payload"]["product"] = product
    case, _ = new_case(event, policy, MONDAY_15)
    return case, batches.attach(case, event, policy)


class Check:
    """A batch check driven through batches.ACTIONS (request schema, then the rule)."""

    def __init__(self, policy, case, number):
        self.policy, self.now = policy, MONDAY_15
        self.doc, opened = batches.new_check(number, case, policy, MONDAY_15)
        self.events = [opened]

    def act(self, name, by, **data):
        schema, rule = batches.ACTIONS[name]
        request = schema().load({**data, "by": by})
        staff = self.policy.staff(by)
        step = batches.BatchStep(self.doc, Actor(by, staff.role, staff.name), self.now)
        rule(step, request, self.policy)
        self.doc = {**self.doc, **step.changes, "timeline": [*self.doc["timeline"], *step.entries]}
        self.events.extend(step.events)
        return step


def hold(check, by=QC):
    return check.act("hold", by, note="货架和仓库共下架该批次酸奶42袋，封存待检")


def inspect(check, by=QC):
    return check.act("inspection", by, finding="抽检6袋，4袋胀袋，菌落总数超标", attachment_ref="oss://qc/20261201.pdf")


def result(check, by=STORE_MANAGER, verdict="unsafe", action="returned_to_supplier"):
    return check.act("result", by, verdict=verdict, action=action, summary="该批次酸奶胀袋，已全部下架并退回供应商")


def test_a_product_complaint_naming_its_batch_starts_the_check_of_that_batch_at_its_mall(policy):
    """R7.6, seed 002: 核查同批次商品 (one check per mall and batch: its number says which; a
    barcode alone keys it when no batch is named)."""
    case, number = opened_case(policy, YOGURT)
    assert number == case["batch_check_no"] == "SHXJH-LOT-20261201"
    assert case["product"] == YOGURT
    assert opened_case(policy, {"barcode": "6901234567892", "batch": None})[1] == "SHXJH-EAN-6901234567892"
    # the same batch code at another complaint of the mall is the same check
    assert opened_case(policy, YOGURT, complaint_no="SHXJH-20261123-0043")[1] == number


@pytest.mark.parametrize(
    "product, category",
    [
        (YOGURT, "service.bad_attitude"),  # "这批" said of something else than goods
        (None, "product.quality_defect"),  # no barcode, no batch: nothing to check
        ({"barcode": None, "batch": None}, "product.expired"),
    ],
)
def test_no_check_without_a_product_complaint_that_names_its_goods(policy, product, category):
    """R7.6, seed 002: 核查同批次商品 (only a product complaint with a barcode or batch)."""
    case, number = opened_case(policy, product, category=category)
    assert number is None and case["batch_check_no"] is None


def test_the_check_is_held_inspected_and_concluded_by_whom_the_policy_names_within_its_times(policy):
    """R7.6, seed 002: 核查同批次商品并公示结果 (hold within 4 hours of the complaint, inspection
    within 48 hours of the hold, each step by procurement/QC or the store manager as
    resolution.yml says, late steps marked)."""
    case, number = opened_case(policy, YOGURT)
    check = Check(policy, case, number)
    assert check.doc["state"] == "open" and check.doc["due_at"] == MONDAY_15 + timedelta(hours=4)
    assert check.doc["complaint_nos"] == ["SHXJH-20261123-0042"]

    with pytest.raises(NoAuthority, match="procurement_qc"):
        hold(check, by=CUSTOMER_SERVICE)  # a customer-service handler does not take goods off the shelf
    with pytest.raises(StateConflict, match="needs held"):
        inspect(check)  # nothing inspected before the goods are held

    check.now = MONDAY_15 + timedelta(hours=3)
    hold(check)
    assert check.doc["state"] == "held" and check.doc["hold"]["within_deadline"] is True
    assert check.doc["due_at"] == check.now + timedelta(hours=48)

    check.now += timedelta(hours=49)  # the inspection came an hour late
    with pytest.raises(NoAuthority):
        inspect(check, by=STORE_MANAGER)  # the policy gives the finding to procurement/QC
    inspect(check)
    assert check.doc["inspect"]["within_deadline"] is False
    assert check.doc["inspect"]["finding"] == "抽检6袋，4袋胀袋，菌落总数超标"

    with pytest.raises(ValidationError, match="one of: back_on_shelf"):
        result(check, verdict="safe", action="withdrawn")  # safe goods go back on sale, nothing else
    with pytest.raises(ValidationError, match="one of: withdrawn"):
        result(check, verdict="unsafe", action="back_on_shelf")  # unsafe goods never do
    with pytest.raises(NoAuthority):
        result(check, by=QC)  # the store manager decides the result
    result(check)
    assert check.doc["state"] == "concluded"
    assert (check.doc["result"]["verdict"], check.doc["result"]["action"]) == ("unsafe", "returned_to_supplier")

    steps = [e["payload"] for e in check.events if e["event_type"] == "batch_check_step_done"]
    assert [(s["step"], s["within_deadline"]) for s in steps] == [("hold", True), ("inspect", False), ("result", True)]
    assert_valid_events(check.events)


def test_the_published_result_names_every_complaint_of_the_batch_and_the_notice_none(policy):
    """R7.6, seed 002: 公示结果 (to the mall's notice page and to each complaint of the batch; the
    public notice shows the goods and the result, never a complaint or a person)."""
    case, number = opened_case(policy, YOGURT)
    check = Check(policy, case, number)
    check.doc["complaint_nos"].append("SHXJH-20261123-0043")  # joined as the store does it
    hold(check)
    inspect(check)
    with pytest.raises(StateConflict, match="no result"):
        check.act("publication", STORE_MANAGER)
    result(check)
    with pytest.raises(NoAuthority):
        check.act("publication", QC)
    check.act("publication", STORE_MANAGER)
    assert check.doc["state"] == "published" and check.doc["due_at"] is None

    [published] = [e for e in check.events if e["event_type"] == "batch_result_published"]
    assert published["complaint_no"] == number
    assert published["payload"]["complaint_nos"] == ["SHXJH-20261123-0042", "SHXJH-20261123-0043"]
    assert (published["payload"]["verdict"], published["payload"]["action"]) == ("unsafe", "returned_to_supplier")
    assert_valid_events(check.events)

    notice = batches.notice(check.doc)
    assert notice["product"] == YOGURT and notice["summary"] == "该批次酸奶胀袋，已全部下架并退回供应商"
    assert "SHXJH-20261123-0042" not in str(notice) and STORE_MANAGER not in str(notice)
