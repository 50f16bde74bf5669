"""Plain mutation operators at given source lines of a function: candidate edits with no model.

Each operator is one small class (libcst-codemod style: one kind of edit each) that looks
at one AST node and proposes replacement nodes. An edit is spliced into the file text at
the node's position, so the rest of the file keeps its formatting; it is kept only when the
spliced text parses to exactly the tree the operator meant (else the replacement is tried
in parentheses once, then dropped).

    mutants_of(text, path, qualname, lines) -> [Mutant]  (new function source and file text)
"""

from __future__ import annotations

import ast
import builtins
import copy
from dataclasses import dataclass
from typing import Iterator

# Swaps tried for each operator, most likely repair first (the probe's experience on QuixBugs).
COMPARE_SWAPS = {
    ast.Lt: (ast.LtE, ast.Gt, ast.GtE), ast.LtE: (ast.Lt, ast.GtE, ast.Gt),
    ast.Gt: (ast.GtE, ast.Lt, ast.LtE), ast.GtE: (ast.Gt, ast.LtE, ast.Lt),
    ast.Eq: (ast.NotEq, ast.Is), ast.NotEq: (ast.Eq, ast.IsNot),
    ast.Is: (ast.Eq, ast.IsNot), ast.IsNot: (ast.NotEq, ast.Is),
    ast.In: (ast.NotIn,), ast.NotIn: (ast.In,),
}
ARITH_SWAPS = {
    ast.Add: (ast.Sub, ast.Mult), ast.Sub: (ast.Add,), ast.Mult: (ast.Div, ast.FloorDiv, ast.Add, ast.Pow),
    ast.Div: (ast.FloorDiv, ast.Mult), ast.FloorDiv: (ast.Div, ast.Mod, ast.Mult), ast.Mod: (ast.FloorDiv,),
    ast.Pow: (ast.Mult,), ast.LShift: (ast.RShift,), ast.RShift: (ast.LShift,),
    ast.BitAnd: (ast.BitOr, ast.BitXor), ast.BitOr: (ast.BitAnd, ast.BitXor), ast.BitXor: (ast.BitAnd, ast.BitOr),
}
CALL_SWAPS = {"min": "max", "max": "min", "any": "all", "all": "any"}
BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Mutant:
    path: str
    qualname: str  # the function whose code the edit replaces (the outermost one, for a nested def)
    line: int  # the statement line the edit is at
    operator: str  # the operator's name ("compare", "off_by_one", ...)
    description: str  # one line: "line 12: `a < b` -> `a <= b`"
    prior: float  # how often this kind of edit is the repair (0..1)
    function_source: str  # the new function, decorators included, at its original indentation
    first_line: int  # the line `function_source` starts at in the file
    file_text: str
    # Where the edited node was in the file: (line, column, end line, end column); () unknown.
    span: tuple[int, int, int, int] | tuple[()] = ()

    def overlaps(self, other: Mutant) -> bool:
        """Whether the two edits touch the same code (one node inside the other, or the same):
        `a == b` -> `a != b` and -> `not a == b` do; edits of two lines do not."""
        if not self.span or not other.span:
            return False
        return self.span[:2] < other.span[2:] and other.span[:2] < self.span[2:]


@dataclass(frozen=True)
class Edit:
    """Replace `node` (a node of the function's tree) with `new` (an AST node), or, when
    `after` is set, insert `new` (a statement) after the statement `node`."""

    node: ast.AST
    new: ast.AST
    after: bool = False


class Operator:
    name = ""
    prior = 0.5
    # Its edits may leave a bound name never read (see _unread_after): only a deletion may,
    # where the deleted statement was the one use of a value (`print(total, big)`).
    may_leave_unread = False

    def edits(self, node: ast.AST, scope: Scope) -> Iterator[Edit]:
        return iter(())


class CompareSwap(Operator):
    name, prior = "compare", 1.0

    def edits(self, node, scope):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for swap in COMPARE_SWAPS.get(type(op), ()):
                    new = copy.deepcopy(node)
                    new.ops[i] = swap()
                    yield Edit(node, new)


class ArithmeticSwap(Operator):
    name, prior = "arithmetic", 0.8

    def edits(self, node, scope):
        if isinstance(node, ast.BinOp):
            for swap in ARITH_SWAPS.get(type(node.op), ()):
                yield Edit(node, ast.BinOp(copy.deepcopy(node.left), swap(), copy.deepcopy(node.right)))


