"""``judgeflow`` command line. Each module below registers its commands on ``app``.

The CLI is the outer edge of the package: commands that run flows import ``flows`` inside the
command body, so importing the core never imports Prefect.
"""

from __future__ import annotations

from judgeflow.cli.app import app

# Command modules (one per command group). Keep this list sorted.
import judgeflow.cli.judges  # noqa: F401,E402
import judgeflow.cli.run  # noqa: F401,E402
import judgeflow.cli.simulate  # noqa: F401,E402
import judgeflow.cli.validate  # noqa: F401,E402


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
