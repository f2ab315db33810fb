"""deploy/k8s against the Kubernetes API schemas and against docker-compose.yml (no cluster here).

Every manifest is validated in strict mode (unknown fields fail) with kubernetes-validate, whose schemas
ship inside the package, so nothing is downloaded. It has no schema for the Kubeflow TFJob (a CRD): the
TFJob is checked against a schema written here from the Training Operator's API (kubeflow.org/v1) whose pod
templates are the Kubernetes PodTemplateSpec, plus the rules of the operator's admission webhook.
The serving stack is rendered from deploy/k8s/kustomization.yaml by `render()` (only the kustomize fields
used there); where kubectl is installed, `kubectl kustomize` must produce the same objects.
Compose and Kubernetes must run the same images, TF Serving flags, config files and gateway settings.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml
from google.protobuf import text_format
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from serving.model_server.protos import MonitoringConfig

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TRAINING = K8S / "training"
# the oldest Kubernetes version checked, and the newest that kubernetes-validate ships schemas for
VERSIONS = ("1.30.0", kv.latest_version())
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator", "generatorOptions"}
POD_KINDS = {"Deployment", "Job"}
Doc = dict[str, Any]


def load_all(text: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load(path: Path) -> list[Doc]:
    return load_all(path.read_text())


def render(folder: Path) -> list[Doc]:
    """What `kustomize build folder` gives for the fields deploy/k8s uses (anything else fails here)."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert set(spec) <= KUSTOMIZE_FIELDS, f"render() does not implement {set(spec) - KUSTOMIZE_FIELDS}"
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        docs += render(path) if path.is_dir() else load(path)
    generators = spec.get("configMapGenerator", [])
    if generators:  # with a hash suffix the names would differ: render() does not compute it
        assert spec.get("generatorOptions") == {"disableNameSuffixHash": True}
    for generator in generators:
        assert set(generator) == {"name", "files"} and all("=" not in f for f in generator["files"])
        data = {Path(f).name: (folder / f).read_text() for f in generator["files"]}
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def index(docs: list[Doc]) -> dict[tuple[str, str], Doc]:
    indexed = {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}
    assert len(indexed) == len(docs), "two objects of one kind share a name"
    return indexed


STACK = index(render(K8S))
JOBS = index([doc for path in sorted(TRAINING.glob("*.yaml")) for doc in load(path)])
TFJOB = JOBS["TFJob", "textclf-lstm"]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def pod_specs() -> dict[str, Doc]:
    """Every pod template: Deployments, Jobs and the TFJob's replicas."""
    specs = {f"{k}/{n}": d["spec"]["template"]["spec"] for (k, n), d in {**STACK, **JOBS}.items() if k in POD_KINDS}
    specs.update({f"TFJob/{r}": s["template"]["spec"] for r, s in TFJOB["spec"]["tfReplicaSpecs"].items()})
    return specs


def container(kind: str, name: str) -> Doc:
    (only,) = STACK[kind, name]["spec"]["template"]["spec"]["containers"]
    return only


def test_kustomization_lists_every_serving_manifest():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == {e for e in listed if e.endswith(".yaml")}
    assert {kind for kind, _ in JOBS} == {"TFJob", "Job"}  # training/ holds the steps, applied one by one


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version):
    errors = []
    for (kind, name), doc in {**STACK, **JOBS}.items():
        if kind == "TFJob":
            continue
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as exc:
            errors.append(f"{kind}/{name} {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)
    with pytest.raises(kv.SchemaNotFoundError):  # a CRD: checked by test_tfjob_matches_the_operator_api
        kv.validate(TFJOB, version, strict=True)


def test_strict_validation_rejects_an_unknown_field():
    typo = copy.deepcopy(STACK["Deployment", "gateway"])
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kv.ValidationError, match="readinesProbe"):
        kv.validate(typo, VERSIONS[0], strict=True)


# ---- the TFJob (kubeflow.org/v1): Training Operator API types, pod templates from the Kubernetes schemas


