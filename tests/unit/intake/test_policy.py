"""R2.6 (policy is data), R1.2: the shipped policy loads; a broken one is refused
with field-level messages; per-mall overrides apply; the version is recorded."""

import copy

import pytest
import yaml
from marshmallow import ValidationError

from intake.policy import load_policy
from mallcare_common.policy import load_policy_dir
from mallcare_common.malls import load_registry, load_registry_file
from tests.conftest import POLICY_DIR


@pytest.fixture
def intake_data():
    return yaml.safe_load((POLICY_DIR / "intake.yml").read_text(encoding="utf-8"))


@pytest.fixture
def malls_data():
    return yaml.safe_load((POLICY_DIR / "malls.yml").read_text(encoding="utf-8"))


def test_the_shipped_policy_loads_with_a_combined_version():
    policy = load_policy_dir(POLICY_DIR, "intake.yml", load_policy)
    assert policy.version.startswith("2026-") and "+malls:" in policy.version
    assert {"sh-xujiahui", "bj-chaoyang", "gz-tianhe"} <= set(policy.malls.malls)


def test_the_retention_period_is_required(intake_data):
    del intake_data["retention_months"]
    with pytest.raises(ValidationError) as error:
        load_policy(intake_data, load_registry_file(POLICY_DIR / "malls.yml"))
    assert "retention_months" in error.value.messages


def test_a_channel_without_an_acknowledgement_rule_is_refused(intake_data):
    del intake_data["acknowledgement"]["email"]
    with pytest.raises(ValidationError) as error:
        load_policy(intake_data, load_registry_file(POLICY_DIR / "malls.yml"))
    assert "email" in str(error.value.messages["acknowledgement"])


@pytest.mark.parametrize(
    "path,value,field",
    [
        (("acknowledgement", "desk", "minutes"), -1, "acknowledgement"),
        (("acknowledgement", "desk", "after_hours"), "whenever", "acknowledgement"),
        (("review", "min_description_chars"), "five", "review"),
        (("mall_overrides",), {"atlantis": {}}, "mall_overrides"),
        (("retention_months",), 0, "retention_months"),
        (("retention_months",), "24", "retention_months"),
        (("wechat",), {"atlantis": {"account": "gh_5a1c2e3f4b6d", "token": "WECHAT_TOKEN_X"}}, "wechat"),
        (("wechat",), {"sh-xujiahui": {"account": "gh_5a1c2e3f4b6d", "token": "the-token-itself"}}, "wechat"),
        (
            ("mailboxes",),
            {
                "sh-xujiahui": {
                    "host": "imap.example.cn",
                    "security": "none",
                    "user": "u",
                    "password": "MAILBOX_PASSWORD_SH",
                }
            },
            "mailboxes",
        ),
        (("mailboxes",), {"sh-xujiahui": {"host": "imap.example.cn", "user": "u", "password": "hunter2"}}, "mailboxes"),
        # R7.2, seed 000 (顯眼位置張貼投訴渠道): a poster for a mall that is not there, a hotline
        # no one can dial, a desk without its English words; the pages' limits are required
        (("portal", "posters"), {"atlantis": {"hotline": "021-6407 8800"}}, "portal"),
        (("portal", "posters", "sh-xujiahui", "hotline"), "call the desk", "portal"),
        (("portal", "posters", "sh-xujiahui", "desk"), {"zh": "一楼服务台"}, "portal"),
        (("portal", "per_address_per_minute"), {"submissions": 5}, "portal"),
    ],
)
def test_bad_values_are_refused(intake_data, path, value, field):
    target = intake_data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError) as error:
        load_policy(intake_data, load_registry_file(POLICY_DIR / "malls.yml"))
    assert field in error.value.messages


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda d: d["malls"][0].update(timezone="Mars/Olympus"), "malls"),
        (lambda d: d["malls"][1].update(code=d["malls"][0]["code"]), "malls"),
        (lambda d: d["defaults"]["opening_hours"].update(mon="ten to ten"), "defaults"),
        (lambda d: d.pop("version"), "version"),
    ],
)
def test_a_broken_mall_registry_is_refused(malls_data, change, field):
    broken = copy.deepcopy(malls_data)
    change(broken)
    with pytest.raises(ValidationError) as error:
        load_registry(broken)
    assert field in error.value.messages


def test_mall_overrides_replace_single_entries(intake_data):
    policy = load_policy(intake_data, load_registry_file(POLICY_DIR / "malls.yml"))
    assert policy.acknowledgement_rule("gz-tianhe", "hotline")["minutes"] == 15
    assert policy.acknowledgement_rule("gz-tianhe", "desk")["minutes"] == 1
    assert policy.acknowledgement_rule("sh-xujiahui", "hotline")["minutes"] == 30


def test_a_mall_lists_each_merchant_once_with_a_name():
    registry = yaml.safe_load((POLICY_DIR / "malls.yml").read_text(encoding="utf-8"))
    assert load_registry(registry).get("sh-xujiahui").merchants[0]["id"] == "T-17"
    mall = registry["malls"][0]
    mall["merchants"] = [{"id": "T-1", "name": "A"}, {"id": "T-1", "name": "B"}]
    with pytest.raises(ValidationError) as twice:
        load_registry(registry)
    assert twice.value.messages["malls"][0]["merchants"] == ["Merchant ids must be unique within a mall."]
    mall["merchants"] = [{"id": "T-2"}]
    with pytest.raises(ValidationError) as nameless:
        load_registry(registry)
    assert nameless.value.messages["malls"][0]["merchants"] == {0: {"name": ["Missing data for required field."]}}


def test_a_mailbox_takes_tls_and_the_inbox_unless_told_otherwise(intake_data):
    intake_data["mailboxes"] = {
        "sh-xujiahui": {
            "host": "imap.exmail.qq.com",
            "user": "tousu-sh@example.cn",
            "password": "MAILBOX_PASSWORD_SH_XUJIAHUI",
        }
    }
    policy = load_policy(intake_data, load_registry_file(POLICY_DIR / "malls.yml"))
    assert policy.rules["mailboxes"]["sh-xujiahui"] == {
        "host": "imap.exmail.qq.com",
        "security": "tls",
        "user": "tousu-sh@example.cn",
        "password": "MAILBOX_PASSWORD_SH_XUJIAHUI",
        "folder": "INBOX",
    }
