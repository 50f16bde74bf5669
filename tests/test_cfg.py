"""Blocks and functions from source: exact blocks per construct, Python's own view of
functions (co_firstlineno, __qualname__), and the LINE events a real run reports."""

from __future__ import annotations

import ast
import argparse
import contextlib
import json.decoder
import sys
import textwrap
from pathlib import Path

import pytest

import tracefix.tracer.cfg
import tracefix.tracer.records
from tracefix.tracer.cfg import blocks_of, functions_in, line_to_block


def function(src: str, qualname: str | None = None):
    infos = functions_in(textwrap.dedent(src), "m.py")
    return infos[0] if qualname is None else next(f for f in infos if f.qualname == qualname)


def shape(src: str, qualname: str | None = None) -> list[tuple]:
    """(lines, kind, successors) per block: what the tests pin down exactly."""
    return [(b.lines, b.kind, b.successors) for b in function(src, qualname).blocks]


# --- blocks, construct by construct -------------------------------------------------


def test_straight_line_function_is_one_block_with_the_def_line():
    src = """\
    def f(a):
        '''Doc.'''
        b = a + 1
        return b
    """
    (block,) = function(src).blocks
    assert (block.index, block.start, block.end) == (0, 2, 4)
    # the def line opens the call (LINE events for code without a line of its own)
    assert (block.lines, block.kind, block.successors) == ((1, 2, 3, 4), "return", ())


def test_if_test_ends_its_block_and_each_branch_starts_one():
    src = """\
    def f(x):
        y = 0
        if x > 0:
            y = 1
        else:
            y = 2
        return y
    """
    assert shape(src) == [
        ((1, 2, 3), "condition", (1, 2)),
        ((4,), "body", (3,)),
        ((6,), "body", (3,)),  # the `else:` line belongs to no block
        ((7,), "return", ()),
    ]


def test_elif_test_is_a_jump_target_with_its_own_condition_block():
    src = """\
    def f(x):
        if x == 1:
            return "one"
        elif x == 2:
            return "two"
        else:
            return "many"
    """
    assert shape(src) == [
        ((1, 2), "condition", (1, 2)),
        ((3,), "return", ()),
        ((4,), "condition", (3, 4)),
        ((5,), "return", ()),
        ((7,), "return", ()),
    ]


def test_nested_if_joins_back_before_the_outer_join():
    src = """\
    def f(a, b):
        if a:
            if b:
                r = 1
            r = 2
        return r
    """
    assert shape(src) == [
        ((1, 2), "condition", (1, 4)),
        ((3,), "condition", (2, 3)),
        ((4,), "body", (3,)),
        ((5,), "body", (4,)),
        ((6,), "return", ()),
    ]


def test_loop_header_is_its_own_block():
    src = """\
    def f(xs):
        total = 0
        for x in xs:
            total += x
        return total
    """
    assert shape(src) == [
        ((1, 2), "body", (1,)),
        ((3,), "loop", (2, 3)),
        ((4,), "body", (1,)),  # back edge to the header
        ((5,), "return", ()),
    ]


def test_for_else_break_skips_else_and_continue_goes_to_header():
    src = """\
    def f(xs):
        for x in xs:
            if x < 0:
                continue
            if x == 0:
                break
        else:
            return None
        return x
    """
    assert shape(src) == [
        ((1, 2), "loop", (1, 5)),
        ((3,), "condition", (2, 3)),
        ((4,), "body", (0,)),  # continue
        ((5,), "condition", (0, 4)),
        ((6,), "body", (6,)),  # break: past the else
        ((8,), "return", ()),
        ((9,), "return", ()),
    ]


def test_while_else_with_multiline_test():
    src = """\
    def f(n):
        while (n > 0 and
               n != 7):
            n -= 1
        else:
            n = -1
        return n
    """
    assert shape(src) == [
        ((1, 2, 3), "condition", (1, 2)),
        ((4,), "body", (0,)),
        ((6,), "body", (3,)),
        ((7,), "return", ()),
    ]


