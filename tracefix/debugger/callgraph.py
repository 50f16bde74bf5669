"""The dynamic call tree of a test: which project function called which, with what, and what came back.

Built from a recorded `TestTrace` (only project functions are recorded, each call knows its
nearest recorded caller). The *failing region* of a failing test is the subtree the failure
came out of:

- a call raised (or was stopped by the timeout): the subtree of the top-level call the
  exception came out of, so siblings that returned a wrong value before the crash are in;
- nothing raised (an assertion in the test itself failed): the subtree of the last
  top-level call, the one whose result the assertion most likely checks.

`bottom_up` lists the distinct functions of a region leaves first (post-order over the
caller -> callee graph), the order in which hierarchical debugging judges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from tracefix.tracer.records import TestTrace


@dataclass(frozen=True)
class CallNode:
    """One recorded call; `args`, `returned` and `raised` are the recorder's bounded summaries."""

    id: int
    function: str  # FunctionInfo.key
    depth: int  # 0 for calls made by the test itself (or by unrecorded code)
    args: dict[str, str]
    returned: str | None
    raised: str | None
    finished: bool
    children: tuple[int, ...]  # ids, in call order


@dataclass(frozen=True)
class CallTree:
    nodeid: str
    outcome: str
    nodes: tuple[CallNode, ...]  # in call order
    roots: tuple[int, ...]  # ids of the top-level calls, in call order

    def node(self, call_id: int) -> CallNode:
        return self._index()[call_id]

    def _index(self) -> dict[int, CallNode]:
        return {n.id: n for n in self.nodes}


def call_tree(trace: TestTrace) -> CallTree:
    """The tree of `trace`'s recorded calls. A call whose parent was not kept (dropped by the
    recorder's bounds) becomes a top-level call."""
    ids = {c.id for c in trace.calls}
    children: dict[int, list[int]] = {c.id: [] for c in trace.calls}
    roots = []
    for call in sorted(trace.calls, key=lambda c: c.id):
        if call.parent in ids:
            children[call.parent].append(call.id)
        else:
            roots.append(call.id)
    nodes = tuple(CallNode(c.id, c.function, c.depth, dict(c.args), c.returned, c.raised, c.finished,
                           tuple(children[c.id])) for c in sorted(trace.calls, key=lambda c: c.id))
    return CallTree(trace.nodeid, trace.outcome, nodes, tuple(roots))


def subtree(tree: CallTree, call_id: int) -> list[CallNode]:
    """The call and every call beneath it, in call order."""
    index = tree._index()
    out, stack = [], [call_id]
    while stack:
        node = index[stack.pop()]
        out.append(node)
        stack.extend(reversed(node.children))
    return sorted(out, key=lambda n: n.id)


def failing_root(tree: CallTree) -> CallNode | None:
    """The top-level call the failure came out of (see the module docstring); None without calls."""
    if not tree.roots:
        return None
    index = tree._index()
    for root_id in tree.roots:
        if any(n.raised is not None or not n.finished for n in subtree(tree, root_id)):
            return index[root_id]
    return index[tree.roots[-1]]


def failing_path(tree: CallTree) -> list[CallNode]:
    """The calls of the failing region, in call order; [] for a tree without calls."""
    root = failing_root(tree)
    return subtree(tree, root.id) if root is not None else []


def raising_chain(tree: CallTree) -> list[CallNode]:
    """From the failing root down to the innermost call that raised (or was stopped), outermost first;
    [] when nothing raised."""
    root = failing_root(tree)
    if root is None or (root.raised is None and root.finished):
        return []
    index = tree._index()
    chain = [root]
    while True:
        bad = [index[c] for c in chain[-1].children if index[c].raised is not None or not index[c].finished]
        if not bad:
            return chain
        chain.append(bad[-1])  # the last one raised into the caller (earlier ones were caught)


def bottom_up(regions: Iterable[list[CallNode]]) -> list[str]:
    """Distinct functions of the regions, every callee before its callers: post-order over the
    function-level call graph (roots and callees in call order), mutual recursion kept together."""
    callees: dict[str, list[str]] = {}
    roots: list[str] = []
    for nodes in regions:
        if not nodes:
            continue
        by_id = {n.id: n for n in nodes}
        top = min(nodes, key=lambda n: n.id)
        if top.function not in roots:
            roots.append(top.function)
        for node in nodes:
            edges = callees.setdefault(node.function, [])
            for child in node.children:
                callee = by_id[child].function if child in by_id else None
                if callee and callee != node.function and callee not in edges:
                    edges.append(callee)
    return _callees_first(roots + [f for f in callees if f not in roots], callees)


def _callees_first(functions: list[str], callees: dict[str, list[str]]) -> list[str]:
    """Tarjan's strongly connected components, which come out callees first; the functions of
    one component (mutual recursion) in reverse discovery order, the deepest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    order: list[str] = []

    def connect(function: str) -> None:
        index[function] = low[function] = len(index)
        stack.append(function)
        on_stack.add(function)
        for callee in callees.get(function, []):
            if callee not in index:
                connect(callee)
                low[function] = min(low[function], low[callee])
            elif callee in on_stack:
                low[function] = min(low[function], index[callee])
        if low[function] == index[function]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == function:
                    break
            order.extend(component)  # popped deepest first

    for function in functions:
        if function not in index:
            connect(function)
    return order

