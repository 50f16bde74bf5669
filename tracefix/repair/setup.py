"""What every repair run fixes at its start, whatever the strategy."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tracefix.config import Config
from tracefix.repair.apply import snapshot_hashes
from tracefix.repair.records import FixReport, Progress, since
from tracefix.repair.validate import TestSettings
from tracefix.tracer.localize import Localization, locate_with_run
from tracefix.tracer.project import source_files
from tracefix.tracer.runner import RunResult


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
    """A located run's start, shared by the strategies that rank before they edit: the
    editable files, their hashes, the test settings, the ranking and its coverage run."""

    root: Path
    sources: list[str]
    hashes: dict[str, str]
    settings: TestSettings
    loc: Localization
    coverage: RunResult
    failing: list[str]
    started: float

    def nothing_failing(self) -> FixReport:
        return FixReport("nothing_failing", str(self.root), (), self.loc.functions, (), (), "", usage=None,
                         seconds=since(self.started), warnings=self.loc.warnings, outcomes=self.loc.outcomes)


def located_start(root: Path, config: Config, test_ids=(), progress: Progress = lambda _msg: None) -> Start:
    started = time.perf_counter()
    root = Path(root).resolve()
    sources, hashes, settings = run_setup(root, config)
    progress("running the tests with per-test coverage")
    loc, coverage = locate_with_run(root, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                                    pytest_args=config.pytest_args, python=config.python)
    return Start(root, sources, hashes, settings, loc, coverage, failing_tests(loc.outcomes, test_ids), started)
