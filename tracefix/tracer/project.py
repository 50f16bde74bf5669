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


# --- where the project starts when tracefix is run from inside it ----------------------

# pytest's ini files, in the order it tries them in each folder, with the section that makes
# one count (None: the file counts even when empty).
PYTEST_INI_FILES = (("pytest.ini", None), (".pytest.ini", None), ("pyproject.toml", "tool.pytest.ini_options"),
                    ("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"))


def pytest_rootdir(start: Path) -> Path:
    """The folder pytest would take as rootdir for a run started in `start` (pytest 8): the
    nearest folder up with an ini file that configures pytest; else the nearest with a
    pyproject.toml, then with a setup.py; else `start` itself."""
    start = Path(start).resolve()
    folders = [start, *start.parents]
    for folder in folders:
        if any(_configures_pytest(folder / name, section) for name, section in PYTEST_INI_FILES):
            return folder
    for marker in ("pyproject.toml", "setup.py"):
        for folder in folders:
            if (folder / marker).is_file():
                return folder
    return start


def _configures_pytest(path: Path, section: str | None) -> bool:
    if not path.is_file():
        return False
    if section is None:
        return True
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    # A header line is enough: pytest itself reads the file only when the section is there.
    return any(line.strip().replace(" ", "") == f"[{section}]" for line in text.splitlines())


def looks_like_test_id(arg: str) -> bool:
    """`tests/test_x.py::test_y` or `tests/test_x.py` given where the project's folder goes
    (the pytest habit): a test id, not a project."""
    return "::" in arg or arg.endswith(".py") or Path(arg).is_file()


def invocation(path: Path | None, test_ids=(), cwd: Path | None = None, *, needs_python: bool = True):
    """(project root, node ids relative to it) for a command run in `cwd`.

    No PATH: the root is pytest's rootdir for `cwd`, and the ids are taken relative to where
    the user stands (`cd tests && tracefix trace test_ops.py::test_add`), as pytest takes them.
    With PATH, ids are relative to PATH, or to `cwd` when only that names a file.
    """
    cwd = Path(cwd or Path.cwd()).resolve()
    ids = list(test_ids or ())
    if path is not None and looks_like_test_id(str(path)) and not Path(path).is_dir():
        ids.insert(0, str(path))
        path = None
    if path is None:
        root = check_project(pytest_rootdir(cwd), needs_python=needs_python)
        bases = (cwd, root)
    else:
        root = check_project(Path(path), needs_python=needs_python)
        bases = (root, cwd)
    return root, [_relative_id(i, root, bases) for i in ids]


def _relative_id(test_id: str, root: Path, bases) -> str:
    file, sep, rest = test_id.partition("::")
    for base in bases:
        candidate = (base / file).resolve()
        if candidate.exists():
            try:
                rel = candidate.relative_to(root).as_posix()
            except ValueError:
                continue
            return test_id if rel == "." else rel + sep + rest
    return test_id
