"""`mallcare`, run as an operator runs it (the console script in the venv's bin), against
services running on the real broker and store: status sees them, their queues and a
dead letter (through RabbitMQ's management API) and fails when one is down or a dead
letter waits; `deadletters` is the dead-letter command; `policy validate` names each
broken file and field, `policy reload` reloads running services as admin and reports a
refusal; `seed` registers demo complaints at intake for several malls; `retention` and
`rebuild analytics` run their service's command on its store."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kombu import Connection

from tests.helpers import POLICY_DIR, ROOT, SIGNING_KEY, free_port, wait_for
from tests.integration.test_dead_letters import INTAKE_EVENTS, TRIAGE_QUEUE
from tests.integration.test_policy_files import BROKEN, edit
from triage import learned

MALLCARE = Path(sys.executable).parent / "mallcare"


def mallcare(*args, **env):
    return subprocess.run(
        [str(MALLCARE), *args], cwd=ROOT, text=True, capture_output=True, timeout=60, env={**os.environ, **env}
    )


def url(container):
    return "http://" + container.config["WEB_SERVER_ADDRESS"]


def test_status_shows_services_queues_and_dead_letters_and_fails_when_one_is_down_or_waits(start):
    intake, triage = start("intake"), start("triage")
    amqp = triage.config["AMQP_URI"]
    urls = ["--url", f"intake={url(intake)}", "--url", f"triage={url(triage)}"]
    both = [*urls, "--service", "intake", "--service", "triage"]

    ok = mallcare("status", *both, AMQP_URI=amqp)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert re.search(rf"^intake +{url(intake)} +ok +ok$", ok.stdout, re.M) and ok.stdout.endswith("all ok\n")
    assert f"vhost {amqp.rsplit('/', 1)[1]}" in ok.stdout
    assert TRIAGE_QUEUE in ok.stdout and "rpc-intake" in ok.stdout

    with Connection(amqp) as conn:  # not JSON: triage dead-letters it at once
        conn.Producer().publish(
            b"not an event",
            exchange=INTAKE_EVENTS,
            routing_key="complaint_registered",
            content_type="application/json",
            content_encoding="utf-8",
        )

    def counted():  # the management API counts on its statistics tick (5 s)
        report = json.loads(mallcare("status", *both, "--json", AMQP_URI=amqp).stdout)
        consumers = {q["queue"]: q["consumers"] for q in report["queues"]}
        return report["dead_letters"] and consumers.get(TRIAGE_QUEUE) and report

    report = wait_for(counted)
    assert report["dead_letters"] == 1 and report["problems"] == [
        "1 dead letter(s) wait in mallcare.dead-letters: mallcare deadletters list"
    ]
    assert mallcare("status", *both, AMQP_URI=amqp).returncode == 1
    listed = mallcare("deadletters", "list", AMQP_URI=amqp)
    assert listed.returncode == 0 and TRIAGE_QUEUE in listed.stdout and "undecodable" in listed.stdout

    down = f"http://127.0.0.1:{free_port()}"
    gone = mallcare(
        "status", *urls, "--url", f"resolution={down}", "--service", "intake", "--service", "resolution", AMQP_URI=amqp
    )
    assert gone.returncode == 1
    assert f"! resolution at {down}: down (ConnectionError)" in gone.stdout


def test_policy_validate_names_every_broken_file_and_field(policy_dir):
    assert mallcare("policy", "validate", str(policy_dir)).returncode == 0
    for name, (change, _) in BROKEN.items():
        edit(policy_dir / f"{name}.yml", change)
    (policy_dir / "access.yml").write_text("permissions: [\n", encoding="utf-8")
    checked = mallcare("policy", "validate", str(policy_dir))
    assert checked.returncode == 1
    assert checked.stdout.startswith(f"ok       {policy_dir}/malls.yml")
    assert f"INVALID  {policy_dir}/access.yml" in checked.stdout and "not YAML" in checked.stdout
    for name, (_, field) in BROKEN.items():
        assert f"INVALID  {policy_dir}/{name}.yml\n         {field}" in checked.stdout

    (policy_dir / "malls.yml").write_text("version: 1\n", encoding="utf-8")
    checked = mallcare("policy", "validate", str(policy_dir))
    assert checked.returncode == 1 and checked.stdout.count("INVALID") == 1
    assert "chain: Missing data for required field." in checked.stdout


def test_policy_reload_reloads_running_services_as_admin_and_reports_a_refusal(start, policy_dir):
    triage = start("triage")
    reload = ["policy", "reload", "--service", "triage", "--url", f"triage={url(triage)}"]
    edit(policy_dir / "triage.yml", lambda d: d.update(version="2026-12-06.1"))
    malls = yaml.safe_load((policy_dir / "malls.yml").read_text(encoding="utf-8"))["version"]
    done = mallcare(*reload, MALLCARE_SIGNING_KEY=SIGNING_KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == f"triage     reloaded: version 2026-12-06.1+malls:{malls}+model:{learned.shipped().version}\n"
    edit(policy_dir / "triage.yml", BROKEN["triage"][0])
    refused = mallcare(*reload, MALLCARE_SIGNING_KEY=SIGNING_KEY)
    assert refused.returncode == 1 and "refused (422 INVALID_POLICY)" in refused.stdout
    assert BROKEN["triage"][1] in refused.stdout
    closed = f"http://127.0.0.1:{free_port()}"
    silent = mallcare(
        "policy", "reload", "--url", f"intake={closed}", "--service", "intake", MALLCARE_SIGNING_KEY=SIGNING_KEY
    )
    assert silent.returncode == 1 and silent.stdout == f"intake     {closed}: no answer (ConnectionError)\n"


def test_seed_registers_demo_complaints_for_n_malls_at_intake(start, web_client):
    intake = start("intake")
    seeded = mallcare(
        "seed",
        "--malls",
        "2",
        "--complaints",
        "4",
        "--url",
        f"intake={url(intake)}",
        MALLCARE_SIGNING_KEY=SIGNING_KEY,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert seeded.stdout == "sh-xujiahui    4 registered\nbj-chaoyang    4 registered\n"
    web = web_client(intake)
    for mall in ("sh-xujiahui", "bj-chaoyang"):
        listed = web.get("/complaints", params={"mall_id": mall}).json()
        assert listed["total"] == 4 and {c["channel"] for c in listed["items"]} == {"desk"}
    assert web.get("/complaints", params={"mall_id": "gz-tianhe"}).json()["total"] == 0


@pytest.mark.parametrize(
    "command, service, prints",
    [
        (["retention", "dry-run", "--service", "intake"], "intake", {"dry_run": True, "candidates": 0}),
        (["retention", "run", "--service", "resolution"], "resolution", {"dry_run": False, "anonymised": 0}),
        (["rebuild", "analytics"], "analytics", None),
    ],
)
def test_retention_and_rebuild_run_the_services_own_commands_on_their_store(
    command, service, prints, mongo_uri, mongo_client, tmp_path
):
    database = f"cli_{tmp_path.name[-20:]}_{service}"
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {"MONGO_URI": mongo_uri, "MONGO_DATABASE": database, "MALLCARE": {"POLICY_DIR": str(POLICY_DIR)}}
        ),
        encoding="utf-8",
    )
    ran = mallcare(*command, "--config", str(config))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    if prints:
        assert json.loads(ran.stdout).items() >= prints.items()
        assert mongo_client[database].retention_runs.count_documents({"service": service}) == 1
    else:
        assert ran.stdout.strip() == "{'events': 0, 'skipped_without_payload': 0, 'clock_outcomes': 0}"
