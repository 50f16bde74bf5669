"""The test runner's answers to tests that crash, fork, write files or run slowly under
tracing, and to commands started from a subfolder of the project."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from conftest import mocks, run_cli
from tracefix.tracer.project import invocation, pytest_rootdir
from tracefix.tracer.runner import run_tests


def project(tmp_path: Path, tests: str, source: str = "def add(a, b):\n    return a + b\n") -> Path:
    root = tmp_path / "proj"
    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n')
    (root / "calc" / "__init__.py").write_text(source)
    (root / "tests" / "test_ops.py").write_text(textwrap.dedent(tests))
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


SEGFAULT = """
    import ctypes
    from calc import add

    def test_add():
        assert add(1, 2) == 3

    def test_segfault():
        ctypes.string_at(0)

    def test_after_the_crash():
        assert add(2, 2) == 4
"""


# --- 3. a crashed test is a failure --------------------------------------------------------

def test_segfault_is_a_crashed_failure_and_the_rest_still_runs(tmp_path):
    run = run_tests(project(tmp_path, SEGFAULT), test_timeout=20)
    outcomes = {o.nodeid.split("::")[1]: o for o in run.outcomes}
    assert outcomes["test_segfault"].outcome == "crashed" and outcomes["test_segfault"].bad
    assert "SIGSEGV" in outcomes["test_segfault"].message
    assert outcomes["test_segfault"].frames[-1][:2] == ("tests/test_ops.py", 9)
    assert outcomes["test_add"].outcome == outcomes["test_after_the_crash"].outcome == "passed"
    assert run.crashed is None and len(run.outcomes) == 3


def test_os_exit_and_a_signal_crash_too(tmp_path):
    root = project(tmp_path, """
        import os, signal

        def test_exit():
            os._exit(3)

        def test_killed():
            os.kill(os.getpid(), signal.SIGKILL)

        def test_fine():
            assert True
    """)
    outcomes = {o.nodeid.split("::")[1]: o for o in run_tests(root, test_timeout=20).outcomes}
    assert outcomes["test_exit"].outcome == "crashed" and "exit code 3" in outcomes["test_exit"].message
    assert outcomes["test_killed"].outcome == "crashed" and "SIGKILL" in outcomes["test_killed"].message
    assert outcomes["test_fine"].outcome == "passed"


@pytest.mark.parametrize("command", ["trace", "locate", "hook"])
def test_every_command_counts_the_only_crash_as_failing(tmp_path, command):
    root = project(tmp_path, SEGFAULT)
    result = run_cli(command, str(root))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "all 3 tests pass" not in result.stdout and "nothing to" not in result.stdout
    assert "test_segfault" in result.stdout + result.stderr
    assert "SIGSEGV" in result.stdout + result.stderr
    if command == "hook":
        assert "1 of 3 tests fail" in result.stdout


@pytest.mark.parametrize("fmt", ["json", "diagnostics"])
def test_trace_formats_report_the_crash(tmp_path, fmt):
    result = run_cli("trace", str(project(tmp_path, SEGFAULT)), "--format", fmt)
    assert result.returncode == 1, result.stderr
    if fmt == "json":
        data = json.loads(result.stdout)
        assert data["summary"]["failing"] == 1
        assert [t["outcome"] for t in data["tests"]] == ["crashed"]
    else:
        assert "tests/test_ops.py:9:" in result.stdout and "crashed" in result.stdout


def test_fix_does_not_call_a_crash_nothing_to_fix(tmp_path):
    result = run_cli("fix", str(project(tmp_path, SEGFAULT)), "--model", "openai/mock-model", "--cache", "off",
                     "--strategy", "baseline", "--max-iters", "1", env=mocks(*["no code here"] * 6))
    assert "nothing to fix" not in result.stdout
    assert result.returncode == 1, result.stderr


# --- 4. run from a subfolder ---------------------------------------------------------------

FAILING = """
    from calc import add

    def test_add():
        assert add(1, 2) == 4

    def test_other():
        assert add(0, 0) == 0
"""


def test_rootdir_is_found_as_pytest_finds_it(tmp_path):
    root = project(tmp_path, FAILING)
    assert pytest_rootdir(root / "tests") == root.resolve()
    (root / "tests" / "tox.ini").write_text("[tox]\n")  # no [pytest] section: not pytest's
    assert pytest_rootdir(root / "tests") == root.resolve()
    (root / "tests" / "pytest.ini").write_text("")
    assert pytest_rootdir(root / "tests") == (root / "tests").resolve()


def test_ids_are_taken_relative_to_where_the_user_stands(tmp_path):
    root = project(tmp_path, FAILING)
    assert invocation(None, ["test_ops.py::test_add"], cwd=root / "tests") == \
        (root.resolve(), ["tests/test_ops.py::test_add"])
    # the pytest habit: a test id where the project's folder goes
    assert invocation(Path("tests/test_ops.py::test_add"), cwd=root) == (root.resolve(), ["tests/test_ops.py::test_add"])


@pytest.mark.parametrize("args", [("trace",), ("trace", "test_ops.py::test_add"), ("locate",), ("hook",)])
def test_commands_work_from_the_tests_folder(tmp_path, args):
    root = project(tmp_path, FAILING)
    result = run_cli(*args, cwd=root / "tests")
    assert result.returncode == 1, result.stderr
    assert "not found" not in result.stderr
    if args == ("locate",):
        assert "1 failing, 1 passing tests" in result.stdout
        assert "calc/__init__.py:2" in result.stdout  # the suspect line, not an empty table
    else:
        assert "tests/test_ops.py::test_add" in result.stdout + result.stderr


def test_trace_takes_a_test_id_without_a_path(tmp_path):
    root = project(tmp_path, FAILING)
    result = run_cli("trace", "tests/test_ops.py::test_add", cwd=root)
    assert result.returncode == 1, result.stderr
    assert "tests/test_ops.py::test_add" in result.stdout and "test_other" not in result.stdout


# --- 7. timeouts that do not lie -----------------------------------------------------------

SLOW = """
    import sys
    import time

    def traced():
        monitored = hasattr(sys, "monitoring") and any(sys.monitoring.get_tool(i) for i in range(6))
        return sys.gettrace() is not None or monitored

    def test_slow_only_under_tracing():
        # Stands for code that tracing slows past the limit: 0.1 s untraced, 3 s traced.
        time.sleep(3 if traced() else 0.1)

    def test_hangs():
        while True:
            time.sleep(0.01)
