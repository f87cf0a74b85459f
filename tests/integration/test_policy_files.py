"""Policy files on running services (the real broker and store): every service refuses to
start on a broken policy file and names the file and the field; every service reloads its
policy over HTTP and RPC, refuses a broken file with the reason, and keeps applying the
policy in force until a valid file comes. A reload on one replica reaches the service's others."""

import logging
import shutil
from datetime import datetime, timedelta

import pytest
import yaml
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_waiter

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.policy import InvalidPolicy
from notify.service import NotifyService
from resolution.service import ResolutionService
from tests.helpers import POLICY_DIR, bearer
from triage.service import TriageService

SERVICES = {
    cls.name: cls
    for cls in (IntakeService, TriageService, ResolutionService, FeedbackService, AnalyticsService, NotifyService)
}
BROKEN = {  # one way to break each file, and the field the refusal must name
    "intake": (lambda d: d["acknowledgement"]["desk"].update(minutes="one"), "acknowledgement.desk.value.minutes"),
    "triage": (lambda d: d.update(taxonomy=["product"]), "taxonomy: Not a valid mapping type."),
    "resolution": (lambda d: d["roles"].update(chairman={"rank": 11, "limit": 1}), "roles.chairman.value.rank"),
    "feedback": (lambda d: d.update(satisfied_from=9), "satisfied_from: Must be greater than or equal to 1 and less"),
    "analytics": (lambda d: d["sla"].update(at_risk_shares=0.5), "sla.at_risk_shares: Unknown field."),
    "notify": (
        lambda d: d["languages"]["zh"]["templates"]["promise"].update(short="{{ expected_at }}"),
        "languages.zh.templates.promise.short: Template: 'expected_at' is undefined.",
    ),
}


def edit(path, change):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_does_not_start_on_a_broken_policy_and_says_which_file_and_field(name, start, policy_dir):
    change, field = BROKEN[name]
    edit(policy_dir / f"{name}.yml", change)
    with pytest.raises(InvalidPolicy) as refused:
        start(name)
    assert str(refused.value).startswith(f"{policy_dir / name}.yml is invalid: ") and field in str(refused.value)


def test_a_broken_mall_registry_stops_them_all(start, policy_dir):
    (policy_dir / "malls.yml").write_text("version: 1\nmalls: [\n", encoding="utf-8")
    for name in SERVICES:
        with pytest.raises(InvalidPolicy, match=r"malls.yml is invalid: not YAML: .*line"):
            start(name)


@pytest.mark.parametrize("name", SERVICES)
def test_a_reload_refuses_a_broken_file_over_http_and_rpc_and_keeps_the_policy_in_force(
    name, start, policy_dir, web_client, rabbit_config
):
    web = web_client(start(name))
    in_force = web.get("/policy").json()
    change, field = BROKEN[name]
    edit(policy_dir / f"{name}.yml", lambda data: change(data) or data.update(version="2099-broken"))

    refused = web.post("/policy/reload")
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "INVALID_POLICY"
    assert f"{name}.yml is invalid: " in refused.json()["message"] and field in refused.json()["message"]
    with ClusterRpcProxy(
        {"AMQP_URI": rabbit_config["AMQP_URI"]}, context_data={"authorization": bearer()["Authorization"]}
    ) as cluster:
        with pytest.raises(RemoteError) as remote:
            getattr(cluster, name).reload_policy()
        assert remote.value.exc_type == "InvalidPolicy" and field in remote.value.value
        assert getattr(cluster, name).get_policy() == in_force
    assert web.get("/policy").json() == in_force

    shutil.copy(POLICY_DIR / f"{name}.yml", policy_dir / f"{name}.yml")
    edit(policy_dir / f"{name}.yml", lambda data: data.update(version="2099-01-01"))
    assert web.post("/policy/reload").json()["version"].startswith("2099-01-01+malls:")


