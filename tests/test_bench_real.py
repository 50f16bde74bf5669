"""bench/real_projects.py: bugs go in once and always come out, tracefix's output is read right, the totals add up."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import real_projects as rp  # noqa: E402

SOURCE = "def tail(n, seq):\n    return seq[-n:]\n\n\ndef head(n, seq):\n    return seq[:n]\n"
BUG = rp.Bug("demo/tail-slice", "pkg/items.py", "tail", "return seq[-n:]", "return seq[-n + 1:]", "off-by-one")


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "items.py").write_text(SOURCE)
    return tmp_path


def test_injected_writes_the_bug_then_restores_the_original_bytes(project):
    path = project / BUG.path
    before = rp.sha256_of(path)
    with rp.injected(project, BUG):
        assert "return seq[-n + 1:]" in path.read_text()
        assert "return seq[-n:]" not in path.read_text()
    assert rp.sha256_of(path) == before
    assert path.read_text() == SOURCE


def test_injected_restores_the_file_when_the_measurement_raises(project):
    with pytest.raises(KeyboardInterrupt):
        with rp.injected(project, BUG):
            raise KeyboardInterrupt
    assert (project / BUG.path).read_text() == SOURCE


def test_injected_refuses_a_snippet_that_is_missing_or_repeated(project):
    (project / "pkg" / "items.py").write_text(SOURCE + "\n\ndef again(n, seq):\n    return seq[-n:]\n")
    with pytest.raises(rp.BenchError, match="occurs 2 times"):
        with rp.injected(project, BUG):
            pass
    missing = rp.Bug("demo/none", "pkg/items.py", "tail", "return seq[-n - 1:]", "x", "off-by-one")
    with pytest.raises(rp.BenchError, match="occurs 0 times"):
        rp.checked_source(project / missing.path, missing.original)


def test_every_declared_bug_names_its_library_and_changes_its_snippet():
    assert len({b.id for b in rp.BUGS}) == len(rp.BUGS)
    for bug in rp.BUGS:
        assert bug.library in rp.LIBRARIES
        assert bug.original != bug.buggy
    counts = {name: sum(b.library == name for b in rp.BUGS) for name in rp.LIBRARIES}
    assert len(counts) >= 3 and min(counts.values()) >= 3


def test_function_rank_counts_ties_against_the_bug():
    loc = {"functions": [
        {"function": "a.py::f", "score": 1.0, "rank": 1},
        {"function": "a.py::g", "score": 0.7, "rank": 2},
        {"function": "a.py::h", "score": 0.7, "rank": 3},
    ]}
    assert rp.function_rank(loc, "a.py::g") == {"rank": 2, "worst": 3, "score": 0.7, "ranked": 3}
    assert rp.function_rank(loc, "a.py::zz")["rank"] is None


def test_failing_ids_come_from_the_short_summary():
    out = ("..F.E\n=== short test summary info ===\n"
           "FAILED tests/test_a.py::test_x[1-2] - AssertionError: assert 1 == 2\n"
           "ERROR tests/test_b.py::test_y\n"
           "1 failed, 3 passed, 1 error in 0.1s\n")
    assert rp.failing_from_summary(out) == ["tests/test_a.py::test_x[1-2]", "tests/test_b.py::test_y"]


def test_a_failing_subtest_names_its_test_once():
    out = ("SUBFAILED(iterable=[1, 2], key=None) tests/test_more.py::IsSortedTests::test_basic\n"
           "SUBFAILED(iterable=['3', ') x'], key=<class 'int'>) tests/test_more.py::IsSortedTests::test_basic\n"
           "34 failed, 1 passed in 0.30s\n")
    assert rp.failing_from_summary(out) == ["tests/test_more.py::IsSortedTests::test_basic"]


def test_text_trace_sizes_are_per_test_without_the_closing_line():
    text = ("● t.py::test_a  failed\n│ one\n│ two\n\n"
            "● t.py::test_b  failed\n│ three\n\n"
            "2 failing of 9 tests traced with settrace on Python 3.11.7\n")
    sizes = rp.per_test_sizes(text)
    assert [lines for lines, _ in sizes] == [3, 2]
    assert sizes[1][1] == len("● t.py::test_b  failed\n│ three\n".encode())


def test_traced_in_counts_tests_with_a_recorded_call():
    trace = {"tests": [{"functions": [{"key": "a.py::f"}]}, {"functions": [{"key": "a.py::g"}]}, {"functions": []}]}
    assert rp.traced_in(trace, "a.py::f") == 1


def _bug_row(rank, locate, trace, traced_in=1, false=()):
    return {"kind": "bug", "rank": {"rank": rank}, "ratios": {"locate": locate, "trace": trace},
            "traced_in": traced_in, "false_failures": list(false), "missed_failures": []}


def test_totals_count_hits_ratios_and_false_failures():
    rows = [
        {"kind": "clean", "false_failures": ["t.py::test_flaky"], "missed_failures": []},
        _bug_row(1, 1.5, 1.2),
        _bug_row(3, 2.5, 1.4, traced_in=0),
        _bug_row(None, 2.0, 3.0, false=["t.py::test_z"]),
        {"kind": "bug", "error": "no test fails with this bug", "false_failures": [], "missed_failures": []},
    ]
    totals = rp.totals_of(rows)
    assert (totals.bugs, totals.top1, totals.top3, totals.traced) == (3, 1, 2, 2)
    assert totals.false_failures == 2
    assert rp.spread(totals.locate_ratios) == "median 2.00, max 2.50"
    assert rp.percent(totals.top3, totals.bugs) == "2/3 (67%)"


def test_in_test_ratio_compares_the_same_tests_only():
    trace = {"tests": [{"nodeid": "t.py::a", "duration": 0.3}, {"nodeid": "t.py::b", "duration": 0.5},
                       {"nodeid": "t.py::c", "duration": 9.0}]}
    assert rp.in_test_ratio(trace, {"t.py::a": 0.1, "t.py::b": 0.3}) == pytest.approx(2.0)
    assert rp.in_test_ratio(trace, {}) is None


def test_the_mutation_bench_reads_the_searchs_figures_from_its_summary():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import mutation_real
    got = mutation_real.screened_of(["fixed without a model call (mutation search): line 3: `a` -> `b`",
                                     "mutation search: 7 of 26 distinct mutants screened (31 generated, 24.5/s), "
                                     "1 fully validated"])
    assert got == {"screened": 7, "unique": 26, "generated": 31, "per_second": 24.5}
    assert mutation_real.screened_of(["something else"]) == {}
