"""The traced repair loop (flat or hierarchical): localize, trace, ask for verdicts and a fix, keep only validated patches.

    tests -> per-test coverage (suspects) -> block trace of the failing tests
          -> model verdicts per block -> candidate function -> scratch copy + tests
          -> accepted: unified diff (and, with apply, the user's files)

Each iteration targets one function: the most suspicious one that the failing tests
actually ran; after two rejected attempts the next one down the ranking is tried, and
after the last one the first again, until `max_iters` is spent.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Protocol

from tracefix.config import Config
from tracefix.debugger.answers import MalformedAnswer, parse_verdicts
from tracefix.debugger.llm import BudgetExhausted, LLMClient, count_tokens
from tracefix.debugger.model_size import parameters_b, small_model
from tracefix.debugger.prompts import (FailureContext, calls_worth_showing, failure_context, fix_messages,
                                       verdict_messages)
from tracefix.repair.apply import apply_patch
from tracefix.repair.asking import RETRY_TEMPERATURE, complete_with_code, usable_function
from tracefix.repair.diff import unified_diff
from tracefix.repair.patch import apply_edits_in_memory
from tracefix.repair.records import Candidate, FixReport, Judgment, Progress, since
from tracefix.repair.retrace import retrace_candidate
from tracefix.repair.setup import Start
from tracefix.repair.plan import plan_repair
from tracefix.repair.validate import Outcome, validate
from tracefix.tracer.records import FunctionInfo, TestTrace

ATTEMPTS_PER_TARGET = 2
OTHER_FAILURES = 2  # failing tests shown besides the traced one
VERDICT_TOKENS = (40, 50)  # answer limit for a verdict list: fixed part, per block (a small model can run on)


class FixOne(Protocol):
    """What the decomposing run calls for each inner repair: `repair.fix.fix_project`."""

    def __call__(self, root: Path, config: Config, test_ids=(), *, client: LLMClient | None = None,
                 progress: Progress = ...) -> FixReport: ...


class Traced:
    """`--strategy flat | hierarchical | auto`: the block trace and the model's verdicts drive each fix."""

    uses_model = True
    located = True

    def __init__(self, name: str = "auto") -> None:
        self.name = name

    def repair(self, start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
        return fix_traced(start, replace(config, strategy=self.name), client, progress)


def fix_traced(start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
    if not start.failing:
        return start.nothing_failing()
    root, sources, hashes, settings = start.root, start.sources, start.hashes, start.settings
    loc, coverage, failing, started = start.loc, start.coverage, start.failing, start.started

    client = client or LLMClient(config)
    suspects = start.suspects
    progress(f"tracing {len(failing)} failing tests")
    run = start.trace_run(config)
    traces = {t.nodeid: t for t in run.traces}
    targets = start.targets(config)
    if not targets:
        return FixReport("no_fix", str(root), tuple(failing), suspects, (), (), "", usage=client.usage,
                         seconds=since(started), warnings=(*loc.warnings, "the failing tests run no function "
                                                            "of the project's source files"))
    plan = plan_repair(root, config, client, run.traces, coverage, sources, progress)
    targets = plan.ordered(targets)

    count = _counter(config.model)
    judgments: list[Judgment] = []
    candidates: list[Candidate] = []
    previous: dict[str, list[tuple[str, str]]] = {}
    target_index, attempts = 0, 0
    stopped_by, stop_note = "", ""
    try:
        for iteration in range(1, config.max_iters + 1):
            # Past the end of the ranking, start again from the top: iterations are the budget.
            info, nodeid = targets[target_index % len(targets)]
            trace = traces[nodeid]
            outcome = next(o for o in run.outcomes if o.nodeid == nodeid)
            failure = replace(failure_context(root, nodeid, outcome.message, outcome.longrepr),
                              others=_other_failures(root, run.outcomes, nodeid, info.key, traces))
            progress(f"iteration {iteration}: judging the blocks of {info.qualname}")
            judgment = _judge(client, root, info, trace, failure, count, config.token_budget, iteration,
                              config.verdicts, config.model)
            judgments.append(judgment)
            # Verdicts inform the fix prompt but never skip a target: a small model often calls
            # every block correct, and the ranking is the stronger signal.
            wrong = [v for v in judgment.verdicts if not v.correct]
            notes = [f"block {v.block}: {v.explanation}" for v in wrong] + plan.notes_for(info.key)
            progress(f"iteration {iteration}: asking for a fix of {info.qualname}")
            for variant in range(config.candidates):
                candidate = _candidate(client, root, info, trace, failure, count, config, notes,
                                       previous.get(info.key, []), iteration, variant)
                if candidate.outcome is None:
                    candidates.append(candidate)
                    previous.setdefault(info.key, []).append((candidate.code, candidate.rejected))
                    continue
                progress(f"iteration {iteration}: validating the candidate for {info.qualname}")
                edited = apply_edits_in_memory(root, info, candidate.code)
                result = validate(root, edited, loc.outcomes, failing, settings, plan.checks_for(info.key))
                candidate = Candidate(iteration, info.key, candidate.code, result)
                candidates.append(candidate)
                if result.accepted:
                    diff = unified_diff(root, edited)
                    applied: tuple[str, ...] = ()
                    if config.apply:
                        applied = tuple(apply_patch(root, edited, hashes, config.allow_dirty))
                    return FixReport("fixed", str(root), tuple(failing), suspects, tuple(judgments), tuple(candidates),
                                     diff, edited, applied, client.usage, since(started), loc.warnings,
                                     loc.outcomes, plan.hierarchy)
                # Show the model how its attempt ran, unless no iteration is left to use it.
                how = None
                if result.still_failing and iteration < config.max_iters:
                    progress(f"iteration {iteration}: tracing the rejected candidate")
                    how = retrace_candidate(root, edited, result.still_failing[0], info.key, settings)
                previous.setdefault(info.key, []).append(
                    (candidate.code, result.reason + ("; " + "; ".join(result.messages) if result.messages else ""),
                     how))
            attempts += 1
            if attempts >= ATTEMPTS_PER_TARGET:
                target_index, attempts = target_index + 1, 0
    except BudgetExhausted as exc:  # a spent budget ends the run with what it has
        stopped_by, stop_note = exc.budget, str(exc)
    return FixReport("no_fix", str(root), tuple(failing), suspects, tuple(judgments), tuple(candidates), "",
                     usage=client.usage, seconds=since(started),
                     warnings=(*loc.warnings, *([stop_note] if stop_note else [])), outcomes=loc.outcomes,
                     hierarchy=plan.hierarchy, stopped_by=stopped_by)


def _other_failures(root: Path, outcomes, nodeid: str, function: str, traces: dict[str, TestTrace],
                    limit: int = OTHER_FAILURES) -> tuple[FailureContext, ...]:
    """Up to `limit` other failing tests that ran `function`, in run order."""
    others = [o for o in outcomes if o.bad and o.nodeid != nodeid and o.nodeid in traces
              and any(c.function == function for c in traces[o.nodeid].calls)]
    return tuple(failure_context(root, o.nodeid, o.message, "") for o in others[:limit])


def _judge(client: LLMClient, root: Path, info: FunctionInfo, trace: TestTrace, failure: FailureContext,
           count, budget: int, iteration: int, verdicts: str = "auto", model: str | None = None) -> Judgment:
    if verdicts == "off":  # the fix prompt's inline values only: one request per attempt instead of two
        return Judgment(iteration, info.key, (), "verdicts off")
    if verdicts == "auto" and small_model(model):  # measured: no fix gained, twice the tokens (model_size)
        return Judgment(iteration, info.key, (), f"verdicts off: a small model ({parameters_b(model):g}B by its "
                        f"name); verdicts = \"on\" asks for them")
    if verdicts == "auto" and len({v.block for c in calls_worth_showing(trace, info.key) for v in c.visits}) == 1:
        # One block is the whole function: the fix prompt shows the same trace, and in the
        # corpus logs the 1.5B model called a buggy lone block correct 16 times in 16.
        return Judgment(iteration, info.key, (), "one block ran: the fix judges it, no separate verdict")
    messages, block_ids = verdict_messages(root, info, trace, failure, count, budget)
    if not block_ids:
        return Judgment(iteration, info.key, (), "no block of this function was recorded")
    limit = VERDICT_TOKENS[0] + VERDICT_TOKENS[1] * len(block_ids)
    for attempt in range(2):  # one re-ask on a malformed answer, then go on without verdicts
        reply = client.complete(messages, purpose="verdicts", variant=attempt, max_tokens=limit)
        try:
            return Judgment(iteration, info.key, tuple(parse_verdicts(reply.text, block_ids)))
        except MalformedAnswer as exc:
            note = str(exc)
            messages = messages + [{"role": "assistant", "content": reply.text},
                                   {"role": "user", "content": "That was not the JSON list asked for. Answer "
                                    "only with the JSON list of verdicts."}]
    return Judgment(iteration, info.key, (), f"malformed verdicts twice ({note}); continuing without them")


def _candidate(client: LLMClient, root: Path, info: FunctionInfo, trace: TestTrace, failure: FailureContext,
               count, config: Config, notes: list[str], previous: list[tuple[str, str]], iteration: int,
               variant: int) -> Candidate:
    messages = fix_messages(root, info, trace, failure, count, config.token_budget, notes, previous)
    # The first attempt at the configured temperature; later ones resample, or a
    # deterministic model would repeat its rejected answer.
    first = iteration == 1 and variant == 0
    temperature = config.temperature if first else max(config.temperature, RETRY_TEMPERATURE)
    text, code = complete_with_code(client, messages, f"the complete corrected function `{info.name}`",
                                    variant=variant + 10 * (iteration - 1), temperature=temperature)
    shown, why = usable_function(root, info, text, code)
    if why:
        return Candidate(iteration, info.key, shown, None, rejected=why)
    return Candidate(iteration, info.key, shown, Outcome(False, (), (), (), "not yet run"))


def _counter(model: str | None):
    def count(text: str) -> int:
        return count_tokens(model, text)
    return count

