"""The whole-suite step of validating a candidate: one ordinary run against tracefix's shards
(`tracer/shards.py`), timed in the same rounds, on a real library and on a synthetic suite.

    .venv/bin/python bench/validation_shards.py [--suite pyparsing|synthetic] [--repeat 3] [--cache DIR]
        [--out bench/validation_shards_results.jsonl]

pyparsing (a pinned sdist, unpacked and installed in editable mode into its own venv by
`real_projects.py`'s helpers, with a pytest.ini naming its tests folder) has most of its
test time in one file; the synthetic suite is 8 files of three CPU-bound tests, about 2 s a file.
Each suite runs once plainly for the baseline: every outcome and its duration, which
`shards_for` balances on. Then `repair.validate` checks the same candidate (the code rewritten
unchanged, one passing test as its target) with sharding off and on, alternating, `--repeat`
times; both must accept it. The ratio of the medians is printed and written as a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_projects import DEFAULT_CACHE, Library, fresh_tree, python_version, sdist_of, venv_python  # noqa: E402

from tracefix.repair import validate as validation  # noqa: E402
from tracefix.tracer import shards  # noqa: E402
from tracefix.tracer.runner import run_tests  # noqa: E402

LIBRARY = Library("pyparsing", "3.1.2", "pyparsing")
EDITED = "pyparsing/core.py"
# Where pyparsing's tox.ini runs `pytest tests`, a user's rootdir config says it; test paths in
# tracefix's pytest_args would be run next to every test id it asks for. test_diagram.py needs
# railroad-diagrams and jinja2, which the bench venv does not install.
PYTEST_INI = "[pytest]\ntestpaths = tests\naddopts = --ignore=tests/test_diagram.py\n"


def one_validation(tree: Path, edited: str, baseline, target: str, settings,
                   sharded: bool) -> tuple[float, object, int, bool]:
    """Seconds, the outcome, how many children the whole-suite step used, and whether a
    regression seen in the shards needed the confirming ordinary run."""
    cores, real_sharded, real_run = os.cpu_count, validation.run_sharded, validation._run
    used, runs = [], []
    validation.run_sharded = lambda root, groups, **kw: used.append(len(groups)) or real_sharded(root, groups, **kw)
    validation._run = lambda *a: runs.append(a[2]) or real_run(*a)
    if not sharded:
        shards.os.cpu_count = lambda: 1
    try:
        started = time.perf_counter()
        outcome = validation.validate(tree, {edited: (tree / edited).read_text()}, baseline, [target], settings)
        confirmed = bool(used) and runs.count([]) > 0  # the whole suite in one run after the shards
        return time.perf_counter() - started, outcome, used[0] if used else 1, confirmed
    finally:
        validation.run_sharded, validation._run = real_sharded, real_run
        shards.os.cpu_count = cores


SYNTHETIC_FILES = 8
SYNTHETIC_TEST = """
from work import churn


def test_{i}_{j}():
    assert churn({n}) >= 0
"""


def synthetic(root: Path) -> tuple[Path, str, str]:
    """A project of SYNTHETIC_FILES test files, each a few CPU-bound tests: (tree, python, edited file)."""
    if root.exists():
        shutil.rmtree(root)
    (root / "tests").mkdir(parents=True)
    (root / "work.py").write_text("def churn(n):\n    total = 0\n    for i in range(n):\n"
                                  "        total += i * i % 7\n    return total\n")
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    for i in range(SYNTHETIC_FILES):
        tests = "".join(SYNTHETIC_TEST.format(i=i, j=j, n=6_000_000) for j in range(3))
        (root / "tests" / f"test_part{i}.py").write_text(tests)
    return root, sys.executable, "work.py"


def library(cache: Path, version: str) -> tuple[Path, str, str]:
    tree = fresh_tree(sdist_of(LIBRARY, cache), cache / "work" / f"py{version}" / LIBRARY.name)
    python = venv_python(LIBRARY, sys.executable, version, tree, cache)
    (tree / "pytest.ini").write_text(PYTEST_INI)
    return tree, python, EDITED


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=("pyparsing", "synthetic"), action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "validation_shards_results.jsonl")
    args = parser.parse_args(argv)
    version = python_version(sys.executable)
    for suite in args.suite or ("synthetic", "pyparsing"):
        tree, python, edited = (synthetic(args.cache / "work" / "synthetic-shards") if suite == "synthetic"
                                else library(args.cache, version))
        measure(suite, tree, python, edited, version, args)
    return 0


def measure(suite: str, tree: Path, python: str, edited: str, version: str, args) -> None:
    settings = validation.TestSettings(test_timeout=60, run_timeout=900, python=python)
    started = time.perf_counter()
    base = run_tests(tree, test_timeout=60, run_timeout=900, python=python)
    plain_s = time.perf_counter() - started
    passing = [o for o in base.outcomes if o.outcome == "passed"]
    groups = shards.shards_for(base.outcomes)
    print(f"{suite}: {len(base.outcomes)} tests ({len(passing)} passing), "
          f"{sum(o.duration for o in base.outcomes):.1f} s of test time, plain run {plain_s:.1f} s; "
          f"{len(groups)} shards of {[len(g) for g in groups]} units on {os.cpu_count()} cores", flush=True)
    target = passing[0].nodeid
    times: dict[bool, list[float]] = {False: [], True: []}
    children, confirmations = 1, 0
    for round_ in range(args.repeat):
        for sharded in ((False, True) if round_ % 2 == 0 else (True, False)):
            seconds, outcome, used, confirmed = one_validation(tree, edited, base.outcomes, target, settings, sharded)
            confirmations += confirmed
            if not outcome.accepted:
                raise SystemExit(f"validation_shards: the unchanged code was rejected ({'sharded' if sharded else 'one run'}): "
                                 f"{outcome.reason}")
            times[sharded].append(seconds)
            children = max(children, used) if sharded else children
            print(f"  round {round_ + 1} {'shards' if sharded else 'one run'}: {seconds:.1f} s ({outcome.reason})"
                  f"{'; a shard-only regression, confirmed by one run' if confirmed else ''}", flush=True)
    one, split = statistics.median(times[False]), statistics.median(times[True])
    row = {"suite": suite if suite == "synthetic" else f"{LIBRARY.name}-{LIBRARY.version}", "python": version, "cores": os.cpu_count(),
           "tests": len(base.outcomes), "test_seconds": round(sum(o.duration for o in base.outcomes), 2),
           "shards": children, "confirming_runs": confirmations, "one_run_s": [round(t, 2) for t in times[False]],
           "sharded_s": [round(t, 2) for t in times[True]], "ratio": round(one / split, 2)}
    with args.out.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
    print(f"{suite} validation, median of {args.repeat}: one run {one:.1f} s, {children} shards {split:.1f} s: "
          f"{one / split:.2f}x faster")


if __name__ == "__main__":
    sys.exit(main())
