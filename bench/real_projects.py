"""tracefix on real libraries' own test suites: false failures, where injected bugs rank, what it costs.

    .venv/bin/python bench/real_projects.py [--python PATH] [--only LIB] [--redo] [--repeat R]
        [--cache DIR] [--out bench/real_projects_results.jsonl] [--table-only]

For each library (pinned sdists from PyPI; `pip download --no-deps --no-binary :all:` into
the cache), the sdist is unpacked afresh into a work folder under the cache and installed
in editable mode, with pytest and coverage.py, into a venv made from `--python` (default:
the Python running this script), which is what then runs the library's tests. tracefix
itself runs from this checkout, in this interpreter, and is told `--python` the library's
venv, as a user with pipx would.

Per library, on the unmodified suite: a plain `python -m pytest`, `tracefix locate` and
`coverage run -m pytest` (the floor of the coverage collector, which adds per-test contexts to
that tracer), all timed; a test locate reports failing that plain pytest passes is a false failure.

Per injected bug (BUGS below: one edit at one site, applied with the file's hash checked
and always put back in a `finally`, verified by hash):
  plain      the whole suite, plain pytest: which tests fail, and the baseline for locate
  locate     `tracefix locate --format json --top 1000`: the rank of the buggy function
  trace      `tracefix trace --format json` as a user runs it (ranks first, records the top
             10 suspects): is the buggy function recorded?
  trace text the same in text: lines and bytes per failing test
  ids        plain pytest on the failing test ids alone (the first --max-ids), and
             `tracefix trace IDS` (text) on the same ids: the trace cost for the failing tests
             alone (given ids, tracefix records every project function); and the in-test
             ratio: those tests' own seconds in the default trace (its JSON's `duration`)
             over their seconds in the plain run (a small plugin times them the same way)
Timed pairs (plain/locate, ids plain/ids trace) run `--repeat` times, alternating, and the
medians count. Rows go to the results file as JSON lines, keyed by Python version and bug
id; a rerun skips the ids already there unless `--redo`. Targets are printed next to the
figures. Results and the exact commands: bench/REAL.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = Path.home() / ".cache" / "tracefix-bench"
DEFAULT_OUT = HERE / "real_projects_results.jsonl"
TEST_DEPS = ("pytest==9.2.0", "coverage==7.17.5")  # the versions tracefix's own venv has
BAD_OUTCOMES = ("failed", "error", "timeout", "crashed")  # tracefix.tracer.runner.BAD_OUTCOMES
CHILD_ENV = {"NO_COLOR": "1", "COLUMNS": "120", "PYTHONDONTWRITEBYTECODE": "1"}
SUBTEST_ID = re.compile(r"\) (\S+\.py::\S+)(?: - .*)?$")
CLOSING = re.compile(r"^\d+ failing of \d+ tests traced with ")
RUN_LIMIT_S = 900
# Plain pytest's per-test time, measured as tracefix's plugin measures its own (around
# pytest_runtest_protocol): pytest's --durations rounds to 10 ms, too coarse for these tests.
DURATIONS_MODULE = "tracefix_bench_durations"
# The suite as a user runs it, with pytest's default traceback (and as tracefix's runs build
# it): with --tb=no a failing test of these suites takes ~1 ms instead of ~25 ms.
PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE")
DURATIONS_PLUGIN = """
import json, os, time
import pytest

_seconds = {}

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    yield
    _seconds[item.nodeid] = time.perf_counter() - started

def pytest_sessionfinish(session):
    with open(os.environ["TRACEFIX_BENCH_DURATIONS"], "w") as f:
        json.dump(_seconds, f)
"""  # one command; a suite here takes seconds, so this only stops a hang


class BenchError(Exception):
    """Something about the benchmark's own setup is wrong: the run stops (a restore that failed, no venv)."""


class SnippetError(BenchError):
    """A bug's snippet is not in its file exactly once: that bug's row says so, the others go on."""


@dataclass(frozen=True)
class Library:
    name: str  # the PyPI name
    version: str
    module: str  # what `import` names, to check the venv imports the work tree
    test_args: tuple[str, ...] = ()  # extra pytest arguments (paths) for every run


@dataclass(frozen=True)
class Bug:
    id: str  # "<library>/<short name>"
    path: str  # relative to the unpacked sdist
    function: str  # qualname, as tracefix names it in "<path>::<qualname>"
    original: str  # must occur exactly once in the file
    buggy: str
    kind: str  # off-by-one, wrong comparison, wrong operator, missing negation

    @property
    def library(self) -> str:
        return self.id.split("/")[0]

    @property
    def key(self) -> str:
        return f"{self.path}::{self.function}"


