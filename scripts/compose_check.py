#!/usr/bin/env python3
"""`make compose-check`: build the images and start docker-compose.yml for real, on empty
volumes, then check what an operator would check and print a table of what was seen.

Engine: Podman behind its Docker-compatible API, driven by Debian's docker-compose (these
machines have no Docker engine and reach no image registry; why each setting:
../shared/reference/containers.md and deploy/local/). Base images come from Debian's
packages (debootstrap), tagged localhost/ganserve-local/*; the project's own images are the
Dockerfile's targets built on that base. docker-compose.yml runs as written, plus
deploy/local/docker-compose.local.yml, which only swaps registry images for local ones.

Checks, in order: the stack starts on empty volumes; the seed step fills the models volume
with the shipped weights; the API is ready and samples a shipped model; a short fine-tune
submitted to the API runs on the worker over Redis and is recorded in PostgreSQL, and the
API then serves the new version; Prometheus has its targets up and the rules loaded; with
the worker stopped and a job waiting, GanserveNoWorker fires and Alertmanager delivers it to
alert-log; `down` + `up` keeps jobs and versions; `down -v` leaves nothing behind.

Standard library only: it runs before (and without) the project's venv. --keep leaves the
stack running for a look (then: docker-compose -p ganserve-check ... down -v).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCAL = REPO / "deploy" / "local"
PROJECT = "ganserve-check"
LOCAL_PREFIX = "localhost/ganserve-local"
LOCAL_TARGETS = ("python", "redis", "postgres", "prometheus", "alertmanager", "flower")
VERSION = "0.1.0"
API = "http://127.0.0.1:8000"
PROMETHEUS = "http://127.0.0.1:9090"
ALERT_LOG = "http://127.0.0.1:9095"
PORTS = (8000, 9090, 9093, 9095, 5555)
PACKAGES = {"podman": "podman", "runc": "runc", "docker-compose": "docker-compose",
            "debootstrap": "debootstrap"}
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CheckFailed(Exception):
    """A check saw something wrong: its row says what."""


class Hopeless(CheckFailed):
    """What a check waits for can no longer happen (a job failed): stop waiting."""


# ---------------------------------------------------------------- running things
def sh(*cmd: str, check: bool = True, quiet: bool = True, env: dict[str, str] | None = None,
       timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    try:
        r = subprocess.run(cmd, capture_output=quiet, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{' '.join(cmd[:4])}... still running after {timeout:.0f} s") from None
    if check and r.returncode != 0:
        tail = ((r.stdout or "") + (r.stderr or ""))[-3000:]
        raise CheckFailed(f"{' '.join(cmd[:4])}... exited {r.returncode}:\n{tail}")
    return r


@dataclass
class Engine:
    """Podman with this project's settings, and its Docker API socket for docker-compose."""
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    service: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.env = {**os.environ, "CONTAINERS_CONF": str(LOCAL / "containers.conf")}
        sock = self.workdir / "podman.sock"
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{sock}"], env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env["DOCKER_HOST"] = f"unix://{sock}"
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline or self.service.poll() is not None:
                self.stop()
                raise CheckFailed("podman system service did not open its socket")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.service.kill()

    def podman(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return sh("podman", *args, env=self.env, **kw)

    def compose(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        files = ["-f", str(REPO / "docker-compose.yml"),
                 "-f", str(LOCAL / "docker-compose.local.yml")]
        return sh("docker-compose", "--ansi", "never", "-p", PROJECT, *files, *args,
                  env=self.env, **kw)

    def has_image(self, name: str) -> bool:
        return self.podman("image", "exists", name, check=False).returncode == 0


class HealthPump:
    """Podman runs health checks from systemd timers, and there is no systemd here: run
    each of the project's containers' checks every 2 s, as Docker's engine would."""

    def __init__(self, engine: Engine):
        self.engine, self.stopped = engine, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="health-pump")

    def _run(self) -> None:
        while not self.stopped.wait(2.0):
            try:
                self._check_all()
            except CheckFailed as e:        # a hung check: try again next round
                print(f"compose-check: health pump: {e}", file=sys.stderr, flush=True)

    def _check_all(self) -> None:
        r = self.engine.podman("ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
                               "--format", "{{.Names}} {{.Status}}", check=False, timeout=30)
        for line in r.stdout.splitlines():
            name, _, status = line.partition(" ")
            if "(" in status:         # "Up 5 seconds (starting)" / "(healthy)"...
                self.engine.podman("healthcheck", "run", name, check=False, timeout=30)

    def __enter__(self) -> HealthPump:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=40)


