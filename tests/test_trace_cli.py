"""`tracefix trace` end to end on the bundled fixtures, and its answers to bad input."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli
from tracefix.tracer.selection import SNAPSHOT_BUDGET


def test_version_and_help():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("tracefix ")
    for command in ("trace", "--help"):
        help_ = run_cli(command, "--help") if command != "--help" else run_cli("--help")
        assert help_.returncode == 0
        assert "Usage" in help_.stdout


def test_trace_shows_blocks_states_and_failure(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("trace", str(root))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "tests/test_summary.py::test_mean_of_three" in out
    assert "total += v" in out  # a block's source
    assert "total=6" in out  # the state after the loop
    assert "return total / (len(values) + 1)" in out
    assert "assert 1.5 == 2" in out  # the failing assertion closes the test
    assert "test_spread" not in out  # passing tests are not traced


def test_trace_json_follows_the_schema(fixture_copy):
    root = fixture_copy("cart")
    result = run_cli("trace", str(root), "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "tracefix.trace/1.3"
    assert data["summary"] == {"tests": 4, "failing": 2, "traced": 2}
    test = next(t for t in data["tests"] if t["nodeid"].endswith("test_sale_price"))
    assert {"path": "shop/pricing.py", "line": 8} in test["marked"]  # the text trace's ▶ line
    calls = {c["function"]: c for c in test["calls"]}
    helper = calls["shop/pricing.py::apply_discount"]
    caller = calls["shop/cart.py::sale_price"]
    assert helper["parent"] == caller["id"] and helper["depth"] == 1
    assert helper["call_line"] == 25 and caller["call_line"] is None  # the caller's `return apply_discount(...)`
    assert test["call_counts"] == {"shop/cart.py::sale_price": 1, "shop/pricing.py::apply_discount": 1}
    assert helper["args"] == {"price": "1000", "percent": "25"}
    assert helper["returned"] == "0"
    assert any(v["after"].get("cut") == "2500" for v in helper["visits"])
    functions = {f["key"]: f for f in test["functions"]}
    assert functions["shop/pricing.py::apply_discount"]["blocks"]


def test_named_test_id_is_traced_even_when_it_passes(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("trace", str(root), "tests/test_summary.py::test_spread", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [t["nodeid"] for t in data["tests"]] == ["tests/test_summary.py::test_spread"]
    assert data["tests"][0]["outcome"] == "passed"


def test_infinite_loop_is_stopped_and_its_trace_kept(fixture_copy):
    root = fixture_copy("search")
    result = run_cli("trace", str(root), "--test-timeout", "1", "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    (test,) = data["tests"]
    assert test["outcome"] == "timeout"
    (call,) = [c for c in test["calls"] if c["function"].endswith("::find")]
    assert call["finished"] is False
    assert call["exit_locals"]["lo"] == "3" and call["exit_locals"]["hi"] == "4"
    assert call["elided"], "the loop's later visits are elided, not kept"
    assert "stopped after 1s" in " ".join(data["warnings"])


def test_recursion_bug_records_the_call_tree(fixture_copy):
    root = fixture_copy("flatten")
    result = run_cli("trace", str(root), "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    nested = next(t for t in data["tests"] if t["nodeid"].endswith("test_depth_nested"))
    depths = sorted({c["depth"] for c in nested["calls"] if c["function"].endswith("::depth")})
    assert depths[:3] == [0, 1, 2]


def test_endless_recursion_is_reported_in_the_users_code_not_the_tracers(tmp_path):
    # The tracer needs stack too, so the overflow happens inside it; the failure report (which
    # the repair prompt quotes) must still end in the user's function.
    (tmp_path / "calc").mkdir()
    (tmp_path / "calc" / "__init__.py").write_text("")
    (tmp_path / "calc" / "fact.py").write_text("def fact(n):\n    return n * fact(n - 1)\n")
    (tmp_path / "test_fact.py").write_text(textwrap.dedent("""\
        import unittest
        from calc.fact import fact


        def test_three():
            assert fact(3) == 6


        class FactTest(unittest.TestCase):  # unittest failures reach pytest's report hook later
            def test_two(self):
                self.assertEqual(fact(2), 2)
    """))
    result = run_cli("trace", str(tmp_path), "--format", "json")
    assert result.returncode == 1, result.stderr
    tests = json.loads(result.stdout)["tests"]
    assert len(tests) == 2
    for test in tests:
        assert test["message"].startswith("RecursionError")
        assert "tracer" not in test["longrepr"] and "snapshot.py" not in test["longrepr"]
        # The call event of the def line, or the recursive line: where the stack ran out.
        ends = {"calc/fact.py:1: RecursionError", "calc/fact.py:2: RecursionError"}
        assert ends & set(test["longrepr"].splitlines()), test["longrepr"][-400:]
        assert any(c["function"] == "calc/fact.py::fact" for c in test["calls"])
    # The text view: the first calls and the deepest recorded one, not every link of the chain.
    # settrace loses the tracer at the overflow (20 full calls, none returned); sys.monitoring
    # sees the unwinding too (every call raised). Either way, one failed chain.
    (three,) = [t for t in tests if t["nodeid"].endswith("test_three")]
    deepest = max(c["depth"] for c in three["calls"])
    assert deepest >= 19
    text = run_cli("trace", str(tmp_path), "test_fact.py::test_three").stdout
    titles = [line for line in text.splitlines() if "fact(n=" in line]
    assert len(titles) == 7, text
    assert f"[depth {deepest}] fact(n=" in titles[-1]  # at the overflow even a repr may fail
    if not three["calls"][0]["finished"]:  # settrace: say why the calls never returned
        assert "did not return: stopped here by a RecursionError" in text
    assert re.search(r"not shown: fact ×\d+", text) and "--format json has all of them" in text


def test_tracefix_keeps_its_own_frames_in_reports_when_the_project_is_tracefix(tmp_path):
    import tracefix.tracer
    from tracefix.tracer.plugin import OutcomePlugin

    repository = Path(tracefix.tracer.__file__).resolve().parent.parent.parent
    assert not OutcomePlugin(repository, None, tmp_path / "current", None, 0)._hides_tool_frames
    assert OutcomePlugin(tmp_path, None, tmp_path / "current", None, 0)._hides_tool_frames


def test_nothing_to_trace_when_all_tests_pass(fixture_copy):
    root = fixture_copy("average")
    (root / "stats" / "summary.py").write_text(
        (root / "stats" / "summary.py").read_text().replace("(len(values) + 1)", "len(values)"))
    result = run_cli("trace", str(root))
    assert result.returncode == 0
    assert "nothing to trace" in result.stdout


def test_missing_path_is_one_line_error(tmp_path):
    result = run_cli("trace", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_folder_without_python_is_not_a_project(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    result = run_cli("trace", str(tmp_path))
    assert result.returncode == 2 and "no Python files" in result.stderr


@pytest.mark.parametrize("command", ["trace", "locate"])
def test_unknown_test_id_matches_nothing(fixture_copy, command):
    root = fixture_copy("average")
    result = run_cli(command, str(root), "tests/test_summary.py::test_nope")
    assert result.returncode == 2
    assert "matches nothing" in result.stderr and "Traceback" not in result.stderr


def test_syntax_error_is_located(fixture_copy):
    root = fixture_copy("average")
    (root / "stats" / "summary.py").write_text("def mean(values:\n    return 1\n")
    result = run_cli("trace", str(root))
    assert result.returncode == 2
    assert "stats/summary.py:1:" in result.stderr and "syntax error" in result.stderr


def test_interpreter_crash_is_a_failing_test(fixture_copy):
    root = fixture_copy("average")
    (root / "tests" / "test_crash.py").write_text(textwrap.dedent("""
        import os
        def test_crash():
            os._exit(3)
    """))
    result = run_cli("trace", str(root), "tests/test_crash.py")
    assert result.returncode == 1, result.stderr
    assert "tests/test_crash.py::test_crash  crashed" in result.stdout
    assert "exit code 3" in result.stdout


def test_unknown_format_is_usage_error(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("trace", str(root), "--format", "xml")
    assert result.returncode == 2 and "unknown format" in result.stderr


def test_only_the_top_suspects_are_recorded(fixture_copy):
    root = fixture_copy("cart")
    result = run_cli("trace", str(root), "--suspects", "1", "--format", "json")
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    recorded = {c["function"] for t in data["tests"] for c in t["calls"]}
    assert recorded == {"shop/pricing.py::apply_discount"}
    every = json.loads(run_cli("trace", str(root), "--suspects", "0", "--format", "json").stdout)
    assert "shop/cart.py::Cart.subtotal" in {c["function"] for t in every["tests"] for c in t["calls"]}


def test_bare_tracefix_reports_failures_and_suspects(fixture_copy):
    root = fixture_copy("search")
    # A model-only strategy with no model: the report, and what a model would add.
    result = run_cli("--quiet", cwd=root, env={"TRACEFIX_TEST_TIMEOUT": "1", "TRACEFIX_MODEL": "",
                                               "TRACEFIX_STRATEGY": "baseline"})
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "1 failing, 3 passing tests" in out
    assert "test_find_missing_large: timeout: test ran longer than 1s" in out
    assert "1. finder/bisect_search.py:4 find" in out
    assert "find -> did not return (stopped by the per-test timeout) (line " in out
    assert "[tool.tracefix] model" in out and "diff --git" not in out


def test_bare_tracefix_without_a_model_runs_the_model_free_stages(fixture_copy):
    # The default portfolio's mutation search needs no model: the report ends with its fix.
    root = fixture_copy("search")
    result = run_cli("--quiet", cwd=root, env={"TRACEFIX_TEST_TIMEOUT": "1", "TRACEFIX_MODEL": ""})
    assert result.returncode == 0, result.stderr
    assert "1 failing, 3 passing tests" in result.stdout
    assert "+            lo = mid + 1\n" in result.stdout and "[tool.tracefix] model" not in result.stdout


def _pipeline_project(root: Path, steps: int = 11) -> Path:
    """A failing test that runs `steps` helpers, `pipeline` and the buggy `scale`: a passing test
    runs `scale` too, so it ranks last, past the `steps` + 1 functions only the failing test runs."""
    (root / "pipe").mkdir(parents=True)
    (root / "pipe" / "__init__.py").write_text("")
    helpers = "".join(f"def step{i:02d}(x):\n    y = x + 1\n    return y\n\n\n" for i in range(1, steps + 1))
    calls = "".join(f"    x = step{i:02d}(x)\n" for i in range(1, steps + 1))
    (root / "pipe" / "steps.py").write_text(
        helpers + "def scale(x):\n    doubled = x * 2 + x // 100  # the bug shows from 100 up\n    return doubled\n\n\n"
        f"def pipeline(x):\n{calls}    return scale(x)\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_pipe.py").write_text(textwrap.dedent(f"""\
        from pipe.steps import pipeline, scale


        def test_scale_small():
            assert scale(3) == 6


        def test_pipeline():
            assert pipeline(189) == {(189 + steps) * 2}
    """))
    return root


def _recorded(data: dict) -> set[str]:
    return {c["function"] for t in data["tests"] for c in t["calls"]}


def test_a_culprit_ranked_past_ten_is_recorded(tmp_path):
    root = _pipeline_project(tmp_path)
    ranking = json.loads(run_cli("locate", str(root), "--format", "json", "--top", "20").stdout)
    assert [f["rank"] for f in ranking["functions"] if f["qualname"] == "scale"] == [13]
    data = json.loads(run_cli("trace", str(root), "--format", "json").stdout)
    assert "pipe/steps.py::scale" in _recorded(data) and len(_recorded(data)) == 13
    assert data["tests"][0]["unrecorded"] == []
    assert data["selection"] == {"by": "ranking", "suspects": None, "max_snapshots": SNAPSHOT_BUDGET, "include": None}
    text = run_cli("trace", str(root)).stdout
    assert "scale(x=200) -> 402" in text and "not recorded" not in text


def test_functions_left_out_are_named_with_the_flag_that_records_them(tmp_path):
    root = _pipeline_project(tmp_path)
    data = json.loads(run_cli("trace", str(root), "--suspects", "5", "--format", "json").stdout)
    assert len(_recorded(data)) == 5
    left = data["tests"][0]["unrecorded"]
    assert [u["rank"] for u in left] == list(range(6, 14))
    assert left[-1] == {"function": "pipe/steps.py::scale", "rank": 13, "reason": "rank", "snapshots": None}
    assert data["selection"]["include"] == "--suspects 13"
    text = run_cli("trace", str(root), "--suspects", "5").stdout
    assert "not recorded: 8 functions the traced tests ran (--suspects 13 records them in full" in text
    assert "pipe/steps.py::scale  (rank 13; past the 5 functions recorded)" in text
    everything = json.loads(run_cli("trace", str(root), "--suspects", "13", "--format", "json").stdout)
    assert "pipe/steps.py::scale" in _recorded(everything) and not everything["tests"][0]["unrecorded"]


def test_the_snapshot_bound_leaves_functions_out_and_says_so(tmp_path):
    root = _pipeline_project(tmp_path)
    data = json.loads(run_cli("trace", str(root), "--max-snapshots", "10", "--format", "json").stdout)
    (test,) = data["tests"]
    assert sum(1 + len(c["visits"]) for c in test["calls"]) <= 10
    assert test["unrecorded"] and {u["reason"] for u in test["unrecorded"]} == {"snapshots"}
    assert {u["function"] for u in test["unrecorded"]} | _recorded(data) == \
        {f"pipe/steps.py::step{i:02d}" for i in range(1, 12)} | {"pipe/steps.py::pipeline", "pipe/steps.py::scale"}
    assert data["selection"]["include"] == "--suspects 13"
    diagnostics = run_cli("trace", str(root), "--max-snapshots", "10", "--format", "diagnostics")
    assert "note: not recorded: " in diagnostics.stderr and "pipe/steps.py::scale" in diagnostics.stderr


def test_suspects_applies_to_named_tests(tmp_path):
    root = _pipeline_project(tmp_path)
    one = json.loads(run_cli("trace", str(root), "--suspects", "1", "tests/test_pipe.py::test_pipeline",
                             "--format", "json").stdout)
    assert [t["nodeid"] for t in one["tests"]] == ["tests/test_pipe.py::test_pipeline"]
    assert _recorded(one) == {"pipe/steps.py::step01"}
    assert len(one["tests"][0]["unrecorded"]) == 12
    # Named or not, a test is traced with the same selection.
    named = json.loads(run_cli("trace", str(root), "tests/test_pipe.py::test_pipeline", "--format", "json").stdout)
    default = json.loads(run_cli("trace", str(root), "--format", "json").stdout)
    assert named["tests"][0]["functions"] == default["tests"][0]["functions"]
    # A named passing test records what it ran, not every project function.
    passing = json.loads(run_cli("trace", str(root), "tests/test_pipe.py::test_scale_small", "--suspects", "3",
                                 "--format", "json").stdout)
    assert _recorded(passing) == {"pipe/steps.py::scale"}


def test_function_records_only_the_named_functions(tmp_path):
    root = _pipeline_project(tmp_path)
    by_key = json.loads(run_cli("trace", str(root), "--function", "pipe/steps.py::scale", "--format", "json").stdout)
    assert _recorded(by_key) == {"pipe/steps.py::scale"}
    assert by_key["selection"]["by"] == "given"
    both = json.loads(run_cli("trace", str(root), "--function", "scale", "--function", "step03",
                              "--format", "json").stdout)
    assert _recorded(both) == {"pipe/steps.py::scale", "pipe/steps.py::step03"}
    text = run_cli("trace", str(root), "--function", "scale").stdout
    assert "scale(x=200) -> 402" in text and "step01" not in text


def test_function_that_names_nothing_is_one_line_exit_2(tmp_path):
    root = _pipeline_project(tmp_path)
    result = run_cli("trace", str(root), "--function", "scal")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tracefix: error: --function scal: no function of that name in the project's source files (did you mean scale?)"]
    both = run_cli("trace", str(root), "--function", "scale", "--suspects", "2")
    assert both.returncode == 2 and "give --function or --suspects, not both" in both.stderr


def test_bare_tracefix_records_what_trace_records_past_the_top_ten(tmp_path):
    """The bare report traces with `trace`'s selection: the function that raised, ranked 13th
    behind helpers only the failing test runs, is the one it names (the top 10 left it out)."""
    root = _pipeline_project(tmp_path)
    steps = root / "pipe" / "steps.py"
    steps.write_text(steps.read_text().replace("    doubled = x * 2 + x // 100  # the bug shows from 100 up\n",
                                               "    doubled = x * 2 + [0][x // 100]  # the bug raises from 100 up\n"))
    result = run_cli("--quiet", cwd=root, env={"TRACEFIX_MODEL": ""})
    assert result.returncode == 1, result.stderr
    assert "tests/test_pipe.py::test_pipeline: scale -> IndexError: list index out of range (line" in result.stdout
