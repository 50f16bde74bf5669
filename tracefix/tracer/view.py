"""The trace as a person reads it: each block's source with its states beside it.

Calls are shown as a tree (caller above callee, indented); inside each call, every recorded
block visit prints the block's source on the left and what changed on the right, both
wrapped to the console's width, never cut. Lines the ranking puts on top are marked, and
calls that ran none of the ranked code and did not fail fold to one line. However many calls
a test made, the text stays bounded: consecutive calls of one function from one caller
collapse into one box with their count and the first and last of them, each function gets a
few boxes, and the rest is counted in a footer that says what `--format json` holds and
what the recorder never kept. The failing assertion closes the test.

Verdicts, when a model gave some, are shown beside their block (`verdicts` maps (function
key, block index) to (correct, explanation)) without this module knowing where they came
from; a verdict on a whole function (key (function key, None), from hierarchical debugging)
is shown beside its calls, in the boxes and in the compact `render_call_tree`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracefix.tracer.cfg import numbered_block_text
from tracefix.tracer.records import Block, CallRecord, FunctionInfo, TestTrace, call_result

MAX_CALLS_SHOWN = 6  # boxes per function per test: its first calls
RUN_COLLAPSED = 4  # this many consecutive calls of one function from one caller collapse into one box
RUN_LISTED = 6  # calls between the first and the last of a collapsed run listed one line each
MAX_INDENT = 8  # levels of call depth shown as indentation
MARK = "▶"
MIN_STATE = 28  # narrowest state column beside the source; narrower, the state goes under it


@dataclass(frozen=True)
class Marks:
    """What the ranking says, for the view: the (path, line) pairs to mark. With marks, calls
    that ran none of them (nor called what did) and did not fail are folded to one line."""

    lines: frozenset[tuple[str, int]] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.lines)


def render_legend(console: Console, marks: Marks | None = None, top: int = 3) -> None:
    """The key to the boxes, once above the first test: one line at the CLI's pipe width (160);
    the README's trace section says the same at length."""
    parts = ["[2] #3 block 2, 3rd visit", "12 line", "→ what it changed", "line 12 → called from line 12",
             "×N calls in a row"]
    if marks:
        parts += [f"{MARK} test's top {top}", f"· folded: no {MARK}, no failure"]
    console.print(Text("key: " + " · ".join(parts), "dim"))


def render_trace(console: Console, root: Path, trace: TestTrace, verdicts: dict | None = None,
                 marks: Marks | None = None) -> None:
    verdicts = verdicts or {}
    marks = marks or Marks()
    functions = {f.key: f for f in trace.functions}
    sources = _SourceCache(Path(root))
    style = "green" if trace.outcome == "passed" else "red"
    console.print(Text.assemble(("● ", style), (trace.nodeid, "bold"), (f"  {trace.outcome}", style)))
    plan = _plan(trace, marks, functions)
    painter = _Painter(console, trace, functions, sources, verdicts, marks)
    for entry in plan.entries:
        painter.paint(entry)
    for line in _footer(trace, plan):
        console.print(line)
    if trace.outcome != "passed":
        console.print(Panel(Text(_failure_text(trace)), title="failure", border_style="red", expand=False))


# --- which calls are shown, and how ----------------------------------------------------------

@dataclass
class _Run:
    """Consecutive calls of one function from one caller, shown as one box."""

    calls: list[CallRecord]
    total: int  # calls it stands for, the unrecorded ones included when they can only be these
    folded: bool = False


@dataclass
class _Plan:
    entries: list = field(default_factory=list)  # CallRecord (a box), ("fold", CallRecord) or _Run
    shown: set[int] = field(default_factory=set)  # ids with a box or a line of their own
    hidden: dict[str, int] = field(default_factory=dict)  # function key -> recorded calls not shown


