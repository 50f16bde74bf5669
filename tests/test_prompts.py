"""Prompts built from a real trace, fitted to a token budget."""

from __future__ import annotations

import pytest

from tracefix.debugger.llm import count_tokens
from tracefix.debugger.prompts import failure_context, fix_messages, source_of_test, verdict_messages
from tracefix.tracer.tracing import trace_tests


def count(text: str) -> int:
    return count_tokens("gpt-4o-mini", text)


@pytest.fixture(scope="module")
def loop_trace(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "acc.py").write_text(
        "def running(xs):\n"
        "    \"\"\"Sum of xs.\"\"\"\n"
        "    total = 0\n"
        "    for x in xs:\n"
        "        total += x * 2\n"
        "    return total\n")
    (root / "test_acc.py").write_text(
        "from pkg.acc import running\n\n\ndef test_running():\n    assert running(list(range(300))) == 44850\n")
    run = trace_tests(root, bounds={"max_visits": 40})
    (trace,) = run.traces
    info = next(f for f in trace.functions if f.name == "running")
    outcome = run.failing[0]
    return root, trace, info, failure_context(root, outcome.nodeid, outcome.message, outcome.longrepr)


def test_test_source_is_found_from_the_node_id(loop_trace):
    root, _, _, failure = loop_trace
    assert source_of_test(root, "test_acc.py::test_running").startswith("def test_running():")
    assert failure.test_source.startswith("def test_running():")
    assert "assert 89700 == 44850" in failure.message


def test_large_budget_keeps_many_visits(loop_trace):
    root, trace, info, failure = loop_trace
    messages, blocks = verdict_messages(root, info, trace, failure, count, 20000)
    text = messages[-1]["content"]
    assert text.count("[block") >= 40
    assert blocks == sorted(blocks) and len(blocks) >= 3


def test_small_budget_elides_the_middle_but_keeps_test_and_task(loop_trace):
    root, trace, info, failure = loop_trace
    messages, _ = verdict_messages(root, info, trace, failure, count, 700)
    text = messages[-1]["content"]
    assert count(text) <= 700
    assert "visits in the middle left out" in text
    assert "def test_running():" in text and "## Task" in text
    assert "def running(xs):" in text
    # the last visits, nearest the result, are kept
    assert "returned 89700" in text


def test_fix_prompt_names_the_failure_and_previous_attempts(loop_trace):
    root, trace, info, failure = loop_trace
    previous = [("def running(xs):\n    return 0", "1 of 1 failing tests still fail")]
    messages = fix_messages(root, info, trace, failure, count, 3000, ["block 2: doubles each item"], previous)
    text = messages[-1]["content"]
    assert "assert 89700 == 44850" in text
    assert "block 2: doubles each item" in text
    assert "A previous attempt that was rejected" in text and "return 0" in text
    assert count(text) <= 3000


def test_fix_prompt_shows_how_a_rejected_attempt_ran(loop_trace):
    root, trace, info, failure = loop_trace
    previous = [("def running(xs):\n    return 1", "still fails", "Call running(xs=[0, 1]) returned 1")]
    text = fix_messages(root, info, trace, failure, count, 3000, [], previous)[-1]["content"]
    assert "How the failing test ran on it:\nCall running(xs=[0, 1]) returned 1" in text


def test_a_short_files_rest_is_shown_with_the_function_and_a_long_ones_is_not(tmp_path):
    from tracefix.debugger.prompts import file_context
    from tracefix.tracer.records import FunctionInfo

    source = ("from collections import deque as Queue\n\n\ndef bfs(start, goal):\n    queue = Queue()\n"
              "    return False\n\n\n\"\"\"\nBreadth-First Search\nOutput: whether goal is reachable\n\"\"\"\n")
    (tmp_path / "bfs.py").write_text(source)
    def info_at(first: int, end: int) -> FunctionInfo:
        return FunctionInfo(key="bfs.py::bfs", path="bfs.py", qualname="bfs", name="bfs", first_line=first,
                            def_line=first, end_line=end, params=("start", "goal"), docstring=None, blocks=())

    info = info_at(4, 6)
    context = file_context(tmp_path, info)
    assert context.startswith("from collections import deque as Queue")
    assert "# ... `bfs`, shown above ..." in context and "Output: whether goal is reachable" in context
    assert "queue = Queue()" not in context
    assert file_context(tmp_path, info, max_lines=5) == ""  # too long to be worth its tokens
    (tmp_path / "bfs.py").write_text("def bfs(start, goal):\n    return False\n")
    assert file_context(tmp_path, info_at(1, 2)) == ""  # nothing else in the file


