"""judgeflow: preference datasets with LLM judges.

The core package has no Prefect import; the flows live in the top-level ``flows`` package.
``judgeflow.judge`` and ``judgeflow.build`` are the notebook API (see ``judgeflow.api``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "build", "judge"]


def __getattr__(name: str) -> Any:
    # Lazy: `import judgeflow` stays cheap (the CLI and the simulator import it).
    if name in ("judge", "build"):
        from judgeflow import api

        return getattr(api, name)
    raise AttributeError(name)
