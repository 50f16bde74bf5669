"""Every tracefix setting in one frozen dataclass, and where each value came from.

Resolution, lowest to highest: defaults < `[tool.tracefix]` in the project's pyproject.toml
< `TRACEFIX_<FIELD>` environment variables < explicit flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser, packaged as tomli
    import tomli as tomllib  # type: ignore[no-redef]

from tracefix.errors import UserError

STRATEGIES = ("auto", "flat", "hierarchical", "baseline", "mutation", "focused")
# Named portfolios: strategies tried in order under one budget, each on what the one before
# left unfixed. "default" is what measured best on the corpora with a small local model
# (README, "Repair strategies"): the free mutation search first, then the plain self-repair,
# then the traced loop.
PORTFOLIOS = {
    "default": ("mutation", "baseline", "auto"),
    "model-free": ("mutation",),
}
OFF = "off"
VERDICTS = ("auto", "on", "off")


def stages(strategy: str) -> list[str]:
    """The strategies of a run, in order: a portfolio's name stands for its strategies, and
    "baseline,hierarchical" tries the baseline, then hierarchical on what it left unfixed."""
    steps: list[str] = []
    for part in strategy.split(","):
        part = part.strip()
        steps += PORTFOLIOS.get(part, (part,))
    return steps


MODEL_FREE = ("mutation",)  # strategies that never call a model


def needs_model(strategy: str) -> bool:
    """Whether any stage of `strategy` asks a model."""
    return any(step not in MODEL_FREE for step in stages(strategy))


@dataclass(frozen=True)
class Config:
    """All settings. Paths are absolute once `load_config` has resolved them."""

    # The model, as litellm names it ("openai/gpt-4o-mini", "ollama/llama3", "openai/x" with api_base).
    model: str | None = None
    api_base: str | None = None
    api_key_env: str | None = None  # read the key from this variable instead of the provider's usual one
    temperature: float = 0.0
    seed: int | None = None  # sampling seed sent with each request (variant n gets seed + n); None: the model's own
    max_tokens: int = 1024  # per answer
    request_timeout: float = 60.0  # seconds per model request
    retries: int = 2  # extra attempts after a transient model error
    cache_dir: Path | None = None  # None: caching off; load_config defaults it to <project>/.tracefix/cache
    log_path: Path | None = None  # JSONL log of every prompt and response; None: no log
    pytest_args: tuple[str, ...] = ()  # extra arguments for every pytest run
    # The Python that runs the tests (a path; relative ones to the project in pyproject.toml).
    # None: the active VIRTUAL_ENV, a .venv/venv in the project, else tracefix's own.
    python: str | None = None
    test_timeout: float = 10.0  # seconds per test
    run_timeout: float = 300.0  # seconds for the whole tracefix run
    max_iters: int = 5
    candidates: int = 1  # patch candidates asked for per iteration
    token_budget: int = 6000  # prompt tokens per request
    cost_budget: float | None = None  # USD for the whole run (--budget-usd); None: unbounded
    budget_tokens: int | None = None  # model tokens (prompt + completion) for the whole run; None: unbounded
    budget_seconds: float | None = None  # wall seconds for the whole repair run; None: unbounded
    include: tuple[str, ...] = ()  # path globs, relative to the project
    exclude: tuple[str, ...] = ()
    verdicts: str = "auto"  # per-block verdicts in the traced loop: "on" | "off" | "auto" (off for a model named <= 15B, and for a lone block; else on)
    strategy: str = "default"  # a portfolio (config.PORTFOLIOS), or "auto" | "flat" | "hierarchical" | "baseline" (no trace) | "mutation" (no model) | "focused", or stages: "mutation,auto"
    decompose: bool = False  # split a long monolithic failing function into helpers before debugging it
    keep_structure: bool = False  # with decompose: inline the fix back into the original function
    apply: bool = False  # write the validated patch into the project
    allow_dirty: bool = False  # apply even where git reports uncommitted changes
    # Canned model answers, served in order through litellm's mock_response (tests, demos).
    mock_responses: tuple[str, ...] | None = None


class Loaded(NamedTuple):
    config: Config
    sources: dict[str, str]  # field -> "default" | "pyproject.toml" | "env TRACEFIX_X" | "flag"
    warnings: list[str]


FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def load_config(
    project: Path, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Loaded:
    """The resolved config for `project`, the source of each value, and warnings to show the user.

    `flags` holds explicit overrides; None values mean "not given". Relative paths in
    pyproject.toml are relative to the project, elsewhere to the working directory.
    """
    project = Path(project).resolve()
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {name: f.default for name, f in FIELDS.items()}
    values["cache_dir"] = project / ".tracefix" / "cache"
    sources = {name: "default" for name in FIELDS}

    table, pyproject, warnings = _tool_table(project)
    for key, raw in table.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            warnings.append(_unknown_key_warning(key, pyproject))
            continue
        values[name] = _from_toml(name, raw, f"[tool.tracefix] {key} in {pyproject}", project)
        sources[name] = "pyproject.toml"

    for name in FIELDS:
        var = "TRACEFIX_" + name.upper()
        if var in environ:
            values[name] = _from_text(name, environ[var], var)
            sources[name] = f"env {var}"

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in FIELDS:
            raise ValueError(f"unknown config flag {name!r}")
        values[name] = _from_flag(name, raw)
        sources[name] = "flag"

    config = Config(**values)
    _check_ranges(config, sources)
    return Loaded(config, sources, warnings)


def _tool_table(project: Path) -> tuple[dict[str, Any], Path, list[str]]:
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file():
        return {}, pyproject, []
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{pyproject} is not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("tracefix", {})
    if not isinstance(table, dict):
        raise UserError(f"[tool.tracefix] in {pyproject} must be a table")
    return table, pyproject, []


def _unknown_key_warning(key: str, pyproject: Path) -> str:
    known = [name.replace("_", "-") if "-" in key else name for name in FIELDS]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r} in [tool.tracefix] of {pyproject}, ignored{hint}"


# --- typed conversion -------------------------------------------------------------------------


# Each field's kind and whether it may be None; read by the converters below.
_KINDS: dict[str, tuple[str, bool]] = {
    "model": ("str", True),
    "api_base": ("str", True),
    "api_key_env": ("str", True),
    "temperature": ("float", False),
    "seed": ("int", True),
    "max_tokens": ("int", False),
    "request_timeout": ("float", False),
    "retries": ("int", False),
    "cache_dir": ("path", True),
    "log_path": ("path", True),
    "pytest_args": ("list", False),
    "python": ("str", True),
    "test_timeout": ("float", False),
    "run_timeout": ("float", False),
    "max_iters": ("int", False),
    "candidates": ("int", False),
    "token_budget": ("int", False),
    "cost_budget": ("float", True),
    "budget_tokens": ("int", True),
    "budget_seconds": ("float", True),
    "include": ("list", False),
    "exclude": ("list", False),
    "strategy": ("str", False),
    "verdicts": ("str", False),
    "decompose": ("bool", False),
    "keep_structure": ("bool", False),
    "apply": ("bool", False),
    "allow_dirty": ("bool", False),
    "mock_responses": ("list", True),
}
assert set(_KINDS) == set(FIELDS), "every Config field needs a kind"


def _kind(name: str) -> tuple[str, bool]:
    return _KINDS[name]


_EXPECTED = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list of strings",
    "path": 'a path or "off"',
}


def _wrong(where: str, name: str, raw: Any) -> UserError:
    kind, optional = _kind(name)
    extra = " (or none)" if optional and kind != "path" else ""
    return UserError(f"{where} must be {_EXPECTED[kind]}{extra}, got {raw!r}")


def _from_toml(name: str, raw: Any, where: str, base: Path) -> Any:
    kind, _ = _kind(name)
    if kind == "path":
        if not isinstance(raw, str) or not raw:
            raise _wrong(where, name, raw)
        return _path(raw, base)
    return _typed(name, raw, where)


def _from_flag(name: str, raw: Any) -> Any:
    kind, _ = _kind(name)
    if kind == "path":
        if isinstance(raw, Path):
            return raw.resolve()
        if not isinstance(raw, str) or not raw:
            raise _wrong(f"flag {name}", name, raw)
        return _path(raw, Path.cwd())
    if isinstance(raw, str) and kind not in ("str",):
        return _from_text(name, raw, f"flag {name}")
    return _typed(name, raw, f"flag {name}")


def _typed(name: str, raw: Any, where: str) -> Any:
    """`raw` (a TOML or Python value) checked against the field's type."""
    kind, optional = _kind(name)
    if raw is None and optional:
        return None
    if kind == "bool" and isinstance(raw, bool):
        return raw
    if kind == "int" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if kind == "float" and isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    if kind == "str" and isinstance(raw, str):
        return raw
    if kind == "list":
        if isinstance(raw, str) and name == "pytest_args":
            return tuple(shlex.split(raw))
        if isinstance(raw, (list, tuple)) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
    raise _wrong(where, name, raw)