class AugAssignSwap(Operator):
    name, prior = "augassign", 0.8

    def edits(self, node, scope):
        if isinstance(node, ast.AugAssign):
            for swap in ARITH_SWAPS.get(type(node.op), ()):
                yield Edit(node, ast.AugAssign(copy.deepcopy(node.target), swap(), copy.deepcopy(node.value)))
            # `x += y` where `x = y` was meant, and the reverse below
            yield Edit(node, ast.Assign([copy.deepcopy(node.target)], copy.deepcopy(node.value)))


class BooleanSwap(Operator):
    name, prior = "boolean", 0.8

    def edits(self, node, scope):
        if isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            yield Edit(node, ast.BoolOp(other, copy.deepcopy(node.values)))
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield Edit(node, ast.Constant(not node.value))


class IntegerConstant(Operator):
    name, prior = "constant", 0.7

    def edits(self, node, scope):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            for value in (node.value + 1, node.value - 1):
                yield Edit(node, _int(value))


class OffByOne(Operator):
    """+-1 on range bounds, indices and slice bounds; dropping a +-1 already there."""

    name, prior = "off_by_one", 0.9

    def edits(self, node, scope):
        for bound in _bounds(node):
            if isinstance(bound, ast.Constant):
                continue  # IntegerConstant has it
            if isinstance(bound, ast.BinOp) and isinstance(bound.op, (ast.Add, ast.Sub)) \
                    and isinstance(bound.right, ast.Constant) and bound.right.value == 1:
                yield Edit(bound, copy.deepcopy(bound.left))
                continue  # `x - 1` -> `x + 1` is ArithmeticSwap's
            for op in (ast.Add, ast.Sub):
                yield Edit(bound, ast.BinOp(copy.deepcopy(bound), op(), _int(1)))
        if isinstance(node, ast.Slice) and node.step is None:
            # An open end one short: `val[1:]` where `val[1:-1]` was meant, `xs[:n]` for `xs[1:n]`.
            if node.upper is None and node.lower is not None:
                yield Edit(node, ast.Slice(copy.deepcopy(node.lower), _int(-1), None))
            if node.lower is None and node.upper is not None:
                yield Edit(node, ast.Slice(_int(1), copy.deepcopy(node.upper), None))


class StepPastIt(Operator):
    """`lo = mid` where `lo = mid + 1` was meant: +-1 on a name assigned as it is."""

    name, prior = "off_by_one", 0.6

    def edits(self, node, scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name):
            for op in (ast.Add, ast.Sub):
                yield Edit(node.value, ast.BinOp(copy.deepcopy(node.value), op(), _int(1)))


class DropPart(Operator):
    """`f(x)` -> `x` for a call to a project function, `1 + x` -> `x`: a wrapper or term too many."""

    name, prior = "drop", 0.4

    def edits(self, node, scope):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in BUILTINS \
                and len(node.args) == 1 and not node.keywords and not isinstance(node.args[0], ast.Starred):
            yield Edit(node, copy.deepcopy(node.args[0]))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
            if not isinstance(node.op, ast.Sub):  # `a - x` -> `x` flips a sign: not a dropped term
                yield Edit(node, copy.deepcopy(node.right))
            yield Edit(node, copy.deepcopy(node.left))


class EmptyResult(Operator):
    """`return []` where the base case has one result: `[[]]`, or `[param]`."""

    name, prior = "empty", 0.5

    def edits(self, node, scope):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.List) and not node.value.elts:
            yield Edit(node.value, ast.List([ast.List([], ast.Load())], ast.Load()))
            for param in scope.params:
                yield Edit(node.value, ast.List([ast.Name(param, ast.Load())], ast.Load()))


class NameSwap(Operator):
    """A local name (parameter or assigned) read where another local was meant."""

    name, prior = "name", 0.4

    def edits(self, node, scope):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in scope.locals:
            for other in scope.locals:
                if other != node.id:
                    yield Edit(node, ast.Name(other, ast.Load()))