LIBRARIES = {
    lib.name: lib for lib in (
        Library("more-itertools", "10.5.0", "more_itertools", ("tests",)),
        Library("sqlparse", "0.5.3", "sqlparse", ("tests",)),
        Library("toolz", "1.0.0", "toolz", ("toolz",)),
    )
}

BUGS = (
    Bug("more-itertools/collapse-levels", "more_itertools/more.py", "collapse",
        "if levels is not None and level > levels:", "if levels is not None and level >= levels:",
        "wrong comparison"),
    Bug("more-itertools/exactly_n-take", "more_itertools/more.py", "exactly_n",
        "return len(take(n + 1, filter(predicate, iterable))) == n",
        "return len(take(n, filter(predicate, iterable))) == n", "off-by-one"),
    Bug("more-itertools/is_sorted-not", "more_itertools/more.py", "is_sorted",
        "return not any(map(compare, it_1, it_2))", "return any(map(compare, it_1, it_2))",
        "missing negation"),
    Bug("more-itertools/split_at-maxsplit", "more_itertools/more.py", "split_at",
        # the same `maxsplit -= 1` closes split_before, split_after and split_when: the lines above it
        # are split_at's own
        "yield list(it)\n                return\n            buf = []\n            maxsplit -= 1\n",
        "yield list(it)\n                return\n            buf = []\n            maxsplit += 1\n",
        "wrong operator"),
    Bug("sqlparse/remove_quotes-slice", "sqlparse/utils.py", "remove_quotes",
        "val = val[1:-1]", "val = val[1:]", "off-by-one"),
    Bug("sqlparse/get_identifiers-not", "sqlparse/sql.py", "IdentifierList.get_identifiers",
        "if not (token.is_whitespace or token.match(T.Punctuation, ',')):",
        "if (token.is_whitespace or token.match(T.Punctuation, ',')):", "missing negation"),
    Bug("sqlparse/strip_comments-not", "sqlparse/filters/others.py", "StripCommentsFilter._process",
        "if prev_ is not None and not prev_.match(T.Punctuation, '('):",
        "if prev_ is not None and prev_.match(T.Punctuation, '('):", "missing negation"),
    # (a first choice, `self._begin_depth > 0` -> `>= 0` in StatementSplitter._change_splitlevel,
    # fails no test of the suite)
    Bug("sqlparse/wrap_after-sep", "sqlparse/filters/reindent.py", "ReindentFilter._process_identifierlist",
        "                position = 0\n                for token in identifiers:\n                    # Add 1 for the \",\" separator\n"
        "                    position += len(token.value) + 1\n                    if position > (self.wrap_after",
        "                position = 0\n                for token in identifiers:\n                    # Add 1 for the \",\" separator\n"
        "                    position += len(token.value) - 1\n                    if position > (self.wrap_after",
        "wrong operator"),
    Bug("toolz/tail-slice", "toolz/itertoolz.py", "tail",
        "return seq[-n:]", "return seq[-n + 1:]", "off-by-one"),
    Bug("toolz/diff-min", "toolz/itertoolz.py", "diff",
        "if N < 2:", "if N <= 2:", "wrong comparison"),
    Bug("toolz/partition_all-mod", "toolz/itertoolz.py", "partition_all",
        "yield prev[:len(seq) % n]", "yield prev[:len(seq) // n]", "wrong operator"),
    Bug("toolz/reduceby-callable", "toolz/itertoolz.py", "reduceby",
        "if not is_no_default and not callable(init):", "if not is_no_default and callable(init):",
        "missing negation"),
)

TARGETS = {"top3": 0.90, "locate_311": 2.0, "locate_312": 1.3, "trace_311": 1.5, "false_failures": 0}


# ---------------------------------------------------------------- bug injection (pure)

def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked_source(path: Path, snippet: str) -> str:
    """The file's text, once it is known to hold `snippet` exactly once (else the edit is ambiguous)."""
    text = path.read_text(encoding="utf-8")
    count = text.count(snippet)
    if count != 1:
        raise SnippetError(f"{path}: the snippet {snippet!r} occurs {count} times, not once")
    return text


