"""R6.1, R6.5: the deployment files are valid and agree with the services they deploy.

There is no Docker engine in CI, so nothing here builds or runs a container. Instead:
docker-compose.yml is validated against the Compose specification (the schema vendored
in check-jsonschema, so no network), and the compose file, the Prometheus scrape config,
the Dockerfile and each service's config.yml are checked against one another, so that a
service added, renamed or given a new setting cannot drift out of the deployment
unnoticed. No broker or store is needed.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")
SUBSCRIBERS = ("triage", "resolution", "feedback", "analytics", "notify")
INFRA = ("rabbitmq", "mongo", "prometheus", "grafana")

# nameko's config substitution: ${VAR:default}
ENV_REF = re.compile(r"\$\{(\w+):([^}]*)\}")


def validate_compose(path):
    """check-jsonschema with its vendored Compose spec schema; works offline."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def config_refs(service):
    """{VAR: default} for every ${VAR:default} in services/<service>/config.yml."""
    return dict(ENV_REF.findall((ROOT / "services" / service / "config.yml").read_text()))


def web_port(service, env):
    """The port the service listens on in its container: its *_WEB_ADDRESS, as nameko reads it."""
    line = next(
        line
        for line in (ROOT / "services" / service / "config.yml").read_text().splitlines()
        if line.startswith("WEB_SERVER_ADDRESS:")
    )
    var, default = ENV_REF.search(line).groups()
    return int(str(env.get(var, default)).rsplit(":", 1)[1])


# (a) the Compose specification ------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec():
    result = validate_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "breakage, complaint",
    [
        (lambda doc: doc["services"]["intake"].__setitem__("ports", "not-a-list"), "ports"),
        (lambda doc: doc.__setitem__("servics", {}), "servics"),
        (
            lambda doc: doc["services"]["intake"]["depends_on"]["triage"].__setitem__("condition", "service_happy"),
            "service_happy",
        ),
    ],
    ids=["ports-not-a-list", "unknown-top-level-key", "unknown-depends-on-condition"],
)
def test_compose_validation_rejects_a_broken_file(tmp_path, compose, breakage, complaint):
    """The validation above can fail: the same check refuses a deliberately broken copy."""
    broken = yaml.safe_load(yaml.safe_dump(compose))
    breakage(broken)
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = validate_compose(path)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


# (b) one container per service, each with its own config and database ---------------


def test_compose_has_one_container_per_service_plus_the_infrastructure(compose):
    assert compose["name"] == "mallcare"
    assert "version" not in compose  # obsolete in the Compose spec
    assert set(compose["services"]) == set(SERVICES) | set(INFRA) | {"console"}