def _plan(trace: TestTrace, marks: Marks, functions: dict | None = None) -> _Plan:
    calls = trace.calls
    by_id = {c.id: c for c in calls}
    children: dict[int | None, list[CallRecord]] = {}
    for call in calls:  # ids grow in call order, so each list is in call order
        parent = call.parent if call.parent in by_id else None
        children.setdefault(parent, []).append(call)
    kept_failures = _first_and_last_failures(calls, _failed_recursion_links(calls, by_id))
    hot = _hot_calls(calls, by_id, marks, functions or {}) if marks else None
    recorded: dict[str, int] = {}
    for call in calls:
        recorded[call.function] = recorded.get(call.function, 0) + 1
    plan = _Plan()
    boxes: dict[str, int] = {}

    def hide(call: CallRecord, with_subtree: bool = True) -> None:
        todo = [call]
        while todo:
            c = todo.pop()
            plan.hidden[c.function] = plan.hidden.get(c.function, 0) + 1
            if with_subtree:
                todo.extend(children.get(c.id, ()))

    # Depth first with a stack of things to do: a recursion thousands of calls deep must not
    # overflow the view.
    stack: list[tuple[str, object]] = [("children", None)]
    while stack:
        kind, item = stack.pop()
        if kind == "children":
            todo = []
            for run in _runs(children.get(item, [])):
                if len(run) < RUN_COLLAPSED or boxes.get(run[0].function, 0) >= MAX_CALLS_SHOWN:
                    todo.extend(("call", c) for c in run)
                    continue
                total = len(run)
                if recorded[run[0].function] == len(run):  # every recorded call is here: so are the others
                    total = max(total, trace.call_counts.get(run[0].function, total))
                todo.append(("run", _Run(run, total, hot is not None and not any(c.id in hot for c in run))))
            stack.extend(reversed(todo))
        elif kind == "call":
            call = item
            if boxes.get(call.function, 0) >= MAX_CALLS_SHOWN and call.id not in kept_failures:
                hide(call, with_subtree=False)  # what it called has budgets of its own
                stack.append(("children", call.id))
                continue
            boxes[call.function] = boxes.get(call.function, 0) + 1
            plan.shown.add(call.id)
            if hot is not None and call.id not in hot:
                plan.entries.append(("fold", call))
                for child in children.get(call.id, ()):
                    hide(child)  # what a folded call made is folded with it
                continue
            plan.entries.append(call)
            stack.append(("children", call.id))
        else:
            run = item
            first, last, middle = run.calls[0], run.calls[-1], run.calls[1:-1]
            plan.entries.append(run)
            boxes[first.function] = boxes.get(first.function, 0) + 2
            listed = set() if run.folded else {c.id for c in _listed(middle)}  # a folded run is one line
            plan.shown.update(listed | {first.id, last.id})
            for c in middle:
                if c.id not in listed:
                    plan.hidden[c.function] = plan.hidden.get(c.function, 0) + 1
                for child in children.get(c.id, ()):
                    hide(child)
            if run.folded:
                for child in children.get(first.id, []) + children.get(last.id, []):
                    hide(child)
                continue
            stack.append(("children", last.id))
            stack.append(("children", first.id))
    return plan


def _runs(calls: list[CallRecord]) -> list[list[CallRecord]]:
    runs: list[list[CallRecord]] = []
    for call in calls:
        if runs and runs[-1][-1].function == call.function:
            runs[-1].append(call)
        else:
            runs.append([call])
    return runs


def _listed(middle: list[CallRecord]) -> list[CallRecord]:
    """The middle calls of a run listed one line each: the first and the last few, and the
    first that failed when it is not among them."""
    if len(middle) <= RUN_LISTED:
        return middle
    half = RUN_LISTED // 2
    chosen = middle[:half] + middle[-half:]
    failed = next((c for c in middle[half:-half] if _failed(c)), None)
    if failed is not None:
        chosen.insert(half, failed)
    return chosen


def _failed_recursion_links(calls, by_id) -> set[int]:
    """The links of a recursion that failed as a whole: of those, only the deepest is news."""
    return {
        call.parent for call in calls
        if _failed(call) and call.parent in by_id
        and by_id[call.parent].function == call.function and _failed(by_id[call.parent])
    }


