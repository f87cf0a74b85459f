"""Fixtures shared by the integration tests (the root conftest has the infrastructure)."""

import re
import shutil
from datetime import timedelta

import eventlet
import pytest
import yaml
from kombu import Connection
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import replace_dependencies

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import load_access
from notify.service import NotifyService
from resolution.service import ResolutionService
from tests.integration.dovecot import PASSWORD, USER, Dovecot
from tests.helpers import api_key, POLICY_DIR, bearer, catch_all, handled, settle_at_desk, staff
from triage.service import TriageService

PERMISSIONS = load_access(POLICY_DIR / "access.yml")["permissions"]
ADMIN, SUPERVISOR = bearer("A0001", "admin", ["*"]), bearer("S0001", "supervisor", ["*"])


# In the run script's order (scripts/run.sh): subscribers first, as intake publishes mandatory.
SERVICES = {
    cls.name: cls
    for cls in (TriageService, AnalyticsService, ResolutionService, FeedbackService, NotifyService, IntakeService)
}


class System:
    """The services one test started (`services`), by name: their containers, configs and
    WebClients (signed in as a chain-wide admin), their databases, the broker's URI, and
    the test's queues on their events (`catch_all`), and further replicas (`replica`)."""

    def __init__(self, containers, web, mongo_client, amqp_uri, start_replica):
        self.containers = containers
        self.config = {name: container.config for name, container in containers.items()}
        self.web = web
        self.amqp = amqp_uri
        self.dispatch = event_dispatcher({"AMQP_URI": amqp_uri})  # (source, event_type, payload), as a service
        self.queues = {}
        self._mongo = mongo_client
        self._connection = None
        self._start_replica = start_replica

    def db(self, name):
        """Service `name`'s database."""
        return self._mongo[self.config[name]["MONGO_DATABASE"]]

    def case_opened(self):
        """A wait (tests.helpers.handled) until resolution has opened the case of the
        complaint registered inside it; one complaint on its way at a time (its number is
        known only once intake answers, and resolution may open its case before that)."""
        return handled(self.containers["resolution"], "handle_complaint_triaged")

    def rpc(self, signed_in=None):
        """A ClusterRpcProxy (a context) signed in with the Authorization header `signed_in`
        (as bearer() and staff() give it); anonymous without."""
        context = {"authorization": signed_in["Authorization"]} if signed_in else {}
        return ClusterRpcProxy({"AMQP_URI": self.amqp}, context_data=context)

    def catch_all(self, *sources):
        """tests.helpers.catch_all on a connection the system keeps until the test ends; the
        queues are kept in .queues too, by source."""
        if self._connection is None:
            self._connection = Connection(self.amqp)
        self.queues.update(catch_all(self._connection, *sources))
        return self.queues

    def replica(self, name):
        """Starts another replica of service `name` (a container of its own, on its own HTTP
        port, with the same databases, settings and clock as the first) and gives it."""
        return self._start_replica(name)

    def close(self):
        if self._connection is not None:
            self._connection.release()


@pytest.fixture
def services(container_factory, service_config, web_client, rabbit_config, mongo_client):
    """Starts the services named (all six without a name) in the run script's order, each
    with its own config, and gives their System. `clocks`: a clock by service name, put in
    before it starts; `settings`: MALLCARE settings by service name, over service_config's."""
    systems = []

    def start(*names, clocks=None, settings=None):
        unknown = set(names) - set(SERVICES)
        assert not unknown, f"no service called {sorted(unknown)}"
        configs = {}

        def run(name, config):
            container = container_factory(SERVICES[name], config)
            if clocks and name in clocks:
                replace_dependencies(container, clock=clocks[name])
            container.start()
            return container

        def replica(name):  # the first's config on a port of its own
            return run(name, {**configs[name], "WEB_SERVER_ADDRESS": service_config(name)["WEB_SERVER_ADDRESS"]})

        containers = {}
        for name in SERVICES:
            if names and name not in names:
                continue
            configs[name] = service_config(name)
            configs[name]["MALLCARE"] = {**configs[name]["MALLCARE"], **(settings or {}).get(name, {})}
            containers[name] = run(name, configs[name])
        systems.append(
            System(
                containers,
                {name: web_client(c) for name, c in containers.items()},
                mongo_client,
                rabbit_config["AMQP_URI"],
                replica,
            )
        )
        return systems[-1]

    yield start
    for system in systems:
        system.close()


class Subscribers:
    """SDK subscribers (sdk/mallcare-events) a test runs, each until the test ends or it is
    stopped. Green threads: the test process is eventlet-patched for the services (another
    service would use a thread)."""

    def __init__(self):
        self.running = {}

    def start(self, subscriber):
        self.running[subscriber] = eventlet.spawn(subscriber.run)
        return subscriber

    def stop(self, subscriber):
        subscriber.stop()
        self.running.pop(subscriber).wait()


