"""Preflight: everything a build needs, checked in seconds before Prefect starts or a request is paid.

``judgeflow check CONFIG`` prints these results; ``judgeflow run`` runs them first and stops when
one fails. Each check answers one question a failed build would otherwise answer late and
expensively (a key missing after Prefect's server has started, S3 credentials missing after
every judgment has been paid for, a dead endpoint after 100 s of retries):

* every judge's prompt compiles (template and rubric exist), GPU judges' engines are installed;
* the API keys the judges read are set (named, never shown);
* every endpoint answers a cheap request within a few seconds (401/403: the key is refused);
* the input is readable and its first rows valid (only the head is read);
* the state folder (``output.dir``) and the publish prefix are writable (a small object is put
  and deleted).

Core logic only: no Prefect, no printing. Checks that wait on the network run in parallel.
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import os
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from judgeflow.config import BuildConfig, S3Settings
from judgeflow.specs import JudgeSpec

#: Seconds an endpoint or S3 call may take before it counts as not answering.
TIMEOUT_S = 3.0
#: Bytes of the input read for the head check (whole lines only).
HEAD_BYTES = 256 * 1024
CHECK_OBJECT = "_judgeflow_check"

OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
KEYLESS_PROVIDERS = ("pairrm",)


@dataclass(frozen=True)
class CheckResult:
    """One check: what was checked (``name``), whether it passed, what was found, how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None


S3Resolver = Callable[[S3Settings], Any]  # S3Settings -> judgeflow.storage.s3.S3Config


def preflight(
    config: BuildConfig,
    *,
    env: Mapping[str, str] | None = None,
    timeout_s: float = TIMEOUT_S,
    s3_resolver: S3Resolver | None = None,
) -> list[CheckResult]:
    """Every check for ``config`` (already loaded and valid), in a stable order.

    ``env``: where keys are looked up (default ``os.environ``); ``s3_resolver`` turns the config's
    ``output.s3`` into an ``S3Config`` (the CLI passes one that can read a prefect-aws
    credentials block; the default reads endpoint and region, credentials from the AWS chain).
    """
    env = os.environ if env is None else env
    resolve = s3_resolver or default_s3_config
    results = [*check_judges(config), *check_keys(config, env)]
    slow: list[Callable[[], list[CheckResult]]] = [
        *(lambda target=target: [check_endpoint(target, env, timeout_s)] for target in endpoints(config)),
        lambda: [check_input(config, resolve, timeout_s)],
        lambda: [check_state(config, resolve, timeout_s)],
    ]
    if config.output.publish_uri:
        slow.append(lambda: [check_publish(config, resolve, timeout_s)])
    with ThreadPoolExecutor(max_workers=min(8, len(slow))) as pool:
        for found in pool.map(lambda fn: fn(), slow):
            results.extend(found)
    return results


# ---------------------------------------------------------------------------------------------
# judges: prompts and engines
# ---------------------------------------------------------------------------------------------


