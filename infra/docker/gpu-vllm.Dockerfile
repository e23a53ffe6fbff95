# syntax=docker/dockerfile:1.7
# judgeflow-gpu-vllm: Prometheus 2 judged offline with vLLM, for the judgeflow-gpu pool.
# Build from the repository root:
#   docker build -f infra/docker/gpu-vllm.Dockerfile -t judgeflow-gpu-vllm:0.1.0 .
# The `vllm` extra pins vllm 0.33 (torch 2.14 CUDA wheels from PyPI, transformers 5); it cannot
# share an environment with the `pairrm` extra (transformers<5), hence a separate image.
# The host needs an NVIDIA driver new enough for CUDA_VERSION (the pool's GPU nodes run the
# NVIDIA device plugin / GPU operator). Model weights are NOT baked in: mount a volume at
# HF_HOME (or pre-download into it) so a 14 GB checkpoint is fetched once per node, not per run.
ARG CUDA_VERSION=12.9.1
ARG PYTHON_VERSION=3.11
FROM ghcr.io/astral-sh/uv:0.9.5 AS uv
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu22.04
ARG PYTHON_VERSION

COPY --from=uv /uv /usr/local/bin/uv
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HF_HOME=/models/hf \
    PREFECT_SERVER_ANALYTICS_ENABLED=false
# ca-certificates for HTTPS to the Prefect API and the model hub; libgomp for torch's CPU ops.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN uv venv --python ${PYTHON_VERSION} /opt/venv
WORKDIR /opt/judgeflow

# Dependencies with the vllm extra first (cached until pyproject.toml changes).
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install -r pyproject.toml --extra vllm

COPY README.md ./
COPY judgeflow ./judgeflow
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps . \
    && python -c "import judgeflow, tasks, flows, vllm; print('vllm', vllm.__version__)"

RUN useradd --create-home --uid 10001 judgeflow && mkdir -p /models/hf \
    && chown -R judgeflow /models && chown judgeflow /opt/judgeflow
USER judgeflow
