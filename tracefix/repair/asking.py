"""Asking the model for code: one follow-up when the answer has none."""

from __future__ import annotations

import ast
from pathlib import Path

from tracefix.debugger.answers import MalformedAnswer, RejectedCandidate, check_rewrite, extract_code, function_from
from tracefix.debugger.llm import LLMClient
from tracefix.debugger.prompts import function_source
from tracefix.repair.patch import PatchError, apply_edits_in_memory
from tracefix.tracer.records import FunctionInfo

RETRY_TEMPERATURE = 0.8  # later attempts resample, or a deterministic model repeats its rejected answer


def complete_with_code(client: LLMClient, messages: list[dict], what: str, *, variant: int,
                       temperature: float) -> tuple[str, str | MalformedAnswer]:
    """The answer to a request for code, and the code in it (or why there is none).

    An answer without usable code (a small model often names the bug in one sentence and
    stops) is followed up once in the same conversation, asking for just the code: cheaper
    than spending an iteration on it.
    """
    reply = client.complete(messages, purpose="patch", variant=variant, temperature=temperature)
    try:
        return reply.text, extract_code(reply.text)
    except MalformedAnswer as exc:
        follow_up = messages + [{"role": "assistant", "content": reply.text},
                                {"role": "user", "content": f"That answer has no usable code ({exc}). Reply "
                                 f"with {what} in one ```python code block, nothing else."}]
    again = client.complete(follow_up, purpose="patch-code", variant=variant, temperature=temperature)
    try:
        return again.text, extract_code(again.text)
    except MalformedAnswer as exc:
        return again.text, exc


def usable_function(root: Path, info: FunctionInfo, text: str, code: str | MalformedAnswer) -> tuple[str, str]:
    """(the answer's code, "") when it can be tried as the new `info`, else (what to show of the
    answer, why it cannot be tried): no code, no such function, other parameters, the original
    unchanged, or an edit libcst cannot make. The next prompt shows the code inside a fence."""
    try:
        if isinstance(code, MalformedAnswer):
            raise code
        node = function_from(code, info.qualname)
        if node is None:
            raise RejectedCandidate(f"the answer has no function named {info.name}")
        original = function_source(root, info)
        check_rewrite(original, code, info.qualname)
        if _same_code(original, ast.unparse(node)):
            raise RejectedCandidate("the answer repeats the original code unchanged")
        apply_edits_in_memory(root, info, code)  # patchable at all?
    except (MalformedAnswer, RejectedCandidate, PatchError) as exc:
        return (code if isinstance(code, str) else text.strip()[:2000]), str(exc)
    return code, ""


def _same_code(original: str, candidate: str) -> bool:
    """Equal up to formatting and comments (both sides normalized through ast)."""
    try:
        return ast.dump(ast.parse(original)) == ast.dump(ast.parse(candidate))
    except SyntaxError:
        return False
