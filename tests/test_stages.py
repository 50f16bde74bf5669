"""Staged repair (`--strategy baseline,flat`): each stage on what the one before left unfixed."""

from __future__ import annotations

import json

import pytest

from conftest import mocks, run_cli
from tracefix.config import Config, load_config
from tracefix.errors import InternalSignal, UserError
from tracefix.repair.fix import fix_project

from test_baseline import GOOD as FILE_GOOD, STILL_WRONG as FILE_STILL_WRONG  # whole-file answers
from test_fix import GOOD_MEAN as FUNCTION_GOOD  # a one-function answer

VERDICTS = json.dumps([{"block": 3, "correct": False, "explanation": "divides by one too many"}])


def config(tmp_path, *answers: str, **overrides) -> Config:
    return Config(model="openai/mock-model", cache_dir=None, log_path=tmp_path / "log.jsonl",
                  mock_responses=answers, **overrides)


def purposes(tmp_path) -> list[str]:
    return [json.loads(line)["purpose"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]


def test_a_later_stage_fixes_what_the_first_left_and_the_report_counts_both(fixture_copy, tmp_path):
    root = fixture_copy("average")
    before = (root / "stats/summary.py").read_text()
    report = fix_project(root, config(tmp_path, FILE_STILL_WRONG, VERDICTS, FUNCTION_GOOD,
                                      strategy="baseline,flat", max_iters=1))
    assert report.status == "fixed"
    assert purposes(tmp_path) == ["patch", "verdicts", "patch"]
    assert [c.outcome.accepted for c in report.candidates] == [False, True]
    assert [c.iteration for c in report.candidates] == [1, 2]  # numbered across the stages
    assert "(len(values) + 2)" in report.candidates[0].code  # the baseline's whole-file attempt
    assert report.usage.calls == 3 and len(report.judgments) == 1
    assert "+    return total / len(values)" in report.diff
    assert (root / "stats/summary.py").read_text() == before  # still not applied


def test_the_first_stage_that_fixes_ends_the_run(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, FILE_GOOD, strategy="baseline,flat", max_iters=1))
    assert report.status == "fixed" and purposes(tmp_path) == ["patch"]
    assert report.judgments == ()


def test_no_stage_fixing_reports_no_fix_with_every_attempt(fixture_copy, tmp_path):
    root = fixture_copy("average")
    still = FUNCTION_GOOD.replace("len(values)\n", "(len(values) - 1)\n")
    report = fix_project(root, config(tmp_path, VERDICTS, still, FILE_STILL_WRONG,
                                      strategy="flat,baseline", max_iters=1))
    assert report.status == "no_fix" and report.diff == ""
    assert purposes(tmp_path) == ["verdicts", "patch", "patch"]
    assert len(report.candidates) == 2 and not any(c.outcome.accepted for c in report.candidates)


@pytest.mark.parametrize("value", ["baseline,ldb", "flat,flat", "baseline,"])
def test_a_bad_stage_list_is_a_clear_error(tmp_path, value):
    with pytest.raises(UserError, match="comma-separated, each once"):
        load_config(tmp_path, {"strategy": value})


def test_cli_takes_stages(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("fix", str(root), "--model", "openai/mock-model", "--cache", "off", "--max-iters", "1",
                     "--strategy", "baseline,flat", env=mocks(FILE_STILL_WRONG, VERDICTS, FUNCTION_GOOD))
    assert result.returncode == 0, result.stderr
    assert "+    return total / len(values)" in result.stdout


def test_a_stage_that_cannot_start_is_skipped_with_a_warning(fixture_copy, tmp_path):
    # shipping's failing test ends in a wrong result: no traceback names a source file, and
    # the project has several, so the baseline cannot tell which one to rewrite.
    root = fixture_copy("shipping")
    report = fix_project(root, config(tmp_path, *["I do not know."] * 8, strategy="baseline,flat", max_iters=1))
    assert report.status == "no_fix"
    assert any(w.startswith("baseline skipped: the baseline strategy cannot tell which file") for w in report.warnings)
    assert "patch" in purposes(tmp_path)  # the flat stage still ran
    with pytest.raises(InternalSignal, match="cannot tell which file"):
        fix_project(root, config(tmp_path, strategy="baseline", max_iters=1))


def test_without_a_model_the_model_free_stage_runs_and_the_others_are_named_as_skipped(fixture_copy):
    # offbyone: the mutation stage fixes it alone. shipping: no single mutant fixes it, and the
    # auto stage is skipped for want of a model, with a warning that says so.
    root = fixture_copy("offbyone")
    fixed = run_cli("fix", str(root), "--strategy", "mutation,auto", "--test-timeout", "2", timeout=300)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith("diff --git")
    assert "model: " not in fixed.stderr  # no client, no usage line

    report = fix_project(fixture_copy("shipping"), Config(strategy="mutation,auto", test_timeout=2))
    assert report.status == "no_fix"
    assert any("auto skipped: no model configured" in w for w in report.warnings)
    assert report.usage is None
