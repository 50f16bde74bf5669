"""Where tracefix meets other tools: VS Code tasks, and the effective configuration shown.

- `tasks_json(existing)`: `.vscode/tasks.json` text with tracefix's tasks merged in (the
  user's tasks and settings kept; only tasks with tracefix's labels replaced). The file is
  JSON with comments (JSONC) to VS Code: comments and trailing commas are read, but the
  merged file is plain JSON, so the caller keeps a copy of a file whose comments are dropped.
- `PROBLEM_MATCHER`: reads `tracefix ... --format diagnostics` output (see
  `debugger/diagnostics.py`) into VS Code's Problems panel.
- `config_rows` / `config_json`: every setting, its value and where the value came from.

The pre-commit hook is declared in `.pre-commit-hooks.yaml` and runs `tracefix hook`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tracefix.config import Config, Loaded
from tracefix.cli.diagnostics import LINE_PATTERN
from tracefix.errors import UserError

TASKS_VERSION = "2.0.0"
TASK_COMMANDS = ("locate", "fix", "trace")
TASK_LABEL = "tracefix: {}"

PROBLEM_MATCHER = {
    "owner": "tracefix",
    "source": "tracefix",
    "fileLocation": ["relative", "${workspaceFolder}"],
    "pattern": {"regexp": LINE_PATTERN, "file": 1, "line": 2, "column": 3, "severity": 4, "message": 5},
}

_DETAILS = {
    "locate": "Run the tests and mark the most suspicious lines (fault localization).",
    "fix": "Propose a fix validated by the tests (needs a model in [tool.tracefix]); nothing is written.",
    "trace": "Trace the failing tests and mark their failing lines and where exceptions were raised.",
}


def tracefix_tasks(command: str = "tracefix") -> list[dict]:
    """The tasks tracefix owns, each writing diagnostics for the problem matcher."""
    return [
        {
            "label": TASK_LABEL.format(name),
            "detail": _DETAILS[name],
            "type": "shell",
            "command": command,
            "args": [name, "${workspaceFolder}", "--format", "diagnostics"],
            "options": {"cwd": "${workspaceFolder}"},
            "group": "test",
            "presentation": {"reveal": "always", "panel": "dedicated", "clear": True},
            "problemMatcher": PROBLEM_MATCHER,
        }
        for name in TASK_COMMANDS
    ]


@dataclass(frozen=True)
class TasksMerge:
    text: str  # the new tasks.json
    kept: int  # the user's tasks left as they were
    replaced: int  # tracefix tasks that were there before
    dropped_comments: bool  # the old file had comments (or trailing commas) the new one lacks


def tasks_json(existing: str | None, command: str = "tracefix", where: str = ".vscode/tasks.json") -> TasksMerge:
    """tasks.json text with tracefix's tasks; `existing` (None: no file) is merged, not lost.

    Raises UserError when `existing` is not JSON (with comments) or not shaped like a
    tasks file, saying how to go on.
    """
    ours = tracefix_tasks(command)
    labels = {t["label"] for t in ours}
    data: dict[str, Any] = {"version": TASKS_VERSION, "tasks": []}
    dropped = False
    if existing is not None and existing.strip():
        plain = strip_jsonc(existing)
        dropped = plain != existing
        try:
            data = json.loads(plain)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                                "fix it, or run again with --force to replace it") from None
        if not isinstance(data, dict) or not isinstance(data.get("tasks", []), list):
            raise UserError(f"{where} is not a tasks file (expected an object with a \"tasks\" list); "
                                "run again with --force to replace it")
    tasks = list(data.get("tasks", []))
    kept = [t for t in tasks if not (isinstance(t, dict) and t.get("label") in labels)]
    data.setdefault("version", TASKS_VERSION)
    data["tasks"] = kept + ours
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return TasksMerge(text, len(kept), len(tasks) - len(kept), dropped)


def strip_jsonc(text: str) -> str:
    """`text` without // and /* */ comments and trailing commas, strings left untouched.

    Comments become whitespace (newlines kept), so JSON error positions still point into
    the user's file.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(c if c == "\n" else " " for c in text[i:end]))
            i = end
        elif ch == ",":
            rest = _skip_space_and_comments(text, i + 1)
            out.append(" " if rest < n and text[rest] in "]}" else ",")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the JSON string opening at `start` (or the end of an unclosed one)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        if text[i] == "\n":
            return i  # unterminated: let json.loads report it
        i += 1
    return len(text)


def _skip_space_and_comments(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            break
    return i


# --- effective configuration ------------------------------------------------------------------

CONFIG_SCHEMA = "tracefix.config/1"


@dataclass(frozen=True)
class ConfigRow:
    name: str
    value: Any  # JSON-ready: paths as strings, tuples as lists
    source: str  # "default" | "pyproject.toml" | "env TRACEFIX_X" | "flag"


def config_rows(loaded: Loaded) -> list[ConfigRow]:
    """Every setting in declaration order."""
    return [ConfigRow(f.name, _plain(getattr(loaded.config, f.name)), loaded.sources[f.name])
            for f in fields(Config)]


def config_json(loaded: Loaded, root: Path) -> dict:
    pyproject = Path(root) / "pyproject.toml"
    return {
        "schema": CONFIG_SCHEMA,
        "root": str(root),
        "pyproject": str(pyproject) if pyproject.is_file() else None,
        "settings": {row.name: {"value": row.value, "source": row.source} for row in config_rows(loaded)},
        "warnings": list(loaded.warnings),
    }


def value_text(value: Any, limit: int = 60) -> str:
    """A setting's value as it would be written in [tool.tracefix] (none when unset)."""
    if value is None:
        return "none"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def parse_settings(pairs: list[str]) -> dict[str, str]:
    """`--set key=value` pairs as config flags (kebab-case keys accepted)."""
    from tracefix.config import FIELDS

    flags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name = key.strip().replace("-", "_")
        if not sep or not name:
            raise UserError(f"--set {pair!r}: write it as KEY=VALUE, e.g. --set max_iters=3")
        if name not in FIELDS:
            import difflib

            close = difflib.get_close_matches(name, list(FIELDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"--set {pair!r}: unknown setting {key.strip()!r}{hint}")
        flags[name] = value
    return flags
