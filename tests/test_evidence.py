"""What counts as evidence of a test: only project code its call phase ran, never test code
and never what pytest runs to report a failure."""

from __future__ import annotations

import sys

import pytest

from tracefix.tracer.localize import locate
from tracefix.tracer.runner import run_tests
from tracefix.tracer.tracing import trace_tests

COLLECTORS = ["coverage"] + (["monitoring"] if hasattr(sys, "monitoring") else [])


def _lines_of(run, nodeid: str, path: str) -> set[int]:
    return set((run.per_test[nodeid].get("lines") or {}).get(path, []))


@pytest.mark.parametrize("collector", COLLECTORS)
def test_repr_pytest_calls_for_the_message_is_not_covered(fixture_copy, collector):
    root = fixture_copy("reprbug")
    run = run_tests(root, mode="coverage", options={"collector": collector, "files": ["money/__init__.py"]})
    failing = "test_money.py::test_add_cents"
    assert [o.nodeid for o in run.failing] == [failing]
    covered = _lines_of(run, failing, "money/__init__.py")
    assert 17 in covered and 9 in covered  # add's body and __eq__, which the test itself calls
    assert not covered & {12, 13}  # __repr__'s body: pytest ran it to write "Money(3.00) == Money(4.25)"
    # and the failure message still has the reprs
    assert "Money(3.00)" in run.failing[0].message


def test_repr_is_not_a_suspect(fixture_copy):
    loc = locate(fixture_copy("reprbug"))
    assert "Money.__repr__" not in {s.qualname for s in loc.functions}
    assert {s.qualname for s in loc.functions} >= {"add"}


def test_fixture_teardown_is_not_the_tests_evidence(tmp_path):
    (tmp_path / "lib.py").write_text("def tidy():\n    return 1\n\n\ndef work():\n    return 2\n")
    (tmp_path / "test_lib.py").write_text(
        "import pytest\nimport lib\n\n\n@pytest.fixture\ndef resource():\n    yield 1\n    lib.tidy()\n\n\n"
        "def test_work(resource):\n    assert lib.work() == 3\n")
    run = run_tests(tmp_path, mode="coverage", options={"collector": "coverage", "files": ["lib.py"]})
    assert _lines_of(run, "test_lib.py::test_work", "lib.py") == {6}


def test_custom_python_files_are_never_suspects(fixture_copy):
    loc = locate(fixture_copy("customnames"))
    paths = {s.path for s in loc.lines} | {s.path for s in loc.functions}
    assert paths == {"geometry/__init__.py"}
    assert loc.functions[0].qualname == "area"


def test_custom_python_files_are_never_recorded(fixture_copy):
    run = trace_tests(fixture_copy("customnames"))
    [trace] = run.traces
    recorded = {c.function for c in trace.calls}
    assert recorded == {"geometry/__init__.py::area"}
    assert "@py_assert" not in repr(trace.calls)


def test_repr_is_not_covered_by_the_monitoring_collector_on_3_12(fixture_copy, tmp_path):
    """The sys.monitoring collector pauses too (run in a 3.12 project venv where this is older)."""
    from test_interpreter import _pyenv, project_venv

    root = fixture_copy("reprbug")
    python = project_venv(tmp_path / "venv312", str(_pyenv("3.12")))
    run = run_tests(root, mode="coverage", options={"collector": "monitoring", "files": ["money/__init__.py"]},
                    python=str(python))
    covered = _lines_of(run, "test_money.py::test_add_cents", "money/__init__.py")
    assert 17 in covered and 9 in covered and not covered & {12, 13}
