import json
import math
import shutil
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from tracefix.tracer.coverage_session import CoverageLines, MonitoringLines
from tracefix.errors import UserError
from tracefix.tracer.localize import (
    Spectrum, dstar, localization_of, locate, ochiai, rank_lines, spectrum_from, statement_starts, tarantula,
)
from tracefix.tracer import runner
from tracefix.tracer.runner import RunResult, run_tests
from tracefix.tracer.types import COVERAGE_TOOL_ID

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# The known bug of each fixture: (fixture, function key, buggy line).
BUGS = [
    ("average", "stats/summary.py::mean", 9),
    ("cart", "shop/pricing.py::apply_discount", 8),
    ("bank", "bank/account.py::Account.withdraw", 21),
    ("flatten", "nested/tree.py::depth", 20),
    ("search", "finder/bisect_search.py::find", 12),
]


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    """One localization per fixture, shared by the tests of this module (each run costs ~1 s)."""
    cache = {}

    def get(name):
        if name not in cache:
            root = tmp_path_factory.mktemp(name) / name
            shutil.copytree(FIXTURES / name, root)
            cache[name] = (root, locate(root, test_timeout=1))
        return cache[name]

    return get


def write_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


# --- formulas on a hand-computed spectrum: ef=2, ep=1, nf=1, np=3 -----------------------

def test_ochiai_is_ef_over_root_of_failing_times_covering():
    assert ochiai(2, 1, 1, 3) == pytest.approx(2 / math.sqrt(3 * 3))


def test_tarantula_is_failing_ratio_over_both_ratios():
    assert tarantula(2, 1, 1, 3) == pytest.approx((2 / 3) / (2 / 3 + 1 / 4))


def test_dstar_is_ef_to_the_star_over_ep_plus_nf():
    assert dstar(2, 1, 1, 3) == pytest.approx(4 / 2)
    assert dstar(2, 1, 1, 3, star=3) == pytest.approx(8 / 2)


def test_formulas_score_zero_denominators_without_dividing():
    for formula in (ochiai, tarantula, dstar):
        assert formula(0, 0, 0, 0) == 0.0
    assert tarantula(1, 0, 0, 0) == 1.0  # no passing test at all


def test_dstar_line_run_by_every_failing_test_only_beats_every_other_line_and_stays_finite():
    perfect = dstar(3, 0, 0, 5)
    assert math.isfinite(perfect)
    assert all(perfect > dstar(ef, ep, 3 - ef, 5 - ep) for ef in range(4) for ep in range(6) if ep + 3 - ef)


# --- spectra and ranking without running anything ----------------------------------------

def _run(*tests) -> RunResult:
    """A RunResult from (nodeid, outcome, {path: lines}) triples."""
    outcomes = tuple(runner.TestOutcome(nodeid, outcome) for nodeid, outcome, _ in tests)
    return RunResult(1, outcomes, per_test={nodeid: {"lines": lines} for nodeid, _, lines in tests})


def test_spectrum_counts_timeouts_as_failing_and_ignores_skips():
    run = _run(("t::fails", "failed", {"m.py": [1, 2]}), ("t::hangs", "timeout", {"m.py": [1, 3]}),
               ("t::passes", "passed", {"m.py": [1]}), ("t::skipped", "skipped", {"m.py": [2, 3]}))
    spectra = {s.line: s for s in spectrum_from(run)}
    assert spectra[1] == Spectrum("m.py", 1, ef=2, ep=1, nf=0, np=0)
    assert spectra[2] == Spectrum("m.py", 2, ef=1, ep=0, nf=1, np=1)
    assert spectra[3] == Spectrum("m.py", 3, ef=1, ep=0, nf=1, np=1)


def test_spectrum_merges_the_lines_of_one_statement():
    run = _run(("t::a", "failed", {"m.py": [4]}), ("t::b", "failed", {"m.py": [4, 5]}))
    (spectrum,) = spectrum_from(run, {"m.py": {4: 4, 5: 4}})
    assert (spectrum.line, spectrum.ef) == (4, 2)


def test_statement_over_several_lines_maps_to_its_first_line():
    source = "def f(a):\n    x = g(a,\n          a)\n    if (x and\n            a):\n        return x\n"
    starts = statement_starts(source)
    assert starts[3] == (2, 3)
    assert starts[5] == (4, 5)
    assert starts[6] == (6, 6)


def test_ties_rank_the_innermost_failure_frame_first():
    spectra = [Spectrum("m.py", line, 1, 0, 0, 1) for line in (3, 5, 7)]
    ranked = rank_lines(spectra, frames={("m.py", 7): 0, ("m.py", 5): 1})
    assert [s.line for s in ranked] == [7, 5, 3]
    assert [s.rank for s in ranked] == [1, 2, 3]


