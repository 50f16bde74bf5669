"""Scratch copies of the user's project: every candidate patch is tried in one, never in the original.

The copy leaves out version control, virtual environments and caches (they are large and
no test needs them; a `.venv` inside the project is used from its original place by path),
but keeps the bytecode in `__pycache__`: a suite the user has run before then starts warm in
the copy too (pytest's rewritten test modules and the project's own compiled modules: 0.4 s
of sqlparse's 1.2 s start), and Python and pytest check each file against its source's
mtime and size, so an edited file in the copy is compiled again. The child never writes
bytecode, and checks hash-based files always (`runner.child_command`).
Symlinks are copied as symlinks; `repair.patch.resolve_inside` refuses to write through one
that points out of the copy.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tracefix.errors import UserError

# A copy per candidate: bounded so a misplaced project root (a home directory) fails fast
# instead of filling the disk.
MAX_BYTES = 200 * 1024 * 1024
MAX_FILES = 20_000

IGNORED_NAMES = frozenset({
    ".git", ".hg", ".svn", ".venv", "venv", "env", "node_modules", ".pytest_cache",
    ".tracefix", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".eggs",
})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")  # .pyc only outside __pycache__ (a sourceless module)
BYTECODE_DIR = "__pycache__"
IGNORED_AT_ROOT = frozenset({"build", "dist"})  # only at the top: a package may have a `build` module


@contextmanager
def scratch_copy(project: Path, *, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES) -> Iterator[Path]:
    """A fresh copy of `project` in a temp dir, removed on exit. The copy keeps the project's dir name."""
    project = Path(project).resolve()
    if not project.is_dir():
        raise UserError(f"project directory {project} does not exist")
    _check_size(project, max_bytes, max_files)
    parent = Path(tempfile.mkdtemp(prefix="tracefix-scratch-"))
    try:
        copy = parent / project.name
        shutil.copytree(project, copy, symlinks=True, ignore=_ignore_for(project))
        yield copy
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _ignore_for(project: Path):
    def ignore(directory: str, names: list[str]) -> set[str]:
        if os.path.basename(directory) == BYTECODE_DIR:
            return {name for name in names if not name.endswith(".pyc") or _special(os.path.join(directory, name))}
        at_root = Path(directory) == project
        return {name for name in names if _ignored(name, at_root) or _special(os.path.join(directory, name))}

    return ignore


def _ignored(name: str, at_root: bool) -> bool:
    return name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES) or (at_root and name in IGNORED_AT_ROOT)


def _special(path: str) -> bool:
    """Sockets, fifos and devices: copying a fifo blocks forever."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return True
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


def _check_size(project: Path, max_bytes: int, max_files: int) -> None:
    files = 0
    size = 0
    for directory, dirnames, filenames in os.walk(project):
        at_root = Path(directory) == project
        dirnames[:] = [d for d in dirnames if not _ignored(d, at_root)]
        for name in filenames:
            if _ignored(name, at_root):
                continue
            files += 1
            try:
                size += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
            if files > max_files:
                raise UserError(
                    f"project {project} has more than {max_files} files (the scratch-copy limit); "
                    "run tracefix from the project's own root")
            if size > max_bytes:
                raise UserError(
                    f"project {project} is larger than {max_bytes // (1024 * 1024)} MB (the scratch-copy limit); "
                    "run tracefix from the project's own root or move large data files out of it")
