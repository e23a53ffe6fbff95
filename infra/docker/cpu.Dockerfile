# syntax=docker/dockerfile:1.7
# judgeflow-cpu: the build flow (API and Batch-API judges, consensus, pairs, publish) for the
# judgeflow-cpu Kubernetes pool. Build from the repository root:
#   docker build -f infra/docker/cpu.Dockerfile -t judgeflow-cpu:0.1.0 .
# The code lives at /opt/judgeflow, the directory deployments/prefect.yaml's pull step enters.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ghcr.io/astral-sh/uv:0.9.5 AS uv
FROM ${PYTHON_IMAGE}

COPY --from=uv /uv /usr/local/bin/uv
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_SYSTEM_PYTHON=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PREFECT_SERVER_ANALYTICS_ENABLED=false
WORKDIR /opt/judgeflow

# Dependencies first (cached until pyproject.toml changes); no extras: no torch on CPU nodes.
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install -r pyproject.toml

# Then the project itself (its own packages, without re-resolving dependencies).
COPY README.md ./
COPY judgeflow ./judgeflow
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps . \
    && python -c "import judgeflow, tasks, flows, prefect; print('judgeflow image ok, prefect', prefect.__version__)"

# Flow runs start as `prefect flow-run execute` (the worker's command); never as root.
RUN useradd --create-home --uid 10001 judgeflow && chown judgeflow /opt/judgeflow
USER judgeflow
