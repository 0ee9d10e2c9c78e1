"""The deployment files, validated offline with the tools a platform engineer would use
(check-jsonschema's compose spec, promtool, hadolint), and held to what the code does: the
commands the images run parse, every dependency is pinned, the dashboard file is what its
generator writes. The running services themselves are checked in tests/jobs/test_workers.py
(the dashboard's metric names against live /metrics)."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ganserve.jobs.queue import QUEUES
from ganserve.jobs.running import RUNNING_LIST
from tests.deploy.files import REPO

BIN = Path(sys.executable).parent
TARGETS = ("api", "worker", "api-gpu", "worker-gpu")


def tool(name: str) -> str:
    """A validator on PATH (or in the venv); missing in CI is a failure, elsewhere a skip."""
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs it")
        pytest.skip(f"{name} is not installed (apt-get install prometheus / the dev extra)")
    return found


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def script(name: str) -> Any:
    """A module of scripts/ (not a package), imported by name."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((REPO / name).read_text())


def stages() -> dict[str, str]:
    """Dockerfile stage name -> its text."""
    text = (REPO / "Dockerfile").read_text()
    parts = re.split(r"^FROM ", text, flags=re.M)[1:]
    return {re.match(r"\S+ AS (\S+)", p).group(1): p for p in parts}


# ------------------------------------------------------------------ docker compose
@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.gpu.yml"])
def test_compose_files_match_the_compose_spec(name):
    r = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", name)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_runs_the_whole_product():
    services = compose()["services"]
    assert {"api", "worker", "redis", "postgres", "prometheus", "grafana", "flower",
            "seed"} <= set(services)
    assert services["worker"]["command"][0] == "worker"           # a real Celery worker
    assert services["seed"]["command"][0] == "seed-store"
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["redis"]["condition"] == deps["postgres"]["condition"] == "service_healthy"
        assert deps["seed"]["condition"] == "service_completed_successfully"
        env = services[name]["environment"]
        assert env["GANSERVE_BROKER_URL"] == "redis://redis:6379/0"
        assert env["GANSERVE_DATABASE_URL"] == "postgresql+psycopg://ganserve@postgres:5432/ganserve"


def test_compose_names_each_secret_once():
    """Passwords come from one variable each, never spelled inside a URL; the services get
    them alone (GANSERVE_*_PASSWORD) and build their URLs."""
    text = (REPO / "docker-compose.yml").read_text()
    for var in ("REDIS_PASSWORD", "POSTGRES_PASSWORD"):
        assert len(re.findall(r"\$\{" + var, text)) == 1, var
    assert not re.search(r"://[^\s\"]*:\$\{", text), "a password inside a URL"
    env = compose()["services"]["api"]["environment"]
    assert env["GANSERVE_BROKER_PASSWORD"] == "${REDIS_PASSWORD:-ganserve-redis}"
    assert env["GANSERVE_DATABASE_PASSWORD"] == "${POSTGRES_PASSWORD:-ganserve-pg}"


def test_compose_alerts_reach_a_receiver():
    services = compose()["services"]
    assert "alertmanager" in services["prometheus"]["depends_on"]
    assert services["alert-log"]["command"][0] == "alert-log"
    am = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    receiver = next(r for r in am["receivers"] if r["name"] == am["route"]["receiver"])
    assert receiver["webhook_configs"][0]["url"].startswith("http://alert-log:9095/")
    prom = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "alertmanager:9093"]


def test_compose_health_checks_have_no_spaced_arguments():
    """docker-compose 1.29 over Podman's API splits a CMD list's arguments on spaces."""
    for name, s in compose()["services"].items():
        test = s.get("healthcheck", {}).get("test", [])
        if test and test[0] == "CMD":
            assert all(" " not in word for word in test), name


def test_compose_redis_and_postgres_are_private_with_health_and_volumes():
    services = compose()["services"]
    for name in ("redis", "postgres"):
        s = services[name]
        assert "ports" not in s, f"{name} must not be published on the host"
        assert s["healthcheck"]["test"] and s["volumes"]
    assert "--requirepass" in services["redis"]["command"][-1]
    assert "--appendonly" in services["redis"]["command"][-1]
    assert services["api"]["stop_grace_period"] == "50s"      # > the 30 s drain + 10 s
    for name in ("flower", "prometheus", "api", "grafana", "alertmanager", "alert-log"):
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"])
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]


