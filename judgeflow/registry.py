"""Named judges: built-ins plus those declared in a config file (llama-stack style registry).

A ``JudgeSpec`` is judgeflow's scoring function; the registry is how commands and flows find
one by name. Config files are a YAML or JSON list of specs (or a mapping with a ``judges``
list, so a build config file works too); unknown keys are rejected by ``JudgeSpec``
(``extra="forbid"``) and reported with the judge and the key. A rubric may be given in config
as a mapping (criteria + score1..score5 descriptions); it is stored as the rendered rubric text.

An entry whose ``name`` is a registered judge IS that judge: it starts from the registered spec
and its other keys override (``resolve_entry``). Build configs, registry files, the Prefect flow
parameter and the Python API all resolve entries this way, so ``judgeflow judges list`` shows
what a build runs. An unknown name with neither ``provider`` nor ``model`` is a misspelling, not
a new judge on the API defaults: it is an error naming the closest registered judges.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from judgeflow.parsing import compile_score_regex
from judgeflow.prompts.render import compile_spec
from judgeflow.prompts.rubrics import format_score_rubric
from judgeflow.specs import JudgeSpec

PROMETHEUS_MODEL = "prometheus-eval/prometheus-7b-v2.0"


def builtin_specs() -> list[JudgeSpec]:
    """The judges every registry starts with (fresh objects: callers may not mutate shared ones)."""
    return [
        JudgeSpec(
            name="prometheus-absolute", kind="absolute", template="prometheus",
            provider="vllm", mode="gpu", model=PROMETHEUS_MODEL, aggregation=["average", "median"],
        ),
        JudgeSpec(
            name="prometheus-relative", kind="relative", template="prometheus",
            provider="vllm", mode="gpu", model=PROMETHEUS_MODEL, aggregation=["win_rate", "categorical_count"],
        ),
        JudgeSpec(
            name="pairwise-preference", kind="pairwise", template="pairwise-json",
            provider="openai", mode="live", model="gpt-4o-mini", api_key_env="OPENAI_API_KEY",
            aggregation=["win_rate", "categorical_count"],
        ),
    ]


class JudgeRegistry:
    """Judge specs by name, in registration order."""

    def __init__(self, specs: Iterable[JudgeSpec] | None = None, *, builtins: bool = True) -> None:
        self._specs: dict[str, JudgeSpec] = {}
        for spec in builtin_specs() if builtins else []:
            self.register(spec)
        for spec in specs or []:
            self.register(spec, replace=True)

    def register(self, spec: JudgeSpec, *, replace: bool = False) -> JudgeSpec:
        """Add ``spec``; an existing name is an error unless ``replace``."""
        if spec.name in self._specs and not replace:
            raise ValueError(f"judge {spec.name!r} is already registered")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> JudgeSpec:
        """The spec called ``name``; KeyError names the closest and the known judges."""
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self._specs) or "(none)"
            close = closest_names(name, self._specs)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise KeyError(f"unknown judge {name!r}{hint}; known judges: {known}") from None

    def list(self) -> list[JudgeSpec]:
        """All specs, built-ins first, then in registration order."""
        return list(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def aggregations(self) -> dict[str, list[str]]:
        """``{judge: aggregation names}``, the input of ``aggregation.aggregate_by_judge``."""
        return {name: list(spec.aggregation) for name, spec in self._specs.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    @classmethod
    def from_config(cls, source: str | Path | Mapping[str, Any] | list[Any], *, builtins: bool = True) -> JudgeRegistry:
        """Built-ins plus the judges of a YAML/JSON file, a mapping or a list.

        A config judge named like a built-in starts from it, its keys overriding
        (``resolve_entry``); two config judges may not share a name.
        """
        specs = load_specs(source)
        registry = cls(builtins=builtins)
        seen: set[str] = set()
        for spec in specs:
            if spec.name in seen:
                raise ValueError(f"judge {spec.name!r} is declared twice in the config")
            seen.add(spec.name)
            registry.register(spec, replace=True)
        return registry


# Nested settings an override merges into rather than replaces.
_NESTED = ("sampling", "batch", "engine")
# Providers a registered GPU judge may be switched to and stay on the GPU pool.
_GPU_PROVIDERS = ("vllm", "pairrm")


def closest_names(name: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Registered names that look like ``name`` (a typo's likely intent), best first."""
    return difflib.get_close_matches(name, list(names), n=n, cutoff=0.6)