def test_try_except_else_finally():
    src = """\
    def f(x):
        try:
            a = int(x)
        except ValueError:
            a = 0
        except TypeError:
            raise
        else:
            a += 1
        finally:
            done = True
        return a
    """
    assert shape(src) == [
        ((1, 2, 3), "body", (1, 3)),  # `try:` line; exceptions go to the first handler
        ((4, 5), "handler", (2, 4)),  # a type mismatch tries the next handler
        ((6, 7), "handler", (4,)),  # last typed handler: on to finally
        ((9,), "body", (4,)),
        ((11,), "body", (5,)),  # the `finally:` line belongs to no block
        ((12,), "return", ()),
    ]


def test_try_finally_alone_routes_return_through_finally():
    src = """\
    def f(lock):
        lock.acquire()
        try:
            return lock.value
        finally:
            lock.release()
    """
    assert shape(src) == [
        ((1, 2), "body", (1,)),
        ((3, 4), "return", (2,)),
        ((6,), "body", ()),  # then leaves the function, with the pending return
    ]


def test_return_through_nested_finally_bodies_innermost_first():
    src = """\
    def f():
        try:
            try:
                return 1
            finally:
                a = 1
        finally:
            b = 2
    """
    assert shape(src) == [((1, 2, 3, 4), "return", (1,)), ((6,), "body", (2,)), ((8,), "body", ())]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is 3.11+")
def test_except_star_handlers_can_all_run_in_turn():
    src = """\
    def f():
        try:
            a = 1
        except* ValueError:
            b = 2
        except* KeyError:
            c = 3
        d = 4
    """
    assert shape(src) == [
        ((1, 2, 3), "body", (1, 3)),
        ((4, 5), "handler", (2, 3)),
        ((6, 7), "handler", (3,)),
        ((8,), "body", ()),
    ]


def test_with_header_is_its_own_block_revisited_on_exit():
    src = """\
    def f(path):
        n = 0
        with open(path) as fh:
            n = len(fh.read())
        return n
    """
    assert shape(src) == [
        ((1, 2), "body", (1,)),
        ((3,), "body", (2, 3)),  # header: into the body, and after __exit__ on
        ((4,), "body", (1,)),  # leaving the body runs __exit__ on the header line
        ((5,), "return", ()),
    ]


def test_return_and_break_inside_with_go_through_the_header():
    src = """\
    def f(xs, cm):
        for x in xs:
            with cm:
                if x:
                    return x
                break
    """
    assert shape(src) == [
        ((1, 2), "loop", (1,)),
        ((3,), "body", (0, 2)),  # after __exit__: the loop header (break) or out (return)
        ((4,), "condition", (1, 3, 4)),
        ((5,), "return", (1,)),
        ((6,), "body", (1,)),
    ]


def test_async_with_async_for_and_await_stay_in_line():
    src = """\
    async def g(s):
        async with s.lock:
            await s.step()
        async for item in s.items():
            await s.take(item)
        return [await s.get(i) for i in range(2)]
    """
    info = function(src)
    assert info.is_async
    assert shape(src) == [
        ((1, 2), "body", (1, 2)),
        ((3,), "body", (0,)),
        ((4,), "loop", (3, 4)),
        ((5,), "body", (2,)),
        ((6,), "return", ()),
    ]


def test_return_in_the_middle_leaves_dead_code_its_own_block():
    src = """\
    def f(x):
        if x:
            return 1
            x = 2
        return 3
    """
    assert shape(src) == [
        ((1, 2), "condition", (1, 3)),
        ((3,), "return", ()),
        ((4,), "body", (3,)),  # unreachable: no block leads here
        ((5,), "return", ()),
    ]


