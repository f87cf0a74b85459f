"""R2.1, R7.4 (issue 16): the learned second opinion beside the phrase rules. The model
shipped with triage is the one the labelled corpus builds; where the rules misread or
miss a complaint and the model knows its wording (these lines are in the corpus it learned
from: the tests show the weighing at work; docs/benchmarks.md measures unseen wording), the
complaint is filed right and proposed for a person to confirm; what the rules read right
stays right; without evidence the model has no opinion; two replicas read alike."""

import copy
import json
import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from marshmallow import ValidationError

from mallcare_common.policy import load_policy_dir
from tests.conftest import POLICY_DIR, ROOT
from triage import learn, learned, rules
from triage.policy import load_policy

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class History:
    def count_by_customer(self, ref, since):
        return 0

    def count_recurrences(self, mall_id, merchant_id, category, since, until):
        return 0

    def open_load(self, mall_id):
        return {}


@pytest.fixture(scope="module")
def policy():
    return load_policy_dir(POLICY_DIR, "triage.yml", load_policy)


@pytest.fixture(scope="module")
def rules_alone():
    return load_policy_dir(POLICY_DIR, "triage.yml", learn.without_second_opinion)


def grade(policy, description, fact=None, merchant=None):
    complaint = {
        "mall_id": "sh-xujiahui",
        "channel": "wechat",
        "description": description,
        "demands": {"fact": fact},
        "customer": {"ref": "c1", "member_tier": "regular"},
        "location": {"merchant_id": merchant},
        "anger_score": 3,
        "received_at": NOW,
    }
    return rules.assess(complaint, policy, NOW, History())


def test_the_shipped_model_is_the_one_the_corpus_builds(policy):
    """Change the corpus or the policy's language rules and forget `python -m triage.learn`:
    this fails, naming the command."""
    built = learn.build(
        [ROOT / "tests" / "data" / "triage_corpus" / "tuning.jsonl"], learn.policy_classification(POLICY_DIR)
    )
    assert built["version"] == learned.shipped().version, (
        "rebuild it: python -m triage.learn tests/data/triage_corpus/tuning.jsonl"
    )
    assert policy.version.endswith(f"+model:{built['version']}")
    assert policy.public()["classification"]["second_opinion"]["model"] == built["version"]


# Complaints of the fifth and sixth held-out parts that the phrase rules alone misread or
# could not read (now in the corpus the model learns from): the model's wording carries them.
@pytest.mark.parametrize(
    "description,fact,merchant,category",
    [
        ("订单取消了 钱呢？？说原路退回 一周了", "取消订单一周未退款", None, "payment.refund_delay"),
        ("买的土鸡蛋10枚装 打开只有8枚 一个没破 就是少了", "鸡蛋标10枚实际8枚", None, "product.not_as_described"),
        (
            "@城市廣場 網購叫咗兩打雞蛋 送咗兩盒豆腐嚟😂 搞笑咩 #網購",
            "鸡蛋错送为豆腐",
            None,
            "logistics.wrong_delivery",
        ),
        (
            "買的電熱水壺才用三個禮拜，底座就不通電了。都是正常使用，沒摔過也沒泡水。希望可以換新的。",
            "电热水壶使用三周后底座不通电",
            None,
            "product.quality_defect",
        ),
        ("服务台那个戴眼镜的男的 说话太冲了", "服务台员工说话冲", None, "service.bad_attitude"),
        (
            "你哋停車場ABCD區顏色一樣，條柱又冇編號，我搵架車搵咗40分鐘😭",
            "停车场分区无区分标识",
            None,
            "environment.poor_layout",
        ),
    ],
)
def test_what_the_rules_misread_the_second_opinion_files_right(
    policy, rules_alone, description, fact, merchant, category
):
    assert grade(rules_alone, description, fact, merchant)["category"] != category
    got = grade(policy, description, fact, merchant)
    assert got["category"] == category and not got["review_meeting"] and not got["category_confirmed"]


def test_a_category_only_the_model_proposes_is_left_for_a_person_to_confirm(policy, rules_alone):
    assert grade(rules_alone, "服务台那个戴眼镜的男的 说话太冲了")["category"] is None
    got = grade(policy, "服务台那个戴眼镜的男的 说话太冲了")
    assert got["category"] == "service.bad_attitude"
    assert not got["category_confirmed"] and got["category_confidence"] <= 0.5


