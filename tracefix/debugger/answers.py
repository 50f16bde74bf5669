"""Reading model answers: block verdicts out of JSON-ish text, code out of fences, and checks on rewrites.

Models wrap JSON in fences and prose, write Python literals (True, single quotes) and leave
trailing commas; the cheap cases are tolerated, anything else is a `MalformedAnswer`.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, Union

from tracefix.errors import InternalSignal

BlockId = Union[int, str]
FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef]


class MalformedAnswer(InternalSignal):
    """The model's answer holds nothing usable of the kind asked for."""


class RejectedCandidate(InternalSignal):
    """A rewrite that breaks the contract of the function it replaces."""


@dataclass(frozen=True)
class Verdict:
    """The model's judgment of one block: does its state transition match the function's intent?"""

    block: BlockId  # one of the block ids the prompt offered
    correct: bool
    explanation: str


# --- verdicts -------------------------------------------------------------------------------------

_BLOCK_KEYS = ("block", "block_id", "blockid", "id", "index", "block_index")
_CORRECT_KEYS = ("correct", "is_correct", "iscorrect", "ok", "verdict", "status")
_EXPLANATION_KEYS = ("explanation", "reason", "reasoning", "rationale", "why", "comment")
_TRUE_WORDS = frozenset({"true", "yes", "correct", "ok", "right", "1", "pass", "passed"})
_FALSE_WORDS = frozenset({"false", "no", "incorrect", "wrong", "buggy", "bug", "0", "fail", "failed", "error"})


def parse_verdicts(text: str, block_ids: Sequence[BlockId]) -> list[Verdict]:
    """The verdicts in `text`, one per block at most, in the answer's order.

    Accepts a JSON list of objects or {"verdicts": [...]}, fenced or inside prose. Items naming
    an unknown block or without a boolean-ish `correct` are dropped; when no item survives,
    raises MalformedAnswer saying why.
    """
    return _best_items(text, lambda data: _verdicts_from(data, block_ids), "verdict")


def _best_items(text: str, items_from, what: str) -> list:
    """The largest set of valid items any JSON piece of `text` gives (MalformedAnswer if none)."""
    if not text or not text.strip():
        raise MalformedAnswer(f"the model's {what} answer is empty")
    best: list = []
    problems: list[str] = []
    for data in _json_candidates(text):
        items, issues = items_from(data)
        problems.extend(issues)
        if len(items) > len(best):
            best = items
    if best:
        return best
    if problems:
        raise MalformedAnswer(f"no usable {what} in the model's answer: {problems[0]}")
    raise MalformedAnswer(f"no JSON {what}s in the model's answer: {_excerpt(text)}")


def _verdicts_from(data: Any, block_ids: Sequence[BlockId]) -> tuple[list[Verdict], list[str]]:
    items = _verdict_items(data)
    verdicts: list[Verdict] = []
    issues: list[str] = []
    seen: set[str] = set()
    for item in items:
        verdict, issue = _verdict_from(item, block_ids)
        if issue:
            issues.append(issue)
        elif verdict is not None and str(verdict.block) not in seen:
            seen.add(str(verdict.block))
            verdicts.append(verdict)
    return verdicts, issues