def test_raise_in_the_middle_goes_to_the_handler():
    src = """\
    def f(x):
        try:
            if x:
                raise ValueError(x)
            y = 1
        except ValueError:
            y = 2
        return y
    """
    assert shape(src) == [
        ((1, 2, 3), "condition", (1, 2, 3)),
        ((4,), "return", (3,)),
        ((5,), "body", (3, 4)),
        ((6, 7), "handler", (4,)),
        ((8,), "return", ()),
    ]


def test_match_cases_with_guards_are_condition_blocks():
    src = """\
    def f(cmd):
        match cmd.split():
            case [name] if name.isupper():
                r = 1
            case ["go", direction]:
                return direction
            case _:
                r = 3
        return r
    """
    assert shape(src) == [
        ((1, 2), "body", (1,)),  # the subject closes its block; the first case starts one
        ((3,), "condition", (2, 3)),
        ((4,), "body", (7,)),
        ((5,), "condition", (4, 5)),
        ((6,), "return", ()),
        ((7,), "condition", (6,)),  # irrefutable: no way past it
        ((8,), "body", (7,)),
        ((9,), "return", ()),
    ]


def test_assert_ends_its_block():
    src = """\
    def f(x):
        y = x * 2
        assert y > 0, "positive"
        return y
    """
    assert shape(src) == [((1, 2, 3), "condition", (1,)), ((4,), "return", ())]


def test_one_line_compound_statement_gives_its_line_to_the_header():
    src = """\
    def f(x):
        if x: return 1
        while x: x -= 1
        return 0
    """
    info = function(src)
    assert shape(src) == [
        ((1, 2), "condition", (1, 2)),
        ((), "return", ()),  # `return 1` shares line 2: its LINE event is the test's
        ((3,), "condition", (3, 4)),
        ((), "body", (2,)),
        ((4,), "return", ()),
    ]
    assert [(b.start, b.end) for b in info.blocks] == [(2, 2), (2, 2), (3, 3), (3, 3), (4, 4)]


def test_try_line_goes_to_the_block_of_the_first_statement_even_a_loop_header():
    src = """\
    def f(xs):
        try:
            for x in xs:
                pass
        except TypeError:
            return None
    """
    assert shape(src) == [
        ((1, 2, 3), "loop", (1, 2)),
        ((4,), "body", (0, 2)),
        ((5, 6), "handler", ()),
    ]


def test_multiline_statement_owns_all_its_lines():
    src = """\
    def f(x):
        y = call(
            x,
            key=1,
        )
        return y
    """
    (block,) = function(src).blocks
    assert (block.start, block.end, block.lines) == (2, 6, (1, 2, 3, 4, 5, 6))


def test_comprehension_and_lambda_stay_in_their_statement_block():
    src = """\
    def f(xs):
        ys = [x * 2
              for x in xs
              if x]
        key = lambda v: (
            -v)
        return sorted(ys, key=key)
    """
    (block,) = function(src).blocks
    assert block.lines == (1, 2, 3, 4, 5, 6, 7)


def test_nested_def_and_class_are_one_statement_of_the_outer_block():
    src = """\
    def outer(x):
        @decorate
        def inner(y=(1,
                     2)):
            return y
        class Local:
            def method(self):
                return 1
        return inner
    """
    (block,) = function(src).blocks
    # decorator and signature lines are outer code; the bodies are not
    assert block.lines == (1, 2, 3, 4, 6, 9)


def test_blocks_of_takes_an_ast_function_node():
    node = ast.parse("async def f():\n    await g()\n").body[0]
    (block,) = blocks_of(node)
    assert (block.index, block.start, block.end, block.lines) == (0, 2, 2, (1, 2))


# --- functions ------------------------------------------------------------------------

FUNCTIONS_SRC = textwrap.dedent(
    """\
    import functools

    def plain(a, /, b, *args, c, d=1, **kw):
        '''Plain doc.'''
        return a

    @functools.lru_cache
    @staticmethod
    def decorated():
        pass

    class Cls:
        def meth(self):
            def inner():
                class Deep:
                    async def amethod(self):
                        pass
                return Deep
            return inner

        @property
        def prop(self):
            return 1

    if True:
        def conditional(): return (lambda: 1)
    """
)


