"""Which files belong to the project: its own Python sources, never site-packages or tests."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from tracefix.errors import UserError

SKIP_DIRS = {
    ".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "node_modules", "__pycache__",
    ".pytest_cache", ".tracefix", ".mypy_cache", ".tox", ".nox", "build", "dist", "site-packages",
}
MAX_FILES = 5000


def check_project(root: Path, *, needs_python: bool = True) -> Path:
    """The resolved project root, or a UserError saying why it is not one. `config` and
    `vscode` accept a folder that holds no Python file yet (`needs_python=False`)."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such file or directory")
    if not root.is_dir():
        raise UserError(f"{root}: not a directory (give the project's root folder)")
    if needs_python and not any(python_files(root.resolve())):
        raise UserError(f"{root}: no Python files here; is this a Python project?")
    return root.resolve()


def python_files(root: Path):
    """Every .py file under root, skipping virtualenvs, caches and build output."""
    count = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1]):
            continue
        count += 1
        if count > MAX_FILES:
            return
        yield path


def is_test_file(rel: str) -> bool:
    parts = rel.split("/")
    name = parts[-1]
    if name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py"):
        return True
    return any(p in ("tests", "test", "testing") for p in parts[:-1])


def source_files(root: Path, include: list[str] | None = None, exclude: list[str] | None = None) -> list[str]:
    """Project-relative paths of the source files (tests excluded) tracefix may record or edit."""
    out = []
    for path in python_files(root):
        rel = path.relative_to(root).as_posix()
        if is_test_file(rel):
            continue
        if include and not any(fnmatch.fnmatch(rel, pat) for pat in include):
            continue
        if exclude and any(fnmatch.fnmatch(rel, pat) for pat in exclude):
            continue
        out.append(rel)
    return out
