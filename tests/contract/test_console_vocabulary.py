"""Issue 9: the console's pick lists say what the services accept. The pages offer values as
plain JavaScript lists (no build step to generate them); each is checked here against the
services' OpenAPI documents (their marshmallow schemas) or the policy files it comes from,
so that a value added to a schema or a policy cannot be missing from the screens unnoticed,
nor its words in either language (i18n.js)."""

import json
import re

import pytest
import yaml

from analytics.reports import COMPLAINT_CLOCKS
from mallcare_common.contracts.notify import FAILURES
from tests.helpers import POLICY_DIR, ROOT

JS = ROOT / "services" / "console" / "console" / "static" / "js"


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
    "file, name, service, schema, prop",
    [
        ("desk.js", "BANDS", "intake", "ComplaintIn", "incident_time_band"),
        ("desk.js", "EMOTIONS", "intake", "ComplaintIn", "emotion"),
        ("desk.js", "TIERS", "intake", "CustomerIn", "member_tier"),
        ("core.js", "DECISIONS", "resolution", "ProposalIn", "decision"),
        ("core.js", "DECISIONS", "resolution", "SpotResolutionIn", "decision"),
        ("case.js", "SOURCES", "resolution", "FindingIn", "source"),
        ("case.js", "CONTACT_WAYS", "resolution", "PromiseIn", "via"),
        ("library.js", "RISKS", "triage", "AssessmentOut", "risk_level"),
        ("messages.js", "KINDS", "notify", "MessageOut", "kind"),
    ],
)
def test_a_pick_list_offers_what_the_schema_accepts(file, name, service, schema, prop):
    assert sorted(js_list(file, name)) == sorted(enum(service, schema, prop))


def test_the_remedies_with_an_amount_are_remedies_resolution_takes():
    assert set(js_list("core.js", "REMEDY_TYPES")) <= set(enum("resolution", "RemedyIn", "type"))


def words(language):
    """The keys of WORDS.<language> in i18n.js."""
    text = (JS / "i18n.js").read_text(encoding="utf-8")
    block = text[text.index(f"  {language}: {{") :]
    block = block[: block.index("\n  },")]
    return {quoted or bare for quoted, bare in re.findall(r'(?:"([\w.]+)"|\b(\w+)):\s*"', block)}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_value_shown_has_its_words_in_both_languages(language):
    shown = {
        "band": js_list("desk.js", "BANDS"),
        "emotion": js_list("desk.js", "EMOTIONS"),
        "decision": js_list("core.js", "DECISIONS"),
        "via": js_list("case.js", "CONTACT_WAYS"),
        "remedy": js_list("core.js", "REMEDY_TYPES"),
        "stage": js_list("dashboard.js", "STAGES"),
        "basis": js_list("case.js", "LEGAL_BASES"),
        "channel": enum("intake", "ComplaintIn", "channel"),
        "msg.kind": js_list("messages.js", "KINDS"),
        "msg.reason": js_list("messages.js", "REASONS"),
    }
    missing = {f"{prefix}.{value}" for prefix, values in shown.items() for value in values} - words(language)
    assert not missing, f"i18n.js {language} has no words for {sorted(missing)}"


def test_categories_are_the_triage_taxonomy():
    taxonomy = policy("triage")["taxonomy"]
    assert sorted(js_list("case.js", "CATEGORIES")) == sorted(
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
    assert set(js_list("case.js", "DEPARTMENTS")) == routed


def test_legal_bases_are_the_statutory_rules_of_the_policy():
    assert sorted(js_list("case.js", "LEGAL_BASES")) == sorted(policy("resolution")["statutory"])


def test_rectification_kinds_include_every_kind_the_policy_opens():
    opened = {rule["kind"] for rule in policy("resolution")["rectification"].values()}
    assert opened <= set(js_list("case.js", "RECTIFICATION_KINDS"))


def test_the_dashboard_names_every_stage_analytics_counts():
    incident_clocks = set(
        re.findall(r'start\("(incident_\w+)"', (ROOT / "services/analytics/analytics/clocks.py").read_text())
    )
    assert incident_clocks and set(js_list("dashboard.js", "STAGES")) == set(COMPLAINT_CLOCKS) | incident_clocks


def test_the_failed_messages_page_names_every_reason_notify_fails_a_message_for():
    assert sorted(js_list("messages.js", "REASONS")) == sorted(FAILURES)


def test_the_acknowledgement_queue_offers_ways_intake_takes_for_every_channel():
    block = re.search(r"const METHODS = \{(.*?)\};", (JS / "acks.js").read_text(encoding="utf-8"), re.S).group(1)
    ways = {channel: re.findall(r'"([^"]+)"', listed) for channel, listed in re.findall(r"(\w+): \[(.*?)\]", block)}
    assert sorted(ways) == sorted(enum("intake", "ComplaintIn", "channel"))
    taken = set(enum("intake", "AcknowledgementIn", "method"))
    assert all(listed and set(listed) <= taken for listed in ways.values()), ways
