"""Model-free repair: plain mutants at the most suspicious lines, screened fast, validated in full.

    Ochiai line ranking (lines the failing tests run) x operator prior -> mutants (repair.mutants)
      -> deduplicated by AST -> fast screen: the failing tests only, in one persistent worker
         (tracer.worker; a fresh pytest process per candidate where the swap is impossible)
      -> survivors: repair.validate (every previously passing test must still pass)
      -> the first accepted one is the fix, unless the tests cannot tell it from another mutant

No model is called: `fix_by_mutation` reports zero tokens.

A mutant is a guess that fits the tests. When a single failing test is all that checks the
edited code (no test that passed before runs it), several mutants often fit that one test
equally: `a == b` -> `a != b`, `a` -> `c`, `True` -> `False` two lines down. Then the search
looks on for a few seconds; if a mutant of other code passes the same test, it does not pick
one (run 5: 5 of the 6 such picks failed the hidden tests), names them, and leaves the
failure to the next stage of the portfolio (a model reads the intent) or to a test that tells
them apart. Other edits of the winner's own expression do not count: they are the same
choice written another way. With several failing tests the first mutant is kept: the other
mutants that pass them all were, in the same runs, mostly the same edit written another way
(`a < b` -> `a >= b`, `not a < b`).
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, replace
from pathlib import Path

from tracefix.config import Config
from tracefix.debugger.llm import LLMClient
from tracefix.repair.apply import apply_patch
from tracefix.repair.checked_by import FunctionsRan, weakly_checked
from tracefix.repair.diff import unified_diff
from tracefix.repair.mutants import Mutant, mutants_of
from tracefix.repair.records import Candidate, FixReport, Progress, since
from tracefix.tracer.scratch import scratch_copy
from tracefix.repair.setup import Start, located_start
from tracefix.repair.validate import Outcome, TestSettings, validate, write_edited
from tracefix.tracer.localize import Localization, covered_lines
from tracefix.tracer.runner import RunResult, run_tests
from tracefix.tracer.worker import Worker, WorkerAnswer

MAX_LINES = 12  # suspicious lines mutated; the probe fixed 13/40 QuixBugs at the top 3
DEADLINE_S = 120.0
RIVALS_S = 5.0  # after a winner one test alone checks: how long to look for another mutant that passes it too
MAX_RIVALS = 4  # named in the report; the look stops once this many are found
RIVAL_TEST_TIMEOUT = 1.0  # seconds per test for a rival: the winner passed the same test, most in milliseconds
NOTE = "fixed without a model call (mutation search)"


@dataclass(frozen=True)
class MutationResult:
    edited: dict[str, str] | None  # the validated edit {path: new file text}, or None
    winner: str  # the accepted mutant's description ("" when none)
    candidates: tuple[Candidate, ...]  # every mutant screened, in order, with its outcome
    generated: int
    unique: int  # after deduplication by AST
    screened: int
    fallback_runs: int  # screened in a fresh pytest process (the swap was not possible)
    worker_starts: int  # 1, plus one per candidate that crashed or hung the worker
    validated: int  # survivors of the screen that went through full validation
    per_second: float  # screened candidates per second
    seconds: float
    # A winner that one failing test alone checks and other mutants pass too: all of them, the
    # would-be winner first (then `edited` is None: the test cannot choose).
    ambiguous: tuple[str, ...] = ()


def search_mutants(root: Path, failing: list[str], outcomes, localization: Localization, sources: list[str],
                   settings: TestSettings, *, deadline_s: float = DEADLINE_S, progress: Progress = lambda _m: None,
                   fast: bool = True, max_lines: int = MAX_LINES, coverage: RunResult | None = None,
                   functions_ran: FunctionsRan | None = None) -> MutationResult:
    """The first mutant that passes the failing tests and breaks no passing one, within `deadline_s`.
    `fast=False` screens every candidate in its own pytest process (the baseline to measure against).

    With the coverage run, the worker also reruns the passing tests that reach the mutated
    lines, after the failing ones: a mutant that breaks one is dropped in process instead of
    costing a full validation (two pytest processes)."""
    started = time.perf_counter()
    root = Path(root).resolve()
    generated, ordered = ranked_mutants(root, localization, sources, max_lines)
    screened_tests = failing + (_passing_reaching(coverage, outcomes, localization, sources, max_lines)
                                if fast and coverage is not None else [])
    progress(f"{len(ordered)} distinct mutants ({generated} generated) at the top {max_lines} lines")
    candidates: list[Candidate] = []
    fallbacks = validated = 0
    screen_seconds = 0.0  # time in the screen alone: no worker start, no full validation
    winner, edited, ambiguous = "", None, ()
    with scratch_copy(root) as scratch, Worker(scratch, screened_tests, test_timeout=settings.test_timeout,
                                                pytest_args=settings.pytest_args, python=settings.python) as worker:
        if fast and ordered:
            worker.start()
        for index, mutant in enumerate(ordered, 1):
            if time.perf_counter() - started > deadline_s:
                progress(f"deadline of {deadline_s:g}s reached after {index - 1} mutants")
                break
            screen_started = time.perf_counter()
            answer, fell_back = _screen(worker, scratch, mutant, failing, settings, fast)
            fallbacks += fell_back
            screen_seconds += time.perf_counter() - screen_started
            if not answer.all_passed:
                candidates.append(_screened(index, mutant, answer, failing))
                continue
            validated += 1
            progress(f"mutant {index} passes the failing tests ({mutant.description}): full validation")
            outcome = validate(root, {mutant.path: mutant.file_text}, outcomes, failing, settings)
            if not outcome.accepted:
                candidates.append(Candidate(index, _key(mutant), mutant.function_source,
                                            replace(outcome, reason=f"{mutant.description}: {outcome.reason}")))
                continue
            look = min(RIVALS_S, max(0.0, deadline_s - (time.perf_counter() - started)))
            rivals = _rivals(worker, scratch, mutant, ordered[index:], failing, settings, fast, look) \
                if _one_test_checks(root, mutant, failing, coverage, functions_ran) else []
            if rivals:
                ambiguous = (mutant.description, *(r.description for r in rivals))
                outcome = replace(outcome, accepted=False, reason=f"{mutant.description}: {outcome.reason}; but "
                                  f"{len(rivals)} other mutant(s) pass the same tests: ambiguous, not taken")
            else:
                winner, edited = mutant.description, {mutant.path: mutant.file_text}
                outcome = replace(outcome, reason=f"{mutant.description}: {outcome.reason}")
            candidates.append(Candidate(index, _key(mutant), mutant.function_source, outcome))
            break
    rate = round(len(candidates) / screen_seconds, 2) if screen_seconds else 0.0
    return MutationResult(edited, winner, tuple(candidates), generated, len(ordered), len(candidates), fallbacks,
                          worker.starts, validated, rate, since(started), ambiguous)


def _screen(worker: Worker, scratch: Path, mutant: Mutant, failing: list[str], settings: TestSettings,
            fast: bool, test_timeout: float | None = None) -> tuple[WorkerAnswer, bool]:
    """The screen's answer for one mutant, and whether it needed a pytest process of its own."""
    answer = worker.try_candidate(mutant.path, mutant.qualname, mutant.function_source, mutant.first_line,
                                  test_timeout=test_timeout) if fast else WorkerAnswer("unsupported")
    if answer.status != "unsupported":
        return answer, False
    return _screen_in_process(scratch, mutant, failing, settings), True


