"""Validation of a candidate patch: rerun the tests in a scratch copy, never in the user's tree.

A candidate is accepted when every targeted failing test passes and no test that passed
before fails now. The targeted tests run first, alone, so a wrong candidate is rejected at
the price of a few tests rather than the whole suite. Helper checks (recorded passing-test
calls of the patched function, `repair.helper_checks`), when given, run in that same first
run and reject a candidate that breaks one before the whole suite runs. A slow suite runs in
several children at once (`tracer.shards`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tracefix.repair.helper_checks import HelperCheck, failed_checks, remove_check_file, write_check_file
from tracefix.repair.patch import resolve_inside
from tracefix.tracer.scratch import scratch_copy
from tracefix.tracer.shards import run_sharded, shards_for
from tracefix.tracer.runner import RunResult, TestOutcome, run_tests


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    fixed: tuple[str, ...]  # targeted tests that pass now
    still_failing: tuple[str, ...]  # targeted tests that still fail
    broken: tuple[str, ...]  # tests that passed before and do not now
    reason: str  # one line: why it was accepted or rejected
    messages: tuple[str, ...] = ()  # failure messages of still-failing/broken tests, for the next prompt
    seconds: float = 0.0


@dataclass(frozen=True)
class TestSettings:
    test_timeout: float = 10.0
    run_timeout: float = 300.0
    pytest_args: tuple[str, ...] = ()
    python: str | None = None


def write_edited(root: Path, edited: dict[str, str]) -> None:
    for rel, text in edited.items():
        resolve_inside(root, rel).write_text(text, encoding="utf-8")


def validate(root: Path, edited: dict[str, str], baseline: tuple[TestOutcome, ...], targets: list[str],
             settings: TestSettings, checks: tuple[HelperCheck, ...] = ()) -> Outcome:
    started = time.perf_counter()
    with scratch_copy(root) as scratch:
        write_edited(scratch, edited)
        check_file = [write_check_file(scratch, checks)] if checks else []
        first = _run(scratch, settings, list(targets) + check_file)
        remove_check_file(scratch)
        broken_calls = failed_checks(first, tuple(checks))
        if broken_calls:
            check, message = broken_calls[0]
            reason = (f"breaks {len(broken_calls)} of {len(checks)} recorded calls of {check.qualname} "
                      f"from passing tests: {message}")
            return _rejected([], [], [], reason, [m for _, m in broken_calls], started)
        still = [o for o in _matching(first, targets) if o.outcome != "passed"]
        if first.crashed and not first.outcomes:
            return _rejected(targets, [], [], f"the tests could not run: {first.crashed}", [], started)
        if still or len(_matching(first, targets)) < len(targets):
            missing = set(targets) - {o.nodeid for o in first.outcomes}
            names = [o.nodeid for o in still] + sorted(missing)
            reason = f"{len(names)} of {len(targets)} failing tests still fail"
            return _rejected([t for t in targets if t not in names], names, [], reason, _messages(still), started)
        whole, broken = _whole_suite(scratch, settings, baseline)
    after = {o.nodeid: o for o in whole.outcomes}
    if broken:
        reason = f"fixes the failing tests but breaks {len(broken)} that passed: {', '.join(broken[:3])}"
        messages = _messages([after[n] for n in broken if n in after])
        return _rejected(list(targets), [], broken, reason, messages, started)
    return Outcome(True, tuple(targets), (), (), f"{len(targets)} failing tests pass, "
                   f"{sum(1 for o in whole.outcomes if o.outcome == 'passed')} pass in all, none broken",
                   (), round(time.perf_counter() - started, 3))


def _whole_suite(scratch: Path, settings: TestSettings,
                 baseline: tuple[TestOutcome, ...]) -> tuple[RunResult, list[str]]:
    """Every test, and the ones it broke: in several children at once where the suite is slow
    enough to pay (`tracer.shards`); a regression seen there is believed only once an ordinary
    run shows it."""
    shards = shards_for(baseline)
    if len(shards) >= 2:
        run = run_sharded(scratch, shards, test_timeout=settings.test_timeout, run_timeout=settings.run_timeout,
                          pytest_args=settings.pytest_args, python=settings.python)
        broken = _broken(baseline, run)
        if not broken:
            return run, broken
    run = _run(scratch, settings, [])
    return run, _broken(baseline, run)


def _broken(baseline: tuple[TestOutcome, ...], whole: RunResult) -> list[str]:
    """The tests that passed before and do not in `whole` (and the run itself, if it crashed)."""
    before = {o.nodeid: o.outcome for o in baseline}
    after = {o.nodeid: o for o in whole.outcomes}
    broken = [n for n, outcome in before.items() if outcome == "passed" and (n not in after or after[n].bad)]
    if whole.crashed:
        broken.append(f"(test run: {whole.crashed})")
    return broken


def _run(root: Path, settings: TestSettings, test_ids: list[str]) -> RunResult:
    return run_tests(root, test_ids=test_ids, test_timeout=settings.test_timeout, run_timeout=settings.run_timeout,
                     pytest_args=settings.pytest_args, python=settings.python, in_place=True)


def _matching(run: RunResult, targets: list[str]) -> list[TestOutcome]:
    wanted = set(targets)
    return [o for o in run.outcomes if o.nodeid in wanted]


def _messages(outcomes) -> list[str]:
    return [f"{o.nodeid}: {o.message}" for o in outcomes][:5]


def _rejected(fixed, still, broken, reason, messages, started) -> Outcome:
    return Outcome(False, tuple(fixed), tuple(still), tuple(broken), reason, tuple(messages),
                   round(time.perf_counter() - started, 3))
