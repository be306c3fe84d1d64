"""The deployment files (Dockerfile, deploy/docker-compose.yml, deploy/k8s) agree with the
code: commands parse with the real CLI, probes hit routes the API serves, every variable
the config needs is provided, and the embedded config is valid. Parsing only; no engine."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import tomllib
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from indexer.cli import UserError, build_parser
from indexer.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SHIPPED_CONFIG = ROOT / "indexer" / "chains.toml"

READER_ROLE = "aave_indexer_reader"
GLOBAL_ENV = {"DATABASE_URL", "AAVE_INDEXER_CONFIG"}
EXPECTED_COMPOSE_DEPENDS = {
    "migrate": {"postgres": "service_healthy"},
    "reader-role": {"migrate": "service_completed_successfully"},
    "indexer": {"migrate": "service_completed_successfully"},
    "api": {"reader-role": "service_completed_successfully"},
}


# -- loading ------------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


@cache
def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@cache
def k8s_objects() -> list[dict[str, Any]]:
    """Every manifest object except the kustomization itself."""
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        objects += [d for d in load_docs(path) if d.get("kind") != "Kustomization"]
    return objects


def kustomization() -> dict[str, Any]:
    return load_docs(K8S / "kustomization.yaml")[0]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in k8s_objects()
        if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def deployment(component: str) -> dict[str, Any]:
    found = [
        o
        for o in k8s_objects()
        if o.get("kind") == "Deployment"
        and o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == component
    ]
    assert len(found) == 1, f"expected one Deployment for component {component}"
    return found[0]


def pod_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def workloads() -> list[dict[str, Any]]:
    return [o for o in k8s_objects() if o.get("kind") in ("Deployment", "Job")]


def compose() -> dict[str, Any]:
    return load_docs(COMPOSE_FILE)[0]


@cache
def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def rpc_envs(config_text: str) -> set[str]:
    data = tomllib.loads(config_text)
    return {c["rpc_env"] for c in data["chains"].values() if c.get("rpc_env")}


def configmap_toml() -> str:
    data = one("ConfigMap")["data"]
    return str(data["chains.toml"])


def all_rpc_envs() -> set[str]:
    names = rpc_envs(SHIPPED_CONFIG.read_text()) | rpc_envs(configmap_toml())
    assert names, "no rpc_env found in the configs"
    return names


# -- Dockerfile ---------------------------------------------------------------------------


@cache
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage, continuation lines joined, comment lines dropped."""
    stages: list[list[tuple[str, str]]] = []
    logical = ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            logical += raw.rstrip()[:-1] + " "
            continue
        logical += raw
        if logical.strip():
            keyword, _, rest = logical.strip().partition(" ")
            if keyword.upper() == "FROM":
                stages.append([])
            assert stages, "Dockerfile: instruction before the first FROM"
            stages[-1].append((keyword.upper(), rest.strip()))
        logical = ""
    return stages


def instruction(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in stage if kw == keyword]


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def shell_commands(script: str) -> list[list[str]]:
    """A RUN line's simple commands, as word lists (split at && || ; | and braces)."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|", "{", "}", "(", ")"):
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def image_entrypoint_and_cmd() -> tuple[list[str], list[str]]:
    final = dockerfile_stages()[-1]
    entrypoints, cmds = instruction(final, "ENTRYPOINT"), instruction(final, "CMD")
    assert entrypoints, "the final stage has no ENTRYPOINT"
    assert cmds, "the final stage has no CMD"
    return exec_form(entrypoints[-1]), exec_form(cmds[-1])


def console_script() -> str:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert len(scripts) == 1, f"expected one console script, got {sorted(scripts)}"
    return next(iter(scripts))


# -- CLI ----------------------------------------------------------------------------------


@cache
def cli_parser() -> Any:
    return build_parser()


def parse_cli(argv: list[str], where: str) -> Any:
    try:
        return cli_parser().parse_args(argv)
    except (UserError, SystemExit) as exc:
        pytest.fail(f"{where}: `aave-indexer {shlex.join(argv)}` does not parse: {exc}")


def our_image(image: str) -> bool:
    names = {i["name"] for i in kustomization().get("images", [])}
    return image.rsplit(":", 1)[0] in names


def k8s_cli_argv(container: dict[str, Any]) -> list[str]:
    """The aave-indexer arguments of a container running the project image."""
    _, default_cmd = image_entrypoint_and_cmd()
    command = container.get("command")
    args = container.get("args")
    if command is not None:
        assert command[0] == console_script(), (
            f"{container['name']}: overrides the entrypoint with {command[0]!r}"
        )
        return [*command[1:], *(args or [])]
    return list(args) if args is not None else default_cmd


def cli_containers() -> list[tuple[str, dict[str, Any], Any]]:
    """(workload/container, container, parsed args) for every project-image container."""
    found = []
    for obj in workloads():
        for container in pod_containers(obj):
            if our_image(container["image"]):
                where = f"{obj['metadata']['name']}/{container['name']}"
                found.append((where, container, parse_cli(k8s_cli_argv(container), where)))
    assert found, "no container runs the project image"
    return found


def cli_container(command: str) -> tuple[dict[str, Any], Any]:
    matches = [(c, a) for _, c, a in cli_containers() if a.command == command]
    assert len(matches) == 1, f"expected one container running `{command}`"
    return matches[0]


# -- Kubernetes helpers -------------------------------------------------------------------


def parse_quantity(value: str | int | float) -> float:
    text = str(value)
    units = {
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
        "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "m": 1e-3,
    }  # fmt: skip
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port (a number or a port name) as the container's number."""
    declared = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if isinstance(port, str):
        assert port in declared, f"{container['name']}: no port named {port!r}"
        return int(declared[port])
    assert port in declared.values(), f"{container['name']}: port {port} not declared"
    return port


