"""The Open Inference Protocol beside the REST API, one run, side by side: the same server
(ganserve serve --workers W --grpc-port), the same images, four ways in:

  rest         POST /v1/models/NAME/sample      JSON in, one PNG out
  oip-json     POST /v2/models/NAME/infer       JSON tensors both ways
  oip-binary   POST /v2/models/NAME/infer       binary tensor extension both ways
  grpc         ModelInfer                       raw_input_contents / raw_output_contents

The HTTP ways are driven by wrk (C, one thread, C connections, D seconds); gRPC by a
closed-loop grpc.aio client in a separate process (no C gRPC load generator here), so its
row is a floor: the Python client takes cores from the server that wrk does not. n=1 and
n=64 rows per request; the table gives images/s and the ratio to rest.

    python benchmarks/protocol_bench.py [--models models] [--duration 5] [--only NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

MODELS = ("fashion-dcgan", "fashion-cgan", "fashion-stylegan")
WAYS = ("rest", "oip-json", "oip-binary", "grpc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: Path, workers: int) -> tuple[subprocess.Popen, str, str]:
    http, grpc_port = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ganserve", "serve", "--models-dir",
                             str(models), "--port", str(http), "--grpc-port", str(grpc_port),
                             "--workers", str(workers)], cwd=REPO,
                            env={"GANSERVE_LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin",
                                 "GANSERVE_EMBEDDED_WORKER": "false"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{http}"
    for _ in range(600):
        try:
            if httpx.get(url + "/v2/health/ready", timeout=1).status_code == 200:
                return proc, url, f"127.0.0.1:{grpc_port}"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def _requests(way: str, model: str, n: int, url: str):
    """(url, request arguments) of one way in over HTTP."""
    seeds = list(range(n))
    if way == "rest":
        body = {"seeds": seeds}
        return f"{url}/v1/models/{model}/sample", {"json": body}
    if way == "oip-json":
        body = {"inputs": [{"name": "seed", "shape": [n], "datatype": "INT64", "data": seeds}]}
        return f"{url}/v2/models/{model}/infer", {"json": body}
    head = json.dumps({"inputs": [{"name": "seed", "shape": [n], "datatype": "INT64",
                                   "parameters": {"binary_data_size": 8 * n}}],
                       "outputs": [{"name": "image", "parameters": {"binary_data": True}}]}
                      ).encode()
    return f"{url}/v2/models/{model}/infer", {
        "content": head + np.array(seeds, np.int64).tobytes(),
        "headers": {"Inference-Header-Content-Length": str(len(head))}}


def _lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def wrk_images_per_s(target: str, kwargs: dict, n: int, connections: int,
                     seconds: float) -> float:
    body = (json.dumps(kwargs["json"]).encode() if "json" in kwargs else kwargs["content"])
    headers = {"Content-Type": "application/json", **kwargs.get("headers", {})}
    lua = "wrk.method = \"POST\"\nwrk.body = " + _lua_string(body) + "\n" + "".join(
        f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                              "-s", f.name, target], capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"{target}: errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)) * n


async def _grpc_load(address, model, n, concurrency, seconds) -> float:
    import grpc
    from tritonclient.grpc import service_pb2 as pb
    from tritonclient.grpc import service_pb2_grpc as pb_grpc

    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="seed", datatype="INT64", shape=[n])
    request.raw_input_contents.append(np.arange(n, dtype=np.int64).tobytes())
    done = 0
    async with grpc.aio.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", 1 << 30)]) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        stop = time.perf_counter() + seconds

        async def loop():
            nonlocal done
            while time.perf_counter() < stop:
                await stub.ModelInfer(request)
                done += n
        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done / seconds


def _measure(args: tuple) -> float:
    way, model, n, concurrency, seconds, url, grpc_address = args
    if way == "grpc":
        return asyncio.run(_grpc_load(grpc_address, model, n, concurrency, seconds))
    target, kwargs = _requests(way, model, n, url)
    return wrk_images_per_s(target, kwargs, n, concurrency, seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    ap.add_argument("--workers", type=int, default=2, help="ganserve worker processes")
    ap.add_argument("--only", help="one model name")
    args = ap.parse_args()
    proc, url, grpc_address = start_server(Path(args.models).resolve(), args.workers)
    shapes = [(1, 16), (64, 4)]                     # (rows per request, concurrency)
    rows = []
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:   # the load, apart
            for model in [args.only] if args.only else MODELS:
                for n, c in shapes:
                    pool.apply(_measure, (("rest", model, n, c, 1.0, url, grpc_address),))
                    got = {w: pool.apply(_measure, ((w, model, n, c, args.duration, url,
                                                     grpc_address),)) for w in WAYS}
                    rows.append((model, n, c, got))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print(f"| model | rows x concurrency | {' | '.join(WAYS)} (images/s; x rest) |")
    print("|---|---|" + "---|" * len(WAYS))
    for model, n, c, got in rows:
        cells = [f"{got[w]:.0f} ({got[w] / got['rest']:.2f}x)" for w in WAYS]
        print(f"| {model} | {n} x {c} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
