"""Function-level source edits with libcst: replace one def, keep every other byte.

A model answers with the new text of one function (`FunctionEdit`), or, rarely, of a
whole module (`FileEdit`). `replace_function` swaps the def named by a qualname
(`f`, `Cls.meth`, `outer.<locals>.inner`) for the candidate's def:

- everything outside the replaced def is byte-identical (libcst round-trips the rest);
- the original's leading comments stay, and its decorators stay when the candidate has none;
- the candidate arrives at column 0 and is re-indented to the target's depth; the file's
  indent unit and newline style win over the candidate's;
- the candidate may bring more than the def. Top-level imports the file lacks go after the
  file's last import above the target; new top-level helpers (defs, classes, assignments
  to names the file does not bind) go right before the target's top-level statement. When
  the candidate wraps the method in its class (`class Cls: def meth...`), new methods of
  that class go right before the target method. Names the file already binds are left
  alone: changing another function takes its own edit. `from __future__` imports and other
  top-level statements (calls, `if` blocks) are dropped, since they would change the whole
  module.
"""

from __future__ import annotations

import os
import textwrap
import tokenize
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Iterator, Sequence, Union

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from tracefix.errors import InternalSignal
from tracefix.tracer.records import FunctionInfo


class PatchError(InternalSignal):
    """An edit that cannot be applied: target missing, candidate unparsable, path outside the tree."""


@dataclass(frozen=True)
class FunctionEdit:
    """Replace the def `qualname` in the file `path` (relative, forward slashes) with `new_code`."""

    path: str
    qualname: str
    new_code: str
    # Picks one of several defs sharing a qualname (property getter/setter, defs under
    # if/else): any line of the wanted def, decorators included (FunctionInfo.first_line).
    line: int | None = None


@dataclass(frozen=True)
class FileEdit:
    """Replace the whole file `path` (relative, forward slashes) with `new_text`."""

    path: str
    new_text: str


Edit = Union[FunctionEdit, FileEdit]


# ----------------------------------------------------------------------------- files


def resolve_inside(root: Path, relpath: str) -> Path:
    """The real path of `relpath` under `root`; PatchError when it escapes the tree.

    Resolving follows symlinks, so a link in a scratch copy that points back into the
    user's tree is refused rather than written through.
    """
    if not relpath or Path(relpath).is_absolute():
        raise PatchError(f"refusing to edit {relpath!r}: edit paths must be relative to the project")
    real_root = root.resolve()
    target = (real_root / relpath).resolve()
    if target != real_root and real_root not in target.parents:
        raise PatchError(f"refusing to edit {relpath}: it resolves outside the project ({target})")
    return target


def read_source(path: Path) -> str:
    """A source file's text with its newlines untouched, decoded per PEP 263 (UTF-8 by default)."""
    data = path.read_bytes()
    encoding = _encoding_of_bytes(data)
    return data.decode(encoding)


def encode_source(text: str, existing: Path | None = None) -> bytes:
    """`text` encoded like the file it replaces (keeps a BOM or a coding cookie), else per its cookie."""
    if existing is not None and existing.exists():
        encoding = _encoding_of_bytes(existing.read_bytes())
        if encoding == "utf-8-sig" or encoding == _cookie_encoding(text):
            return text.encode(encoding)
    return text.encode(_cookie_encoding(text) or "utf-8")


def _encoding_of_bytes(data: bytes) -> str:
    try:
        return tokenize.detect_encoding(BytesIO(data).readline)[0]
    except SyntaxError:  # unknown codec in the cookie: read it as UTF-8 and let parsing complain
        return "utf-8"


def _cookie_encoding(text: str) -> str | None:
    head = "\n".join(text.splitlines()[:2])
    try:
        encoding = tokenize.detect_encoding(BytesIO(head.encode("utf-8", "replace")).readline)[0]
    except SyntaxError:
        return None
    return None if encoding in ("utf-8", "utf-8-sig") else encoding


def edited_text(root: Path, edit: Edit) -> str:
    """The new text of `edit.path` under `root` after `edit`, without writing anything."""
    target = resolve_inside(root, edit.path)
    if isinstance(edit, FileEdit):
        if edit.path.endswith((".py", ".pyi", ".pyw")):  # whole-file answers may also fix data or config
            _check_compiles(edit.new_text, edit.path, what="new text")
        return edit.new_text
    if not target.is_file():
        raise PatchError(f"cannot edit {edit.qualname}: {edit.path} does not exist in the project")
    return replace_function(read_source(target), edit.qualname, edit.new_code, path=edit.path, line=edit.line)


