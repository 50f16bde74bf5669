"""Which functions a trace keeps: the snapshot bound, the calls left out, named tests."""

from __future__ import annotations

import sys

import pytest

from tracefix.tracer.backends import start_recording
from tracefix.tracer.cfg import functions_in
from tracefix.tracer.recorder import Recorder
from tracefix.tracer.records import BlockVisit, CallRecord
from tracefix.tracer.records import TestTrace as Trace  # a Test* name pytest would try to collect
from tracefix.tracer.selection import Selection, matching, over_budget, without


def _call(id_, function, parent=None, depth=0, visits=0):
    return CallRecord(id_, parent, function, depth, {}, tuple(BlockVisit(0, i + 1, {}, {}) for i in range(visits)))


def _trace(*calls, dropped=0):
    return Trace("tests/test_x.py::test_y", "failed", "", "", (), tuple(calls), dropped_calls=dropped)


def test_a_function_left_out_hands_its_callees_to_its_caller():
    trace = _trace(_call(1, "a"), _call(2, "b", 1, 1), _call(3, "b", 2, 2), _call(4, "c", 3, 3),
                   _call(5, "c", 1, 1), dropped=7)
    kept = without(trace, {"b"}, {"b": 5})
    assert [(c.id, c.parent, c.depth) for c in kept.calls] == [(1, None, 0), (4, 1, 1), (5, 1, 1)]
    assert kept.dropped_calls == 2  # b's own dropped calls go with it


def test_a_callee_handed_up_says_which_line_of_its_new_caller_led_to_it():
    from dataclasses import replace

    trace = _trace(_call(1, "a"), replace(_call(2, "b", 1, 1), call_line=12), replace(_call(3, "c", 2, 2), call_line=40),
                   replace(_call(4, "c", 1, 1), call_line=13))
    kept = without(trace, {"b"}, {})
    assert [(c.id, c.parent, c.call_line) for c in kept.calls] == [(1, None, None), (3, 1, 12), (4, 1, 13)]


def test_a_callee_of_a_dropped_light_call_keeps_its_place():
    # The recorder let call 9 go (a light call past the bounds): its callee stays where it was.
    kept = without(_trace(_call(1, "a"), _call(10, "c", 9, 2)), {"a"}, {})
    assert [(c.id, c.parent, c.depth) for c in kept.calls] == [(10, 9, 2)]


def test_the_snapshot_bound_skips_a_large_function_and_keeps_a_smaller_one_after_it():
    # In rank order: a (3 snapshots), big (11), small (2); the bound is 6.
    trace = _trace(_call(1, "a", visits=2), _call(2, "big", 1, 1, visits=10), _call(3, "small", 1, 1, visits=1))
    assert over_budget(trace, ("a", "big", "small"), 6) == {"big": 11}
    # The most suspicious function is kept whatever its size.
    assert over_budget(trace, ("big", "a", "small"), 6) == {"a": 3, "small": 2}


def test_a_trace_names_what_it_left_out_in_rank_order_with_the_flag_that_records_it():
    ran = {"tests/test_x.py::test_y": frozenset({"a", "big", "small", "late"})}
    selection = Selection(("a", "big", "small", "late"), {"a": 1, "big": 2, "small": 3}, ran, max_snapshots=6)
    trace = _trace(_call(1, "a", visits=2), _call(2, "big", 1, 1, visits=10), _call(3, "small", 1, 1, visits=1))
    shown = selection.applied(trace)
    assert {c.function for c in shown.calls} == {"a", "small"}
    assert [(u.function, u.rank, u.reason, u.snapshots) for u in shown.unrecorded] == [("big", 2, "snapshots", 11)]
    assert selection.include([shown]) == "--suspects 2"
    top = Selection(selection.order, selection.ranks, ran, suspects=1)
    left = top.applied(_trace(_call(1, "a", visits=2))).unrecorded
    assert [(u.function, u.rank, u.reason) for u in left] == [("big", 2, "rank"), ("small", 3, "rank"),
                                                               ("late", None, "rank")]
    assert top.include([top.applied(_trace(_call(1, "a")))]) == "--suspects 4"


def test_test_ids_select_nodeids_as_pytest_does():
    nodeids = ["tests/test_a.py::test_one", "tests/test_a.py::test_one_more", "tests/test_a.py::test_p[1]",
               "tests/test_a.py::Case::test_two", "tests/sub/test_b.py::test_three"]
    assert matching(["tests/test_a.py::test_one"], nodeids) == ["tests/test_a.py::test_one"]
    assert matching(["tests/test_a.py::test_p"], nodeids) == ["tests/test_a.py::test_p[1]"]
    assert matching(["tests/test_a.py::Case"], nodeids) == ["tests/test_a.py::Case::test_two"]
    assert matching(["tests/sub/"], nodeids) == ["tests/sub/test_b.py::test_three"]
    assert len(matching(["tests/test_a.py"], nodeids)) == 4


SOURCE = "def hot(i):\n    return i\n\n\ndef cold():\n    return [hot(i) for i in range(30)]\n"


@pytest.mark.parametrize("backend", ["settrace"] + (["monitoring"] if hasattr(sys, "monitoring") else []))
def test_the_recorder_counts_dropped_calls_per_function(tmp_path, backend):
    path = tmp_path / "hotmod.py"
    path.write_text(SOURCE)
    namespace: dict = {}
    exec(compile(SOURCE, str(path), "exec"), namespace)
    recorder = Recorder(functions_in(SOURCE, "hotmod.py"), tmp_path, max_calls=5)
    recording = start_recording(recorder, backend)
    try:
        namespace["cold"]()
    finally:
        recording.stop()
    _calls, dropped = recorder.records(recording.open_ended)
    assert dropped == 20  # 30 calls: 5 in full, the last 5 light, 20 dropped
    assert recorder.dropped_by_function() == {"hotmod.py::hot": 20}


def test_named_tests_are_ranked_over_themselves_not_the_whole_suite(tmp_path):
    """`trace TEST_ID` must not pay for a coverage run of every other test (10-18x plain on sqlparse)."""
    import json
    import time

    from conftest import run_cli

    (tmp_path / "calc.py").write_text("def double(x):\n    return x * 3\n")
    (tmp_path / "test_calc.py").write_text(
        "import time\nfrom calc import double\n\n\ndef test_double():\n    assert double(2) == 4\n\n\n"
        "def test_slow_other():\n    time.sleep(6)\n    assert double(0) == 0\n")
    started = time.perf_counter()
    result = run_cli("trace", str(tmp_path), "test_calc.py::test_double", "--format", "json")
    seconds = time.perf_counter() - started
    data = json.loads(result.stdout)
    assert [t["nodeid"] for t in data["tests"]] == ["test_calc.py::test_double"]
    assert any(c["function"] == "calc.py::double" for c in data["tests"][0]["calls"])
    assert seconds < 6, f"{seconds:.1f}s: the unnamed 6 s test ran"
    assert not any("every test fails" in w for w in data.get("warnings", []))
