"""Every code word a page can show has its words in Chinese and English in one place,
deploy/policy/labels.yml (issue 20): the values the services' schemas, events and policies can
hold, and the actions a timeline records. A value added to a schema or a policy without its
words fails here, before a clerk sees `product.quality_defect` on a screen."""

import importlib
import inspect
import re

import pytest
import yaml
from marshmallow import Schema, fields, validate

from mallcare_common.contracts import analytics as analytics_events
from mallcare_common.labels import load_labels_file, served
from mallcare_common.policy import InvalidPolicy
from mallcare_common.malls import load_registry_file
from tests.helpers import ROOT

POLICY = ROOT / "deploy" / "policy"
LABELS = load_labels_file(POLICY / "labels.yml")
GROUPS = LABELS["groups"]
SERVICES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")
# enumerations no page shows as a value: an export's file format, the grading field a form posts
NOT_SHOWN = {
    ("json", "csv", "html"),
    ("category", "risk_level"),
    ("json", "csv", "xlsx"),
    ("json", "csv", "html", "xlsx"),
    ("zh", "en"),  # the language a report is written in
}


def policy(name):
    return yaml.safe_load((POLICY / f"{name}.yml").read_text(encoding="utf-8"))


def schema_enumerations():
    """(where, choices) of every OneOf of every schema the six services declare."""
    found = []
    for service in SERVICES:
        module = importlib.import_module(f"{service}.schemas")
        for name, cls in vars(module).items():
            if not (inspect.isclass(cls) and issubclass(cls, Schema) and cls.__module__ == module.__name__):
                continue
            for field_name, field in cls().fields.items():
                target = field.inner if isinstance(field, fields.List) else field
                for validator in target.validators:
                    if isinstance(validator, validate.OneOf):
                        choices = tuple(c for c in validator.choices if c is not None)
                        found.append((f"{service}.{name}.{field_name}", choices))
    return found


@pytest.mark.parametrize(("where", "choices"), schema_enumerations(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_value_a_schema_holds_has_words(where, choices):
    if choices in NOT_SHOWN:
        return
    holding = [group for group, words in GROUPS.items() if set(choices) <= set(words)]
    assert holding, f"{where}: no group of labels.yml has words for all of {choices}"


def test_every_category_attribute_and_department_of_triage_has_words():
    triage = policy("triage")
    for attribute, subtypes in triage["taxonomy"].items():
        assert attribute in GROUPS["attribute"]
        for subtype in subtypes:
            assert f"{attribute}.{subtype}" in GROUPS["category"], f"{attribute}.{subtype}"
    routing = triage["routing"]
    departments = {*routing["departments"].values(), routing["unclassified"], routing["tenant"]["department"]}
    departments |= {routing["security"], routing["cross_department"]}
    assert departments <= set(GROUPS["department"]), departments - set(GROUPS["department"])
    assert set(triage["risk"]) <= set(GROUPS["risk_reason"]), set(triage["risk"]) - set(GROUPS["risk_reason"])
    assert set(triage["sla"]["risk_factor"]) <= set(GROUPS["risk_level"])


def test_every_role_department_incident_type_and_rectification_of_the_policies_has_words():
    access, resolution = policy("access"), policy("resolution")
    roles = {role for roles in access["permissions"].values() for role in roles}
    roles |= {m["role"] for m in resolution["staff"]}
    assert roles <= set(GROUPS["role"]), roles - set(GROUPS["role"])
    assert {m["department"] for m in resolution["staff"] if "department" in m} <= set(GROUPS["department"])
    assert set(resolution["incidents"]["types"]) <= set(GROUPS["incident_type"])
    kinds = {r["kind"] for r in resolution["rectification"].values()}
    assert kinds <= set(GROUPS["rectification_kind"]), kinds - set(GROUPS["rectification_kind"])
    batch = resolution["batch_checks"]  # R7.6
    assert {a for actions in batch["actions"].values() for a in actions} <= set(GROUPS["batch_action"])
    assert set(batch["steps"]) <= set(GROUPS["batch_step"])
    legal_bases = set(policy("triage")["risk"]["beyond_statutory"]["legal_bases"])
    assert legal_bases | {"none"} <= set(GROUPS["legal_basis"])


def test_the_reason_tags_staff_record_are_the_ones_customers_tick():
    assert set(GROUPS["reason_tag"]) == set(policy("feedback")["reason_tags"])


def test_every_sla_clock_has_words():
    assert set(analytics_events.CLOCKS) <= set(GROUPS["clock"]), set(analytics_events.CLOCKS) - set(GROUPS["clock"])


def test_every_action_a_timeline_records_has_words():
    """The actions of the ACTIONS tables, and each step.log("...") of resolution's domain and service."""
    from resolution.domain import actions, incidents

    logged = set(actions.ACTIONS) | set(incidents.ACTIONS)
    for path in (ROOT / "services" / "resolution" / "resolution").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        logged |= set(re.findall(r'\.log\(\s*"([a-z_-]+)"', text))
        logged |= set(re.findall(r'"action": "([a-z_-]+)"', text))
    missing = logged - set(GROUPS["action"])
    assert not missing, f"timeline actions without words: {sorted(missing)}"


def test_a_label_missing_a_language_is_refused_with_the_field(tmp_path):
    broken = tmp_path / "labels.yml"
    broken.write_text('version: "x"\ngroups:\n  channel:\n    desk: {zh: 服务台}\n', encoding="utf-8")
    with pytest.raises(InvalidPolicy) as refused:
        load_labels_file(broken)
    assert refused.value.messages == {
        "groups": {"channel": {"value": {"desk": {"value": {"en": ["Missing data for required field."]}}}}}
    }


def test_served_labels_name_every_mall_and_merchant_in_both_languages_with_its_time_zone():
    registry = load_registry_file(POLICY / "malls.yml")
    answer = served(LABELS, registry)
    assert answer["malls"]["sh-xujiahui"]["name"] == {"zh": "上海徐家汇店", "en": "Shanghai Xujiahui"}
    assert answer["malls"]["sh-xujiahui"]["merchants"]["T-17"] == "佳农水果"
    assert answer["malls"]["gz-tianhe"]["timezone"] == "Asia/Shanghai"
    for mall in registry.malls.values():
        assert answer["malls"][mall.id]["name"]["en"], mall.id


def test_every_way_a_revisit_asks_has_words():
    ways = policy("feedback")["revisit"]["ways"].values()
    assert set(ways) <= set(GROUPS["revisit_way"]), set(ways) - set(GROUPS["revisit_way"])
