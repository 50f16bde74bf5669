"""Staged repair: one strategy after another, each on what the one before left unfixed.

    --strategy baseline,auto   the plain self-repair first; when it finds no fix, the trace

On the corpus benchmark (bench/CORPUS.md) with a 1.5B model, plain self-repair fixed the most
bugs at a fraction of the tokens, and the traced strategies fixed others that it missed, with
smaller patches. A staged run takes both: each stage gets the full `max_iters`, starts from the
user's unchanged code, and the first stage that validates a patch ends the run.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from tracefix.config import Config, needs_model, stages
from tracefix.debugger.llm import LLMClient
from tracefix.repair.baseline import NoFileToFix
from tracefix.repair.records import FixReport, Progress
from tracefix.repair.traced import FixOne


def fix_in_stages(root: Path, config: Config, test_ids=(), *, fix_project: FixOne,
                  client: LLMClient | None = None, progress: Progress = lambda _msg: None) -> FixReport:
    """`fix_project` runs one stage: the dispatcher passes itself (no import back to it)."""
    started = time.perf_counter()
    # One client serves every model stage, so its usage counts them all. Without a model,
    # the model-free stages still run and the others are skipped with a word about them.
    if client is None and config.model:
        client = LLMClient(config)
    reports: list[FixReport] = []
    skipped: list[str] = []
    done = 0
    for step in stages(config.strategy):
        def staged(message: str, step: str = step) -> None:
            progress(f"{step}: {message}")

        if client is None and needs_model(step):
            skipped.append(f"{step} skipped: no model configured (pass --model or set TRACEFIX_MODEL to let "
                           f"a model try what the earlier stages could not)")
            continue
        try:
            report = fix_project(root, replace(config, strategy=step), test_ids, client=client, progress=staged)
        except NoFileToFix as exc:
            skipped.append(f"{step} skipped: {exc}")
            continue
        reports.append(shifted(report, done))
        done += config.max_iters  # a stage that found no fix used all of its iterations
        if report.status != "no_fix":  # fixed, or nothing failing: no later stage has work
            break
        if report.stopped_by:  # one client serves every stage: its spent budget is spent for all
            break
    if not reports:
        raise NoFileToFix("; ".join(skipped))
    return merged(reports, client, time.perf_counter() - started, skipped)


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
