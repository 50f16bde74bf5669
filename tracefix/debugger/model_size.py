"""How big a model is, as far as its name says: it decides whether per-block verdicts are asked.

Verdicts cost a second request per attempt. With Qwen2.5-Coder-1.5B they fixed no more than the
fix prompt alone, beyond noise (4 against 3 of 24 records), at about twice the tokens (README,
"Verdicts on or off"), and LDB's own
table has StarCoder-15B gain 0.6 points from them; the large hosted models its paper measured
gained more. So `verdicts = "auto"` leaves them out for a model whose name states at most
SMALL_MODEL_B billion parameters ("qwen2.5-coder-1.5b", "llama3:8b", "mixtral-8x7b" is 56),
and asks for them otherwise, a name without a size (gpt-4o, claude-...) included.
"""

from __future__ import annotations

import re

SMALL_MODEL_B = 15.0

# "1.5b", "7B", "8x7b" after a separator, at the end of the name or before a separator: not
# the "2.5" of "qwen2.5" (no b), nor "gpt-4o".
_SIZE = re.compile(r"(?:^|[-_:/.])(?:(\d+)x)?(\d+(?:\.\d+)?)b(?=$|[-_:/.])", re.IGNORECASE)


def parameters_b(model: str | None) -> float | None:
    """Billions of parameters that the model's name states (the largest figure), else None."""
    sizes = [float(size) * (int(experts) if experts else 1)
             for experts, size in _SIZE.findall((model or "").rsplit("/", 1)[-1])]
    return max(sizes) if sizes else None


def small_model(model: str | None) -> bool:
    size = parameters_b(model)
    return size is not None and size <= SMALL_MODEL_B