@pytest.fixture
def subscribers():
    running = Subscribers()
    yield running
    for subscriber in list(running.running):
        running.stop(subscriber)


@pytest.fixture
def shift():
    """How far the test has moved a clock on (a `clocks` entry adds shift["by"])."""
    return {"by": timedelta(0)}


@pytest.fixture
def system(services):
    """All six services, as they run; a test module that needs another set or set-up (a
    clock, a setting) defines its own `system` from `services`."""
    return services()


def seed(system):
    """A complaint settled at the desk (its assessment, case, revisit and library entry), an
    incident and an improvement action: ids for the path parameters (an attachment's too)."""
    web, desk, handler = system.web, staff("D3001"), staff("E3501")
    with system.case_opened():
        number = web["intake"].post("/complaints", json=desk_complaint(), headers=desk).json()["number"]
    settle_at_desk(system, number, desk)
    archived = web["feedback"].post(
        "/library", headers=handler, json={"complaint_no": number, "lessons": "check the cold chain"}
    )
    assert archived.status_code == 201, archived.text
    incident = web["resolution"].post(
        "/incidents",
        headers=desk,
        json={
            "mall_id": "sh-xujiahui",
            "type": "injury",
            "occurred_at": "2026-11-01T10:00:00+08:00",
            "place": {"area": "一楼生鲜区"},
            "description": "wet floor",
            "customer": {"phone": "13900001111"},
            "suggested_handling": "pay the doctor",
        },
    )
    assert incident.status_code == 201, incident.text
    action = web["analytics"].post(
        "/actions",
        json={
            "mall_id": "sh-xujiahui",
            "problem": {"summary": "mouldy fruit"},
            "whys": ["cold chain broke"],
            "root_cause": "no alarm",
            "action": "fit an alarm",
            "owner_id": "E3091",
            "due_date": "2026-12-31",
        },
    )
    assert action.status_code == 201, action.text
    return {
        "number": number,
        "complaint_no": number,
        "revisit_id": f"{number}-R1",
        "incident": incident.json()["number"],
        "action_id": action.json()["action_id"],
        "file_id": f"{number}.0000000000.1",
        "survey_id": "SHXJH-SVY-2026-11-001",
    }  # a desk complaint has no mail's files, nor a survey (its case is not closed): 404 behind the checks


def signed_in_for(permission):
    """The headers of a chain-wide caller holding `permission` (None: an open operation)."""
    if permission is None:
        return ADMIN  # open operations (health, answers by link): a token changes nothing
    if permission == "merchant.case":
        return api_key("t17-sh")  # a merchant's own routes take its key, no staff token (R7.5)
    return ADMIN if "admin" in PERMISSIONS[permission] else SUPERVISOR  # admins hold no case.act, customer.contact


def path_ids(service, path, ids):
    """The path parameters of the OpenAPI `path` that `ids` (from `seed`) has values for."""
    names = re.findall(r"{(\w+)}", path)
    # a month of the library's review (feedback) and a member of staff (resolution's directory) that exist
    values = {"month": "2026-11", "staff_id": "E3501", **ids}
    if service == "resolution":
        values["number"] = ids["incident"]  # resolution's {number} is an incident's
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

    def start(name, directory=policy_dir):
        config = service_config(name)
        config["MALLCARE"] = {**config["MALLCARE"], "POLICY_DIR": str(directory)}
        container = container_factory(SERVICES[name], config)
        container.start()
        return container

    return start


@pytest.fixture
def dovecot():
    """A real IMAP server (tests/integration/dovecot.py) with sh-xujiahui's complaint mailbox."""
    server = Dovecot()
    yield server
    server.stop()


@pytest.fixture
def mailbox_settings(dovecot, policy_dir):
    """intake's MALLCARE settings with sh-xujiahui's mailbox on the test's server (or
    `server`), read every `wait_seconds` where the server offers no IDLE."""

    def settings(server=dovecot, wait_seconds=1):
        path = policy_dir / "intake.yml"
        policy = yaml.safe_load(path.read_text(encoding="utf-8"))
        policy["mailboxes"] = {
            "sh-xujiahui": {
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "user": USER,
                "password": "MAILBOX_PASSWORD_SH_XUJIAHUI",
            }
        }
        path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        return {
            "POLICY_DIR": str(policy_dir),
            "MAILBOX_PASSWORD_SH_XUJIAHUI": PASSWORD,
            "MAILBOX_WAIT_SECONDS": wait_seconds,
        }

    return settings
