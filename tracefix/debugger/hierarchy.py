"""Hierarchical debugging: judge the functions on the failing path bottom-up, from their real calls.

After MGDebugger, but on real executions instead of model-simulated ones. For each function
on the failing path (leaves first, `callgraph.bottom_up`), the model sees its source and its
real input/output pairs, from the failing run and from passing tests that call it, and says
which pairs are right. The deepest function with a wrong pair is the prime suspect: it is
repaired first, then the rest of the path bottom-up.

Judging stops at the first function with a wrong pair: it is the deepest such function (every
callee was judged before it), and each judgment is a model call.

Passing tests are picked from the localization run's per-test coverage (the tests that run a
function's body, the smallest first: they are the most unit-like) and traced once, recording
only the functions on the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from tracefix.debugger.answers import CallVerdict, MalformedAnswer, parse_call_verdicts
from tracefix.debugger.callgraph import bottom_up, call_tree, failing_path
from tracefix.config import Config
from tracefix.debugger.llm import LLMClient, count_tokens
from tracefix.debugger.prompts import FailureContext, failure_context, function_source
from tracefix.errors import UserError
from tracefix.tracer.records import FunctionInfo, TestTrace, call_result
from tracefix.tracer.runner import RunResult
from tracefix.tracer.tracing import trace_tests

PASSING_TESTS = 3  # passing tests traced per function on the path
PAIRS = 5  # input/output pairs shown per function, from the failing run and again from passing tests

SYSTEM = (
    "You are a careful Python debugger. You are shown a function and real calls of it recorded while "
    "tests ran: the arguments it received and what it returned. Judge each call against what the "
    "function is meant to do, from its name, docstring and the tests, not against what its code does."
)


@dataclass(frozen=True)
class Pair:
    """One recorded call of a function: arguments in, result out (bounded summaries)."""

    id: int  # the number the prompt shows, from 1
    function: str  # FunctionInfo.key
    test: str  # the test that made the call
    failing: bool  # from a failing test
    args: dict[str, str]
    returned: str | None
    raised: str | None
    finished: bool = True
    stopped_by: str = "the per-test timeout"  # what ended a call that did not finish


@dataclass(frozen=True)
class FunctionJudgment:
    function: str
    qualname: str
    pairs: tuple[Pair, ...]
    verdicts: tuple[CallVerdict, ...]
    note: str = ""  # e.g. "malformed answer twice"

    @property
    def wrong(self) -> tuple[CallVerdict, ...]:
        return tuple(v for v in self.verdicts if not v.correct)

    def pair(self, call: int) -> Pair | None:
        return next((p for p in self.pairs if p.id == call), None)


@dataclass(frozen=True)
class Hierarchy:
    """What bottom-up judging found, for the repair loop and the report."""

    path: tuple[str, ...]  # functions on the failing paths, leaves first
    order: tuple[str, ...]  # the repair order: prime suspect, other wrong ones, then the rest bottom-up
    prime: str | None  # the deepest function with a wrong pair
    judgments: tuple[FunctionJudgment, ...]  # in judging order
    passing_tests: tuple[str, ...]  # traced for their pairs
    trace: TestTrace | None = None  # the first failing test's trace, for the call tree view
    warnings: tuple[str, ...] = ()

    def judgment(self, function: str) -> FunctionJudgment | None:
        return next((j for j in self.judgments if j.function == function), None)

    def notes_for(self, function: str) -> list[str]:
        """Lines for the fix prompt: the calls judged wrong, with the model's reasons."""
        judgment = self.judgment(function)
        if judgment is None:
            return []
        notes = []
        for verdict in judgment.wrong:
            pair = judgment.pair(verdict.call)
            if pair is not None:
                notes.append(f"call {call_text(judgment.qualname, pair)} is wrong: {verdict.explanation}")
        return notes

    def function_verdicts(self) -> dict[tuple[str, None], tuple[bool, str]]:
        """(function key, None) -> (correct, why): the shape `tracer.view.render_trace` reads."""
        out = {}
        for j in self.judgments:
            if j.wrong:
                out[(j.function, None)] = (False, j.wrong[0].explanation or "a call was judged wrong")
            elif j.verdicts:
                out[(j.function, None)] = (True, f"{len(j.verdicts)} calls judged right")
        return out

    def passing_pairs(self, function: str) -> list[Pair]:
        """Pairs of `function` from passing tests that the model did not call wrong: helper checks."""
        judgment = self.judgment(function)
        if judgment is None:
            return []
        wrong = {v.call for v in judgment.wrong}
        return [p for p in judgment.pairs if not p.failing and p.id not in wrong]


