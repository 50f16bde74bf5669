"""The recorder, in-process, on both back ends where the interpreter has them."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from tracefix.tracer.cfg import functions_in
from tracefix.tracer.backends import start_recording
from tracefix.tracer.recorder import Recorder

BACKENDS = ["settrace"] + (["monitoring"] if hasattr(sys, "monitoring") else [])

SOURCE = textwrap.dedent(
    '''
    def total(xs):
        acc = 0
        for x in xs:
            acc += x
        return acc


    def ratio(a, b):
        if b == 0:
            raise ZeroDivisionError("b is zero")
        return a / b


    def outer(n):
        s = 0
        for i in range(n):
            s += inner(i)
        return s


    def inner(i):
        return i * 2


    def spin(n):
        k = 0
        while k < n:
            k += 1
        return k


    def untraced_helper():
        return 1
    '''
)


def load(root: Path, name: str, source: str):
    """Write `source` as root/<name>.py and import it under a unique module name."""
    path = root / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"{name}_{id(path)}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def module(tmp_path):
    mod = load(tmp_path, "mod_under_test", SOURCE)
    functions = [f for f in functions_in(SOURCE, "mod_under_test.py") if f.name != "untraced_helper"]
    return tmp_path, mod, functions


def record(root, functions, fn, *args, backend, **bounds):
    recorder = Recorder(functions, root, **bounds)
    recording = start_recording(recorder, backend)
    try:
        try:
            fn(*args)
        except Exception:
            pass
    finally:
        recording.stop()
    calls, dropped = recorder.records(recording.open_ended)
    return calls, dropped


def _block_of(info, line_text):
    lineno = SOURCE.splitlines().index(line_text) + 1
    return info.block_at(lineno).index


@pytest.mark.parametrize("backend", BACKENDS)
def test_records_each_block_visit_with_changed_variables(module, backend):
    root, mod, functions = module
    calls, _ = record(root, functions, mod.total, [3, 4], backend=backend)
    (call,) = calls
    assert call.function == "mod_under_test.py::total"
    assert call.args == {"xs": "[3, 4]"}
    assert call.returned == "7"
    info = next(f for f in functions if f.name == "total")
    body = _block_of(info, "        acc += x")
    body_visits = [v for v in call.visits if v.block == body]
    assert [v.index for v in body_visits] == [1, 2]
    assert body_visits[0].after == {"acc": "3"}
    assert body_visits[1].after == {"acc": "7"}
    # the first visit of the call carries every local; later ones only what changed
    assert call.visits[0].before == {"xs": "[3, 4]"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_exception_is_recorded_with_its_line_and_state(module, backend):
    root, mod, functions = module
    calls, _ = record(root, functions, mod.ratio, 1, 0, backend=backend)
    (call,) = calls
    assert call.raised == "ZeroDivisionError: b is zero"
    assert call.raised_line == SOURCE.splitlines().index('        raise ZeroDivisionError("b is zero")') + 1
    assert call.exit_locals == {"a": "1", "b": "0"}
    assert call.returned is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_call_tree_links_callee_to_caller(module, backend):
    root, mod, functions = module
    calls, _ = record(root, functions, mod.outer, 3, backend=backend)
    outer = [c for c in calls if c.function.endswith("::outer")]
    inner = [c for c in calls if c.function.endswith("::inner")]
    assert len(outer) == 1 and len(inner) == 3
    assert all(c.parent == outer[0].id and c.depth == 1 for c in inner)
    assert [c.args["i"] for c in inner] == ["0", "1", "2"]
    assert [c.returned for c in inner] == ["0", "2", "4"]
    assert outer[0].returned == "6"


@pytest.mark.parametrize("backend", BACKENDS)
def test_loop_visits_are_bounded_and_elided(module, backend):
    root, mod, functions = module
    calls, _ = record(root, functions, mod.spin, 1000, backend=backend, max_visits=3)
    (call,) = calls
    per_block: dict[int, int] = {}
    for v in call.visits:
        per_block[v.block] = per_block.get(v.block, 0) + 1
    assert max(per_block.values()) <= 3
    assert call.elided, "visits past the bound must be reported as elided"
    if backend == "settrace":
        assert {e.last for e in call.elided} >= {1000}
    # the state at the end is never lost
    assert call.exit_locals["k"] == "1000"
    assert call.returned == "1000"


@pytest.mark.parametrize("backend", BACKENDS)
def test_calls_past_the_bound_are_kept_light(module, backend):
    root, mod, functions = module
    calls, dropped = record(root, functions, mod.outer, 50, backend=backend, max_calls=5)
    inner = [c for c in calls if c.function.endswith("::inner")]
    full = [c for c in inner if c.visits]
    assert len(full) == 5
    # the last light calls are kept with their arguments and results
    assert inner[-1].args == {"i": "49"} and inner[-1].returned == "98"
    assert len(inner) == 10
    assert dropped == 40


@pytest.mark.parametrize("backend", BACKENDS)
def test_untraced_functions_are_not_recorded(module, backend):
    root, mod, functions = module
    calls, _ = record(root, functions, mod.untraced_helper, backend=backend)
    assert calls == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_memory_stays_bounded_for_a_long_loop(module, backend):
    root, mod, functions = module
    tracemalloc.start()
    try:
        record(root, functions, mod.spin, 200_000, backend=backend)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_later_recording_sees_what_an_earlier_one_turned_off(module, backend):
    # `tracefix trace` starts one Recorder per test in the same process: lines a bounded
    # loop turned off, and starts of code that was no target, must be seen again.
    root, mod, functions = module
    first, _ = record(root, functions, mod.spin, 100, backend=backend, max_visits=3)
    second, _ = record(root, functions, mod.spin, 100, backend=backend, max_visits=3)
    assert [c.visits for c in second] == [c.visits for c in first]
    total_only = [f for f in functions if f.name == "total"]
    assert record(root, total_only, mod.outer, 3, backend=backend)[0] == []
    calls, _ = record(root, functions, mod.outer, 3, backend=backend)
    assert sorted(c.function.split("::")[1] for c in calls) == ["inner"] * 3 + ["outer"]


@pytest.mark.skipif(not hasattr(sys, "monitoring"), reason="sys.monitoring is 3.12+")
def test_stopped_recording_leaves_no_events_on_recorded_code(module):
    from tracefix.tracer.types import RECORDER_TOOL_ID as TOOL_ID

    root, mod, functions = module
    record(root, functions, mod.outer, 3, backend="monitoring")
    for fn in (mod.outer, mod.inner):
        assert sys.monitoring.get_local_events(TOOL_ID, fn.__code__) == 0


MULTILINE = '''
def build(n):
    out = []
    for i in range(n):
        out.append(
            i * 2
        )
    return out
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_multiline_statement_is_one_visit(tmp_path, backend):
    mod = load(tmp_path, "multi", MULTILINE)
    functions = functions_in(MULTILINE, "multi.py")
    calls, _ = record(tmp_path, functions, mod.build, 3, backend=backend)
    (call,) = calls
    info = functions[0]
    body = info.block_at(MULTILINE.splitlines().index("        out.append(") + 1).index
    assert [v.index for v in call.visits if v.block == body] == [1, 2, 3]


OWN_TRACE = '''
import sys


def same_trace_function():
    first = sys._getframe().f_trace
    second = sys._getframe().f_trace
    return first is second
'''


def test_settrace_keeps_one_trace_function_per_recorded_frame(tmp_path):
    # A trace function answers every event with the function for the next one; answering
    # with a new object (a fresh bound method) costs an allocation and a swap per line.
    mod = load(tmp_path, "own_trace", OWN_TRACE)
    (call,), _ = record(tmp_path, functions_in(OWN_TRACE, "own_trace.py"), mod.same_trace_function,
                        backend="settrace")
    assert call.returned == "True"


class _CountingKey:
    """A dict key that counts how often a summary compares or prints it."""

    touched = 0

    def __init__(self, i: int) -> None:
        self.i = i

    def __hash__(self) -> int:
        return self.i

    def __eq__(self, other) -> bool:
        return self.i == other.i

    def __lt__(self, other) -> bool:
        _CountingKey.touched += 1
        return self.i < other.i

    def __repr__(self) -> str:
        _CountingKey.touched += 1
        return f"K{self.i}"


def test_snapshot_of_a_large_mapping_reads_only_its_first_items():
    # Snapshots are taken at every recorded block visit: summarizing a large dict must not
    # sort it (reprlib does), nor print all of a Counter (its own repr does).
    from collections import Counter

    from tracefix.tracer.snapshot import summarize

    big = {_CountingKey(i): i for i in range(20_000)}
    expected = "{K0: 0, K1: 1, K2: 2, K3: 3, K4: 4, K5: 5, ...}"
    for value, text in ((big, expected), (Counter(big), f"Counter({expected})")):
        _CountingKey.touched = 0
        assert summarize(value) == text
        assert _CountingKey.touched < 100
    assert summarize({"b": 1, "a": 2}) == "{'a': 2, 'b': 1}"  # small ones as before


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hot_function_does_not_starve_the_others(module, backend):
    root, mod, functions = module

    def both():
        mod.outer(50)  # 50 calls of inner: past every bound below
        mod.total([1, 2])

    calls, _ = record(root, functions, both, backend=backend, max_calls=3, max_total_calls=10)
    assert any(c.function.endswith("::total") and c.visits for c in calls)
    inner = [c for c in calls if c.function.endswith("::inner")]
    assert len([c for c in inner if c.visits]) == 3


FOREVER = '''
def forever(n):
    return forever(n + 1)
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_endless_recursion_keeps_the_calls_it_recorded(tmp_path, backend):
    mod = load(tmp_path, "forever", FOREVER)
    calls, _ = record(tmp_path, functions_in(FOREVER, "forever.py"), mod.forever, 0, backend=backend,
                      max_calls=5)
    full = [c for c in calls if c.visits]
    assert [c.args["n"] for c in full] == ["0", "1", "2", "3", "4"]
    assert [c.depth for c in full] == [0, 1, 2, 3, 4]


GENERATORS = textwrap.dedent(
    '''
    def words(text):
        for w in text.split():
            yield w.upper()


    def first(text):
        gen = words(text)
        return next(gen)


    def shout(text):
        out = list(words(text))
        return first(text), out
    '''
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_generator_is_one_call_with_its_resumptions(tmp_path, backend):
    mod = load(tmp_path, "gens", GENERATORS)
    functions = functions_in(GENERATORS, "gens.py")
    calls, _ = record(tmp_path, functions, mod.shout, "a b c", backend=backend)
    by_name = {}
    for call in calls:
        by_name.setdefault(call.function.split("::")[-1], []).append(call)
    exhausted, abandoned = by_name["words"]
    assert exhausted.yields == 3 and exhausted.yielded == ("'A'", "'B'", "'C'")
    assert exhausted.returned == "None" and exhausted.raised is None and exhausted.finished
    # each resumption is a visit of the same record, not a call of its own
    assert len([v for v in exhausted.visits if v.after.get("w")]) == 3
    # closed by the garbage collector after one value: stopped early, not a failure
    assert abandoned.yields == 1 and abandoned.raised is None and abandoned.finished
    assert abandoned.returned is None
    assert abandoned.parent == by_name["first"][0].id


THROWN = textwrap.dedent(
    '''
    def counter():
        n = 0
        while True:
            yield n
            n += 1


    def thrown():
        gen = counter()
        next(gen)
        try:
            gen.throw(ValueError("stop"))
        except ValueError:
            return "caught"
    '''
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_exception_thrown_into_a_generator_at_its_yield_ends_the_call_as_raised(tmp_path, backend):
    mod = load(tmp_path, "thrown", THROWN)
    calls, _ = record(tmp_path, functions_in(THROWN, "thrown.py"), mod.thrown, backend=backend)
    [gen] = [c for c in calls if c.function.endswith("::counter")]
    assert gen.yields == 1 and gen.finished
    assert gen.raised is not None and gen.raised.startswith("ValueError")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nested_call_knows_the_line_of_its_caller_that_made_it(module, backend):
    root, mod, functions = module
    calls, _ = record(root, functions, mod.outer, 2, backend=backend)
    outer, *inner = calls
    assert outer.call_line is None  # no recorded caller
    assert {c.call_line for c in inner} == {SOURCE.splitlines().index("        s += inner(i)") + 1}


OBJECTS = textwrap.dedent(
    '''
    class Ledger:
        def __init__(self):
            self.owner = "a fairly long owner name to use up the summary " * 2
            self.bank = "a fairly long bank name to use up the summary " * 2
            self.entries = []

        def add(self, amount):
            self.entries.append(amount)
            return len(self.entries)
    '''
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_change_past_the_cut_of_a_long_object_is_recorded_by_attribute(tmp_path, backend):
    mod = load(tmp_path, "ledger", OBJECTS)
    functions = [f for f in functions_in(OBJECTS, "ledger.py") if f.name == "add"]
    ledger = mod.Ledger()
    calls, _ = record(tmp_path, functions, ledger.add, 42, backend=backend)
    (call,) = calls
    assert len(call.args["self"]) == 120  # the argument itself stays one bounded summary
    first = call.visits[0]
    assert first.before["self.entries"] == "[]" and "self" not in first.before
    assert first.after == {"self.entries": "[42]"}


@pytest.mark.parametrize("value", [
    0, -1, 10**37, -(10**38) + 1, 10**38, 10**40, 2**200, True, False, None, 1.5, float("inf"), float("nan"),
    1e300, -0.0, 3 + 4j, "", "x", "it's", 'a"b', "a" * 58, "a" * 60, "a" * 61, "a\nb\tc", "é\u2028",
    "\x00" * 20, "'" * 59, [], (), [1, "a", None], (1,), (1, 2), list(range(8)), list(range(9)), ["a" * 61],
    [[1]], ["x" * 40] * 3, (2**200,), [1.5, True, 3j], {"a": 1, "b": [2, "c" * 70]}, {1, 2}, [[1, 2], (3,)],
])
def test_the_fast_path_for_scalars_says_what_reprlib_says(value):
    # summarize skips reprlib for short scalars and strings (most of a snapshot): the text
    # must be the one the general path gives, cut included.
    import reprlib

    from tracefix.tracer.snapshot import _REPR, MAX_CHARS, _cut, summarize, summarize_locals

    class General(type(_REPR)):  # the same bounds, reprlib's dispatch at every level
        repr1 = reprlib.Repr.repr1

    assert summarize(value) == _cut(General().repr(value), MAX_CHARS)
    assert summarize_locals({"v": value, "__hidden": value}) == {"v": summarize(value)}


def test_the_traced_run_parses_only_the_files_its_functions_are_in(tmp_path, monkeypatch):
    # Parsing a whole project for a few functions cost start-up time, and its garbage made the
    # first traced test pay a collection: only the files the keys name are read.
    from tracefix.tracer import trace_session

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("def f(x):\n    return x\n\ndef g():\n    return 1\n")
    (tmp_path / "pkg" / "b.py").write_text("def h():\n    return 2\n")
    parsed = []
    real = trace_session.functions_in
    monkeypatch.setattr(trace_session, "functions_in", lambda source, rel: parsed.append(rel) or real(source, rel))
    infos = trace_session.project_functions(tmp_path, None, {"pkg/a.py::f"})
    assert [i.key for i in infos] == ["pkg/a.py::f"]
    assert parsed == ["pkg/a.py"]
    assert {i.key for i in trace_session.project_functions(tmp_path)} == {"pkg/a.py::f", "pkg/a.py::g", "pkg/b.py::h"}
