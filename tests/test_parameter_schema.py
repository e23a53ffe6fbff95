"""The build flow's parameter form: every field the Prefect UI renders says what it is for."""

from __future__ import annotations

from typing import Any


def _fields_without_description(schema: dict[str, Any]) -> list[str]:
    """Every property (of the flow's parameters and of each model definition) with no description."""
    missing: list[str] = []
    for model_name, model in schema.get("definitions", {}).items():
        for field, prop in model.get("properties", {}).items():
            if not str(prop.get("description", "")).strip():
                missing.append(f"{model_name}.{field}")
    return missing


def test_every_field_of_the_build_form_has_a_description() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.build import build_preference_dataset

    schema = parameter_schema(build_preference_dataset.fn).model_dump()
    models = set(schema["definitions"])
    assert {"BuildConfig", "JudgeSpec", "InputConfig", "OutputConfig", "BatchSettings"} <= models, models
    n_fields = sum(len(m.get("properties", {})) for m in schema["definitions"].values())
    assert n_fields > 80, n_fields  # the walk really reached the nested models
    assert _fields_without_description(schema) == []


def test_the_check_sees_a_missing_description() -> None:
    schema = {"definitions": {"M": {"properties": {"a": {"description": "x"}, "b": {"type": "string"}}}}}
    assert _fields_without_description(schema) == ["M.b"]
