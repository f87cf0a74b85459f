"""R2.6, R3.4-R3.9: resolution's policy is validated data (roles and
limits, escalation, permissions, statutory rules, caps, deadlines, staff, per-mall
overrides); a broken one is refused with field-level messages naming what is wrong.
The appeal text the customer reads (R3.6) is a template filled from the policy's own
deadlines; a duration written into it, or an unknown placeholder, is refused (issue 16
finding 10)."""

import copy

import pytest
import yaml
from marshmallow import ValidationError

from resolution.policy import REMEDIES, fen, load_policy
from tests.conftest import POLICY_DIR


@pytest.fixture(scope="module")
def shipped():
    return yaml.safe_load((POLICY_DIR / "resolution.yml").read_text(encoding="utf-8"))


def test_the_shipped_policy_loads(shipped, malls):
    policy = load_policy(shipped, malls)
    assert policy.version == f"{shipped['version']}+malls:{malls.version}"
    assert policy.role("sh-xujiahui", "handler") == {"rank": 1, "limit": 20000}
    assert policy.role("sh-xujiahui", "supervisor") == {"rank": 2, "limit": 200000}
    assert set(policy.rules["execution"]) == set(REMEDIES)
    assert policy.rules["statutory"]["food_safety"]["multiple"] == 10
    assert policy.rules["statutory"]["fraud"]["multiple"] == 3
    assert policy.rules["execution"]["cash_compensation"]["signature"] is True
    assert policy.rules["execution"]["refund"]["signature"] is False
    assert policy.public()["version"] == policy.version


def test_every_mall_has_the_people_its_tasks_go_to(shipped, malls):
    policy = load_policy(shipped, malls)
    for mall_id in malls.malls:
        for role in ("handler", "supervisor", "store_manager", "operations_director", "regional_manager", "legal"):
            assert policy.first_staff(mall_id, role) is not None, (mall_id, role)


def test_staff_are_looked_up_by_employee_number(shipped, malls):
    policy = load_policy(shipped, malls)
    staff = policy.staff("E3011")
    assert (staff.role, staff.malls) == ("supervisor", ("sh-xujiahui",))
    assert policy.staff("E9999") is None
    chain_wide = policy.staff("E0901")  # the chain's operations director: every mall ("*")
    assert (chain_wide.role, chain_wide.malls) == ("operations_director", ("*",))
    assert all(policy.first_staff(m, "operations_director").id != "E0901" for m in malls.malls)  # never first
    assert policy.allowed("close_or_reopen", "supervisor") and not policy.allowed("close_or_reopen", "handler")


def test_a_mall_override_changes_only_what_it_names(shipped, malls):
    policy = load_policy(shipped, malls)
    assert policy.role("gz-tianhe", "handler") == {"rank": 1, "limit": 10000}
    assert policy.role("gz-tianhe", "supervisor") == policy.role("sh-xujiahui", "supervisor")
    assert fen(policy.section("gz-tianhe", "caps")["goodwill"]) == 20000
    assert fen(policy.section("sh-xujiahui", "caps")["goodwill"]) == 30000
    assert policy.section("gz-tianhe", "spot") == policy.rules["spot"]


@pytest.mark.parametrize(
    "yuan,expected", [("39.90", 3990), ("39.9", 3990), (200, 20000), ("0.01", 1), ("1039.90", 103990)]
)
def test_yuan_become_integer_fen(yuan, expected):
    assert fen(yuan) == expected


def _staff(entry):
    return lambda p: p["staff"].append(entry)


