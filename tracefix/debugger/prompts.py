"""Debugging prompts built from a real execution, fitted to a token budget.

A prompt has parts that are never dropped (the task, the failing test and its error, the
function's source) and a block trace that shrinks until the whole fits: first the middle
visits of each call are elided (the first visits and those nearest the exception stay),
then calls other than the failing one are dropped.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tracefix.tracer.cfg import block_text
from tracefix.tracer.records import CallRecord, FunctionInfo, TestTrace, call_result

SYSTEM = (
    "You are a careful Python debugger. You are shown a function, a failing test, and the real "
    "execution of the function split into basic blocks with the variable values before and after "
    "each block. Judge the code against the intent given by its name, docstring and the test."
)

# Visits kept per call, tried in order until the prompt fits the budget.
VISIT_STEPS = (40, 16, 8, 4, 2)
CALL_STEPS = (3, 2, 1)


@dataclass(frozen=True)
class FailureContext:
    """What the model is told about one failing test."""

    nodeid: str
    test_source: str
    message: str
    error_tail: str
    # Other failing tests, each shown by its source and one-line error: more inputs with the
    # values expected of them (the no-trace baseline shows up to three failing tests too).
    others: tuple[FailureContext, ...] = ()


def failure_context(root: Path, nodeid: str, message: str, longrepr: str) -> FailureContext:
    return FailureContext(nodeid, source_of_test(root, nodeid), message, _tail(longrepr, 15))


def source_of_test(root: Path, nodeid: str) -> str:
    """The source of the test function a node id names ("" when it cannot be found)."""
    path, _, rest = nodeid.partition("::")
    names = [n.split("[")[0] for n in rest.split("::") if n]
    try:
        source = (Path(root) / path).read_text(encoding="utf-8")
        body = ast.parse(source).body
    except (OSError, SyntaxError, UnicodeDecodeError):
        return ""
    node = None
    for name in names:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == name), None)
        if node is None:
            return ""
        body = getattr(node, "body", [])
    return ast.get_source_segment(source, node) or "" if node is not None else ""


def function_source(root: Path, info: FunctionInfo) -> str:
    lines = (Path(root) / info.path).read_text(encoding="utf-8").splitlines()
    chunk = lines[info.first_line - 1:info.end_line]
    indent = min((len(l) - len(l.lstrip()) for l in chunk if l.strip()), default=0)
    return "\n".join(l[indent:] for l in chunk)


def _tail(text: str, n: int) -> str:
    lines = [l for l in text.splitlines() if l.strip()]
    return "\n".join(lines[-n:])


# --- the block trace as text --------------------------------------------------------------

def calls_worth_showing(trace: TestTrace, key: str) -> list[CallRecord]:
    """Calls of one function, the most telling first: the one that raised, then the earliest."""
    calls = [c for c in trace.calls if c.function == key]
    return sorted(calls, key=lambda c: (c.raised is None and c.finished, c.id))


def trace_text(root: Path, info: FunctionInfo, calls: list[CallRecord], max_visits: int,
               trace: TestTrace) -> str:
    """The block trace of `calls`, some of `trace`'s; the whole test's calls let a call name
    the recursive call that repeats its own arguments."""
    lines = (Path(root) / info.path).read_text(encoding="utf-8").splitlines()
    blocks = {b.index: b for b in info.blocks}
    out = []
    for call in calls:
        args = ", ".join(f"{k}={v}" for k, v in call.args.items())
        out.append(_call_header(info, call, trace))
        if _repeated_by_a_child(call, trace.calls):
            out.append(f"  it calls {info.name}({args}) again, with the same arguments: "
                       "the recursion makes no progress")
        if not call.visits:
            out.append("  (block trace not recorded for this call)")
        visits = list(call.visits)
        if len(visits) > max_visits:
            head = visits[: max_visits // 2]
            tail = visits[-(max_visits - len(head)):]
            visits = head + [None] + tail
        for visit in visits:
            if visit is None:
                out.append("  ... (visits in the middle left out)")
                continue
            block = blocks.get(visit.block)
            if block is None:
                continue
            code = block_text(lines, info, block)
            out.append(f"  [block {visit.block}] (visit {visit.index})")
            out.extend("      " + l for l in code)
            if visit.before:
                out.append("    before: " + _fmt(visit.before))
            if visit.after:
                out.append("    after:  " + _fmt(visit.after))
        for e in call.elided:
            end = e.last if e.last is not None else "more"
            out.append(f"  (block {e.block}: visits {e.first}-{end} not recorded)")
        if call.raised or not call.finished:
            out.append(f"  state at the end: {_fmt(call.exit_locals)}")
    return "\n".join(out)


def _call_header(info: FunctionInfo, call: CallRecord, trace: TestTrace, chars: int | None = None) -> str:
    """"Call f(a=1) returned 2": values cut to `chars` (the result to twice that) when given."""
    cut = (lambda v, n: v) if chars is None else _short  # noqa: E731
    args = ", ".join(f"{k}={cut(v, chars)}" for k, v in call.args.items())
    _kind, result = call_result(call.finished, call.raised, call.returned, trace.stopped_by)
    return f"Call {info.name}({args}) {cut(result, 2 * chars if chars else 0)}"


def _repeated_by_a_child(call: CallRecord, everything: tuple[CallRecord, ...]) -> bool:
    return any(c.parent == call.id and c.function == call.function and c.args == call.args for c in everything)


def _fmt(state: dict[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in state.items()) or "(nothing)"


INLINE_CAP = 1500  # tokens of inline trace in a fix prompt, whatever the budget: a small model reads little
INLINE_VALUE_STEPS = (80, 40, 20)  # characters kept of one value, tried in order until the trace fits


def inline_trace(root: Path, info: FunctionInfo, calls: list[CallRecord], trace: TestTrace, value_chars: int) -> str:
    """The function's source once per call, the values each block left written as a comment on
    the block's last line: its first visit and, for a block run again, its last visit and how
    many times it ran. No block dump: a small model reads a value next to the line that made it."""
    lines = (Path(root) / info.path).read_text(encoding="utf-8").splitlines()
    blocks = {b.index: b for b in info.blocks}
    out = []
    for call in calls:
        out.append(_call_header(info, call, trace, value_chars))
        notes: dict[int, str] = {}
        for index, visits in _visits_by_block(call).items():
            block = blocks.get(index)
            if block is None:
                continue
            first, last = visits[0], visits[-1]
            runs = max([v.index for v in visits] + [e.last or e.first for e in call.elided if e.block == index])
            text = _state(first.after, value_chars)
            if runs > 1:
                # The recorder keeps the first visits of a hot block: its last kept one may not be the last.
                which = "last" if last.index == runs else f"last recorded (visit {last.index})"
                text = (f"ran {runs}x; first: {text or '(no change)'}; "
                        f"{which}: {_state(last.after, value_chars) or '(no change)'}")
            if text:
                notes[block.end] = f"[block {index}] {text}"
        for number in range(info.first_line, info.end_line + 1):
            code = lines[number - 1] if number <= len(lines) else ""
            if not code.strip():
                continue
            out.append(f"{code}  # {notes[number]}" if number in notes else code)
        if call.raised or not call.finished:
            out.append(f"# state at the end: {_state(call.exit_locals, value_chars) or '(nothing)'}")
    return "\n".join(out)


def _visits_by_block(call: CallRecord) -> dict[int, list]:
    grouped: dict[int, list] = {}
    for visit in call.visits:
        grouped.setdefault(visit.block, []).append(visit)
    return grouped


def _state(state: dict[str, str], chars: int) -> str:
    return ", ".join(f"{k}={_short(v, chars)}" for k, v in state.items())


def _short(value: str, chars: int) -> str:
    return value if len(value) <= chars else value[:chars - 3] + "..."


def fitted_inline_trace(root: Path, info: FunctionInfo, calls: list[CallRecord], trace: TestTrace,
                        count: Callable[[str], int], cap: int = INLINE_CAP) -> str:
    """The richest inline trace within `cap` tokens: fewer calls, then shorter values."""
    text = ""
    for max_calls in CALL_STEPS[1:]:
        for chars in INLINE_VALUE_STEPS:
            text = inline_trace(root, info, calls[:max_calls], trace, chars)
            if count(text) <= cap:
                return text
    return text


# --- the prompts ------------------------------------------------------------------------------

CONTEXT_LINES = 40  # the rest of a function's file is shown when it is at most this long


def file_context(root: Path, info: FunctionInfo, max_lines: int = CONTEXT_LINES) -> str:
    """The function's file without the function, when short: its imports, constants, docstrings
    and neighbours often state the intent (QuixBugs keeps its spec in a module docstring after
    the function). "" for a long file or one with nothing else in it."""
    lines = (Path(root) / info.path).read_text(encoding="utf-8").splitlines()
    rest = lines[:info.first_line - 1] + [f"# ... `{info.name}`, shown above ..."] + lines[info.end_line:]
    while rest and not rest[-1].strip():
        rest.pop()
    code = [l for l in rest if l.strip()]
    if len(code) <= 1 or len(code) > max_lines:
        return ""
    return "\n".join(rest).strip("\n")


def _common(root: Path, info: FunctionInfo, failure: FailureContext, source: bool = True) -> str:
    """The function (unless a trace below shows its source), the rest of a short file, the
    failing test and its error, and the other failing tests."""
    parts = [f"## Function `{info.qualname}` in {info.path}"]
    if source:
        parts += ["```python", function_source(root, info), "```"]
    context = file_context(root, info)
    if context:
        parts += [f"## The rest of {info.path}", "```python", context, "```"]
    parts += [f"## Failing test {failure.nodeid}"]
    if failure.test_source:
        parts += ["```python", failure.test_source, "```"]
    parts += ["Error:", "```", failure.error_tail or failure.message, "```"]
    for other in failure.others:
        parts += [f"## Another failing test, {other.nodeid}"]
        if other.test_source:
            parts += ["```python", other.test_source, "```"]
        parts += [f"Error: {other.message}"]
    return "\n".join(parts)


def fit(build: Callable[[int, int], str], count: Callable[[str], int], budget: int) -> str:
    """The largest prompt `build(max_visits, max_calls)` gives within `budget` tokens (or the smallest)."""
    text = ""
    for calls in CALL_STEPS:
        for visits in VISIT_STEPS:
            text = build(visits, calls)
            if count(text) <= budget:
                return text
    return text


def verdict_messages(root: Path, info: FunctionInfo, trace: TestTrace, failure: FailureContext,
                     count: Callable[[str], int], budget: int) -> tuple[list[dict], list[int]]:
    """Messages asking for a verdict on each executed block, and the block ids offered."""
    calls = calls_worth_showing(trace, info.key)
    executed = sorted({v.block for c in calls for v in c.visits})

    def build(max_visits: int, max_calls: int) -> str:
        return "\n".join([
            _common(root, info, failure),
            "## Execution, block by block",
            trace_text(root, info, calls[:max_calls], max_visits, trace),
            "## Task",
            "For each block above, say whether its effect on the variables is correct for what the "
            "function is meant to do. Answer only with a JSON list, one object per block, each "
            "explanation under 20 words:",
            '[{"block": 0, "correct": true, "explanation": "..."}]',
            f"Blocks to judge: {', '.join(map(str, executed))}.",
        ])

    text = fit(build, count, budget)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}], executed


def fix_messages(root: Path, info: FunctionInfo, trace: TestTrace, failure: FailureContext,
                 count: Callable[[str], int], budget: int, verdict_notes: list[str] | None = None,
                 previous: list[tuple[str, str]] | None = None) -> list[dict]:
    """Messages asking for a corrected version of the function.

    `previous` holds (candidate code, what the tests said[, its block trace]) for attempts
    already rejected.
    """
    calls = calls_worth_showing(trace, info.key)
    values = fitted_inline_trace(root, info, calls, trace, count)

    def build(max_visits: int, max_calls: int) -> str:
        # The trace once, compact: each line's values inline, not a dump of every block visit.
        # `fit` still shrinks the rest (previous attempts) through max_calls.
        parts = [_common(root, info, failure, source=not values),
                 "## What the code computed in the failing test (values each block left, as comments)",
                 values if max_calls > 1 else fitted_inline_trace(root, info, calls[:1], trace, count)]
        if verdict_notes:
            parts += ["## Blocks judged wrong", *verdict_notes]
        for code, result, *how in (previous or [])[-2:]:
            parts += ["## A previous attempt that was rejected", "```python", code, "```", f"Result: {result}"]
            if how and how[0]:
                parts += ["How the failing test ran on it:", how[0]]
        parts += ["## Task",
                  f"`{info.name}` has a bug: the test fails with `{failure.message}`. Compare the values in "
                  "the comments above with what the test expects, and find the line that computes a wrong "
                  f"value. Keep the name and parameters of `{info.name}`, change as little as possible, and do "
                  "not change the test. Answer in exactly this form:",
                  # A form to fill in: asked for "a sentence, then the code", the 1.5B model stopped
                  # after the sentence in half of its answers to this prompt, or restated the failure
                  # and returned the code unchanged; asked for the wrong line, it changes that line.
                  "Bug: <the wrong line, and what it must do instead>",
                  "```python",
                  f"<the complete corrected function `{info.name}`>",
                  "```"]
        return "\n".join(parts)

    text = fit(build, count, budget)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


# --- the no-trace baseline (Self-Debugging style) ---------------------------------------------

BASELINE_SYSTEM = "You are a careful Python programmer. You fix bugs in code so that its tests pass."


def self_repair_messages(path: str, source: str, failures: list[FailureContext],
                         count: Callable[[str], int], budget: int,
                         previous: list[tuple[str, str]] | None = None) -> list[dict]:
    """Messages asking for the whole corrected file from the code, the failing tests and their
    errors alone: no trace and no verdicts. `previous` holds (rejected file, what the tests said)."""

    def build(max_failures: int, max_previous: int) -> str:
        parts = [f"## File {path}", "```python", source.rstrip("\n"), "```"]
        for failure in failures[:max_failures]:
            parts.append(f"## Failing test {failure.nodeid}")
            if failure.test_source:
                parts += ["```python", failure.test_source, "```"]
            parts += ["Error:", "```", failure.error_tail or failure.message, "```"]
        for code, result in (previous or [])[-max_previous:] if max_previous else []:
            parts += ["## A previous attempt that was rejected", "```python", code.rstrip("\n"), "```",
                      f"Result: {result}"]
        parts += ["## Task",
                  f"The code in {path} has a bug: the tests above fail. Find it. Reply with one sentence "
                  f"naming the bug, then the complete corrected file {path} in one ```python code block. "
                  "Keep every function's name and parameters; change as little as possible. Do not change "
                  "the tests."]
        return "\n".join(parts)

    text = ""
    for max_failures, max_previous in ((3, 2), (2, 1), (1, 1), (1, 0)):
        text = build(max_failures, max_previous)
        if count(text) <= budget:
            break
    return [{"role": "system", "content": BASELINE_SYSTEM}, {"role": "user", "content": text}]


# --- focused sampling: the suspect function, its marked lines, the facts of the real run -------

FOCUSED_SYSTEM = ("You are a careful Python programmer. You fix the bug in one function so that its failing "
                  "test passes, using what the code really computed.")
MARK = "# <- suspicious"
FACTS_STEPS = (4, 2, 1, 0)  # calls shown per function, tried in order until the prompt fits
VALUE_CHARS = 160  # one argument or result in a fact; a long repr is cut, the fact stays
FRAMINGS = ("whole", "minimal")


def marked_source(root: Path, info: FunctionInfo, lines) -> str:
    """The function's source with MARK after each of `lines` (file line numbers)."""
    marked = set(lines)
    out = function_source(root, info).splitlines()
    return "\n".join(f"{text}  {MARK}" if info.first_line + i in marked and text.strip() else text
                     for i, text in enumerate(out))