Progress = Callable[[str], None]


def wants_hierarchy(strategy: str, traces: Iterable[TestTrace]) -> bool:
    """"hierarchical" always; "auto" when the failing path runs more than one project function."""
    if strategy == "flat":
        return False
    if strategy == "hierarchical":
        return True
    return len(path_of(traces)) > 1


def path_of(traces: Iterable[TestTrace]) -> list[str]:
    """Functions on the failing paths of the failing traces, leaves first."""
    return bottom_up(failing_path(call_tree(t)) for t in traces if t.outcome != "passed")


def judge_bottom_up(root: Path, client: LLMClient, config: Config, traces: tuple[TestTrace, ...],
                    coverage: RunResult | None, sources: list[str], *,
                    progress: Progress = lambda _msg: None) -> Hierarchy:
    root = Path(root)
    failing = [t for t in traces if t.outcome != "passed"]
    path = path_of(failing)
    infos = {f.key: f for t in traces for f in t.functions}
    path = [k for k in path if k in infos]
    warnings: list[str] = []
    passing_ids = covering_passing_tests(coverage, [infos[k] for k in path]) if coverage else []
    passing: list[TestTrace] = []
    if passing_ids:
        progress(f"tracing {len(passing_ids)} passing tests that call the failing path")
        try:
            run = trace_tests(root, passing_ids, functions=path, files=sources, test_timeout=config.test_timeout,
                              run_timeout=config.run_timeout, pytest_args=config.pytest_args,
                              python=config.python)
            passing = [t for t in run.traces if t.outcome == "passed"]
        except UserError as exc:
            warnings.append(f"passing tests not traced: {exc}")
    first = failing[0] if failing else None
    failure = failure_context(root, first.nodeid, first.message, first.longrepr) if first else None
    judgments: list[FunctionJudgment] = []
    for key in path:
        info = infos[key]
        pairs = pairs_of(key, failing, passing)
        if not pairs:
            continue
        progress(f"judging the calls of {info.qualname}")
        judgment = judge_function(client, config, root, info, pairs, failure,
                                  [j.qualname for j in judgments if j.function in _callees(key, failing)])
        judgments.append(judgment)
        if judgment.wrong:
            break
    prime = next((j.function for j in judgments if j.wrong), None)
    wrong = [j.function for j in judgments if j.wrong]
    order = ([prime] if prime else []) + [k for k in wrong if k != prime] + [k for k in path if k not in wrong]
    return Hierarchy(tuple(path), tuple(order), prime, tuple(judgments), tuple(t.nodeid for t in passing),
                     first, tuple(warnings))


def in_order(targets: list, order: Iterable[str]) -> list:
    """`targets` ((FunctionInfo, nodeid) pairs) with the functions of `order` first, in that order;
    the others keep their ranking order after them."""
    order = list(order)
    placed = sorted((t for t in targets if t[0].key in order), key=lambda t: order.index(t[0].key))
    return placed + [t for t in targets if t[0].key not in order]


# --- choosing and recording calls ----------------------------------------------------------------

def covering_passing_tests(coverage: RunResult, infos: list[FunctionInfo], per_function: int = PASSING_TESTS) -> list[str]:
    """Passing tests that run each function's body, up to `per_function` each, the smallest first."""
    passing = [o.nodeid for o in coverage.outcomes if o.outcome == "passed" and o.nodeid in coverage.per_test]
    size = {n: sum(len(v) for v in (coverage.per_test[n] or {}).get("lines", {}).values()) for n in passing}
    chosen: list[str] = []
    for info in infos:
        body = {line for b in info.blocks for line in b.lines if line > info.def_line}
        covering = [n for n in passing
                    if body & set(((coverage.per_test[n] or {}).get("lines") or {}).get(info.path, ()))]
        for nodeid in sorted(covering, key=lambda n: size[n])[:per_function]:
            if nodeid not in chosen:
                chosen.append(nodeid)
    return chosen


