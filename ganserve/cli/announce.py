"""The one line that says ``ganserve serve`` can answer: printed once ``/v2/health/ready``
says 200 (not when uvicorn starts listening, which is seconds before the models are loaded),
with the models, the workers and the time it took. A start that stays unready for a minute
says why (the 503's message) instead of staying silent."""

from __future__ import annotations

import logging
import threading
import time

import httpx

log = logging.getLogger("ganserve")
POLL_S = 0.2
SLOW_S = 60.0


def base_url(host: str, port: int) -> str:
    """Where this machine reaches a server listening on ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _models(client: httpx.Client) -> str:
    try:
        r = client.get("/v1/models")
        listed = [f"{m['name']}/{m['default'] or m['latest']}" for m in r.json()["models"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return "models: see GET /v1/models"
    return f"{len(listed)} model{'s' * (len(listed) != 1)} ({', '.join(listed)})"


def ready_line(client: httpx.Client, url: str, seconds: float, workers: int,
               jobs: str) -> str:
    return (f"ganserve ready in {seconds:.1f} s at {url} (docs: {url}/docs): "
            f"{_models(client)}; {workers} API worker{'s' * (workers != 1)}; jobs: {jobs}")


def wait_and_announce(url: str, started: float, workers: int, jobs: str,
                      stop: threading.Event) -> None:
    """Poll readiness until 200 (then print the ready line) or ``stop``."""
    warned = False
    # trust_env=False: a proxy from the environment must not stand between us and loopback
    with httpx.Client(base_url=url, timeout=2.0, trust_env=False) as client:
        while not stop.wait(POLL_S):
            try:
                r = client.get("/v2/health/ready")
                why = _reason(r)
            except httpx.HTTPError as e:
                r, why = None, f"{url} does not answer ({type(e).__name__})"
            if r is not None and r.status_code == 200:
                print(ready_line(client, url, time.monotonic() - started, workers, jobs),
                      flush=True)
                return
            if not warned and time.monotonic() - started > SLOW_S:
                warned = True
                log.warning("not ready after %.0f s: %s", SLOW_S, why)


def _reason(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"])           # the protocol's shape: one string
    except (ValueError, KeyError, TypeError):
        return f"HTTP {r.status_code}"


def announce(host: str, port: int, workers: int, jobs: str) -> threading.Event:
    """Start the watcher; set the returned event to stop it (at shutdown)."""
    stop = threading.Event()
    threading.Thread(target=wait_and_announce, name="ready-line", daemon=True,
                     args=(base_url(host, port), time.monotonic(), workers, jobs,
                           stop)).start()
    return stop