def code_objects(code):
    yield code
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            yield from code_objects(const)


def test_functions_in_finds_every_def_with_pythons_qualname_and_first_line():
    infos = functions_in(FUNCTIONS_SRC, "pkg/mod.py")
    assert [f.qualname for f in infos] == [
        "plain",
        "decorated",
        "Cls.meth",
        "Cls.meth.<locals>.inner",
        "Cls.meth.<locals>.inner.<locals>.Deep.amethod",
        "Cls.prop",
        "conditional",
    ]
    assert infos[0].key == "pkg/mod.py::plain" and infos[0].path == "pkg/mod.py"
    # the interpreter's own view: co_firstlineno (and co_qualname where it exists)
    codes = [c for c in code_objects(compile(FUNCTIONS_SRC, "mod.py", "exec")) if not c.co_name.startswith("<")]
    functions = [c for c in codes if c.co_name in {f.name for f in infos}]
    assert [(c.co_name, c.co_firstlineno) for c in functions] == [(f.name, f.first_line) for f in infos]
    if sys.version_info >= (3, 11):
        assert [c.co_qualname for c in functions] == [f.qualname for f in infos]


def test_function_info_fields():
    infos = {f.qualname: f for f in functions_in(FUNCTIONS_SRC, "mod.py")}
    plain, decorated = infos["plain"], infos["decorated"]
    assert plain.params == ("a", "b", "args", "c", "d", "kw")
    assert (plain.first_line, plain.def_line, plain.end_line) == (3, 3, 5)
    assert plain.docstring == "Plain doc." and decorated.docstring is None
    assert (decorated.first_line, decorated.def_line, decorated.end_line) == (7, 9, 10)
    assert infos["Cls.meth.<locals>.inner.<locals>.Deep.amethod"].is_async
    assert not plain.is_async
    assert infos["conditional"].blocks[0].lines == (26,)


def test_syntax_error_is_raised_unchanged():
    with pytest.raises(SyntaxError) as caught:
        functions_in("def f(:\n    pass\n", "bad.py")
    assert caught.value.filename == "bad.py" and caught.value.lineno == 1


def test_deep_expression_does_not_exhaust_the_recursion_limit():
    src = "def f(a):\n    x = " + " + ".join(["a"] * 1500) + "\n    return x\n"
    try:
        ast.parse(src)
    except RecursionError:
        pytest.skip("this Python's parser cannot nest that deep")
    (info,) = functions_in(src, "deep.py")
    assert [b.lines for b in info.blocks] == [(1, 2, 3)]


def test_null_bytes_are_a_syntax_error_on_every_version():
    with pytest.raises(SyntaxError):
        functions_in("x = 1\0\n", "nul.py")


# --- what a real run reports ------------------------------------------------------------

RUN_SRC = textwrap.dedent(
    """\
    import contextlib

    def everything(x, items):
        '''Every construct, entered with several arguments.'''
        out = []
        try:
            if x == 1:
                raise ValueError(x)
            elif x == 2:
                return -1
        except KeyError:
            pass
        except ValueError as exc:
            out.append(str(exc))
        else:
            out.append("else")
        finally:
            out.append("finally")
        for i in items:
            if i < 0:
                continue
            if i > 100:
                break
            out.append(i)
        else:
            out.append("exhausted")
        while x > 3:
            x -= 1
        else:
            out.append("while-else")
        with contextlib.suppress(ZeroDivisionError):
            out.append(1 / (x - 3))
        with contextlib.nullcontext():
            if x == 0:
                return out
        match items:
            case [first, *_] if first > 5:
                out.append("big")
            case []:
                out.append("empty")
            case _:
                out.append("other")
        assert out, "never empty"
        total = sum(
            v for v in out
            if isinstance(v, int)
        )
        return [total for _ in range(
            2)]

    def looping_finally(n):
        for i in range(n):
            try:
                if i == 1:
                    continue
                if i == 3:
                    break
            finally:
                n += 1
        try:
            try:
                return n
            finally:
                n = 0
        finally:
            pass

    def docstring_only():
        '''Nothing but a docstring: its implicit return reports the def line.'''

    @contextlib.contextmanager
    def decorated_generator(x):
        yield x
        if x: return

    def one_liners(x):
        if x: return 1
        while x < 0: x += 1
        for _ in range(2): x += 1
        return x
    """
)

