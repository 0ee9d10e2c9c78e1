# syntax=docker/dockerfile:1
# Two images from one file:
#   --target api    : the inference service; ONNX Runtime only, no torch
#   --target worker : torch (CPU build) + the training package: train, export, evaluate, jobs
# GPU: build the api target with --build-arg ORT_PACKAGE=onnxruntime-gpu on a CUDA base.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ganserve ganserve
COPY training training
COPY evaluation evaluation
COPY service service
COPY jobs jobs
COPY cli cli

FROM base AS api
ARG ORT_PACKAGE=onnxruntime
RUN pip install . && if [ "$ORT_PACKAGE" != onnxruntime ]; then \
      pip uninstall -y onnxruntime && pip install "$ORT_PACKAGE"; fi
COPY models models
ENV GANSERVE_MODELS_DIR=/app/models
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/v2/health/live').status != 200)"
ENTRYPOINT ["ganserve"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

FROM base AS worker
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
 && pip install '.[train]'
COPY models models
ENV GANSERVE_MODELS_DIR=/app/models
ENTRYPOINT ["ganserve"]
CMD ["--help"]