def _closest(value: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(value, choices, n=3, cutoff=0.5)
    return f" (did you mean {' or '.join(near)}?)" if near else ""


def check_judges(config: BuildConfig) -> list[CheckResult]:
    """Each judge's prompt compiles (template, rubric) and a GPU judge's engine is available."""
    from judgeflow.prompts.render import TEMPLATES, compile_spec
    from judgeflow.prompts.rubrics import canonical_name, rubric_names

    results = []
    for i, spec in enumerate(config.judges):
        name = f"judge {spec.name}"
        where = f"judges[{i}]"
        if spec.provider == "pairrm":
            results.append(_gpu_engine(config, spec, where))
            continue
        if spec.template not in TEMPLATES:
            results.append(CheckResult(
                name, False, f"unknown template {spec.template!r}{_closest(spec.template, list(TEMPLATES))}",
                f"set {where}.template to one of {', '.join(TEMPLATES)}",
            ))
            continue
        rubric = spec.rubric.strip()
        if spec.template != "custom" and " " not in rubric and "\n" not in rubric and canonical_name(rubric) is None:
            # one word that is not a rubric name would be sent to the judge as the rubric's text
            results.append(CheckResult(
                name, False, f"unknown rubric {rubric!r}{_closest(rubric, rubric_names())}",
                f"set {where}.rubric to one of {', '.join(rubric_names())}, or write the rubric's text",
            ))
            continue
        try:
            compile_spec(spec)
        except ValueError as exc:
            results.append(CheckResult(name, False, str(exc), f"fix {where}.template / custom_template"))
            continue
        if spec.mode == "gpu":
            results.append(_gpu_engine(config, spec, where))
            continue
        detail = f"{spec.provider} {spec.model}, {spec.mode}, template {spec.template}"
        results.append(CheckResult(name, True, detail))
    return results


def _gpu_engine(config: BuildConfig, spec: JudgeSpec, where: str) -> CheckResult:
    name = f"judge {spec.name}"
    if config.gpu.use_deployments:
        deployment = config.gpu.pairrm_deployment if spec.provider == "pairrm" else config.gpu.vllm_deployment
        return CheckResult(name, True, f"GPU judge, runs through deployment {deployment} (not checked from here)")
    if spec.provider == "pairrm":
        if importlib.util.find_spec("llm_blender") is None:
            return CheckResult(name, False, "PairRM runs in process but llm-blender is not installed",
                               "pip install 'judgeflow[pairrm]', or set gpu.use_deployments: true")
        return CheckResult(name, True, "PairRM in process (llm-blender installed)")
    if os.environ.get("JUDGEFLOW_VLLM_PYTHON") or importlib.util.find_spec("vllm") is not None:
        return CheckResult(name, True, f"vLLM {spec.model} in process")
    return CheckResult(name, False, f"{where} runs Prometheus on vLLM in process, but vllm is not installed here",
                       "set JUDGEFLOW_VLLM_PYTHON to the vLLM environment's python (docs/gpu.md), "
                       "or set gpu.use_deployments: true")


# ---------------------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------------------


def _key_specs(config: BuildConfig) -> list[tuple[str, Any]]:
    """(config key, spec) of everything that calls an API: judges, and generators when enabled."""
    out: list[tuple[str, Any]] = [(f"judges[{i}]", s) for i, s in enumerate(config.judges) if s.mode != "gpu"]
    if config.generation.enabled:
        out += [(f"generation.generators[{i}]", g) for i, g in enumerate(config.generation.generators)
                if g.mode != "gpu"]
    return out


def key_variable(spec: Any) -> str | None:
    """The environment variable a judge (or generator) reads its key from."""
    from judgeflow.clients.factory import DEFAULT_KEY_ENV

    return spec.api_key_env or DEFAULT_KEY_ENV.get(spec.provider)


def key_required(spec: Any) -> bool:
    """A hosted provider at its own endpoint always needs a key; so does a judge naming a variable."""
    return bool(spec.api_key_env) or (spec.provider in ("openai", "anthropic") and spec.base_url is None)


def check_keys(config: BuildConfig, env: Mapping[str, str]) -> list[CheckResult]:
    """One result per key variable: set or not (the value is never read into a message)."""
    users: dict[str, list[str]] = {}
    required: dict[str, bool] = {}
    for _, spec in _key_specs(config):
        var = key_variable(spec)
        if var is None or spec.provider in KEYLESS_PROVIDERS:
            continue
        users.setdefault(var, []).append(spec.name)
        required[var] = required.get(var, False) or key_required(spec)
    results = []
    for var, names in users.items():
        who = ", ".join(names)
        if env.get(var):
            results.append(CheckResult(f"key {var}", True, f"set (used by {who})"))
        elif required[var]:
            results.append(CheckResult(
                f"key {var}", False, f"environment variable {var} is not set (needed by {who})",
                f"export {var}=<your key> (a deployed flow may use the Prefect Secret block instead)",
            ))
        else:
            results.append(CheckResult(f"key {var}", True, f"not set: {who} call a self-hosted server without a key"))
    return results


# ---------------------------------------------------------------------------------------------
# endpoints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A distinct endpoint the build calls: its family (openai or anthropic), URL and key variable."""

    family: str
    url: str
    key_var: str | None
    users: tuple[str, ...]
    where: str


def endpoints(config: BuildConfig) -> list[Endpoint]:
    """The endpoints to try, each once (however many judges share it)."""
    found: dict[tuple[str, str, str | None], tuple[list[str], str]] = {}
    for where, spec in _key_specs(config):
        family = "anthropic" if spec.provider == "anthropic" else "openai"
        url = (spec.base_url or (ANTHROPIC_URL if family == "anthropic" else OPENAI_URL)).rstrip("/")
        key = (family, url, key_variable(spec))
        found.setdefault(key, ([], f"{where}.base_url"))[0].append(spec.name)
    return [Endpoint(f, u, k, tuple(names), where) for (f, u, k), (names, where) in found.items()]


def _probe_url(target: Endpoint) -> str:
    """A cheap authenticated GET: the model list (OpenAI-compatible servers and Anthropic have one)."""
    return f"{target.url}/models" if target.family == "openai" else f"{target.url}/v1/models"


def _opener(url: str) -> urllib.request.OpenerDirector:
    host = urlsplit(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):  # never through a proxy
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def check_endpoint(target: Endpoint, env: Mapping[str, str], timeout_s: float = TIMEOUT_S) -> CheckResult:
    """GET the endpoint's model list: it answers, and does not refuse the key."""
    name = f"endpoint {target.url}"
    url = _probe_url(target)
    key = env.get(target.key_var) if target.key_var else None
    headers = {"user-agent": "judgeflow-check"}
    if key and target.family == "anthropic":
        headers |= {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    elif key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, headers=headers, method="GET")
    users = ", ".join(target.users)
    try:
        with _opener(url).open(request, timeout=timeout_s) as reply:
            status = reply.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            why = f"no answer within {timeout_s:g} s"
        else:
            why = getattr(reason, "strerror", None) or str(reason)
        return CheckResult(
            name, False, f"cannot reach {target.url} ({why}); used by {users}",
            f"start the server, or fix {target.where}",
        )
    if status in (401, 403) and key:
        return CheckResult(name, False, f"{target.url} refused the key in {target.key_var} (HTTP {status})",
                           f"set {target.key_var} to a valid key for this endpoint")
    return CheckResult(name, True, f"answers (HTTP {status} for GET {urlsplit(url).path}); used by {users}")


# ---------------------------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------------------------


def default_s3_config(settings: S3Settings) -> Any:
    """The ``S3Config`` for ``output.s3`` without Prefect: endpoint and region, credentials from the AWS chain."""
    from judgeflow.storage.s3 import S3Config

    return S3Config(endpoint_url=settings.endpoint_url, region=settings.region)


def quick_s3_client(s3: Any, timeout_s: float) -> Any:
    """A boto3 client for ``s3`` (a ``S3Config``) that gives up within seconds: short timeouts and
    three attempts, so one throttled or dropped request (a 503, a reset) does not fail the check."""
    import boto3.session
    from botocore.config import Config

    def secret(value: Any) -> str | None:
        return value.get_secret_value() if value is not None else None

    session = boto3.session.Session(
        profile_name=s3.profile, aws_access_key_id=secret(s3.access_key_id),
        aws_secret_access_key=secret(s3.secret_access_key), aws_session_token=secret(s3.session_token),
        region_name=s3.region,
    )
    if session.get_credentials() is None:
        raise _NoCredentials()
    return session.client("s3", endpoint_url=s3.endpoint_url, config=Config(
        connect_timeout=timeout_s, read_timeout=timeout_s, retries={"total_max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": s3.addressing_style},
    ))


class _NoCredentials(Exception):
    pass


_AWS_FIX = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or name a prefect-aws "
            "credentials block in output.s3.aws_credentials_block")