def test_compose_read_only_mounts_where_only_read():
    services = compose()["services"]
    for name in ("prometheus", "grafana", "alertmanager"):
        config = [v for v in services[name]["volumes"] if v.startswith("./deploy")]
        assert config and all(v.endswith(":ro") for v in config), name


def test_compose_gpu_override_reserves_devices():
    services = compose("docker-compose.gpu.yml")["services"]
    for name in ("api", "worker"):
        device = services[name]["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
        assert services[name]["build"]["target"] == f"{name}-gpu"


# ------------------------------------------------------------------ Prometheus
def test_prometheus_config_and_rules_pass_promtool():
    promtool = tool("promtool")
    r = run(promtool, "check", "config", "deploy/prometheus/prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(promtool, "check", "rules", "deploy/prometheus/alerts.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_alert_rules_fire_and_stay_quiet_as_their_unit_tests_say():
    r = run(tool("promtool"), "test", "rules", "deploy/prometheus/alerts_test.yml")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    tested = set(re.findall(r"alertname: (\w+)", (REPO / "deploy/prometheus/alerts_test.yml")
                            .read_text()))
    rules = {r["alert"] for g in yaml.safe_load((REPO / "deploy/prometheus/alerts.yml")
                                                .read_text())["groups"] for r in g["rules"]}
    assert rules == tested, f"rules without a unit test: {rules - tested}"


def test_alertmanager_config_passes_amtool():
    r = run(tool("amtool"), "check-config", "deploy/alertmanager/alertmanager.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_prometheus_scrapes_the_compose_services_on_their_ports():
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {j["job_name"]: j["dns_sd_configs"][0] for j in config["scrape_configs"]
               if "dns_sd_configs" in j}
    services = compose()["services"]
    assert targets["ganserve-api"]["names"] == ["api"] and targets["ganserve-api"]["port"] == 8000
    assert targets["ganserve-worker"]["names"] == ["worker"]
    assert targets["ganserve-worker"]["port"] == 9101 and "api" in services
    alerts = {r["alert"] for g in yaml.safe_load((REPO / "deploy/prometheus/alerts.yml")
                                                 .read_text())["groups"] for r in g["rules"]}
    assert {"GanserveApiDown", "GanserveWorkerDown", "GanserveNoWorker",
            "GanserveJobQueueGrowing", "GanserveJobFailures", "GanserveHighErrorRate",
            "GanserveSlowP99"} <= alerts


# ------------------------------------------------------------------ Grafana
def test_dashboard_file_is_what_its_generator_writes(tmp_path):
    dashboard = script("dashboard")
    committed = json.loads((REPO / "deploy/grafana/dashboards/ganserve.json").read_text())
    assert committed == dashboard.dashboard(), "run python scripts/dashboard.py"


def test_grafana_provisioning_points_at_the_dashboards_and_prometheus():
    ds = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml")
                        .read_text())["datasources"][0]
    assert ds["uid"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/ganserve.yml")
                              .read_text())["providers"][0]
    mounts = compose()["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts


def test_gpu_metric_names_are_the_ones_the_collector_defines():
    from ganserve import process_metrics as pm
    assert {pm.GPU_MEMORY._name, pm.GPU_UTIL._name} == set(pm.GPU_METRICS)


# ------------------------------------------------------------------ the Dockerfile
def test_dockerfile_passes_hadolint():
    r = run(tool("hadolint"), "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr
    ignored = re.findall(r"hadolint ignore=(\S+)", (REPO / "Dockerfile").read_text())
    assert set(ignored) == {"DL3008"}          # each explained beside it (apt versions)


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_targets_are_non_root_labelled_and_checked(target):
    text = stages()[target]
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r'^HEALTHCHECK --interval=\S+ --timeout=\S+ --start-period=\S+ '
                     r'--retries=\d+ \\\n\s+CMD \["', text, re.M)
    for label in ("version", "revision", "source", "title"):
        assert f"org.opencontainers.image.{label}=" in text
    # dependencies before the source: the install layer is reused across code changes
    assert text.index("requirements/constraints.txt") < text.index("COPY --from=source")


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_installs_exactly_one_onnx_runtime(target):
    extras = re.search(r"deps\.py ([a-z ]+) >", stages()[target]).group(1).split()
    assert ("gpu" in extras) == target.endswith("-gpu")
    assert ("cpu" in extras) != ("gpu" in extras)
    assert ("train" in extras) == target.startswith("worker")


def test_api_image_store_has_no_training_weights():
    store = stages()["api-store"]
    assert "-name '*.safetensors' -delete" in store
    for target in ("api", "api-gpu"):
        assert "COPY --from=api-store" in stages()[target]
        assert "COPY --chown=ganserve:ganserve models" not in stages()[target]


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_commands_parse(target):
    """The command each image runs is one the CLI takes (serve and worker run in the tests;
    seed-store too)."""
    from ganserve.cli.main import build_parser
    cmd = json.loads(re.search(r'^CMD (\[.*\])$', stages()[target], re.M).group(1))
    args = build_parser().parse_args(cmd)
    assert args.command in ("serve", "worker")


def test_dockerignore_keeps_the_context_small():
    lines = (REPO / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*"                  # everything out, then allowed back
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert ".git" not in allowed and "data" not in allowed and "runs" not in allowed
    copied = set(re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", (REPO / "Dockerfile")
                            .read_text(), re.M))
    for group in copied:
        for src in shlex.split(group):
            assert src.rstrip("/") in allowed, f"{src} is copied but excluded from the context"


# ------------------------------------------------------------------ pins
def test_every_image_dependency_is_pinned():
    deps = script("deps")
    pins = {}
    for line in (REPO / "requirements/constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name.lower())] = version
    for extras in (["cpu"], ["gpu"], ["cpu", "train"], ["gpu", "train"]):
        for req in deps.requirements(REPO / "pyproject.toml", extras):
            name = re.split(r"[<>=\[ ;]", req, maxsplit=1)[0]
            assert re.sub(r"[-_.]+", "-", name.lower()) in pins, f"{req} is not pinned"


# ------------------------------------------------------------------ Kubernetes
OVERLAYS = ("cpu", "gpu", "keda")
CRDS = {"ServiceMonitor", "ScaledObject", "TriggerAuthentication"}


def built(overlay: str) -> list[dict]:
    r = run(tool("kubectl"), "kustomize", f"k8s/overlays/{overlay}")
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_overlay_builds_and_validates_strictly(overlay, tmp_path):
    docs = built(overlay)
    plain = [d for d in docs if d["kind"] not in CRDS]
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(yaml.safe_dump_all(plain))
    r = run(tool("kubernetes-validate"), "--strict", "--quiet", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    for d in docs:                                   # everything lands in the namespace
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "ganserve", d["metadata"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_every_container_is_locked_down_with_resources(overlay):
    for w in workloads(built(overlay)):
        pod = w["spec"]["template"]["spec"]
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["seccompProfile"]["type"] == "RuntimeDefault"
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"], c["name"]
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), image


def test_k8s_api_probes_drain_and_scaling():
    docs = built("cpu")
    api = of_kind(docs, "Deployment")["ganserve-api"]["spec"]["template"]["spec"]
    c = api["containers"][0]
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = int(of_kind(docs, "ConfigMap")["ganserve-settings"]["data"]
                ["GANSERVE_DRAIN_TIMEOUT_S"])
    # the supervisor gives stuck workers 10 s after the drain before killing them
    assert api["terminationGracePeriodSeconds"] > pre_stop + drain + 10
    assert "replicas" not in of_kind(docs, "Deployment")["ganserve-api"]["spec"]  # the HPA's
    hpa = of_kind(docs, "HorizontalPodAutoscaler")["ganserve-api"]["spec"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert of_kind(docs, "PodDisruptionBudget")["ganserve-api"]["spec"]["minAvailable"] == 1
    assert of_kind(docs, "PersistentVolumeClaim")["ganserve-store"]["spec"]["accessModes"] == \
        ["ReadWriteMany"]


def test_k8s_settings_are_real_settings():
    from ganserve.service.settings import Settings
    from ganserve.worker.settings import WorkerSettings
    data = of_kind(built("cpu"), "ConfigMap")["ganserve-settings"]["data"]
    known = {f"GANSERVE_{name.upper()}"
             for name in Settings.model_fields | WorkerSettings.model_fields}
    unknown = [k for k in data if k.startswith("GANSERVE_") and k not in known]
    assert not unknown, f"ConfigMap keys no setting reads: {unknown}"


def test_k8s_commands_parse_and_seed_the_store_the_services_read():
    from ganserve.cli.main import build_parser
    docs = built("cpu")
    store = of_kind(docs, "ConfigMap")["ganserve-settings"]["data"]["GANSERVE_MODELS_DIR"]
    for w in workloads(docs):
        for c in w["spec"]["template"]["spec"]["containers"]:
            if "ganserve" in c["image"]:
                args = build_parser().parse_args(c["args"])
                if args.command == "seed-store":
                    assert args.to == store


def test_kserve_runtime_serves_the_protocol_the_inference_service_asks_for():
    """k8s/kserve: the ServingRuntime runs `ganserve serve` on the port KServe routes to,
    speaks v2 over HTTP and gRPC, and is the runtime (and model format) the InferenceService
    names. (The kinds are KServe's CRDs: kubernetes-validate knows no schema for them.)"""
    from ganserve.cli.main import build_parser
    from ganserve.service.settings import Settings

    r = run(tool("kubectl"), "kustomize", "k8s/kserve")
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    runtime = of_kind(docs, "ServingRuntime")["ganserve"]
    isvc = next(iter(of_kind(docs, "InferenceService").values()))
    assert all(d["metadata"]["namespace"] == "ganserve" for d in docs)
    spec = runtime["spec"]
    assert {"v2", "grpc-v2"} <= set(spec["protocolVersions"])
    (c,) = spec["containers"]
    args = build_parser().parse_args(c["args"])
    assert args.command == "serve" and args.models_dir == "/mnt/models"   # KServe's mount
    assert [p["containerPort"] for p in c["ports"]] == [args.port] and args.grpc_port
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": args.port}
    assert {e["name"] for e in c["env"]} <= {f"GANSERVE_{n.upper()}" for n in Settings.model_fields}
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == "ganserve" and model["protocolVersion"] == "v2"
    assert model["modelFormat"]["name"] in {f["name"] for f in spec["supportedModelFormats"]}


def test_k8s_gpu_overlay_asks_for_gpus_and_the_cuda_images():
    for name, d in of_kind(built("gpu"), "Deployment").items():
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1, name
        assert "-gpu:" in c["image"], name


def test_k8s_network_policies_keep_redis_and_postgres_private():
    policies = of_kind(built("cpu"), "NetworkPolicy")
    assert policies["ganserve-default-deny-ingress"]["spec"]["podSelector"] == {}
    for name in ("ganserve-redis-from-ganserve", "ganserve-postgres-from-ganserve"):
        (rule,) = policies[name]["spec"]["ingress"]
        (peer,) = rule["from"]
        (expr,) = peer["podSelector"]["matchExpressions"]
        assert set(expr["values"]) == {"ganserve-api", "ganserve-worker"}


def test_k8s_monitors_and_scaler_point_at_what_exists():
    docs = built("keda")
    services = of_kind(docs, "Service")
    for monitor in of_kind(docs, "ServiceMonitor").values():
        labels = monitor["spec"]["selector"]["matchLabels"]
        port = monitor["spec"]["endpoints"][0]["port"]
        assert any(labels.items() <= s["metadata"]["labels"].items()
                   and port in {p["name"] for p in s["spec"]["ports"]}
                   for s in services.values()), monitor["metadata"]["name"]
    for monitor in of_kind(docs, "ServiceMonitor").values():     # the rules' job names
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"


def test_keda_scales_workers_on_the_job_lists_in_redis():
    """KEDA's Redis list scaler reads the queues Celery keeps (lists named after them) and
    the workers' running-jobs list from the Redis the pods use, with the password from the
    one Secret, and sums them: one worker per job, waiting or running; no Prometheus."""
    docs = built("keda")
    scaled = of_kind(docs, "ScaledObject")["ganserve-worker"]["spec"]
    assert scaled["scaleTargetRef"]["name"] in of_kind(docs, "Deployment")
    assert {t["type"] for t in scaled["triggers"]} == {"redis"}
    lists = {t["name"]: t["metadata"]["listName"] for t in scaled["triggers"]}
    assert set(lists.values()) == {*QUEUES, RUNNING_LIST}
    modifiers = scaled["advanced"]["scalingModifiers"]
    assert sorted(modifiers["formula"].replace(" ", "").split("+")) == sorted(lists)
    assert (modifiers["target"], modifiers["activationTarget"]) == ("1", "0")
    settings = of_kind(docs, "ConfigMap")["ganserve-settings"]["data"]
    broker = urlsplit(settings["GANSERVE_BROKER_URL"])
    redis_service = of_kind(docs, "Service")[broker.hostname]
    for t in scaled["triggers"]:
        host, _, port = t["metadata"]["address"].partition(":")
        assert host.split(".")[0] == broker.hostname and int(port) == broker.port
        assert host.split(".")[1] == redis_service["metadata"]["namespace"]
        assert t["metadata"]["databaseIndex"] == broker.path.strip("/")
        auth = of_kind(docs, "TriggerAuthentication")[t["authenticationRef"]["name"]]
        (ref,) = auth["spec"]["secretTargetRef"]
        assert (ref["parameter"], ref["name"], ref["key"]) == (
            "password", "ganserve-secrets", "REDIS_PASSWORD")
    policy = of_kind(docs, "NetworkPolicy")["ganserve-redis-from-keda"]["spec"]
    assert policy["ingress"][0]["ports"] == [{"port": 6379, "protocol": "TCP"}]


def test_k8s_secret_holds_each_password_once_and_no_url():
    docs = built("cpu")
    secret = of_kind(docs, "Secret")["ganserve-secrets"]["stringData"]
    assert not any("://" in v for v in secret.values())
    settings = of_kind(docs, "ConfigMap")["ganserve-settings"]["data"]
    for key in ("GANSERVE_BROKER_URL", "GANSERVE_DATABASE_URL"):
        assert urlsplit(settings[key]).password is None, key
    for name in ("ganserve-api", "ganserve-worker"):
        pod = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["GANSERVE_BROKER_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == \
            "REDIS_PASSWORD"
        assert env["GANSERVE_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == \
            "POSTGRES_PASSWORD"


def test_k8s_egress_is_denied_but_for_dns_the_stores_and_public_webhooks():
    policies = of_kind(built("cpu"), "NetworkPolicy")
    deny = policies["ganserve-default-deny-egress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Egress"] and "egress" not in deny
    dns = policies["ganserve-dns-egress"]["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}
    egress = policies["ganserve-api-worker-egress"]["spec"]["egress"]
    ports = [{p["port"] for p in rule["ports"]} for rule in egress]
    assert ports == [{6379}, {5432}, {443, 80}]
    public = egress[2]["to"][0]["ipBlock"]
    assert public["cidr"] == "0.0.0.0/0" and "169.254.0.0/16" in public["except"]


def test_prometheus_rule_is_compose_rules_as_written_by_its_generator():
    committed = yaml.safe_load((REPO / "k8s/components/monitoring/prometheusrule.yaml")
                               .read_text())
    assert committed == yaml.safe_load(script("prometheus_rule").render())
    compose_rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    assert committed["spec"]["groups"] == compose_rules["groups"]
    assert "PrometheusRule" in of_kind(built("cpu"), "PrometheusRule")["ganserve"]["kind"]


def test_gpu_overlay_gives_a_gpu_only_to_the_pods_that_use_one():
    docs = built("gpu")
    for kind in ("Deployment", "StatefulSet", "Job"):
        for name, doc in of_kind(docs, kind).items():
            wants = any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {})
                        for c in doc["spec"]["template"]["spec"]["containers"])
            assert wants == (name in ("ganserve-api", "ganserve-worker")), name
    worker = of_kind(docs, "Deployment")["ganserve-worker"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in worker["containers"][0]["env"]}
    assert env["GANSERVE_TRAIN_DEVICE"] == "cuda"


def test_compose_check_debootstraps_from_apts_bookworm_mirror(tmp_path):
    """Another vendor's repository (listed first), a disabled file and security updates are
    not the Debian mirror; one-line and deb822 sources both count."""
    mirror = script("compose_check").debian_mirror
    listed = tmp_path / "sources.list.d"
    listed.mkdir()
    (listed / "a-nodesource.sources").write_text(
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n")
    (listed / "b.sources.disabled").write_text("Types: deb\nURIs: http://wrong\nSuites: bookworm\n")
    (listed / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n")
    assert mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "deb [signed-by=/k.gpg] http://one.example/debian bookworm main\n")
    assert mirror(tmp_path) == "http://one.example/debian"
    assert mirror(tmp_path / "none") == "http://deb.debian.org/debian"