def test_after_a_refused_reload_intake_still_applies_the_old_rules_and_after_a_good_one_the_new(
    start, policy_dir, web_client
):
    web = web_client(start("intake"))

    def ack_allowed(channel_ref):
        complaint = web.post(
            "/complaints", json=desk_complaint(channel_ref=channel_ref, description=f"草莓发霉了 ({channel_ref})")
        ).json()  # not a duplicate
        assert complaint["status"] == "registered", complaint
        return datetime.fromisoformat(complaint["ack_due_at"]) - datetime.fromisoformat(complaint["received_at"])

    assert ack_allowed("before") == timedelta(minutes=1)  # the desk acknowledges within a minute
    # a new desk rule beside a mistake elsewhere in the file: none of the file may apply
    edit(
        policy_dir / "intake.yml",
        lambda data: (
            data["acknowledgement"]["desk"].update(minutes=45) or data["review"].update(min_description_chars="ten")
        ),
    )
    assert web.post("/policy/reload").status_code == 422
    assert ack_allowed("after-refusal") == timedelta(minutes=1)
    edit(policy_dir / "intake.yml", lambda data: data["review"].update(min_description_chars=5))
    assert web.post("/policy/reload").status_code == 200
    assert ack_allowed("after-reload") == timedelta(minutes=45)


def test_a_reload_on_either_replica_reaches_the_other_and_a_broken_file_changes_neither(
    start, policy_dir, web_client, caplog
):
    caplog.set_level(logging.INFO)
    replicas = [start("triage"), start("triage")]
    webs = [web_client(container) for container in replicas]
    versions = []
    for took, told, threshold in ((0, 1, 0.75), (1, 0, 0.8)):
        edit(
            policy_dir / "triage.yml",
            lambda data, threshold=threshold, took=took: (
                data["classification"].update(confidence_threshold=threshold)
                or data.update(version=f"2099-01-0{took + 1}")
            ),
        )
        with entrypoint_waiter(replicas[told], "follow_policy_reload"):
            reloaded = webs[took].post("/policy/reload")
        assert reloaded.status_code == 200, reloaded.text
        versions.append(reloaded.json()["version"])
        assert versions[-1].startswith(f"2099-01-0{took + 1}+malls:")
        for web in webs:
            policy = web.get("/policy").json()
            assert (policy["version"], policy["classification"]["confidence_threshold"]) == (versions[-1], threshold)
    # each followed the other once, and not its own reload (which it would read a second time)
    followed = [r.getMessage() for r in caplog.records if "as another replica reloaded it" in r.getMessage()]
    assert followed == [f"policy {version} in force, as another replica reloaded it" for version in versions]

    change, field = BROKEN["triage"]
    edit(policy_dir / "triage.yml", lambda data: change(data) or data.update(version="2099-broken"))
    refused = webs[0].post("/policy/reload")
    assert refused.status_code == 422 and field in refused.json()["message"]
    assert [web.get("/policy").json()["version"] for web in webs] == [versions[-1]] * 2


def test_a_replica_that_cannot_follow_a_reload_keeps_its_policy_and_logs_why(
    start, policy_dir, tmp_path, web_client, caplog
):
    """Here the second replica's files differ (in production: a file changed again and broke
    between the two reads, or a volume not yet updated)."""
    caplog.set_level(logging.INFO)
    own_dir = tmp_path / "second"
    shutil.copytree(policy_dir, own_dir)
    first, second = start("triage"), start("triage", own_dir)
    in_force = web_client(second).get("/policy").json()["version"]
    edit(policy_dir / "triage.yml", lambda data: data.update(version="2099-01-01"))
    change, field = BROKEN["triage"]
    edit(own_dir / "triage.yml", change)

    with entrypoint_waiter(second, "follow_policy_reload"):
        assert web_client(first).post("/policy/reload").json()["version"].startswith("2099-01-01+malls:")
    assert web_client(second).get("/policy").json()["version"] == in_force
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "(version 2099-01-01+malls:" in error and f"{in_force} stays in force" in error and field in error

    # a valid file of another version: taken, and the difference said
    shutil.copy(POLICY_DIR / "triage.yml", own_dir / "triage.yml")
    caplog.clear()
    with entrypoint_waiter(second, "follow_policy_reload"):
        web_client(first).post("/policy/reload")
    assert web_client(second).get("/policy").json()["version"] == in_force
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"policy {in_force} in force here, but the replica that reloaded loaded 2099-01-01+" in warning
