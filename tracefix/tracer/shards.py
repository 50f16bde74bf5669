"""A whole-suite run split over several children at once, when the suite is slow enough to pay.

A validated candidate ends with a run of the whole suite: every test that passed before must
pass again. On a suite of many seconds that run is most of a candidate's price, and it is
test files that do not depend on each other: `run_sharded` gives each of a few children
(one per core, at most MAX_SHARDS) its own scratch copy and a share of the test files,
balanced by how long each file's tests took before, and joins what they report.

pytest-xdist would spread the tests too, but its workers run them outside tracefix's child,
beyond its per-test timeout, crash attribution and outcome stream (tracefix switches it off
in its own runs, `plugin.XdistOff`); these shards are ordinary tracefix children.

Files keep their order within a shard, tests their order within a file. A file is never
split: pyparsing's test_unit.py holds classes that switch packrat parsing on for the classes
after them; split by class, shards failed tests that pass in order, every validation needed
its confirming run, and the step took 0.66x as long as one run (bench/validation_shards.py). A test that passes
only after a test of another file may fail in its shard: the caller confirms a regression
with one ordinary run before it believes it (`repair.validate`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from tracefix.tracer.runner import RunResult, TestOutcome, run_tests

MAX_SHARDS = 4
MIN_SECONDS = 5.0  # of the suite's own test time before: below it, a second child's start costs more than it saves


def shards_for(baseline: tuple[TestOutcome, ...], cores: int | None = None) -> list[list[str]]:
    """The test files of the suite in balanced groups, in suite order within each; one group
    (run it whole, as usual) when the suite is quick, has one file, or there is one core."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    seconds: dict[str, float] = {}
    for outcome in baseline:
        path = outcome.nodeid.split("::", 1)[0]
        seconds[path] = seconds.get(path, 0.0) + outcome.duration
    n = min(cores, MAX_SHARDS, len(seconds))
    if n < 2 or sum(seconds.values()) < MIN_SECONDS:
        return [list(seconds)]
    groups: list[list[str]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for path in sorted(seconds, key=lambda p: -seconds[p]):  # longest first, to the lightest group
        lightest = loads.index(min(loads))
        groups[lightest].append(path)
        loads[lightest] += seconds[path]
    order = {path: i for i, path in enumerate(seconds)}
    return [sorted(group, key=order.__getitem__) for group in groups if group]


def run_sharded(root: Path, shards: list[list[str]], **run_options) -> RunResult:
    """The shards' runs at once, each in its own scratch copy of `root`, joined into one result
    (`run_options` as for `runner.run_tests`, `in_place` excepted)."""
    with ThreadPoolExecutor(max_workers=len(shards)) as pool:
        runs = list(pool.map(lambda files: run_tests(root, test_ids=files, **run_options), shards))
    return joined(runs)


def joined(runs: list[RunResult]) -> RunResult:
    """One result for several runs of disjoint tests: every outcome, the worst exit code, the
    first crash, every collection error."""
    codes = [r.exit_code for r in runs]
    return replace(
        runs[0],
        exit_code=None if None in codes else max(codes),
        outcomes=tuple(o for r in runs for o in r.outcomes),
        collection_errors=tuple(e for r in runs for e in r.collection_errors),
        per_test={k: v for r in runs for k, v in r.per_test.items()},
        crashed=next((r.crashed for r in runs if r.crashed), None),
        stderr_tail="\n".join(r.stderr_tail for r in runs if r.stderr_tail)[-4000:],
    )
