# syntax=docker/dockerfile:1.7
# judgeflow-gpu-pairrm: PairRM (llm-blender) on a GPU, for the judgeflow-gpu pool.
# Build from the repository root:
#   docker build -f infra/docker/gpu-pairrm.Dockerfile -t judgeflow-gpu-pairrm:0.1.0 .
# The `pairrm` extra pins llm-blender 0.0.2 with transformers<5 (llm-blender imports
# TRANSFORMERS_CACHE, removed in transformers 5) and torch; PyPI's Linux x86_64 torch wheels are
# CUDA builds. Set TORCH_INDEX (e.g. https://download.pytorch.org/whl/cu128) to take torch
# from the PyTorch index for a specific CUDA instead.
# PRELOAD_PAIRRM=1 bakes llm-blender/PairRM and its backbone microsoft/deberta-v3-large into
# HF_HOME so GPU nodes without internet access can run it; otherwise both are fetched on first
# use (mount a volume at HF_HOME to keep them between runs).
ARG CUDA_VERSION=12.9.1
ARG PYTHON_VERSION=3.11
FROM ghcr.io/astral-sh/uv:0.9.5 AS uv
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu22.04
ARG PYTHON_VERSION
ARG TORCH_INDEX=""
ARG PRELOAD_PAIRRM=0

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
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN uv venv --python ${PYTHON_VERSION} /opt/venv
WORKDIR /opt/judgeflow

COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    if [ -n "$TORCH_INDEX" ]; then uv pip install torch --index-url "$TORCH_INDEX"; fi \
    && uv pip install -r pyproject.toml --extra pairrm

COPY README.md ./
COPY judgeflow ./judgeflow
COPY tasks ./tasks
COPY flows ./flows
COPY deployments ./deployments
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --no-deps . \
    && python -c "import judgeflow, tasks, flows, llm_blender, transformers; assert int(transformers.__version__.split('.')[0]) < 5, transformers.__version__"

RUN if [ "$PRELOAD_PAIRRM" = "1" ]; then \
        python -c "from huggingface_hub import snapshot_download; snapshot_download('llm-blender/PairRM'); snapshot_download('microsoft/deberta-v3-large')"; \
    fi
RUN useradd --create-home --uid 10001 judgeflow && mkdir -p /models/hf \
    && chown -R judgeflow /models && chown judgeflow /opt/judgeflow
USER judgeflow
