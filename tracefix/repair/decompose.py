"""--decompose: split a long monolithic failing function into helpers, then debug the pieces bottom-up.

For a failing path that runs one project function only, and that function longer than
LONG_FUNCTION lines, the call tree has nothing to say. The model is asked to split the
function into helpers without changing what it does; the split is accepted only when every
test that passed before still passes (the whole suite, in a scratch copy). The repair loop
then runs on a copy holding the split, with the hierarchical strategy, so the helpers are
judged leaves first from their real calls.

The accepted patch is against the user's files: it brings the split and the fix. With
--keep-structure the model is asked to carry the fix back into the original function (one
def, no helpers); that candidate is validated again on the user's tree, and when it fails
the split patch is kept, with a warning saying so.

Module-level functions and methods of a module-level class; the helpers of a method's split
are new methods of its class (or module-level functions). Nested functions are not split.
"""

from __future__ import annotations

import ast
import textwrap
import time
from dataclasses import replace
from pathlib import Path

from tracefix.debugger.answers import MalformedAnswer, RejectedCandidate, check_rewrite, extract_code, function_from
from tracefix.config import Config
from tracefix.debugger.hierarchy import path_of
from tracefix.debugger.llm import LLMClient
from tracefix.debugger.prompts import FailureContext, failure_context, function_source
from tracefix.repair.apply import apply_patch
from tracefix.repair.diff import unified_diff
from tracefix.repair.asking import RETRY_TEMPERATURE
from tracefix.repair.patch import apply_edits_in_memory
from tracefix.repair.records import Candidate, FixReport, Progress, since
from tracefix.repair.setup import failing_tests, run_setup
from tracefix.repair.traced import FixOne
from tracefix.repair.patch import PatchError
from tracefix.tracer.scratch import scratch_copy
from tracefix.repair.plan import located
from tracefix.repair.validate import Outcome, TestSettings, validate, write_edited
from tracefix.tracer.records import FunctionInfo, TestTrace
from tracefix.tracer.runner import TestOutcome, run_tests
from tracefix.tracer.tracing import trace_tests

LONG_FUNCTION = 40  # lines, decorators and docstring included
ATTEMPTS = 2  # splits asked for, and inlinings

SYSTEM = "You are a careful Python engineer who refactors without changing behaviour, and fixes bugs minimally."


def fix_decomposed(root: Path, config: Config, test_ids=(), *, fix_project: FixOne,
                   client: LLMClient | None = None, progress: Progress = lambda _msg: None) -> FixReport:
    """`fix_project` repairs the split copy (and the project, when nothing is split): the
    dispatcher passes itself, so this module never imports the one that imports it."""
    started = time.perf_counter()
    root = Path(root).resolve()
    plain = replace(config, decompose=False)
    sources, hashes, settings = run_setup(root, config)

    progress("running the tests to find a function to decompose")
    loc, _coverage = located(root, config)
    failing = failing_tests(loc.outcomes, test_ids)
    if not failing:
        return fix_project(root, plain, test_ids, client=client, progress=progress)
    run = trace_tests(root, failing, files=sources, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                      pytest_args=config.pytest_args, python=config.python)
    info, why_not = decomposable(run.traces)
    if info is None:
        report = fix_project(root, plain, test_ids, client=client, progress=progress)
        return replace(report, warnings=(*report.warnings, f"nothing decomposed: {why_not}"))

    client = client or LLMClient(config)
    first = next(t for t in run.traces if t.outcome != "passed")
    failure = failure_context(root, first.nodeid, first.message, first.longrepr)
    split, tried = _split(client, root, info, failure, loc.outcomes, settings, progress)
    if split is None:
        report = fix_project(root, plain, test_ids, client=client, progress=progress)
        return replace(report, candidates=(*tried, *report.candidates),
                       warnings=(*report.warnings, f"no split of {info.qualname} behaved like the original; "
                                 "debugged it whole"))

    progress(f"debugging the split {info.qualname} bottom-up")
    with scratch_copy(root) as work:
        write_edited(work, split.edited)
        inner = fix_project(work, replace(plain, strategy="hierarchical", apply=False), test_ids, client=client,
                            progress=progress)
    report = replace(inner, root=str(root), candidates=(*tried, *inner.candidates))
    if inner.status != "fixed":
        return replace(report, diff="", edited={}, seconds=since(started))
    edited, diff, warnings = dict(inner.edited), unified_diff(root, inner.edited), list(inner.warnings)
    candidates = list(report.candidates)
    if config.keep_structure:
        kept = _inline(client, root, info, inner.edited.get(info.path, ""), loc.outcomes, failing, settings,
                       config, progress)
        candidates += kept
        accepted = next((c for c in kept if c.outcome is not None and c.outcome.accepted), None)
        if accepted is not None:
            edited = apply_edits_in_memory(root, info, accepted.code)
            diff = unified_diff(root, edited)
        else:
            warnings.append(f"the fix could not be carried back into the original {info.qualname}; "
                            "the patch keeps the split")
    applied: tuple[str, ...] = ()
    if config.apply:
        applied = tuple(apply_patch(root, edited, hashes, config.allow_dirty))
    return replace(report, candidates=tuple(candidates), diff=diff, edited=edited, applied=applied,
                   usage=client.usage, seconds=since(started), warnings=tuple(warnings))