def tfjob_validator(version: str) -> jsonschema.Draft202012Validator:
    definitions = kv.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version)
    k8s = "/api/_definitions.json#/$defs/io.k8s."

    def closed(required: list[str], **properties: Any) -> Doc:
        return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}

    replica = closed(
        ["replicas", "restartPolicy", "template"],
        replicas={"type": "integer", "minimum": 1},
        restartPolicy={"enum": ["Always", "OnFailure", "Never", "ExitCode"]},
        template={"$ref": k8s + "api.core.v1.PodTemplateSpec"},
    )
    run_policy = closed(
        [],
        cleanPodPolicy={"enum": ["None", "Running", "All"]},
        ttlSecondsAfterFinished={"type": "integer", "minimum": 0},
        activeDeadlineSeconds={"type": "integer", "minimum": 1},
        backoffLimit={"type": "integer", "minimum": 0},
        schedulingPolicy={"type": "object"},
        suspend={"type": "boolean"},
        managedBy={"type": "string"},
    )
    replica_types = ["Chief", "Master", "Worker", "PS", "Evaluator"]
    spec = closed(
        ["tfReplicaSpecs"],
        runPolicy=run_policy,
        successPolicy={"enum": ["", "AllWorkers"]},
        enableDynamicWorker={"type": "boolean"},
        tfReplicaSpecs={
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"enum": replica_types},
            "additionalProperties": replica,
        },
    )
    schema = {
        "$id": "https://kubernetes.io/api/tfjob-kubeflow-v1.json",
        **closed(
            ["apiVersion", "kind", "metadata", "spec"],
            apiVersion={"const": "kubeflow.org/v1"},
            kind={"const": "TFJob"},
            metadata={"$ref": k8s + "apimachinery.pkg.apis.meta.v1.ObjectMeta"},
            spec=spec,
        ),
    }
    registry = Resource.from_contents(definitions) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def webhook_errors(job: Doc) -> list[str]:
    """The Training Operator's admission webhook for TFJobs: a DNS-1035 name, at most one Chief/Master, and in
    every replica an image for each container and one container named `tensorflow` (the one that gets TF_CONFIG)."""
    errors = []
    name = job["metadata"]["name"]
    if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
        errors.append(f"name {name!r} is not a DNS-1035 label")
    replicas = job["spec"]["tfReplicaSpecs"]
    if len({"Chief", "Master"} & set(replicas)) > 1:
        errors.append("more than one Chief/Master")
    for role, spec in replicas.items():
        containers = spec["template"]["spec"]["containers"]
        errors += [f"{role}: container {c['name']} has no image" for c in containers if not c.get("image")]
        if "tensorflow" not in [c["name"] for c in containers]:
            errors.append(f"{role}: no container named tensorflow")
    return errors


