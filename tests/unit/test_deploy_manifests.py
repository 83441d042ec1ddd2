"""The deployment files agree with the code and with each other: docker-compose.yml, the five
service Dockerfiles and the k8s kustomize base and overlays.

No Docker, cluster or network. Every kustomization (base and overlays) is rendered with
kustomize (the project's pinned build in .cache/bin, else `kubectl kustomize`), and every
rendered object is validated against the Kubernetes JSON schemas (`kubernetes-validate`,
strict: unknown fields are errors); KEDA's ScaledObject, which those schemas lack, against a
schema derived from KEDA's CRD (k8s/schemas/).
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from executor.bootstrap import DRAIN_MARGIN_S, ExecutorSettings
from servicekit.kafka import DISPATCH_PARTITIONS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").is_file())
LIBS = ("contracts", "jobkit", "servicekit")  # the libs every image is built from
LAYERS = ("base", "overlays/dev", "overlays/prod", "overlays/prod-hpa")
KEDA_SCHEMA = K8S / "schemas" / "keda.sh_v1alpha1_scaledobject.json"
NON_ROOT_UID = 10001
BASE_IMAGE = "python:3.11-slim"

# Env vars the code reads through an `env_prefix` (tuning knobs with defaults) are not required
# of a deployment, except these, which a deployment must decide.
REQUIRED_PREFIXED_ENV = {"executor": {"BATCHYARD_EXECUTOR_SLOTS"}}
# Executor replicas per layer; the singletons run one instance everywhere.
EXECUTOR_REPLICAS = {"base": 2, "overlays/dev": 1, "overlays/prod": 4, "overlays/prod-hpa": 4}
SCHEDULER_REPLICAS = {"base": 2, "overlays/dev": 1, "overlays/prod": 2, "overlays/prod-hpa": 2}
SINGLETONS = ("scheduler", "reporter")
# OpenTelemetry's own variables (OTEL_*) are optional knobs with the SDK's defaults.
OPTIONAL_ENV_PREFIXES = ("OTEL_",)

Obj = dict[str, Any]


def dig(data: Any, *keys: str | int) -> Any:
    """`data[k1][k2]...`, or None as soon as a level is missing."""
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


# --- what the code reads ---------------------------------------------------------------------

_ALIAS = re.compile(r"AliasChoices\(([^)]*)\)")
_ENV_READ = re.compile(r"""(?:environ\.get|environ|getenv)\s*[\[(]\s*["']([A-Z][A-Z0-9_]*)["']""")
_QUOTED = re.compile(r"""["']([A-Z][A-Z0-9_]*)["']""")


def env_vars_read(service: str) -> set[str]:
    """Env vars a service names in its code or the libs it runs on: settings aliases and
    direct `os.environ` / `os.getenv` reads."""
    roots = [ROOT / "libs" / lib / "src" for lib in LIBS] + [ROOT / "services" / service / "src"]
    names: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for args in _ALIAS.findall(text):
                names |= set(_QUOTED.findall(args))
            names |= set(_ENV_READ.findall(text))
    names = {n for n in names if not n.startswith(OPTIONAL_ENV_PREFIXES)}
    return names | REQUIRED_PREFIXED_ENV.get(service, set())


def code_http_port(service: str) -> int:
    """The HTTP port a service listens on by default, from its settings."""
    pattern = re.compile(r"settings_with_port\((\d+)\)|http_port: int = Field\(default=(\d+)")
    ports = {
        int(a or b)
        for path in (ROOT / "services" / service / "src").rglob("*.py")
        for a, b in pattern.findall(path.read_text(encoding="utf-8"))
    }
    assert len(ports) == 1, f"{service}: expected one default HTTP port in its code, found {ports}"
    return ports.pop()


def console_script(service: str) -> str:
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    scripts = list(project["project"].get("scripts", {}))
    assert len(scripts) == 1, f"{service}: expected one console script, found {scripts}"
    return scripts[0]


# --- Dockerfiles -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile_stages(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (each starts with FROM); continuations joined, comments
    and parser directives dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword != "ENV":
            continue
        tokens = shlex.split(instruction.args)
        if tokens and "=" not in tokens[0]:  # legacy `ENV KEY value`
            env[tokens[0]] = " ".join(tokens[1:])
        else:
            env.update(token.split("=", 1) for token in tokens)
    return env


def dockerfile_exposed(text: str) -> set[int]:
    stages = dockerfile_stages(text)
    final = stages[-1] if stages else []
    return {
        int(port.split("/")[0]) for i in final if i.keyword == "EXPOSE" for port in i.args.split()
    }


def dockerfile_problems(service: str, text: str) -> list[str]:
    """What is wrong with a service's Dockerfile, measured against the shared pattern."""
    problems: list[str] = []
    stages = dockerfile_stages(text)
    if len(stages) < 2:
        return [f"expected a builder and a runtime stage, found {len(stages)} stage(s)"]
    for stage in stages:
        image = stage[0].args.split()[0]
        if image != BASE_IMAGE:
            problems.append(f"stage FROM {image}, expected {BASE_IMAGE}")
    builder, final = stages[0], stages[-1]
    builder_text = "\n".join(i.args for i in builder)
    wheel = [i.args for i in builder if i.keyword == "RUN" and "pip wheel" in i.args]
    if not wheel or "-c constraints.txt" not in wheel[0]:
        problems.append("builder does not run `pip wheel -c constraints.txt`")
    for path in ["constraints.txt", f"services/{service}/", *(f"libs/{lib}/" for lib in LIBS)]:
        if path not in builder_text:
            problems.append(f"builder does not COPY {path}")
        if wheel and path.endswith("/") and path.rstrip("/") not in wheel[0]:
            problems.append(f"builder does not build a wheel of {path}")
    if not any(i.keyword == "RUN" and "--no-index" in i.args for i in final):
        problems.append("runtime stage does not install the wheels offline (pip --no-index)")
    if any(i.keyword in {"COPY", "ADD"} and "--from=" not in i.args for i in final):
        problems.append("runtime stage copies from the build context; it should install wheels")

    env = dockerfile_env(final)
    for key, value in (("BATCHYARD_HTTP_HOST", "0.0.0.0"), ("PYTHONUNBUFFERED", "1")):
        if env.get(key) != value:
            problems.append(f"runtime ENV {key}={env.get(key)!r}, expected {value!r}")

    users = [i.args for i in final if i.keyword == "USER"]
    user = users[-1].split(":")[0] if users else "root"
    if user in {"root", "0"}:
        problems.append("runtime stage runs as root (no non-root USER)")
    elif user != str(NON_ROOT_UID):
        problems.append(f"USER {user}: use the numeric uid {NON_ROOT_UID} (runAsNonRoot checks it)")

    exposed = dockerfile_exposed(text)
    port = code_http_port(service)
    if exposed != {port}:
        problems.append(f"EXPOSE {sorted(exposed)}, but the service listens on {port}")
    if env.get("BATCHYARD_HTTP_PORT", str(port)) != str(port):
        problems.append(f"ENV BATCHYARD_HTTP_PORT={env['BATCHYARD_HTTP_PORT']}, expected {port}")

    healthchecks = [i.args for i in final if i.keyword == "HEALTHCHECK"]
    if not healthchecks:
        problems.append("no HEALTHCHECK")
    elif "/healthz" not in healthchecks[-1] or "urllib" not in healthchecks[-1]:
        problems.append("HEALTHCHECK does not GET /healthz with python's urllib")

    cmds = [i.args for i in final if i.keyword == "CMD"]
    script = console_script(service)
    if not cmds or json.loads(cmds[-1]) != [script]:
        problems.append(f"CMD {cmds[-1] if cmds else None}, expected [{script!r}]")
    return problems


def dockerfile(service: str) -> str:
    path = ROOT / "services" / service / "Dockerfile"
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    return path.read_text(encoding="utf-8")


# --- docker-compose.yml ----------------------------------------------------------------------


def load_compose() -> Obj:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


def compose_env(service: Obj) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # KEY=VALUE items; a bare KEY passes the host's value through
        return {k: v for k, _, v in (item.partition("=") for item in env)}
    return {k: None if v is None else str(v) for k, v in env.items()}


def compose_service_problems(name: str, service: Obj) -> list[str]:
    problems: list[str] = []
    build = service.get("build")
    dockerfile_path = f"services/{name}/Dockerfile"
    if not isinstance(build, dict):
        problems.append(f"build should be {{context: ., dockerfile: {dockerfile_path}}}")
    else:
        if (ROOT / str(build.get("context", ""))).resolve() != ROOT:
            problems.append(f"build context {build.get('context')!r}, expected the repo root")
        if build.get("dockerfile") != dockerfile_path:
            problems.append(
                f"build dockerfile {build.get('dockerfile')!r}, expected {dockerfile_path}"
            )

    depends = service.get("depends_on")
    for infra in ("kafka", "mongo"):
        if dig(depends, infra, "condition") != "service_healthy":
            problems.append(f"does not depend on {infra} with condition service_healthy")

    port = code_http_port(name)
    env = compose_env(service)
    missing = env_vars_read(name) - set(env)
    if missing:
        problems.append(f"environment lacks {sorted(missing)}, which the code reads")
    if env.get("BATCHYARD_HTTP_HOST") != "0.0.0.0":
        problems.append("BATCHYARD_HTTP_HOST must be 0.0.0.0 in a container")
    if env.get("BATCHYARD_HTTP_PORT") != str(port):
        problems.append(f"BATCHYARD_HTTP_PORT={env.get('BATCHYARD_HTTP_PORT')}, expected {port}")
    if (dig(service, "deploy", "replicas") or 1) > 1 and env.get("BATCHYARD_INSTANCE_ID"):
        problems.append("replicated, yet every replica gets the same BATCHYARD_INSTANCE_ID")

    test = dig(service, "healthcheck", "test")
    test_text = " ".join(test) if isinstance(test, list) else str(test or "")
    if "/readyz" not in test_text:
        problems.append("healthcheck does not probe /readyz")
    elif str(port) not in test_text and "BATCHYARD_HTTP_PORT" not in test_text:
        problems.append(f"healthcheck does not probe port {port}")
    return problems


# --- k8s: rendering with kustomize -----------------------------------------------------------

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "PriorityClass",
}
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`name[:tag][@digest]` -> (name, tag, digest); a registry's `host:port/` is not a tag."""
    name, _, digest = image.partition("@")
    repo, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return repo, tag, digest or None
    return name, None, digest or None


def containers(pod_spec: Obj) -> Iterator[Obj]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def kustomize_command() -> list[str]:
    """The kustomize the project installs (`.cache/bin/kustomize`, built by `make install`),
    else `kubectl kustomize`. Neither is a failure, not a skip: CI must render the manifests."""
    pinned = ROOT / ".cache" / "bin" / "kustomize"
    if pinned.is_file():
        return [str(pinned), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    pytest.fail("neither .cache/bin/kustomize nor kubectl exists: run `make install`")


@functools.cache
def _kustomize(directory: Path) -> str:
    done = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"kustomize {directory} failed: {done.stderr.strip()}")
    return done.stdout


@functools.cache
def _parsed(directory: Path) -> tuple[Obj, ...]:
    return tuple(doc for doc in yaml.safe_load_all(_kustomize(directory)) if doc is not None)


def render(directory: Path) -> list[Obj]:
    """The objects `kubectl kustomize directory` prints (a fresh copy each call)."""
    return copy.deepcopy(list(_parsed(directory)))


def rendered(layer: str) -> list[Obj]:
    return render(K8S / layer)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o.get("kind") == kind and dig(o, "metadata", "name") == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def label_selects(selector: Obj | None, labels: Obj | None) -> bool:
    return bool(selector) and all((labels or {}).get(k) == v for k, v in (selector or {}).items())


def container_port(container: Obj, port: int | str | None) -> int | None:
    """A probe's or Service's port (number or name) as a number, None if it names nothing."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    return None


def env_value(container: Obj, name: str) -> str | None:
    for item in container.get("env") or []:
        if item.get("name") == name and "value" in item:
            return str(item["value"])
    return None


# --- k8s checks ------------------------------------------------------------------------------


def object_problems(obj: Obj) -> list[str]:
    problems = [f"no {field}" for field in ("apiVersion", "kind") if not obj.get(field)]
    if not dig(obj, "metadata", "name"):
        problems.append("no metadata.name")
    if obj.get("kind") == "Deployment":
        problems += deployment_problems(obj)
    return problems


def deployment_problems(deployment: Obj) -> list[str]:
    problems: list[str] = []
    template = dig(deployment, "spec", "template") or {}
    pod = template.get("spec") or {}
    if not label_selects(
        dig(deployment, "spec", "selector", "matchLabels"), dig(template, "metadata", "labels")
    ):
        problems.append("spec.selector.matchLabels does not select the pod template's labels")
    pod_security = pod.get("securityContext") or {}
    tmp_volumes = {v.get("name") for v in pod.get("volumes") or [] if "emptyDir" in v}
    if not pod.get("containers"):
        problems.append("no containers")
    for container in containers(pod):
        where = f"container {container.get('name')!r}"
        security = container.get("securityContext") or {}

        def effective(key: str, sec: Obj = security) -> Any:
            return sec.get(key, pod_security.get(key))

        if not container.get("image"):
            problems.append(f"{where}: no image")
        if effective("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if effective("runAsUser") != NON_ROOT_UID:
            problems.append(f"{where}: runAsUser {effective('runAsUser')}, expected {NON_ROOT_UID}")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if "ALL" not in (dig(security, "capabilities", "drop") or []):
            problems.append(f"{where}: capabilities do not drop ALL")
        mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
        if mounts.get("/tmp") not in tmp_volumes:
            problems.append(f"{where}: /tmp is not an emptyDir (the root filesystem is read-only)")

        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not dig(container, "resources", part, resource):
                    problems.append(f"{where}: no resources.{part}.{resource}")

        http_port = env_value(container, "BATCHYARD_HTTP_PORT")
        if http_port is None:
            problems.append(f"{where}: BATCHYARD_HTTP_PORT is not set")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = dig(container, probe, "httpGet")
            if not get:
                problems.append(f"{where}: no {probe} httpGet")
                continue
            if str(get.get("path")).split("?")[0] != path:
                problems.append(f"{where}: {probe} path {get.get('path')!r}, expected {path}")
            port = container_port(container, get.get("port"))
            if http_port is not None and port != int(http_port):
                problems.append(f"{where}: {probe} port {get.get('port')!r} is not {http_port}")

        instance = [
            e for e in container.get("env") or [] if e.get("name") == "BATCHYARD_INSTANCE_ID"
        ]
        if instance and dig(instance[0], "valueFrom", "fieldRef", "fieldPath") != "metadata.name":
            problems.append(f"{where}: BATCHYARD_INSTANCE_ID should be the pod's name (fieldRef)")
    return problems


def reference_problems(objects: list[Obj]) -> list[str]:
    """Dangling references between objects: ConfigMaps and Secrets a Deployment uses, the
    pods a Service or PodDisruptionBudget selects, the port a Service targets."""
    problems: list[str] = []

    def namespace(obj: Obj) -> str:
        return str(dig(obj, "metadata", "namespace") or "default")

    def data_keys(kind: str, name: str, ns: str) -> set[str] | None:
        for obj in objects:
            if (
                obj.get("kind") == kind
                and dig(obj, "metadata", "name") == name
                and namespace(obj) == ns
            ):
                return {
                    k
                    for field in ("data", "stringData", "binaryData")
                    for k in obj.get(field) or {}
                }
        return None

    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        key = (str(obj.get("kind")), namespace(obj), str(dig(obj, "metadata", "name")))
        if key in seen:
            problems.append(f"duplicate {key}")
        seen.add(key)

    deployments = [o for o in objects if o.get("kind") == "Deployment"]
    for deployment in deployments:
        ns, name = namespace(deployment), dig(deployment, "metadata", "name")
        pod = dig(deployment, "spec", "template", "spec") or {}
        refs: list[tuple[str, str, str | None, bool]] = []  # kind, name, key, optional
        for container in containers(pod):
            for source in container.get("envFrom") or []:
                for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    if field in source:
                        ref = source[field]
                        refs.append((kind, ref.get("name"), None, bool(ref.get("optional"))))
            for item in container.get("env") or []:
                for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                    ref = dig(item, "valueFrom", field)
                    if ref:
                        refs.append(
                            (kind, ref.get("name"), ref.get("key"), bool(ref.get("optional")))
                        )
        for volume in pod.get("volumes") or []:
            if "configMap" in volume:
                refs.append(("ConfigMap", volume["configMap"].get("name"), None, False))
            if "secret" in volume:
                refs.append(("Secret", volume["secret"].get("secretName"), None, False))
        for kind, ref_name, ref_key, optional in refs:
            keys = data_keys(kind, ref_name, ns)
            if keys is None and not optional:
                problems.append(
                    f"Deployment/{name} references {kind}/{ref_name}, which does not exist"
                )
            elif keys is not None and ref_key is not None and ref_key not in keys:
                problems.append(
                    f"Deployment/{name} references key {ref_key!r} missing from {kind}/{ref_name}"
                )

    for obj in objects:
        kind, name = obj.get("kind"), dig(obj, "metadata", "name")
        if kind == "Service":
            selector = dig(obj, "spec", "selector")
        elif kind == "PodDisruptionBudget":
            selector = dig(obj, "spec", "selector", "matchLabels")
        else:
            continue
        targets = [
            d
            for d in deployments
            if namespace(d) == namespace(obj)
            and label_selects(selector, dig(d, "spec", "template", "metadata", "labels"))
        ]
        if not targets:
            problems.append(f"{kind}/{name} selects no Deployment's pods in its namespace")
        if kind == "Service":
            for port in dig(obj, "spec", "ports") or []:
                target = port.get("targetPort", port.get("port"))
                pod_containers = [
                    c for d in targets for c in containers(dig(d, "spec", "template", "spec"))
                ]
                if not any(container_port(c, target) is not None for c in pod_containers):
                    problems.append(
                        f"Service/{name} targets port {target!r}, which no pod declares"
                    )
    return problems


def rendered_problems(objects: list[Obj]) -> list[str]:
    problems = [
        f"{obj.get('kind')}/{dig(obj, 'metadata', 'name')}: {problem}"
        for obj in objects
        for problem in object_problems(obj)
    ]
    return problems + reference_problems(objects)


def container_env_names(container: Obj, objects: list[Obj]) -> set[str]:
    names = {item["name"] for item in container.get("env") or []}
    for source in container.get("envFrom") or []:
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field in source:
                obj = find(objects, kind, source[field]["name"])
                names |= {k for f in ("data", "stringData") for k in obj.get(f) or {}}
    return names


def config_value(container: Obj, objects: list[Obj], name: str) -> str | None:
    value = env_value(container, name)
    for source in container.get("envFrom") or []:
        if value is None and "configMapRef" in source:
            value = (
                find(objects, "ConfigMap", source["configMapRef"]["name"]).get("data") or {}
            ).get(name)
    return value


# === tests ===================================================================================


def test_the_code_scan_finds_the_settings() -> None:
    """Guards the scan itself: if it found nothing, the env checks below would pass vacuously."""
    common = {
        "KAFKA_BOOTSTRAP_SERVERS",
        "MONGODB_URL",
        "BATCHYARD_HTTP_HOST",
        "BATCHYARD_HTTP_PORT",
        "BATCHYARD_INSTANCE_ID",
        "BATCHYARD_TOPIC_PREFIX",
    }
    assert set(SERVICES) == {"batch-api", "scheduler", "executor", "rollback", "reporter"}
    for service in SERVICES:
        assert common <= env_vars_read(service), service
    assert "BATCHYARD_ADMIN_KEY" in env_vars_read("batch-api")
    assert {s: code_http_port(s) for s in SERVICES} == {
        "batch-api": 8000,
        "scheduler": 8001,
        "rollback": 8002,
        "reporter": 8003,
        "executor": 8010,
    }


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_follows_the_pattern(service: str) -> None:
    assert dockerfile_problems(service, dockerfile(service)) == []


@pytest.mark.parametrize("service", SERVICES)
def test_compose_runs_the_service(service: str) -> None:
    services = load_compose().get("services") or {}
    assert service in services, f"docker-compose.yml has no service {service!r}"
    assert compose_service_problems(service, services[service]) == []


def test_compose_infrastructure() -> None:
    compose = load_compose()
    services, volumes = compose["services"], compose.get("volumes") or {}
    kafka, mongo = services["kafka"], services["mongo"]
    assert kafka["image"] == "apache/kafka:4.1.0"
    assert mongo["image"] == "mongo:8"
    kafka_env = compose_env(kafka)
    assert set(str(kafka_env["KAFKA_PROCESS_ROLES"]).split(",")) == {"broker", "controller"}
    for service in SERVICES:  # clients reach the broker at the address it advertises
        bootstrap = compose_env(services[service])["KAFKA_BOOTSTRAP_SERVERS"]
        assert f"//{bootstrap}" in str(kafka_env["KAFKA_ADVERTISED_LISTENERS"]), service
        assert str(compose_env(services[service])["MONGODB_URL"]).startswith("mongodb://mongo:")
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    assert "db.adminCommand('ping')" in " ".join(mongo["healthcheck"]["test"])
    for name, path in (("kafka", kafka_env["KAFKA_LOG_DIRS"]), ("mongo", "/data/db")):
        named = [
            v.split(":")[0] for v in services[name].get("volumes") or [] if v.endswith(f":{path}")
        ]
        assert named, f"{name}: {path} is not on a volume"
        assert named[0] in volumes, f"{name}: volume {named[0]!r} is not a named volume"


def test_compose_ports_scaling_and_secrets() -> None:
    services = load_compose()["services"]
    assert "8000:8000" in [str(p) for p in services["batch-api"].get("ports") or []]
    assert dig(services, "executor", "deploy", "replicas") == 2
    for singleton in SINGLETONS:
        assert (dig(services, singleton, "deploy", "replicas") or 1) == 1, singleton
    admin_key = compose_env(services["batch-api"])["BATCHYARD_ADMIN_KEY"]
    assert re.fullmatch(r"\$\{BATCHYARD_ADMIN_KEY:\?[^}]+\}", str(admin_key)), admin_key


@pytest.mark.parametrize("layer", LAYERS)
def test_kustomization_renders_valid_objects(layer: str) -> None:
    objects = rendered(layer)
    assert objects
    assert rendered_problems(objects) == []
    namespaces = {
        dig(o, "metadata", "namespace") for o in objects if o["kind"] not in CLUSTER_SCOPED
    }
    assert namespaces == {"batchyard"}, "every namespaced object belongs in batchyard"
    assert find(objects, "Namespace", "batchyard")


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_deployed(layer: str, service: str) -> None:
    objects = rendered(layer)
    deployment = find(objects, "Deployment", service)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = code_http_port(service)
    assert env_value(container, "BATCHYARD_HTTP_PORT") == str(port)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert dockerfile_exposed(dockerfile(service)) == {port}
    missing = env_vars_read(service) - container_env_names(container, objects)
    assert not missing, f"{service} lacks {sorted(missing)}, which the code reads"
    assert config_value(container, objects, "BATCHYARD_HTTP_HOST") == "0.0.0.0"
    compose_image = load_compose()["services"][service]["image"]
    assert split_image(container["image"])[0] == split_image(compose_image)[0]

    service_obj = find(objects, "Service", service)
    ports = service_obj["spec"]["ports"]
    assert len(ports) == 1
    assert container_port(container, ports[0]["targetPort"]) == port
    assert ports[0]["port"] == (80 if service == "batch-api" else port)


@pytest.mark.parametrize("layer", LAYERS)
def test_replicas_and_strategy(layer: str) -> None:
    objects = rendered(layer)
    scheduler = find(objects, "Deployment", "scheduler")
    # active + standby (one in dev); a rollout replaces one pod at a time and never surges
    assert scheduler["spec"]["replicas"] == SCHEDULER_REPLICAS[layer]
    assert scheduler["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    probe = scheduler["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/readyz?standby=ok"
    assert find(objects, "Deployment", "reporter")["spec"].get("replicas", 1) == 1
    assert find(objects, "Deployment", "executor")["spec"]["replicas"] == EXECUTOR_REPLICAS[layer]


def test_dev_overlay_deploys_what_compose_builds() -> None:
    compose = load_compose()["services"]
    for service in SERVICES:
        deployment = find(rendered("overlays/dev"), "Deployment", service)
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == compose[service]["image"], service
        assert split_image(image)[1] == "dev"


def test_prod_overlay_protects_executors() -> None:
    objects = rendered("overlays/prod")
    pdb = find(objects, "PodDisruptionBudget", "executor")
    assert pdb["spec"]["minAvailable"] == 1
    executor = find(objects, "Deployment", "executor")
    assert label_selects(
        pdb["spec"]["selector"]["matchLabels"], executor["spec"]["template"]["metadata"]["labels"]
    )
    assert executor["spec"]["replicas"] == 4


def _drain_needs_s(env: str | None) -> float:
    """Seconds an executor may take after SIGTERM: its drain and leaving the consumer group."""
    drain_s = float(env) if env else ExecutorSettings.model_fields["drain_s"].default
    return drain_s + DRAIN_MARGIN_S


@pytest.mark.parametrize("layer", LAYERS)
def test_executors_are_given_time_to_drain(layer: str) -> None:
    executor = find(rendered(layer), "Deployment", "executor")
    pod = executor["spec"]["template"]["spec"]
    drain = env_value(pod["containers"][0], "BATCHYARD_EXECUTOR_DRAIN_S")
    assert pod.get("terminationGracePeriodSeconds", 30) >= _drain_needs_s(drain)


def test_compose_gives_executors_time_to_drain() -> None:
    executor = load_compose()["services"]["executor"]
    grace = re.fullmatch(r"(\d+)s", str(executor.get("stop_grace_period", "10s")))
    assert grace, executor.get("stop_grace_period")
    drain = compose_env(executor).get("BATCHYARD_EXECUTOR_DRAIN_S")
    assert int(grace[1]) >= _drain_needs_s(None if drain is None else str(drain))


def _kustomizations() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def test_every_kustomization_is_tested_and_its_rules_match_something() -> None:
    """Every kustomization is a tested layer, and its `images` and `replicas` entries change
    something (kustomize ignores an entry that matches nothing, silently)."""
    assert {str(p.relative_to(K8S)) for p in _kustomizations()} == set(LAYERS)
    for directory in _kustomizations():
        kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
        objects = render(directory)
        images = {
            split_image(str(c.get("image")))[0]
            for o in objects
            for c in containers(dig(o, "spec", "template", "spec") or {})
        }
        for rule in kustomization.get("images") or []:
            assert rule["name"] in images, f"{directory}: images entry {rule['name']} is unused"
        for rule in kustomization.get("replicas") or []:
            target = find(objects, "Deployment", rule["name"])
            assert target["spec"]["replicas"] == rule["count"], directory


def test_executors_autoscale_on_lag_with_keda_or_on_cpu_without() -> None:
    prod = rendered("overlays/prod")
    scaled = find(prod, "ScaledObject", "executor")
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "executor",
    }
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    config = find(prod, "ConfigMap", "batchyard-config")["data"]
    prefix = config["BATCHYARD_TOPIC_PREFIX"]
    # the group and topic the executors really use (servicekit / contracts naming)
    assert trigger["metadata"]["consumerGroup"] == f"{prefix}executors"
    assert trigger["metadata"]["topic"] == f"{prefix}batchyard.job.dispatch"
    assert trigger["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
    # no more executors than dispatch partitions: an extra consumer would get no partition
    assert scaled["spec"]["maxReplicaCount"] <= DISPATCH_PARTITIONS
    assert not [o for o in prod if o["kind"] == "HorizontalPodAutoscaler"]

    fallback = rendered("overlays/prod-hpa")
    assert not [o for o in fallback if o["kind"] == "ScaledObject"]
    hpa = find(fallback, "HorizontalPodAutoscaler", "executor")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "executor"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpa["spec"]["maxReplicas"] <= DISPATCH_PARTITIONS


def _policies_for(objects: list[Obj], labels: Obj, policy_type: str) -> list[Obj]:
    def selects(selector: Obj) -> bool:
        if not label_selects(selector.get("matchLabels"), labels) and selector.get("matchLabels"):
            return False
        for expr in selector.get("matchExpressions") or []:
            if expr["operator"] != "In" or labels.get(expr["key"]) not in expr["values"]:
                return False
        return True

    return [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and policy_type in o["spec"].get("policyTypes", [])
        and selects(o["spec"]["podSelector"])
    ]


def _allowed_ports(policies: list[Obj], direction: str) -> set[int | str]:
    return {
        port["port"]
        for p in policies
        for rule in p["spec"].get(direction) or []
        for port in rule.get("ports") or []
    }


@pytest.mark.parametrize("layer", LAYERS)
def test_network_policies_allow_only_what_each_service_talks_to(layer: str) -> None:
    objects = rendered(layer)
    deny = find(objects, "NetworkPolicy", "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for service in SERVICES:
        labels = find(objects, "Deployment", service)["spec"]["template"]["metadata"]["labels"]
        egress = _allowed_ports(_policies_for(objects, labels, "Egress"), "egress")
        ingress = _allowed_ports(_policies_for(objects, labels, "Ingress"), "ingress")
        assert {53, 9092, 27017} <= egress, service
        outbound = {80, 443} <= egress
        assert outbound == (service in {"executor", "reporter"}), service  # job calls, webhooks
        assert ingress == {"http"}, service  # its own port only (scrapes; the API's clients)
    api_labels = find(objects, "Deployment", "batch-api")["spec"]["template"]["metadata"]["labels"]
    open_to_all = [
        p
        for p in _policies_for(objects, api_labels, "Ingress")
        for rule in p["spec"].get("ingress") or []
        if "from" not in rule
    ]
    assert [p["metadata"]["name"] for p in open_to_all] == ["batch-api-ingress"]


@pytest.mark.parametrize("layer", LAYERS)
def test_the_scheduler_and_api_have_disruption_budgets(layer: str) -> None:
    objects = rendered(layer)
    for name in ("scheduler", "batch-api"):
        pdb = find(objects, "PodDisruptionBudget", name)
        assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


@pytest.mark.parametrize("layer", LAYERS)
def test_pods_are_scraped_on_their_metrics_port(layer: str) -> None:
    for service in SERVICES:
        template = find(rendered(layer), "Deployment", service)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(code_http_port(service))
        assert annotations["prometheus.io/path"] == "/metrics"


def test_tracing_can_be_configured_in_every_deployment() -> None:
    assert (
        "OTEL_EXPORTER_OTLP_ENDPOINT"
        in find(rendered("base"), "ConfigMap", "batchyard-config")["data"]
    )
    for service in SERVICES:
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in compose_env(load_compose()["services"][service])


# Each mutation breaks one thing the checks must notice; the fragment is in the problem text.
def _drop(*path: str | int) -> Callable[[Obj], None]:
    def mutate(obj: Obj) -> None:
        del dig(obj, *path[:-1])[path[-1]]

    return mutate


def _set(value: Any, *path: str | int) -> Callable[[Obj], None]:
    def mutate(obj: Obj) -> None:
        dig(obj, *path[:-1])[path[-1]] = value

    return mutate


def _allow_root(obj: Obj) -> None:
    for path in (_POD, _CONTAINER):
        dig(obj, *path, "securityContext").pop("runAsNonRoot", None)


_POD = ("spec", "template", "spec")
_CONTAINER = (*_POD, "containers", 0)
BROKEN_DEPLOYMENTS = {
    "no readiness probe": (_drop(*_CONTAINER, "readinessProbe"), "no readinessProbe"),
    "no liveness probe": (_drop(*_CONTAINER, "livenessProbe"), "no livenessProbe"),
    "liveness on another port": (
        _set(9999, *_CONTAINER, "livenessProbe", "httpGet", "port"),
        "livenessProbe port",
    ),
    "readiness on /healthz": (
        _set("/healthz", *_CONTAINER, "readinessProbe", "httpGet", "path"),
        "readinessProbe path",
    ),
    "no limits": (_drop(*_CONTAINER, "resources", "limits"), "no resources.limits.cpu"),
    "no requests": (_drop(*_CONTAINER, "resources"), "no resources.requests.memory"),
    "root allowed": (_allow_root, "runAsNonRoot is not true"),
    "writable root fs": (
        _set(False, *_CONTAINER, "securityContext", "readOnlyRootFilesystem"),
        "readOnlyRootFilesystem",
    ),
    "no image": (_drop(*_CONTAINER, "image"), "no image"),
    "missing ConfigMap": (
        _set({"configMapRef": {"name": "nope"}}, *_CONTAINER, "envFrom", 0),
        "ConfigMap/nope",
    ),
    "unselected pods": (
        _set({"app.kubernetes.io/name": "other"}, *_POD[:2], "metadata", "labels"),
        "selects no",
    ),
}


@pytest.mark.parametrize(
    ("mutate", "expected"), BROKEN_DEPLOYMENTS.values(), ids=BROKEN_DEPLOYMENTS
)
def test_checks_catch_a_broken_deployment(mutate: Callable[[Obj], None], expected: str) -> None:
    objects = rendered("overlays/prod")
    assert rendered_problems(objects) == []
    broken = copy.deepcopy(objects)
    mutate(find(broken, "Deployment", "executor"))
    problems = rendered_problems(broken)
    assert any(expected in p for p in problems), problems


def test_checks_catch_a_broken_dockerfile() -> None:
    good = dockerfile("executor")
    assert dockerfile_problems("executor", good) == []
    as_root = good.replace("USER 10001:10001", "")
    assert "runtime stage runs as root (no non-root USER)" in dockerfile_problems(
        "executor", as_root
    )
    wrong_port = good.replace("EXPOSE 8010", "EXPOSE 8000")
    assert any("EXPOSE [8000]" in p for p in dockerfile_problems("executor", wrong_port))
    no_health = re.sub(r"HEALTHCHECK .*?\]\n", "", good, flags=re.S)
    assert "no HEALTHCHECK" in dockerfile_problems("executor", no_health)


def test_checks_catch_a_broken_compose_service() -> None:
    executor = copy.deepcopy(load_compose()["services"]["executor"])
    assert compose_service_problems("executor", executor) == []
    del executor["environment"]["BATCHYARD_EXECUTOR_SLOTS"]
    executor["environment"]["BATCHYARD_INSTANCE_ID"] = "executor"
    executor["depends_on"]["kafka"] = {"condition": "service_started"}
    del executor["healthcheck"]
    problems = compose_service_problems("executor", executor)
    for expected in ("BATCHYARD_EXECUTOR_SLOTS", "same BATCHYARD_INSTANCE_ID", "kafka", "/readyz"):
        assert any(expected in p for p in problems), (expected, problems)


# --- Kubernetes JSON schema ------------------------------------------------------------------

K8S_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def keda_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(KEDA_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def schema_errors(obj: Obj, version: str) -> list[str]:
    """Problems of one rendered object against its schema: Kubernetes' own, or KEDA's."""
    where = f"{obj.get('kind')}/{dig(obj, 'metadata', 'name')}"
    if str(obj.get("apiVersion", "")).startswith("keda.sh/"):
        assert obj["apiVersion"] == "keda.sh/v1alpha1", (
            f"{where}: no schema for {obj['apiVersion']}"
        )
        return [
            f"{where}: {'.'.join(str(p) for p in e.path)}: {e.message}"
            for e in keda_validator().iter_errors(obj)
        ]
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{where}: {'.'.join(str(p) for p in error.path)}: {error.message}"]
    return []


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("layer", LAYERS)
def test_rendered_objects_match_the_kubernetes_schema(layer: str, version: str) -> None:
    objects = rendered(layer)
    assert objects
    errors = [e for obj in objects for e in schema_errors(obj, version)]
    assert errors == []


def test_schema_validation_catches_a_broken_object() -> None:
    deployment = copy.deepcopy(find(rendered("base"), "Deployment", "scheduler"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "pathh"
    ] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31.0", strict=True)
    del deployment["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.31.0", strict=False)


def test_keda_schema_catches_a_broken_scaled_object() -> None:
    good = find(rendered("overlays/prod"), "ScaledObject", "executor")
    assert schema_errors(good, "1.31.0") == []
    typo = copy.deepcopy(good)
    typo["spec"]["maxReplicas"] = typo["spec"].pop("maxReplicaCount")  # the HPA's field name
    assert any("maxReplicas" in e for e in schema_errors(typo, "1.31.0"))
    no_target = copy.deepcopy(good)
    del no_target["spec"]["scaleTargetRef"]
    assert any("scaleTargetRef" in e for e in schema_errors(no_target, "1.31.0"))
    numeric = copy.deepcopy(good)
    numeric["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 64  # must be a string
    assert any("lagThreshold" in e for e in schema_errors(numeric, "1.31.0"))