def _verdict_items(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lowered = {str(k).lower(): v for k, v in data.items()}
        for key in ("verdicts", "blocks", "results", "judgments", "judgements"):
            if isinstance(lowered.get(key), list):
                return lowered[key]
        if _field(lowered, _BLOCK_KEYS) is not None:
            return [data]
        # {"1": {"correct": ...}, "2": {...}}: verdicts keyed by block
        if data and all(isinstance(v, dict) for v in data.values()):
            return [{"block": k, **v} for k, v in data.items()]
    return []


def _verdict_from(item: Any, block_ids: Sequence[BlockId]) -> tuple[Verdict | None, str | None]:
    if not isinstance(item, dict):
        return None, None
    fields = {str(k).lower(): v for k, v in item.items()}
    raw_block = _field(fields, _BLOCK_KEYS)
    block = _known_block(raw_block, block_ids)
    if block is None:
        return None, f"block {raw_block!r} is not one of {list(block_ids)}"
    correct = _boolish(_field(fields, _CORRECT_KEYS))
    if correct is None:
        return None, f"block {raw_block!r} has no true/false 'correct' field"
    explanation = _field(fields, _EXPLANATION_KEYS)
    text = "" if explanation is None else str(explanation).strip()
    return Verdict(block=block, correct=correct, explanation=text), None


def _field(fields: dict[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        if name in fields and fields[name] is not None:
            return fields[name]
    return None


def _known_block(raw: Any, block_ids: Sequence[BlockId]) -> BlockId | None:
    """The id in `block_ids` that `raw` names: 3, "3", "block 3", "B3" all name block 3."""
    if raw is None or isinstance(raw, bool):
        return None
    by_text = {str(b).strip().lower(): b for b in block_ids}
    text = str(raw).strip().lower()
    if text in by_text:
        return by_text[text]
    stripped = re.sub(r"^(block|b)[\s#_-]*", "", text)
    return by_text.get(stripped)


def _boolish(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower().rstrip(".!")
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


_OPENING = re.compile(r"[\[{]")


def _json_candidates(text: str) -> Iterator[Any]:
    """Parsed values found in `text`: fenced blocks first, then the whole text, then each bracketed span."""
    for _, body in _fences(text):
        value = _loads_lenient(body)
        if value is not None:
            yield value
    value = _loads_lenient(text)
    if value is not None:
        yield value
        return
    cut = _cut_list(text)
    if cut is not None:
        yield cut
    position = 0
    while True:
        match = _OPENING.search(text, position)
        if match is None:
            return
        end = _balanced_end(text, match.start())
        if end is None:
            position = match.start() + 1
            continue
        value = _loads_lenient(text[match.start() : end])
        if value is not None and isinstance(value, (list, dict)):
            yield value
            position = end
        else:
            position = match.start() + 1


def _cut_list(text: str) -> Any:
    """A JSON list that the answer's token limit cut off: its complete items, closed, and
    the item it was cut in when that one is cut inside its last string (a small model's
    first explanation often runs past the limit: without it the answer holds nothing)."""
    start, end = text.find("["), text.rfind("}")
    if start < 0 or _balanced_end(text, start) is not None:
        return None
    cut = text[start:].rstrip()
    if re.search(r'"\s*:\s*"(?:[^"\\]|\\.)*$', cut):  # inside a string value
        value = _loads_lenient(cut.rstrip("\\") + '..."}]')
        if value is not None:
            return value
    return _loads_lenient(text[start : end + 1] + "]") if end > start else None


def _loads_lenient(text: str) -> Any:
    """JSON, else JSON without trailing commas, else a Python literal (True, None, single quotes)."""
    text = text.strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    without_commas = re.sub(r",\s*([\]}])", r"\1", text)
    try:
        return json.loads(without_commas)
    except ValueError:
        pass
    pythonic = re.sub(r"\b(true|false|null)\b", lambda m: _PY_LITERALS[m[1]], text)
    try:
        return ast.literal_eval(pythonic)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


_PY_LITERALS = {"true": "True", "false": "False", "null": "None"}


def _balanced_end(text: str, start: int) -> int | None:
    """The index just past the bracket closing the one at `start`, skipping quoted strings."""
    closing = {"[": "]", "{": "}"}
    stack: list[str] = []
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in closing:
            stack.append(closing[ch])
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
        i += 1
    return None


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


# --- call verdicts (hierarchical debugging: is this input/output pair right?) ---------------------

_CALL_KEYS = ("call", "call_id", "callid", "pair", "pair_id", "id", "index", "number")


@dataclass(frozen=True)
class CallVerdict:
    """The model's judgment of one recorded call: is its result right for its arguments?"""

    call: int  # one of the call ids the prompt offered
    correct: bool
    explanation: str


def parse_call_verdicts(text: str, call_ids: Sequence[int]) -> list[CallVerdict]:
    """The call verdicts in `text`, one per call at most, in the answer's order.

    The same tolerance as `parse_verdicts`: a JSON list or {"calls"/"verdicts": [...]}, fenced
    or in prose, Python literals; ids may be written 3, "3", "call 3", "#3". Raises
    MalformedAnswer when no item is usable.
    """
    return _best_items(text, lambda data: _call_verdicts_from(data, call_ids), "call verdict")


def _call_verdicts_from(data: Any, call_ids: Sequence[int]) -> tuple[list[CallVerdict], list[str]]:
    items: list[Any] = []
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict):
        lowered = {str(k).lower(): v for k, v in data.items()}
        for key in ("calls", "verdicts", "pairs", "results", "judgments", "judgements"):
            if isinstance(lowered.get(key), list):
                items = lowered[key]
                break
        else:
            if _field(lowered, _CALL_KEYS) is not None:
                items = [data]
            elif data and all(isinstance(v, dict) for v in data.values()):
                items = [{"call": k, **v} for k, v in data.items()]
    verdicts: list[CallVerdict] = []
    issues: list[str] = []
    seen: set[int] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        fields = {str(k).lower(): v for k, v in item.items()}
        raw = _field(fields, _CALL_KEYS)
        call = _known_call(raw, call_ids)
        if call is None:
            issues.append(f"call {raw!r} is not one of {list(call_ids)}")
            continue
        correct = _boolish(_field(fields, _CORRECT_KEYS))
        if correct is None:
            issues.append(f"call {raw!r} has no true/false 'correct' field")
            continue
        if call in seen:
            continue
        seen.add(call)
        explanation = _field(fields, _EXPLANATION_KEYS)
        verdicts.append(CallVerdict(call, correct, "" if explanation is None else str(explanation).strip()))
    return verdicts, issues


def _known_call(raw: Any, call_ids: Sequence[int]) -> int | None:
    if raw is None or isinstance(raw, bool):
        return None
    text = re.sub(r"^(call|pair|c|p)?[\s#_-]*", "", str(raw).strip().lower())
    return next((c for c in call_ids if str(c) == text), None)


# --- code -----------------------------------------------------------------------------------------

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3"})


def _fences(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of each fenced block; an unterminated last fence runs to the end."""
    return [(m[1].lower(), m[2]) for m in _FENCE.finditer(text)]


def extract_code(text: str) -> str:
    """The Python code in a model answer.

    Prefers the last ```python fence that parses and defines a function, then such an untagged
    fence, then the last ```python fence that parses; without fences, the whole answer (or its
    tail from the first def/class/import line) when it parses and defines a function. Raises
    MalformedAnswer for empty and prose-only answers and for code that does not parse.
    """
    if not text or not text.strip():
        raise MalformedAnswer("the model's answer is empty")
    fences = _fences(text)
    python = [textwrap.dedent(body) for tag, body in fences if tag in _PYTHON_TAGS and body.strip()]
    untagged = [textwrap.dedent(body) for tag, body in fences if tag == "" and body.strip()]
    # A fence defining a function beats a later usage example; an untagged fence must define one
    # (a bare `pytest -q` parses as Python too).
    for bodies, need_def in ((python, True), (untagged, True), (python, False)):
        for body in reversed(bodies):
            if _syntax_error(body) is None and (not need_def or _defines_function(body)):
                return body.strip("\n") + "\n"
    broken = python or [b for b in untagged if _looks_like_code(b)]
    if broken:
        raise MalformedAnswer(f"the code in the model's answer does not parse: {_syntax_error(broken[-1])}")
    # No fences: the whole answer, or the answer from its first def/class/import line on
    # ("Here is the fix:\n\ndef f(): ...").
    bare = textwrap.dedent(text).strip("\n") + "\n"
    start = re.search(r"^(async\s+def|def|class|import|from|@)\b", bare, re.MULTILINE)
    tail = bare[start.start() :] if start else bare
    for code in (bare, tail):
        if _syntax_error(code) is None and _defines_function(code):
            return code
    if _looks_like_code(tail):
        raise MalformedAnswer(f"the code in the model's answer does not parse: {_syntax_error(tail)}")
    raise MalformedAnswer(f"the model's answer contains no Python code block: {_excerpt(text)}")


def _looks_like_code(text: str) -> bool:
    return re.search(r"^\s*(async\s+def|def|class)\s+\w+", text, re.MULTILINE) is not None


def _syntax_error(code: str) -> str | None:
    """None when `code` parses, else "line N: message (`the line`)"."""
    try:
        ast.parse(code)
    except SyntaxError as exc:
        lines = code.splitlines()
        line = lines[exc.lineno - 1].strip() if exc.lineno and 0 < exc.lineno <= len(lines) else ""
        shown = f" (`{line[:80]}`)" if line else ""
        return f"line {exc.lineno}: {exc.msg}{shown}"
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return str(exc)
    return None


def _defines_function(code: str) -> bool:
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) for node in ast.walk(ast.parse(code)))


def function_from(code: str | ast.Module, name: str) -> FunctionNode | None:
    """The definition of `name` in `code`: "f" at top level, "Cls.meth" inside class Cls.

    Qualnames may carry "<locals>" ("outer.<locals>.inner"). When the path is not found, a
    top-level def of the last name counts too: models often answer a method without its class.
    Of several definitions the last wins, as at runtime.
    """
    tree = ast.parse(textwrap.dedent(code)) if isinstance(code, str) else code
    parts = [p for p in name.split(".") if p != "<locals>"]
    found = _walk_path(tree.body, parts)
    if found is None and len(parts) > 1:
        found = _walk_path(tree.body, parts[-1:])
    return found


def _walk_path(body: list[ast.stmt], parts: list[str]) -> FunctionNode | None:
    head, rest = parts[0], parts[1:]
    match: ast.stmt | None = None
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == head:
            if rest or not isinstance(node, ast.ClassDef):
                match = node
    if match is None:
        return None
    if not rest:
        return match if isinstance(match, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
    return _walk_path(match.body, rest)


def check_rewrite(original_src: str, new_src: str, name: str, allow_signature_change: bool = False) -> None:
    """Raise RejectedCandidate when `new_src` does not define `name` or changes its parameters.

    Parameter names, kinds (positional-only, *args, keyword-only, **kwargs), the number of
    defaults and async-ness must stay; defaults' values and annotations may change.
    """
    original = function_from(original_src, name)
    if original is None:
        raise ValueError(f"the original source does not define {name}")
    try:
        rewritten = function_from(new_src, name)
    except SyntaxError as exc:
        raise RejectedCandidate(f"the rewrite of {name} does not parse: line {exc.lineno}: {exc.msg}") from None
    if rewritten is None:
        tree = ast.parse(textwrap.dedent(new_src))
        defined = sorted({n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})
        instead = f" (it defines {', '.join(defined)})" if defined else ""
        raise RejectedCandidate(
            f"the rewrite does not define {name}{instead}: renaming the function is not allowed"
        )
    if allow_signature_change:
        return
    if _signature(original) != _signature(rewritten):
        raise RejectedCandidate(
            f"the rewrite changes the signature of {name}: "
            f"{_shown(original)} became {_shown(rewritten)}; keep the parameters as they are"
        )


def _signature(func: FunctionNode) -> tuple[Any, ...]:
    a = func.args
    return (
        isinstance(func, ast.AsyncFunctionDef),
        tuple(p.arg for p in a.posonlyargs),
        tuple(p.arg for p in a.args),
        a.vararg.arg if a.vararg else None,
        tuple(p.arg for p in a.kwonlyargs),
        tuple(d is not None for d in a.kw_defaults),
        a.kwarg.arg if a.kwarg else None,
        len(a.defaults),
    )


def _shown(func: FunctionNode) -> str:
    prefix = "async def" if isinstance(func, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {func.name}({ast.unparse(func.args)})"