@pytest.mark.parametrize("version", VERSIONS)
def test_tfjob_matches_the_operator_api(version):
    validator = tfjob_validator(version)
    assert [e.message for e in validator.iter_errors(TFJOB)] == []
    assert webhook_errors(TFJOB) == []
    # the checks bite: a misspelt container field, the pre-v1 field name, a container the operator ignores
    typo = copy.deepcopy(TFJOB)
    typo["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["comand"] = ["textclf"]
    assert not validator.is_valid(typo)
    renamed = copy.deepcopy(TFJOB)
    renamed["spec"]["replicaSpecs"] = renamed["spec"].pop("tfReplicaSpecs")
    assert not validator.is_valid(renamed)
    unnamed = copy.deepcopy(TFJOB)
    unnamed["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["name"] = "train"
    assert webhook_errors(unnamed) == ["Chief: no container named tensorflow"]


def test_tfjob_runs_one_command_on_chief_and_workers():
    replicas = TFJOB["spec"]["tfReplicaSpecs"]
    assert set(replicas) == {"Chief", "Worker"} and replicas["Chief"]["replicas"] == 1
    assert replicas["Worker"]["replicas"] >= 1
    # the same pod on every replica: TF_CONFIG (injected by the operator) is the only difference
    assert replicas["Chief"]["template"] == replicas["Worker"]["template"]
    (tensorflow,) = replicas["Chief"]["template"]["spec"]["containers"]
    assert (
        tensorflow["command"][:3] == ["textclf", "train", "lstm"] and "--strategy=multiworker" in tensorflow["command"]
    )
    assert all(env["name"] != "TF_CONFIG" for env in tensorflow.get("env", []))
    # a restarted pod reruns the command and resumes from the backup in the shared run folder
    assert {spec["restartPolicy"] for spec in replicas.values()} == {"OnFailure"}
    assert "--backup-every-steps" in " ".join(tensorflow["command"])
    shared = {m["name"]: m["mountPath"] for m in tensorflow["volumeMounts"]}["shared"]
    out = next(arg.split("=", 1)[1] for arg in tensorflow["command"] if arg.startswith("--out="))
    assert out.startswith(shared + "/")


def resolve(argv: list[str]) -> tuple[click.Command, list[str]]:
    """The click command that `textclf ARGV` runs, and the arguments it gets (resolved as the CLI does)."""
    import textclf

    command: click.Command = textclf.cli
    rest = list(argv)
    while isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"textclf has no command {argv[: len(argv) - len(rest) + 1]}"
        command, rest = sub, rest[1:]
    return command, rest


def cli_errors(argv: list[str]) -> list[str]:
    """Checks ARGV against the real textclf commands without running them (their files do not exist here)."""
    assert argv[0] == "textclf"
    command, rest = resolve(argv[1:])
    options = {o: p for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}
    errors, given, positional = [], set(), []
    tokens = iter(rest)
    for token in tokens:
        if not token.startswith("-"):
            positional.append(token)
            continue
        name, _, value = token.partition("=")
        param = options.get(name)
        if param is None:
            errors.append(f"no option {name}")
            continue
        given.add(param.name)
        if not param.is_flag:
            value = value or next(tokens)
            if not isinstance(param.type, click.Path):
                try:
                    param.type.convert(value, param, None)
                except click.BadParameter as exc:
                    errors.append(f"{name}: {exc.message}")
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if len(positional) != len(arguments):
        errors.append(f"{len(positional)} arguments for {[a.name for a in arguments]}")
    required = {p.name for p in command.params if isinstance(p, click.Option) and p.required}
    errors += [f"missing --{name}" for name in sorted(required - given)]
    return errors


def test_training_commands_are_accepted_by_the_cli():
    specs = pod_specs()
    commands = {name: s["containers"][0]["command"] for name, s in specs.items() if not name.startswith("Deployment")}
    assert len(commands) == 4
    assert {name: cli_errors(argv) for name, argv in commands.items()} == {name: [] for name in commands}
    wrong = cli_errors(["textclf", "train", "lstm", "--data=d", "--out=o", "--strategy=many", "--ouch"])
    assert [error.split(":")[0] for error in wrong] == ["--strategy", "no option --ouch"]
    # the steps hand over through the shared claim: prep writes what train reads, export reads what train wrote
    prep, export, train = commands["Job/textclf-prep"], commands["Job/textclf-export"], commands["TFJob/Chief"]
    assert "--out=/shared/data" in prep and "--data=/shared/data" in train
    assert f"--out={export[2]}" in train


# ---- compose and Kubernetes run the same thing


def compose_flags(service: str) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in COMPOSE[service]["command"])


def test_tf_serving_runs_as_in_compose():
    tfs, compose = container("Deployment", "tfserving"), COMPOSE["tfserving"]
    assert tfs["image"] == compose["image"]
    assert "command" not in tfs and tfs["args"] == compose["command"]  # both keep the image's entrypoint
    flags = compose_flags("tfserving")
    assert {p["name"]: str(p["containerPort"]) for p in tfs["ports"]} == {
        "grpc": flags["port"],
        "http": flags["rest_api_port"],
    }
    assert tfs["readinessProbe"]["exec"]["command"] == compose["healthcheck"]["test"][1:]
    assert compose["healthcheck"]["test"][0] == "CMD" and "/v1/models/" in compose["healthcheck"]["test"][-1]
    monitoring = text_format.Parse((ROOT / "serving/config/monitoring.config").read_text(), MonitoringConfig())
    assert tfs["livenessProbe"]["httpGet"] == {"path": monitoring.prometheus_config.path, "port": "http"}


def test_tf_serving_reads_the_compose_config_files_and_model_base():
    compose_mounts = {}
    for volume in COMPOSE["tfserving"]["volumes"]:
        host, mount, _ = volume.rsplit(":", 2)
        compose_mounts[mount] = host
    spec = STACK["Deployment", "tfserving"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in container("Deployment", "tfserving")["volumeMounts"]}
    assert mounts["/models"]["readOnly"] and "/models" in compose_mounts
    assert volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]["claimName"] == "textclf-models"
    # every config file compose mounts is a key of the ConfigMap mounted (as a folder, so edits propagate) there
    files = {mount: host for mount, host in compose_mounts.items() if mount.startswith("/config/")}
    assert len(files) == 3 and "subPath" not in mounts["/config"]
    config_map = STACK["ConfigMap", volumes[mounts["/config"]["name"]]["configMap"]["name"]]
    assert config_map["data"] == {Path(mount).name: (ROOT / host).read_text() for mount, host in files.items()}
    flags = compose_flags("tfserving")
    assert {flags[f] for f in ("model_config_file", "batching_parameters_file", "monitoring_config_file")} == set(files)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kustomize_renders_what_render_reads():
    built = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    assert index(load_all(built.stdout)) == STACK
    # byte for byte: the ConfigMap TF Serving reads on Kubernetes is serving/config/*
    data = STACK["ConfigMap", "tfserving-config"]["data"]
    assert data == {name: (ROOT / "serving" / "config" / name).read_text() for name in data}