@contextmanager
def injected(root: Path, bug: Bug):
    """The bug written into its file for the duration; the original bytes always put back, checked by hash."""
    path = root / bug.path
    original_bytes = path.read_bytes()
    original_hash = hashlib.sha256(original_bytes).hexdigest()
    text = checked_source(path, bug.original)
    try:
        path.write_text(text.replace(bug.original, bug.buggy), encoding="utf-8")
        yield path
    finally:
        path.write_bytes(original_bytes)
        if sha256_of(path) != original_hash:
            raise BenchError(f"{path}: restoring the original failed (hash differs); re-unpack the sdist")


# ---------------------------------------------------------------- reading tracefix's output (pure)

def function_rank(loc: dict, key: str) -> dict:
    """Where the function `key` stands in locate's JSON: tracefix's rank, the rank counting ties
    against it (every function scoring as high comes first), and its score; ranks None when absent."""
    functions = loc.get("functions", [])
    hit = next((f for f in functions if f["function"] == key), None)
    if hit is None:
        return {"rank": None, "worst": None, "score": None, "ranked": len(functions)}
    worst = sum(f["score"] >= hit["score"] for f in functions)
    return {"rank": hit["rank"], "worst": worst, "score": hit["score"], "ranked": len(functions)}


def bad_ids(outcomes: list[dict]) -> list[str]:
    return [o["nodeid"] for o in outcomes if o["outcome"] in BAD_OUTCOMES]


def failing_from_summary(pytest_output: str) -> list[str]:
    """Node ids from pytest's `-rfE` short summary: "FAILED id - message", "ERROR id", and
    "SUBFAILED(params) id" for a failing unittest subTest (pytest 9 counts the subtest as
    failed and its test as passed; tracefix, like a rerun by id, names the test)."""
    ids: list[str] = []
    for line in pytest_output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            nodeid = line.split(" ", 1)[1].split(" - ", 1)[0].strip()
        elif line.startswith("SUBFAIL") and (found := SUBTEST_ID.search(line)):
            nodeid = found.group(1)
        else:
            continue
        if nodeid not in ids:
            ids.append(nodeid)
    return ids


def traced_in(trace: dict, key: str) -> int:
    """In how many traced tests the function `key` has a recorded call."""
    return sum(any(f["key"] == key for f in t.get("functions", [])) for t in trace.get("tests", []))


def in_test_ratio(trace: dict, plain_seconds: dict) -> float | None:
    """Seconds the traced tests took inside pytest under the default trace (the top suspects
    recorded), over what the same tests took plain: the recording's own cost, without either
    process's start-up; None when no traced test has a plain time."""
    pairs = [(t["duration"], plain_seconds[t["nodeid"]]) for t in trace.get("tests", [])
             if t.get("duration") is not None and t["nodeid"] in plain_seconds]
    plain_total = sum(p for _, p in pairs)
    return sum(t for t, _ in pairs) / plain_total if pairs and plain_total > 0 else None


def per_test_sizes(text: str) -> list[tuple[int, int]]:
    """(lines, bytes) of each test's part of a text trace: from its "● " header to the next one,
    the closing "N failing of M tests traced with ..." line and blank lines at the end left out."""
    parts: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("● "):
            parts.append([])
        if parts and not CLOSING.match(line):
            parts[-1].append(line)
    for part in parts:
        while part and not part[-1].strip():
            part.pop()
    return [(len(p), len("\n".join(p).encode()) + 1) for p in parts]


# ---------------------------------------------------------------- the summary (pure)

@dataclass
class Totals:
    bugs: int = 0
    top1: int = 0
    top3: int = 0
    traced: int = 0
    false_failures: int = 0  # on the unmodified suites, plus any extra failure on a buggy one
    missed_failures: int = 0  # tests plain pytest fails that tracefix did not report failing
    locate_ratios: list[float] = field(default_factory=list)
    trace_ratios: list[float] = field(default_factory=list)
    in_test_ratios: list[float] = field(default_factory=list)


def totals_of(rows: list[dict]) -> Totals:
    totals = Totals()
    for row in rows:
        totals.false_failures += len(row.get("false_failures", []))
        totals.missed_failures += len(row.get("missed_failures", []))
        if row["kind"] != "bug" or row.get("error"):
            continue
        totals.bugs += 1
        rank = row["rank"]["rank"]
        totals.top1 += rank is not None and rank <= 1
        totals.top3 += rank is not None and rank <= 3
        totals.traced += row["traced_in"] > 0
        totals.locate_ratios.append(row["ratios"]["locate"])
        if row["ratios"].get("trace") is not None:
            totals.trace_ratios.append(row["ratios"]["trace"])
        if row["ratios"].get("in_test") is not None:
            totals.in_test_ratios.append(row["ratios"]["in_test"])
    return totals


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f}, max {max(values):.2f}" if values else "-"


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