def test_lines_no_failing_test_runs_are_not_suspects():
    spectra = [Spectrum("m.py", 1, 0, 2, 1, 0), Spectrum("m.py", 2, 1, 2, 0, 0)]
    assert [s.line for s in rank_lines(spectra)] == [2]


# --- real runs of the fixtures -----------------------------------------------------------

@pytest.mark.parametrize("name,function,line", BUGS, ids=[b[0] for b in BUGS])
def test_buggy_function_ranks_first(located, name, function, line):
    _root, loc = located(name)
    assert loc.functions[0].function == function
    assert loc.functions[0].rank == 1
    # The buggy line scores as high as any line (ties with its neighbours are expected).
    assert any(s.line == line and s.score == loc.lines[0].score for s in loc.lines)
    (bug_block,) = [b for b in loc.blocks if b.function == function and b.line <= line <= b.end_line]
    assert bug_block.score == loc.blocks[0].score


def test_hanging_test_is_a_timeout_warning_not_an_error(located):
    _root, loc = located("search")
    hung = [o for o in loc.outcomes if o.outcome == "timeout"]
    assert [o.nodeid for o in hung] == ["tests/test_find.py::test_find_missing_large"]
    assert any("timed out" in w and "test_find_missing_large" in w for w in loc.warnings)
    assert (loc.failing, loc.passing) == (1, 3)
    assert loc.lines[0].line == 12  # `lo = mid`: run by the hanging test and one passing test


def test_localization_serializes_to_plain_json(located):
    _root, loc = located("cart")
    data = json.loads(json.dumps(loc.to_json()))
    assert data["functions"][0]["function"] == "shop/pricing.py::apply_discount"
    assert data["functions"][0]["kind"] == "function"
    assert data["formula"] == "ochiai" and data["nothing_failing"] is False
    assert len(loc.top(1).lines) == 1


def test_coverage_run_writes_nothing_into_the_project(located):
    root, _loc = located("average")
    before = sorted(p.relative_to(FIXTURES / "average").as_posix() for p in (FIXTURES / "average").rglob("*"))
    after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert after == before


def test_every_formula_ranks_the_buggy_function_first(tmp_path):
    root = tmp_path / "cart"
    shutil.copytree(FIXTURES / "cart", root)
    run = run_tests(root, mode="coverage", test_timeout=5)
    for formula in ("ochiai", "tarantula", "dstar"):
        loc = localization_of(run, root, formula)
        assert loc.formula == formula
        assert loc.functions[0].function == "shop/pricing.py::apply_discount"


def average_with_addopts(tmp_path: Path, addopts: str) -> Path:
    """A copy of the average fixture whose pytest configuration carries `addopts`."""
    root = tmp_path / "average"
    shutil.copytree(FIXTURES / "average", root)
    config = root / "pyproject.toml"
    config.write_text(config.read_text().replace(
        'testpaths = ["tests"]', f'testpaths = ["tests"]\naddopts = "{addopts}"'))
    return root


def located_as_plain(root: Path, located):
    """`root`'s localization, checked equal to the plain average fixture's: same counts, same lines."""
    loc = locate(root, test_timeout=5)
    _plain_root, plain = located("average")
    assert (loc.failing, loc.passing) == (plain.failing, plain.passing) == (2, 1)
    assert [(s.path, s.line, s.score) for s in loc.lines] == [(s.path, s.line, s.score) for s in plain.lines]
    return loc


def traced_average_tests(root: Path) -> list:
    from tracefix.tracer.tracing import trace_tests

    run = trace_tests(root, test_timeout=5)
    assert sorted(t.nodeid.rsplit("::", 1)[1] for t in run.traces) == ["test_mean_of_one", "test_mean_of_three"]
    return run.traces


def test_project_running_pytest_cov_from_its_addopts_is_localized_and_traced(tmp_path, located):
    # Many repositories put --cov in addopts; the child's pytest then starts pytest-cov's
    # tracer next to tracefix's collector or recorder. Both must still see every line, and
    # pytest-cov's failing --cov-fail-under must not turn into an error.
    pytest.importorskip("pytest_cov")
    root = average_with_addopts(tmp_path, "--cov=stats --cov-branch --cov-fail-under=100")
    located_as_plain(root, located)
    assert all(any(c.function.endswith("::mean") for c in t.calls) for t in traced_average_tests(root))
    assert not list(root.glob(".coverage*"))


def test_a_project_that_switches_pytest_cov_off_is_localized_as_it_is(tmp_path, located):
    # tracefix passed --no-cov, which pytest refuses as unknown where addopts has -p no:pytest_cov.
    pytest.importorskip("pytest_cov")
    located_as_plain(average_with_addopts(tmp_path, "-p no:pytest_cov"), located)


