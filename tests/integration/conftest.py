"""Fixtures shared by the integration tests (the root conftest has the infrastructure)."""
import re
import shutil

import pytest

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import load_access
from resolution.service import ResolutionService
from tests.helpers import POLICY_DIR, bearer, settle_at_desk, staff
from triage.service import TriageService

PERMISSIONS = load_access(POLICY_DIR / "access.yml")["permissions"]
ADMIN, SUPERVISOR = bearer("A0001", "admin", ["*"]), bearer("S0001", "supervisor", ["*"])


@pytest.fixture
def five_services(container_factory, service_config, web_client):
    """All five services in one test, subscribers first as the run script starts them:
    (containers by name, WebClients by name)."""
    containers = {}
    for service in (AnalyticsService, FeedbackService, ResolutionService, TriageService, IntakeService):
        containers[service.name] = container_factory(service, service_config(service.name))
        containers[service.name].start()
    return containers, {name: web_client(c) for name, c in containers.items()}


def seed(web):
    """A complaint settled at the desk (its assessment, case, revisit and library entry), an
    incident and an improvement action: ids for the path parameters."""
    desk, handler = staff("D3001"), staff("E3501")
    number = web["intake"].post("/complaints", json=desk_complaint(), headers=desk).json()["number"]
    settle_at_desk(web, number, desk)
    archived = web["feedback"].post("/library", headers=handler, json={"complaint_no": number,
                                                                       "lessons": "check the cold chain"})
    assert archived.status_code == 201, archived.text
    incident = web["resolution"].post("/incidents", headers=desk, json={
        "mall_id": "sh-xujiahui", "type": "injury", "description": "wet floor", "customer": {"phone": "13900001111"},
        "suggested_handling": "pay the doctor"})
    assert incident.status_code == 201, incident.text
    action = web["analytics"].post("/actions", json={
        "mall_id": "sh-xujiahui", "problem": {"summary": "mouldy fruit"}, "whys": ["cold chain broke"],
        "root_cause": "no alarm", "action": "fit an alarm", "owner_id": "E3091", "due_date": "2026-12-31"})
    assert action.status_code == 201, action.text
    return {"number": number, "complaint_no": number, "revisit_id": f"{number}-R1",
            "incident": incident.json()["number"], "action_id": action.json()["action_id"]}


def signed_in_for(permission):
    """The headers of a chain-wide caller holding `permission` (None: an open operation)."""
    if permission is None:
        return ADMIN    # open operations (health, answers by link): a token changes nothing
    return ADMIN if "admin" in PERMISSIONS[permission] else SUPERVISOR   # admins hold no case.act, customer.contact


def path_ids(service, path, ids):
    """The path parameters of the OpenAPI `path` that `ids` (from `seed`) has values for."""
    names = re.findall(r"{(\w+)}", path)
    values = dict(ids)
    if service == "resolution":
        values["number"] = ids["incident"]     # resolution's {number} is an incident's
    return {name: values[name] for name in names if name in values}


@pytest.fixture
def policy_dir(tmp_path):
    """A copy of deploy/policy the test may edit (test_policy_files.edit)."""
    shutil.copytree(POLICY_DIR, tmp_path / "policy")
    return tmp_path / "policy"


@pytest.fixture
def start(container_factory, service_config, policy_dir):
    """Starts a service by name on `policy_dir` (or another directory); each replica of a
    service started in one test shares its databases."""
    services = {cls.name: cls for cls in (IntakeService, TriageService, ResolutionService, FeedbackService,
                                          AnalyticsService)}

    def start(name, directory=policy_dir):
        config = service_config(name)
        config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(directory)}
        container = container_factory(services[name], config)
        container.start()
        return container
    return start