# ---------------------------------------------------------------- the libraries and their venvs

def run(cmd: list[str], cwd: Path | None = None, extra_env: dict | None = None
        ) -> tuple[float, subprocess.CompletedProcess]:
    """Seconds of wall time and the finished process; the environment is this one's, less any
    active venv (tracefix would take it as the project's Python) and with a fixed width."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(CHILD_ENV, **(extra_env or {}))
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    return time.perf_counter() - started, done


def sdist_of(lib: Library, cache: Path) -> Path:
    folder = cache / "sdists" / f"{lib.name}-{lib.version}"
    found = sorted(folder.glob("*.tar.gz")) if folder.exists() else []
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        _, done = run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                       f"{lib.name}=={lib.version}", "-d", str(folder)])
        found = sorted(folder.glob("*.tar.gz"))
        if done.returncode or not found:
            raise BenchError(f"pip download {lib.name}=={lib.version} failed: {done.stderr.strip()[-500:]}")
    return found[0]


def fresh_tree(archive: Path, work: Path) -> Path:
    """The sdist unpacked into `work` anew (so a run killed mid-bug cannot leave a bug behind)."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    (top,) = [p for p in work.iterdir() if p.is_dir()]
    return top


def python_version(python: str) -> str:
    _, done = run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    if done.returncode:
        raise BenchError(f"{python} does not run: {done.stderr.strip()}")
    return done.stdout.strip()


def venv_python(lib: Library, base: str, version: str, tree: Path, cache: Path) -> str:
    """A venv made from `base` with the test deps and the library (editable, from `tree`)."""
    venv = cache / "venvs" / f"{lib.name}-{lib.version}-py{version}"
    python = venv / "bin" / "python"
    ready = venv / ".bench-ready"
    if not ready.exists() or ready.read_text() != " ".join(TEST_DEPS):
        if venv.exists():
            shutil.rmtree(venv)
        steps = ([base, "-m", "venv", str(venv)], [str(python), "-m", "pip", "install", "-q", *TEST_DEPS])
        for cmd in steps:
            _, done = run(cmd)
            if done.returncode:
                raise BenchError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
        ready.write_text(" ".join(TEST_DEPS))
    # Always reinstalled: the tree was unpacked anew, and the install must point at it.
    _, done = run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(tree)])
    if done.returncode:
        raise BenchError(f"pip install -e {tree} failed: {done.stderr.strip()[-500:]}")
    _, done = run([str(python), "-c", f"import {lib.module}; print({lib.module}.__file__)"], cwd=cache)
    if not done.stdout.strip().startswith(str(tree)):
        raise BenchError(f"{python} imports {lib.module} from {done.stdout.strip()!r}, not from {tree}")
    return str(python)


# ---------------------------------------------------------------- the runs

@dataclass(frozen=True)
class Project:
    lib: Library
    root: Path
    python: str  # the library's venv
    version: str  # of that Python
    plugin_dir: Path  # holds the durations plugin, on PYTHONPATH for plain runs only


def tracefix_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracefix", *args]


def plain(project: Project, ids: list[str] = ()) -> tuple[float, list[str], str, dict]:
    """Seconds, failing ids, the output and the per-test seconds of plain pytest (the whole suite, or `ids`)."""
    args = list(ids) or list(project.lib.test_args)
    durations = project.plugin_dir / "durations.json"
    durations.unlink(missing_ok=True)
    seconds, done = run([project.python, *PYTEST, "-p", DURATIONS_MODULE, *args], cwd=project.root,
                        extra_env={"PYTHONPATH": str(project.plugin_dir), "TRACEFIX_BENCH_DURATIONS": str(durations)})
    per_test = json.loads(durations.read_text()) if durations.exists() else {}
    return seconds, failing_from_summary(done.stdout), done.stdout[-2000:], per_test