# ---------------------------------------------------------------- HTTP
def http(method: str, url: str, body: dict[str, Any] | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"content-type": "application/json"} if data else {})
    try:
        with NO_PROXY.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError) as e:
        return 0, str(e).encode()


def get_json(url: str) -> Any:
    status, body = http("GET", url)
    if status != 200:
        raise CheckFailed(f"GET {url}: {status} {body[:300]!r}")
    return json.loads(body)


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float, every_s: float = 2.0) -> Any:
    """Call ``probe`` until it returns something truthy; CheckFailed naming ``what`` (and
    the last thing the probe said) after ``timeout_s``."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        try:
            got = probe()
            if got:
                return got
        except Hopeless:
            raise
        except CheckFailed as e:
            last = e
        time.sleep(every_s)
    raise CheckFailed(f"{what}: not within {timeout_s:.0f} s" + (f" ({last})" if last else ""))


# ---------------------------------------------------------------- images
def ensure_packages() -> None:
    missing = [pkg for cmd, pkg in PACKAGES.items() if shutil.which(cmd) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise CheckFailed(f"needs {' '.join(missing)}: sudo apt-get install -y "
                          f"{' '.join(missing)}")
    print(f"compose-check: installing {' '.join(missing)} (apt)", flush=True)
    sh("apt-get", "update", "-q")
    sh("apt-get", "install", "-y", "-q", *missing,
       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def debian_mirror(apt: Path = Path("/etc/apt")) -> str:
    """The mirror apt uses here for bookworm (debootstrap fetches from it; so do builds):
    one-line sources (``deb [options] URI bookworm ...``) or deb822 stanzas (``URIs:`` with
    ``Suites: bookworm``); other repositories (a vendor's, security) are skipped."""
    listed = apt / "sources.list.d"
    sources = [apt / "sources.list", *sorted([*listed.glob("*.list"), *listed.glob("*.sources")])]
    for path in sources:
        text = path.read_text(errors="replace") if path.is_file() else ""
        for line in text.splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == "bookworm":
                return m.group(1)
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.M))
            if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    return "http://deb.debian.org/debian"


def build_debian_base(engine: Engine) -> None:
    name = f"{LOCAL_PREFIX}/debian:bookworm"
    if engine.has_image(name):
        return
    with tempfile.TemporaryDirectory(prefix="ganserve-rootfs-", dir="/var/tmp") as root:
        sh("debootstrap", "--variant=minbase", "bookworm", root, debian_mirror())
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        r = subprocess.run(["podman", "import", "-", name], stdin=tar.stdout, env=engine.env,
                           capture_output=True, text=True)
        tar.wait()
        if r.returncode != 0 or tar.returncode != 0:
            raise CheckFailed(f"podman import of the debootstrap'd root failed: {r.stderr}")


def build_local_images(engine: Engine) -> None:
    """The stand-ins for registry images (deploy/local/Containerfile); the machine's local
    CAs go into the Python base so pip trusts what the host trusts."""
    cas = Path("/usr/local/share/ca-certificates")
    with tempfile.TemporaryDirectory(prefix="ganserve-ca-") as empty:
        ca_dir = cas if cas.is_dir() else Path(empty)
        for target in LOCAL_TARGETS:
            engine.podman("build", "--format", "docker", "--target", target,
                          "-v", f"{ca_dir}:/host-ca:ro", "-t", f"{LOCAL_PREFIX}/{target}:bookworm",
                          "-f", str(LOCAL / "Containerfile"), str(LOCAL))


def torch_wheels() -> Path | None:
    """A local folder holding torch's CPU wheel (pip's find-links here), or None: then the
    worker image takes torch from download.pytorch.org, as everywhere else."""
    folder = Path(os.environ.get("GANSERVE_TORCH_WHEELS", "/opt/wheels"))
    return folder if any(folder.glob("torch-*+cpu-*.whl")) else None


def build_project_images(engine: Engine) -> None:
    base = ["--format", "docker", "--build-arg", f"PYTHON_IMAGE={LOCAL_PREFIX}/python:bookworm",
            "--build-arg", f"VCS_REF={git_ref()}"]
    engine.podman("build", *base, "--target", "api", "-t", f"ganserve-api:{VERSION}",
                  str(REPO))
    wheels = torch_wheels()
    torch = (["-v", f"{wheels}:/wheels:ro", "--build-arg", "TORCH_PIP_ARGS=--find-links /wheels"]
             if wheels else [])
    engine.podman("build", *base, *torch, "--target", "worker",
                  "-t", f"ganserve-worker:{VERSION}", str(REPO))


def git_ref() -> str:
    r = sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD", check=False)
    return r.stdout.strip() or "unknown"


