"""The no-trace baseline (`--strategy baseline`): whole-file self-repair, validated like every fix."""

from __future__ import annotations

import json

import pytest

from conftest import mocks, run_cli
from tracefix.config import Config
from tracefix.errors import InternalSignal
from tracefix.repair.baseline import check_file_rewrite, file_to_fix, with_edges_of
from tracefix.repair.fix import fix_project
from tracefix.debugger.answers import RejectedCandidate
from tracefix.tracer.runner import TestOutcome as Outcome

SUMMARY = '''"""Small statistics helpers."""


def mean(values):
    """Arithmetic mean of a non-empty list of numbers."""
    total = 0
    for v in values:
        total += v
    return total / {divisor}


def spread(values):
    """Largest minus smallest value."""
    return max(values) - min(values)
'''
GOOD = "The mean divides by one too many.\n```python\n" + SUMMARY.format(divisor="len(values)") + "```"
STILL_WRONG = "Off by one.\n```python\n" + SUMMARY.format(divisor="(len(values) + 2)") + "```"


def config(tmp_path, *answers: str, **overrides) -> Config:
    return Config(model="openai/mock-model", cache_dir=None, strategy="baseline", log_path=tmp_path / "log.jsonl",
                  mock_responses=answers, **overrides)


def prompts(tmp_path) -> list[str]:
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    return [r["messages"][-1]["content"] for r in rows if "response" in r]


def test_baseline_fixes_from_code_tests_and_error_without_any_trace(fixture_copy, tmp_path):
    root = fixture_copy("average")
    before = (root / "stats/summary.py").read_text()
    report = fix_project(root, config(tmp_path, GOOD))
    assert report.status == "fixed"
    assert "+    return total / len(values)" in report.diff
    assert report.judgments == () and report.usage.calls == 1
    assert (root / "stats/summary.py").read_text() == before  # not applied
    [prompt] = prompts(tmp_path)
    assert "def test_mean" in prompt and "ZeroDivisionError" not in prompt
    assert "assert" in prompt  # the error text of the failing test
    assert "Execution" not in prompt and "[block" not in prompt and "judged" not in prompt  # no trace


def test_rejected_attempt_comes_back_with_what_the_tests_said(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, STILL_WRONG, GOOD, max_iters=2))
    assert report.status == "fixed"
    assert [c.outcome.accepted for c in report.candidates] == [False, True]
    first, second = prompts(tmp_path)
    assert "previous attempt" not in first
    assert "(len(values) + 2)" in second and "still fail" in second


def test_answer_dropping_a_function_is_rejected_before_any_test_runs(fixture_copy, tmp_path):
    root = fixture_copy("average")
    dropped = "```python\ndef mean(values):\n    return sum(values) / len(values)\n```"
    report = fix_project(root, config(tmp_path, dropped, max_iters=1))
    assert report.status == "no_fix"
    assert report.candidates[0].outcome is None and "drops spread" in report.candidates[0].rejected


def test_file_rewrite_checks():
    original = "def f(x):\n    return x + 1\n\n\nclass C:\n    pass\n"
    check_file_rewrite(original, "def f(x):\n    return x\n\n\nclass C:\n    pass\n")
    with pytest.raises(RejectedCandidate, match="repeats"):
        check_file_rewrite(original, "def f(x):\n    # same\n    return x + 1\n\nclass C: pass\n")
    with pytest.raises(RejectedCandidate, match="drops C"):
        check_file_rewrite(original, "def f(x):\n    return x\n")
    with pytest.raises(RejectedCandidate, match="does not parse"):
        check_file_rewrite(original, "def f(x:\n")


def test_whole_file_answer_keeps_the_files_blank_edges_so_the_diff_shows_only_the_fix():
    assert with_edges_of("\ndef f():\n    pass\n\n", "def f():\n    return 1\n") == "\ndef f():\n    return 1\n\n"
    assert with_edges_of("def f():\n    pass", "def f():\n    return 1\n") == "def f():\n    return 1"


def test_file_to_fix_follows_the_innermost_source_frame():
    frames = (("tests/test_cart.py", 5, "test_total"), ("shop/cart.py", 9, "total"), ("shop/money.py", 3, "cents"))
    failing = [Outcome("tests/test_cart.py::test_total", "failed", frames=frames)]
    assert file_to_fix(failing, ["shop/cart.py", "shop/money.py"]) == "shop/money.py"
    assert file_to_fix([Outcome("t.py::t", "failed")], ["only.py"]) == "only.py"
    with pytest.raises(InternalSignal, match="cannot tell which file"):
        file_to_fix([Outcome("t.py::t", "failed")], ["a.py", "b.py"])


def test_cli_takes_the_baseline_strategy(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("fix", str(root), "--model", "openai/mock-model", "--cache", "off", "--strategy", "baseline",
                     env=mocks(GOOD))
    assert result.returncode == 0, result.stderr
    assert "+    return total / len(values)" in result.stdout
    bad = run_cli("fix", str(root), "--model", "openai/mock-model", "--strategy", "guess")
    assert bad.returncode == 2 and "'baseline'" in bad.stderr and "Traceback" not in bad.stderr


def test_a_spent_token_budget_ends_the_run_as_no_fix_and_names_the_budget(fixture_copy, tmp_path):
    root = fixture_copy("average")
    wrong = GOOD.replace("len(values)", "(len(values) + 2)")
    report = fix_project(root, config(tmp_path, wrong, GOOD, max_iters=3, budget_tokens=1))
    assert report.status == "no_fix" and report.stopped_by == "tokens"
    assert len([c for c in report.candidates if c.outcome is not None]) == 1  # the second request never went out
    assert any("token budget of 1 spent" in w for w in report.warnings)
