"""Portfolios: strategies in order under one budget, sharing one located start and one trace."""

from __future__ import annotations

import json
import shutil

import pytest

import tracefix.repair.setup as setup
from tracefix.config import PORTFOLIOS, Config, load_config, stages
from tracefix.errors import UserError
from tracefix.repair.fix import fix_project, strategies_for

from test_fix import GOOD_MEAN
from test_stages import config, purposes

WRONG_MEAN = GOOD_MEAN.replace("len(values)\n", "(len(values) - 1)\n")
VERDICTS = json.dumps([{"block": 3, "correct": False, "explanation": "divides by one too many"}])


def counting(monkeypatch, name: str) -> list:
    calls: list = []
    real = getattr(setup, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(setup, name, wrapper)
    return calls


def test_a_named_portfolio_stands_for_its_strategies():
    assert stages("default") == list(PORTFOLIOS["default"])
    assert stages("model-free,auto") == ["mutation", "auto"]
    assert [s.name for s in strategies_for("default")] == ["mutation", "baseline", "auto"]


def test_the_default_strategy_is_the_default_portfolio(tmp_path):
    assert Config().strategy == "default"
    assert load_config(tmp_path).config.strategy == "default"


@pytest.mark.parametrize("value", ["defaults", "default,mutation"])
def test_an_unknown_or_repeated_name_is_a_clear_error(tmp_path, value):
    with pytest.raises(UserError, match="strategy"):
        load_config(tmp_path, flags={"strategy": value})


def test_stages_share_one_coverage_run_and_one_trace(fixture_copy, tmp_path, monkeypatch):
    located = counting(monkeypatch, "locate_with_run")
    traced = counting(monkeypatch, "trace_tests")
    root = fixture_copy("average")
    # focused: three samples, all still wrong; then flat: a verdict and the right function
    report = fix_project(root, config(tmp_path, WRONG_MEAN, WRONG_MEAN, WRONG_MEAN, VERDICTS, GOOD_MEAN,
                                      strategy="focused,flat", max_iters=1))
    assert report.status == "fixed"
    assert purposes(tmp_path) == ["patch", "patch", "patch", "verdicts", "patch"]
    assert len(located) == 1 and len(traced) == 1  # the second stage reran neither
    assert report.usage.calls == 5  # one budget over both stages


def test_a_spent_time_budget_skips_the_later_stages_and_says_so(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, strategy="mutation,baseline", budget_seconds=0.01))
    assert report.status == "no_fix" and report.stopped_by == "seconds"
    assert any("skipped: the time budget" in w for w in report.warnings)
    assert not (tmp_path / "log.jsonl").exists()  # no model call was made


def test_the_baseline_alone_runs_the_tests_once_without_coverage(fixture_copy, tmp_path, monkeypatch):
    located = counting(monkeypatch, "locate_with_run")
    plain = counting(monkeypatch, "run_tests")
    root = fixture_copy("average")
    from test_baseline import GOOD as FILE_GOOD
    report = fix_project(root, config(tmp_path, FILE_GOOD, strategy="baseline", max_iters=1))
    assert report.status == "fixed"
    assert located == [] and len(plain) == 1


def test_verdicts_off_asks_for_the_fix_alone(fixture_copy, tmp_path):
    root = fixture_copy("average")
    report = fix_project(root, config(tmp_path, GOOD_MEAN, strategy="flat", verdicts="off", max_iters=1))
    assert report.status == "fixed" and purposes(tmp_path) == ["patch"]
    assert report.judgments[0].note == "verdicts off"


def test_verdicts_auto_leaves_them_out_for_a_model_named_small_and_on_asks_for_them(fixture_copy, tmp_path):
    from dataclasses import replace

    small = "openai/qwen2.5-coder-1.5b"
    report = fix_project(fixture_copy("average"), replace(config(tmp_path, GOOD_MEAN, strategy="flat", max_iters=1),
                                                          model=small))
    assert report.status == "fixed" and purposes(tmp_path) == ["patch"]
    assert report.judgments[0].note.startswith("verdicts off: a small model (1.5B by its name)")
    (tmp_path / "log.jsonl").unlink()
    shutil.rmtree(tmp_path / "average")
    asked = fix_project(fixture_copy("average"), replace(config(tmp_path, VERDICTS, GOOD_MEAN, strategy="flat",
                                                                max_iters=1, verdicts="on"), model=small))
    assert asked.status == "fixed" and purposes(tmp_path) == ["verdicts", "patch"]


@pytest.mark.parametrize("model, size", [
    ("openai/qwen2.5-coder-1.5b", 1.5), ("ollama/llama3:8b", 8), ("mixtral-8x7b-instruct", 56),
    ("Qwen/Qwen2.5-Coder-32B-Instruct", 32), ("gemma-2b", 2), ("gpt-4o", None), ("gpt-3.5-turbo", None),
    ("claude-3-5-sonnet", None), (None, None)])
def test_a_models_size_is_read_from_its_name_only_where_it_states_one(model, size):
    from tracefix.debugger.model_size import parameters_b, small_model

    assert parameters_b(model) == size
    assert small_model(model) == (size is not None and size <= 15)


def test_verdicts_must_be_auto_on_or_off(tmp_path):
    with pytest.raises(UserError, match="verdicts"):
        load_config(tmp_path, flags={"verdicts": "sometimes"})
