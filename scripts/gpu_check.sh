#!/usr/bin/env bash
# The GPU path, proven in one short run on a machine with an NVIDIA GPU (under 8 minutes):
#   1. the GPU dependencies, as the GPU images pin them: onnxruntime-gpu from
#      requirements/constraints.txt and torch's CUDA build from the Dockerfile's
#      TORCH_CUDA_INDEX, unless this Python already runs both on the GPU. Without a package
#      index, GPU_WHEELS=DIR installs from a folder of wheels (pip download them elsewhere);
#   2. the tests marked gpu (tests/gpu): every shipped model served on CUDA, IO binding,
#      AMP training steps of each family;
#   3. benchmarks/gpu_bench.py: one table, CUDA against the CPU.
# It exits non-zero, saying why, as soon as CUDA is not really in use (ONNX Runtime falls
# back to the CPU in silence; this does not): no table is ever measured on the CPU.
#
#   scripts/gpu_check.sh                 # PYTHON: .venv/bin/python if there, else python3
#   GPU_WHEELS=/wheels scripts/gpu_check.sh
#   GPU_CHECK_NO_INSTALL=1 scripts/gpu_check.sh     # use what is installed, or fail
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then default_py=.venv/bin/python; else default_py=python3; fi
PY=${PYTHON:-$default_py}
start=$(date +%s)

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: FAILED: no NVIDIA GPU here (nvidia-smi lists none); nothing installed" >&2
  exit 1
fi

cuda_ready() {
  "$PY" - <<'EOF'
import sys
try:
    import torch
    from ganserve.onnx_runtime import cuda_problem
except ImportError as e:
    sys.exit(f"not importable: {e}")
problem = cuda_problem()
if problem:
    sys.exit(f"ONNX Runtime: {problem}")
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no GPU")
EOF
}

echo "== 1/3 GPU dependencies"
if ! why=$(cuda_ready 2>&1); then
  if [ -n "${GPU_CHECK_NO_INSTALL:-}" ]; then
    echo "gpu_check: FAILED: CUDA is not really used: ${why}" >&2
    exit 1
  fi
  echo "   installing (${why})"
  # as the GPU images install: torch's CUDA build first, then the gpu + train requirements
  # under the pins, then the project itself without dependencies; one ONNX Runtime package
  reqs=$(mktemp)
  { "$PY" scripts/deps.py gpu train; echo pytest; } > "$reqs"
  torch_pin=$(grep -E '^torch==' requirements/constraints.txt)
  "$PY" -m pip uninstall -q -y onnxruntime 2>/dev/null || true
  if [ -n "${GPU_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --find-links "$GPU_WHEELS" "$torch_pin" -r "$reqs"
  else
    "$PY" -m pip install -q --index-url "$(sed -n 's/^ARG TORCH_CUDA_INDEX=//p' Dockerfile)" \
      "$torch_pin"
    "$PY" -m pip install -q -c requirements/constraints.txt -r "$reqs"
  fi
  "$PY" -m pip install -q --no-deps -e .
  if ! why=$(cuda_ready 2>&1); then
    echo "gpu_check: FAILED: CUDA is not really used after the install: ${why}" >&2
    exit 1
  fi
fi
"$PY" -c 'import onnxruntime as o, torch; print("   onnxruntime", o.__version__,
o.get_available_providers()[0], "| torch", torch.__version__, torch.cuda.get_device_name(0))'

echo "== 2/3 tests marked gpu"
GPU_CHECK_REQUIRE_GPU=1 "$PY" -m pytest -q -m gpu tests/gpu

echo "== 3/3 benchmark"
"$PY" benchmarks/gpu_bench.py "$@"
echo "gpu_check: done in $(( $(date +%s) - start )) s"
