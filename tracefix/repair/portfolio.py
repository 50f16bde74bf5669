"""A portfolio: strategies one after another under one budget, each on what the one before left unfixed.

    --strategy default         mutation, then baseline, then auto (config.PORTFOLIOS)
    --strategy baseline,auto   the plain self-repair first; when it finds no fix, the trace

Every strategy starts from the user's unchanged code and reads the same `Start`: one test
run with per-test coverage (or a plain run when no strategy ranks), and one block trace
recorded the first time a strategy asks for it. One model client serves them all, so the
token and cost budgets count every stage; the time budget counts from the start. The first
validated fix, or a spent budget, ends the run.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from tracefix.config import Config
from tracefix.debugger.llm import LLMClient
from tracefix.repair.baseline import NoFileToFix
from tracefix.repair.checked_by import unchecked_warning
from tracefix.repair.records import FixReport, Progress, since
from tracefix.repair.setup import located_start, plain_start
from tracefix.repair.strategy import Strategy


def run_portfolio(root: Path, config: Config, strategies: Sequence[Strategy], test_ids=(), *,
                  client: LLMClient | None = None, progress: Progress = lambda _msg: None) -> FixReport:
    if client is None and config.model and any(s.uses_model for s in strategies):
        client = LLMClient(config)
    begin = located_start if any(s.located for s in strategies) else plain_start
    start = begin(root, config, test_ids, progress)
    if not start.failing:
        return start.nothing_failing()
    staged = len(strategies) > 1
    reports: list[FixReport] = []
    skipped: list[str] = []
    done = 0
    out_of_time = False
    for strategy in strategies:
        if staged and client is None and strategy.uses_model:  # alone, it says itself what it lacks
            skipped.append(f"{strategy.name} skipped: no model configured (pass --model or set TRACEFIX_MODEL to "
                           f"let a model try what the earlier stages could not)")
            continue
        if start.seconds_left(config) == 0:
            skipped.append(f"{strategy.name} skipped: the time budget of {config.budget_seconds:g}s is spent")
            out_of_time = True
            break
        try:
            report = strategy.repair(start, config, client, _prefixed(progress, strategy.name) if staged else progress)
        except NoFileToFix as exc:
            if not staged:
                raise
            skipped.append(f"{strategy.name} skipped: {exc}")
            continue
        reports.append(shifted(report, done))
        done += max(config.max_iters, max((c.iteration for c in report.candidates), default=0))
        if report.status != "no_fix" or report.stopped_by:  # fixed, or a budget all stages share is spent
            break
    if not reports and out_of_time:  # the tests alone took the whole time budget
        return FixReport("no_fix", str(start.root), tuple(start.failing), start.suspects, (), (), "",
                         usage=client.usage if client else None, seconds=since(start.started),
                         warnings=(*start.warnings, *skipped), outcomes=start.outcomes, stopped_by="seconds")
    if not reports:
        raise NoFileToFix("; ".join(skipped))
    report = merged(reports, client, time.perf_counter() - start.started, skipped)
    if report.status == "fixed":
        weak = unchecked_warning(start.root, report.diff, start.coverage, start.failing, start.functions_ran)
        if weak:
            report = replace(report, warnings=(*report.warnings, weak))
    return replace(report, stopped_by="seconds") if out_of_time and not report.stopped_by else report


def _prefixed(progress: Progress, name: str) -> Progress:
    return lambda message: progress(f"{name}: {message}")


def shifted(report: FixReport, done: int) -> FixReport:
    """The report with its iterations numbered after the earlier stages', so the story of the
    whole run reads in order."""
    return replace(report, judgments=tuple(replace(j, iteration=j.iteration + done) for j in report.judgments),
                   candidates=tuple(replace(c, iteration=c.iteration + done) for c in report.candidates))


def merged(reports: list[FixReport], client: LLMClient | None, seconds: float, skipped=()) -> FixReport:
    """One report for the whole run: the last stage's outcome, every stage's judgments and
    candidates in order, the usage of all of them."""
    last = reports[-1]
    return replace(
        last,
        judgments=tuple(j for r in reports for j in r.judgments),
        candidates=tuple(c for r in reports for c in r.candidates),
        usage=client.usage if client is not None else None,
        seconds=round(seconds, 3),
        warnings=tuple(dict.fromkeys([*skipped, *(w for r in reports for w in r.warnings)])),
        hierarchy=next((r.hierarchy for r in reversed(reports) if r.hierarchy is not None), None),
    )
