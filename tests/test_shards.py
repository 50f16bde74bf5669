"""Whole-suite validation split over several children when the suite is slow (tracer.shards)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tracefix.repair import validate as validate_module
from tracefix.repair.validate import validate
from tracefix.tracer import runner, shards
from tracefix.tracer.runner import run_tests

# other names: pytest would try to collect module-level classes named Test*
Outcome, Settings = runner.TestOutcome, validate_module.TestSettings


def _outcome(nodeid: str, seconds: float, outcome: str = "passed") -> TestOutcome:
    return Outcome(nodeid, outcome, duration=seconds)


def test_a_slow_suite_is_split_by_file_balanced_and_in_suite_order():
    baseline = (_outcome("t/test_a.py::x", 4.0), _outcome("t/test_b.py::y", 1.0), _outcome("t/test_a.py::z", 2.0),
                _outcome("t/test_c.py::w", 3.0), _outcome("t/test_d.py::v", 2.5))
    assert shards.shards_for(baseline, cores=2) == [["t/test_a.py"], ["t/test_b.py", "t/test_c.py", "t/test_d.py"]]
    # three cores: the longest file alone, the others balanced, suite order within each
    assert shards.shards_for(baseline, cores=3) == [["t/test_a.py"], ["t/test_c.py"], ["t/test_b.py", "t/test_d.py"]]


def test_a_quick_suite_one_file_or_one_core_is_one_run():
    quick = (_outcome("test_a.py::x", 1.0), _outcome("test_b.py::y", 1.0))
    assert shards.shards_for(quick, cores=4) == [["test_a.py", "test_b.py"]]
    one_file = (_outcome("test_a.py::x", 30.0), _outcome("test_a.py::y", 30.0))
    assert shards.shards_for(one_file, cores=4) == [["test_a.py"]]
    slow = (_outcome("test_a.py::x", 30.0), _outcome("test_b.py::y", 30.0))
    assert len(shards.shards_for(slow, cores=1)) == 1 and len(shards.shards_for(slow, cores=2)) == 2


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


PROJECT = {
    "calc.py": "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n",
    "state.py": "seen = []\n",
    # test_b passes only after test_a ran in the same process: an order dependence a shard breaks
    "test_a.py": """
        import os, state
        from calc import add, mul

        def test_add():
            assert add(2, 3) == 5

        def test_mul():
            state.seen.append(1)
            assert mul(2, 3) == 6

        def test_pid():
            with open(os.environ["PIDS"], "a") as out:
                out.write(f"{os.getpid()}\\n")
    """,
    "test_b.py": """
        import os, state
        from calc import mul

        def test_after_a():
            assert state.seen and mul(1, 1) == 1

        def test_pid_b():
            with open(os.environ["PIDS"], "a") as out:
                out.write(f"{os.getpid()}\\n")
    """,
}
FIXED = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"


def test_shards_run_at_once_in_their_own_copies_and_join_every_outcome(tmp_path, monkeypatch):
    root = _write(tmp_path, PROJECT)
    monkeypatch.setenv("PIDS", str(tmp_path / "pids.txt"))
    run = shards.run_sharded(root, [["test_a.py"], ["test_b.py"]], test_timeout=5)
    assert {o.nodeid: o.outcome for o in run.outcomes} == {
        "test_a.py::test_add": "failed", "test_a.py::test_mul": "passed", "test_a.py::test_pid": "passed",
        "test_b.py::test_after_a": "failed", "test_b.py::test_pid_b": "passed"}
    assert len(set((tmp_path / "pids.txt").read_text().split())) == 2  # two children
    assert run.crashed is None and run.exit_code == 1


def test_validation_of_a_slow_suite_runs_shards_and_confirms_a_shard_only_regression(tmp_path, monkeypatch):
    # Made slow by its recorded durations: the suite splits in two, where test_after_a fails
    # (its state comes from test_a.py); one ordinary run then shows it passing, so the fix holds.
    root = _write(tmp_path, PROJECT)
    monkeypatch.setenv("PIDS", str(tmp_path / "pids.txt"))
    monkeypatch.setattr(shards.os, "cpu_count", lambda: 2)
    baseline = tuple(o if o.outcome == "failed" else Outcome(o.nodeid, o.outcome, duration=10.0)
                     for o in run_tests(root, test_timeout=5).outcomes)
    assert [o.nodeid for o in baseline if o.bad] == ["test_a.py::test_add"]
    runs = []
    real = validate_module.run_sharded
    monkeypatch.setattr(validate_module, "run_sharded", lambda *a, **k: runs.append(a[1]) or real(*a, **k))
    outcome = validate(root, {"calc.py": FIXED}, baseline, ["test_a.py::test_add"], Settings(test_timeout=5))
    assert runs == [[["test_a.py"], ["test_b.py"]]] or runs == [[["test_b.py"], ["test_a.py"]]]
    assert outcome.accepted, outcome.reason
    # a real regression is still one
    broken = FIXED.replace("return a * b", "return a + b")
    rejected = validate(root, {"calc.py": broken}, baseline, ["test_a.py::test_add"], Settings(test_timeout=5))
    assert not rejected.accepted and "test_a.py::test_mul" in rejected.broken
