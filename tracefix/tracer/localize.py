"""Spectrum-based fault localization: which lines, blocks and functions failing tests run.

One instrumented test run (`run_tests(mode="coverage")`) gives each test's covered lines.
A line's spectrum counts the failing and passing tests that run it (ef, ep) and do not
(nf, np); a formula (Ochiai by default) turns it into a suspiciousness score. Blocks take
the best score of their lines and functions the best of their blocks. Ties are broken by
the failing tests' tracebacks: code on a failure's stack ranks first, innermost first.
"""

from __future__ import annotations

import ast
import math
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

from tracefix.tracer.cfg import functions_in, line_to_block
from tracefix.tracer.coverage_session import check_collector
from tracefix.tracer.interpreter import collector_for, described
from tracefix.errors import UserError
from tracefix.tracer.project import check_project, source_files
from tracefix.tracer.records import FunctionInfo, to_json
from tracefix.tracer.runner import BAD_OUTCOMES, RunResult, TestOutcome, check_usable, run_tests

FAILING = BAD_OUTCOMES


@dataclass(frozen=True)
class Spectrum:
    """How many failing (ef/nf) and passing (ep/np) tests run / do not run one line."""

    path: str
    line: int
    ef: int
    ep: int
    nf: int
    np: int


@dataclass(frozen=True)
class Suspect:
    kind: str  # "line" | "block" | "function"
    path: str
    line: int  # first line: the statement, the block's start, the function's def line
    end_line: int
    function: str  # FunctionInfo.key ("path::qualname"); "" for module-level code
    qualname: str
    block: int | None  # block index within the function; None for functions and loose lines
    score: float
    failing_covering: int  # ef of the line that gives the score
    passing_covering: int  # ep of that line
    rank: int  # 1 = most suspicious


@dataclass(frozen=True)
class Localization:
    root: str
    formula: str
    outcomes: tuple[TestOutcome, ...]
    lines: tuple[Suspect, ...]
    blocks: tuple[Suspect, ...]
    functions: tuple[Suspect, ...]
    failing: int
    passing: int
    nothing_failing: bool  # no test failed: nothing to localize (the CLI says so, exit 0)
    warnings: tuple[str, ...]
    coverage_seconds: float  # wall time of the instrumented test run
    collector: str  # "coverage" (coverage.py contexts) or "monitoring" (sys.monitoring)

    def top(self, n: int) -> Localization:
        """The same localization with at most n suspects of each kind."""
        return replace(self, lines=self.lines[:n], blocks=self.blocks[:n], functions=self.functions[:n])

    def to_json(self) -> dict:
        return to_json(self)


# --- formulas ---------------------------------------------------------------------------

def ochiai(ef: int, ep: int, nf: int, np: int, star: int = 2) -> float:
    denominator = math.sqrt((ef + nf) * (ef + ep))
    return ef / denominator if denominator else 0.0


def tarantula(ef: int, ep: int, nf: int, np: int, star: int = 2) -> float:
    failed = ef / (ef + nf) if ef + nf else 0.0
    passed = ep / (ep + np) if ep + np else 0.0
    return failed / (failed + passed) if failed + passed else 0.0


def dstar(ef: int, ep: int, nf: int, np: int, star: int = 2) -> float:
    if ep + nf == 0:
        # Run by every failing test and no passing one: the best possible line. Any other
        # line scores at most ef**star / 1 (its ef is at most this ef), so one more stays
        # above them all and keeps the score finite (JSON has no infinity).
        return float(ef**star + 1) if ef else 0.0
    return ef**star / (ep + nf)


FORMULAS = {"ochiai": ochiai, "tarantula": tarantula, "dstar": dstar}


def formula_named(name: str):
    try:
        return FORMULAS[name]
    except KeyError:
        raise UserError(f"unknown formula {name!r}: use one of {', '.join(FORMULAS)}") from None


# --- spectra ----------------------------------------------------------------------------

def counted(outcome: TestOutcome) -> str | None:
    """"fail", "pass", or None for outcomes that say nothing about the code (skips, xfails)."""
    if outcome.outcome in FAILING:
        return "fail"
    if outcome.outcome == "passed":
        return "pass"
    return None