def run_facts(trace: TestTrace, key: str, limit: int) -> tuple[list[str], list[str]]:
    """What the function did on the failing test (its arguments and result, call by call: the
    first calls and the last), and what the recorded project functions it called did."""
    def fact(call: CallRecord) -> str:
        args = ", ".join(f"{k}={_cut(v)}" for k, v in call.args.items())
        _kind, result = call_result(call.finished, call.raised, call.returned, trace.stopped_by)
        name = call.function.rsplit("::", 1)[-1].rsplit(".", 1)[-1]
        return f"{name}({args}) {_cut(result)}"

    own = [c for c in trace.calls if c.function == key]
    ids = {c.id for c in own}
    helpers = [c for c in trace.calls if c.parent in ids and c.function != key]
    return _first_and_last([fact(c) for c in own], limit), _first_and_last([fact(c) for c in helpers], limit)


def _first_and_last(facts: list[str], limit: int) -> list[str]:
    distinct = list(dict.fromkeys(facts))
    if limit <= 0:
        return []
    if len(distinct) <= limit:
        return distinct
    return distinct[:limit - 1] + [f"... {len(distinct) - limit} more ...", distinct[-1]]


def _cut(value: str) -> str:
    return value if len(value) <= VALUE_CHARS else value[:VALUE_CHARS - 3] + "..."