def _one_test_checks(root: Path, mutant: Mutant, failing: list[str], coverage: RunResult | None,
                     functions_ran: FunctionsRan | None) -> bool:
    """Whether a single failing test is all that vouches for the mutant (no test that passed
    before runs the code it edits)."""
    return len(failing) == 1 and weakly_checked(root, unified_diff(root, {mutant.path: mutant.file_text}), coverage,
                                                functions_ran)


def _rivals(worker: Worker, scratch: Path, winner: Mutant, rest: list[Mutant], failing: list[str],
            settings: TestSettings, fast: bool, seconds: float) -> list[Mutant]:
    """The next mutants (up to MAX_RIVALS, within `seconds`) that pass the same screened tests
    and edit other code than the winner. Another edit of the same expression is the same
    choice written another way (`i % 2 == 0` -> `i % 2 != 0`, `not i % 2 == 0`, `i % 2 == 1`)."""
    started = time.perf_counter()
    found = []
    for mutant in rest:
        if len(found) >= MAX_RIVALS or time.perf_counter() - started > seconds:
            break
        if mutant.overlaps(winner):
            continue
        # A rival that loops would spend the whole look at the per-test timeout: a second each.
        answer, _ = _screen(worker, scratch, mutant, failing, settings, fast,
                            min(settings.test_timeout, RIVAL_TEST_TIMEOUT))
        if answer.all_passed:
            found.append(mutant)
    return found