def _from_text(name: str, text: str, where: str) -> Any:
    """A value from an environment variable (or a string flag): ints, floats, bools, lists parsed."""
    kind, optional = _kind(name)
    stripped = text.strip()
    if kind == "path":
        return None if stripped.lower() in (OFF, "none", "") else _path(stripped, Path.cwd())
    if optional and stripped.lower() in ("none", "off", ""):
        return None
    if kind == "str":
        return text
    if kind == "bool":
        lowered = stripped.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise _wrong(where, name, text)
    if kind in ("int", "float"):
        try:
            return int(stripped) if kind == "int" else float(stripped)
        except ValueError:
            raise _wrong(where, name, text) from None
    # list: a JSON list, or shell words for pytest_args, or comma-separated globs
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError:
            raise _wrong(where, name, text) from None
        return _typed(name, parsed, where)
    if name == "pytest_args":
        return tuple(shlex.split(stripped))
    return tuple(part.strip() for part in stripped.split(",") if part.strip())


def _path(text: str, base: Path) -> Path | None:
    if text.strip().lower() == OFF:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def _check_ranges(config: Config, sources: dict[str, str]) -> None:
    def fail(name: str, rule: str) -> None:
        raise UserError(f"{name} ({sources[name]}) must be {rule}, got {getattr(config, name)!r}")

    steps = stages(config.strategy)
    if any(step not in STRATEGIES for step in steps) or len(set(steps)) < len(steps):
        fail("strategy", "a portfolio (" + ", ".join(repr(p) for p in PORTFOLIOS) + ") or "
             + " or ".join(repr(s) for s in STRATEGIES) + ", or several of them, comma-separated, each once (stages)")
    if config.verdicts not in VERDICTS:
        fail("verdicts", " or ".join(repr(v) for v in VERDICTS))
    for name in ("max_tokens", "max_iters", "candidates", "token_budget"):
        if getattr(config, name) < 1:
            fail(name, "at least 1")
    for name in ("request_timeout", "test_timeout", "run_timeout"):
        if getattr(config, name) <= 0:
            fail(name, "positive")
    if config.retries < 0:
        fail("retries", "0 or more")
    if config.temperature < 0:
        fail("temperature", "0 or more")
    for name in ("cost_budget", "budget_tokens", "budget_seconds"):
        if getattr(config, name) is not None and getattr(config, name) < 0:
            fail(name, "0 or more")