CALLS = [
    ("everything", (x, items)) for x in (0, 1, 2, 3, 5) for items in ([], [1, 200], [-1, 7], [9, 2])
] + [
    ("looping_finally", (4,)), ("looping_finally", (2,)), ("docstring_only", ()),
    ("one_liners", (0,)), ("one_liners", (1,)), ("one_liners", (-2,)),
]


def line_events(namespace: dict, calls) -> set[tuple[str, int]]:
    events: set[tuple[str, int]] = set()

    def local(frame, event, arg):
        if event == "line":
            events.add((frame.f_code.co_name, frame.f_lineno))
        return local

    def call(frame, event, arg):
        return local if frame.f_code.co_filename == "run.py" else None

    previous = sys.gettrace()
    sys.settrace(call)
    try:
        for name, args in calls:
            try:
                namespace[name](*args)
            except (ValueError, AssertionError):
                pass
        with namespace["decorated_generator"](1):
            pass
    finally:
        sys.settrace(previous)
    return events


def test_every_line_event_of_a_run_lands_in_a_block():
    namespace: dict = {}
    exec(compile(RUN_SRC, "run.py", "exec"), namespace)
    infos = {f.name: f for f in functions_in(RUN_SRC, "run.py")}
    maps = {name: line_to_block(f) for name, f in infos.items()}
    events = line_events(namespace, CALLS)
    assert {name for name, _ in events} >= set(infos)
    unmapped = sorted((name, line) for name, line in events if name in maps and line not in maps[name])
    assert unmapped == []


def test_with_exit_line_event_revisits_the_header_block():
    namespace: dict = {}
    exec(compile(RUN_SRC, "run.py", "exec"), namespace)
    info = next(f for f in functions_in(RUN_SRC, "run.py") if f.name == "everything")
    lines = RUN_SRC.splitlines()
    with_line = next(i for i, text in enumerate(lines, 1) if "nullcontext()" in text)
    order: list[int] = []

    def local(frame, event, arg):
        if event == "line" and frame.f_code.co_name == "everything":
            order.append(frame.f_lineno)
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename == "run.py" else None)
    try:
        namespace["everything"](5, [9])
    finally:
        sys.settrace(None)
    assert order.count(with_line) == 2  # __enter__ and __exit__
    match_line = next(i for i, text in enumerate(lines, 1) if "match items" in text)
    header, body = info.block_at(with_line), info.block_at(with_line + 1)
    after = info.block_at(match_line)
    assert header.successors == (body.index, after.index) and header.index in body.successors


def test_library_functions_report_only_mapped_lines():
    """textwrap and json.decoder, run for real: every LINE event maps to a block."""
    events: set[tuple[str, int, int]] = set()
    files = {textwrap.__file__, json.decoder.__file__}

    def local(frame, event, arg):
        if event == "line":
            events.add((frame.f_code.co_filename, frame.f_code.co_firstlineno, frame.f_lineno))
        return local

    def call(frame, event, arg):
        return local if frame.f_code.co_filename in files else None

    sys.settrace(call)
    try:
        textwrap.fill("The quick brown fox jumps over the lazy dog. " * 5, width=17, max_lines=3)
        textwrap.shorten("Hello  world, this is long", width=12)
        textwrap.dedent("    a\n      b\n\n    c\n")
        textwrap.indent("a\n\nb\n", "> ", predicate=None)
        json.decoder.JSONDecoder().decode('{"a": [1, 2.5, "x\\u00e9\\n", null, true], "b": {}}')
        with pytest.raises(ValueError):
            json.decoder.JSONDecoder().decode('{"a": [1,, 2]}')
    finally:
        sys.settrace(None)
    by_start = {}
    for path in files:
        for f in functions_in(Path(path).read_text(encoding="utf-8"), path):
            by_start[(path, f.first_line)] = line_to_block(f)
    checked = [(p, first, line) for p, first, line in events if (p, first) in by_start]
    assert len(checked) > 100
    assert [(Path(p).name, line) for p, first, line in checked if line not in by_start[(p, first)]] == []