def test_a_project_that_asks_pytest_xdist_for_workers_is_run_in_tracefix_s_child(tmp_path, located):
    # `-n 2` in addopts sent every test to xdist's worker processes, out of the collector's,
    # the recorder's and the outcome stream's sight: "no tests found". Same for the worker.
    pytest.importorskip("xdist")
    from tracefix.tracer.worker import Worker

    root = average_with_addopts(tmp_path, "-n 2 --dist loadfile")
    loc = located_as_plain(root, located)
    traced_average_tests(root)
    failing = sorted(o.nodeid for o in loc.outcomes if o.bad)
    with Worker(root, failing, test_timeout=5) as worker:
        assert worker.start(), worker.error
        assert worker.tests == tuple(failing)


def test_refused_pytest_arguments_name_the_argument(tmp_path):
    # The error must name the argument, not end in pytest's usage banner.
    root = average_with_addopts(tmp_path, "--no-such-option")
    with pytest.raises(UserError, match="unrecognized arguments: --no-such-option"):
        locate(root, test_timeout=5)


def test_suite_with_no_failing_test_has_nothing_to_localize(tmp_path):
    root = write_project(tmp_path / "ok", {
        "calc/__init__.py": "",
        "calc/ops.py": "def add(a, b):\n    return a + b\n",
        "tests/test_ops.py": "from calc.ops import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        "conftest.py": "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n",
    })
    loc = locate(root)
    assert loc.nothing_failing
    assert (loc.lines, loc.blocks, loc.functions) == ((), (), ())
    assert (loc.failing, loc.passing) == (0, 1)


def test_suite_where_every_test_fails_still_ranks_and_warns(tmp_path):
    root = write_project(tmp_path / "allfail", {
        "calc/__init__.py": "",
        "calc/ops.py": "def half(x):\n    y = x * 2\n    return y\n\n\ndef unused():\n    return 0\n",
        "tests/test_ops.py": textwrap.dedent("""\
            from calc.ops import half

            def test_half_of_four():
                assert half(4) == 2

            def test_half_of_two():
                assert half(2) == 1
        """),
        "conftest.py": "import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n",
    })
    loc = locate(root)
    assert not loc.nothing_failing
    assert (loc.failing, loc.passing) == (2, 0)
    assert loc.functions[0].function == "calc/ops.py::half"
    assert any("every test fails" in w for w in loc.warnings)


def test_unknown_formula_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown formula"):
        locate(FIXTURES / "average", formula="jaccardish")


def test_missing_project_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        locate(tmp_path / "nope")


@pytest.mark.skipif(not hasattr(sys, "monitoring"), reason="sys.monitoring needs Python 3.12+")
def test_monitoring_collector_finds_the_same_lines_as_coverage(located):
    root, loc = located("search")
    other = locate(root, test_timeout=1, collector="monitoring")
    assert other.collector == "monitoring"
    assert [(s.path, s.line, s.score) for s in other.lines] == [(s.path, s.line, s.score) for s in loc.lines]


needs_monitoring = pytest.mark.skipif(not hasattr(sys, "monitoring"), reason="sys.monitoring needs Python 3.12+")


def _module_run_from(tmp_path: Path, source: str, name: str = "m.py") -> dict:
    """`name` under tmp_path, executed with its real path as the code's file name (what
    coverage.py matches its include list against) by `exec`, as importlib runs a module."""
    (tmp_path / name).write_text(source)
    namespace: dict = {}
    exec(compile(source, str(tmp_path / name), "exec"), namespace)
    return namespace


@needs_monitoring
def test_monitoring_collector_counts_a_module_first_imported_inside_a_test(tmp_path):
    collector = MonitoringLines(tmp_path, ["early.py", "late.py"])
    # before the first test
    early = _module_run_from(tmp_path, "def f(x):\n    return [y + 1 for y in range(x)]\n", "early.py")
    collector.start()
    try:
        collector.begin("t::one")
        early["f"](3)
        late = _module_run_from(tmp_path, textwrap.dedent("""\
            TOP = 1


            class Box:
                def get(self):
                    return (lambda: TOP)()
        """), "late.py")  # inside the test
        late["Box"]().get()
        first = collector.end("t::one")
        collector.begin("t::two")
        late["Box"]().get()
        early["f"](2)
        second = collector.end("t::two")
    finally:
        collector.stop()
    assert first == {"early.py": [2], "late.py": [1, 4, 5, 6]}
    assert second == {"early.py": [2], "late.py": [6]}  # each test's own lines, hot or not