def coverage_run(project: Project) -> tuple[float, None]:
    """Seconds of the whole suite under `coverage run` (its default core, its data in a temporary
    file), measuring the library's own modules: the floor for the coverage collector, which adds
    one dynamic context per test to the same C tracer."""
    with tempfile.TemporaryDirectory(prefix="tracefix-bench-cov-") as tmp:
        seconds, _ = run([project.python, "-m", "coverage", "run", f"--data-file={tmp}/data",
                          f"--include={project.root / project.lib.module}/*", "--omit=*/tests/*,*/test_*.py",
                          *PYTEST, *project.lib.test_args],
                         cwd=project.root)
    return seconds, None


def tracefix_json(project: Project, command: str, *args: str) -> tuple[float, dict, str]:
    """Seconds, the parsed JSON and stderr of `tracefix COMMAND ROOT ARGS --format json`."""
    seconds, done = run(tracefix_cmd(command, str(project.root), *args, "--format", "json",
                                     "--python", project.python))
    try:
        data = json.loads(done.stdout)
    except json.JSONDecodeError:
        data = {"error": f"exit {done.returncode}: {done.stderr.strip()[-1000:]}"}
    return seconds, data, done.stderr.strip()


def tracefix_text(project: Project, *args: str) -> tuple[float, str, str, int]:
    seconds, done = run(tracefix_cmd("trace", str(project.root), *args, "--python", project.python))
    return seconds, done.stdout, done.stderr.strip(), done.returncode


def alternated(kinds: dict, repeat: int) -> dict:
    """Each zero-argument callable in `kinds` run `repeat` times, the order rotating each round so
    drift on a shared machine hits them alike: {kind: (median seconds, last result)}."""
    names = list(kinds)
    seconds: dict[str, list[float]] = {k: [] for k in names}
    last = {}
    for i in range(repeat):
        for name in names[i % len(names):] + names[:i % len(names)]:
            result = kinds[name]()
            seconds[name].append(result[0])
            last[name] = result
    return {k: (statistics.median(seconds[k]), last[k]) for k in names}


def clean_row(project: Project, repeat: int) -> dict:
    """The unmodified suite: plain against locate, and the tests only tracefix calls failing."""
    got = alternated({"plain": lambda: plain(project),
                      "locate": lambda: tracefix_json(project, "locate", "--top", "1"),
                      "coverage": lambda: coverage_run(project)}, repeat)
    (plain_s, (_, plain_failing, plain_out, _)), (locate_s, (_, loc, locate_err)) = got["plain"], got["locate"]
    coverage_s = got["coverage"][0]
    row = {"kind": "clean", "library": project.lib.name, "version": project.lib.version,
           "seconds": {"plain": plain_s, "locate": locate_s, "coverage_run": coverage_s},
           "ratios": {"locate": locate_s / plain_s, "coverage_run": coverage_s / plain_s},
           "plain_failing": plain_failing}
    if "error" in loc:
        return dict(row, error=loc["error"])
    located = bad_ids(loc["outcomes"])
    return dict(row, tests=len(loc["outcomes"]), collector=loc["collector"], warnings=loc["warnings"],
                false_failures=sorted(set(located) - set(plain_failing)),
                missed_failures=sorted(set(plain_failing) - set(located)),
                outcomes=_counts(loc["outcomes"]), plain_tail=plain_out[-300:], stderr=locate_err[-500:])


def _counts(outcomes: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o["outcome"]] = counts.get(o["outcome"], 0) + 1
    return counts


