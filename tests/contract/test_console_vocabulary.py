"""Issue 9, issue 20: the console's pick lists say what the services accept. A page offers the
values of a labels.yml group (`labelOptions(group)`, words in both languages from one place) or,
for the few lists that are no code words, a plain JavaScript list; each is checked here against
the services' OpenAPI documents (their marshmallow schemas) or the policy files it comes from,
so that a value added to a schema or a policy cannot be missing from the screens unnoticed."""

import json
import re

import pytest
import yaml

from analytics.reports import COMPLAINT_CLOCKS
from mallcare_common.contracts.notify import FAILURES
from tests.helpers import POLICY_DIR, ROOT

JS = ROOT / "services" / "console" / "console" / "static" / "js"
GROUPS = yaml.safe_load((POLICY_DIR / "labels.yml").read_text(encoding="utf-8"))["groups"]


def offered(file, group):
    """The codes a page offers from labels.yml's `group`, checking that it does offer them."""
    assert f'labelOptions("{group}")' in (JS / file).read_text(encoding="utf-8"), f"{file} offers no {group} list"
    return list(GROUPS[group])


def js_list(file, name):
    """The strings of `const NAME = [...]` (or `export const`) in static/js/<file>."""
    found = re.search(rf"const {name} = \[(.*?)\];", (JS / file).read_text(encoding="utf-8"), re.S)
    assert found, f"{file} has no list {name}"
    return re.findall(r'"([^"]+)"', found.group(1))


def enum(service, schema, prop):
    document = json.loads((ROOT / "docs" / "openapi" / f"{service}.json").read_text())
    spec = document["components"]["schemas"][schema]["properties"][prop]
    # null in a nullable field's enum is the field left out, not a value to pick
    return [value for value in spec.get("enum") or spec["items"]["enum"] if value is not None]