def focused_messages(root: Path, info: FunctionInfo, marked: list[int], trace: TestTrace,
                     failure: FailureContext, framing: str, count: Callable[[str], int], budget: int,
                     previous: tuple[str, str] | None = None) -> list[dict]:
    """Messages asking for the function fixed, from its source with the suspicious lines marked,
    the failing test, and the real inputs and outputs: no block dump. `framing` is "whole" (a
    corrected function) or "minimal" (an edit of the marked lines); `previous` is the best
    rejected candidate so far and what the tests said of it."""

    def build(limit: int) -> str:
        own, helpers = run_facts(trace, info.key, limit)
        parts = [f"## Function `{info.qualname}` in {info.path}"
                 + (f" (lines marked `{MARK}` run in the failing test and rarely in passing ones)" if marked else ""),
                 "```python", marked_source(root, info, marked), "```"]
        context = file_context(root, info)
        if context and limit:
            parts += [f"## The rest of {info.path}", "```python", context, "```"]
        parts += [f"## Failing test {failure.nodeid}"]
        if failure.test_source:
            parts += ["```python", failure.test_source, "```"]
        parts += ["Error:", "```", failure.error_tail or failure.message, "```"]
        if own:
            parts += [f"## What `{info.name}` really did in that test", *(f"- {f}" for f in own)]
        if helpers:
            parts += [f"## What the functions `{info.name}` calls really did", *(f"- {f}" for f in helpers)]
        if previous:
            parts += ["## A previous attempt that was rejected", "```python", previous[0], "```",
                      f"Result: {previous[1]}"]
        parts += ["## Task", _focused_task(info, failure, framing, bool(marked))]
        return "\n".join(parts)

    text = ""
    for limit in FACTS_STEPS:
        text = build(limit)
        if count(text) <= budget:
            break
    return [{"role": "system", "content": FOCUSED_SYSTEM}, {"role": "user", "content": text}]