@pytest.mark.parametrize(
    "change,field,words",
    [
        (lambda p: p["escalation"].append("chairman"), "escalation", "chairman"),
        (lambda p: p["permissions"]["review_meeting"].append("ceo"), "permissions", "ceo"),
        (
            lambda p: (
                p["permissions"]["cap_override"].remove("legal") or p["permissions"]["cap_override"].append("lawyer")
            ),
            "permissions",
            "lawyer",
        ),
        (_staff({"id": "X1", "name": "某人", "role": "janitor", "malls": ["sh-xujiahui"]}), "staff", "janitor"),
        (lambda p: p["execution"].pop("voucher"), "execution", "voucher"),
        (lambda p: p["execution"].update(massage={"hours": 1}), "execution", "massage"),
        (_staff({"id": "E3011", "name": "重复", "role": "handler", "malls": ["sh-xujiahui"]}), "staff", "unique"),
        (_staff({"id": "X2", "name": "某人", "role": "handler", "malls": ["atlantis"]}), "staff", "atlantis"),
        (lambda p: p["mall_overrides"].update(atlantis={"caps": {"goodwill": 100}}), "mall_overrides", "atlantis"),
        (
            lambda p: p["mall_overrides"]["gz-tianhe"]["roles"].update(intern={"rank": 1, "limit": 10}),
            "mall_overrides",
            "intern",
        ),
        (lambda p: p["deadlines"].update(re_review={"hours": 2, "working_hours": 2}), "deadlines", "exactly one"),
        (lambda p: p["deadlines"].pop("unreachable_close_after"), "deadlines", "unreachable_close_after"),
        (lambda p: p["deadlines"].update(unreachable_close_after={"days": 3}), "deadlines", "unreachable_close_after"),
        (lambda p: p["execution"].update(refund={"hours": 24, "working_days": 1}), "execution", "exactly one"),
        (lambda p: p["incidents"].update(handle={}), "incidents", "exactly one"),
        (lambda p: p["roles"]["handler"].update(limit=-1), "roles", None),
        (lambda p: p["statutory"]["fraud"].pop("multiple"), "statutory", "multiple"),
        (lambda p: p["spot"].update(risk_levels=["extreme"]), "spot", None),
        (
            lambda p: p["rectification"].update(weather={"kind": "x", "working_days": 1, "owner_role": "supervisor"}),
            "rectification",
            "weather",
        ),
        (lambda p: p.pop("appeal_procedure"), "appeal_procedure", None),
        (
            lambda p: p.update(appeal_procedure=p["appeal_procedure"].replace("{re_review}", "{re_reveiw}")),
            "appeal_procedure",
            "Unknown placeholder {re_reveiw}",
        ),
        (
            lambda p: p.update(appeal_procedure=p["appeal_procedure"].replace("{re_review}", "2 小时")),
            "appeal_procedure",
            'The duration "2 小时" is written into the text',
        ),
        (
            lambda p: p.update(appeal_procedure=p["appeal_procedure"].replace("{appeal_window}", "七天")),
            "appeal_procedure",
            "七天",
        ),
        (lambda p: p.update(appeal_procedure=p["appeal_procedure"] + "{re_review!r}"), "appeal_procedure", None),
        (lambda p: p.update(appeal_procedure=p["appeal_procedure"] + "{"), "appeal_procedure", "Not a template"),
        (lambda p: p.pop("appeal_window_days"), "appeal_window_days", None),
        (lambda p: p.pop("retention_months"), "retention_months", None),
        (lambda p: p.update(retention_months=0), "retention_months", None),
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


def test_the_appeal_text_states_the_policys_own_durations(shipped, malls):
    """Issue 16 finding 10: the re-review time the customer is told is deadlines.re_review."""
    text = load_policy(shipped, malls).customer_text("appeal_procedure")
    assert "收到答复后 7 日内" in text and "我们将在 2 小时内安排上一级负责人复核" in text
    changed = copy.deepcopy(shipped)
    changed["deadlines"]["re_review"] = {"working_hours": 4}
    changed["appeal_window_days"] = 15
    text = load_policy(changed, malls).customer_text("appeal_procedure")
    assert "收到答复后 15 日内" in text and "我们将在 4 个工作小时内" in text and "2 小时" not in text


def test_several_mistakes_are_reported_together(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["escalation"].append("chairman")
    broken["execution"].pop("repair")
    broken["staff"].append({"id": "E3001", "name": "重复", "role": "handler", "malls": ["sh-xujiahui"]})
    with pytest.raises(ValidationError) as error:
        load_policy(broken, malls)
    assert set(error.value.messages) == {"escalation", "execution", "staff"}
    assert error.value.messages["execution"] == ["No execution rule for: repair."]


def test_an_unknown_rectification_owner_role_names_the_rectification(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["rectification"]["service"]["owner_role"] = "trainer"
    with pytest.raises(ValidationError) as error:
        load_policy(broken, malls)
    assert "trainer" in str(error.value.messages.get("rectification"))
