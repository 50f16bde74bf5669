"""The one place a repair run turns `--strategy` into strategies.

    --decompose                  repair.decompose (split a long failing function, then debug it bottom-up)
    --strategy default           a named portfolio (config.PORTFOLIOS), run by repair.portfolio
    --strategy a,b               those strategies in order, under one budget
    --strategy baseline          repair.baseline (plain self-repair, no trace)
    --strategy mutation          repair.mutation_search (plain mutants at suspicious lines, no model)
    --strategy focused           repair.focused (samples at the marked lines, with the real inputs/outputs)
    flat | hierarchical | auto   repair.traced

A decomposing run repairs again on the split copy: it gets this function passed in, so no
module below imports this one.
"""

from __future__ import annotations

from pathlib import Path

from tracefix.config import Config, stages
from tracefix.debugger.llm import LLMClient
from tracefix.repair.baseline import Baseline
from tracefix.repair.decompose import fix_decomposed
from tracefix.repair.focused import Focused
from tracefix.repair.mutation_search import MutationSearch
from tracefix.repair.portfolio import run_portfolio
from tracefix.repair.records import FixReport, Progress
from tracefix.repair.strategy import Strategy
from tracefix.repair.traced import Traced


def strategies_for(strategy: str) -> list[Strategy]:
    """`config.strategy` (already checked by the configuration) as strategy objects, in order."""
    return [_one(name) for name in stages(strategy)]


def _one(name: str) -> Strategy:
    if name == "baseline":
        return Baseline()
    if name == "mutation":
        return MutationSearch()
    if name == "focused":
        return Focused()
    return Traced(name)  # flat | hierarchical | auto


def fix_project(root: Path, config: Config, test_ids=(), *, client: LLMClient | None = None,
                progress: Progress = lambda _msg: None) -> FixReport:
    if config.decompose:
        return fix_decomposed(root, config, test_ids, fix_project=fix_project, client=client, progress=progress)
    return run_portfolio(root, config, strategies_for(config.strategy), test_ids, client=client, progress=progress)
