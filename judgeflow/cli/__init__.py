"""``judgeflow`` command line. Each module below registers its commands on ``app``.

The CLI is the outer edge of the package: commands that run flows import ``flows`` inside the
command body, so importing the core never imports Prefect.
"""

from __future__ import annotations

from judgeflow.cli.app import app

# Command modules (one per command group). Keep this list sorted.
import judgeflow.cli.check  # noqa: F401,E402
import judgeflow.cli.init  # noqa: F401,E402
import judgeflow.cli.judges  # noqa: F401,E402
import judgeflow.cli.run  # noqa: F401,E402
import judgeflow.cli.simulate  # noqa: F401,E402
import judgeflow.cli.validate  # noqa: F401,E402


def main() -> None:
    """Console-script entry point.

    Commands run under the error contract of ``judgeflow.cli.app.Group`` (a user's mistake in a
    few lines, exit 2 or 1; a traceback only with ``--debug``); this catches what escapes it
    (an error while the command line itself is set up) the same way.
    """
    from judgeflow.cli.app import handle

    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # noqa: BLE001 - the last line of the error contract
        raise SystemExit(handle(exc)) from None


__all__ = ["app", "main"]
