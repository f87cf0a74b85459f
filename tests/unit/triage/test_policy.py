"""R2.6, R7.4: triage's policy is validated data; a broken one is refused with
field-level messages naming what is wrong."""

import copy

import pytest
import yaml
from marshmallow import ValidationError

from tests.conftest import POLICY_DIR
from triage.policy import load_policy


@pytest.fixture(scope="module")
def shipped():
    return yaml.safe_load((POLICY_DIR / "triage.yml").read_text(encoding="utf-8"))


def test_the_shipped_policy_loads(shipped, malls):
    policy = load_policy(shipped, malls)
    assert policy.version.startswith("2026-") and "+malls:" in policy.version
    assert {h.department for h in policy.handlers("sh-xujiahui")} >= {
        "customer_service",
        "procurement_qc",
        "operations_director",
    }
    assert policy.public()["version"] == policy.version


def test_the_text_tools_are_ready_when_the_policy_is_loaded_not_at_the_first_complaint(shipped, malls):
    """The jieba dictionary and the phrase patterns are built by the loader (service start,
    policy reload): the first complaint builds nothing."""
    from triage import classify, text

    text.tokenizer.cache_clear()
    text._pattern.cache_clear()
    policy = load_policy(shipped, malls)
    built = text.tokenizer.cache_info().misses, text._pattern.cache_info().misses
    classify.read({"description": "牛奶過期了，收銀員態度很差，我要发到朋友圈", "demands": {}}, policy.rules)
    assert (text.tokenizer.cache_info().misses, text._pattern.cache_info().misses) == built


@pytest.mark.parametrize(
    "change,field,words",
    [
        (
            lambda p: p["classification"]["phrases"].append(
                {"category": "product.haunted", "weight": 3, "terms": ["ghost"]}
            ),
            "classification",
            "haunted",
        ),
        (
            lambda p: p["classification"]["context"][0]["instead_of"].append("environment.mess"),
            "classification",
            "mess",
        ),
        (lambda p: p["classification"].update(confidence_threshold=1.5), "classification", "confidence_threshold"),
        (lambda p: p["risk"]["beyond_statutory"].update(default_basis="sharia"), "risk", "default_basis"),
        (lambda p: p["risk"]["beyond_statutory"]["legal_bases"]["food_safety"].pop("multiple"), "risk", "multiple"),
        (lambda p: p["routing"]["departments"].pop("payment"), "routing", "payment"),
        (lambda p: p["roster"]["sh-xujiahui"][0].update(shifts="night_owl"), "roster", "night_owl"),
        (lambda p: p["risk"]["anger"].update(level="extreme"), "risk", None),
        (lambda p: p["sla"]["resolution"].pop("urgent"), "sla", "urgent"),
        (lambda p: p["sla"]["first_response"].update(service={"hours": 1, "working_hours": 1}), "sla", None),
        (lambda p: p["shift_patterns"]["all_week_day"].update(mon="nine to five"), "shift_patterns", None),
        (lambda p: p["mall_overrides"].update({"atlantis": {}}), "mall_overrides", "atlantis"),
    ],
)
def test_a_broken_policy_is_refused_with_the_reason(shipped, malls, change, field, words):
    broken = copy.deepcopy(shipped)
    change(broken)
    with pytest.raises(ValidationError) as error:
        load_policy(broken, malls)
    assert field in error.value.messages
    if words:
        assert words in str(error.value.messages[field])


def test_a_mall_override_changes_only_what_it_names(shipped, malls):
    policy = load_policy(shipped, malls)
    assert policy.section("gz-tianhe", "sla")["first_response"]["service"] == {"hours": 12.0}
    assert policy.section("gz-tianhe", "sla")["resolution"] == policy.rules["sla"]["resolution"]