def _s3_failure(name: str, uri: str, where: str, s3: Any, exc: BaseException) -> CheckResult:
    """An S3 error as a check result naming the URI, the endpoint and what to change."""
    endpoint = getattr(s3, "endpoint_url", None) or "AWS S3"
    if isinstance(exc, _NoCredentials) or type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return CheckResult(name, False, f"no AWS credentials to reach {uri}", _AWS_FIX)
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
    if code in ("NoSuchBucket",):
        return CheckResult(name, False, f"{uri}: the bucket does not exist at {endpoint}",
                           f"create the bucket, or fix {where}")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return CheckResult(name, False, f"{uri}: access denied at {endpoint} ({code})",
                           "use credentials allowed to write there: " + _AWS_FIX)
    if code in ("NoSuchKey", "404"):
        return CheckResult(name, False, f"{uri}: no such object at {endpoint}", f"fix {where}")
    if type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        return CheckResult(name, False, f"no answer from the S3 endpoint {endpoint} for {uri}",
                           "start the S3 server, or fix output.s3.endpoint_url")
    return CheckResult(name, False, f"{uri}: {type(exc).__name__}: {exc}", f"check {where} and output.s3")


def _s3_writable(name: str, uri: str, where: str, s3: Any, timeout_s: float) -> CheckResult:
    """Put and delete a small object under ``uri``: credentials, bucket and permissions all at once."""
    from judgeflow.storage.s3 import parse_s3_uri

    try:
        bucket, prefix = parse_s3_uri(uri)
    except ValueError as exc:
        return CheckResult(name, False, str(exc), f"set {where} to s3://bucket/prefix")
    key = f"{prefix.rstrip('/')}/{CHECK_OBJECT}" if prefix.strip("/") else CHECK_OBJECT
    try:
        client = quick_s3_client(s3, timeout_s)
        client.put_object(Bucket=bucket, Key=key, Body=b"judgeflow check\n")
        client.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a named check result
        return _s3_failure(name, uri, where, s3, exc)
    endpoint = getattr(s3, "endpoint_url", None) or "AWS S3"
    return CheckResult(name, True, f"{uri} is writable ({endpoint})")


