# syntax=docker/dockerfile:1.7
# judgeflow-gpu-vllm: Prometheus 2 judged offline with vLLM, for the judgeflow-gpu pool.
# Build from the repository root:
#   docker build -f infra/docker/gpu-vllm.Dockerfile -t judgeflow-gpu-vllm:0.1.0 .
#
# TWO Python environments, because no single one can hold both: vLLM 0.25-0.33 cap fastapi
# below 0.137 and Prefect 3.8 needs fastapi >= 0.139 (docs/gpu.md, "vLLM environment").
#   /opt/prefect-env  judgeflow with its normal dependencies (prefect, ...): first on PATH, so
#                     the pod's `prefect flow-run execute` runs the flow and its tasks here.
#   /opt/vllm-env     judgeflow installed --no-deps plus infra/requirements/vllm-engine.txt (the
#                     core's runtime deps without prefect/typer/fastapi, and vllm): the chunk
#                     task starts `$JUDGEFLOW_VLLM_PYTHON -m judgeflow.gpu.vllm_runner` here.
# The same source tree (/opt/judgeflow, where the deployment's pull step goes) is installed in
# both, so the flow and the runner always run the same judgeflow.
# The host needs an NVIDIA driver new enough for CUDA_VERSION and for the CUDA build of torch
# that vLLM pins (PyPI's Linux x86_64 torch wheels are CUDA builds). Model weights are NOT baked
# in: mount a volume at HF_HOME (or pre-download into it) so a 14 GB checkpoint is fetched once
# per node, not per run; HF_TOKEN, if needed, comes from the pod's environment (a secret), which
# the runner inherits.
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
    VIRTUAL_ENV=/opt/prefect-env \
    PATH=/opt/prefect-env/bin:$PATH \
    JUDGEFLOW_VLLM_PYTHON=/opt/vllm-env/bin/python \
    HF_HOME=/models/hf \
    PREFECT_SERVER_ANALYTICS_ENABLED=false
# ca-certificates for HTTPS to the Prefect API and the model hub; libgomp for torch's CPU ops.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN uv venv --python ${PYTHON_VERSION} /opt/prefect-env \
    && uv venv --python ${PYTHON_VERSION} /opt/vllm-env
WORKDIR /opt/judgeflow

# Dependencies first (cached until pyproject.toml / the requirements file change).
COPY pyproject.toml ./
COPY infra/requirements/vllm-engine.txt ./infra/requirements/vllm-engine.txt
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/prefect-env/bin/python -r pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/vllm-env/bin/python -r infra/requirements/vllm-engine.txt

COPY README.md ./
COPY judgeflow ./judgeflow
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
# judgeflow itself into both; then check each environment holds what it must and not the other's.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/prefect-env/bin/python --no-deps . \
    && uv pip install --python /opt/vllm-env/bin/python --no-deps . \
    && /opt/prefect-env/bin/python -c "import judgeflow, tasks, flows, prefect, importlib.util as u; assert u.find_spec('vllm') is None; print('prefect', prefect.__version__)" \
    && /opt/vllm-env/bin/python -c "import sys, vllm, judgeflow.gpu.vllm_runner; assert 'prefect' not in sys.modules; print('vllm', vllm.__version__)" \
    && /opt/vllm-env/bin/python -m judgeflow.gpu.vllm_runner --help > /dev/null

RUN useradd --create-home --uid 10001 judgeflow && mkdir -p /models/hf \
    && chown -R judgeflow /models && chown judgeflow /opt/judgeflow
USER judgeflow
