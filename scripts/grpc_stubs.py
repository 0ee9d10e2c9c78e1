"""Compile the Open Inference Protocol's gRPC service (ganserve/service/oip/grpc_predict_v2.proto)
into the committed Python stubs beside it, with grpcio-tools (a dev dependency: the service
needs only grpcio and protobuf at run time).

    python scripts/grpc_stubs.py           # regenerate the stubs
    python scripts/grpc_stubs.py --check   # exit 1 if the committed stubs are not this output
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROTO = Path("ganserve/service/oip/grpc_predict_v2.proto")
STUBS = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py")


def generate(out: Path) -> list[Path]:
    """The stubs, generated under ``out`` (imports name the package: ganserve.service.oip)."""
    from grpc_tools import protoc

    code = protoc.main(["protoc", f"-I{REPO}", f"--python_out={out}",
                        f"--grpc_python_out={out}", str(REPO / PROTO)])
    if code != 0:
        raise SystemExit(f"protoc failed ({code})")
    return [out / PROTO.parent / name for name in STUBS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        made = generate(Path(tmp))
        stale = [p.name for p in made
                 if not (REPO / PROTO.parent / p.name).is_file()
                 or (REPO / PROTO.parent / p.name).read_bytes() != p.read_bytes()]
        if args.check:
            if stale:
                print(f"stale gRPC stubs: {', '.join(stale)}; run python scripts/grpc_stubs.py",
                      file=sys.stderr)
            return 1 if stale else 0
        for p in made:
            shutil.copyfile(p, REPO / PROTO.parent / p.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