def _passing_reaching(coverage: RunResult, outcomes, localization: Localization, sources: list[str],
                      max_lines: int) -> list[str]:
    """Passing tests that run one of the lines mutants are made at."""
    lines = {(s.path, s.line) for s in _mutated_lines(localization, sources, max_lines)}
    return [o.nodeid for o in outcomes if o.outcome == "passed" and covered_lines(coverage, o.nodeid) & lines]


def _mutated_lines(localization: Localization, sources: list[str], max_lines: int):
    editable = set(sources)
    return [s for s in localization.lines if s.path in editable and s.function and s.failing_covering][:max_lines]


def ranked_mutants(root: Path, localization: Localization, sources: list[str],
                   max_lines: int = MAX_LINES) -> tuple[int, list[Mutant]]:
    """(how many were generated, the distinct ones most promising first).

    A mutant's weight is its line's suspiciousness times its operator's prior; the ranking's
    own order (frame distance breaks ties) breaks equal weights, then generation order.
    """
    lines = _mutated_lines(localization, sources, max_lines)
    texts: dict[str, str] = {}
    weighted = []
    generated = 0
    for rank, suspect in enumerate(lines):
        if suspect.path not in texts:
            texts[suspect.path] = (root / suspect.path).read_text(encoding="utf-8")
        for order, mutant in enumerate(mutants_of(texts[suspect.path], suspect.path, suspect.qualname,
                                                  [suspect.line])):
            generated += 1
            weighted.append((-suspect.score * mutant.prior, rank, order, mutant))
    weighted.sort(key=lambda w: w[:3])
    seen = {_normalized(texts[p]) for p in texts}
    out = []
    for *_, mutant in weighted:
        key = _normalized(mutant.file_text)
        if key in seen:
            continue
        seen.add(key)
        out.append(mutant)
    return generated, out


class MutationSearch:
    """`--strategy mutation`: never calls a model; the time budget, when set, is its deadline."""

    name = "mutation"
    uses_model = False
    located = True

    def __init__(self, deadline_s: float = DEADLINE_S, fast: bool = True) -> None:
        self.deadline_s = deadline_s
        self.fast = fast
        self.last: MutationResult | None = None  # the search's own figures, for the benchmark

    def repair(self, start: Start, config: Config, client: LLMClient | None, progress: Progress) -> FixReport:
        left = start.seconds_left(config)
        deadline = self.deadline_s if left is None else min(self.deadline_s, left)
        report, self.last = mutation_report(start, config, progress=progress, deadline_s=deadline, fast=self.fast)
        return report


def fix_by_mutation(root: Path, config: Config, test_ids=(), *, progress: Progress = lambda _msg: None,
                    deadline_s: float = DEADLINE_S, fast: bool = True) -> FixReport:
    """Locate, then search mutants: the strategy run on its own."""
    start = located_start(root, config, test_ids, progress)
    return mutation_report(start, config, progress=progress, deadline_s=deadline_s, fast=fast)[0]


