"""The no-trace baseline: plain self-repair with the same model, budget and validation.

    failing tests + their errors + the code -> the whole corrected file -> scratch copy + tests

What a developer gets from pasting a failing test into a chat (the Self-Debugging loop): no
coverage ranking, no block trace, no verdicts. A rejected attempt comes back in the next
prompt with the tests' messages, as in Self-Debugging's execution feedback. It exists to
measure what the trace and the verdicts add (`bench/run_corpus.py`), and as
`tracefix fix --strategy baseline`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tracefix.debugger.answers import MalformedAnswer, RejectedCandidate
from tracefix.config import Config
from tracefix.debugger.llm import BudgetExhausted, LLMClient, count_tokens
from tracefix.debugger.prompts import failure_context, self_repair_messages
from tracefix.repair.apply import apply_patch
from tracefix.repair.diff import unified_diff
from tracefix.repair.asking import RETRY_TEMPERATURE, complete_with_code
from tracefix.repair.records import Candidate, FixReport, Progress, since
from tracefix.repair.setup import Start
from tracefix.repair.validate import validate
from tracefix.errors import InternalSignal
from tracefix.tracer.runner import TestOutcome

FAILURES_SHOWN = 3


class Baseline:
    """`--strategy baseline`: the whole corrected file, asked for from the code and the errors."""

    name = "baseline"
    uses_model = True
    located = False

    def repair(self, start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
        return fix_baseline(start, config, client, progress)


def fix_baseline(start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
    root, sources, hashes, settings, failing = start.root, start.sources, start.hashes, start.settings, start.failing
    started = start.started
    if not failing:
        return start.nothing_failing()

    client = client or LLMClient(config)
    bad = [o for o in start.outcomes if o.nodeid in set(failing)]
    path = file_to_fix(bad, sources)
    original = (root / path).read_text(encoding="utf-8")
    failures = [failure_context(root, o.nodeid, o.message, o.longrepr) for o in bad[:FAILURES_SHOWN]]
    count = lambda text: count_tokens(config.model, text)  # noqa: E731

    candidates: list[Candidate] = []
    previous: list[tuple[str, str]] = []
    stopped_by, stop_note = "", ""
    try:
        for iteration in range(1, config.max_iters + 1):
            progress(f"iteration {iteration}: asking for a corrected {path}")
            for variant in range(config.candidates):
                messages = self_repair_messages(path, original, failures, count, config.token_budget, previous)
                first = iteration == 1 and variant == 0
                text, code = complete_with_code(client, messages, f"the complete corrected file {path}",
                                                variant=variant + 10 * (iteration - 1),
                                                temperature=config.temperature if first
                                                else max(config.temperature, RETRY_TEMPERATURE))
                try:
                    if isinstance(code, MalformedAnswer):
                        raise code
                    code = with_edges_of(original, code)
                    check_file_rewrite(original, code)
                except (MalformedAnswer, RejectedCandidate) as exc:
                    shown = code if isinstance(code, str) else text.strip()[:2000]
                    candidates.append(Candidate(iteration, path, shown, None, rejected=str(exc)))
                    previous.append((shown, f"not usable: {exc}"))
                    continue
                progress(f"iteration {iteration}: validating the candidate")
                edited = {path: code}
                result = validate(root, edited, start.outcomes, failing, settings)
                candidates.append(Candidate(iteration, path, code, result))
                if result.accepted:
                    diff = unified_diff(root, edited)  # before --apply writes the files: after, they equal the edit
                    applied = tuple(apply_patch(root, edited, hashes, config.allow_dirty)) if config.apply else ()
                    return FixReport("fixed", str(root), tuple(failing), (), (), tuple(candidates),
                                     diff, edited, applied, client.usage, since(started),
                                     outcomes=start.outcomes)
                previous.append((code, result.reason + ("; " + "; ".join(result.messages) if result.messages else "")))
    except BudgetExhausted as exc:  # a spent budget ends the run with what it has
        stopped_by, stop_note = exc.budget, str(exc)
    return FixReport("no_fix", str(root), tuple(failing), (), (), tuple(candidates), "", usage=client.usage,
                     seconds=since(started), outcomes=start.outcomes,
                     warnings=(stop_note,) if stop_note else (), stopped_by=stopped_by)


def file_to_fix(failing: list[TestOutcome], sources: list[str]) -> str:
    """The source file the failures point at: the innermost project frame outside the tests
    in the first failing test's traceback, else the only source file."""
    editable = set(sources)
    for outcome in failing:
        for path, _line, _function in reversed(outcome.frames):
            if path in editable:
                return path
    for outcome in failing:  # no frame kept: a file the error text names
        named = [p for p in sources if Path(p).name in outcome.longrepr]
        if named:
            return named[-1]
    if len(sources) == 1:
        return sources[0]
    raise NoFileToFix("the baseline strategy cannot tell which file to fix: the failing tests' tracebacks "
                      "name no source file")


class NoFileToFix(InternalSignal):
    """The baseline's own limit, not the user's: a staged run goes on to its next strategy."""


def with_edges_of(original: str, code: str) -> str:
    """The answer with the original file's leading and trailing blank lines: a code fence drops
    them, and the diff should show the fix, not whitespace."""
    lead = original[:len(original) - len(original.lstrip("\n"))]
    trail = original[len(original.rstrip("\n")):] or ""
    return lead + code.strip("\n") + trail


def check_file_rewrite(original: str, candidate: str) -> None:
    """A whole-file answer must keep every top-level function and class, and change something."""
    try:
        new = ast.parse(candidate)
    except SyntaxError as exc:
        raise RejectedCandidate(f"the corrected file does not parse: {exc.msg} (line {exc.lineno})") from None
    old_names = _top_level_names(ast.parse(original))
    missing = sorted(old_names - _top_level_names(new))
    if missing:
        raise RejectedCandidate(f"the corrected file drops {', '.join(missing)}")
    if ast.dump(new) == ast.dump(ast.parse(original)):
        raise RejectedCandidate("the answer repeats the original code unchanged")


def _top_level_names(module: ast.Module) -> set[str]:
    return {n.name for n in module.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}