def resolve_entry(entry: Any, registry: JudgeRegistry | None = None, label: str = "judge") -> Any:
    """The spec values one ``judges`` entry stands for (not yet validated).

    * a string is a registered name;
    * a mapping whose ``name`` is registered starts from that judge's spec, its other keys
      override (``sampling``/``batch`` merge key by key; a rubric mapping is rendered). Switching
      a GPU judge to another provider without naming a ``mode`` makes it a live judge, since the
      GPU pool runs only vLLM and PairRM;
    * a mapping with a new name and a ``provider`` or ``model`` is a new judge, as declared;
    * a mapping with a new name and neither raises ``ValueError`` naming the closest registered
      judges (a misspelt name must not silently become ``gpt-4o-mini`` at OpenAI).

    Anything else (a ``JudgeSpec`` object, a mapping without a string name) is returned as is
    for validation to judge.
    """
    registry = registry if registry is not None else JudgeRegistry()
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        return entry
    name = entry["name"]
    if name in registry:
        merged = registry.get(name).model_dump()
        for key, value in entry.items():
            if key in _NESTED and isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        if "provider" in entry and "mode" not in entry and merged["mode"] == "gpu" \
                and entry["provider"] not in _GPU_PROVIDERS:
            merged["mode"] = "live"
        return _render_rubric(merged, label)
    if "provider" not in entry and "model" not in entry:
        close = closest_names(name, registry.names())
        if close:
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
        else:
            hint = f"registered judges: {', '.join(registry.names()) or '(none)'}"
        raise ValueError(
            f"{label}: no registered judge is named {name!r}; {hint} (see `judgeflow judges list`). "
            "To declare a new judge, give its provider and model."
        )
    return _render_rubric(dict(entry), label)


def _render_rubric(values: dict[str, Any], label: str) -> dict[str, Any]:
    """A rubric given as a mapping (criteria + score1..score5 descriptions) becomes its text."""
    if isinstance(values.get("rubric"), Mapping):
        try:
            values["rubric"] = format_score_rubric(values["rubric"])
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    return values


def resolve_entries(entries: Any, registry: JudgeRegistry | None = None, where: str = "judges") -> Any:
    """``resolve_entry`` over a list (labels ``judges[i] ('name')``); other values pass through."""
    if not isinstance(entries, list):
        return entries
    registry = registry if registry is not None else JudgeRegistry()
    return [resolve_entry(e, registry, f"{where}[{i}]") for i, e in enumerate(entries)]


def load_specs(source: str | Path | Mapping[str, Any] | list[Any]) -> list[JudgeSpec]:
    """Judge specs from a file path, a mapping with ``judges`` or a list of spec mappings."""
    data: Any = source
    where = "config"
    if isinstance(source, (str, Path)):
        path = Path(source)
        where = str(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = orjson.loads(text)
        else:
            import yaml  # only for registry files, not for a judge defined in Python

            data = yaml.safe_load(text)
    if isinstance(data, Mapping):
        if "judges" not in data:
            raise ValueError(f"{where}: expected a list of judges or a mapping with a 'judges' list")
        data = data["judges"]
    if not isinstance(data, list):
        raise ValueError(f"{where}: 'judges' must be a list, got {type(data).__name__}")
    return [_spec(item, i, where) for i, item in enumerate(data)]


def _spec(item: Any, index: int, where: str) -> JudgeSpec:
    if isinstance(item, str):  # a registered name, as in a build config
        item = {"name": item}
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: judge #{index} must be a mapping or a name, got {type(item).__name__}")
    label = f"{where}: judge #{index}" + (f" ({item['name']!r})" if "name" in item else "")
    values = resolve_entry(item, JudgeRegistry(), label)
    try:
        spec = JudgeSpec.model_validate(values)
    except ValidationError as exc:
        raise ValueError(f"{label}: {_explain(exc)}") from None
    check_spec(spec, label)
    return spec


def check_spec(spec: JudgeSpec, label: str | None = None) -> None:
    """Fail at load time, not mid-run: the template must compile and the score regex parse."""
    label = label or f"judge {spec.name!r}"
    try:
        compile_spec(spec)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    if spec.score_regex is not None:
        import regex  # only a custom score_regex needs it

        try:
            compile_score_regex(spec.score_regex)
        except regex.error as exc:
            raise ValueError(f"{label}: score_regex does not compile: {exc}") from None


def _explain(exc: ValidationError) -> str:
    """One line per problem, naming the key; unknown keys list the allowed ones."""
    lines = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"]) or "(spec)"
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            allowed = ", ".join(JudgeSpec.model_fields)
            lines.append(f"unknown key {loc!r} (allowed keys: {allowed})")
        elif error["type"] == "extra_forbidden":
            lines.append(f"unknown key {loc!r}")
        else:
            lines.append(f"{loc}: {error['msg']}")
    return "; ".join(lines)