def covered_lines(run: RunResult, nodeid: str, statements: dict[str, dict[int, int]] | None = None):
    """{(path, line)} one test ran; lines mapped to their statement's first line when known."""
    payload = run.per_test.get(nodeid) or {}
    out = set()
    for path, lines in (payload.get("lines") or {}).items():
        starts = (statements or {}).get(path, {})
        out.update((path, starts.get(line, line)) for line in lines)
    return out


def spectrum_from(run: RunResult, statements: dict[str, dict[int, int]] | None = None) -> tuple[Spectrum, ...]:
    """One Spectrum per line run by at least one counted test, sorted by path and line.

    Timeouts count as failing; skipped and xfail outcomes and tests without coverage data
    (the test a crash killed) are left out of every count.
    """
    ef: dict[tuple[str, int], int] = defaultdict(int)
    ep: dict[tuple[str, int], int] = defaultdict(int)
    failing = passing = 0
    for outcome in run.outcomes:
        kind = counted(outcome)
        if kind is None or outcome.nodeid not in run.per_test:
            continue
        counts = ef if kind == "fail" else ep
        failing += kind == "fail"
        passing += kind == "pass"
        for key in covered_lines(run, outcome.nodeid, statements):
            counts[key] += 1
    keys = sorted(set(ef) | set(ep))
    return tuple(Spectrum(path, line, ef[(path, line)], ep[(path, line)], failing - ef[(path, line)],
                          passing - ep[(path, line)]) for path, line in keys)


def statement_starts(source: str) -> dict[int, tuple[int, int]]:
    """line -> (first line, last line) of the statement (or compound header) it belongs to.

    A statement over several lines reports line events on more than one of them; keyed by
    its first line, it is one suspect, not three.
    """
    out: dict[int, tuple[int, int]] = {}
    # ast.walk goes outside in, so inner statements overwrite their compound's range.
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.stmt):
            continue
        end = node.end_lineno or node.lineno
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            end = max(node.lineno, body[0].lineno - 1)
        for line in range(node.lineno, end + 1):
            out[line] = (node.lineno, end)
    return out


# --- ranking ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Code:
    """What localize knows about the covered files: functions, blocks and statements."""

    functions: dict[str, list[FunctionInfo]]  # path -> functions
    statements: dict[str, dict[int, tuple[int, int]]]  # path -> line -> (start, end)
    owners: dict[str, dict[int, tuple[FunctionInfo, int]]]  # path -> line -> (function, block index)

    def function_at(self, path: str, line: int) -> FunctionInfo | None:
        owner = self.owners.get(path, {}).get(line)
        return owner[0] if owner else None

    def block_at(self, path: str, line: int) -> int | None:
        owner = self.owners.get(path, {}).get(line)
        return owner[1] if owner else None

    def starts(self) -> dict[str, dict[int, int]]:
        return {p: {line: se[0] for line, se in m.items()} for p, m in self.statements.items()}


def code_of(root: Path, paths) -> _Code:
    functions, statements, owners = {}, {}, {}
    for path in paths:
        try:
            source = (root / path).read_text(encoding="utf-8")
            functions[path] = functions_in(source, path)
            statements[path] = statement_starts(source)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue  # changed or unreadable since the run: rank its lines without structure
        # A nested function's body belongs to its own blocks, never to the outer function's.
        owners[path] = {line: (info, index) for info in functions[path]
                        for line, index in line_to_block(info).items()}
    return _Code(functions, statements, owners)


def frame_distances(outcomes, starts: dict[str, dict[int, int]] | None = None) -> dict[tuple[str, int], int]:
    """(path, line) -> how far from the innermost frame of a failing test's traceback (0 =
    innermost), the smallest over failing tests."""
    out: dict[tuple[str, int], int] = {}
    for outcome in outcomes:
        if counted(outcome) != "fail":
            continue
        for distance, (path, line, _name) in enumerate(reversed(outcome.frames)):
            key = (path, (starts or {}).get(path, {}).get(line, line))
            out[key] = min(out.get(key, distance), distance)
    return out


def _order(items):
    """Sort (score, frame distance, ef, path, line, suspect) tuples, most suspicious first.

    Equal scores: code on a failure's stack first (innermost first), then code more failing
    tests run (Tarantula ignores how many), then by place for a stable order.
    """
    items.sort(key=lambda it: (-round(it[0], 12), _far(it[1]), -it[2], it[3], it[4]))
    return tuple(replace(it[5], rank=i) for i, it in enumerate(items, 1))