def _focused_task(info: FunctionInfo, failure: FailureContext, framing: str, marked: bool) -> str:
    where = "The marked lines are the most likely place of the bug. " if marked else ""
    keep = f"Keep the name and parameters of `{info.name}` and do not change the test."
    # A form to fill in, as in the traced fix prompt: asked for "a sentence, then the code",
    # the 1.5B model stopped after the sentence in most answers of run 5 (a follow-up each).
    form = "\n".join(["Answer in exactly this form:", "Bug: <the wrong line, and what it must do instead>",
                      "```python", f"<the complete {'edited' if framing == 'minimal' else 'corrected'} "
                      f"function `{info.name}`>", "```"])
    if framing == "minimal":
        return (f"`{info.name}` has a bug: the test fails with `{failure.message}`. {where}Change as few lines "
                f"as you can (one, if one is enough). {keep}\n{form}")
    return (f"`{info.name}` has a bug: the test fails with `{failure.message}`. Compare what it really did with "
            f"what the test expects. {where}{keep}\n{form}")


def without_prompt_marks(code: str) -> str:
    """`code` without the comments the prompts write into the source they show (the inline
    values `# [block N] ...`, the `# <- suspicious` marks): a model often copies them into its
    answer, and a patch must not carry them. Only real comments go (tokenize tells a comment
    from a string); code that does not tokenize is returned as it is."""
    import io
    import tokenize

    cuts: dict[int, int] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT and (token.string.startswith("# [block ") or token.string == MARK):
                cuts[token.start[0]] = token.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code
    if not cuts:
        return code
    lines = code.splitlines(keepends=True)
    for number, column in cuts.items():
        line = lines[number - 1]
        ending = line[len(line.rstrip("\r\n")):]
        lines[number - 1] = line[:column].rstrip() + ending
    return "".join(lines)