def bug_row(project: Project, bug: Bug, repeat: int, max_ids: int) -> dict:
    row = {"kind": "bug", "library": project.lib.name, "version": project.lib.version, "bug": asdict(bug)}
    with injected(project.root, bug):
        got = alternated({"plain": lambda: plain(project),
                          "locate": lambda: tracefix_json(project, "locate", "--top", "1000")}, repeat)
        (plain_s, (_, plain_failing, plain_out, _)), (locate_s, (_, loc, locate_err)) = got["plain"], got["locate"]
        if not plain_failing:
            return dict(row, error="no test fails with this bug", plain_tail=plain_out[-300:])
        if "error" in loc:
            return dict(row, error=loc["error"])
        trace_s, trace, _ = tracefix_json(project, "trace")
        text_s, text, text_err, _ = tracefix_text(project)
        ids = plain_failing[:max_ids]
        pair = alternated({"plain": lambda: plain(project, ids),
                           "trace": lambda: tracefix_text(project, *ids)}, repeat)
        (ids_plain_s, (_, _, _, ids_durations)), (ids_trace_s, (_, ids_text, _, _)) = pair["plain"], pair["trace"]
    located = bad_ids(loc["outcomes"])
    return dict(
        row, tests=len(loc["outcomes"]), failing=len(plain_failing), traced_ids=len(ids),
        collector=loc["collector"], backend=trace.get("backend"),
        rank=function_rank(loc, bug.key), traced_in=traced_in(trace, bug.key),
        traced_tests=len(trace.get("tests", [])), named_in_text=bug.function.split(".")[-1] in text,
        false_failures=sorted(set(located) - set(plain_failing)),
        missed_failures=sorted(set(plain_failing) - set(located)),
        seconds={"plain": plain_s, "locate": locate_s, "trace_json": trace_s, "trace_text": text_s,
                 "ids_plain": ids_plain_s, "ids_trace": ids_trace_s},
        ratios={"locate": locate_s / plain_s, "trace": ids_trace_s / ids_plain_s,
                "trace_default": trace_s / plain_s, "in_test": in_test_ratio(trace, ids_durations)},
        text=_sizes(per_test_sizes(text)), ids_text=_sizes(per_test_sizes(ids_text)),
        warnings=trace.get("warnings", []) + loc.get("warnings", []),
        stderr=(locate_err + "\n" + text_err).strip()[-800:],
        top=[f["function"] for f in loc.get("functions", [])[:3]],
    )


def _sizes(sizes: list[tuple[int, int]]) -> dict:
    if not sizes:
        return {"tests": 0}
    lines, sizes_b = [s[0] for s in sizes], [s[1] for s in sizes]
    return {"tests": len(sizes), "lines_median": statistics.median(lines), "lines_max": max(lines),
            "bytes_median": statistics.median(sizes_b), "bytes_max": max(sizes_b)}


# ---------------------------------------------------------------- results file and report

def load_rows(out: Path) -> list[dict]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def without(rows: list[dict], row_id: str) -> list[dict]:
    return [r for r in rows if r["id"] != row_id]


def report(rows: list[dict]) -> None:
    for python in sorted({r["python"] for r in rows}):
        subset = [r for r in rows if r["python"] == python]
        print(f"\n## Python {python}\n")
        print_clean(subset)
        print_bugs(subset)
        print_totals(subset, python)


def print_clean(rows: list[dict]) -> None:
    print("| library | tests | plain s | locate s | locate / plain | coverage run / plain | false failures | collector |")
    print("|---|---|---|---|---|---|---|---|")
    for r in (r for r in rows if r["kind"] == "clean"):
        if r.get("error"):
            print(f"| {r['library']} {r['version']} | error: {r['error'][:80]} | | | | | | |")
            continue
        floor = r["ratios"].get("coverage_run")  # rows from before it was measured lack it
        print(f"| {r['library']} {r['version']} | {r['tests']} | {r['seconds']['plain']:.2f} | "
              f"{r['seconds']['locate']:.2f} | {r['ratios']['locate']:.2f} | "
              f"{'' if floor is None else f'{floor:.2f}'} | {len(r['false_failures'])} | {r['collector']} |")
    print()