def probe_target(container: dict[str, Any], probe: dict[str, Any]) -> tuple[str | None, int]:
    if "httpGet" in probe:
        return probe["httpGet"]["path"], container_port(container, probe["httpGet"]["port"])
    if "tcpSocket" in probe:
        return None, container_port(container, probe["tcpSocket"]["port"])
    raise AssertionError(f"{container['name']}: probe is neither httpGet nor tcpSocket")


def env_sources(container: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Variable -> ("secret"|"configmap", object name, key) or ("value", "", value)."""
    sources: dict[str, tuple[str, str, str]] = {}
    for ref in container.get("envFrom", []):
        if "secretRef" in ref:
            name = ref["secretRef"]["name"]
            for key in secret_data(name):
                sources[key] = ("secret", name, key)
        if "configMapRef" in ref:
            name = ref["configMapRef"]["name"]
            for key in one("ConfigMap", name)["data"]:
                sources[key] = ("configmap", name, key)
    for var in container.get("env", []):
        source = var.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            sources[var["name"]] = ("secret", ref["name"], ref["key"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            sources[var["name"]] = ("configmap", ref["name"], ref["key"])
        else:
            assert "value" in var, f"{container['name']}: {var['name']} has no value"
            sources[var["name"]] = ("value", "", str(var["value"]))
    return sources


def secret_data(name: str) -> dict[str, str]:
    secret = one("Secret", name)
    return {**secret.get("stringData", {}), **secret.get("data", {})}


def env_value(container: dict[str, Any], name: str) -> str:
    sources = env_sources(container)
    assert name in sources, f"{container['name']}: {name} is not set"
    kind, obj, key = sources[name]
    if kind == "secret":
        return secret_data(obj)[key]
    if kind == "configmap":
        return str(one("ConfigMap", obj)["data"][key])
    return key


# -- compose helpers ----------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} substitution; $$ is a literal $."""

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        value = env.get(name)
        if op in (":-", "-") and (value is None or (op == ":-" and not value)):
            return arg
        assert value is not None, f"compose: ${{{name}}} is not set"
        if op == ":?":
            assert value, f"compose: ${{{name}}} is empty"
        return value

    parts = text.split("$$")
    return "$".join(_VAR.sub(sub, part) for part in parts)


def compose_variables_without_default(text: str) -> set[str]:
    """Variables interpolated somewhere without a ${VAR:-default}."""
    return {
        name
        for part in text.split("$$")
        for name, op, _ in _VAR.findall(part)
        if op not in (":-", "-")
    }


def filled_env() -> dict[str, str]:
    """.env.example with a stand-in for every value left empty."""
    return {k: v or f"x-{k.lower()}" for k, v in env_example().items()}


def service_env(name: str) -> dict[str, str]:
    """What a compose service's container sees: env_file entries, then `environment`."""
    service = compose()["services"][name]
    env: dict[str, str] = {}
    files = service.get("env_file", [])
    for entry in [files] if isinstance(files, str | dict) else files:
        path = entry["path"] if isinstance(entry, dict) else entry
        assert path == ".env", f"{name}: env_file {path!r}; only .env is described"
        env.update(filled_env())
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    env.update({k: interpolate(str(v), filled_env()) for k, v in environment.items()})
    return env


def compose_project_services() -> dict[str, dict[str, Any]]:
    """Services built from the repository's Dockerfile."""
    services = {}
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
        assert (DEPLOY / context).resolve() == ROOT, f"{name}: build context is not the repo"
        assert (dockerfile or "Dockerfile") == DOCKERFILE.name, f"{name}: other Dockerfile"
        services[name] = service
    assert services, "no compose service is built from the Dockerfile"
    return services


def compose_argv(name: str) -> list[str]:
    service = compose_project_services()[name]
    assert "entrypoint" not in service, f"{name}: overrides the image entrypoint"
    command = service.get("command")
    if command is None:
        return image_entrypoint_and_cmd()[1]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def compose_service_for(command: str) -> tuple[str, Any]:
    matches = []
    for name in compose_project_services():
        args = parse_cli(compose_argv(name), f"compose service {name}")
        if args.command == command:
            matches.append((name, args))
    assert len(matches) == 1, f"expected one compose service running `{command}`"
    return matches[0]


def published_container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(interpolate(str(entry), {}).rsplit(":", 1)[-1].split("/")[0]))
    return ports


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test")
    assert test, "no healthcheck"
    return test if isinstance(test, str) else " ".join(test)


