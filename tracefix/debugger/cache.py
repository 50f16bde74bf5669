"""A disk cache of model answers: one JSON file per request, named by the request's sha256.

The key covers what decides the answer (model, messages, temperature, max_tokens, variant)
and nothing else: not the purpose label, not api_base, so a directory of recorded answers
replays offline against any server that serves the same model name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

CACHE_FORMAT = "tracefix.cache/1"


def request_key(
    model: str, messages: Sequence[dict[str, Any]], temperature: float, max_tokens: int, variant: int = 0,
    seed: int | None = None,
) -> str:
    """The sha256 hex digest naming one request's cache entry."""
    request: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "temperature": float(temperature),
        "max_tokens": int(max_tokens),
    }
    if variant:  # absent for variant 0, so entries recorded before variants existed stay valid
        request["variant"] = variant
    if seed is not None:  # absent when unset, for the same reason
        request["seed"] = seed
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Answers stored under `directory` as `<key>.json`."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry, or None when absent or unreadable (a torn or hand-edited file is a miss)."""
        try:
            entry = json.loads(self.path_for(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Store `entry` atomically: readers see the old file or the new one, never half of one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"format": CACHE_FORMAT, **entry}, indent=1, ensure_ascii=False)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key[:12]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
            os.replace(tmp, self.path_for(key))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
