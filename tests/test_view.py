"""The text trace as a person reads it: bounded whatever the calls, as wide as the console,
nothing cut, and tied to the ranking. In process on hand-made or freshly recorded traces;
end to end where the CLI decides (widths, counts from a real recording)."""

from __future__ import annotations

import importlib.util
import re
import textwrap
from dataclasses import replace

from rich.console import Console

from conftest import run_cli
from tracefix.tracer.backends import start_recording
from tracefix.tracer.cfg import functions_in
from tracefix.tracer.recorder import Recorder
from tracefix.tracer import records  # its TestTrace, imported by name, pytest would try to collect
from tracefix.tracer.records import BlockVisit, CallRecord
from tracefix.tracer.view import Marks, render_legend, render_trace

LONG_LINE = "    return " + " + ".join(f"value_{i:02d}" for i in range(12)) + " + 1000000"  # 150 characters


def project(tmp_path, source: str, name: str = "lib.py"):
    (tmp_path / name).write_text(source)
    return functions_in(source, name)


def rendered(tmp_path, trace: records.TestTrace, width: int, marks: Marks | None = None) -> str:
    console = Console(record=True, width=width, no_color=True, highlight=False)
    render_trace(console, tmp_path, trace, marks=marks)
    return console.export_text()


def flat(text: str) -> str:
    """The words of a rendered trace, box drawing and line breaks gone."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def trace_of(functions, calls, **kw) -> records.TestTrace:
    return records.TestTrace("tests/test_lib.py::test_it", kw.pop("outcome", "failed"), "AssertionError: assert 1 == 2",
                     "E       assert 1 == 2", tuple(functions), tuple(calls), **kw)


def one_call(functions, name: str, args: dict, returned: str, before: dict, after: dict | None = None,
             **kw) -> CallRecord:
    info = next(f for f in functions if f.name == name)
    return CallRecord(kw.pop("id", 1), kw.pop("parent", None), info.key, kw.pop("depth", 0), args,
                      (BlockVisit(0, 1, before, after or {}),), returned=returned, **kw)


def test_a_long_source_line_is_shown_whole_on_a_wide_console(tmp_path):
    args = ", ".join(f"value_{i:02d}" for i in range(12))
    functions = project(tmp_path, f"def add_all({args}):\n{LONG_LINE}\n")
    assert len(LONG_LINE) == 150
    call = one_call(functions, "add_all", {"value_00": "1"}, "16", {"value_00": "1"})
    text = rendered(tmp_path, trace_of(functions, [call]), 250)
    assert LONG_LINE.strip() in text  # on one line, not cut
    assert "…" not in text


def test_at_80_columns_a_long_argument_wraps_and_the_result_stays_in_the_title(tmp_path):
    functions = project(tmp_path, textwrap.dedent('''\
        def price_of(cart, price):
            total = price * 2
            return total
    '''))
    cart = "Cart(lines=[('book', 2000, 1, 10), ('pen', 150, 2, 0), ('ink', 75, 3, 5)], owner='ann')"
    call = one_call(functions, "price_of", {"cart": cart, "price": "1000"}, "2000",
                    {"cart": cart, "price": "1000"}, {"total": "2000"})
    text = rendered(tmp_path, trace_of(functions, [call]), 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    title = next(line for line in text.splitlines() if "price_of(" in line)
    assert "-> 2000" in title  # the long argument did not push the result out
    words = flat(text)
    assert f"cart={cart}, price=1000" in words  # wrapped in the box, whole
    assert "price=1000" in words and "→ total=2000" in words


def test_at_60_columns_the_values_go_under_the_source_instead_of_vanishing(tmp_path):
    functions = project(tmp_path, textwrap.dedent('''\
        def scale(values, factor):
            scaled = [v * factor for v in values]
            return scaled
    '''))
    values = "[" + ", ".join(str(i) for i in range(30)) + "]"
    call = one_call(functions, "scale", {"values": values, "factor": "3"}, "[...]",
                    {"values": values, "factor": "3"}, {"scaled": "[0, 3, 6, 9]"})
    text = rendered(tmp_path, trace_of(functions, [call]), 60)
    assert all(len(line) <= 60 for line in text.splitlines())
    words = flat(text)
    assert f"values={values}, factor=3" in words
    assert "→ scaled=[0, 3, 6, 9]" in words


def test_repeated_calls_collapse_into_one_box_with_the_first_and_the_last(tmp_path):
    functions = project(tmp_path, textwrap.dedent('''\
        def total(n):
            return sum(square(i) for i in range(n))


        def square(x):
            return x * x
    '''))
    total = one_call(functions, "total", {"n": "5000"}, "41654167500", {"n": "5000"})
    squares = [one_call(functions, "square", {"x": str(i)}, str(i * i), {"x": str(i)}, id=i + 2, parent=1,
                        depth=1, call_line=2) for i in list(range(20)) + list(range(4980, 5000))]
    trace = trace_of(functions, [total] + squares, dropped_calls=4960,
                     call_counts={"lib.py::total": 1, "lib.py::square": 5000})
    text = rendered(tmp_path, trace, 120)
    assert len(text.splitlines()) < 40
    assert "square ×5000 (40 recorded, 4960 past the recorder's bounds)" in text
    assert "first: square(x=0) -> 0" in text and "last: square(x=4999) -> 24990001" in text
    assert "line 2 → square" in text
    # the footer says what the JSON holds and what was never recorded
    assert "--format json has all of them" in text and "4960 more calls were never recorded" in text


def test_a_hung_test_with_a_hot_helper_prints_a_bounded_trace(tmp_path):
    (tmp_path / "lex").mkdir()
    (tmp_path / "lex" / "__init__.py").write_text("")
    (tmp_path / "lex" / "scan.py").write_text(textwrap.dedent('''\
        def peek(text, pos):
            if pos >= len(text):
                raise IndexError("end of text")
            return text[pos]


        def skip_spaces(text, pos):
            while True:
                try:
                    ch = peek(text, pos)
                except IndexError:
                    continue  # bug: never stops at the end
                if ch != " ":
                    return pos
                pos += 1


        def square(x):
            return x * x


        def total(n):
            return sum(square(i) for i in range(n))
    '''))
    (tmp_path / "test_scan.py").write_text(textwrap.dedent('''\
        from lex.scan import skip_spaces, total


        def test_skip_to_end():
            assert skip_spaces("a  ", 1) == 3


        def test_total():
            assert total(5000) == 1
    '''))
    # --suspects 0: every function recorded (the default bound on snapshots would leave peek out)
    result = run_cli("trace", str(tmp_path), "--test-timeout", "1", "--suspects", "0", timeout=240)
    assert result.returncode == 1, result.stderr
    text = result.stdout
    hung, hot = text.split("● test_scan.py::test_total")
    assert "● test_scan.py::test_skip_to_end  timeout" in hung
    assert len(hung.splitlines()) < 80 and len(hung) < 20_000, len(hung)
    peek = re.search(r"peek ×(\d+) \((\d+) recorded, (\d+) past the recorder's bounds\)", hung)
    assert peek and int(peek[1]) > 10_000 and int(peek[2]) + int(peek[3]) == int(peek[1])
    assert "raised IndexError: end of text" in hung
    assert re.search(r"\d+ more calls were never recorded", hung)
    assert "square ×5000 (40 recorded, 4960 past the recorder's bounds)" in hot
    assert len(hot.splitlines()) < 40


def test_the_ranked_lines_are_marked_and_calls_that_reach_none_are_folded(tmp_path):
    functions = project(tmp_path, textwrap.dedent('''\
        def setup(n):
            return [0] * n


        def discount(price, percent):
            cut = price * percent // 10
            return price - cut
    '''))
    setup = one_call(functions, "setup", {"n": "3"}, "[0, 0, 0]", {"n": "3"})
    discount = one_call(functions, "discount", {"price": "100", "percent": "25"}, "-150",
                        {"price": "100", "percent": "25"}, {"cut": "250"}, id=2)
    marks = Marks(frozenset({("lib.py", 6)}))
    text = rendered(tmp_path, trace_of(functions, [setup, discount]), 120, marks)
    assert "· setup(n=3) -> [0, 0, 0]" in text  # one line, no box
    many = [one_call(functions, "setup", {"n": str(n)}, "[...]", {"n": str(n)}, id=10 + n) for n in range(10)]
    folded = rendered(tmp_path, trace_of(functions, many + [replace(discount, id=30)]), 160, marks)
    assert len([line for line in folded.splitlines() if "setup(" in line]) == 1
    assert "· setup ×10  first setup(n=0) -> [...]  last setup(n=9) -> [...]" in folded
    assert "not shown: setup ×8" in folded
    marked = next(line for line in text.splitlines() if "cut = price" in line)
    assert "6 ▶ cut = price * percent // 10" in marked
    assert "7   return price - cut" in text  # not marked
    console = Console(record=True, width=160, no_color=True)
    render_legend(console, marks)
    legend = console.export_text()
    assert legend.count("\n") == 1 and "[2] #3 block 2, 3rd visit" in legend  # one line
    assert "▶ test's top 3" in legend and "· folded: no ▶, no failure" in legend


GENERATOR = textwrap.dedent('''\
    def words(text):
        for w in text.split():
            yield w.upper()


    def shout(text):
        return list(words(text))
''')


def test_a_generator_is_one_box_with_what_it_yielded(tmp_path):
    functions = project(tmp_path, GENERATOR, "gen.py")
    spec = importlib.util.spec_from_file_location("gen_under_test", tmp_path / "gen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recorder = Recorder(functions, tmp_path)
    recording = start_recording(recorder)
    try:
        module.shout("a b c")
    finally:
        recording.stop()
    calls, _ = recorder.records(recording.open_ended)
    text = rendered(tmp_path, trace_of(functions, calls), 120)
    assert text.count("words(text='a b c')") == 1
    assert "line 7 → words(text='a b c') -> None after 3 yields" in text
    assert "yielded ×3" in text and "'A', 'B', 'C'" in text


def test_trace_marks_the_lines_locate_ranks_first(fixture_copy):
    root = fixture_copy("cart")
    ranked = run_cli("trace", str(root))
    assert ranked.returncode == 1, ranked.stderr
    assert re.search(r"8 ▶ cut = price \* percent // 10", ranked.stdout), ranked.stdout
    assert "· Cart.add(" in ranked.stdout  # reached no marked line, did not fail
    assert "line 25 → apply_discount(price=1000, percent=25) -> 0" in ranked.stdout


def test_bare_tracefix_keeps_parametrized_ids_and_pytests_explanation_lines(tmp_path):
    (tmp_path / "sqlp").mkdir()
    (tmp_path / "sqlp" / "__init__.py").write_text("")
    (tmp_path / "sqlp" / "split.py").write_text("def split(sql):\n    return sql.split(';')[:1]\n")
    (tmp_path / "test_split.py").write_text(textwrap.dedent('''\
        import pytest
        from sqlp.split import split


        @pytest.mark.parametrize("sql", ["select 1; select 2", "select a from b; select c"])
        def test_split(sql):
            assert len(split(sql)) == 2
    '''))
    # the report alone (the mutation search would fix `[:1]` and end the run with exit 0)
    result = run_cli("--quiet", cwd=tmp_path, env={"TRACEFIX_MODEL": "", "TRACEFIX_STRATEGY": "baseline"})
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "  ✗ test_split.py::test_split[select 1; select 2]: AssertionError: assert 1 == 2" in lines
    assert any(line.startswith("  ✗ test_split.py::test_split[select a from b; select c]:") for line in lines)
    # each line of pytest's explanation on a line of its own, not run together
    assert "       +  where 1 = len(['select 1'])" in lines
    assert "       +    where ['select 1'] = split('select 1; select 2')" in lines


def test_each_test_marks_the_top_ranked_lines_it_ran_not_the_suites(tmp_path):
    # Three failures run `total` (its lines outrank everything); one runs only `label`:
    # marking the suite's top 3 would leave that test's own suspect unmarked.
    (tmp_path / "shop.py").write_text(textwrap.dedent('''\
        def total(prices):
            n = len(prices)
            s = sum(prices)
            return s - n


        def label(name):
            return name.lower()


        def ok():
            return 1
    '''))
    (tmp_path / "test_shop.py").write_text(textwrap.dedent('''\
        from shop import label, ok, total


        def test_total_one():
            assert total([1]) == 1


        def test_total_two():
            assert total([1, 2]) == 3


        def test_total_three():
            assert total([1, 2, 3]) == 6


        def test_label():
            assert label("Ab") == "AB"


        def test_ok():
            assert ok() == 1
    '''))
    result = run_cli("trace", str(tmp_path), env={"COLUMNS": "120"})
    assert result.returncode == 1, result.stderr
    label_part = result.stdout[result.stdout.index("test_shop.py::test_label"):]
    assert re.search(r"8 ▶ return name\.lower\(\)", label_part), label_part
    total_part = result.stdout[result.stdout.index("test_shop.py::test_total_one"):
                               result.stdout.index("test_shop.py::test_total_two")]
    assert re.search(r"2 ▶ n = len\(prices\)", total_part), total_part
    assert "▶ return name" not in total_part
