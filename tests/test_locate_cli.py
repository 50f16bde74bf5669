"""`tracefix locate` end to end: the whole suite, named tests, the collector option, bad input
(a test id that matches nothing: tests/test_trace_cli.py)."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import run_cli


def test_locate_ranks_the_buggy_function_first(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("locate", str(root), "--format", "json")
    assert result.returncode == 1, result.stderr
    loc = json.loads(result.stdout)
    assert (loc["failing"], loc["passing"]) == (2, 1)
    assert loc["functions"][0]["function"] == "stats/summary.py::mean"


def test_named_tests_narrow_the_run(fixture_copy):
    root = fixture_copy("average")
    one = run_cli("locate", str(root), "tests/test_summary.py::test_mean_of_one", "--format", "json")
    assert one.returncode == 1, one.stderr
    loc = json.loads(one.stdout)
    assert (loc["failing"], loc["passing"]) == (1, 0)
    assert [o["nodeid"] for o in loc["outcomes"]] == ["tests/test_summary.py::test_mean_of_one"]
    passing = run_cli("locate", str(root), "tests/test_summary.py::test_spread")
    assert passing.returncode == 0, passing.stderr
    assert "nothing to localize: all 1 tests pass" in passing.stdout


def test_unknown_collector_is_one_line_error(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("locate", str(root), "--collector", "ctrace")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["tracefix: error: unknown collector 'ctrace': use coverage or monitoring"]


@pytest.mark.skipif(hasattr(sys, "monitoring"), reason="sys.monitoring exists on Python 3.12+")
def test_monitoring_collector_needs_python_312(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("locate", str(root), "--collector", "monitoring")
    assert result.returncode == 2
    assert "needs Python 3.12+" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("collector", ["coverage", "monitoring"])
def test_both_collectors_name_themselves_in_the_result(fixture_copy, collector):
    if collector == "monitoring" and not hasattr(sys, "monitoring"):
        pytest.skip("sys.monitoring needs Python 3.12+")
    root = fixture_copy("average")
    result = run_cli("locate", str(root), "--collector", collector, "--format", "json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["collector"] == collector


def test_the_text_tables_show_each_suspects_source(fixture_copy):
    root = fixture_copy("cart")
    result = run_cli("locate", str(root), "--top", "3", env={"COLUMNS": "80"})
    assert result.returncode == 1, result.stderr
    rows = result.stdout.split("suspect lines")[1].splitlines()
    assert any("shop/pricing.py:8" in row and "cut = price *" in row for row in rows), result.stdout
    blocks = result.stdout.split("suspect blocks")[1].split("suspect lines")[0]
    # a block that starts with the docstring shows its first statement
    assert "if percent <= 0:" in blocks and '"""' not in blocks
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