def apply_edit(root: Path, edit: Edit) -> None:
    """Write `edit` into the tree at `root` (a scratch copy, never the user's tree)."""
    text = edited_text(root, edit)
    target = resolve_inside(root, edit.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(encode_source(text, target))


def apply_edits(root: Path, edits: Sequence[Edit]) -> dict[str, str]:
    """Write `edits` in order into the tree at `root`; the new text of every file they touched."""
    edited: dict[str, str] = {}
    for edit in edits:
        apply_edit(root, edit)
        path = edit.path.replace(os.sep, "/")
        edited[path] = read_source(resolve_inside(root, edit.path))
    return edited


# ----------------------------------------------------------------------------- qualnames


@dataclass(frozen=True)
class _Step:
    name: str
    kind: str  # "class" | "function" (the last step is always a function)


def _steps_of(qualname: str) -> list[_Step]:
    """`Cls.meth` -> class Cls, function meth; `f.<locals>.g` -> function f, function g."""
    parts = qualname.split(".")
    steps: list[_Step] = []
    for i, part in enumerate(parts):
        if part == "<locals>":
            continue
        if not part.isidentifier():
            raise PatchError(f"cannot edit {qualname!r}: not a function qualname like f, Cls.meth or f.<locals>.g")
        last = i == len(parts) - 1
        kind = "function" if last or parts[i + 1] == "<locals>" else "class"
        steps.append(_Step(part, kind))
    if not steps:
        raise PatchError(f"cannot edit {qualname!r}: not a function qualname like f, Cls.meth or f.<locals>.g")
    return steps


def _scope_body(node: cst.CSTNode) -> Sequence[cst.CSTNode]:
    body = getattr(node, "body", None)
    if isinstance(body, cst.IndentedBlock) or isinstance(body, cst.SimpleStatementSuite):
        return body.body
    return body if isinstance(body, (list, tuple)) else ()


def _statements_in_scope(body: Sequence[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """Statements of one scope, looking through if/try/with/for/while/match (they bind in the same scope)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            continue
        for child in _compound_children(stmt):
            yield from _statements_in_scope(child)


def _compound_children(stmt: cst.CSTNode) -> Iterator[Sequence[cst.CSTNode]]:
    """The statement lists nested in one compound statement; an `elif` comes as its own If."""
    if isinstance(stmt, (cst.If, cst.For, cst.While, cst.With, cst.Try, cst.TryStar)):
        yield _scope_body(stmt)
    for attr in ("handlers", "cases"):
        for clause in getattr(stmt, attr, ()):
            yield _scope_body(clause)
    for attr in ("orelse", "finalbody"):
        clause = getattr(stmt, attr, None)
        if isinstance(clause, cst.If):
            yield (clause,)
        elif clause is not None:
            yield _scope_body(clause)


def _find(body: Sequence[cst.CSTNode], steps: list[_Step]) -> list[list[cst.CSTNode]]:
    """Every chain of nodes (outermost first) matching `steps` from the scope `body`."""
    step, rest = steps[0], steps[1:]
    kind = cst.FunctionDef if step.kind == "function" else cst.ClassDef
    chains: list[list[cst.CSTNode]] = []
    for stmt in _statements_in_scope(body):
        if isinstance(stmt, kind) and stmt.name.value == step.name:
            if not rest:
                chains.append([stmt])
            else:
                chains.extend([stmt, *chain] for chain in _find(_scope_body(stmt), rest))
    return chains


# ----------------------------------------------------------------------------- replace


def replace_function(
    source: str, qualname: str, new_function_code: str, *, path: str = "<source>", line: int | None = None
) -> str:
    """`source` with the def `qualname` replaced by the def in `new_function_code` (see module doc)."""
    steps = _steps_of(qualname)
    wrapper = MetadataWrapper(_parse(source, f"{path} (before the edit)"))
    module = wrapper.module
    positions = wrapper.resolve(PositionProvider)
    chain = _pick(_find(module.body, steps), positions, qualname, path, line)
    target = chain[-1]
    assert isinstance(target, cst.FunctionDef)

    candidate = _Candidate.parse(new_function_code, module, steps, qualname)
    indent = _indent_of(target, positions, source)
    unit = _indent_unit(target, module)
    new_def = _adapt(candidate.function, target, candidate.indent_of(candidate.function), indent)
    new_def = _with_indent_unit(new_def, unit)
    class_helpers = [
        _with_blank_lines_of(_with_indent_unit(_reindent_docstrings(node, candidate.indent_of(node), indent), unit),
                             target)
        for node in candidate.class_helpers(chain)
    ]
    helpers = [_with_blank_lines_of(node, chain[0]) for node in candidate.module_helpers(module)]
    imports = candidate.missing_imports(module)

    new_module = module.visit(_Replace(target, new_def, class_helpers))
    new_module = _insert_at_top_level(new_module, module, chain[0], helpers, imports)
    code = new_module.code
    _check_compiles(code, path, what=f"the file after replacing {qualname}")
    return code


def _parse(code: str, what: str) -> cst.Module:
    try:
        return cst.parse_module(code)
    except cst.ParserSyntaxError as exc:
        raise PatchError(f"{what} does not parse: line {exc.raw_line}: {_line(code, exc.raw_line)!r}: "
                         f"{exc.message}") from None


def _line(code: str, number: int) -> str:
    lines = code.splitlines()
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def _check_compiles(code: str, path: str, *, what: str) -> None:
    """libcst accepts some code CPython rejects (newer syntax, `nonlocal` at module level)."""
    try:
        compile(code, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise PatchError(f"{what} is not valid Python for {path}: line {exc.lineno}: "
                         f"{_line(code, exc.lineno or 0)!r}: {exc.msg}") from None
    except ValueError as exc:  # null bytes
        raise PatchError(f"{what} is not valid Python for {path}: {exc}") from None


def _pick(chains: list[list[cst.CSTNode]], positions, qualname: str, path: str, line: int | None):
    if not chains:
        raise PatchError(f"function {qualname} not found in {path}")
    if line is not None:
        chains = [c for c in chains if _first_line(c[-1], positions) <= line <= positions[c[-1]].end.line]
        if not chains:
            raise PatchError(f"function {qualname} not found at line {line} in {path}")
    if len(chains) > 1:
        lines = ", ".join(str(_first_line(c[-1], positions)) for c in chains)
        raise PatchError(f"function {qualname} is defined {len(chains)} times in {path} (lines {lines}); "
                         "give the line of the one to replace")
    return chains[0]


def _first_line(node: cst.FunctionDef, positions) -> int:
    if node.decorators:
        return positions[node.decorators[0]].start.line
    return positions[node].start.line


def _indent_of(node: cst.FunctionDef, positions, source: str) -> str:
    """The exact indentation text (tabs included) in front of the def."""
    start = positions[node].start
    return source.splitlines()[start.line - 1][: start.column]


def _adapt(new: cst.FunctionDef, old: cst.FunctionDef, new_indent: str, old_indent: str) -> cst.FunctionDef:
    new = _reindent_docstrings(new, new_indent, old_indent)
    changes: dict = {"leading_lines": old.leading_lines}
    if not new.decorators:
        changes.update(decorators=old.decorators, lines_after_decorators=old.lines_after_decorators)
    return new.with_changes(**changes)


def _indent_unit(node: cst.FunctionDef, module: cst.Module) -> str:
    body = node.body
    if isinstance(body, cst.IndentedBlock) and body.indent is not None:
        return body.indent
    return module.default_indent


def _with_indent_unit(node: cst.FunctionDef, unit: str) -> cst.FunctionDef:
    """Blocks of the new def indented by the unit the old def used (files can mix units)."""

    class SetUnit(cst.CSTTransformer):
        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            return updated.with_changes(indent=unit) if updated.indent is None else updated

    return node.visit(SetUnit())


def _with_blank_lines_of(node: cst.CSTNode, anchor: cst.CSTNode) -> cst.CSTNode:
    """A new statement separated from what precedes it the way `anchor` is (PEP 8 blank lines)."""
    blanks = []
    for empty in anchor.leading_lines:
        if empty.comment is not None:
            break
        blanks.append(cst.EmptyLine(indent=False))
    return node.with_changes(leading_lines=blanks)


def _reindent_docstrings(node: cst.CSTNode, have: str, want: str) -> cst.CSTNode:
    """Docstring continuation lines moved from the candidate's depth to the target's.

    Block indentation follows the tree, but a multi-line string's text does not; for
    docstrings (whose indentation is cleaned away) moving it keeps the diff to real changes.
    Other string literals are left as written: their text is their value.
    """
    if have == want or not want.startswith(have):
        return node
    extra = want[len(have):]
    return node.visit(_ReindentDocstrings(extra))


class _ReindentDocstrings(cst.CSTTransformer):
    def __init__(self, extra: str) -> None:
        super().__init__()
        self.extra = extra
        self.docstrings: set[int] = set()

    def _note(self, node: cst.FunctionDef | cst.ClassDef) -> None:
        body = node.body
        if isinstance(body, cst.IndentedBlock) and body.body:
            first = body.body[0]
            if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1:
                expr = first.body[0]
                if isinstance(expr, cst.Expr) and isinstance(expr.value, cst.SimpleString):
                    self.docstrings.add(id(expr.value))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self._note(node)
        return True

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._note(node)
        return True

    def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.SimpleString:
        if id(original) not in self.docstrings or "\n" not in updated.value:
            return updated
        first, *rest = updated.value.split("\n")
        rest = [self.extra + part if part.strip() else part for part in rest]
        return updated.with_changes(value="\n".join([first, *rest]))


class _Replace(cst.CSTTransformer):
    """Swap one def for another; put new sibling methods right before it."""

    def __init__(self, target: cst.FunctionDef, new: cst.FunctionDef, siblings: list[cst.CSTNode]) -> None:
        super().__init__()
        self.target, self.new, self.siblings = target, new, siblings

    def on_leave(self, original, updated):
        if original is self.target:
            return cst.FlattenSentinel([*self.siblings, self.new]) if self.siblings else self.new
        return super().on_leave(original, updated)


def _insert_at_top_level(
    new_module: cst.Module, old_module: cst.Module, anchor: cst.CSTNode,
    helpers: list[cst.CSTNode], imports: list[cst.SimpleStatementLine],
) -> cst.Module:
    """Helpers right before `anchor`'s statement, imports after the last import above it."""
    if not helpers and not imports:
        return new_module
    at = next(i for i, stmt in enumerate(old_module.body) if stmt is anchor)
    body = list(new_module.body)
    body[at:at] = helpers
    body[_import_slot(old_module, at):_import_slot(old_module, at)] = imports
    return new_module.with_changes(body=body)


def _import_slot(module: cst.Module, before: int) -> int:
    """After the last top-level import above statement `before`; else after the module docstring."""
    body = module.body
    slot = 1 if before > 0 and _is_docstring_line(body[0]) else 0
    for i, stmt in enumerate(body[:before]):
        if _is_import_line(stmt):
            slot = i + 1
    return slot


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body)


def _is_docstring_line(stmt: cst.CSTNode) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr)
            and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString)))