class OperandSwap(Operator):
    """Swapped call arguments and operands of a non-commutative operator or comparison."""

    name, prior = "swap", 0.6

    def edits(self, node, scope):
        if isinstance(node, ast.Call) and len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args):
            for i in range(len(node.args) - 1):
                new = copy.deepcopy(node)
                new.args[i], new.args[i + 1] = new.args[i + 1], new.args[i]
                yield Edit(node, new)
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2:
            new = copy.deepcopy(node)
            new.slice.elts.reverse()  # m[j, k] for m[k, j]
            yield Edit(node, new)
        # `+` too: it does not commute on strings and lists (`result + digit` for `digit + result`).
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Div, ast.FloorDiv, ast.Mod,
                                                                ast.Pow, ast.LShift, ast.RShift)):
            yield Edit(node, ast.BinOp(copy.deepcopy(node.right), node.op.__class__(), copy.deepcopy(node.left)))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            yield Edit(node, ast.Compare(copy.deepcopy(node.comparators[0]), [node.ops[0].__class__()],
                                         [copy.deepcopy(node.left)]))


class Negation(Operator):
    name, prior = "not", 0.7

    def edits(self, node, scope):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield Edit(node, copy.deepcopy(node.operand))
        for test in _conditions(node):
            if not (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)):
                yield Edit(test, ast.UnaryOp(ast.Not(), copy.deepcopy(test)))


class CallSwap(Operator):
    name, prior = "call", 0.7

    def edits(self, node, scope):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALL_SWAPS:
            # Only the name: re-printing the call would reformat its arguments.
            yield Edit(node.func, ast.Name(CALL_SWAPS[node.func.id], ast.Load()))


class DeleteStatement(Operator):
    name, prior = "delete", 0.3
    may_leave_unread = True

    def edits(self, node, scope):
        # Simple statements only: removing a loop or an `if` with its body is rarely a repair.
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Return, ast.Break,
                             ast.Continue, ast.Raise)) and node is not scope.only_statement:
            yield Edit(node, ast.Pass())


class ReturnValue(Operator):
    """`return <name>` where the function falls off its end; `return f(...)` for a bare call
    statement or a bare `return` on the failing path (a recursive result thrown away)."""

    name, prior = "return", 0.7

    def edits(self, node, scope):
        if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            yield Edit(node, ast.Return(copy.deepcopy(node.value)))
        if isinstance(node, ast.Return) and node.value is None:
            for name in scope.assigned:
                yield Edit(node, ast.Return(ast.Name(name, ast.Load())))
        if node is scope.last_statement and not isinstance(node, (ast.Return, ast.Raise)):
            for name in scope.assigned:
                yield Edit(node, ast.Return(ast.Name(name, ast.Load())), after=True)


# --- edits a human repair often is, beyond single-token swaps (QuixBugs' unfixed bugs) --------

class AttributeSwap(Operator):
    """`node.outgoing_nodes` where `node.incoming_nodes` was meant: another attribute of the
    module that shares a word with it."""

    name, prior = "attribute", 0.4

    def edits(self, node, scope):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            words = set(node.attr.split("_"))
            for other in scope.attributes:
                if other != node.attr and words & set(other.split("_")):
                    new = copy.deepcopy(node)
                    new.attr = other
                    yield Edit(node, new)


class NoneGuard(Operator):
    """`x.next is None` -> `x is None or x.next is None`: the object itself can be None."""

    name, prior = "none_guard", 0.5

    def edits(self, node, scope):
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.Eq)) \
                and isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None \
                and isinstance(node.left, ast.Attribute):
            guard = ast.Compare(copy.deepcopy(node.left.value), [ast.Is()], [ast.Constant(None)])
            yield Edit(node, ast.BoolOp(ast.Or(), [guard, copy.deepcopy(node)]))


class KeepBest(Operator):
    """`best = e` -> `best = max(best, e)` (or min), and `s = e` -> `s = max(0, e)`: a running
    best or a clamped sum assigned outright."""

    name, prior = "keep_best", 0.5

    def edits(self, node, scope):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            for func in ("max", "min"):
                yield Edit(node.value, _call(func, ast.Name(target, ast.Load()), copy.deepcopy(node.value)))
            yield Edit(node.value, _call("max", ast.Constant(0), copy.deepcopy(node.value)))


class LoopCondition(Operator):
    """`while True:` -> `while queue:`: the loop should stop when a collection runs out."""

    name, prior = "loop_condition", 0.5

    def edits(self, node, scope):
        if isinstance(node, ast.While) and isinstance(node.test, ast.Constant) and node.test.value is True:
            for name in scope.locals:
                yield Edit(node.test, ast.Name(name, ast.Load()))