# -- YAML: everything parses, objects are well-formed --------------------------------------


def test_deploy_tree_has_the_expected_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in yaml_files()}
    expected = {
        "docker-compose.yml",
        "k8s/namespace.yaml",
        "k8s/configmap.yaml",
        "k8s/secret.example.yaml",
        "k8s/migrate-job.yaml",
        "k8s/indexer-deployment.yaml",
        "k8s/api-deployment.yaml",
        "k8s/api-service.yaml",
        "k8s/kustomization.yaml",
    }
    assert expected <= names, f"missing: {sorted(expected - names)}"
    assert ENV_EXAMPLE.is_file()
    assert (DEPLOY / "README.md").is_file()


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_yaml_parses(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path.name}: no YAML document"
    assert all(isinstance(d, dict) for d in docs), f"{path.name}: a document is not a mapping"


def test_k8s_objects_have_required_fields() -> None:
    objects = k8s_objects()
    assert len(objects) >= 7
    namespace = one("Namespace")["metadata"]["name"]
    assert kustomization().get("namespace") == namespace
    for obj in objects:
        label = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        assert isinstance(obj.get("apiVersion"), str) and obj["apiVersion"], label
        assert isinstance(obj.get("kind"), str) and obj["kind"], label
        assert isinstance(obj.get("metadata", {}).get("name"), str), label
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", obj["metadata"]["name"]), label
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, f"{label}: namespace"


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    for name in listed:
        assert (K8S / name).is_file(), f"kustomization lists missing {name}"
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # Applying the placeholder Secret would overwrite real credentials.
    assert "secret.example.yaml" not in listed
    assert set(listed) == present - {"secret.example.yaml"}


def test_kustomization_image_override_matches_the_manifests() -> None:
    images = {
        c["image"].rsplit(":", 1)[0]
        for obj in workloads()
        for c in pod_containers(obj)
        if not c["image"].startswith("postgres:")
    }
    override = {i["name"] for i in kustomization()["images"]}
    assert images, "no project image in the workloads"
    assert images <= override, f"images not covered by kustomization images: {images - override}"


def test_deployment_selectors_match_template_labels() -> None:
    deployments = [o for o in k8s_objects() if o["kind"] == "Deployment"]
    assert len(deployments) == 2
    selectors = []
    for dep in deployments:
        selector = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector, dep["metadata"]["name"]
        assert selector.items() <= labels.items(), f"{dep['metadata']['name']}: selector"
        selectors.append(selector)
    for dep in deployments:
        labels = dep["spec"]["template"]["metadata"]["labels"]
        owners = [s for s in selectors if s.items() <= labels.items()]
        assert len(owners) == 1, f"{dep['metadata']['name']}: selectors overlap"


