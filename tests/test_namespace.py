"""A project with its own `tracer`, `repair` and `debugger` packages is traced, located and fixed."""

from __future__ import annotations

import json

from conftest import mocks, run_cli

GOOD_RECTANGLE = '''```python
def rectangle(width, height):
    """Area of a width x height rectangle."""
    return width * height
```'''


def test_trace_records_the_projects_code_not_its_namesakes(fixture_copy):
    root = fixture_copy("shadowing")
    result = run_cli("trace", str(root), "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    failing = sorted(t["nodeid"] for t in data["tests"] if t["outcome"] != "passed")
    assert failing == ["tests/test_area.py::test_rectangle"]
    recorded = {f["qualname"] for t in data["tests"] for f in t["functions"]}
    assert "rectangle" in recorded


def test_locate_ranks_the_buggy_function_first(fixture_copy):
    root = fixture_copy("shadowing")
    result = run_cli("locate", str(root), "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["failing"] == 1 and data["passing"] == 3
    assert data["functions"][0]["qualname"] == "rectangle"


def test_fix_validates_against_the_projects_own_packages(fixture_copy):
    root = fixture_copy("shadowing")
    result = run_cli("fix", str(root), "--model", "openai/mock-model", "--cache", "off",
                     env=mocks(GOOD_RECTANGLE))
    assert result.returncode == 0, result.stderr
    assert "+    return width * height" in result.stdout


def test_trace_and_locate_read_the_projects_configuration(fixture_copy):
    root = fixture_copy("shadowing")
    (root / "pyproject.toml").write_text('[tool.tracefix]\npytest_args = ["-k", "not test_rectangle"]\n')
    for command in ("trace", "locate"):
        result = run_cli(command, str(root))
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert "pass" in result.stdout