class SliceRest(Operator):
    """`f(a[1:], b)` -> `f(a[1:], b[1:])`, `for x in arr` -> `for x in arr[k:]`: the rest of a
    sequence where the whole was passed on."""

    name, prior = "slice", 0.4

    def edits(self, node, scope):
        names: list[tuple[ast.Name, tuple[ast.expr, ...]]] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in BUILTINS:
            names += [(a, (ast.Constant(1),)) for a in node.args if isinstance(a, ast.Name)]
        if isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.iter, ast.Name):
            starts = (ast.Constant(1), *(ast.Name(p, ast.Load()) for p in scope.params if p != node.iter.id))
            names.append((node.iter, starts))
        for name, starts in names:
            for start in starts:
                yield Edit(name, ast.Subscript(ast.Name(name.id, ast.Load()), ast.Slice(start, None, None), ast.Load()))


class WidenCondition(Operator):
    """`if total < 0:` -> `if total < 0 or not coins:`: a base case that misses an empty input."""

    name, prior = "widen", 0.3

    def edits(self, node, scope):
        if isinstance(node, ast.If):
            for param in scope.params:
                yield Edit(node.test, ast.BoolOp(ast.Or(), [copy.deepcopy(node.test),
                                                            ast.UnaryOp(ast.Not(), ast.Name(param, ast.Load()))]))


def _call(func: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Name(func, ast.Load()), list(args), [])


OPERATORS: tuple[Operator, ...] = (CompareSwap(), OffByOne(), ArithmeticSwap(), AugAssignSwap(), BooleanSwap(),
                                   Negation(), CallSwap(), ReturnValue(), IntegerConstant(), StepPastIt(), OperandSwap(),
                                   EmptyResult(), DropPart(), NameSwap(), DeleteStatement(), AttributeSwap(),
                                   NoneGuard(), KeepBest(), LoopCondition(), SliceRest(), WidenCondition())


@dataclass
class Scope:
    """What operators need to know about the function being mutated."""

    locals: tuple[str, ...]  # parameters and assigned names, in order of appearance
    params: tuple[str, ...]
    assigned: tuple[str, ...]  # names to return: assigned ones, last assigned first, then parameters
    last_statement: ast.stmt | None
    only_statement: ast.stmt | None
    attributes: tuple[str, ...] = ()  # attribute names the module reads or writes


def mutants_of(text: str, path: str, qualname: str, lines, operators: tuple[Operator, ...] = OPERATORS) -> list[Mutant]:
    """Every parseable single edit of function `qualname` at the given statement lines of file `text`."""
    tree = ast.parse(text)
    func = function_node(tree, qualname)
    if func is None:
        return []
    # A nested function has no live object to swap: its edit is an edit of the outermost
    # function that holds it (whose code holds the nested code as a constant).
    swapped = qualname.split(".<locals>")[0]
    scope = scope_of(func)
    scope.attributes = tuple(dict.fromkeys(n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)))
    parents = {id(child): parent for parent in ast.walk(func) for child in ast.iter_child_nodes(parent)}
    wanted = set(lines)
    out = []
    for line, node in nodes_by_line(func):
        if line not in wanted:
            continue
        for operator in operators:
            for edit in operator.edits(node, scope):
                edit = _without_identity(edit, parents)
                if edit is None:
                    continue
                mutant = _spliced(text, tree, func, edit, swapped)
                if mutant is not None and (operator.may_leave_unread or not _unread_after(func, mutant[3])):
                    new_text, source, first, _ = mutant
                    out.append(Mutant(path, swapped, line, operator.name, _describe(line, edit),
                                      operator.prior, source, first, new_text, _span(edit.node)))
    return out


def _span(node: ast.AST) -> tuple[int, int, int, int] | tuple[()]:
    try:
        return node.lineno, node.col_offset, node.end_lineno, node.end_col_offset
    except AttributeError:  # a node with no position (an operator): the span is unknown
        return ()


def _is_identity(node: ast.AST) -> bool:
    """`e * 1`, `e / 1`, `e // 1`, `e ** 1`, `e + 0`, `e - 0`, `1 * e`, `0 + e`: an edit that
    only leaves `e`."""
    if not isinstance(node, ast.BinOp):
        return False
    if _is_int(node.right, 1) and isinstance(node.op, (ast.Mult, ast.Div, ast.FloorDiv, ast.Pow)):
        return True
    if _is_int(node.right, 0) and isinstance(node.op, (ast.Add, ast.Sub)):
        return True
    return (_is_int(node.left, 1) and isinstance(node.op, ast.Mult)) or (_is_int(node.left, 0) and isinstance(node.op, ast.Add))


