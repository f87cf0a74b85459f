"""R4.1-R4.4: feedback's policy is validated data (revisit timing, quiet hours, the way
to ask per channel, what counts as satisfied, reason tags, the library) with per-mall
overrides; a broken file is refused with field-level messages naming what is wrong."""

import copy
from datetime import time

import pytest
import yaml
from marshmallow import ValidationError

from feedback.policy import load_policy
from mallcare_common.contracts.intake import CHANNELS
from tests.conftest import POLICY_DIR


@pytest.fixture(scope="module")
def shipped():
    return yaml.safe_load((POLICY_DIR / "feedback.yml").read_text(encoding="utf-8"))


def test_the_shipped_policy_loads(shipped, malls, policy):
    loaded = load_policy(shipped, malls)
    assert loaded.version == f"{shipped['version']}+malls:{malls.version}" == policy.version
    revisit = loaded.revisit("sh-xujiahui")
    assert (revisit["after"], revisit["within"], revisit["retry_after"], revisit["link_valid"]) == (
        {"hours": 2},
        {"hours": 24},
        {"hours": 3},
        {"hours": 72},
    )
    assert revisit["quiet_hours"] == (time(21, 0), time(9, 0))
    assert revisit["max_attempts"] == 3
    assert set(revisit["ways"]) == set(CHANNELS)
    assert loaded.rules["satisfied_from"] == 4
    assert {"compensation_unclear", "slow", "attitude", "not_resolved"} <= set(loaded.rules["reason_tags"])
    assert loaded.rules["library"]["automatic_risk_levels"] == ["high"]
    assert loaded.public()["version"] == loaded.version
    assert loaded.malls is malls


def test_the_shipped_ways_by_channel(shipped, malls):
    ways = load_policy(shipped, malls).revisit("gz-tianhe")["ways"]
    assert {c for c, w in ways.items() if w == "phone_call"} == {"desk", "hotline", "suggestion_box"}
    assert {c for c, w in ways.items() if w == "sms"} == {"web", "email", "social"}
    assert {c for c, w in ways.items() if w == "app_message"} == {"app", "mini_program", "wechat"}


def test_a_mall_override_replaces_only_the_entries_it_names(shipped, malls):
    loaded = load_policy(shipped, malls)
    assert loaded.revisit("bj-chaoyang")["quiet_hours"] == (time(21, 30), time(9, 30))
    assert loaded.revisit("bj-chaoyang")["within"] == {"hours": 24}
    assert loaded.revisit("no-such-mall") == loaded.rules["revisit"]


def test_loading_does_not_change_the_parsed_file(shipped, malls):
    before = copy.deepcopy(shipped)
    load_policy(shipped, malls)
    assert shipped == before


def _set(path, value):
    def change(p):
        *parents, last = path
        for key in parents:
            p = p[key]
        p[last] = value

    return change


def _drop(path):
    def change(p):
        *parents, last = path
        for key in parents:
            p = p[key]
        del p[last]

    return change


BJ = ("mall_overrides", "bj-chaoyang", "revisit")