def _far(distance: int | None) -> float:
    return math.inf if distance is None else distance


def rank_lines(spectra, formula: str = "ochiai", frames: dict | None = None, code: _Code | None = None,
               star: int = 2) -> tuple[Suspect, ...]:
    """Lines run by at least one failing test, most suspicious first.

    `frames` ((path, line) -> distance from a failure's innermost frame) breaks ties;
    `code` adds each line's statement end, function and block.
    """
    score_of = formula_named(formula)
    frames = frames or {}
    items = []
    for s in spectra:
        if not s.ef:
            continue  # no failing test runs it: not a suspect under any formula
        score = score_of(s.ef, s.ep, s.nf, s.np, star=star)
        start_end = code.statements.get(s.path, {}).get(s.line) if code else None
        info = code.function_at(s.path, s.line) if code else None
        block = code.block_at(s.path, s.line) if code else None
        suspect = Suspect("line", s.path, s.line, start_end[1] if start_end else s.line,
                          info.key if info else "", info.qualname if info else "", block, score, s.ef, s.ep, 0)
        items.append((score, frames.get((s.path, s.line)), s.ef, s.path, s.line, suspect))
    return _order(items)


def rank_blocks(lines: tuple[Suspect, ...], code: _Code, frames: dict | None = None) -> tuple[Suspect, ...]:
    """Each block scores its best line; only blocks with a covered line are listed."""
    frames = frames or {}
    best: dict[tuple[str, int], Suspect] = {}  # (function key, block index) -> best line
    near: dict[tuple[str, int], int] = {}
    infos = {info.key: info for functions in code.functions.values() for info in functions}
    for (path, line), distance in frames.items():
        info, index = code.function_at(path, line), code.block_at(path, line)
        if info is not None:
            near[(info.key, index)] = min(near.get((info.key, index), distance), distance)
    for suspect in lines:  # already best first: the first line seen in a block is its best
        if suspect.block is not None:
            best.setdefault((suspect.function, suspect.block), suspect)
    items = []
    for (key, index), line in best.items():
        info = infos[key]
        block = next(b for b in info.blocks if b.index == index)
        suspect = Suspect("block", info.path, block.start, block.end, key, info.qualname, index,
                          line.score, line.failing_covering, line.passing_covering, 0)
        items.append((line.score, near.get((key, index)), line.failing_covering, info.path, block.start, suspect))
    return _order(items)


def rank_functions(blocks: tuple[Suspect, ...], code: _Code, frames: dict | None = None) -> tuple[Suspect, ...]:
    """Each function scores its best block."""
    frames = frames or {}
    best: dict[str, Suspect] = {}
    for suspect in blocks:
        best.setdefault(suspect.function, suspect)
    infos = {info.key: info for functions in code.functions.values() for info in functions}
    near: dict[str, int] = {}
    for (path, line), distance in frames.items():
        info = code.function_at(path, line)
        if info is not None:
            near[info.key] = min(near.get(info.key, distance), distance)
    items = []
    for key, block in best.items():
        info = infos[key]
        suspect = Suspect("function", info.path, info.def_line, info.end_line, key, info.qualname, None,
                          block.score, block.failing_covering, block.passing_covering, 0)
        items.append((block.score, near.get(key), block.failing_covering, info.path, info.def_line, suspect))
    return _order(items)


# --- the whole step ---------------------------------------------------------------------

def locate(root, *, test_ids=(), formula: str = "ochiai", test_timeout: float = 10, run_timeout: float = 600,
           pytest_args=(), collector: str | None = None, python: str | None = None) -> Localization:
    """Run the tests once with per-test coverage and rank the code the failing ones run."""
    return locate_with_run(root, test_ids=test_ids, formula=formula, test_timeout=test_timeout,
                           run_timeout=run_timeout, pytest_args=pytest_args, collector=collector, python=python)[0]


