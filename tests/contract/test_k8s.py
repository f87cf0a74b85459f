"""Issue 8: the Kubernetes manifests (deploy/k8s/, assembled by deploy/kustomization.yaml)
are valid and agree with the services they deploy.

No cluster here: each object is validated against the Kubernetes 1.32 API schemas that
kubernetes-validate bundles (offline), and the manifests are checked against the image
(Dockerfile), each service's config.yml, its HTTP routes and the policy files, so that
a renamed route, setting or port cannot leave the manifests behind unnoticed. Where
kubectl is on PATH, the kustomization is also built and its output validated."""

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mallcare_common.base import Service
from mallcare_common.openapi import documented_operations
from tests.contract.test_deploy_files import DOCKERFILE, ROOT, SERVICES, config_refs, required_variables, web_port

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.32.0"  # the oldest release the manifests are checked against
DEPLOYED = (*SERVICES, "console")  # the five and the web console, which has no store
SCALED = ("intake", "triage")
SECRET_ENV = ("AMQP_URI", "MONGO_URI")  # from the mallcare-infra Secret
# MALLCARE_<NAME>_SECRET, or <NAME>_SECRET in the secrets file (auth.read_secret): on
# Kubernetes they come from the file, mounted from the mallcare-secrets Secret.
IN_SECRETS_FILE = re.compile(r"MALLCARE_\w+_SECRET")


def load(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def objects():
    """{(kind, name): object} over every file in deploy/k8s/."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} defined twice"
            found[key] = doc
    return found


@pytest.fixture(scope="module")
def kustomization():
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


def container(objects, service):
    containers = objects["Deployment", service]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def validation_errors(docs):
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message}")
    return errors


# (a) valid Kubernetes objects ------------------------------------------------------------


def test_every_object_is_valid_against_the_kubernetes_schemas(objects):
    assert not validation_errors(objects.values())


@pytest.mark.parametrize(
    "breakage, complaint",
    [
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("readinesProbe", {}), "readinesProbe"),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].__setitem__("containerPort", "8001"),
            "'8001' is not of type",
        ),
        (lambda d: d["spec"].__setitem__("replicas", "two"), "'two' is not of type"),
    ],
    ids=["misspelt-field", "port-as-string", "replicas-not-a-number"],
)
def test_validation_rejects_a_broken_deployment(objects, breakage, complaint):
    """The check above can fail: a deliberately broken copy is refused."""
    broken = yaml.safe_load(yaml.safe_dump(objects["Deployment", "intake"]))
    breakage(broken)
    errors = validation_errors([broken])
    assert errors and complaint in errors[0], errors


# (b) one Deployment, Service and ConfigMap per service -----------------------------------


def test_every_service_has_its_deployment_service_and_configmap(objects):
    for service in DEPLOYED:
        for kind in ("Deployment", "Service", "ConfigMap"):
            assert (kind, service) in objects, f"{kind}/{service} is missing"
    services = {name for kind, name in objects if kind == "Deployment"}
    assert services == set(DEPLOYED)


def test_kustomization_lists_every_manifest(kustomization):
    listed = {DEPLOY / path for path in kustomization["resources"]}
    assert listed == set(K8S.glob("*.yaml"))
    assert kustomization["namespace"] == "mallcare"


@pytest.mark.parametrize("service", DEPLOYED)
def test_selectors_match_the_pods(objects, service):
    deployment = objects["Deployment", service]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert objects["Service", service]["spec"]["selector"].items() <= pod_labels.items()
    # no other Deployment's pods behind this Service
    for other in DEPLOYED:
        if other != service:
            other_labels = objects["Deployment", other]["spec"]["template"]["metadata"]["labels"]
            assert not objects["Service", service]["spec"]["selector"].items() <= other_labels.items()


@pytest.mark.parametrize("service", DEPLOYED)
def test_the_image_runs_the_service_as_the_dockerfile_builds_it(objects, service):
    """One image per service, built with --build-arg SERVICE=<service>; its CMD runs
    nameko with the service's config.yml, so the manifest overrides neither."""
    spec = container(objects, service)
    assert re.fullmatch(rf"mallcare-{service}:\d+\.\d+\.\d+", spec["image"]), spec["image"]
    assert "command" not in spec and "args" not in spec
    assert "SERVICE" not in {env["name"] for env in spec.get("env", [])}
    user = re.findall(r"^USER\s+(\d+)", DOCKERFILE.read_text(), re.M)[-1]
    pod_security = objects["Deployment", service]["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsUser"] == int(user) and pod_security["runAsNonRoot"] is True


# (c) settings: what config.yml reads, and nothing else ----------------------------------


def env_names(objects, service):
    spec = container(objects, service)
    names = {env["name"] for env in spec.get("env", [])}
    for source in spec.get("envFrom", []):
        names |= set(objects["ConfigMap", source["configMapRef"]["name"]]["data"])
    return names


@pytest.mark.parametrize("service", DEPLOYED)
def test_every_variable_set_is_read_by_the_service(objects, service):
    unread = env_names(objects, service) - set(config_refs(service))
    assert not unread, f"{service}: {sorted(unread)} set but not read by its config.yml"


@pytest.mark.parametrize("service", DEPLOYED)
def test_every_service_specific_variable_is_set(objects, service):
    missing = {
        var for var in required_variables(service) - env_names(objects, service) if not IN_SECRETS_FILE.fullmatch(var)
    }
    assert not missing, f"{service}: the manifests do not set {sorted(missing)}"


def test_each_service_has_its_own_database(objects):
    databases = {objects["ConfigMap", s]["data"][f"{s.upper()}_MONGO_DATABASE"] for s in SERVICES}
    assert len(databases) == len(SERVICES)


@pytest.mark.parametrize("service", DEPLOYED)
def test_broker_and_store_come_from_a_secret_not_the_repo(objects, service):
    env = {e["name"]: e for e in container(objects, service)["env"]}
    for name in (n for n in SECRET_ENV if n in config_refs(service)):  # the console has no store
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "mallcare-infra", "key": name}
    assert not any(name in objects["ConfigMap", service]["data"] for name in SECRET_ENV)