def decomposable(traces: tuple[TestTrace, ...]) -> tuple[FunctionInfo | None, str]:
    """The long monolithic function the failing tests fail in, or None and why not."""
    path = path_of(traces)
    if len(path) != 1:
        return None, f"the failing path runs {len(path)} project functions (decompose needs exactly one)"
    info = next(f for t in traces for f in t.functions if f.key == path[0])
    length = info.end_line - info.first_line + 1
    if length <= LONG_FUNCTION:
        return None, f"{info.qualname} has {length} lines (decompose needs more than {LONG_FUNCTION})"
    if "<locals>" in info.qualname or info.qualname.count(".") > 1:
        return None, (f"{info.qualname} is a nested function or the method of a nested class (decompose splits "
                      "module-level functions and the methods of module-level classes)")
    return info, ""


def _class_of(qualname: str) -> str | None:
    """The class a method belongs to; None for a module-level function."""
    return qualname.split(".")[0] if "." in qualname else None


# --- the split --------------------------------------------------------------------------------------

class _Split:
    def __init__(self, code: str, edited: dict[str, str], helpers: list[str]) -> None:
        self.code, self.edited, self.helpers = code, edited, helpers


def split_messages(root: Path, info: FunctionInfo, failure: FailureContext,
                   previous: list[tuple[str, str]]) -> list[dict]:
    parts = [f"## Function `{info.qualname}` in {info.path}", "```python", function_source(root, info), "```",
             f"It fails the test {failure.nodeid}: {failure.message}"]
    for code, result in previous[-1:]:
        parts += ["## A previous split that was rejected", "```python", code, "```", f"Result: {result}"]
    owner = _class_of(info.qualname)
    parts += ["## Task",
              f"`{info.name}` is long. Split it into smaller helper functions, one per step, WITHOUT changing what "
              "it does: every input must give exactly the same result or exception as before, even where the code "
              "looks wrong (the bug is fixed later, in the helper it lands in)."]
    if owner is None:
        parts += ["- define each helper at module level, before the function, named after what it returns;",
                  f"- keep `{info.name}`'s name, parameters and docstring; it calls the helpers.",
                  f"Reply with one ```python code block holding the helpers and the new `{info.name}`."]
    else:
        parts += [f"- define each helper as a new method of `{owner}`, named after what it returns;",
                  f"- keep `{info.name}`'s name, parameters and docstring; it calls the helpers through `self`.",
                  f"Reply with one ```python code block holding `class {owner}:` with the new helper methods and the "
                  f"new `{info.name}` only (leave the class's other methods out)."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def _split(client: LLMClient, root: Path, info: FunctionInfo, failure: FailureContext,
           baseline: tuple[TestOutcome, ...], settings: TestSettings,
           progress: Progress) -> tuple[_Split | None, list[Candidate]]:
    tried: list[Candidate] = []
    previous: list[tuple[str, str]] = []
    for attempt in range(ATTEMPTS):
        progress(f"asking for a split of {info.qualname}")
        reply = client.complete(split_messages(root, info, failure, previous), purpose="decompose", variant=attempt,
                                temperature=None if attempt == 0 else RETRY_TEMPERATURE)
        try:
            split = split_from(root, info, reply.text)
        except (MalformedAnswer, RejectedCandidate, PatchError) as exc:
            tried.append(Candidate(0, info.key, reply.text.strip()[:2000], None, rejected=f"split: {exc}"))
            previous.append((reply.text.strip()[:2000], str(exc)))
            continue
        progress(f"checking that the split of {info.qualname} behaves like the original")
        outcome = behaves_identically(root, split.edited, baseline, settings, split.helpers)
        tried.append(Candidate(0, info.key, split.code, outcome))
        if outcome.accepted:
            return split, tried
        previous.append((split.code, outcome.reason))
    return None, tried


def split_from(root: Path, info: FunctionInfo, answer: str) -> _Split:
    """The split in a model answer, patched into the file; RejectedCandidate when it is no split."""
    code = extract_code(answer)
    node = function_from(code, info.qualname)
    if node is None:
        raise RejectedCandidate(f"the answer has no function named {info.name}")
    check_rewrite(function_source(root, info), code, info.qualname)
    tree = ast.parse(textwrap.dedent(code))
    original = (root / info.path).read_text(encoding="utf-8")
    owner = _class_of(info.qualname)
    helpers = _new_defs(tree.body, _top_level_names(original), info.name)
    if owner is not None:
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner):
            helpers += _new_defs(cls.body, _class_names(original, owner), info.name)
    if not helpers or not set(helpers) & _called_names(node, owner):
        raise RejectedCandidate(f"the answer does not split {info.name} into new helper functions it calls")
    edited = apply_edits_in_memory(root, info, code)
    defined = _top_level_names(edited[info.path]) | (_class_names(edited[info.path], owner) if owner else set())
    missing = [h for h in helpers if h not in defined]
    if missing:
        raise RejectedCandidate(f"the helpers {', '.join(missing)} could not be added to {info.path}")
    return _Split(code, edited, helpers)