@pytest.mark.parametrize(
    "change,where,words",
    [
        (_drop(("revisit", "ways", "web")), ("revisit", "ways"), "No way to ask for: web."),
        (_set(("revisit", "ways", "web"), "fax"), ("revisit", "ways", "web", "value"), "phone_call, sms, app_message"),
        (_set(("revisit", "ways", "telegram"), "sms"), ("revisit", "ways", "telegram", "key"), "Must be one of"),
        (_set(("revisit", "quiet_hours"), "21-9"), ("revisit", "quiet_hours"), "HH:MM-HH:MM"),
        (_set(("revisit", "quiet_hours"), "21:00 to 09:00"), ("revisit", "quiet_hours"), "HH:MM-HH:MM"),
        (_set(("revisit", "quiet_hours"), "25:00-09:00"), ("revisit", "quiet_hours"), "HH:MM-HH:MM"),
        (
            _set(BJ + ("quiet_hours",), "21:30-9h30"),
            ("mall_overrides", "bj-chaoyang", "value", "revisit", "quiet_hours"),
            "HH:MM-HH:MM",
        ),
        (_set(("satisfied_from",), 6), ("satisfied_from",), "less than or equal to 5"),
        (_set(("satisfied_from",), 0), ("satisfied_from",), "greater than or equal to 1"),
        (
            _set(("mall_overrides", "sz-futian"), {"revisit": {"quiet_hours": "22:00-08:00"}}),
            ("mall_overrides",),
            "Unknown mall: sz-futian.",
        ),
        (
            _set(("revisit", "after"), {"hours": 2, "working_hours": 1}),
            ("revisit", "after", "_schema"),
            "exactly one of hours, working_hours, working_days",
        ),
        (_set(("revisit", "within"), {}), ("revisit", "within", "_schema"), "exactly one of"),
        (
            _set(BJ + ("link_valid",), {"hours": 72, "working_days": 3}),
            ("mall_overrides", "bj-chaoyang", "value", "revisit", "link_valid", "_schema"),
            "exactly one of",
        ),
        (_set(("revisit", "max_attempts"), 0), ("revisit", "max_attempts"), "greater than or equal to 1"),
        (_set(("revisit", "retry_after"), {"minutes": 30}), ("revisit", "retry_after", "minutes"), "Unknown field"),
        (
            _set(BJ + ("quiet",), "21:30-09:30"),
            ("mall_overrides", "bj-chaoyang", "value", "revisit", "quiet"),
            "Unknown field",
        ),
        (_set(("reason_tags",), {}), ("reason_tags",), "Shorter than minimum length 1"),
        (_drop(("reason_tags", "slow", "en")), ("reason_tags", "slow", "value", "en"), "Missing data"),
        (
            _set(("library", "automatic_risk_levels"), ["critical"]),
            ("library", "automatic_risk_levels", 0),
            "Must be one of",
        ),
        (_drop(("revisit", "quiet_hours")), ("revisit", "quiet_hours"), "Missing data"),
        (_drop(("version",)), ("version",), "Missing data"),
    ],
)
def test_a_broken_policy_is_refused_naming_the_field(shipped, malls, change, where, words):
    broken = copy.deepcopy(shipped)
    change(broken)
    with pytest.raises(ValidationError) as refused:
        load_policy(broken, malls)
    messages = refused.value.messages
    for key in where:
        assert key in messages, (key, messages)
        messages = messages[key]
    assert any(words in m for m in messages), messages


def test_every_problem_is_named_at_once(shipped, malls):
    broken = copy.deepcopy(shipped)
    broken["satisfied_from"] = 6
    broken["revisit"]["quiet_hours"] = "late"
    with pytest.raises(ValidationError) as refused:
        load_policy(broken, malls)
    assert set(refused.value.messages) == {"satisfied_from", "revisit"}


def test_a_mall_override_may_set_any_single_entry(shipped, malls):
    changed = copy.deepcopy(shipped)
    changed["mall_overrides"]["gz-tianhe"] = {"revisit": {"max_attempts": 5, "after": {"working_hours": 1}}}
    loaded = load_policy(changed, malls)
    assert loaded.revisit("gz-tianhe")["max_attempts"] == 5
    assert loaded.revisit("gz-tianhe")["after"] == {"working_hours": 1}
    assert loaded.revisit("gz-tianhe")["quiet_hours"] == (time(21, 0), time(9, 0))


def test_a_mall_override_of_ways_must_still_cover_every_channel(shipped, malls):
    changed = copy.deepcopy(shipped)
    changed["mall_overrides"]["gz-tianhe"] = {"revisit": {"ways": {"desk": "sms"}}}
    with pytest.raises(ValidationError) as refused:
        load_policy(changed, malls)
    assert "mall_overrides" in refused.value.messages
