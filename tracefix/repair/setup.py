"""What every repair run fixes at its start, whatever the strategy: one `Start`, shared.

A portfolio runs several strategies on the same failure; they all read the same test
outcomes, the same coverage ranking and (for the ones that read traces) the same block
trace, so each is measured once per run, not once per strategy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from tracefix.config import Config
from tracefix.repair.apply import snapshot_hashes
from tracefix.repair.records import FixReport, Progress, since
from tracefix.repair.validate import TestSettings
from tracefix.tracer.localize import Localization, Suspect, locate_with_run
from tracefix.tracer.project import check_project, source_files
from tracefix.tracer.records import FunctionInfo, TestTrace
from tracefix.tracer.runner import RunResult, TestOutcome, check_usable, run_tests
from tracefix.tracer.selection import functions_ran
from tracefix.tracer.tracing import SUSPECTS_TRACED, trace_tests


def run_setup(root: Path, config: Config) -> tuple[list[str], dict[str, str], TestSettings]:
    """What every repair run fixes at its start: the editable files, their hashes (so --apply
    can refuse files that change meanwhile) and the test settings."""
    sources = source_files(root, list(config.include), list(config.exclude))
    return sources, snapshot_hashes(root, sources), TestSettings(config.test_timeout, config.run_timeout,
                                                                 tuple(config.pytest_args), config.python)


def failing_tests(outcomes, test_ids=()) -> list[str]:
    """Node ids of the failing tests, limited to those the given ids name (a file, a class, a test)."""
    failing = [o.nodeid for o in outcomes if o.bad]
    if test_ids:
        failing = [n for n in failing if any(n == t or n.startswith(t.rstrip(":") + "::") for t in test_ids)]
    return failing


@dataclass(frozen=True)
class Start:
    """A run's start, shared by every strategy of a portfolio: the editable files, their
    hashes, the test settings, every test's outcome before any edit, and (for a located
    start) the suspiciousness ranking and its coverage run."""

    root: Path
    sources: list[str]
    hashes: dict[str, str]
    settings: TestSettings
    outcomes: tuple[TestOutcome, ...]
    failing: list[str]
    started: float  # a perf_counter reading: the run's seconds and its time budget count from here
    loc: Localization | None = None
    coverage: RunResult | None = None
    # What is worked out once for every strategy that reads it: the failing tests' block
    # trace, the functions each test of the coverage run ran.
    _once: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def suspects(self) -> tuple[Suspect, ...]:
        """Ranked project functions in the editable files (none for a plain start)."""
        if self.loc is None:
            return ()
        editable = set(self.sources)
        return tuple(s for s in self.loc.functions if s.path in editable and s.function)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.loc.warnings if self.loc is not None else ()

    def trace_run(self, config: Config) -> RunResult:
        """The failing tests traced at the top suspects (all functions when nothing is ranked)."""
        if "run" not in self._once:
            functions = [s.function for s in self.suspects[:SUSPECTS_TRACED]] or None
            self._once["run"] = trace_tests(self.root, self.failing, functions=functions, files=self.sources,
                                              test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                                              pytest_args=config.pytest_args, python=config.python)
        return self._once["run"]

    def functions_ran(self) -> Mapping[str, frozenset[str]]:
        """nodeid -> the project functions that test ran in the coverage run (empty without one)."""
        if "ran" not in self._once:
            self._once["ran"] = functions_ran(self.coverage, self.root) if self.coverage is not None else {}
        return self._once["ran"]

    def targets(self, config: Config) -> list[tuple[FunctionInfo, str]]:
        """The functions worth editing, from the trace run (`targets_of`)."""
        return targets_of(self.suspects, self.trace_run(config).traces)

    def trace_of(self, config: Config, nodeid: str) -> TestTrace:
        return next(t for t in self.trace_run(config).traces if t.nodeid == nodeid)

    def seconds_left(self, config: Config) -> float | None:
        """What is left of `budget_seconds` (None: no time budget)."""
        if config.budget_seconds is None:
            return None
        return max(0.0, config.budget_seconds - (time.perf_counter() - self.started))

    def nothing_failing(self) -> FixReport:
        suspects = self.loc.functions if self.loc is not None else ()
        return FixReport("nothing_failing", str(self.root), (), suspects, (), (), "", usage=None,
                         seconds=since(self.started), warnings=self.warnings, outcomes=self.outcomes)


def targets_of(suspects, traces) -> list[tuple[FunctionInfo, str]]:
    """(function, a failing test that ran it) in suspiciousness order, each function once; a
    function the failing tests ran that the ranking lacks comes after the ranked ones."""
    ran: dict[str, tuple[FunctionInfo, str]] = {}
    for trace in traces:
        if trace.outcome == "passed":
            continue
        infos = {f.key: f for f in trace.functions}
        for call in trace.calls:
            if call.function in infos and call.function not in ran and call.visits:
                ran[call.function] = (infos[call.function], trace.nodeid)
    ordered = [ran[s.function] for s in suspects if s.function in ran]
    ordered += [v for k, v in ran.items() if all(k != s.function for s in suspects)]
    return ordered


def located_start(root: Path, config: Config, test_ids=(), progress: Progress = lambda _msg: None) -> Start:
    """The start of strategies that rank before they edit: one run with per-test coverage."""
    started = time.perf_counter()
    root = Path(root).resolve()
    sources, hashes, settings = run_setup(root, config)
    progress("running the tests with per-test coverage")
    loc, coverage = locate_with_run(root, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                                    pytest_args=config.pytest_args, python=config.python)
    return Start(root, sources, hashes, settings, loc.outcomes, failing_tests(loc.outcomes, test_ids), started,
                 loc, coverage)


def plain_start(root: Path, config: Config, test_ids=(), progress: Progress = lambda _msg: None) -> Start:
    """The start of a run whose strategies read no ranking (the baseline alone): a plain test run."""
    started = time.perf_counter()
    root = check_project(Path(root)).resolve()
    sources, hashes, settings = run_setup(root, config)
    progress("running the tests")
    run = run_tests(root, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                    pytest_args=config.pytest_args, python=config.python)
    check_usable(run, root=root)
    return Start(root, sources, hashes, settings, run.outcomes, failing_tests(run.outcomes, test_ids), started)
