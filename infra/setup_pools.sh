#!/usr/bin/env bash
# Create or update judgeflow's work pools, queues and rate limits (see infra/pools.yaml).
# Needs PREFECT_API_URL. Arguments go to infra/setup_pools.py, e.g. --rpm openai-rpm=450.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python}" "$here/setup_pools.py" "$@"