# --- invariants on real files --------------------------------------------------------------

REAL_FILES = [tracefix.tracer.records.__file__, tracefix.tracer.cfg.__file__, textwrap.__file__, json.decoder.__file__,
              ast.__file__, argparse.__file__, contextlib.__file__]


def statements_of(stmts: list[ast.stmt]):
    """Statements of a function body, not of nested function or class bodies."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody"):
            yield from statements_of(getattr(stmt, name, []))
        for clause in [*getattr(stmt, "handlers", []), *getattr(stmt, "cases", [])]:
            yield from statements_of(clause.body)


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: Path(p).name)
def test_blocks_of_real_files_keep_their_invariants(path):
    source = Path(path).read_text(encoding="utf-8")
    text = source.splitlines()
    nodes = {node.lineno: node for node in ast.walk(ast.parse(source))
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    infos = functions_in(source, "real.py")
    assert infos
    for info in infos:
        blocks = info.blocks
        where = info.qualname
        assert blocks, where
        assert [b.index for b in blocks] == list(range(len(blocks))), where
        assert [b.start for b in blocks] == sorted(b.start for b in blocks), where
        all_lines = [line for b in blocks for line in b.lines]
        assert len(all_lines) == len(set(all_lines)), f"{where}: lines overlap"
        for b in blocks:
            assert info.def_line <= b.start <= b.end <= info.end_line, where
            assert all(0 <= s < len(blocks) for s in b.successors), where
            assert all(info.first_line <= line <= info.end_line for line in b.lines), where
            keywords_only = {text[line - 1].strip() for line in range(b.start, b.end + 1)} <= {"try:", "else:", "finally:"}
            assert not keywords_only, f"{where}: block {b.index} holds only keywords"
        mapped = line_to_block(info)
        for stmt in statements_of(nodes[info.def_line].body):
            assert stmt.lineno in mapped, f"{where}: line {stmt.lineno} in no block"
            if not any(hasattr(stmt, name) for name in ("body", "orelse", "handlers", "cases")):
                assert set(range(stmt.lineno, stmt.end_lineno + 1)) <= set(mapped), where


# --- a block's text -------------------------------------------------------------------


def test_block_text_leaves_out_the_docstring_and_nested_bodies_but_keeps_whole_statements():
    src = textwrap.dedent('''\
        def outer(xs):
            """Doc.

            More doc."""
            @staticmethod
            def helper(a,
                       b):
                return a + b

            # a comment between statements
            table = {
                "a": 1,

                "b": 2,
            }
            if xs:
                return helper(1, 2)
            return table

        def only_doc():
            """Nothing else."""
        ''')
    lines = src.splitlines()
    outer, helper, only_doc = functions_in(src, "m.py")
    assert outer.docstring_end == 4 and helper.docstring_end is None
    assert tracefix.tracer.cfg.block_text(lines, outer, outer.blocks[0]) == [
        "@staticmethod", "def helper(a,", "           b):", "    ...",
        "table = {", '    "a": 1,', '    "b": 2,', "}", "if xs:"]
    assert tracefix.tracer.cfg.block_text(lines, outer, outer.blocks[1]) == ["return helper(1, 2)"]
    assert tracefix.tracer.cfg.block_text(lines, only_doc, only_doc.blocks[0]) == ['"""Nothing else."""']