def test_containers_have_image_and_resources() -> None:
    containers = [(o, c) for o in workloads() for c in pod_containers(o)]
    assert len(containers) >= 4
    for obj, c in containers:
        label = f"{obj['metadata']['name']}/{c['name']}"
        assert c.get("image"), f"{label}: no image"
        assert not c["image"].endswith(":latest"), f"{label}: pin the image tag"
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                assert res in resources.get(kind, {}), f"{label}: no {kind}.{res}"
        for res in ("cpu", "memory"):
            request = parse_quantity(resources["requests"][res])
            limit = parse_quantity(resources["limits"][res])
            assert 0 < request <= limit, f"{label}: {res} request above limit"


def test_indexer_resources_fit_300_mb_resident() -> None:
    container, _ = cli_container("run")
    memory = container["resources"]
    assert parse_quantity(memory["requests"]["memory"]) >= 300e6
    assert parse_quantity(memory["limits"]["memory"]) >= 1.5 * 300e6


def test_replicas() -> None:
    assert deployment("api")["spec"]["replicas"] >= 2
    # Safe thanks to the per-chain advisory locks: the second one is a standby.
    assert deployment("indexer")["spec"]["replicas"] >= 2
    assert "advisory lock" in (K8S / "indexer-deployment.yaml").read_text()


# -- CLI: every invocation parses ----------------------------------------------------------


def test_k8s_commands_parse_with_the_cli() -> None:
    commands = sorted(args.command for _, _, args in cli_containers())
    assert commands == ["migrate", "run", "serve"]


def test_other_images_do_not_call_the_cli() -> None:
    script = console_script()
    for obj in workloads():
        for c in pod_containers(obj):
            if not our_image(c["image"]):
                text = " ".join([*c.get("command", []), *c.get("args", [])])
                assert script not in text, f"{c['name']}: runs {script} from another image"


def test_k8s_roles() -> None:
    _, run = cli_container("run")
    assert run.metrics_port > 0 and run.metrics_host == "0.0.0.0"
    assert run.log_json
    _, serve = cli_container("serve")
    assert serve.host == "0.0.0.0"
    migrate_jobs = [
        o
        for o in workloads()
        if o["kind"] == "Job"
        and any(
            our_image(c["image"]) and parse_cli(k8s_cli_argv(c), c["name"]).command == "migrate"
            for c in pod_containers(o)
        )
    ]
    assert len(migrate_jobs) == 1
    # Runs before anything else in its pod: the reader role exists once it has finished.
    first = migrate_jobs[0]["spec"]["template"]["spec"].get("initContainers", [None])[0]
    assert first is not None and parse_cli(k8s_cli_argv(first), "job").command == "migrate"


def test_compose_commands_parse_with_the_cli() -> None:
    commands = sorted(parse_cli(compose_argv(n), n).command for n in compose_project_services())
    assert commands == ["migrate", "run", "serve"]


# -- probes and ports ---------------------------------------------------------------------


@cache
def api_routes() -> set[str]:
    from api.app import create_app

    app = create_app("postgresql://probe@127.0.0.1:1/none")
    return {route.path for route in app.routes}


def test_api_probes_hit_served_routes_on_the_serve_port() -> None:
    container, serve = cli_container("serve")
    routes = api_routes()
    ready = probe_target(container, container["readinessProbe"])
    alive = probe_target(container, container["livenessProbe"])
    assert ready == ("/readyz", serve.port)
    assert alive == ("/healthz", serve.port)
    assert {"/readyz", "/healthz"} <= routes


def test_indexer_liveness_hits_the_metrics_port() -> None:
    container, run = cli_container("run")
    path, port = probe_target(container, container["livenessProbe"])
    assert port == run.metrics_port
    assert path in (None, "/metrics")
    annotations = deployment("indexer")["spec"]["template"]["metadata"].get("annotations", {})
    if "prometheus.io/port" in annotations:
        assert int(annotations["prometheus.io/port"]) == run.metrics_port


def test_api_service_targets_the_api_pods() -> None:
    service = one("Service")
    selector = service["spec"]["selector"]
    api_labels = deployment("api")["spec"]["template"]["metadata"]["labels"]
    indexer_labels = deployment("indexer")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= api_labels.items()
    assert not selector.items() <= indexer_labels.items()
    container, serve = cli_container("serve")
    for port in service["spec"]["ports"]:
        assert container_port(container, port.get("targetPort", port["port"])) == serve.port


# -- environment: every variable the config needs is provided -------------------------------