# ----------------------------------------------------------------------------- candidate


class _Candidate:
    """A model's answer for one function: its def, plus whatever else it brought along."""

    def __init__(self, code: str, module: cst.Module, chain: list[cst.CSTNode], positions) -> None:
        self.code = code
        self.module = module
        self.chain = chain  # outermost first; [-1] is the def
        self.positions = positions

    @property
    def function(self) -> cst.FunctionDef:
        return self.chain[-1]

    @classmethod
    def parse(cls, code: str, target_module: cst.Module, steps: list[_Step], qualname: str) -> _Candidate:
        code = textwrap.dedent(code.replace("\r\n", "\n")).strip("\n") + "\n"
        if target_module.default_newline != "\n":
            code = code.replace("\n", target_module.default_newline)
        wrapper = MetadataWrapper(_parse(code, f"candidate code for {qualname}"))
        module = wrapper.module
        # The model may answer with the bare def (usual) or with it inside its class/outer def.
        chains = _find(module.body, steps) or _find(module.body, steps[-1:])
        if not chains:
            defs = [s.name.value for s in module.body if isinstance(s, cst.FunctionDef)]
            found = f" (it defines {', '.join(defs)})" if defs else ""
            raise PatchError(f"candidate code for {qualname} has no def {steps[-1].name}{found}")
        if len(chains) > 1:
            raise PatchError(f"candidate code for {qualname} defines {steps[-1].name} {len(chains)} times")
        return cls(code, module, chains[0], wrapper.resolve(PositionProvider))

    def indent_of(self, node: cst.FunctionDef) -> str:
        return _indent_of(node, self.positions, self.code)

    def class_helpers(self, target_chain: list[cst.CSTNode]) -> list[cst.CSTNode]:
        """New methods of the enclosing class, when the candidate wrapped the def in that class."""
        if len(self.chain) < 2 or not isinstance(self.chain[-2], cst.ClassDef) or len(target_chain) < 2:
            return []
        target_class = target_chain[-2]
        if not isinstance(target_class, cst.ClassDef):
            return []
        known = _bound_names(_scope_body(target_class))
        return [stmt for stmt in _scope_body(self.chain[-2])
                if isinstance(stmt, cst.FunctionDef) and stmt.name.value not in known
                and stmt is not self.function]

    def module_helpers(self, target: cst.Module) -> list[cst.CSTNode]:
        """Top-level defs, classes and assignments binding names the target module lacks."""
        known = _bound_names(target.body)
        helpers = []
        for stmt in self.module.body:
            if stmt is self.chain[0] or _is_import_line(stmt):
                continue
            names = _names_bound_by(stmt)
            if names and not (names & known) and _is_helper(stmt):
                helpers.append(stmt)
                known |= names
        return helpers

    def missing_imports(self, target: cst.Module) -> list[cst.SimpleStatementLine]:
        """Import lines for the candidate's top-level imports the target lacks (aliases, not lines)."""
        have = {key for stmt in _statements_in_scope(target.body) for key in _import_keys(stmt)}
        lines = []
        for stmt in self.module.body:
            if not _is_import_line(stmt):
                continue
            for small in stmt.body:
                if isinstance(small, cst.ImportFrom) and _module_name(small) == "__future__":
                    continue
                if isinstance(small.names, cst.ImportStar):
                    if (_module_name(small), "*", None) not in have:
                        star = small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
                        lines.append(cst.SimpleStatementLine(body=[star]))
                    continue
                missing = [a for a in small.names if _alias_key(small, a) not in have]
                if not missing:
                    continue
                missing = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in missing]
                if isinstance(small, cst.ImportFrom):
                    new = small.with_changes(names=missing, lpar=None, rpar=None, semicolon=cst.MaybeSentinel.DEFAULT)
                else:
                    new = small.with_changes(names=missing, semicolon=cst.MaybeSentinel.DEFAULT)
                lines.append(cst.SimpleStatementLine(body=[new]))
                have |= {_alias_key(small, a) for a in missing}
        return lines


