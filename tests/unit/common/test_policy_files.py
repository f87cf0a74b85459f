"""Policy files that cannot be used are refused with a message naming the file and the
field, for every service's file and the mall registry, and a reload that meets one keeps
the policy in force."""

import shutil
from types import SimpleNamespace

import pytest
import yaml

from analytics.policy import load_policy as load_analytics
from feedback.policy import load_policy as load_feedback
from intake.policy import load_policy as load_intake
from mallcare_common.auth import load_access
from mallcare_common.policy import InvalidPolicy, PolicyFiles, load_policy_dir
from resolution.policy import load_policy as load_resolution
from tests.conftest import POLICY_DIR
from triage.policy import load_policy as load_triage

LOADERS = {
    "intake.yml": load_intake,
    "triage.yml": load_triage,
    "resolution.yml": load_resolution,
    "feedback.yml": load_feedback,
    "analytics.yml": load_analytics,
}


@pytest.fixture
def policy_dir(tmp_path):
    shutil.copytree(POLICY_DIR, tmp_path / "policy")
    return tmp_path / "policy"


def edit(path, change):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def refusal(policy_dir, filename):
    with pytest.raises(InvalidPolicy) as refused:
        load_policy_dir(policy_dir, filename, LOADERS[filename])
    return refused.value


@pytest.mark.parametrize("filename", sorted(LOADERS))
def test_the_shipped_policies_load(filename):
    assert load_policy_dir(POLICY_DIR, filename, LOADERS[filename]).version


@pytest.mark.parametrize("filename", sorted(LOADERS))
def test_bad_yaml_is_refused_with_the_file_and_line(policy_dir, filename):
    (policy_dir / filename).write_text("version: 1\nsla: [unclosed\n", encoding="utf-8")
    error = refusal(policy_dir, filename)
    assert str(error).startswith(f"{policy_dir / filename} is invalid: not YAML")
    assert "line" in str(error)


@pytest.mark.parametrize("filename", sorted(LOADERS))
def test_an_unknown_key_is_refused_by_name(policy_dir, filename):
    edit(policy_dir / filename, lambda data: data.update(surprise=True))
    error = refusal(policy_dir, filename)
    assert f"{filename} is invalid: surprise: Unknown field." in str(error)
    assert error.messages == {"surprise": ["Unknown field."]}


@pytest.mark.parametrize("filename", sorted(LOADERS))
def test_a_missing_required_section_is_refused_by_name(policy_dir, filename):
    edit(policy_dir / filename, lambda data: data.pop("version"))
    assert "version: Missing data for required field." in str(refusal(policy_dir, filename))


@pytest.mark.parametrize(
    "filename, change, field",
    [
        (
            "intake.yml",
            lambda d: d["acknowledgement"]["desk"].update(minutes="ten"),
            "acknowledgement.desk.value.minutes",
        ),
        ("triage.yml", lambda d: d.update(taxonomy="nonsense"), "taxonomy: Not a valid mapping type."),
        ("resolution.yml", lambda d: d["roles"]["handler"].update(rank="first"), "roles.handler.value.rank"),
        ("feedback.yml", lambda d: d.update(satisfied_from=9), "satisfied_from: Must be greater than or equal to 1"),
        ("analytics.yml", lambda d: d["sla"].update(at_risk_share=[0.5]), "sla.at_risk_share: Not a valid number."),
    ],
)
def test_a_wrong_type_or_value_is_refused_with_the_fields_path(policy_dir, filename, change, field):
    edit(policy_dir / filename, change)
    assert field in str(refusal(policy_dir, filename))


@pytest.mark.parametrize(
    "text, reason", [("", "found NoneType"), ("- a\n- b\n", "found list"), ("just words\n", "found str")]
)
def test_a_file_that_is_not_a_mapping_is_refused(policy_dir, text, reason):
    (policy_dir / "analytics.yml").write_text(text, encoding="utf-8")
    assert reason in str(refusal(policy_dir, "analytics.yml"))


def test_a_missing_file_and_a_broken_mall_registry_name_their_file(policy_dir):
    (policy_dir / "feedback.yml").unlink()
    assert "feedback.yml is invalid: cannot be read: No such file or directory" in str(
        refusal(policy_dir, "feedback.yml")
    )
    edit(policy_dir / "malls.yml", lambda data: data["malls"][0].update(timezone="Mars/Olympus"))
    error = refusal(policy_dir, "triage.yml")
    assert error.path == str(policy_dir / "malls.yml") and "malls.0.timezone: Unknown time zone" in str(error)


def test_access_yml_is_refused_the_same_way(policy_dir):
    (policy_dir / "access.yml").write_text("version: x\npermissions: {case.read: [chairman]}\n", encoding="utf-8")
    with pytest.raises(InvalidPolicy, match=r"access.yml is invalid: permissions.case.read.value.0: Must be one of"):
        load_access(policy_dir / "access.yml")


def test_a_reload_of_a_broken_file_keeps_the_policy_in_force_and_a_good_one_replaces_it(policy_dir):
    files = PolicyFiles("analytics.yml", load_analytics)
    files.container = SimpleNamespace(config={"MALLCARE": {"POLICY_DIR": str(policy_dir)}})
    files.setup()
    handle = files.get_dependency(None)
    in_force = handle.current
    edit(policy_dir / "analytics.yml", lambda data: data["sla"].update(at_risk_share=2))
    with pytest.raises(InvalidPolicy, match="sla.at_risk_share"):
        handle.reload()
    assert handle.current is in_force
    edit(
        policy_dir / "analytics.yml",
        lambda data: data["sla"].update(at_risk_share=0.42) or data.update(version="2099-01-01"),
    )
    assert handle.reload().version.startswith("2099-01-01+")
    assert handle.current.rules["sla"]["at_risk_share"] == 0.42 != in_force.rules["sla"]["at_risk_share"]


def test_a_service_with_a_broken_file_does_not_start(policy_dir):
    (policy_dir / "intake.yml").write_text("version: [\n", encoding="utf-8")
    files = PolicyFiles("intake.yml", load_intake)
    files.container = SimpleNamespace(config={"MALLCARE": {"POLICY_DIR": str(policy_dir)}})
    with pytest.raises(InvalidPolicy, match=r"intake.yml is invalid: not YAML"):
        files.setup()