def test_k8s_references_resolve() -> None:
    refs = 0
    for obj in workloads():
        for c in pod_containers(obj):
            for name, (kind, source, key) in env_sources(c).items():
                if kind == "secret":
                    assert key in secret_data(source), f"{c['name']}: {name} -> missing {key}"
                    refs += 1
                elif kind == "configmap":
                    assert key in one("ConfigMap", source)["data"], f"{c['name']}: {name}"
                    refs += 1
    assert refs >= len(all_rpc_envs()) + 2


def test_k8s_indexer_gets_every_variable_the_config_needs() -> None:
    container, _ = cli_container("run")
    provided = set(env_sources(container))
    required = all_rpc_envs() | GLOBAL_ENV
    assert required <= provided, f"missing: {sorted(required - provided)}"
    placeholders = secret_data("aave-indexer-secrets")
    assert all_rpc_envs() <= set(placeholders), "the Secret template lacks an RPC variable"


def test_k8s_config_file_is_the_mounted_configmap() -> None:
    container, _ = cli_container("run")
    path = env_value(container, "AAVE_INDEXER_CONFIG")
    directory, filename = posixpath.split(path)
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == directory]
    assert len(mounts) == 1, f"nothing mounted at {directory}"
    volumes = deployment("indexer")["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == mounts[0]["name"])
    configmap = one("ConfigMap", volume["configMap"]["name"])
    items = volume["configMap"].get("items") or [{"key": k, "path": k} for k in configmap["data"]]
    keys = [i["key"] for i in items if i["path"] == filename]
    assert keys == ["chains.toml"], f"{path} is not the ConfigMap's chains.toml"


def test_k8s_database_roles() -> None:
    api, _ = cli_container("serve")
    assert urlsplit(env_value(api, "DATABASE_URL")).username == READER_ROLE
    for command in ("run", "migrate"):
        container, _ = cli_container(command)
        assert urlsplit(env_value(container, "DATABASE_URL")).username != READER_ROLE
    assert "AAVE_API_CURSOR_SECRET" in env_sources(api)


def test_configmap_toml_is_a_valid_config_like_the_shipped_one() -> None:
    config = parse_config(tomllib.loads(configmap_toml()), "configmap")
    shipped = parse_config(tomllib.loads(SHIPPED_CONFIG.read_text()), "shipped")

    def summary(c: Any) -> dict[str, tuple[int, str | None]]:
        return {n: (ch.chain_id, ch.rpc_env) for n, ch in c.chains.items()}

    assert summary(config) == summary(shipped)
    assert all(ch.rpc_env or ch.rpc_urls for ch in config.chains.values())
    assert configmap_toml() == SHIPPED_CONFIG.read_text()  # the same markets and feeds


def test_compose_indexer_gets_every_variable_the_config_needs() -> None:
    name, _ = compose_service_for("run")
    env = service_env(name)
    required = all_rpc_envs() | GLOBAL_ENV
    assert required <= set(env), f"missing: {sorted(required - set(env))}"


def test_compose_config_file_is_mounted_and_valid() -> None:
    name, _ = compose_service_for("run")
    target = service_env(name)["AAVE_INDEXER_CONFIG"]
    sources = []
    for entry in compose()["services"][name].get("volumes", []):
        source, _, rest = interpolate(str(entry), {}).partition(":")
        if rest.split(":")[0] == target:
            sources.append((DEPLOY / source).resolve())
    assert len(sources) == 1, f"{target} is not mounted"
    text = sources[0].read_text()
    parse_config(tomllib.loads(text), str(sources[0]))
    assert rpc_envs(text) <= set(env_example())


def test_compose_database_roles() -> None:
    api, _ = compose_service_for("serve")
    assert urlsplit(service_env(api)["DATABASE_URL"]).username == READER_ROLE
    assert "AAVE_API_CURSOR_SECRET" in service_env(api)
    for command in ("run", "migrate"):
        service, _ = compose_service_for(command)
        url = urlsplit(service_env(service)["DATABASE_URL"])
        assert url.username != READER_ROLE and url.hostname == "postgres"


def test_compose_variables_are_in_env_example() -> None:
    required = compose_variables_without_default(COMPOSE_FILE.read_text())
    assert required, "compose interpolates no required variable"
    missing = required - set(env_example())
    assert not missing, f"no default and not in .env.example: {sorted(missing)}"


def test_compose_reader_password_is_applied_to_the_reader_role() -> None:
    service = compose()["services"]["reader-role"]
    script = " ".join(service["command"])
    assert READER_ROLE in script and "$$READER_PASSWORD" in script
    assert "READER_PASSWORD" in service["environment"]


# -- compose: services and their order -----------------------------------------------------


def test_compose_dependencies() -> None:
    services = compose()["services"]
    for name, expected in EXPECTED_COMPOSE_DEPENDS.items():
        depends = services[name].get("depends_on", {})
        actual = {dep: cond["condition"] for dep, cond in depends.items()}
        assert actual == expected, f"{name} depends on {actual}"
    assert compose_service_for("migrate")[0] == "migrate"
    assert compose_service_for("run")[0] == "indexer"
    assert compose_service_for("serve")[0] == "api"


def test_compose_postgres() -> None:
    compose_file = compose()
    pg = compose_file["services"]["postgres"]
    assert str(pg["image"]).startswith("postgres:16")
    assert "pg_isready" in healthcheck_text(pg)
    volumes = [str(v).split(":") for v in pg["volumes"]]
    data = [v[0] for v in volumes if v[1] == "/var/lib/postgresql/data"]
    assert data and data[0] in compose_file["volumes"], "no named volume for the data"


def test_compose_indexer_and_api_services() -> None:
    services = compose()["services"]
    indexer, run = compose_service_for("run")
    assert services[indexer]["restart"] == "unless-stopped"
    assert run.metrics_host == "0.0.0.0" and run.metrics_port > 0 and run.log_json
    assert run.metrics_port in published_container_ports(services[indexer])
    api, serve = compose_service_for("serve")
    assert serve.host == "0.0.0.0"
    assert serve.port in published_container_ports(services[api])
    assert f":{serve.port}/readyz" in healthcheck_text(services[api])
    assert "/readyz" in api_routes()
    migrate, _ = compose_service_for("migrate")
    assert services[migrate].get("restart", "no") == "no"


# -- Dockerfile and .dockerignore ----------------------------------------------------------


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    entrypoint, cmd = image_entrypoint_and_cmd()
    script = console_script()
    assert entrypoint == [script]
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"][script]
    assert target == "indexer.cli:main"
    assert cmd == ["run"]
    assert parse_cli(cmd, "Dockerfile CMD").command == "run"


def test_dockerfile_base_install_and_user() -> None:
    stages = dockerfile_stages()
    for stage in stages:
        image = stage[0][1].split()[0]
        assert image.startswith("python:3.11-slim"), f"base image {image}"
    runs = [rest for stage in stages for rest in instruction(stage, "RUN")]
    commands = [c for run in runs for c in shell_commands(run)]
    installs = [c for c in commands if c[:2] == ["pip", "install"] and "." in c]
    assert installs, "the project is not installed with `pip install .`"
    for words in installs:
        assert "constraints.txt" in words and words[words.index("constraints.txt") - 1] == "-c"
    text = " ".join(runs)
    assert not re.search(r"\b(npm|node|anvil|foundryup)\b", text), "devnet tools in the image"
    users = instruction(stages[-1], "USER")
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    exposed = {int(p.split("/")[0]) for e in instruction(stages[-1], "EXPOSE") for p in e.split()}
    assert {cli_container("serve")[1].port, cli_container("run")[1].metrics_port} <= exposed


def test_image_ships_schema_sql() -> None:
    """`migrate` needs schema.sql inside the installed package."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"].get("package-data", {}).get("indexer", [])
    packaged = "schema.sql" in package_data and (ROOT / "indexer" / "schema.sql").exists()
    copies = [
        words
        for stage in dockerfile_stages()
        for kw, rest in stage
        for words in (shell_commands(rest) if kw == "RUN" else [["COPY", *rest.split()]])
        if kw in ("RUN", "COPY")
    ]
    copied = any(
        w[0] in ("cp", "COPY")
        and "schema.sql" in w[1:-1]
        and w[-1].endswith(("indexer/", "indexer/schema.sql"))
        for w in copies
    )
    assert packaged or copied, "schema.sql is neither package data nor copied into the package"


def test_dockerignore() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".venv", "node_modules", ".devnet", ".pgdata", ".git"):
        assert required in patterns, f".dockerignore lacks {required}"
    assert any("__pycache__" in p for p in patterns)
    assert any("cache" in p and "pytest" in p for p in patterns)
    for needed in ("pyproject.toml", "constraints.txt", "schema.sql", "indexer", "api"):
        assert (ROOT / needed).exists(), needed
        excluded = [p for p in patterns if not p.startswith("!") and fnmatch(needed, p)]
        assert not excluded, f".dockerignore excludes {needed} ({excluded})"