def behaves_identically(root: Path, edited: dict[str, str], baseline: tuple[TestOutcome, ...],
                        settings: TestSettings, helpers: list[str]) -> Outcome:
    """Accepted when every test that passed before passes with the split (the whole suite, in a scratch copy)."""
    started = time.perf_counter()
    with scratch_copy(root) as scratch:
        write_edited(scratch, edited)
        run = run_tests(scratch, test_timeout=settings.test_timeout, run_timeout=settings.run_timeout,
                        pytest_args=settings.pytest_args, python=settings.python, in_place=True)
    after = {o.nodeid: o for o in run.outcomes}
    passed = [o.nodeid for o in baseline if o.outcome == "passed"]
    broken = [n for n in passed if n not in after or after[n].bad]
    seconds = round(time.perf_counter() - started, 3)
    if run.crashed:
        broken.append(f"(test run: {run.crashed})")
    if broken:
        return Outcome(False, (), (), tuple(broken), f"the split changes behaviour: {len(broken)} passing tests "
                       f"fail, {', '.join(broken[:3])}", tuple(f"{n}: {after[n].message}" for n in broken if n in after)[:5],
                       seconds)
    return Outcome(True, (), (), (), f"split into {', '.join(helpers)}; all {len(passed)} passing tests still pass",
                   (), seconds)