def test_the_console_reaches_the_five_and_reads_what_compose_sets(compose):
    spec = compose["services"]["console"]
    env = spec["environment"]
    for service in SERVICES:
        port = web_port(service, compose["services"][service]["environment"])
        assert env[f"CONSOLE_{service.upper()}_URL"] == f"http://{service}:{port}"
    unread = set(env) - set(config_refs("console"))
    assert not unread, f"console: {sorted(unread)} set in compose but not in its config.yml"
    assert env["CONSOLE_WEB_ADDRESS"].endswith(":8006") and "8006:8006" in spec["ports"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_own_config(compose, service):
    spec = compose["services"][service]
    # The image's CMD runs services/${SERVICE}/config.yml ${SERVICE}.service; compose picks SERVICE.
    assert spec["build"]["context"] == "."
    assert spec["build"]["args"]["SERVICE"] == service
    assert "command" not in spec and "entrypoint" not in spec
    assert spec["restart"] == "unless-stopped"
    port = web_port(service, spec["environment"])
    assert f"{port}:{port}" in spec["ports"]


def test_each_service_has_its_own_database(compose):
    databases = {
        service: compose["services"][service]["environment"][f"{service.upper()}_MONGO_DATABASE"]
        for service in SERVICES
    }
    assert len(set(databases.values())) == len(SERVICES), databases


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reaches_the_broker_and_store_containers(compose, service):
    env = compose["services"][service]["environment"]
    # As compose would see it once ${RABBITMQ_PASSWORD:?...} is interpolated.
    interpolated = {var: re.sub(r"\$\{[^}]*\}", "secret", value) for var, value in env.items()}
    assert urlparse(interpolated["AMQP_URI"]).hostname == "rabbitmq"
    assert urlparse(interpolated["MONGO_URI"]).hostname == "mongo"
    depends = compose["services"][service]["depends_on"]
    for infra in ("rabbitmq", "mongo"):
        assert depends[infra]["condition"] == "service_healthy"


def test_infrastructure_has_healthchecks(compose):
    assert "rabbitmq-diagnostics" in compose["services"]["rabbitmq"]["healthcheck"]["test"]
    assert "mongosh" in compose["services"]["mongo"]["healthcheck"]["test"]


def test_mongo_is_a_replica_set_of_one_that_the_services_name(compose):
    """As in production: change streams and transactions need a set, and the store
    provider writes with w="majority" only when MONGO_URI names one."""
    mongo = compose["services"]["mongo"]
    command = mongo["command"]
    replica_set = command[command.index("--replSet") + 1]
    script = mongo["healthcheck"]["test"][-1]
    # initiated by the healthcheck with the member as the services reach it; healthy once primary
    assert re.search(
        r'rs\.initiate\(\{_id: "%s", members: \[\{_id: 0, host: "mongo:27017"\}\]\}\)' % replica_set, script
    ), script
    assert "isWritablePrimary" in script
    for service in SERVICES:
        query = parse_qs(urlparse(compose["services"][service]["environment"]["MONGO_URI"]).query)
        assert query["replicaSet"] == [replica_set], service


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_container_reports_its_readiness(compose, service):
    """The container is healthy when GET /health (store and broker) answers 200: intake
    waits for that from each subscriber. SERVICE comes from the image's build arg."""
    check = compose["services"][service]["healthcheck"]
    assert check["test"] == ["CMD-SHELL", 'python -m mallcare_common.healthcheck "$$SERVICE"']
    assert re.search(r"^ENV SERVICE=\$\{SERVICE\}", DOCKERFILE.read_text(), re.M)


def test_every_container_restarts_unless_stopped(compose):
    for name, spec in compose["services"].items():
        assert spec.get("restart") == "unless-stopped", name


def test_intake_starts_after_every_subscriber_is_healthy(compose):
    depends = compose["services"]["intake"]["depends_on"]
    for subscriber in SUBSCRIBERS:
        assert depends[subscriber]["condition"] == "service_healthy"
    for subscriber in SUBSCRIBERS:
        assert "intake" not in compose["services"][subscriber]["depends_on"]


@pytest.mark.parametrize(
    "service,variable", [("intake", "MALLCARE_CUSTOMER_REF_SECRET"), ("feedback", "MALLCARE_ANSWER_LINK_SECRET")]
)
def test_secrets_must_be_supplied(compose, service, variable):
    # ${VAR:?message}: compose refuses to start rather than run with a guessable key.
    secret = compose["services"][service]["environment"][variable]
    assert re.fullmatch(r"\$\{" + variable + r":\?[^}]+\}", secret), secret


def test_files_mounted_by_compose_exist(compose):
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./secrets/"):  # made by `mallcare secrets --dir secrets`, never in git
                assert (ROOT / ".gitignore").read_text().count("secrets/") and source == "./secrets/public"
            elif source.startswith("."):
                assert (ROOT / source).is_file(), f"{name} mounts missing {source}"


# (c) every service is scraped --------------------------------------------------------


def scrape_targets(prometheus):
    """{(job, target): labels} over every static_config."""
    return {
        (job["job_name"], target): static.get("labels", {})
        for job in prometheus["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }


def test_prometheus_scrapes_every_service_on_its_metrics_path(compose, prometheus):
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    targets = scrape_targets(prometheus)
    for service in (*SERVICES, "console"):
        target = f"{service}:{web_port(service, compose['services'][service]['environment'])}"
        found = [(job, labels) for (job, t), labels in targets.items() if t == target]
        assert found, f"{target} is not scraped"
        for job, labels in found:
            assert jobs[job].get("metrics_path", "/metrics") == "/metrics"
            assert labels.get("service") == service


def test_prometheus_scrapes_rabbitmq_and_the_plugin_is_enabled(compose, prometheus):
    assert any(target == "rabbitmq:15692" for _, target in scrape_targets(prometheus))
    plugins = (ROOT / "deploy" / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_prometheus" in plugins and "rabbitmq_management" in plugins
    assert any(
        volume.endswith(":/etc/rabbitmq/enabled_plugins:ro") for volume in compose["services"]["rabbitmq"]["volumes"]
    )


def test_prometheus_mounts_this_config(compose):
    assert (
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in compose["services"]["prometheus"]["volumes"]
    )


# (d) every service-specific setting is set -------------------------------------------


def required_variables(service):
    """The variables a deployment must set for `service`. One that only this service's
    config.yml reads (INTAKE_WEB_ADDRESS, TRIAGE_MONGO_DATABASE, MALLCARE_POLICY_DIR...)
    has a default meant for a laptop; so does any whose default points at loopback,
    which inside a container is the container itself."""
    others = set().union(*(config_refs(other) for other in SERVICES if other != service))
    refs = config_refs(service)
    specific = {var for var in refs if var not in others or var.startswith(service.upper() + "_")}
    loopback = {var for var, default in refs.items() if "127.0.0.1" in default or "localhost" in default}
    return specific | loopback


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_every_service_specific_variable(compose, service):
    env = compose["services"][service]["environment"]
    missing = sorted(required_variables(service) - set(env))
    assert not missing, f"{service}: compose does not set {missing}"


def test_compose_sets_no_variable_the_service_does_not_read(compose):
    for service in SERVICES:
        unread = set(compose["services"][service]["environment"]) - set(config_refs(service))
        assert not unread, f"{service}: {sorted(unread)} set in compose but not in its config.yml"


# The image ----------------------------------------------------------------------------


def test_dockerfile_installs_every_package_and_runs_the_chosen_service():
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    packages = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
    assert len(packages) == 9  # common, the six services, the web console, the operator command
    for package in packages:
        assert f"services/{package}" in text, f"the image does not install services/{package}"
    assert "pip install -r requirements.txt" in text
    assert "COPY deploy/policy/" in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*python -m mallcare_common.healthcheck", text, re.M)
    [exec_form] = re.findall(r"^CMD (\[.*\])$", text, re.M)
    shell, flag, command = json.loads(exec_form)  # as Docker reads it
    assert (shell, flag) == ("sh", "-c") and command.startswith("exec nameko run ")
    for service in SERVICES:  # what sh runs for each image: only the service's class starts
        shown = subprocess.run(
            [shell, flag, "echo " + command.removeprefix("exec nameko run ")],
            env={"SERVICE": service, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )
        assert shown.stdout.split() == [
            "--config",
            f"services/{service}/config.yml",
            f"{service}.service:{service.capitalize()}Service",
        ], shown


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".run", ".git", "bench/results"} <= ignored
    assert any("__pycache__" in entry for entry in ignored)


# (e) identities (issue 23) -----------------------------------------------------------------


def compose_default(value):
    """A variable as compose interpolates it with nothing set: ${VAR:-default} -> default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


def test_a_fresh_compose_file_starts_the_console_with_the_demo_sign_in_off(compose):
    env = compose["services"]["console"]["environment"]
    assert compose_default(env["CONSOLE_DEMO_LOGIN"]) == "false"
    assert compose_default(env["CONSOLE_DEMO_LOGIN_EXPOSED"]) == ""
    # it listens beyond the container: turned on alone, the console refuses to start (DemoSignOn)
    assert env["CONSOLE_WEB_ADDRESS"].startswith("0.0.0.0:")
    assert "secrets" not in compose["services"]["console"]  # no signing key: it signs nothing


def test_each_service_holds_its_own_signing_key_only_and_every_one_the_public_keys(compose):
    from mallcare_common.auth import SERVICES as SERVICES_WITH_KEYS

    for service in SERVICES:
        spec = compose["services"][service]
        assert spec.get("secrets", []) == ([f"service_key_{service}"] if service in SERVICES_WITH_KEYS else [])
        # a folder, not the file: a file's bind mount keeps the inode a rotation replaces
        assert "./secrets/public:/run/mallcare/public:ro" in spec["volumes"], service
        assert spec["environment"]["MALLCARE_JWKS"] == "/run/mallcare/public/jwks.json", service
    keyed = {f"service_key_{name}" for name in SERVICES_WITH_KEYS}
    assert set(compose["secrets"]) == keyed  # no sign-on key: it is the sign-on's
    assert not any("SIGNING_KEY" in var for var in compose["services"]["console"]["environment"])