def _is_int(node: ast.AST, value: int) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int and node.value == value


def _without_identity(edit: Edit, parents: dict[int, ast.AST]) -> Edit | None:
    """The edit as a person would write it: `len(v) + 1` -> `len(v)`, not `len(v) * 1` or
    `len(v) + 0` (same behaviour, a patch nobody would merge). A swap that makes an identity
    is dropped (DropPart makes the clean edit); a constant edit that makes one becomes the
    edit of the operation around it."""
    if _is_identity(edit.new):
        return None
    parent = parents.get(id(edit.node))
    if isinstance(parent, ast.BinOp) and parent.right is edit.node and not edit.after:
        if _is_identity(ast.BinOp(parent.left, parent.op, edit.new)):
            return Edit(parent, copy.deepcopy(parent.left))
    if isinstance(parent, ast.BinOp) and parent.left is edit.node and not edit.after:
        if _is_identity(ast.BinOp(edit.new, parent.op, parent.right)):
            return Edit(parent, copy.deepcopy(parent.right))
    return edit


def function_node(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The def of `qualname` ("f", "Class.method", "outer.<locals>.inner")."""
    parts = [p for p in qualname.split(".") if p != "<locals>"]
    body = tree.body
    node = None
    for part in parts:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def scope_of(func) -> Scope:
    params = [a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)]
    params += [a.arg for a in (func.args.vararg, func.args.kwarg) if a is not None]
    assigned: list[str] = []
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in assigned:
            assigned.append(node.id)
    names = tuple(dict.fromkeys(params + assigned))
    body = func.body
    return Scope(names, tuple(params), tuple(reversed([n for n in assigned if n not in params])) + tuple(params),
                 body[-1], body[0] if len(body) == 1 else None)


def nodes_by_line(func) -> Iterator[tuple[int, ast.AST]]:
    """(statement line, node) for every statement of the function and every expression in it;
    a compound statement's header expressions belong to its first line, its body to its own
    statements. Nested defs are left whole (their lines are their own suspects)."""
    def visit(stmts):
        for stmt in stmts:
            yield stmt.lineno, stmt
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for name, value in ast.iter_fields(stmt):
                if name in ("body", "orelse", "finalbody", "handlers"):
                    continue
                for child in _walk_expressions(value):
                    yield stmt.lineno, child
            for name in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, name, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    yield from visit(inner)
            for handler in getattr(stmt, "handlers", []) or []:
                yield from visit(handler.body)

    yield from visit(func.body)


def _walk_expressions(value):
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, ast.AST):
            yield from (n for n in ast.walk(v) if isinstance(n, ast.expr))


def _bounds(node) -> list[ast.expr]:
    out: list[ast.expr] = []
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        out.extend(node.args)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in BUILTINS:
        # A name passed to a project function (a recursive call's bounds, mostly): `f(mid, hi)`.
        out.extend(a for a in node.args if isinstance(a, ast.Name))
    if isinstance(node, ast.Subscript) and not isinstance(node.slice, (ast.Slice, ast.Tuple)):
        out.append(node.slice)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):  # dp[i - 1, j]
        out.extend(e for e in node.slice.elts if not isinstance(e, ast.Slice))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):  # (len(xs)) * [0]
        out.extend(side for side in (node.left, node.right) if _is_len(side))
    if isinstance(node, ast.Slice):
        out.extend(b for b in (node.lower, node.upper) if b is not None)
    return out


def _is_len(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _conditions(node) -> list[ast.expr]:
    if isinstance(node, (ast.If, ast.While, ast.IfExp)):
        return [node.test]
    if isinstance(node, ast.BoolOp):
        return list(node.values)
    if isinstance(node, ast.comprehension):
        return list(node.ifs)
    return []


def _int(value: int) -> ast.expr:
    return ast.Constant(value) if value >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-value))


# --- splicing ---------------------------------------------------------------------------

def _spliced(text: str, tree: ast.Module, func, edit: Edit, swapped: str) -> tuple[str, str, int, ast.AST] | None:
    """(new file text, new function source, its first line, the edited def parsed back), or
    None when the edit does not parse back to the intended tree."""
    ast.fix_missing_locations(ast.copy_location(edit.new, edit.node))
    want = ast.dump(_intended_function(func, edit))
    qualname = _qualname_path(tree, func)
    starts = _line_starts(text)
    start = _offset(text, starts, edit.node.lineno, edit.node.col_offset)
    end = _offset(text, starts, edit.node.end_lineno, edit.node.end_col_offset)
    new_src = ast.unparse(edit.new)
    if edit.after:
        indent = " " * edit.node.col_offset
        attempts = [text[:end] + "\n" + indent + new_src + text[end:]]
    else:
        attempts = [text[:start] + new_src + text[end:]]
        if isinstance(edit.new, ast.expr):
            attempts.append(text[:start] + "(" + new_src + ")" + text[end:])
            if text[start - 1:start] == "(" and text[end:end + 1] == ")":
                # `(len(v) + 1)` -> `len(v)`, not `(len(v))`; the parse-back check below
                # refuses it where the parentheses were a call's
                attempts.insert(0, text[:start - 1] + new_src + text[end + 1:])
    for new_text in attempts:
        try:
            got = ast.parse(new_text)
        except SyntaxError:
            continue
        edited = function_node(got, qualname)
        if edited is not None and ast.dump(edited) == want:
            new_func = function_node(got, swapped)
            first = min([new_func.lineno] + [d.lineno for d in new_func.decorator_list])
            lines = new_text.splitlines(keepends=True)
            return new_text, "".join(lines[first - 1:new_func.end_lineno]), first, edited
    return None


def _unread_after(old, new) -> set[str]:
    """Names the function binds and read before the edit but binds and never reads after it:
    `sum(int(num) for digit in s)` or a parameter no longer used. Tests with one example pass
    such edits by accident; nobody would merge one (the plausible-but-wrong fixes of run 5)."""
    def bound_and_read(func):
        bound, read = set(), set()
        args = func.args
        bound.update(a.arg for a in args.posonlyargs + args.args + args.kwonlyargs)
        bound.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
        for node in ast.walk(func):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        return bound, read

    old_bound, old_read = bound_and_read(old)
    new_bound, new_read = bound_and_read(new)
    return (old_bound & old_read & new_bound) - new_read


def _intended_function(func, edit: Edit) -> ast.AST:
    """A copy of the function with the edit made on the AST, normalized by a round trip
    through source (the splice must parse back to exactly this)."""
    target = edit.node

    class Replace(ast.NodeTransformer):
        def generic_visit(self, node):
            for field, old in ast.iter_fields(node):
                if isinstance(old, list):
                    new_list = []
                    for item in old:
                        if item is target:
                            new_list.extend([copy.deepcopy(item), edit.new] if edit.after else [edit.new])
                        elif isinstance(item, ast.AST):
                            new_list.append(self.visit(item))
                        else:
                            new_list.append(item)
                    setattr(node, field, new_list)
                elif old is target:
                    setattr(node, field, edit.new)
                elif isinstance(old, ast.AST):
                    setattr(node, field, self.visit(old))
            return node

    # Copy by structure but keep identity of the target: deep-copy everything except it.
    copied = copy.deepcopy(func, {id(target): target})
    Replace().visit(copied)
    return ast.parse(ast.unparse(copied)).body[0]


def _qualname_path(tree: ast.Module, func) -> str:
    """The dotted path of `func` in `tree` (the inverse of function_node)."""
    def search(body, prefix):
        for node in body:
            if node is func:
                return prefix + [node.name]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                found = search(node.body, prefix + [node.name])
                if found:
                    return found
        return None

    return ".".join(search(tree.body, []) or [func.name])


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _offset(text: str, starts: list[int], lineno: int, col: int) -> int:
    """Character index of an AST position (`col` counts UTF-8 bytes, not characters)."""
    begin = starts[lineno - 1]
    end = starts[lineno] if lineno < len(starts) else len(text)
    line = text[begin:end]
    return begin + len(line.encode("utf-8")[:col].decode("utf-8", errors="ignore"))


def _describe(line: int, edit: Edit) -> str:
    old = ast.unparse(edit.node).splitlines()[0][:60]
    new = ast.unparse(edit.new).splitlines()[0][:60]
    if edit.after:
        return f"line {line}: insert `{new}` after `{old}`"
    return f"line {line}: `{old}` -> `{new}`"