def check_publish(config: BuildConfig, resolve: S3Resolver, timeout_s: float = TIMEOUT_S) -> CheckResult:
    """The publish prefix takes a write (and the object is deleted again)."""
    uri = config.output.publish_uri or ""
    try:
        s3 = resolve(config.output.s3)
    except Exception as exc:  # noqa: BLE001 - a credentials block that cannot be read
        return CheckResult("publish", False, f"cannot read the S3 settings: {exc}", "fix output.s3")
    return _s3_writable("publish", uri, "output.publish_uri", s3, timeout_s)


def check_state(config: BuildConfig, resolve: S3Resolver, timeout_s: float = TIMEOUT_S) -> CheckResult:
    """``output.dir`` (the judgment store, ledgers, run folders) is writable; nothing is left behind."""
    folder = config.output.dir
    if folder.startswith("s3://"):
        try:
            s3 = resolve(config.output.s3)
        except Exception as exc:  # noqa: BLE001
            return CheckResult("state", False, f"cannot read the S3 settings: {exc}", "fix output.s3")
        return _s3_writable("state", folder, "output.dir", s3, timeout_s)
    if "://" in folder:
        return CheckResult("state", False, f"output.dir {folder!r}: only a local folder or s3://bucket/prefix",
                           "set output.dir to a folder or an s3:// prefix")
    from judgeflow.names import check_output_dir

    try:
        check_output_dir(folder)
    except ValueError as exc:
        return CheckResult("state", False, str(exc), "set output.dir to a folder you can write to")
    path = Path(folder)
    if not path.is_dir():
        return CheckResult("state", True, f"{folder} will be created (its parent is writable)")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=CHECK_OBJECT):
            pass
    except OSError as exc:
        return CheckResult("state", False, f"output.dir {folder!r}: cannot write a file ({exc.strerror or exc})",
                           "set output.dir to a folder you can write to")
    return CheckResult("state", True, f"{folder} is writable")


# ---------------------------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------------------------


def _head_lines(data: bytes, complete: bool) -> bytes:
    """``data`` cut after its last full line (unless it is the whole file)."""
    if complete:
        return data
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else data


def _read_head(uri: str, resolve: S3Resolver, config: BuildConfig, timeout_s: float) -> tuple[bytes, bool]:
    """(first bytes of the input, whether that is all of it), reading no more than ``HEAD_BYTES``."""
    if uri.startswith("s3://"):
        from judgeflow.storage.s3 import parse_s3_uri

        bucket, key = parse_s3_uri(uri)
        client = quick_s3_client(resolve(config.output.s3), timeout_s)
        size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"].read()
        return body, size <= HEAD_BYTES
    with open(uri, "rb") as handle:
        data = handle.read(HEAD_BYTES + 1)
    return data[:HEAD_BYTES], len(data) <= HEAD_BYTES


def _gunzip_head(data: bytes, complete: bool) -> tuple[bytes, bool]:
    if complete:
        return gzip.decompress(data), True
    return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, HEAD_BYTES), False