def test_no_secret_values_in_the_repo(objects, kustomization):
    """The Secrets are created in the cluster (docs/deployment.md), never committed."""
    assert not [key for key in objects if key[0] == "Secret"]
    assert "secretGenerator" not in kustomization
    for service in DEPLOYED:
        assert not [var for var in env_names(objects, service) if IN_SECRETS_FILE.fullmatch(var)], service


def mount_of(objects, service, volume):
    spec = container(objects, service)
    mounts = [m for m in spec["volumeMounts"] if m["name"] == volume]
    assert len(mounts) == 1 and mounts[0]["readOnly"] is True
    return mounts[0]["mountPath"]


def volume_of(objects, service, name):
    return next(v for v in objects["Deployment", service]["spec"]["template"]["spec"]["volumes"] if v["name"] == name)


@pytest.mark.parametrize("service", DEPLOYED)
def test_the_secrets_file_is_mounted_where_the_service_looks(objects, service):
    path = objects["ConfigMap", service]["data"]["MALLCARE_SECRETS_FILE"]
    assert str(Path(path).parent) == mount_of(objects, service, "secrets")
    assert volume_of(objects, service, "secrets")["secret"]["secretName"] == "mallcare-secrets"


# (d) policy from a ConfigMap made of deploy/policy/ --------------------------------------


def test_the_policy_configmap_is_generated_from_every_policy_file(kustomization):
    generated = {g["name"]: g for g in kustomization["configMapGenerator"]}
    files = {DEPLOY / f for f in generated["mallcare-policy"]["files"]}
    assert files == set((DEPLOY / "policy").glob("*.yml"))


@pytest.mark.parametrize("service", DEPLOYED)
def test_the_policy_is_mounted_where_the_service_looks(objects, service):
    assert objects["ConfigMap", service]["data"]["MALLCARE_POLICY_DIR"] == mount_of(objects, service, "policy")
    assert volume_of(objects, service, "policy")["configMap"]["name"] == "mallcare-policy"


# (e) ports, probes, scraping, resources, scaling -----------------------------------------