@needs_monitoring
def test_monitoring_collector_sets_no_global_event(tmp_path):
    # A global PY_START, re-enabled for every function by each test's restart_events(),
    # made half the callbacks of a run; only project code objects carry events now.
    collector = MonitoringLines(tmp_path, ["m.py"])
    f = _module_run_from(tmp_path, "def f():\n    return 1\n")["f"]
    collector.start()
    try:
        collector.begin("t::one")
        f()
        assert sys.monitoring.get_events(COVERAGE_TOOL_ID) == 0
        assert sys.monitoring.get_local_events(COVERAGE_TOOL_ID, f.__code__) == sys.monitoring.events.LINE
        assert collector.end("t::one") == {"m.py": [2]}
    finally:
        collector.stop()


def test_tests_without_coverage_data_are_left_out_with_a_warning(located):
    root, loc = located("flatten")
    run = RunResult(1, loc.outcomes, per_test={})
    again = localization_of(run, root)
    assert again.lines == () and any("no coverage data" in w for w in again.warnings)


def test_coverage_collector_recovers_the_lock_a_timeout_left_held(tmp_path):
    # A SIGALRM timeout raised inside coverage's lock_data callback leaves its data lock
    # held; the next switch_context then deadlocked the child until the run timeout.
    source = tmp_path / "m.py"
    source.write_text("def f(x):\n    y = x + 1\n    return y\n")
    collector = CoverageLines(tmp_path, ["m.py"])
    code = compile(source.read_text(), str(source), "exec")
    namespace: dict = {}
    exec(code, namespace)
    collector.start()
    try:
        collector.begin("t::one")
        namespace["f"](1)
        collector.cov._collector.data_lock.acquire()  # what the interrupted callback left
        collector.timed_out()
        result = {}
        worker = threading.Thread(target=lambda: result.update(collector.end("t::one")), daemon=True)
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "end() deadlocked on coverage's data lock"
        assert result == {"m.py": [2, 3]}
    finally:
        collector.stop()


def test_coverage_does_not_trace_the_test_files_pytest_collected(tmp_path):
    # A test module with a custom name (python_files = check_*.py) is a source file by
    # name; pytest names it at collection, before the first test, and coverage is told then.
    for name in ("m.py", "check_m.py"):
        (tmp_path / name).write_text("def f(x):\n    y = x + 1\n    return y\n")
    collector = CoverageLines(tmp_path, ["m.py", "check_m.py"])
    collector.skip([str(tmp_path / "check_m.py")])
    functions = {}
    for name in ("m.py", "check_m.py"):
        namespace: dict = {}
        exec(compile((tmp_path / name).read_text(), str(tmp_path / name), "exec"), namespace)
        functions[name] = namespace["f"]
    collector.start()
    try:
        collector.begin("t::one")
        functions["m.py"](1)
        functions["check_m.py"](1)
        collector.pause()  # coverage.py flushes what it traced: the skipped file is not in it
        assert {Path(f).name for f in collector.lines} == {"m.py"}
        assert collector.end("t::one") == {"m.py": [2, 3]}
    finally:
        collector.stop()


def test_coverage_lines_are_the_tests_own_and_never_go_through_coverages_database(tmp_path):
    # Lines run between tests or while paused (pytest building an assertion message) belong
    # to no test; each test's lines come from coverage.py's flushes, not from its SQLite
    # data (writing and querying it per test was 0.45 s of sqlparse's 1 s suite).
    namespace = _module_run_from(tmp_path, "def f():\n    return 1\n\ndef g():\n    return 2\n\ndef h():\n    return 3\n")
    f, g, h = namespace["f"], namespace["g"], namespace["h"]
    collector = CoverageLines(tmp_path, ["m.py"])
    collector.start()
    try:
        g()  # before any test
        collector.begin("t::one")
        f()
        collector.pause()
        g()
        collector.resume()
        h()
        collector.pause()  # the end of the test's call phase; teardown runs paused
        g()
        assert collector.end("t::one") == {"m.py": [2, 8]}
        g()  # between tests
        collector.begin("t::two")
        g()
        assert collector.end("t::two") == {"m.py": [5]}
        assert collector.cov.get_data().measured_files() == set()
    finally:
        collector.stop()


def test_a_coverage_that_stores_lines_without_add_lines_is_read_back_per_test(tmp_path):
    # A coverage.py that bypassed CoverageData.add_lines would leave every test empty: the
    # collector sees its data fill up and queries each test's context instead.
    namespace = _module_run_from(tmp_path, "def f():\n    return 1\n\ndef g():\n    return 2\n")
    collector = CoverageLines(tmp_path, ["m.py"])
    collector.start()
    data = collector.cov.get_data()
    del data.add_lines  # the class's own method again: lines go to coverage.py's database
    try:
        collector.begin("t::one")
        namespace["f"]()
        collector.pause()
        assert collector.end("t::one") == {"m.py": [2]}
        collector.begin("t::two")
        namespace["g"]()
        collector.pause()
        assert collector.end("t::two") == {"m.py": [5]}
    finally:
        collector.stop()
