"""R7.6 (seed 002: 核查同批次商品并公示结果): triage reads the goods' batch code from the
customer's words (after a marker of triage.yml's `batch_markers`) beside the barcode the
channel's form gave, and passes both on with the complaint, so resolution checks that batch."""

import pytest

from mallcare_common.contracts import COMPLAINT_TRIAGED, build_event, read_event
from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR
from triage import rules
from triage.policy import load_policy

from .test_rules import MONDAY_10, complaint


@pytest.fixture(scope="module")
def policy():
    return load_policy_dir(POLICY_DIR, "triage.yml", load_policy)


@pytest.mark.parametrize(
    "said, batch",
    [
        ("这批酸奶胀袋了，批号20261201", "20261201"),
        ("牛奶喝起来是酸的，生产批号：B2312-07，保质期还没到", "B2312-07"),
        ("這批麵包發霉了，批號 20261128A", "20261128A"),
        ("The yoghurt was bloated, lot number 2312a, still in date", "2312A"),
        ("Bought two packs from batch no. 20261201 and both had gone off", "20261201"),
    ],
)
def test_the_batch_code_is_read_from_what_the_customer_wrote(policy, said, batch):
    """R7.6, seed 002: 核查同批次商品 (the batch as customers and staff write it: simplified and
    traditional Chinese, English)."""
    read = rules.product_of(complaint(description=said), policy.rules["classification"]["batch_markers"])
    assert read == {"barcode": None, "batch": batch}


@pytest.mark.parametrize(
    "said",
    [
        "这批酸奶胀袋了",  # 这批 is "this lot" in speech, no code follows
        "A whole batch of strawberries went mouldy",  # no code with a digit after the word
        "收银员态度很差",
    ],
)
def test_no_batch_without_a_code(policy, said):
    """R7.6, seed 002: 核查同批次商品 (nothing to key a check on: no batch read)."""
    assert rules.product_of(complaint(description=said), policy.rules["classification"]["batch_markers"]) is None


def test_the_triaged_event_carries_the_barcode_and_the_batch(policy):
    """R7.6, seed 002: 核查同批次商品 (the goods travel with the complaint to resolution)."""
    registered = complaint(
        description="这批酸奶胀袋了，批号20261201", product={"barcode": "6901234567892", "brand": "光明"}
    )
    product = rules.product_of(registered, policy.rules["classification"]["batch_markers"])
    doc = {
        "_id": "SHXJH-20261123-0042",
        "mall_id": "sh-xujiahui",
        "received_at": MONDAY_10,
        "channel": "desk",
        "merchant_id": None,
        "product": product,
        "category": "product.quality_defect",
        "category_source": "keywords",
        "risk_level": "low",
        "risk_reasons": [],
        "urgency": "routine",
        "department": "procurement_qc",
        "review_meeting": False,
        "owner": None,
        "first_response_due_at": MONDAY_10,
        "resolution_due_at": MONDAY_10,
        "policy_version": "v",
    }
    event = read_event(rules.triaged_event(doc, MONDAY_10), COMPLAINT_TRIAGED)
    assert event["payload"]["product"] == {"barcode": "6901234567892", "batch": "20261201"}
    # an event of before R7.6 reads as naming no goods
    del doc["product"]
    older = build_event(
        COMPLAINT_TRIAGED,
        mall_id="sh-xujiahui",
        complaint_no=doc["_id"],
        occurred_at=MONDAY_10,
        payload={k: v for k, v in rules.triaged_event(doc, MONDAY_10)["payload"].items() if k != "product"},
    )
    assert read_event(older, COMPLAINT_TRIAGED)["payload"]["product"] is None