def mutation_report(start: Start, config: Config, *, progress: Progress = lambda _msg: None,
                    deadline_s: float = DEADLINE_S, fast: bool = True) -> tuple[FixReport, MutationResult | None]:
    """The search's report and its own figures (None when nothing fails)."""
    if not start.failing:
        return start.nothing_failing(), None
    root, sources, hashes, settings = start.root, start.sources, start.hashes, start.settings
    loc, coverage, failing, started = start.loc, start.coverage, start.failing, start.started
    result = search_mutants(root, failing, loc.outcomes, loc, sources, settings, deadline_s=deadline_s,
                            progress=progress, fast=fast, coverage=coverage, functions_ran=start.functions_ran)
    summary = (f"mutation search: {result.screened} of {result.unique} distinct mutants screened "
               f"({result.generated} generated, {result.per_second:g}/s), {result.validated} fully validated")
    if result.edited is None:
        said = (ambiguous_warning(result.ambiguous),) if result.ambiguous else ()
        return FixReport("no_fix", str(root), tuple(failing), loc.functions, (), result.candidates, "",
                         usage=None, seconds=since(started), warnings=(*loc.warnings, *said, summary),
                         outcomes=loc.outcomes), result
    diff = unified_diff(root, result.edited)  # before --apply writes the files: after, they equal the edit
    applied: tuple[str, ...] = ()
    if config.apply:
        applied = tuple(apply_patch(root, result.edited, hashes, config.allow_dirty))
    return FixReport("fixed", str(root), tuple(failing), loc.functions, (), result.candidates,
                     diff, result.edited, applied, None, since(started),
                     (*loc.warnings, f"{NOTE}: {result.winner}", summary), loc.outcomes), result


def ambiguous_warning(descriptions: tuple[str, ...]) -> str:
    more = "" if len(descriptions) <= MAX_RIVALS else " (and possibly more)"
    return (f"ambiguous: {len(descriptions)} different edits{more} pass the failing test, and no test that "
            f"passed before runs the edited code, so the test cannot choose; none is taken: "
            f"{'; '.join(descriptions)}. Add a test that tells them apart")


def _screen_in_process(scratch: Path, mutant: Mutant, failing: list[str], settings: TestSettings) -> WorkerAnswer:
    """The failing tests in a fresh pytest process, with the mutant written into the scratch copy."""
    target = scratch / mutant.path
    original = target.read_text(encoding="utf-8")
    write_edited(scratch, {mutant.path: mutant.file_text})
    try:
        # -x: stop at the first failure, as the worker does, for the same answer at the same price
        run = run_tests(scratch, test_ids=failing, test_timeout=settings.test_timeout,
                        run_timeout=settings.run_timeout, pytest_args=(*settings.pytest_args, "-x"),
                        python=settings.python)
    finally:
        target.write_text(original, encoding="utf-8")
    if run.crashed and not run.outcomes:
        return WorkerAnswer("crashed", why=run.crashed)
    got = {o.nodeid: o.outcome for o in run.outcomes}
    return WorkerAnswer("ok", tuple((n, got.get(n, "not_run")) for n in failing))


def _screened(index: int, mutant: Mutant, answer: WorkerAnswer, failing: list[str]) -> Candidate:
    passed = tuple(n for n, o in answer.outcomes if o == "passed" and n in failing)
    still = tuple(n for n in failing if n not in passed)
    broken = tuple(n for n, o in answer.outcomes if n not in failing and o not in ("passed", "not_run"))
    if answer.status == "ok" and broken and not still:
        return Candidate(index, _key(mutant), mutant.function_source, Outcome(
            False, passed, (), broken, f"{mutant.description}: fast screen: fixes the failing tests but breaks "
                                       f"{len(broken)} that passed: {', '.join(broken[:3])}"))
    if answer.status == "ok":
        kinds = sorted({o for _, o in answer.outcomes if o not in ("passed", "not_run")})
        reason = f"fast screen: {len(still)} of {len(failing)} failing tests still fail ({', '.join(kinds)})"
    else:
        reason = f"fast screen: the candidate {answer.status} ({answer.why}); counted as failed"
    return Candidate(index, _key(mutant), mutant.function_source,
                     Outcome(False, passed, still, (), f"{mutant.description}: {reason}"))


def _key(mutant: Mutant) -> str:
    return f"{mutant.path}::{mutant.qualname}"


def _normalized(text: str) -> str:
    return ast.dump(ast.parse(text))