"""


def test_a_test_slow_only_under_tracing_is_not_failing(tmp_path):
    root = project(tmp_path, SLOW)
    plain = {o.nodeid.split("::")[1]: o for o in run_tests(root, test_timeout=1.5).outcomes}
    assert plain["test_slow_only_under_tracing"].outcome == "passed"
    run = run_tests(root, mode="trace", test_timeout=1.5)
    outcomes = {o.nodeid.split("::")[1]: o for o in run.outcomes}
    assert outcomes["test_slow_only_under_tracing"].outcome == "slow", outcomes
    assert not outcomes["test_slow_only_under_tracing"].bad
    assert "slow under tracing" in outcomes["test_slow_only_under_tracing"].message
    assert outcomes["test_hangs"].outcome == "timeout"  # hangs untraced too


def test_trace_reports_slow_tests_apart(tmp_path):
    root = project(tmp_path, SLOW)
    result = run_cli("trace", str(root), "tests/test_ops.py::test_slow_only_under_tracing", "--test-timeout", "1.5",
                     "--suspects", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slow under tracing" in result.stderr


# --- 8. runs happen in a scratch copy ------------------------------------------------------

WRITER = """
    from pathlib import Path
    from calc import add

    def test_writes_output():
        Path("output.txt").write_text("written by a test")
        Path(__file__).with_name("data.json").write_text("{}")
        assert add(1, 2) == 4
"""


@pytest.mark.parametrize("args", [("trace",), ("locate",),
                                  ("fix", "--model", "openai/mock-model", "--cache", "off", "--strategy", "baseline",
                                   "--max-iters", "1")])
def test_commands_leave_the_tree_byte_identical(tmp_path, args):
    root = project(tmp_path, WRITER)
    before = tree_digest(root)
    fixed = "```python\ndef add(a, b):\n    return a + b + 1\n```"
    result = run_cli(args[0], str(root), *args[1:], env=mocks(fixed))
    assert result.returncode in (0, 1), result.stderr
    assert tree_digest(root) == before
    if args[0] == "fix":
        assert "+    return a + b + 1" in result.stdout  # the fix was validated, and not written


def test_failure_texts_name_the_project_not_the_copy(tmp_path):
    root = project(tmp_path, FAILING)
    run = run_tests(root)
    failing = [o for o in run.outcomes if o.bad]
    assert failing and "tracefix-scratch" not in failing[0].longrepr


# --- 9. forks ------------------------------------------------------------------------------

def test_a_forked_test_process_does_not_report_twice(tmp_path):
    root = project(tmp_path, """
        import os
        from calc import add

        def test_forks():
            pid = os.fork()
            if pid:
                os.waitpid(pid, 0)
            assert add(1, 1) == 2

        def test_fails():
            assert add(1, 1) == 3

        def test_a():
            pass

        def test_b():
            pass

        def test_c():
            pass
    """)
    result = run_cli("trace", str(root), "--suspects", "0")
    assert result.returncode == 1, result.stderr
    assert "1 failing of 5 tests" in result.stdout
    assert result.stdout.count("● tests/test_ops.py::test_fails") == 1
    run = run_tests(root)
    assert sorted(o.nodeid for o in run.outcomes) == sorted(set(o.nodeid for o in run.outcomes))
    assert len(run.outcomes) == 5


def test_a_run_past_its_time_is_killed_with_what_finished_kept(tmp_path):
    # The per-test timeout is off, so only the whole run's limit stops the hang: the child
    # group is killed at that limit, the test that finished is kept, and the run says why.
    root = project(tmp_path, """\
        import time
        from calc import add

        def test_add():
            assert add(1, 2) == 3

        def test_hang():
            time.sleep(60)
        """)
    import time as clock

    started = clock.monotonic()
    result = run_tests(root, test_timeout=0, run_timeout=4)
    assert clock.monotonic() - started < 20
    assert result.crashed == "the test run took longer than 4s and was stopped"
    assert [(o.nodeid, o.outcome) for o in result.outcomes][:1] == [("tests/test_ops.py::test_add", "passed")]


# --- start-up cost of a run that measures nothing ------------------------------------------

def test_a_plain_run_does_not_import_coverage(tmp_path):
    # The plugin only needs to know where coverage.py lives (to hide its frames); importing
    # it cost 70 ms of every run, and outcome runs never measure.
    root = project(tmp_path, """
        import sys

        def test_nothing_imported_coverage():
            assert "coverage" not in sys.modules
    """)
    outcomes = run_tests(root).outcomes
    assert [o.outcome for o in outcomes] == ["passed"], outcomes[0].message
