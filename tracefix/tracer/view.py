"""The trace as a person reads it: each block's source with its states beside it.

Calls are shown as a tree (caller above callee); inside each call, every recorded block
visit prints the block's source on the left and what changed on the right; elided visits
collapse to one line; the failing assertion closes the test. Verdicts, when a model gave
some, are shown beside their block (`verdicts` maps (function key, block index) to
(correct, explanation)) without this module knowing where they came from; a verdict on a
whole function (key (function key, None), from hierarchical debugging) is shown beside its
calls, in the panels and in the compact `render_call_tree`.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracefix.tracer.cfg import block_text
from tracefix.tracer.records import Block, CallRecord, FunctionInfo, TestTrace, call_result

MAX_CALLS_SHOWN = 6  # per function per test: the first ones, and every one that raised
MAX_INDENT = 8  # levels of call depth shown as indentation


def render_trace(console: Console, root: Path, trace: TestTrace, verdicts: dict | None = None) -> None:
    verdicts = verdicts or {}
    functions = {f.key: f for f in trace.functions}
    sources = _SourceCache(Path(root))
    style = "green" if trace.outcome == "passed" else "red"
    console.print(Text.assemble(("● ", style), (trace.nodeid, "bold"), (f"  {trace.outcome}", style)))
    shown = _calls_to_show(trace.calls)
    for call in trace.calls:
        if call.id not in shown:
            continue
        info = functions.get(call.function)
        if info is None:
            continue
        console.print(_call_panel(call, info, sources, verdicts, trace.stopped_by))
    hidden = len(trace.calls) - len(shown) + trace.dropped_calls
    if hidden:
        console.print(Text(f"  ... {hidden} more calls recorded but not shown (use --format json)", "dim"))
    if trace.outcome != "passed":
        console.print(Panel(Text(_failure_text(trace)), title="failure", border_style="red", expand=False))


def _calls_to_show(calls: tuple[CallRecord, ...]) -> set[int]:
    """The first calls of each function, and every later one that raised or did not return,
    except the links of a recursion that failed as a whole: of those, only the deepest."""
    by_id = {call.id: call for call in calls}
    failed_recursion = {
        call.parent for call in calls
        if _failed(call) and call.parent in by_id
        and by_id[call.parent].function == call.function and _failed(by_id[call.parent])
    }
    per_function: dict[str, int] = {}
    shown = set()
    for call in calls:
        n = per_function.get(call.function, 0)
        if n < MAX_CALLS_SHOWN or (_failed(call) and call.id not in failed_recursion):
            shown.add(call.id)
        per_function[call.function] = n + 1
    return shown


def _failed(call: CallRecord) -> bool:
    return bool(call.raised) or not call.finished


def _indent(depth: int) -> str:
    # A deep recursion would push the title off the screen; past this it says how deep.
    return "  " * depth if depth <= MAX_INDENT else "  " * MAX_INDENT + f"[depth {depth}] "


def _signature_and_result(call: CallRecord, stopped_by: str) -> tuple[str, Text]:
    args = ", ".join(f"{k}={v}" for k, v in call.args.items())
    kind, words = call_result(call.finished, call.raised, call.returned, stopped_by)
    if kind == "returned":  # the arrow reads faster than the word in a title
        return args, Text(f" -> {call.returned}", "cyan")
    if kind == "stopped":  # the view shows the very call the stop hit
        return args, Text(f" did not return: stopped here by {stopped_by}", "bold red")
    return args, Text(f" {words}", "red")


def _call_panel(call: CallRecord, info: FunctionInfo, sources: _SourceCache, verdicts: dict,
                stopped_by: str) -> Panel:
    args, result = _signature_and_result(call, stopped_by)
    title = Text.assemble(_indent(call.depth), (f"{info.qualname}({args})", "bold"), result,
                          _function_verdict(verdicts.get((info.key, None))))
    table = Table(show_header=False, box=None, pad_edge=False, expand=False)
    table.add_column("source", no_wrap=True, overflow="ellipsis", max_width=56)
    table.add_column("state", overflow="fold", min_width=30, max_width=80)
    blocks = {b.index: b for b in info.blocks}
    for visit in call.visits:
        block = blocks.get(visit.block)
        if block is None:
            continue
        label = Text(f"[{visit.block}] #{visit.index}  ", "dim")
        text = sources.block_text(info, block)
        src = Text(text.replace("\n", "\n" + " " * len(label)), "white")
        state = Text()
        if visit.before:
            state.append(_fmt(visit.before), "dim")
        if visit.after:
            if state:
                state.append("\n")
            state.append("→ " + _fmt(visit.after), "yellow")
        verdict = verdicts.get((info.key, visit.block))
        if verdict is not None:
            ok, why = verdict
            state.append(f"\n{'✓' if ok else '✗'} {why}", "green" if ok else "bold red")
        table.add_row(Text.assemble(label, src), state)
    for e in call.elided:
        end = e.last if e.last is not None else "…"
        table.add_row(Text(f"[{e.block}] visits {e.first}-{end} elided", "dim italic"), Text(""))
    if call.exit_locals and (call.raised or not call.finished):
        table.add_row(Text("state at exit", "bold"), Text(_fmt(call.exit_locals), "magenta"))
    where = f"{info.path}:{info.def_line}"
    return Panel(Group(table), title=title, title_align="left", subtitle=where, subtitle_align="right",
                 border_style="red" if call.raised or not call.finished else "blue", expand=False)


def render_call_tree(console: Console, trace: TestTrace, verdicts: dict | None = None,
                     only: set[int] | None = None) -> None:
    """The test's calls as an indented tree, one line each, with each function's verdict when known.
    `only` limits the tree to those call ids (e.g. the failing region)."""
    verdicts = verdicts or {}
    functions = {f.key: f for f in trace.functions}
    shown = _calls_to_show(trace.calls)
    console.print(Text.assemble(("call tree of ", "dim"), (trace.nodeid, "bold")))
    for call in trace.calls:
        if call.id not in shown or (only is not None and call.id not in only):
            continue
        info = functions.get(call.function)
        name = info.qualname if info else call.function
        args, result = _signature_and_result(call, trace.stopped_by)
        console.print(Text.assemble("  " + _indent(call.depth), (f"{name}({args})", "bold"), result,
                                    _function_verdict(verdicts.get((call.function, None)))))


def _function_verdict(verdict) -> Text:
    if verdict is None:
        return Text("")
    ok, why = verdict
    return Text(f"  {'✓' if ok else '✗'} {why}", "green" if ok else "bold red")


def _fmt(state: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in state.items())


def _failure_text(trace: TestTrace) -> str:
    lines = [l for l in trace.longrepr.splitlines() if l.strip()]
    tail = lines[-12:] if lines else []
    return "\n".join(tail) if tail else trace.message


class _SourceCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lines: dict[str, list[str]] = {}

    def block_text(self, info: FunctionInfo, block: Block) -> str:
        lines = self._lines.get(info.path)
        if lines is None:
            try:
                lines = (self.root / info.path).read_text(encoding="utf-8").splitlines()
            except OSError:
                lines = []
            self._lines[info.path] = lines
        if not lines:
            return f"{info.path}:{block.start}"
        return "\n".join(block_text(lines, info, block))