def test_gateway_runs_as_in_compose():
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig

    gateway, compose = container("Deployment", "gateway"), COMPOSE["gateway"]
    assert gateway["image"] == compose["image"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in gateway["env"]}
    assert set(env) == set(compose["environment"])
    literal = {k: v for k, v in compose["environment"].items() if "${" not in v}
    assert {k: env[k] for k in literal} == literal
    # compose's ${TEXTCLF_API_KEYS:-} (empty: no auth) is an optional Secret here
    assert compose["environment"]["TEXTCLF_API_KEYS"] == "${TEXTCLF_API_KEYS:-}"
    assert env["TEXTCLF_API_KEYS"]["secretKeyRef"]["optional"] is True
    host, port = env["TEXTCLF_TFSERVING_GRPC"].split(":")
    service_ports = {p["name"]: p["port"] for p in STACK["Service", host]["spec"]["ports"]}
    assert service_ports["grpc"] == int(port)
    # probes on routes the gateway has; /healthz is what compose's healthcheck calls
    rules = {r.rule for r in create_app(GatewayConfig(tfserving_grpc="127.0.0.1:1")).url_map.iter_rules()}
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz" in rules
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz" in rules
    assert "/healthz" in compose["healthcheck"]["test"][-1]
    assert [str(p["containerPort"]) for p in gateway["ports"]] == compose["expose"]  # nginx is what compose publishes
    # compose's read_only root and tmpfs /tmp
    assert compose["read_only"] is True and gateway["securityContext"]["readOnlyRootFilesystem"] is True
    assert compose["tmpfs"] == ["/tmp"] and "/tmp" in {m["mountPath"] for m in gateway["volumeMounts"]}
    # and the payload log's folder, a volume in both (the image makes it, owned by its user)
    compose_mounts = {v.split(":")[1] for v in compose["volumes"]}
    assert (
        {m["mountPath"] for m in gateway["volumeMounts"]} == {"/tmp"} | compose_mounts == {"/tmp", "/var/log/textclf"}
    )


def test_runs_as_the_users_the_images_create():
    def uid(dockerfile: str) -> int:
        return int(re.search(r"useradd [^\n]*--uid (\d+)", (ROOT / dockerfile).read_text()).group(1))

    users = {name: spec["securityContext"]["runAsUser"] for name, spec in pod_specs().items()}
    assert users.pop("Deployment/gateway") == uid("serving/Dockerfile")
    assert users.pop("Deployment/tfserving") == 65534  # the stock image has no user of its own: nobody
    assert set(users.values()) == {uid("deploy/train.Dockerfile")}


def test_pods_meet_the_restricted_pod_security_standard_and_have_resources():
    assert STACK["Namespace", "textclf"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    problems = []
    for name, spec in pod_specs().items():
        pod = spec["securityContext"]
        if pod.get("runAsNonRoot") is not True or pod.get("seccompProfile") != {"type": "RuntimeDefault"}:
            problems.append(f"{name}: pod securityContext")
        if not all(set(v) & {"configMap", "emptyDir", "persistentVolumeClaim", "secret"} for v in spec["volumes"]):
            problems.append(f"{name}: a volume type the restricted profile forbids")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False or sc.get("capabilities") != {"drop": ["ALL"]}:
                problems.append(f"{name}/{c['name']}: privileges")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}/{c['name']}: writable root file system")
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                if set(resources.get(part, {})) != {"cpu", "memory"}:
                    problems.append(f"{name}/{c['name']}: {part} of cpu and memory")
    assert problems == []


def selects(selector: dict[str, str], workload: Doc) -> bool:
    """Whether a label selector picks the pods of a Deployment."""
    return selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()


def test_objects_refer_to_each_other_correctly():
    deployments = {n: d for (k, n), d in STACK.items() if k == "Deployment"}
    assert all(selects(d["spec"]["selector"]["matchLabels"], d) for d in deployments.values())
    for (kind, name), doc in STACK.items():
        if kind == "Service":  # selects one Deployment, on ports its container names
            (target,) = [d for d in deployments.values() if selects(doc["spec"]["selector"], d)]
            ports = {p["name"] for c in target["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
            assert {p["targetPort"] for p in doc["spec"]["ports"]} <= ports, name
        if kind == "PodDisruptionBudget":
            assert selects(doc["spec"]["selector"]["matchLabels"], deployments[name])
    hpa = STACK["HorizontalPodAutoscaler", "gateway"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert "replicas" not in deployments["gateway"]["spec"]  # the autoscaler owns it
    assert hpa["minReplicas"] >= 2 and hpa["metrics"][0]["resource"]["name"] == "cpu"
    policy = STACK["NetworkPolicy", "tfserving-from-gateway"]["spec"]
    assert selects(policy["podSelector"]["matchLabels"], deployments["tfserving"])
    (source,) = policy["ingress"][0]["from"]
    assert selects(source["podSelector"]["matchLabels"], deployments["gateway"])
    # every claim a pod mounts is declared, with a shared access mode; everything lives in the one namespace
    claims = {n: d for (k, n), d in STACK.items() if k == "PersistentVolumeClaim"}
    volumes = [v for spec in pod_specs().values() for v in spec["volumes"]]
    assert {v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v} == set(claims)
    assert all(c["spec"]["accessModes"] == ["ReadWriteMany"] for c in claims.values())
    namespaced = [d for d in [*STACK.values(), *JOBS.values()] if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"textclf"}