def _first_and_last_failures(calls, skip: set[int]) -> set[int]:
    """Each function's first and last failing call: shown even past its box budget."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for call in calls:
        if _failed(call) and call.id not in skip:
            first.setdefault(call.function, call.id)
            last[call.function] = call.id
    return set(first.values()) | set(last.values())


def _hot_calls(calls, by_id, marks: Marks, functions: dict) -> set[int]:
    """Calls not folded: those that failed or ran a function holding a marked line, and every
    caller of one."""
    ranked = set()
    for key, info in functions.items():
        if any(p == info.path and info.first_line <= line <= info.end_line for p, line in marks.lines):
            ranked.add(key)
    if not any(call.function in ranked for call in calls):
        return {call.id for call in calls}  # the marks are other tests' business: fold nothing here
    hot = set()
    for call in reversed(calls):  # callees have larger ids: they are seen first
        if call.id in hot or _failed(call) or call.function in ranked:
            hot.add(call.id)
            if call.parent in by_id:
                hot.add(call.parent)
    return hot


def _failed(call: CallRecord) -> bool:
    return bool(call.raised) or not call.finished


def _footer(trace: TestTrace, plan: _Plan) -> list[Text]:
    recorded = len(trace.calls)
    hidden = sum(plan.hidden.values())
    lines = []
    if hidden:
        names = {f.key: f.qualname for f in trace.functions}
        parts = [f"{names.get(k, k.split('::')[-1])} ×{n}" for k, n in
                 sorted(plan.hidden.items(), key=lambda kv: -kv[1])]
        lines.append(Text(f"  not shown: {', '.join(parts)}", "dim"))
    if hidden or trace.dropped_calls:
        words = [f"  {recorded - hidden} of the {recorded} recorded calls shown"]
        if hidden:
            words.append("--format json has all of them")
        if trace.dropped_calls:
            words.append(f"{trace.dropped_calls} more calls were never recorded (past the recorder's bounds: "
                         "--max-calls calls of each function in full, then the last ones and those that raised)")
        lines.append(Text("; ".join(words), "dim"))
    return lines


# --- painting --------------------------------------------------------------------------------

class _Painter:
    def __init__(self, console: Console, trace: TestTrace, functions: dict, sources, verdicts: dict,
                 marks: Marks) -> None:
        self.console = console
        self.trace = trace
        self.functions = functions
        self.sources = sources
        self.verdicts = verdicts
        self.marks = marks
        self.by_id = {c.id: c for c in trace.calls}

    def paint(self, entry) -> None:
        if isinstance(entry, _Run):
            self._run(entry)
        elif isinstance(entry, tuple):
            self._folded(entry[1])
        else:
            self._box(entry)

    def _indent(self, depth: int) -> int:
        # A deep recursion would push the boxes off the screen; past this the title says how deep.
        return min(2 * min(depth, MAX_INDENT), self.console.width // 4)

    def _inner_width(self, depth: int) -> int:
        return max(20, self.console.width - self._indent(depth) - 4)  # borders and padding

    def _folded(self, call: CallRecord) -> None:
        info = self.functions.get(call.function)
        name = info.qualname if info else call.function
        line = Text.assemble("· ", self._from(call), (f"{name}({_args(call)})", "dim bold"),
                             _result(call, self.trace.stopped_by, dim=True))
        self.console.print(Padding(line, (0, 0, 0, self._indent(call.depth)), expand=False))

    def _box(self, call: CallRecord) -> None:
        info = self.functions.get(call.function)
        if info is None:
            return
        width = self._inner_width(call.depth)
        title, rows = self._title(call, info, width)
        rows += self._rows(call, info)
        self._panel(call.depth, _failed(call), info, title, self._table(rows, width, info))

    def _run(self, run: _Run) -> None:
        first, last = run.calls[0], run.calls[-1]
        info = self.functions.get(first.function)
        if info is None:
            return
        recorded = len(run.calls)
        count = f" ×{run.total}"
        if run.total > recorded:
            count += f" ({recorded} recorded, {run.total - recorded} past the recorder's bounds)"
        if run.folded:
            line = Text.assemble("· ", self._from(first), (info.qualname, "dim bold"), (count, "magenta"),
                                 ("  first ", "dim"), (f"{info.qualname}({_args(first)})", "dim"),
                                 _result(first, self.trace.stopped_by, dim=True),
                                 ("  last ", "dim"), (f"{info.qualname}({_args(last)})", "dim"),
                                 _result(last, self.trace.stopped_by, dim=True))
            self.console.print(Padding(line, (0, 0, 0, self._indent(first.depth)), expand=False))
            return
        width = self._inner_width(first.depth)
        title = Text.assemble(self._from(first), self._depth_note(first.depth), (info.qualname, "bold"),
                              (count, "bold magenta"), ("  the first and the last call", "dim"))
        parts = []
        for call, which in ((first, "first"), (last, "last")):
            parts.append(Text.assemble((f"{which}: ", "dim"), (f"{info.qualname}({_args(call)})", "bold"),
                                       _result(call, self.trace.stopped_by)))
            rows = self._rows(call, info)
            if rows:
                parts.append(self._table(rows, width, info))
            if which == "first":
                parts.extend(self._middle(run, info))
        self._panel(first.depth, any(_failed(c) for c in run.calls), info, title, Group(*parts))

    def _middle(self, run: _Run, info: FunctionInfo) -> list[Text]:
        """The calls between the first and the last: a few one per line (alike neighbours as
        one line with a count), the rest counted."""
        middle = run.calls[1:-1]
        index = {c.id: i for i, c in enumerate(middle)}
        lines: list[list] = []  # [text, count]
        previous = 0
        for call in _listed(middle):
            gap = index[call.id] - previous
            if gap:
                lines.append([Text(f"  ⋮ {gap} more", "dim"), 0])
            text = Text.assemble("  ", f"{info.qualname}({_args(call)})", _result(call, self.trace.stopped_by))
            if lines and lines[-1][1] and lines[-1][0].plain == text.plain:
                lines[-1][1] += 1
            else:
                lines.append([text, 1])
            previous = index[call.id] + 1
        if len(middle) - previous:
            lines.append([Text(f"  ⋮ {len(middle) - previous} more", "dim"), 0])
        out = [text if count < 2 else Text.assemble(text, (f"  ×{count}", "magenta")) for text, count in lines]
        unrecorded = run.total - len(run.calls)
        if unrecorded:
            out.append(Text(f"  ⋮ {unrecorded} calls not recorded", "dim"))
        raised = [c for c in middle if c.raised]
        if raised:
            out.append(Text(f"  {len(raised)} of the {len(middle)} recorded calls between raised "
                            f"({raised[0].raised})", "red"))
        return out

    def _panel(self, depth: int, failed: bool, info: FunctionInfo, title: Text, body) -> None:
        panel = Panel(body, title=title, title_align="left", subtitle=f"{info.path}:{info.def_line}",
                      subtitle_align="right", border_style="red" if failed else "blue", expand=False)
        self.console.print(Padding(panel, (0, 0, 0, self._indent(depth)), expand=False))

    def _depth_note(self, depth: int) -> str:
        return f"[depth {depth}] " if depth > MAX_INDENT else ""

    def _from(self, call: CallRecord) -> Text:
        if call.call_line is None or call.parent not in self.by_id:
            return Text("")
        return Text(f"line {call.call_line} → ", "dim")

    def _title(self, call: CallRecord, info: FunctionInfo, width: int) -> tuple[Text, list[_Row]]:
        """The call's title, and the rows that say what did not fit in it: a long argument moves
        the arguments into the box, never the result out of the title."""
        verdict = _function_verdict(self.verdicts.get((info.key, None)))
        start = Text.assemble(self._from(call), self._depth_note(call.depth))
        result = _result(call, self.trace.stopped_by)
        whole = Text.assemble(start, (f"{info.qualname}({_args(call)})", "bold"), result, verdict)
        if whole.cell_len <= width - 2:
            return whole, []
        rows = [_Row("", "args", Text(_args(call)))]
        short = Text.assemble(start, (f"{info.qualname}(…)", "bold"), result, verdict)
        if short.cell_len <= width - 2:
            return short, rows
        rows.append(_Row("", "result", result))
        return Text.assemble(start, (f"{info.qualname}(…)", "bold"), (" (result below)", "dim"), verdict), rows

    def _rows(self, call: CallRecord, info: FunctionInfo) -> list[_Row]:
        rows = []
        blocks = {b.index: b for b in info.blocks}
        for visit in call.visits:
            block = blocks.get(visit.block)
            if block is None:
                continue
            state = Text()
            if visit.before:
                state.append(_fmt(visit.before), "dim")
            if visit.after:
                if state:
                    state.append("\n")
                state.append("→ " + _fmt(visit.after), "yellow")
            verdict = self.verdicts.get((info.key, visit.block))
            if verdict is not None:
                ok, why = verdict
                state.append(f"\n{'✓' if ok else '✗'} {why}", "green" if ok else "bold red")
            rows.append(_Row(f"[{visit.block}] #{visit.index}", self.sources.numbered(info, block), state))
        if call.yields:
            more = "" if len(call.yielded) >= call.yields else ", ..."
            rows.append(_Row("", f"yielded ×{call.yields}", Text(", ".join(call.yielded) + more, "cyan")))
        for e in call.elided:
            end = e.last if e.last is not None else "…"
            rows.append(_Row(f"[{e.block}]", f"visits {e.first}-{end} elided", Text("")))
        if call.exit_locals and (call.raised or not call.finished):
            rows.append(_Row("", "state at exit", Text(_fmt(call.exit_locals), "magenta")))
        return rows

    def _table(self, rows: list[_Row], width: int, info: FunctionInfo) -> Table:
        """Source beside state when both fit, else both wrap, else the state goes under its
        source; nothing is cut."""
        table = Table(show_header=False, box=None, pad_edge=False, expand=False, padding=(0, 2, 0, 0))
        digits = len(str(info.end_line))
        label_w = max((len(r.label) for r in rows), default=0)
        src_need = max((r.source_width(digits) for r in rows), default=0)
        val_need = max((_widest(r.state) for r in rows), default=0)
        room = width - label_w - 4  # two gaps of two columns
        src_w = val_w = 0  # 0: the state goes under its source
        if src_need + val_need <= room:
            src_w, val_w = src_need, max(val_need, 1)
        elif src_need <= room - MIN_STATE:  # values wrap better than code
            src_w, val_w = src_need, room - src_need
        elif src_need > width - label_w - 2 and room >= 2 * MIN_STATE:  # the code wraps either way
            src_w, val_w = room - MIN_STATE, MIN_STATE
        table.add_column("label", width=max(label_w, 1), no_wrap=True)
        if not src_w:
            table.add_column("row", width=max(width - label_w - 2, 10), overflow="fold")
            for row in rows:
                table.add_row(Text(row.label, "dim"), row.source_text(self, info, width - label_w - 2, digits))
                if row.state:  # under the code, past the line numbers
                    table.add_row("", Padding(row.state, (0, 0, 0, digits + 3)))
            return table
        table.add_column("source", width=src_w, no_wrap=True)
        table.add_column("state", width=val_w, overflow="fold")
        for row in rows:
            table.add_row(Text(row.label, "dim"), row.source_text(self, info, src_w, digits), row.state)
        return table

    def marked(self, info: FunctionInfo, number: int | None) -> bool:
        return number is not None and (info.path, number) in self.marks.lines


@dataclass
class _Row:
    """One row of a call's box: a block visit (label, numbered source, state) or a note."""

    label: str
    source: list[tuple[int, str]] | str
    state: Text

    def source_width(self, digits: int) -> int:
        if isinstance(self.source, str):
            return len(self.source)
        return max((digits + 3 + len(text) for _n, text in self.source), default=0)

    def source_text(self, painter: _Painter, info: FunctionInfo, width: int, digits: int) -> Text:
        if isinstance(self.source, str):
            return Text(self.source, "bold" if not self.label else "dim italic")
        out = Text()
        for number, text in self.source:
            marked = painter.marked(info, number)
            for i, piece in enumerate(_wrap(text, max(width - digits - 3, 8))):
                if out:
                    out.append("\n")
                gutter = f"{number:>{digits}}" if i == 0 else " " * digits
                out.append(gutter, "dim")
                out.append(f" {MARK} " if marked and i == 0 else "   ", "bold red")
                out.append(piece, "bold" if marked else "white")
        return out