def print_bugs(rows: list[dict]) -> None:
    print("| bug | kind | failing / tests | rank (ties against) | recorded in default trace | "
          "locate / plain | trace IDS / plain IDS | in-test, default trace / plain | "
          "text lines / test (median, max) | text KB / test (median, max) | false failures |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in (r for r in rows if r["kind"] == "bug"):
        if r.get("error"):
            print(f"| {r['bug']['id']} | {r['bug']['kind']} | error: {r['error'][:80]} | | | | | | | | |")
            continue
        rank = r["rank"]
        where = f"{rank['rank']} ({rank['worst']})" if rank["rank"] is not None else "not ranked"
        traced = f"yes, {r['traced_in']}/{r['traced_tests']} tests" if r["traced_in"] else \
            ("no (named in text)" if r["named_in_text"] else "no")
        t = r["text"]
        lines = f"{t['lines_median']:g}, {t['lines_max']}" if t["tests"] else "-"
        kb = f"{t['bytes_median'] / 1024:.1f}, {t['bytes_max'] / 1024:.1f}" if t["tests"] else "-"
        in_test = r["ratios"].get("in_test")
        print(f"| {r['bug']['id']} | {r['bug']['kind']} | {r['failing']} / {r['tests']} | {where} | {traced} | "
              f"{r['ratios']['locate']:.2f} | {r['ratios']['trace']:.2f} ({r['traced_ids']} tests) | "
              f"{'-' if in_test is None else f'{in_test:.2f}'} | {lines} | {kb} | {len(r['false_failures'])} |")
    print()


def print_totals(rows: list[dict], python: str) -> None:
    totals = totals_of(rows)
    modern = tuple(map(int, python.split(".")[:2])) >= (3, 12)
    locate_target = TARGETS["locate_312"] if modern else TARGETS["locate_311"]
    clean = [r["ratios"]["locate"] for r in rows if r["kind"] == "clean" and not r.get("error")]
    errors = [r["id"] for r in rows if r.get("error")]
    print(f"- buggy function first: {percent(totals.top1, totals.bugs)}")
    print(f"- buggy function in the top 3: {percent(totals.top3, totals.bugs)}   (target >= "
          f"{TARGETS['top3']:.0%})")
    print(f"- buggy function recorded by the default trace: {percent(totals.traced, totals.bugs)}")
    print(f"- locate / plain, buggy suites: {spread(totals.locate_ratios)}; unmodified suites: {spread(clean)}"
          f"   (target <= {locate_target}x on {'3.12+' if modern else '3.11'})")
    print(f"- trace / plain on the failing tests alone, wall time of `tracefix trace IDS` (a ranking run and a "
          f"traced run of those tests): {spread(totals.trace_ratios)}")
    print(f"- the same tests' own time under the default trace / plain: {spread(totals.in_test_ratios)}"
          f"   (target <= {TARGETS['trace_311']}x on 3.11)")
    print(f"- false failures: {totals.false_failures}   (target {TARGETS['false_failures']}); "
          f"failures tracefix missed: {totals.missed_failures}")
    if errors:
        print(f"- rows with errors: {', '.join(errors)}")


# ---------------------------------------------------------------- main

def project_for(lib: Library, base: str, version: str, cache: Path) -> Project:
    tree = fresh_tree(sdist_of(lib, cache), cache / "work" / f"py{version}" / lib.name)
    plugin_dir = cache / "plugin" / f"py{version}"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / f"{DURATIONS_MODULE}.py").write_text(DURATIONS_PLUGIN)
    return Project(lib, tree, venv_python(lib, base, version, tree, cache), version, plugin_dir)


def measure(lib: Library, args, rows: list[dict], version: str) -> list[dict]:
    bugs = [b for b in BUGS if b.library == lib.name]
    wanted = [f"{version}/{lib.name}/clean"] + [f"{version}/{b.id}" for b in bugs]
    todo = [i for i in wanted if args.redo or i not in {r["id"] for r in rows}]
    if not todo:
        return rows
    project = project_for(lib, args.python, version, args.cache)
    print(f"{lib.name} {lib.version} on Python {version}: {project.root}", file=sys.stderr)
    for row_id in todo:
        started = time.perf_counter()
        if row_id.endswith("/clean"):
            row = clean_row(project, args.repeat)
        else:
            bug = next(b for b in bugs if row_id == f"{version}/{b.id}")
            try:
                row = bug_row(project, bug, args.repeat, args.max_ids)
            except SnippetError as error:
                row = {"kind": "bug", "library": lib.name, "version": lib.version, "bug": asdict(bug),
                       "error": str(error)}
        row = dict(row, id=row_id, python=version, wall_s=round(time.perf_counter() - started, 1))
        rows = without(rows, row_id) + [row]
        _rewrite(args.out, rows)
        print(f"  {row_id}: {time.perf_counter() - started:.0f}s{' ERROR ' + row['error'][:200] if row.get('error') else ''}",
              file=sys.stderr)
    return rows


def _rewrite(out: Path, rows: list[dict]) -> None:
    """The whole results file again (a --redo replaces a row in place), written atomically."""
    tmp = out.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the Python the libraries' venvs are made from")
    parser.add_argument("--only", action="append", choices=sorted(LIBRARIES), help="this library only (repeatable)")
    parser.add_argument("--redo", action="store_true", help="measure rows already in the results file again")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each timed pair; the medians count")
    parser.add_argument("--max-ids", type=int, default=10, help="failing tests traced by id, at most")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--table-only", action="store_true", help="print the table of the results file and stop")
    args = parser.parse_args(argv)
    rows = load_rows(args.out)
    if not args.table_only:
        version = python_version(args.python)
        for name in args.only or LIBRARIES:
            rows = measure(LIBRARIES[name], args, rows, version)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
