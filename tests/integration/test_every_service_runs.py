"""R6.1, R6.2: each of the six services runs alone as its own OS process, started
with the very command scripts/run.sh, the Dockerfile and the runbook use
(`nameko run --config services/<svc>/config.yml <svc>.service`), configured from
the environment only, and answers /health and /metrics. Its log is JSON lines, a refusal
one line without traceback, and SIGTERM stops it within seconds (issue 17)."""

import json
import signal
import time
import uuid

import pytest
import requests

from mallcare_cli.examples import desk_complaint
from tests.helpers import bearer, free_ports, start_service, stop_services, wait_for

SERVICES = ("triage", "analytics", "resolution", "feedback", "notify", "intake")


@pytest.fixture
def running(rabbit_config, mongo_uri, secrets_file, tmp_path):
    """Start all six as the run script does; stop them at the end."""
    run = uuid.uuid4().hex[:8]
    processes, ports = {}, dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    for service in SERVICES:
        processes[service] = start_service(
            service,
            ports[service],
            run,
            tmp_path,
            amqp_uri=rabbit_config["AMQP_URI"],
            mongo_uri=mongo_uri,
            secrets_file=secrets_file,
        )
    yield ports, processes, tmp_path
    stop_services(processes.values())


def healthy(port, process, deadline):
    while time.monotonic() < deadline and process.poll() is None:
        try:
            response = requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
            if response.status_code == 200:
                return response.json()
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return None


def test_every_service_starts_from_its_config_and_reports_health(running):
    ports, processes, logs = running
    deadline = time.monotonic() + 60
    for service in SERVICES:
        health = healthy(ports[service], processes[service], deadline)
        assert health == {"service": service, "status": "ok", "store": "ok", "broker": "ok", "consumers": "ok"}, (
            logs / f"{service}.log"
        ).read_text()[-3000:]
        live = requests.get(f"http://127.0.0.1:{ports[service]}/health/live", timeout=5)
        assert live.json() == {"service": service, "status": "ok"}
        metrics = requests.get(f"http://127.0.0.1:{ports[service]}/metrics", timeout=5)
        assert "mallcare_events_handled_total" in metrics.text


def test_a_complaint_crosses_from_the_intake_process_to_the_triage_process(running):
    ports, processes, _ = running
    deadline = time.monotonic() + 60
    assert all(healthy(ports[s], processes[s], deadline) for s in SERVICES)
    number = requests.post(
        f"http://127.0.0.1:{ports['intake']}/complaints", json=desk_complaint(), headers=bearer(), timeout=10
    ).json()["number"]
    assessment = wait_for(
        lambda: (
            requests.get(f"http://127.0.0.1:{ports['triage']}/assessments/{number}", headers=bearer(), timeout=5)
            .json()
            .get("status")
        )
    )
    assert assessment == "open"


STOP_SECONDS = 10  # what "stops on SIGTERM within a few seconds" allows (scripts/run.sh kills after 20)


def test_each_service_logs_json_lines_refusals_without_traceback_and_stops_on_sigterm(running):
    ports, processes, logs = running
    deadline = time.monotonic() + 60
    assert all(healthy(ports[s], processes[s], deadline) for s in SERVICES)
    handler = bearer("E3501", "handler", ["sh-xujiahui"])  # may not policy.read
    asked = {}
    for service in SERVICES:
        base = f"http://127.0.0.1:{ports[service]}"
        asked[service] = [
            requests.get(base + "/policy", headers=handler, timeout=5),
            requests.get(base + "/policy", timeout=5),
            requests.get(base + "/no-such-path", timeout=5),
        ]
        assert [r.status_code for r in asked[service]] == [403, 401, 404]
    for service in SERVICES:
        processes[service].send_signal(signal.SIGTERM)
    for service in SERVICES:
        assert processes[service].wait(timeout=STOP_SECONDS) == 0, service

    for service in SERVICES:
        lines = [json.loads(text) for text in (logs / f"{service}.log").read_text().splitlines()]  # JSON, all
        assert any(line["message"] == f"stopping services: {service}" for line in lines)
        for response, level, caller in zip(
            asked[service], ("WARNING", "WARNING", "INFO"), ("E3501", None, None), strict=True
        ):
            [line] = [line for line in lines if line.get("request_id") == response.headers["X-Request-Id"]]
            assert (line["level"], line["status"], line["caller"]) == (level, response.status_code, caller)
        assert not [line for line in lines if "traceback" in line], service
