# syntax=docker/dockerfile:1.7
# One file, four images (docker build --target T .):
#   api         the inference + job API: ONNX Runtime (CPU), no torch; the store without
#               training weights
#   worker      `ganserve worker`: torch (CPU build) + training + Celery; the full store
#   api-gpu     api on an NVIDIA CUDA 13 / cuDNN 9 runtime with onnxruntime-gpu (built for
#               CUDA 13.0); refuses to start when ONNX Runtime cannot get the GPU
#   worker-gpu  worker on the same base: torch's CUDA 13.0 build trains on the GPU,
#               onnxruntime-gpu runs the evaluations
# Exactly one ONNX Runtime package per image (the cpu or gpu extra, never both).
# Dependencies are installed from pyproject.toml, pinned by requirements/constraints.txt,
# before the source is copied: a code change rebuilds only the last layers.
# The bases, overridable (scripts/compose_check.py builds local stand-ins from Debian's
# packages where no registry is reachable). The CUDA 13 images need a driver for CUDA 13
# (580+) and a Turing-or-newer GPU. CUDA_IMAGE's CUDA major must be the one the pinned
# onnxruntime-gpu and TORCH_CUDA_INDEX's torch were built for (tests/deploy/test_cuda.py).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

# ------------------------------------------------------------------ bases
FROM ${PYTHON_IMAGE} AS cpu-base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib
# the built-in dataset (fine-tune {"name": "fashion-mnist"}, evaluation references): Debian's
# package, whose version follows the pinned base image (DL3008: no apt version pin)
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/* \
 && python -m venv /opt/venv \
 && groupadd --system --gid 10001 ganserve \
 && useradd --system --uid 10001 --gid ganserve --home-dir /app --shell /usr/sbin/nologin ganserve
WORKDIR /app

FROM ${CUDA_IMAGE} AS gpu-base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib
# Ubuntu's Python and Fashion-MNIST, versions fixed by the pinned CUDA base (DL3008)
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && groupadd --system --gid 10001 ganserve \
 && useradd --system --uid 10001 --gid ganserve --home-dir /app --shell /usr/sbin/nologin ganserve
WORKDIR /app

# ------------------------------------------------------------------ the source, once
FROM scratch AS source
COPY pyproject.toml README.md /src/
COPY ganserve /src/ganserve

# ------------------------------------------------------------------ the store for the API
# the API serves ONNX graphs and manifests only: training weights stay in the worker image
FROM cpu-base AS api-store
COPY models /store
RUN find /store -name '*.safetensors' -delete

# ------------------------------------------------------------------ api
FROM cpu-base AS api
COPY pyproject.toml requirements/constraints.txt scripts/deps.py /build/
RUN python /build/deps.py cpu > /build/requirements.txt \
 && pip install -c /build/constraints.txt -r /build/requirements.txt setuptools \
 && pip check
COPY --from=source /src/ ./
RUN pip install --no-deps --no-build-isolation . && rm -rf build
# the shipped store (no weights), served as it is when no store is mounted; compose and
# Kubernetes point GANSERVE_MODELS_DIR at their volume. /app/models and /app/data stay empty
# folders owned by the service user: a named volume first mounted here (whichever container
# the engine creates first) is filled from them, so it starts empty and writable.
COPY --from=api-store --chown=ganserve:ganserve /store /app/shipped-models
ENV GANSERVE_MODELS_DIR=/app/shipped-models GANSERVE_DATA_DIR=/app/data
RUN mkdir -p /app/data /app/models && chown ganserve:ganserve /app/data /app/models
# labels last: a new VCS_REF (every commit) must not invalidate the installs' cache
ARG VERSION=0.1.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="ganserve-api" \
      org.opencontainers.image.description="GAN serving: FastAPI + ONNX Runtime (CPU)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/ganserve/ganserve" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["ganserve", "healthcheck", "http://127.0.0.1:8000/v2/health/live"]
ENTRYPOINT ["ganserve"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

# ------------------------------------------------------------------ worker
FROM cpu-base AS worker
COPY pyproject.toml requirements/constraints.txt scripts/deps.py /build/
# torch's CPU build; TORCH_PIP_ARGS says where from (a wheel folder mounted into the build,
# where download.pytorch.org is out of reach: --find-links /wheels)
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
RUN pip install -c /build/constraints.txt ${TORCH_PIP_ARGS} torch \
 && python /build/deps.py cpu train > /build/requirements.txt \
 && pip install -c /build/constraints.txt -r /build/requirements.txt setuptools \
 && pip check
COPY --from=source /src/ ./
RUN pip install --no-deps --no-build-isolation . && rm -rf build
# the shipped store, weights included: `ganserve seed-store --from /app/shipped-models`
# copies it into the shared store (GANSERVE_MODELS_DIR, a volume) on a deployment's first start
COPY models /app/shipped-models
ENV GANSERVE_MODELS_DIR=/app/models GANSERVE_DATA_DIR=/app/data \
    GANSERVE_WORKER_METRICS_HOST=0.0.0.0 GANSERVE_WORKER_METRICS_PORT=9101
RUN mkdir -p /app/data /app/models && chown ganserve:ganserve /app/data /app/models
# labels last: a new VCS_REF (every commit) must not invalidate the installs' cache
ARG VERSION=0.1.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="ganserve-worker" \
      org.opencontainers.image.description="GAN jobs: fine-tune and evaluate (torch CPU + Celery)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/ganserve/ganserve" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 9101
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD ["ganserve", "healthcheck", "http://127.0.0.1:9101/metrics"]
ENTRYPOINT ["ganserve"]
CMD ["worker", "--queues", "train,eval", "--log-level", "INFO"]

# ------------------------------------------------------------------ GPU variants
FROM gpu-base AS api-gpu
COPY pyproject.toml requirements/constraints.txt scripts/deps.py /build/
RUN python /build/deps.py gpu > /build/requirements.txt \
 && pip install -c /build/constraints.txt -r /build/requirements.txt setuptools \
 && pip check
COPY --from=source /src/ ./
RUN pip install --no-deps --no-build-isolation . && rm -rf build
# the shipped store (no weights), served as it is when no store is mounted; compose and
# Kubernetes point GANSERVE_MODELS_DIR at their volume. /app/models and /app/data stay empty
# folders owned by the service user: a named volume first mounted here (whichever container
# the engine creates first) is filled from them, so it starts empty and writable.
COPY --from=api-store --chown=ganserve:ganserve /store /app/shipped-models
ENV GANSERVE_MODELS_DIR=/app/shipped-models GANSERVE_DATA_DIR=/app/data GANSERVE_DEVICE=cuda
RUN mkdir -p /app/data /app/models && chown ganserve:ganserve /app/data /app/models
# labels last: a new VCS_REF (every commit) must not invalidate the installs' cache
ARG VERSION=0.1.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="ganserve-api-gpu" \
      org.opencontainers.image.description="GAN serving: FastAPI + ONNX Runtime (CUDA)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/ganserve/ganserve" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD ["ganserve", "healthcheck", "http://127.0.0.1:8000/v2/health/live"]
ENTRYPOINT ["ganserve"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "1"]

FROM gpu-base AS worker-gpu
COPY pyproject.toml requirements/constraints.txt scripts/deps.py /build/
# torch built for the base's CUDA major (cu130 for CUDA 13.0): fine-tunes train on the GPU
# (GANSERVE_TRAIN_DEVICE=cuda below), evaluations run on onnxruntime-gpu
ARG TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu130
RUN pip install -c /build/constraints.txt --index-url ${TORCH_CUDA_INDEX} \
      --extra-index-url https://pypi.org/simple torch \
 && python /build/deps.py gpu train > /build/requirements.txt \
 && pip install -c /build/constraints.txt -r /build/requirements.txt setuptools \
 && pip check
COPY --from=source /src/ ./
RUN pip install --no-deps --no-build-isolation . && rm -rf build
COPY models /app/shipped-models
ENV GANSERVE_MODELS_DIR=/app/models GANSERVE_DATA_DIR=/app/data \
    GANSERVE_WORKER_METRICS_HOST=0.0.0.0 GANSERVE_WORKER_METRICS_PORT=9101 \
    GANSERVE_TRAIN_DEVICE=cuda
RUN mkdir -p /app/data /app/models && chown ganserve:ganserve /app/data /app/models
# labels last: a new VCS_REF (every commit) must not invalidate the installs' cache
ARG VERSION=0.1.0
ARG VCS_REF=unknown
LABEL org.opencontainers.image.title="ganserve-worker-gpu" \
      org.opencontainers.image.description="GAN jobs: fine-tunes (torch CUDA) and evaluations (onnxruntime-gpu) on the GPU" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.source="https://github.com/ganserve/ganserve" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 10001:10001
EXPOSE 9101
HEALTHCHECK --interval=30s --timeout=3s --start-period=90s --retries=3 \
  CMD ["ganserve", "healthcheck", "http://127.0.0.1:9101/metrics"]
ENTRYPOINT ["ganserve"]
CMD ["worker", "--queues", "train,eval", "--log-level", "INFO"]
