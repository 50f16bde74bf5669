"""The one interface every repair strategy implements, and nothing else.

A strategy proposes candidate edits for a failure that is already located (a `Start`),
validates them, and reports. It never runs the tests from scratch, never owns the model
client and never decides what comes after it: the portfolio (`repair.portfolio`) does, so
every strategy spends the same budget and reads the same coverage and trace runs.

    baseline      repair.baseline         the whole file from the code and the errors (no trace)
    mutation      repair.mutation_search  plain mutants at the suspicious lines (no model)
    focused       repair.focused          several model samples at the marked lines, with real inputs/outputs
    flat | hierarchical | auto
                  repair.traced           the LDB-style loop: block trace, verdicts, a fix per iteration

`repair.fix` is the one place names become strategies.
"""

from __future__ import annotations

from typing import Protocol

from tracefix.config import Config
from tracefix.debugger.llm import LLMClient
from tracefix.repair.records import FixReport, Progress
from tracefix.repair.setup import Start


class Strategy(Protocol):
    name: str  # as `--strategy` spells it
    uses_model: bool  # False: runs without a model configured, and costs no tokens
    located: bool  # needs the coverage ranking (a located start) rather than a plain test run

    def repair(self, start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
        """A validated fix of `start.failing`, or the best attempt. `client` is None only for a
        strategy that does not use a model; a spent budget ends the attempt (`report.stopped_by`)."""
        ...