def _wrap(text: str, width: int) -> list[str]:
    """A source line in pieces of at most `width` characters, broken after a space where one is
    near the end; continuation pieces keep the line's indentation plus four."""
    if len(text) <= width:
        return [text]
    indent = " " * (len(text) - len(text.lstrip()) + 4)
    pieces, rest, first = [], text, True
    while len(rest) > width:
        cut = rest.rfind(" ", width // 2, width)
        cut = cut + 1 if cut > 0 else width
        pieces.append(rest[:cut].rstrip())
        rest = indent + rest[cut:].lstrip()
        if first:
            first = False
            width = max(width, len(indent) + 8)
    pieces.append(rest)
    return pieces


def _widest(text: Text) -> int:
    return max((Text(line).cell_len for line in text.plain.split("\n")), default=0)


def _args(call: CallRecord) -> str:
    return ", ".join(f"{k}={v}" for k, v in call.args.items())


def _result(call: CallRecord, stopped_by: str, dim: bool = False) -> Text:
    kind, words = call_result(call.finished, call.raised, call.returned, stopped_by)
    yielded = f" after {call.yields} yields" if call.yields else ""
    if kind == "returned":  # the arrow reads faster than the word in a title
        return Text(f" -> {call.returned}{yielded}", "dim cyan" if dim else "cyan")
    if kind == "stopped":  # the view shows the very call the stop hit
        return Text(f" did not return: stopped here by {stopped_by}", "bold red")
    if kind == "suspended":
        return Text(f" stopped at a yield{yielded}", "dim cyan" if dim else "cyan")
    return Text(f" {words}", "red")


def render_call_tree(console: Console, trace: TestTrace, verdicts: dict | None = None,
                     only: set[int] | None = None) -> None:
    """The test's calls as an indented tree, one line each, with each function's verdict when known.
    `only` limits the tree to those call ids (e.g. the failing region)."""
    verdicts = verdicts or {}
    functions = {f.key: f for f in trace.functions}
    plan = _plan(trace, Marks())
    console.print(Text.assemble(("call tree of ", "dim"), (trace.nodeid, "bold")))
    for call in trace.calls:
        if call.id not in plan.shown or (only is not None and call.id not in only):
            continue
        info = functions.get(call.function)
        name = info.qualname if info else call.function
        console.print(Text.assemble("  " + _tree_indent(call.depth), (f"{name}({_args(call)})", "bold"),
                                    _result(call, trace.stopped_by),
                                    _function_verdict(verdicts.get((call.function, None)))))
    hidden = sum(plan.hidden.values())
    if hidden:
        console.print(Text(f"  ... {hidden} more recorded calls (--format json)", "dim"))


def _tree_indent(depth: int) -> str:
    return "  " * depth if depth <= MAX_INDENT else "  " * MAX_INDENT + f"[depth {depth}] "


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

    def numbered(self, info: FunctionInfo, block: Block) -> list[tuple[int, str]]:
        lines = self._lines.get(info.path)
        if lines is None:
            try:
                lines = (self.root / info.path).read_text(encoding="utf-8").splitlines()
            except OSError:
                lines = []
            self._lines[info.path] = lines
        if not lines:
            return [(block.start, f"{info.path}:{block.start}")]
        return numbered_block_text(lines, info, block)