def check_input(config: BuildConfig, resolve: S3Resolver, timeout_s: float = TIMEOUT_S) -> CheckResult:
    """The input exists, is readable, and its first rows load and validate (the head only)."""
    from judgeflow.columns import ColumnMapping, InputError
    from judgeflow.loading import detect_format, load_rows

    uri = config.input.uri
    where = "input.uri"
    if not uri.startswith("s3://"):
        path = Path(uri)
        if not path.exists():
            return CheckResult("input", False, f"{uri}: no such file", f"set {where} to an existing file or s3://bucket/key")
        if not path.is_file():
            return CheckResult("input", False, f"{uri}: not a file", f"set {where} to a JSONL, Parquet or CSV file")
        if not os.access(path, os.R_OK):
            return CheckResult("input", False, f"{uri}: not readable (permissions)", "make the file readable")
    try:
        fmt, gz = detect_format(uri, config.input.format)
        mapping = ColumnMapping(**config.input.columns)
    except (InputError, ValueError, TypeError) as exc:
        return CheckResult("input", False, str(exc), "set input.format or input.columns")
    if fmt == "parquet":
        return _check_parquet(config, uri, mapping, resolve)
    try:
        data, complete = _read_head(uri, resolve, config, timeout_s)
        if gz:
            data, complete = _gunzip_head(data, complete)
    except (OSError, EOFError, zlib.error) as exc:
        return CheckResult("input", False, f"{uri}: cannot read ({exc})", f"check {where}")
    except Exception as exc:  # noqa: BLE001 - S3 errors become named results
        s3 = resolve(config.output.s3) if uri.startswith("s3://") else None
        return _s3_failure("input", uri, where, s3, exc)
    head = _head_lines(data, complete)
    suffix = ".csv" if fmt == "csv" else ".jsonl"
    with tempfile.TemporaryDirectory(prefix="judgeflow-check-") as tmp:
        sample = Path(tmp) / f"head{suffix}"
        sample.write_bytes(head)
        try:
            loaded = load_rows(sample, format=fmt, mapping=mapping, max_text_chars=config.input.max_text_chars)
        except InputError as exc:
            return CheckResult("input", False, str(exc).replace(str(sample), uri),
                               "fix the file or input.format / input.columns; `judgeflow validate FILE` shows more")
    return _head_result(uri, loaded, complete)


def _check_parquet(config: BuildConfig, uri: str, mapping: Any, resolve: S3Resolver) -> CheckResult:
    """Parquet: the first row group's rows, read by polars (local files; on S3 only existence)."""
    from judgeflow.columns import InputError
    from judgeflow.loading import load_rows

    if uri.startswith("s3://"):
        try:
            from judgeflow.storage.s3 import parse_s3_uri

            bucket, key = parse_s3_uri(uri)
            quick_s3_client(resolve(config.output.s3), TIMEOUT_S).head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            return _s3_failure("input", uri, "input.uri", resolve(config.output.s3), exc)
        return CheckResult("input", True, f"{uri} exists (Parquet on S3: rows are checked when the build loads them)")
    import polars as pl

    try:
        head = pl.read_parquet(uri, n_rows=200)
    except Exception as exc:  # noqa: BLE001 - polars raises several types for a bad file
        return CheckResult("input", False, f"{uri}: not a readable Parquet file ({type(exc).__name__})",
                           "check input.uri and input.format")
    with tempfile.TemporaryDirectory(prefix="judgeflow-check-") as tmp:
        sample = Path(tmp) / "head.parquet"
        head.write_parquet(sample)
        try:
            loaded = load_rows(sample, format="parquet", mapping=mapping, max_text_chars=config.input.max_text_chars)
        except InputError as exc:
            return CheckResult("input", False, str(exc).replace(str(sample), uri),
                               "fix the file or input.columns; `judgeflow validate FILE` shows more")
    return _head_result(uri, loaded, complete=head.height < 200)


def _head_result(uri: str, loaded: Any, complete: bool) -> CheckResult:
    counts = loaded.counts
    scope = "all" if complete else "the first"
    if counts.rows_in == 0:
        return CheckResult("input", False, f"{uri}: no rows", "point input.uri at a file with rows")
    if counts.rows_valid == 0:
        reasons = "; ".join(loaded.quarantine["reason"].head(3).to_list())
        return CheckResult("input", False, f"{uri}: none of {scope} {counts.rows_in} rows is valid ({reasons})",
                           "fix the file or input.columns; `judgeflow validate FILE` shows every reason")
    note = f", {counts.rows_quarantined} would be quarantined" if counts.rows_quarantined else ""
    return CheckResult("input", True, f"{uri}: {counts.rows_valid} of {scope} {counts.rows_in} rows valid{note}")


def failed(results: list[CheckResult]) -> list[CheckResult]:
    """The checks that did not pass."""
    return [r for r in results if not r.ok]


def timed(fn: Callable[[], list[CheckResult]]) -> tuple[list[CheckResult], float]:
    """(``fn()``, seconds it took) - the CLI prints how long the checks took."""
    start = time.perf_counter()
    return fn(), time.perf_counter() - start


__all__ = [
    "CheckResult", "Endpoint", "check_endpoint", "check_input", "check_judges", "check_keys",
    "check_publish", "check_state", "endpoints", "failed", "preflight", "timed",
]