@pytest.mark.parametrize("service", DEPLOYED)
def test_ports_agree_with_where_the_service_listens(objects, service):
    port = web_port(service, objects["ConfigMap", service]["data"])
    spec = container(objects, service)
    assert spec["ports"] == [{"name": "http", "containerPort": port}]
    assert objects["Service", service]["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    annotations = objects["Deployment", service]["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


SERVED = {op.path for op in documented_operations(Service) if op.method == "GET"}  # by every service


@pytest.mark.parametrize("service", DEPLOYED)
def test_probes_ask_the_health_routes(objects, service):
    """Readiness is GET /health (store and broker); liveness and startup GET /health/live,
    which asks neither, so an outage takes pods out of rotation without restarting them."""
    spec = container(objects, service)
    expected = {"readinessProbe": "/health", "livenessProbe": "/health/live", "startupProbe": "/health/live"}
    for probe, path in expected.items():
        assert spec[probe]["httpGet"] == {"path": path, "port": "http"}, probe
        assert path in SERVED, f"{path} is not a route every service serves"
    # the readiness answer may take the store's 3 s timeout plus the broker's 1 s
    assert spec["readinessProbe"]["timeoutSeconds"] > 4


@pytest.mark.parametrize("service", DEPLOYED)
def test_requests_and_limits_are_set(objects, service):
    resources = container(objects, service)["resources"]
    for kind in ("requests", "limits"):
        assert set(resources[kind]) == {"cpu", "memory"}, kind


def test_intake_and_triage_scale_on_cpu(objects):
    scalers = {name: hpa for (kind, name), hpa in objects.items() if kind == "HorizontalPodAutoscaler"}
    assert set(scalers) == set(SCALED)
    for service, hpa in scalers.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
        assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        # CPU utilisation is relative to the request: without one the HPA cannot scale
        assert "cpu" in container(objects, service)["resources"]["requests"]


# (f) what kustomize builds ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH (it builds the kustomization)")
def test_the_kustomization_builds_valid_objects_that_use_the_generated_policy():
    built = subprocess.run(["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    docs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert not validation_errors(docs)
    policy = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("mallcare-policy-")
    ]
    assert len(policy) == 1  # named by its content hash
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "mallcare", doc["metadata"]["name"]
        if doc["kind"] == "Deployment":
            volumes = {v["name"]: v for v in doc["spec"]["template"]["spec"]["volumes"]}
            assert volumes["policy"]["configMap"]["name"] == policy[0]


def test_the_deployment_guide_creates_every_secret_the_manifests_use(objects):
    """docs/deployment.md is how an operator makes the Secrets the repository leaves out."""
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for service in DEPLOYED:
        spec = container(objects, service)
        for env in spec["env"]:
            ref = env["valueFrom"]["secretKeyRef"]
            assert f"create secret generic {ref['name']}" in guide and f"--from-literal={ref['key']}=" in guide
        secret = volume_of(objects, service, "secrets")["secret"]["secretName"]
        filename = Path(objects["ConfigMap", service]["data"]["MALLCARE_SECRETS_FILE"]).name
        assert f"create secret generic {secret} --from-file={filename}" in guide


def test_the_console_ships_with_the_demo_sign_in_off_and_no_signing_key(objects):
    data = objects[("ConfigMap", "console")]["data"]
    assert (data["CONSOLE_DEMO_LOGIN"], data["CONSOLE_DEMO_LOGIN_EXPOSED"], data["MALLCARE_SIGNING_KEY_FILE"]) == (
        "false",
        "",
        "",
    )


@pytest.mark.parametrize("service", DEPLOYED)
def test_each_service_reads_the_jwks_from_its_config_map_and_only_its_own_key(objects, service):
    data = objects[("ConfigMap", service)]["data"]
    volumes = {v["name"]: v for v in objects[("Deployment", service)]["spec"]["template"]["spec"]["volumes"]}
    assert data["MALLCARE_JWKS"] == "/etc/mallcare/jwks/jwks.json"
    assert volumes["jwks"]["configMap"] == {"name": "mallcare-jwks"}  # a mounted ConfigMap follows its edits
    if "key" in volumes:
        assert volumes["key"]["secret"]["secretName"] == f"mallcare-key-{service}"
