"""Mistakes a user can fix, said in a few lines: what went wrong, where, and how to fix it.

The core raises a ``UserError`` where it detects a user's mistake (a missing file, a key not set,
an endpoint that does not answer); the command line prints it without a traceback and exits with
its ``exit_code`` (2: usage or config, 1: the build failed). ``explain`` turns the exceptions that
libraries raise for the same mistakes (a missing S3 credential, a busy port) into one, so the
command line has a single place that decides what a user sees.

Importing this module is cheap: it never imports boto3, httpx or Prefect; foreign exceptions are
recognised by their class names.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


class UserError(Exception):
    """A mistake the user can fix. ``where``: file, config key, CLI flag or URL; ``fix``: what to do."""

    exit_code = 2

    def __init__(self, what: str, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.fix = fix

    def lines(self) -> list[str]:
        """The message as printed: ``error: ...``, then ``where:`` and ``fix:`` lines if known."""
        out = [f"error: {self.what}"]
        if self.where:
            out.append(f"  where: {self.where}")
        if self.fix:
            out.append(f"  fix:   {self.fix}")
        return out

    def __str__(self) -> str:
        return "; ".join(
            [self.what] + ([f"where: {self.where}"] if self.where else []) + ([f"fix: {self.fix}"] if self.fix else [])
        )


class ConfigError(UserError):
    """The config file, a ``--set`` override or a CLI option is wrong (exit 2)."""


class EnvironmentProblem(UserError):
    """Something outside the config is missing or down: a key, credentials, an endpoint, a port (exit 2)."""


class BuildError(UserError):
    """The build ran and failed (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class _Known:
    """How to explain one foreign exception class (matched by name, so nothing is imported)."""

    what: str
    fix: str


_AWS_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or name a prefect-aws "
    "credentials block in output.s3.aws_credentials_block"
)

_BY_CLASS_NAME: dict[str, _Known] = {
    "NoCredentialsError": _Known("no AWS credentials found for S3", _AWS_FIX),
    "PartialCredentialsError": _Known("incomplete AWS credentials for S3", _AWS_FIX),
    "EndpointConnectionError": _Known("cannot reach the S3 endpoint", "start the S3 server or fix output.s3.endpoint_url"),
    "APIConnectionError": _Known(
        "cannot reach a judge's endpoint", "start the server or fix the judge's base_url; `judgeflow check CONFIG` names it"
    ),
}


def explain(exc: BaseException) -> UserError | None:
    """The ``UserError`` for ``exc`` when it is a known user mistake, else None (a bug: traceback)."""
    if isinstance(exc, UserError):
        return exc
    name = type(exc).__name__
    if name == "ValidationError" and hasattr(exc, "errors"):  # pydantic: a config that does not validate
        return config_error(exc)
    known = _BY_CLASS_NAME.get(name)
    if known is not None:
        detail = str(exc).strip()
        return EnvironmentProblem(f"{known.what} ({detail})" if detail else known.what, None, known.fix)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return EnvironmentProblem("the port is already in use", None, "stop what listens there or pick another port")
    return None


_PYDANTIC_MESSAGES = {
    "extra_forbidden": "unknown key (a typo? `judgeflow init` writes a config with the usual keys)",
    "missing": "required key is missing",
}


def _key(loc: tuple[object, ...]) -> str:
    """``("judges", 0, "model")`` -> ``judges[0].model``: the key as a YAML reader finds it."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def config_error(exc: BaseException, source: str | None = None) -> ConfigError:
    """A pydantic ``ValidationError`` as one ``ConfigError``: each wrong key with why, one a line."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return ConfigError(str(exc), source, "fix the config")
    problems = []
    for item in errors(include_url=False, include_input=False):
        key = _key(tuple(item.get("loc", ())))
        message = _PYDANTIC_MESSAGES.get(str(item.get("type")), str(item.get("msg", "invalid")))
        message = message.removeprefix("Value error, ")
        problems.append(f"{key}: {message}" if key and not message.startswith(key) else message)
    if len(problems) == 1:
        what = f"invalid config: {problems[0]}"
    else:
        what = "invalid config:" + "".join(f"\n  - {p}" for p in problems)
    return ConfigError(what, source, "fix the key(s) named above (docs/first-hour.md shows a minimal config)")


__all__ = ["BuildError", "ConfigError", "EnvironmentProblem", "UserError", "config_error", "explain"]
