"""Focused sampling: several model samples at the suspicious lines, each validated, the most agreed-on kept.

    located start -> the failing tests' trace (shared with the other strategies) -> the top target
      -> one prompt: its source with the most suspicious lines marked, the failing test, and what
         the function and the helpers it calls really did (debugger.prompts.focused_messages)
      -> SAMPLES answers per round, in diverse framings and temperatures
      -> distinct candidates (normalized AST) -> each validated in the scratch copy
      -> several pass: the one most samples agree on, then the smallest change

The trace is used by the tool, not dumped into the prompt: it picks the function and the
lines, and gives the model a few facts a small model can read (the call's inputs and result)
instead of a block-by-block listing it cannot.
"""

from __future__ import annotations

import ast
import difflib
from collections import Counter

from tracefix.config import Config
from tracefix.debugger.llm import BudgetExhausted, LLMClient, count_tokens
from tracefix.debugger.prompts import failure_context, focused_messages, function_source
from tracefix.repair.apply import apply_patch
from tracefix.repair.asking import complete_with_code, usable_function
from tracefix.repair.diff import unified_diff
from tracefix.repair.patch import apply_edits_in_memory
from tracefix.repair.records import Candidate, FixReport, Progress, since
from tracefix.repair.setup import Start
from tracefix.repair.validate import validate
from tracefix.tracer.records import FunctionInfo

# (framing, temperature) of each sample in a round; None = the configured temperature. The
# first is what a single careful request gets; the others buy diversity, not repetition.
SAMPLES = (("whole", None), ("minimal", 0.4), ("whole", 0.8))
ROUNDS_PER_TARGET = 2  # then the next function down the ranking
MARKED_LINES = 3


class Focused:
    """`--strategy focused`."""

    name = "focused"
    uses_model = True
    located = True

    def repair(self, start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
        return fix_focused(start, config, client, progress)


def fix_focused(start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
    if not start.failing:
        return start.nothing_failing()
    root, failing = start.root, start.failing
    client = client or LLMClient(config)
    progress(f"tracing {len(failing)} failing tests")
    targets = start.targets(config)
    if not targets:
        return _report(start, client, "no_fix", [], warnings=("the failing tests run no function of the "
                                                              "project's source files",))
    count = lambda text: count_tokens(config.model, text)  # noqa: E731
    candidates: list[Candidate] = []
    previous: dict[str, tuple[str, str]] = {}
    stopped_by, stop_note = "", ""
    for round_ in range(1, config.max_iters + 1):
        info, nodeid = targets[((round_ - 1) // ROUNDS_PER_TARGET) % len(targets)]
        outcome = next(o for o in start.outcomes if o.nodeid == nodeid)
        failure = failure_context(root, nodeid, outcome.message, outcome.longrepr)
        marked = marked_lines(start, info)
        trace = start.trace_of(config, nodeid)
        progress(f"round {round_}: {len(SAMPLES)} samples for {info.qualname}")
        codes: list[str] = []
        for index, (framing, temperature) in enumerate(SAMPLES):
            messages = focused_messages(root, info, marked, trace, failure, framing, count, config.token_budget,
                                        previous.get(info.key))
            try:
                text, code = complete_with_code(client, messages, f"the complete corrected function `{info.name}`",
                                                variant=index + 10 * (round_ - 1),
                                                temperature=config.temperature if temperature is None
                                                else max(config.temperature, temperature))
            except BudgetExhausted as exc:  # validate what the budget paid for, then stop
                stopped_by, stop_note = exc.budget, str(exc)
                break
            shown, why = usable_function(root, info, text, code)
            if why:
                candidates.append(Candidate(round_, info.key, shown, None, rejected=why))
            else:
                codes.append(shown)
        progress(f"round {round_}: validating {len(set(map(_normalized, codes)))} distinct candidates")
        winner, tried = _best_of(start, info, codes, round_)
        candidates += tried
        if winner is not None:
            edited = apply_edits_in_memory(root, info, winner.code)
            diff = unified_diff(root, edited)  # before --apply writes the files it compares with
            applied = tuple(apply_patch(root, edited, start.hashes, config.allow_dirty)) if config.apply else ()
            return _report(start, client, "fixed", candidates, edited=edited, diff=diff, applied=applied)
        rejected = [c for c in tried if c.outcome is not None]
        if rejected:
            best = min(rejected, key=lambda c: (len(c.outcome.still_failing), len(c.outcome.broken),
                                                _change_size(function_source(root, info), c.code)))
            previous[info.key] = (best.code, best.outcome.reason
                                  + ("; " + "; ".join(best.outcome.messages) if best.outcome.messages else ""))
        if stopped_by:
            break
    return _report(start, client, "no_fix", candidates, warnings=(stop_note,) if stop_note else (),
                   stopped_by=stopped_by)


def marked_lines(start: Start, info: FunctionInfo) -> list[int]:
    """The function's most suspicious lines that the failing tests ran, best first; none when
    they all score alike (marking every line tells the model nothing, and marking the first
    three of a tie would point it at lines the ranking cannot tell from the rest)."""
    lines = [s for s in (start.loc.lines if start.loc is not None else ())
             if s.function == info.key and s.failing_covering]
    lowest = min((s.score for s in lines), default=0.0)
    return [s.line for s in lines if s.score > lowest][:MARKED_LINES]


def _best_of(start: Start, info: FunctionInfo, codes: list[str], round_: int) -> tuple[Candidate | None, list[Candidate]]:
    """Validate each distinct candidate; of those accepted, the one most samples wrote (the
    behaviour they agree on), then the smallest change."""
    votes = Counter(_normalized(c) for c in codes)
    original = function_source(start.root, info)
    tried: list[Candidate] = []
    seen: set[str] = set()
    for code in codes:
        key = _normalized(code)
        if key in seen:
            tried.append(Candidate(round_, info.key, code, None, rejected="the same code as an earlier sample"))
            continue
        seen.add(key)
        edited = apply_edits_in_memory(start.root, info, code)
        result = validate(start.root, edited, start.outcomes, start.failing, start.settings)
        tried.append(Candidate(round_, info.key, code, result))
    accepted = [c for c in tried if c.outcome is not None and c.outcome.accepted]
    if not accepted:
        return None, tried
    return min(accepted, key=lambda c: (-votes[_normalized(c.code)], _change_size(original, c.code))), tried


def _normalized(code: str) -> str:
    try:
        return ast.dump(ast.parse(code))
    except SyntaxError:
        return code


def _change_size(original: str, code: str) -> int:
    """Lines removed plus lines added, blank lines and indentation ignored."""
    def lines(text: str) -> list[str]:
        return [l.strip() for l in text.splitlines() if l.strip()]
    return sum(1 for d in difflib.ndiff(lines(original), lines(code)) if d[:1] in "+-")


def _report(start: Start, client: LLMClient, status: str, candidates: list[Candidate], *, edited=None,
            diff: str = "", applied=(), warnings=(), stopped_by: str = "") -> FixReport:
    return FixReport(status, str(start.root), tuple(start.failing), start.suspects, (), tuple(candidates),
                     diff, edited or {}, tuple(applied), client.usage,
                     since(start.started), (*start.warnings, *warnings), start.outcomes, stopped_by=stopped_by)