def policy(name):
    return yaml.safe_load((POLICY_DIR / f"{name}.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "file, group, service, schema, prop",
    [
        ("desk.js", "time_band", "intake", "ComplaintIn", "incident_time_band"),
        ("desk.js", "emotion", "intake", "ComplaintIn", "emotion"),
        ("desk.js", "member_tier", "intake", "CustomerIn", "member_tier"),
        ("desk.js", "channel", "intake", "ComplaintIn", "channel"),
        ("case.js", "decision", "resolution", "ProposalIn", "decision"),
        ("desk.js", "decision", "resolution", "SpotResolutionIn", "decision"),
        ("case.js", "finding_source", "resolution", "FindingIn", "source"),
        ("case.js", "via", "resolution", "PromiseIn", "via"),
        ("case.js", "note_kind", "resolution", "NoteIn", "kind"),
        ("case.js", "decision_basis", "resolution", "ProposalIn", "bases"),  # R7.9
        ("case.js", "mediator", "resolution", "ReferralIn", "mediator"),
        ("case.js", "mediation_result", "resolution", "MediationOutcomeIn", "result"),
        ("incidents.js", "via", "resolution", "CommunicationIn", "via"),
        ("library.js", "risk_level", "triage", "AssessmentOut", "risk_level"),
        ("supervision.js", "risk_level", "triage", "AssessmentOut", "risk_level"),
        ("revisits.js", "outcome", "feedback", "AttemptIn", "outcome"),
    ],
)
def test_a_pick_list_offers_what_the_schema_accepts(file, group, service, schema, prop):
    assert sorted(offered(file, group)) == sorted(enum(service, schema, prop))


@pytest.mark.parametrize(
    "file, group, service, path, name",
    [
        ("incidents.js", "incident_state", "resolution", "/incidents", "state"),
        ("actions.js", "action_status", "analytics", "/actions", "status"),
    ],
)
def test_a_filter_offers_what_the_query_accepts(file, group, service, path, name):
    document = json.loads((ROOT / "docs" / "openapi" / f"{service}.json").read_text())
    [parameter] = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
    assert sorted(offered(file, group)) == sorted(v for v in parameter["schema"]["enum"] if v is not None)


def test_the_reason_tags_and_incident_types_offered_are_the_policies():
    assert sorted(offered("revisits.js", "reason_tag")) == sorted(policy("feedback")["reason_tags"])
    assert sorted(offered("incidents.js", "incident_type")) == sorted(policy("resolution")["incidents"]["types"])
    batch_actions = policy("resolution")["batch_checks"]["actions"].values()  # R7.6
    assert sorted(offered("case.js", "batch_action")) == sorted(a for actions in batch_actions for a in actions)


def test_the_remedies_with_an_amount_are_remedies_resolution_takes():
    assert set(js_list("core.js", "REMEDY_TYPES")) <= set(enum("resolution", "RemedyIn", "type"))


def words(language):
    """The keys of WORDS.<language> in i18n.js."""
    text = (JS / "i18n.js").read_text(encoding="utf-8")
    block = text[text.index(f"  {language}: {{") :]
    block = block[: block.index("\n  },")]
    return {quoted or bare for quoted, bare in re.findall(r'(?:"([\w.]+)"|\b(\w+)):\s*"', block)}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_remedy_field_has_its_words_in_both_languages(language):
    missing = {f"remedy.{value}" for value in js_list("core.js", "REMEDY_TYPES")} - words(language)
    assert not missing, f"i18n.js {language} has no words for {sorted(missing)}"


def test_the_categories_offered_are_the_triage_taxonomy():
    """categoryOptions() offers labels.yml's categories with a dot: the taxonomy's, each one."""
    taxonomy = policy("triage")["taxonomy"]
    for file in ("case.js", "actions.js", "library.js", "supervision.js"):
        assert "categoryOptions()" in (JS / file).read_text(encoding="utf-8"), file
    assert sorted(code for code in GROUPS["category"] if "." in code) == sorted(
        f"{attribute}.{kind}" for attribute, kinds in taxonomy.items() for kind in kinds
    )


def test_departments_are_every_department_triage_routes_to():
    routing = policy("triage")["routing"]
    routed = {
        *routing["departments"].values(),
        routing["unclassified"],
        routing["tenant"]["department"],
        routing["security"],
        routing["cross_department"],
    }
    assert set(offered("case.js", "department")) == routed


def test_legal_bases_are_the_statutory_rules_of_the_policy_and_none():
    assert sorted(offered("case.js", "legal_basis")) == sorted([*policy("resolution")["statutory"], "none"])


def test_the_kinds_of_sale_offered_are_the_promotion_rules_of_the_policy_and_none():
    """R7.8, seed 002: 退换货需符合《零售商促销行为管理办法》 — the proposal form offers each kind of sale the
    policy has rules for, and the usual price."""
    for page in ("case.js", "desk.js"):
        assert sorted(offered(page, "promotion")) == sorted([*policy("resolution")["promotion"]["kinds"], "none"])


def test_rectification_kinds_include_every_kind_the_policy_opens():
    opened = {rule["kind"] for rule in policy("resolution")["rectification"].values()}
    assert opened <= set(offered("case.js", "rectification_kind"))


def test_the_dashboard_names_every_stage_analytics_counts():
    incident_clocks = set(
        re.findall(r'start\("(incident_\w+)"', (ROOT / "services/analytics/analytics/clocks.py").read_text())
    )
    assert incident_clocks and set(js_list("dashboard.js", "STAGES")) == set(COMPLAINT_CLOCKS) | incident_clocks
    assert set(js_list("dashboard.js", "STAGES")) <= set(GROUPS["clock"])


def test_the_failed_messages_page_names_every_reason_notify_fails_a_message_for():
    assert sorted(FAILURES) == sorted(GROUPS["failure_reason"])


def test_the_acknowledgement_queue_offers_ways_intake_takes_for_every_channel():
    block = re.search(r"const METHODS = \{(.*?)\};", (JS / "acks.js").read_text(encoding="utf-8"), re.S).group(1)
    ways = {channel: re.findall(r'"([^"]+)"', listed) for channel, listed in re.findall(r"(\w+): \[(.*?)\]", block)}
    assert sorted(ways) == sorted(enum("intake", "ComplaintIn", "channel"))
    taken = set(enum("intake", "AcknowledgementIn", "method"))
    assert all(listed and set(listed) <= taken for listed in ways.values()), ways
