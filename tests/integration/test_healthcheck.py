"""R6.1: the container health check asks the running service's /health, on the
port its config.yml gives (with the env override compose and k8s use)."""

import pytest

from mallcare_common.healthcheck import main as healthcheck
from triage.service import TriageService


@pytest.fixture
def at_repo_root(monkeypatch):
    from tests.helpers import ROOT

    monkeypatch.chdir(ROOT)


def test_healthy_when_the_service_answers(at_repo_root, container_factory, service_config, monkeypatch):
    config = service_config("triage")
    container = container_factory(TriageService, config)
    container.start()
    monkeypatch.setenv("TRIAGE_WEB_ADDRESS", config["WEB_SERVER_ADDRESS"])
    assert healthcheck("triage") == 0


def test_unhealthy_when_nothing_answers(at_repo_root, monkeypatch):
    from tests.helpers import free_port

    monkeypatch.setenv("TRIAGE_WEB_ADDRESS", f"127.0.0.1:{free_port()}")
    assert healthcheck("triage") == 1