@pytest.mark.parametrize("description", ["I want to talk to the manager", "???", "你好", "12345"])
def test_without_evidence_the_model_has_no_opinion(policy, description):
    got = grade(policy, description)
    assert (got["category"], got["category_source"]) == (None, "none")


@pytest.mark.parametrize(
    "description,category",
    [
        ("草莓发霉了，客户要求全额退款", "product.quality_defect"),
        ("电梯坏了", "environment.facility_failure"),
        ("答应的退款一周了还没到账", "payment.refund_delay"),
    ],
)
def test_what_the_rules_read_right_the_second_opinion_leaves_right(policy, rules_alone, description, category):
    assert grade(rules_alone, description)["category"] == category
    got = grade(policy, description)
    assert got["category"] == category and got["category_confirmed"]


def test_waiting_for_someone_to_open_the_broken_gate_is_part_of_the_breakdown(policy):
    got = grade(policy, "B1停车场出口道闸坏了 杆子抬不起来 后面排了十几辆车 等了25分钟才有人来手动开")
    assert (got["category"], got["department"], got["review_meeting"]) == (
        "environment.facility_failure",
        "facilities",
        False,
    )


def test_a_real_second_problem_the_model_reads_in_its_clause_still_makes_a_meeting(policy):
    got = grade(policy, "三楼扶梯坏了两天没人修，我打你们热线想报修，打了半个小时都没人接")
    assert (got["department"], got["review_meeting"]) == ("operations_director", True)
    assert set(got["departments_involved"]) == {"facilities", "customer_service"}


def test_the_reading_does_not_depend_on_the_process(policy):
    """Two replicas read a complaint alike: the model's sums do not follow the hash seed's
    order of a set (a last digit can decide a proposal at the threshold)."""
    script = (
        "from mallcare_common.policy import load_policy_dir; from triage.policy import load_policy; "
        "from triage import classify; import sys; p = load_policy_dir(sys.argv[1], 'triage.yml', load_policy); "
        "c = p.rules['classification']; t = classify.texts_of({'description': sys.argv[2]}, c)[:2]; "
        "print(repr(c['second_opinion']['model'].probabilities([x.problem_text() for x in t], 5)))"
    )
    text = "订单取消了 钱呢？？说原路退回 一周了，客服说系统问题"
    seen = {
        subprocess.run(
            [sys.executable, "-c", script, str(POLICY_DIR), text],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1


def test_without_a_second_opinion_the_rules_read_alone(rules_alone):
    assert rules_alone.public()["classification"]["second_opinion"] is None
    json.dumps(rules_alone.public(), default=str)
    assert "+model:" not in rules_alone.version
    assert grade(rules_alone, "草莓发霉了")["category"] == "product.quality_defect"


def test_a_model_that_names_a_category_the_taxonomy_dropped_is_refused(malls):
    """A sub-type taken out of the taxonomy (with its rules) while the shipped model still
    proposes it: refused at load, saying what to do."""
    data = yaml.safe_load((POLICY_DIR / "triage.yml").read_text(encoding="utf-8"))
    gone = "logistics.wrong_delivery"
    data["taxonomy"]["logistics"].remove("wrong_delivery")
    c = data["classification"]
    c["phrases"] = [r for r in c["phrases"] if r["category"] != gone]
    c["context"] = [
        {**r, "instead_of": [x for x in r.get("instead_of", []) if x != gone]}
        for r in c["context"]
        if r["category"] != gone
    ]
    with pytest.raises(ValidationError) as refused:
        load_policy(data, malls)
    message = str(refused.value.messages["classification"]["second_opinion"])
    assert gone in message and "python -m triage.learn" in message


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("temperature", 0, "greater than or equal to 1"),
        ("rules_weight", -1, "greater than or equal to 0"),
        ("min_probability", 2, "less than or equal to 1"),
        ("sure_problem_score", None, "Field may not be null"),
    ],
)
def test_a_broken_second_opinion_is_refused_by_field(malls, field, value, message):
    data = yaml.safe_load((POLICY_DIR / "triage.yml").read_text(encoding="utf-8"))
    broken = copy.deepcopy(data)
    broken["classification"]["second_opinion"][field] = value
    with pytest.raises(ValidationError) as refused:
        load_policy(broken, malls)
    assert message in str(refused.value.messages["classification"]["second_opinion"][field])