# ---------------------------------------------------------------- the checks
@dataclass
class Row:
    check: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Run:
    engine: Engine
    rows: list[Row] = field(default_factory=list)
    job: dict[str, Any] = field(default_factory=dict)

    def step(self, check: str, fn: Callable[[], str]) -> None:
        t0 = time.monotonic()
        try:
            detail, ok = fn(), True
        except CheckFailed as e:
            detail, ok = str(e), False
        except Exception as e:          # an answer of an unexpected shape: a failed check too
            detail, ok = f"{type(e).__name__}: {e}", False
        self.rows.append(Row(check, ok, time.monotonic() - t0, detail))
        print(f"compose-check: {'ok  ' if ok else 'FAIL'} {check} ({time.monotonic() - t0:.0f}"
              f" s): {detail.splitlines()[0] if detail else ''}", flush=True)
        if not ok:
            print(f"compose-check: {check}: {detail}", file=sys.stderr, flush=True)
            raise CheckFailed(check)

    # -- each returns the row's detail
    def mount_points_empty(self) -> str:
        """A named volume is filled from the image of the first container created with it
        mounted: with every image's mount points empty, creation order cannot matter."""
        for image in (f"ganserve-api:{VERSION}", f"ganserve-worker:{VERSION}"):
            listing = self.engine.podman("run", "--rm", "--entrypoint", "ls", image, "-A",
                                         "/app/models", "/app/data").stdout
            files = [ln for ln in listing.splitlines() if ln and not ln.endswith(":")]
            if files:
                raise CheckFailed(f"{image} has files at a volume mount point: {files[:5]}")
        return "/app/models and /app/data are empty in both images"

    def up_on_empty_volumes(self) -> str:
        left = self.engine.podman("volume", "ls", "-q", "--filter",
                                  f"label=com.docker.compose.project={PROJECT}").stdout.split()
        if left:
            raise CheckFailed(f"volumes of an earlier run remain: {' '.join(left)}")
        self.engine.compose("up", "-d", "--no-build", timeout=900)
        return f"{len(self.containers())} containers; volumes created empty"

    def containers(self) -> list[str]:
        return self.engine.podman("ps", "--filter", f"label=com.docker.compose.project="
                                  f"{PROJECT}", "--format", "{{.Names}}").stdout.split()

    def seeded(self) -> str:
        logs = self.engine.compose("logs", "--no-color", "seed").stdout
        line = next((ln for ln in logs.splitlines() if "seeded" in ln), "")
        if "fashion-dcgan/1" not in line:
            raise CheckFailed(f"seed did not copy the shipped models: {logs[-500:]}")
        weights = self.engine.compose(
            "exec", "-T", "api", "sh", "-c",
            "ls /app/models/fashion-dcgan/1/ | grep -c safetensors").stdout.strip()
        if weights in ("", "0"):
            raise CheckFailed("the models volume holds no training weights")
        return line.split("|", 1)[-1].strip() + "; weights present"

    def all_running(self) -> str:
        """Every service's container up and none restarting (a crash loop shows as restarts),
        and Flower answering behind its password."""
        expected = {"redis", "postgres", "api", "worker", "flower", "prometheus",
                    "alertmanager", "alert-log"}
        time.sleep(10)                      # a crash loop needs a moment to show
        states = {}
        for name in self.containers():
            info = json.loads(self.engine.podman("inspect", name).stdout)[0]
            service = info["Config"]["Labels"]["com.docker.compose.service"]
            states[service] = (info["State"]["Status"], info.get("RestartCount", 0))
        bad = {s: st for s, st in states.items() if st != ("running", 0)}
        missing = expected - states.keys()
        if bad or missing:
            raise CheckFailed(f"not running or restarting: {bad}; missing: {sorted(missing)}")
        password = os.environ.get("FLOWER_PASSWORD", "ganserve")
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        req = urllib.request.Request("http://127.0.0.1:5555/healthcheck",
                                     headers={"Authorization": f"Basic {token}"})
        with NO_PROXY.open(req, timeout=10) as r:
            flower = r.read().decode().strip()
        if flower != "OK":
            raise CheckFailed(f"Flower's /healthcheck said {flower!r}")
        return f"{len(states)} services running, none restarted; Flower: {flower}"

    def sample(self, version: str | None = None) -> str:
        body: dict[str, Any] = {"seeds": [1, 2, 3, 4]}
        if version:
            body["version"] = version
        status, png = http("POST", f"{API}/v1/models/fashion-dcgan/sample", body)
        if status != 200 or not png.startswith(b"\x89PNG"):
            raise CheckFailed(f"sample: {status} {png[:300]!r}")
        return f"fashion-dcgan{'/' + version if version else ''}: 200, {len(png)} B PNG"

    def ready(self) -> str:
        wait_for("API ready", lambda: http("GET", f"{API}/v2/health/ready")[0] == 200, 300)
        return self.sample()

    def fine_tune(self) -> str:
        status, body = http("POST", f"{API}/v1/jobs/fine-tune", {
            "model": "fashion-dcgan", "steps": 30,
            "dataset": {"name": "fashion-mnist", "classes": ["Bag"], "limit": 512}})
        if status != 202:
            raise CheckFailed(f"submit: {status} {body[:300]!r}")
        job_id = json.loads(body)["id"]

        def done() -> dict[str, Any] | None:
            job = get_json(f"{API}/v1/jobs/{job_id}")
            if job["state"] in ("failed", "cancelled"):
                raise Hopeless(f"job {job_id} {job['state']}: {job['error']}")
            return job if job["state"] == "succeeded" else None

        self.job = wait_for(f"fine-tune {job_id} to succeed", done, 600, every_s=3)
        worker_log = self.engine.compose("logs", "--no-color", "worker").stdout
        if job_id not in worker_log:
            raise CheckFailed(f"the worker's log never names job {job_id}")
        row = self.engine.compose(
            "exec", "-T", "postgres", "psql", "-U", "ganserve", "-d", "ganserve", "-tAc",
            f"select state, attempts from jobs where id = '{job_id}'").stdout.strip()
        if not row.startswith("succeeded"):
            raise CheckFailed(f"PostgreSQL has {row!r} for job {job_id}")
        r = self.job["result"]
        return (f"job {job_id}: succeeded on the worker (its log names it), PostgreSQL row "
                f"'{row}', new version {r['model']}/{r['version']}")

    def new_version_served(self) -> str:
        """Each API worker polls the store on its own (GANSERVE_POLL_INTERVAL_S): the new
        version is served once several requests in a row, spread over the workers, get it."""
        version = self.job["result"]["version"]
        wait_for(f"fashion-dcgan/{version} served by every API worker",
                 lambda: all(self.sample(version) for _ in range(8)), 120, every_s=1)
        return self.sample(version) + " (8 requests in a row)"

    def prometheus(self) -> str:
        def targets_up() -> str | None:
            active = get_json(f"{PROMETHEUS}/api/v1/targets")["data"]["activeTargets"]
            up = {t["labels"]["job"] for t in active if t["health"] == "up"}
            return ", ".join(sorted(up)) if {"ganserve-api", "ganserve-worker"} <= up else None

        up = wait_for("Prometheus targets ganserve-api and ganserve-worker up", targets_up, 120)
        groups = get_json(f"{PROMETHEUS}/api/v1/rules")["data"]["groups"]
        rules = [r["name"] for g in groups for r in g["rules"]]
        if "GanserveNoWorker" not in rules:
            raise CheckFailed(f"rules loaded: {rules}")
        ams = get_json(f"{PROMETHEUS}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        if not ams:
            raise CheckFailed("Prometheus knows no Alertmanager")
        return f"targets up: {up}; {len(rules)} alert rules loaded; {len(ams)} Alertmanager"

    def alert_delivered(self) -> str:
        """The worker stopped and a job waiting: the rule fires in Prometheus, Alertmanager
        routes it, alert-log receives it."""
        self.engine.compose("stop", "worker")
        status, body = http("POST", f"{API}/v1/jobs/evaluate",
                            {"model": "fashion-dcgan", "n": 200, "metrics": ["fid"]})
        if status != 202:
            raise CheckFailed(f"evaluate submit: {status} {body[:300]!r}")
        eval_id = json.loads(body)["id"]

        def received() -> str | None:
            for note in get_json(f"{ALERT_LOG}/alerts"):
                for a in note.get("alerts", []):
                    if (a["labels"].get("alertname") == "GanserveNoWorker"
                            and a.get("status") == "firing"):
                        return a["annotations"].get("description", "")
            return None

        # the rule's `for: 5m`, an evaluation and Alertmanager's group_wait: about 5.5 min
        description = wait_for("GanserveNoWorker at alert-log", received, 600, every_s=5)
        self.engine.compose("start", "worker")
        wait_for(f"the waiting job {eval_id} to run once the worker is back",
                 lambda: get_json(f"{API}/v1/jobs/{eval_id}")["state"] == "succeeded", 300, 3)
        return f"worker stopped + a job waiting -> alert-log got GanserveNoWorker: {description}"

    def restart_keeps_state(self) -> str:
        job_id, version = self.job["id"], self.job["result"]["version"]
        self.engine.compose("down", timeout=300)
        if self.containers():
            raise CheckFailed(f"down left containers: {self.containers()}")
        self.engine.compose("up", "-d", "--no-build", timeout=900)
        wait_for("API ready after up", lambda: http("GET", f"{API}/v2/health/ready")[0] == 200,
                 300)
        job = get_json(f"{API}/v1/jobs/{job_id}")
        if job["state"] != "succeeded":
            raise CheckFailed(f"after down/up job {job_id} is {job['state']}")
        return f"job {job_id} still succeeded; " + self.sample(version)

    def down_removes_everything(self) -> str:
        self.engine.compose("down", "-v", timeout=300)
        label = f"label=com.docker.compose.project={PROJECT}"
        left = (self.engine.podman("ps", "-aq", "--filter", label).stdout.split()
                + self.engine.podman("volume", "ls", "-q", "--filter", label).stdout.split()
                + self.engine.podman("network", "ls", "-q", "--filter", label).stdout.split())
        if left:
            raise CheckFailed(f"down -v left: {' '.join(left)}")
        return "no container, volume or network of the project is left"


def ports_free() -> None:
    import socket

    busy = []
    for port in PORTS:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                busy.append(port)
    if busy:
        raise CheckFailed(f"ports {busy} are in use on 127.0.0.1 (compose publishes "
                          f"{list(PORTS)}): stop what listens there first")


def print_table(rows: list[Row], total_s: float) -> None:
    width = max(len(r.check) for r in rows)
    print(f"\n{'check':<{width}}  result  seconds  what was seen")
    for r in rows:
        first = r.detail.splitlines()[0] if r.detail else ""
        print(f"{r.check:<{width}}  {'ok' if r.ok else 'FAIL':<6}  {r.seconds:7.0f}  {first}")
    print(f"{'total (builds included)':<{width}}  {'':6}  {total_s:7.0f}")


def logs_of_failure(engine: Engine) -> None:
    r = engine.compose("logs", "--no-color", "--tail", "40", check=False)
    print(r.stdout[-12000:], r.stderr[-2000:], sep="\n")


def clean_up(engine: Engine, run: Run, keep: bool) -> None:
    """Whatever happened (a failed check, Ctrl-C): the stack and its volumes go, unless
    --keep; the tagged images stay (the next run reuses their layers), superseded ones go."""
    done = bool(run.rows) and run.rows[-1].check.startswith("down -v") and run.rows[-1].ok
    try:
        if not keep and not done:
            engine.compose("down", "-v", check=False, timeout=300)
        engine.podman("image", "prune", "-f", check=False, timeout=300)
    except CheckFailed as e:
        print(f"compose-check: clean-up: {e}", file=sys.stderr)
    finally:
        engine.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", action="store_true", help="leave the stack running at the end")
    args = p.parse_args()
    t0 = time.monotonic()
    ensure_packages()
    ports_free()
    with tempfile.TemporaryDirectory(prefix="ganserve-podman-") as tmp:
        engine = Engine(Path(tmp))
        engine.start()
        run = Run(engine)
        try:
            with HealthPump(engine):
                run.step("base images (debootstrap + Debian packages)",
                         lambda: (build_debian_base(engine), build_local_images(engine),
                                  f"{LOCAL_PREFIX}/{{debian,{','.join(LOCAL_TARGETS)}}}")[-1])
                run.step("api + worker images (Dockerfile)",
                         lambda: (build_project_images(engine),
                                  f"ganserve-api:{VERSION}, ganserve-worker:{VERSION}")[-1])
                run.step("images' volume mount points empty", run.mount_points_empty)
                run.step("compose up on empty volumes", run.up_on_empty_volumes)
                run.step("seed filled the models volume", run.seeded)
                run.step("API ready, samples a shipped model", run.ready)
                run.step("every service up, none restarting", run.all_running)
                run.step("fine-tune: worker over Redis, PostgreSQL", run.fine_tune)
                run.step("API serves the new version", run.new_version_served)
                run.step("Prometheus: targets up, rules loaded", run.prometheus)
                run.step("alert reaches Alertmanager's receiver", run.alert_delivered)
                run.step("down + up keeps jobs and versions", run.restart_keeps_state)
                if not args.keep:
                    run.step("down -v removes everything", run.down_removes_everything)
        except CheckFailed:
            logs_of_failure(engine)
        finally:
            clean_up(engine, run, args.keep)
        print_table(run.rows, time.monotonic() - t0)
    return 0 if run.rows and all(r.ok for r in run.rows) and len(run.rows) >= 12 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckFailed as e:
        print(f"compose-check: {e}", file=sys.stderr)
        sys.exit(1)