def pairs_of(key: str, failing: list[TestTrace], passing: list[TestTrace], limit: int = PAIRS) -> list[Pair]:
    """Distinct calls of `key`: up to `limit` from the failing regions, then up to `limit` from passing
    tests (a call seen in the failing run is not repeated)."""
    pairs: list[Pair] = []
    seen: set[tuple] = set()
    for traces, is_failing in ((failing, True), (passing, False)):
        taken = 0
        for trace in traces:
            region = failing_path(call_tree(trace)) if is_failing else call_tree(trace).nodes
            for node in region:
                shape = (tuple(sorted(node.args.items())), node.returned, node.raised, node.finished)
                if node.function != key or shape in seen or taken >= limit:
                    continue
                seen.add(shape)
                taken += 1
                pairs.append(Pair(len(pairs) + 1, key, trace.nodeid, is_failing, dict(node.args), node.returned,
                                  node.raised, node.finished, trace.stopped_by))
    return pairs


def _callees(key: str, failing: list[TestTrace]) -> set[str]:
    out = set()
    for trace in failing:
        region = failing_path(call_tree(trace))
        by_id = {n.id: n for n in region}
        for node in region:
            if node.function == key:
                out.update(by_id[c].function for c in node.children if c in by_id)
    out.discard(key)
    return out


# --- the prompt and the answer -------------------------------------------------------------------

def call_text(qualname: str, pair: Pair) -> str:
    args = ", ".join(f"{k}={v}" for k, v in pair.args.items())
    _kind, result = call_result(pair.finished, pair.raised, pair.returned, pair.stopped_by)
    return f"{qualname.rsplit('.', 1)[-1]}({args}) {result}"


def judge_messages(root: Path, info: FunctionInfo, pairs: list[Pair], failure: FailureContext | None,
                   judged_callees: list[str]) -> list[dict]:
    parts = [f"## Function `{info.qualname}` in {info.path}", "```python", function_source(root, info), "```"]
    if failure is not None:
        parts.append(f"## Failing test {failure.nodeid}")
        if failure.test_source:
            parts += ["```python", failure.test_source, "```"]
        parts += ["Error:", "```", failure.message or failure.error_tail, "```"]
    if judged_callees:
        parts.append("The functions it calls (" + ", ".join(f"`{q}`" for q in judged_callees)
                     + ") were checked already: take their results as right.")
    for is_failing, title in ((True, "## Calls recorded in the failing test"),
                              (False, "## Calls recorded in passing tests")):
        chosen = [p for p in pairs if p.failing == is_failing]
        if chosen:
            parts.append(title)
            parts += [f"call {p.id}: {call_text(info.qualname, p)}" for p in chosen]
    parts += ["## Task",
              f"For each call above, say whether its result is right for its arguments, given what "
              f"`{info.name}` is meant to do. Answer only with a JSON list, one object per call:",
              '[{"call": 1, "correct": false, "explanation": "..."}]',
              f"Calls to judge: {', '.join(str(p.id) for p in pairs)}."]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


def judge_function(client: LLMClient, config: Config, root: Path, info: FunctionInfo, pairs: list[Pair],
                   failure: FailureContext | None, judged_callees: list[str]) -> FunctionJudgment:
    pairs = _fitted(root, info, pairs, failure, judged_callees, config)
    messages = judge_messages(root, info, pairs, failure, judged_callees)
    ids = [p.id for p in pairs]
    note = ""
    for attempt in range(2):  # one re-ask on a malformed answer, then go on without verdicts
        reply = client.complete(messages, purpose="call-verdicts", variant=attempt)
        try:
            return FunctionJudgment(info.key, info.qualname, tuple(pairs), tuple(parse_call_verdicts(reply.text, ids)))
        except MalformedAnswer as exc:
            note = str(exc)
            messages = messages + [{"role": "assistant", "content": reply.text},
                                   {"role": "user", "content": "That was not the JSON list asked for. Answer "
                                    "only with the JSON list of call verdicts."}]
    return FunctionJudgment(info.key, info.qualname, tuple(pairs), (),
                            f"malformed call verdicts twice ({note}); continuing without them")


def _fitted(root: Path, info: FunctionInfo, pairs: list[Pair], failure, callees, config: Config) -> list[Pair]:
    """Drop passing-test pairs, then failing ones, from the end until the prompt fits the token budget."""
    pairs = list(pairs)
    while len(pairs) > 1:
        text = judge_messages(root, info, pairs, failure, callees)[1]["content"]
        if count_tokens(config.model, text) <= config.token_budget:
            break
        passing = [p for p in pairs if not p.failing]
        pairs.remove(passing[-1] if passing else pairs[-1])
    return pairs