def test_fix_prompt_carries_the_rest_of_a_short_file(loop_trace):
    root, trace, info, failure = loop_trace
    text = fix_messages(root, info, trace, failure, count, 6000)[-1]["content"]
    assert "## The rest of" not in text  # acc.py holds nothing but the function
    (root / "pkg" / "acc.py").write_text((root / "pkg" / "acc.py").read_text() + "\n\nSCALE = 2  # the intent\n")
    try:
        text = fix_messages(root, info, trace, failure, count, 6000)[-1]["content"]
    finally:
        (root / "pkg" / "acc.py").write_text((root / "pkg" / "acc.py").read_text().split("\n\nSCALE")[0])
    assert "## The rest of pkg/acc.py" in text and "SCALE = 2  # the intent" in text


def test_the_trace_shows_a_blocks_own_code_and_names_a_recursion_that_repeats_itself(tmp_path):
    (tmp_path / "sort.py").write_text(
        "def mergesort(arr):\n"
        "    \"\"\"Sorted copy of arr.\n\n    Long docstring.\n    \"\"\"\n"
        "    def merge(left, right):\n"
        "        # the helper's body is its own code object\n"
        "        return sorted(left + right)\n"
        "\n"
        "    if len(arr) == 0:\n"
        "        return arr\n"
        "    middle = len(arr) // 2\n"
        "    return merge(mergesort(arr[:middle]), mergesort(arr[middle:]))\n")
    (tmp_path / "test_sort.py").write_text(
        "from sort import mergesort\n\n\ndef test_sort():\n    assert mergesort([3, 1]) == [1, 3]\n")
    run = trace_tests(tmp_path, bounds={"max_calls": 20}, test_timeout=10)
    (trace,) = run.traces
    info = next(f for f in trace.functions if f.name == "mergesort")
    outcome = run.failing[0]
    failure = failure_context(tmp_path, outcome.nodeid, outcome.message, outcome.longrepr)
    text = verdict_messages(tmp_path, info, trace, failure, count, 6000)[0][-1]["content"]
    execution = text.split("## Execution, block by block")[1]
    assert "Long docstring" not in execution and "sorted(left + right)" not in execution
    assert "the helper's body" not in execution
    assert "def merge(left, right):\n          ...\n      if len(arr) == 0:" in execution
    # the flat prompt said "stopped by the timeout, or by a RecursionError" of every such call
    assert "Call mergesort(arr=[3, 1]) did not return (stopped by a RecursionError: the stack overflowed)" in execution
    assert "it calls mergesort(arr=[3]) again, with the same arguments" in execution
    assert "it calls mergesort(arr=[3, 1]) again" not in execution  # it calls [3] and [1]


def test_a_call_stopped_by_the_timeout_says_so(tmp_path):
    (tmp_path / "spin.py").write_text(
        "def spin(n):\n    while n > 0:\n        n = n + 1\n    return n\n")
    (tmp_path / "test_spin.py").write_text(
        "from spin import spin\n\n\ndef test_spin():\n    assert spin(1) == 0\n")
    run = trace_tests(tmp_path, test_timeout=1)
    (trace,) = run.traces
    info = next(f for f in trace.functions if f.name == "spin")
    outcome = run.failing[0]
    failure = failure_context(tmp_path, outcome.nodeid, outcome.message, outcome.longrepr)
    text = fix_messages(tmp_path, info, trace, failure, count, 6000)[-1]["content"]
    assert "Call spin(n=1) did not return (stopped by the per-test timeout)" in text


def test_the_fix_prompt_writes_values_inline_once_and_stays_under_the_cap(loop_trace):
    root, trace, info, failure = loop_trace
    text = fix_messages(root, info, trace, failure, count, 20000)[-1]["content"]
    # the loop body's line carries its first and last visit, and how often it ran
    body = next(line for line in text.splitlines() if line.startswith("        total += x * 2  # [block"))
    assert "ran 300x; first: (no change); last recorded (visit 40): total=1560" in body  # bounded to 40 visits
    assert "    before: " not in text and "] (visit " not in text  # no block dump
    assert text.count("def running(xs):") == 1  # the source once, annotated
    section = text.split("## What the code computed")[1].split("## Task")[0]
    assert count(section) <= 1500