def _top_level_names(text: str) -> set[str]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _class_names(text: str, owner: str) -> set[str]:
    """The functions defined in the module-level class `owner` of `text`."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return {m.name for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner
            for m in n.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _new_defs(body: list[ast.stmt], existing: set[str], name: str) -> list[str]:
    return [n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name != name and n.name not in existing]


def _called_names(function: ast.AST, owner: str | None) -> set[str]:
    """Names `function` calls: `helper(...)`, and for a method `self.helper(...)`, `cls.helper(...)`."""
    receivers = {"self", "cls", owner}
    called = set()
    for call in (c for c in ast.walk(function) if isinstance(c, ast.Call)):
        if isinstance(call.func, ast.Name):
            called.add(call.func.id)
        elif (owner is not None and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
              and call.func.value.id in receivers):
            called.add(call.func.attr)
    return called


# --- keeping the structure -------------------------------------------------------------------------

def inline_messages(root: Path, info: FunctionInfo, fixed_split: str, previous: list[tuple[str, str]]) -> list[dict]:
    parts = [f"## The original function `{info.qualname}` in {info.path}", "```python", function_source(root, info),
             "```", "## The same function split into helpers, with a fix the tests validated", "```python",
             fixed_split, "```"]
    for code, result in previous[-1:]:
        parts += ["## A previous attempt that was rejected", "```python", code, "```", f"Result: {result}"]
    parts += ["## Task",
              f"Apply the same fix to the original `{info.name}`: reply with the complete original function alone, "
              "no helper functions, in one ```python code block, changed only where the fix needs it."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def _inline(client: LLMClient, root: Path, info: FunctionInfo, fixed_text: str, baseline, failing: list[str],
            settings: TestSettings, config: Config, progress: Progress) -> list[Candidate]:
    fixed_split = split_functions(fixed_text, (root / info.path).read_text(encoding="utf-8"), info.qualname)
    tried: list[Candidate] = []
    previous: list[tuple[str, str]] = []
    for attempt in range(ATTEMPTS):
        progress(f"carrying the fix back into the original {info.qualname}")
        reply = client.complete(inline_messages(root, info, fixed_split, previous), purpose="inline", variant=attempt,
                                temperature=None if attempt == 0 else max(config.temperature, RETRY_TEMPERATURE))
        try:
            code = extract_code(reply.text)
            node = function_from(code, info.qualname)
            if node is None:
                raise RejectedCandidate(f"the answer has no function named {info.name}")
            # The function alone: helpers the answer may bring along are not the original structure.
            code = textwrap.dedent(ast.get_source_segment(textwrap.dedent(code), node, padded=True)
                                   or ast.unparse(node))
            check_rewrite(function_source(root, info), code, info.qualname)
            edited = apply_edits_in_memory(root, info, code)
        except (MalformedAnswer, RejectedCandidate, PatchError) as exc:
            tried.append(Candidate(0, info.key, reply.text.strip()[:2000], None, rejected=f"inline: {exc}"))
            previous.append((reply.text.strip()[:2000], str(exc)))
            continue
        outcome = validate(root, edited, baseline, failing, settings)
        tried.append(Candidate(0, info.key, code, outcome))
        if outcome.accepted:
            break
        previous.append((code, outcome.reason))
    return tried


def split_functions(fixed_text: str, original_text: str, qualname: str) -> str:
    """The source of `qualname` and of the helpers the split added, from the fixed file; a
    method comes inside `class Owner:` with the helper methods."""
    name, owner = qualname.split(".")[-1], _class_of(qualname)
    existing = _top_level_names(original_text) - ({name} if owner is None else set())
    tree = ast.parse(fixed_text)
    chunks = [ast.get_source_segment(fixed_text, n) or "" for n in tree.body
              if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name not in existing]
    if owner is not None:
        kept = _class_names(original_text, owner) - {name}
        methods = [ast.get_source_segment(fixed_text, m, padded=True) or "" for n in tree.body
                   if isinstance(n, ast.ClassDef) and n.name == owner
                   for m in n.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name not in kept]
        chunks.append(f"class {owner}:\n" + "\n\n".join(m for m in methods if m))
    return "\n\n\n".join(c for c in chunks if c)

