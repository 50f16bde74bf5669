"""Asking the model for code: one follow-up when the answer has none."""

from __future__ import annotations

from tracefix.debugger.answers import MalformedAnswer, extract_code
from tracefix.debugger.llm import LLMClient

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