def locate_with_run(root, *, test_ids=(), formula: str = "ochiai", test_timeout: float = 10,
                    run_timeout: float = 600, pytest_args=(), collector: str | None = None,
                    python: str | None = None) -> tuple[Localization, RunResult]:
    """`locate`, and the coverage run it ranked: repair reuses its per-test lines (which passing
    tests reach a function) instead of running the suite again."""
    root = check_project(Path(root))
    formula_named(formula)
    options = {"files": source_files(root)}
    interpreter = described(python, "the python given") if python else None
    collector = collector_for(interpreter, check_collector(collector, interpreter))
    if collector:
        options["collector"] = collector
    started = time.perf_counter()
    run = run_tests(root, mode="coverage", test_ids=test_ids, options=options, test_timeout=test_timeout,
                    run_timeout=run_timeout, pytest_args=pytest_args, python=python)
    seconds = time.perf_counter() - started
    check_usable(run, test_ids, root)
    return localization_of(run, root, formula, seconds), run


def localization_of(run: RunResult, root: Path, formula: str = "ochiai", seconds: float = 0.0) -> Localization:
    """Rank a finished coverage run (split from `locate` so a run can be ranked twice)."""
    counted_tests = [o for o in run.outcomes if counted(o) and o.nodeid in run.per_test]
    failing = sum(counted(o) == "fail" for o in counted_tests)
    passing = len(counted_tests) - failing
    warnings = run_warnings(run, failing, passing)
    collector = (run.session or {}).get("collector", "") if isinstance(run.session, dict) else ""
    # A crashed test left no coverage to rank with, but it fails: it is counted all the same.
    crashed = sum(o.outcome == "crashed" and o.nodeid not in run.per_test for o in run.outcomes)
    if failing == 0:
        return Localization(str(root), formula, run.outcomes, (), (), (), crashed, passing,
                            run.crashed is None and not crashed, tuple(warnings), round(seconds, 3), collector)
    paths = sorted({p for nodeid in run.per_test for p in (run.per_test[nodeid] or {}).get("lines", {})})
    code = code_of(root, paths)
    starts = code.starts()
    frames = frame_distances(run.outcomes, starts)
    lines = rank_lines(spectrum_from(run, starts), formula, frames, code)
    if not lines:
        warnings.append("the failing tests run no project source line (is the bug in the tests, or outside "
                        "the project's source files?)")
    blocks = rank_blocks(lines, code, frames)
    functions = rank_functions(blocks, code, frames)
    return Localization(str(root), formula, run.outcomes, lines, blocks, functions, failing + crashed, passing, False,
                        tuple(warnings), round(seconds, 3), collector)


def top_lines_run_by(loc: Localization, run: RunResult, root: Path, nodeids, top: int) -> dict[str, tuple]:
    """Per test, the first `top` of the suite's ranked lines that this test ran: with several
    failing tests, the suite's top lines may belong to another test's failure."""
    code = code_of(Path(root), sorted({s.path for s in loc.lines}))
    starts = code.starts()
    out = {}
    for nodeid in nodeids:
        ran = covered_lines(run, nodeid, starts)
        out[nodeid] = tuple((s.path, s.line) for s in loc.lines if (s.path, s.line) in ran)[:top]
    return out


def run_warnings(run: RunResult, failing: int, passing: int) -> list[str]:
    warnings = []
    if run.crashed:
        warnings.append(f"{run.crashed}; the ranking uses the {failing + passing} tests that finished")
    for error in run.collection_errors:
        warnings.append(f"not collected, left out: {error}")
    for outcome in run.outcomes:
        if outcome.outcome == "timeout":
            warnings.append(f"{outcome.nodeid} timed out ({outcome.message}); counted as failing")
        elif outcome.outcome == "crashed":
            warnings.append(f"{outcome.nodeid} crashed ({outcome.message}); counted as failing, no coverage to rank with")
        elif outcome.outcome == "slow":
            warnings.append(f"{outcome.nodeid}: {outcome.message}; left out of the ranking (raise test_timeout)")
    missing = [o.nodeid for o in run.outcomes if counted(o) and o.nodeid not in run.per_test
               and o.outcome != "crashed"]
    if missing:
        warnings.append(f"{len(missing)} tests have no coverage data and are left out: {', '.join(missing[:3])}")
    if failing and not passing:
        warnings.append(f"every test fails ({failing}): the ranking signal is weak; every line the tests run "
                        "looks alike. Run it with passing tests that reach the same code.")
    return warnings
