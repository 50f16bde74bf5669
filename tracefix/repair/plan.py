"""Which functions the repair loop tries first: the ranking (flat) or the failing call tree (hierarchical).

`config.strategy`: "flat" keeps the suspiciousness ranking; "hierarchical" judges the
functions on the failing path bottom-up (`debugger.hierarchy`) and tries the prime suspect
first; "auto" is hierarchical when the failing path runs more than one project function.
A hierarchical plan also carries, per function, the helper checks its patches must pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tracefix.config import Config
from tracefix.debugger.hierarchy import Hierarchy, in_order, judge_bottom_up, wants_hierarchy
from tracefix.debugger.llm import LLMClient
from tracefix.repair.helper_checks import HelperCheck, checks_from, stable_checks
from tracefix.tracer.localize import Localization, locate_with_run
from tracefix.tracer.records import FunctionInfo, TestTrace
from tracefix.tracer.runner import RunResult


def located(root: Path, config: Config) -> tuple[Localization, RunResult]:
    """The configured `locate_with_run`: the coverage run's per-test lines pick the passing
    tests whose calls hierarchical debugging shows."""
    return locate_with_run(root, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                           pytest_args=config.pytest_args, python=config.python)


class Plan:
    """The repair order, and what hierarchical judging found (None under the flat strategy)."""

    def __init__(self, root: Path, config: Config, hierarchy: Hierarchy | None, infos: dict[str, FunctionInfo]):
        self.root = root
        self.config = config
        self.hierarchy = hierarchy
        self._infos = infos
        self._checks: dict[str, tuple[HelperCheck, ...]] = {}

    def ordered(self, targets: list) -> list:
        return in_order(targets, self.hierarchy.order) if self.hierarchy else targets

    def notes_for(self, function: str) -> list[str]:
        return self.hierarchy.notes_for(function) if self.hierarchy else []

    def checks_for(self, function: str) -> tuple[HelperCheck, ...]:
        """Helper checks for patches of `function`: its passing-test calls the model did not call
        wrong, that pass on the unpatched code (computed once per function)."""
        if self.hierarchy is None or function not in self._infos:
            return ()
        if function not in self._checks:
            checks = checks_from(self.root, self._infos[function], self.hierarchy.passing_pairs(function))
            self._checks[function] = stable_checks(self.root, checks, test_timeout=self.config.test_timeout,
                                                   run_timeout=self.config.run_timeout,
                                                   pytest_args=self.config.pytest_args,
                                                   python=self.config.python)
        return self._checks[function]


def plan_repair(root: Path, config: Config, client: LLMClient, traces: tuple[TestTrace, ...],
                coverage: RunResult | None, sources: list[str],
                progress: Callable[[str], None] = lambda _msg: None) -> Plan:
    infos = {f.key: f for t in traces for f in t.functions}
    if not wants_hierarchy(config.strategy, traces):
        return Plan(root, config, None, infos)
    progress("judging the functions on the failing path, leaves first")
    hierarchy = judge_bottom_up(root, client, config, traces, coverage, sources, progress=progress)
    return Plan(root, config, hierarchy, infos)
