"""Functions of a source file and the basic blocks of each, from the AST alone.

A block is a maximal straight-line run of statements. A block starts at the first
statement of a body and at every jump target: a loop header (the loop jumps back to
it), the first statement of each branch (`if`/`elif`/`else`, each `case`), each
`except` handler, `else` and `finally` bodies, the statement after a compound
statement, and code after return/raise/break/continue (dead code, no predecessors).

What a block holds (`Block.lines`: the lines whose LINE events belong to it):
- a simple statement: all its lines; a compound statement: only its header (if/while
  test, `for` target and iterable, `with` items, `match` subject, `case` pattern and
  guard, `except` type, decorators and signature of a nested def or class). Bodies of
  nested functions and classes belong to their own code objects, never to the outer
  blocks; lambdas and comprehensions stay inside their statement.
- an `if`/`elif` test, an `assert`, and a `case` pattern end their block: they branch
  (an assert is `if not test: raise`). A `match` subject is the last item of its block,
  the first `case` starts the next.
- `try:` reports a LINE event on 3.10-3.13, so the try body starts a block (the region
  an exception leaves to the first handler) that takes the `try:` line. `else:` and
  `finally:` lines report no LINE event on 3.10-3.13 and belong to no block; no
  block is ever empty or made of a keyword line alone.
- a `with` header is its own block, and the body starts the next one: on 3.10+ the
  header line reports a LINE event again when `__exit__` runs, so every way out of
  the body (falling through, return, break, continue, an exception) goes back to the
  header block, which then continues after the statement. A second visit of a with
  header block is its `__exit__`.
- a one-line compound statement (`if x: return 1`) shares its line between header and
  body; the line belongs to the header's block (the only LINE event it reports) and the
  body's block keeps its statements but no lines. `Block.lines` never overlap.
- block 0 also holds the def line and co_firstlineno, outside its start..end: 3.10-3.13
  report them for code that has no line of its own (the implicit return of a body that
  is only a docstring, `global` or bare annotations; some folded constants).

`Block.successors` are CFG edges, sorted: branches, loop back edges, return/break/
continue routed through enclosing `finally` bodies and `with` exits, and one
exception edge from each block inside a try body to the first handler (a handler
whose type does not match goes on to the next handler, then to `finally`), from each
block inside a `with` body to its header, and from each block inside handlers or
`else` to the `finally` body. Leaving the function is implicit: no successors.

`Block.kind`: "handler" for a block that starts with an `except` clause; otherwise by
how the block ends: "condition" (if/elif/while test, `case`, assert), "loop" (`for`
header), "return" (return or raise), else "body".
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from tracefix.tracer.records import Block, FunctionInfo

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_TRY = (ast.Try, ast.TryStar) if hasattr(ast, "TryStar") else (ast.Try,)  # TryStar: 3.11+
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def functions_in(source: str, path: str) -> list[FunctionInfo]:
    """Every function in `source`, outer before inner, in source order.

    Raises SyntaxError (with `path` as its filename) when the source does not parse.
    """
    try:
        tree = ast.parse(source, filename=path)
    except (ValueError, RecursionError) as exc:
        # null bytes: ValueError before 3.12 (SyntaxError after); nesting too deep for
        # the parser: RecursionError. Python cannot import either, so one error type.
        raise SyntaxError(str(exc), (path, 1, 0, "")) from exc
    return [_function_info(node, qualname, path) for node, qualname in _defs(tree.body, "")]


def blocks_of(func: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[Block, ...]:
    """The basic blocks of a function body, ordered by start line."""
    builder = _Builder()
    builder.walk(func.body, builder.new())
    # Code the compiler gives the function's own lines reports them: the implicit
    # `return None` of a body without code (docstring, `global`, bare annotations) at
    # co_firstlineno, some folded constants at the def line. They open the call.
    return builder.blocks(entry_lines={_first_line(func), func.lineno})


def block_text(lines: list[str], info: FunctionInfo, block: Block) -> list[str]:
    """A block's source as a reader wants it: its own lines, dedented. The docstring (it
    never runs) and comments are left out, and the body of a nested def or class, which
    belongs to its own code object, becomes `...` under its header."""
    return [text for _number, text in numbered_block_text(lines, info, block)]


def numbered_block_text(lines: list[str], info: FunctionInfo, block: Block) -> list[tuple[int, str]]:
    """`block_text` with the line number of each line (a `...` line has the number of the
    first line it stands for)."""
    # Inside start..end, code that is not the block's own is always the body of a nested
    # def or class: every other compound body starts a block after its header.
    own = set(block.lines)
    first = block.start if info.docstring_end is None else max(block.start, info.docstring_end + 1)
    chunk: list[tuple[int, str]] = []
    in_gap = False
    for number in range(first, block.end + 1):
        text = lines[number - 1] if number <= len(lines) else ""
        if number in own:
            if text.strip():
                chunk.append((number, text))
            in_gap = False
        elif text.strip() and not text.lstrip().startswith("#") and not in_gap:
            chunk.append((number, text[: len(text) - len(text.lstrip())] + "..."))
            in_gap = True
    if not chunk:  # a body that is only a docstring
        chunk = [(n, l) for n, l in enumerate(lines[block.start - 1:block.end], block.start) if l.strip()]
    indent = min((len(l) - len(l.lstrip()) for _n, l in chunk if l.strip()), default=0)
    return [(n, l[indent:]) for n, l in chunk]


def line_to_block(func_info: FunctionInfo) -> dict[int, int]:
    """line -> block index for every line a LINE event can report in the function body.

    Build it once per function: it is a plain dict, not cached here.
    """
    return {line: block.index for block in func_info.blocks for line in block.lines}


def _defs(stmts: list[ast.stmt], prefix: str):
    """(def node, qualname) pairs in `stmts`, qualnames as Python's __qualname__.
    Only statements are walked: a def is never inside an expression, and deep
    expressions (long concatenations) would exhaust the recursion limit."""
    for stmt in stmts:
        if isinstance(stmt, _FUNCTIONS):
            yield stmt, prefix + stmt.name
            yield from _defs(stmt.body, prefix + stmt.name + ".<locals>.")
        elif isinstance(stmt, ast.ClassDef):
            yield from _defs(stmt.body, prefix + stmt.name + ".")
        else:
            clauses = [*getattr(stmt, "handlers", []), *getattr(stmt, "cases", [])]
            inner = [getattr(stmt, name, []) for name in ("body", "orelse", "finalbody")]
            for body in inner + [clause.body for clause in clauses]:
                yield from _defs(body, prefix)


def _function_info(node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, path: str) -> FunctionInfo:
    args = node.args
    params = [a.arg for a in (*args.posonlyargs, *args.args)]
    params += [args.vararg.arg] if args.vararg else []
    params += [a.arg for a in args.kwonlyargs]
    params += [args.kwarg.arg] if args.kwarg else []
    return FunctionInfo(
        key=f"{path}::{qualname}",
        path=path,
        qualname=qualname,
        name=node.name,
        first_line=_first_line(node),
        def_line=node.lineno,
        end_line=node.end_lineno,
        params=tuple(params),
        docstring=ast.get_docstring(node),
        blocks=blocks_of(node),
        is_async=isinstance(node, ast.AsyncFunctionDef),
        docstring_end=node.body[0].end_lineno if ast.get_docstring(node, clean=False) is not None else None,
    )


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """The code object's co_firstlineno: the first decorator's line, else the def line."""
    return min([node.lineno] + [d.lineno for d in node.decorator_list])


def _own_lines(node: ast.AST) -> range:
    """The lines a statement (or clause) runs itself: all of a simple statement, the
    header of a compound one (everything but its bodies, decorators included)."""
    if not any(hasattr(node, name) for name in _BODIES):
        return range(node.lineno, node.end_lineno + 1)
    spans = [(node.lineno, node.lineno)] if hasattr(node, "lineno") else []
    for name, value in ast.iter_fields(node):
        if name in _BODIES:
            continue
        for part in value if isinstance(value, list) else [value]:
            if isinstance(part, ast.AST):
                spans += [(n.lineno, n.end_lineno) for n in ast.walk(part) if hasattr(n, "lineno")]
    return range(min(s for s, _ in spans), max(e for _, e in spans) + 1)


@dataclass(eq=False)
class _Node:
    """A block under construction. Empty nodes (no items) are spliced out at the end."""

    id: int
    on_raise: _Node | None  # where an exception raised in this block goes first
    lines: set[int] = field(default_factory=set)
    items: int = 0  # statements and clause headers; 0 means empty
    kind: str = "body"
    handler: bool = False
    succ: list[_Node] = field(default_factory=list)

    def add(self, node: ast.AST, kind: str = "body") -> None:
        self.lines.update(_own_lines(node))
        self.items += 1
        self.kind = kind


@dataclass
class _Loop:
    head: _Node  # `continue` target
    after: _Node  # `break` target


@dataclass
class _Cleanup:
    """A `finally` body or a `with` header that return/break/continue pass through."""

    entry: _Node
    onward: list[_Node | None] = field(default_factory=list)  # None: leave the function


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.frames: list[_Loop | _Cleanup] = []  # innermost last
        self.raise_to: list[_Node] = []  # innermost exception target last

    def new(self) -> _Node:
        node = _Node(len(self.nodes), self.raise_to[-1] if self.raise_to else None)
        self.nodes.append(node)
        return node

    @staticmethod
    def link(src: _Node | None, dst: _Node | None) -> None:
        if src is not None and dst is not None and dst not in src.succ:
            src.succ.append(dst)

    def walk(self, stmts: list[ast.stmt], cur: _Node | None) -> _Node | None:
        """Add statements from `cur` on; the open block after them, None if unreachable."""
        for stmt in stmts:
            if cur is None:  # dead code: a block nothing jumps to
                cur = self.new()
            cur = self.statement(stmt, cur)
        return cur

    def statement(self, stmt: ast.stmt, cur: _Node) -> _Node | None:
        if isinstance(stmt, ast.If):
            return self.if_(stmt, cur)
        if isinstance(stmt, (ast.While, ast.For, ast.AsyncFor)):
            return self.loop(stmt, cur)
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            return self.with_(stmt, cur)
        if isinstance(stmt, _TRY):
            return self.try_(stmt, cur)
        if isinstance(stmt, ast.Match):
            return self.match(stmt, cur)
        if isinstance(stmt, (ast.Return, ast.Raise)):
            cur.add(stmt, "return")
            if isinstance(stmt, ast.Return):
                self.jump(cur, None, self.frames)
            return None  # a raise leaves through cur.on_raise
        if isinstance(stmt, (ast.Break, ast.Continue)):
            cur.add(stmt)
            loops = [i for i, frame in enumerate(self.frames) if isinstance(frame, _Loop)]
            if loops:  # ast.parse accepts a break outside a loop; compiling it fails
                loop = self.frames[loops[-1]]
                target = loop.after if isinstance(stmt, ast.Break) else loop.head
                self.jump(cur, target, self.frames[loops[-1] + 1 :])
            return None
        if isinstance(stmt, ast.Assert):
            cur.add(stmt, "condition")
            return self.follow(cur)
        cur.add(stmt)  # simple statements, and nested def/class headers
        return cur

    def follow(self, cur: _Node | None) -> _Node:
        """A new block that control reaches from `cur`."""
        node = self.new()
        self.link(cur, node)
        return node

    def jump(self, src: _Node, target: _Node | None, frames: list) -> None:
        """Route a return/break/continue to `target` (None: out of the function) through
        the cleanups in `frames` it leaves: innermost first, each onward to the next."""
        for frame in frames:  # outermost first
            if isinstance(frame, _Cleanup):
                frame.onward.append(target)
                target = frame.entry
        self.link(src, target)

    def if_(self, stmt: ast.If, cur: _Node) -> _Node:
        cur.add(stmt, "condition")
        then_end = self.walk(stmt.body, self.follow(cur))
        else_end = self.walk(stmt.orelse, self.follow(cur)) if stmt.orelse else cur
        after = self.follow(then_end)
        self.link(else_end, after)
        return after

    def loop(self, stmt: ast.While | ast.For | ast.AsyncFor, cur: _Node) -> _Node:
        head = self.follow(cur)
        head.add(stmt, "condition" if isinstance(stmt, ast.While) else "loop")
        after = self.new()
        self.frames.append(_Loop(head, after))
        self.link(self.walk(stmt.body, self.follow(head)), head)
        self.frames.pop()
        exhausted = self.walk(stmt.orelse, self.follow(head)) if stmt.orelse else head
        self.link(exhausted, after)
        return after

    def with_(self, stmt: ast.With | ast.AsyncWith, cur: _Node) -> _Node:
        head = self.follow(cur)
        head.add(stmt)
        cleanup = _Cleanup(head)
        self.frames.append(cleanup)
        self.raise_to.append(head)
        self.link(self.walk(stmt.body, self.follow(head)), head)
        self.raise_to.pop()
        self.frames.pop()
        for target in cleanup.onward:
            self.link(head, target)
        return self.follow(head)  # also where __exit__ goes when it swallows an exception

    def try_(self, stmt: ast.Try, cur: _Node) -> _Node:
        after = self.new()
        final = self.new() if stmt.finalbody else None
        cleanup = _Cleanup(final) if final else None
        if cleanup:
            self.frames.append(cleanup)
            self.raise_to.append(final)
        # the try body: exceptions go to the first handler (or straight to finally)
        handlers = [self.new() for _ in stmt.handlers]
        self.raise_to.append(handlers[0] if handlers else final)
        body = self.follow(cur)
        body.lines.add(stmt.lineno)  # the `try:` line, not an item: never a block alone
        body_end = self.walk(stmt.body, body)
        self.raise_to.pop()
        ends = [self.walk(stmt.orelse, self.follow(body_end)) if stmt.orelse else body_end]
        for node, handler in zip(handlers, stmt.handlers):
            node.add(handler)
            node.handler = True
            ends.append(self.walk(handler.body, node))
        self.chain_handlers(stmt, handlers, ends[1:], final)
        if cleanup:
            self.raise_to.pop()
            self.frames.pop()
            for end in ends:
                self.link(end, final)
            final_end = self.walk(stmt.finalbody, final)
            ends = [final_end]
            for target in cleanup.onward:
                self.link(final_end, target)
        for end in ends:
            self.link(end, after)
        return after

    def chain_handlers(self, stmt: ast.Try, handlers: list[_Node], ends: list, final: _Node | None) -> None:
        """An exception no handler type matches tries each handler in turn, then finally;
        with except* every matching handler runs, one after the other."""
        star = not isinstance(stmt, ast.Try)
        for i, (node, handler) in enumerate(zip(handlers, stmt.handlers)):
            following = handlers[i + 1] if i + 1 < len(handlers) else final
            if handler.type is not None:
                self.link(node, following)
            if star:
                self.link(ends[i], following)

    def match(self, stmt: ast.Match, cur: _Node) -> _Node:
        cur.add(stmt)  # the subject
        after = self.new()
        test: _Node | None = cur
        for case in stmt.cases:
            test = self.follow(test)
            test.add(case, "condition")
            self.link(self.walk(case.body, self.follow(test)), after)
            if _irrefutable(case):
                test = None
        self.link(test, after)  # no case matched
        return after

    def blocks(self, entry_lines: set[int]) -> tuple[Block, ...]:
        """Splice out empty nodes, order by start line, make lines disjoint, number.
        `entry_lines` go to the first block's lines, outside its start..end."""
        for node in self.nodes:  # an empty node's lines (a `try:` line) go where it leads
            targets = [] if node.items else self.resolve(node)
            if node.lines and targets:
                min(targets, key=lambda n: n.id).lines.update(node.lines)
        live = sorted((n for n in self.nodes if n.items), key=lambda n: (min(n.lines), n.id))
        index = {node.id: i for i, node in enumerate(live)}
        claimed: set[int] = set()  # a line shared by a header and its one-line body: the header's
        blocks = []
        for i, node in enumerate(live):
            lines = node.lines | entry_lines if i == 0 else node.lines
            succ = {s for nxt in node.succ + [node.on_raise] if nxt for s in self.resolve(nxt)}
            blocks.append(Block(
                index=i,
                start=min(node.lines),
                end=max(node.lines),
                lines=tuple(sorted(lines - claimed)),
                kind="handler" if node.handler else node.kind,
                successors=tuple(sorted(index[s.id] for s in succ)),
            ))
            claimed |= lines
        return tuple(blocks)

    def resolve(self, node: _Node, seen: frozenset = frozenset()) -> list[_Node]:
        """The non-empty nodes `node` stands for: itself, or what an empty node leads to."""
        if node.items:
            return [node]
        return [r for s in node.succ if s.id not in seen for r in self.resolve(s, seen | {node.id})]


def _irrefutable(case: ast.match_case) -> bool:
    """`case _:` or `case name:` without a guard always matches."""
    return case.guard is None and isinstance(case.pattern, ast.MatchAs) and case.pattern.pattern is None
