"""The one place a repair run picks its strategy from the configuration.

    --decompose            repair.decompose (split a long failing function, then debug it bottom-up)
    --strategy a,b         repair.stages (one strategy after another)
    --strategy baseline    repair.baseline (plain self-repair, no trace)
    --strategy mutation    repair.mutation_search (plain mutants at suspicious lines, no model)
    flat | hierarchical | auto   repair.traced

Staged and decomposing runs repair again per stage or on the split copy: they get this
function passed in, so no module below imports this one.
"""

from __future__ import annotations

from pathlib import Path

from tracefix.config import Config
from tracefix.debugger.llm import LLMClient
from tracefix.repair.baseline import fix_baseline
from tracefix.repair.decompose import fix_decomposed
from tracefix.repair.mutation_search import fix_by_mutation
from tracefix.repair.records import FixReport, Progress
from tracefix.repair.stages import fix_in_stages
from tracefix.repair.traced import fix_traced


def fix_project(root: Path, config: Config, test_ids=(), *, client: LLMClient | None = None,
                progress: Progress = lambda _msg: None) -> FixReport:
    if config.decompose:
        return fix_decomposed(root, config, test_ids, fix_project=fix_project, client=client, progress=progress)
    if "," in config.strategy:
        return fix_in_stages(root, config, test_ids, fix_project=fix_project, client=client, progress=progress)
    if config.strategy == "mutation":
        return fix_by_mutation(root, config, test_ids, progress=progress)
    if config.strategy == "baseline":
        return fix_baseline(root, config, test_ids, client=client, progress=progress)
    return fix_traced(root, config, test_ids, client=client, progress=progress)