def _is_helper(stmt: cst.CSTNode) -> bool:
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return True
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Assign, cst.AnnAssign)) for s in stmt.body)


def _module_name(node: cst.ImportFrom) -> str:
    dots = "." * len(node.relative)
    name = cst.Module(body=[]).code_for_node(node.module) if node.module is not None else ""
    return dots + name


def _alias_key(stmt: cst.Import | cst.ImportFrom, alias: cst.ImportAlias) -> tuple[str, str, str | None]:
    name = cst.Module(body=[]).code_for_node(alias.name)
    asname = alias.asname.name.value if alias.asname is not None else None
    return (_module_name(stmt) if isinstance(stmt, cst.ImportFrom) else "", name, asname)


def _import_keys(stmt: cst.CSTNode) -> Iterator[tuple[str, str, str | None]]:
    if not isinstance(stmt, cst.SimpleStatementLine):
        return
    for small in stmt.body:
        if isinstance(small, (cst.Import, cst.ImportFrom)):
            if isinstance(small.names, cst.ImportStar):
                yield (_module_name(small), "*", None)
            else:
                for alias in small.names:
                    yield _alias_key(small, alias)


def _bound_names(body: Sequence[cst.CSTNode]) -> set[str]:
    names: set[str] = set()
    for stmt in _statements_in_scope(body):
        names |= _names_bound_by(stmt)
    return names


def _names_bound_by(stmt: cst.CSTNode) -> set[str]:
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return {stmt.name.value}
    if not isinstance(stmt, cst.SimpleStatementLine):
        return set()
    names: set[str] = set()
    for small in stmt.body:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                names |= _target_names(target.target)
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            names |= _target_names(small.target)
        elif isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
            for alias in small.names:
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    names.add(alias.asname.name.value)
                else:
                    names.add(cst.Module(body=[]).code_for_node(alias.name).split(".")[0])
    return names


def _target_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        names: set[str] = set()
        for element in target.elements:
            names |= _target_names(element.value)
        return names
    return set()


def apply_edits_in_memory(root: Path, info: FunctionInfo, code: str) -> dict[str, str]:
    """New file texts for the edit, computed from the user's files without writing them."""
    edit = FunctionEdit(info.path, info.qualname, code, info.first_line)
    return {info.path: edited_text(root, edit)}
