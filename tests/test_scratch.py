"""Scratch copies: a full working copy of the project, minus VCS and caches, gone afterwards."""

from __future__ import annotations

import hashlib
import os
import py_compile
import sys
from pathlib import Path

import pytest

from tracefix.errors import UserError
from tracefix.repair.patch import FunctionEdit, PatchError, apply_edit
from tracefix.tracer.runner import run_tests
from tracefix.tracer.scratch import scratch_copy


def _project(root: Path) -> Path:
    project = root / "proj"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "__init__.py").write_text("")
    (project / "pkg" / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (project / "tests").mkdir()
    (project / "tests" / "test_calc.py").write_text("from pkg.calc import add\n\ndef test_add():\n"
                                                     "    assert add(1, 2) == 3\n")
    for ignored in (".git/objects", ".venv/lib", "pkg/__pycache__", ".pytest_cache", ".tracefix", "build",
                    "proj.egg-info", "node_modules/x"):
        (project / ignored).mkdir(parents=True)
        (project / ignored / "junk").write_text("junk")
    (project / "pkg" / "calc.pyc").write_bytes(b"\0")
    (project / "pkg" / "build").mkdir()  # a subpackage named build is source, not output
    (project / "pkg" / "build" / "__init__.py").write_text("X = 1\n")
    return project


def _tree_digest(root: Path) -> dict[str, str]:
    out = {}
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_scratch_copy_has_sources_and_tests(tmp_path):
    project = _project(tmp_path)
    with scratch_copy(project) as copy:
        assert copy.name == "proj" and copy != project
        assert (copy / "pkg" / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"
        assert (copy / "tests" / "test_calc.py").exists()
        assert (copy / "pkg" / "build" / "__init__.py").exists()


def test_scratch_copy_excludes_vcs_venv_and_caches(tmp_path):
    project = _project(tmp_path)
    with scratch_copy(project) as copy:
        for ignored in (".git", ".venv", "pkg/__pycache__/junk", ".pytest_cache", ".tracefix", "build",
                        "proj.egg-info", "node_modules", "pkg/calc.pyc"):
            assert not (copy / ignored).exists(), ignored


def test_scratch_copy_keeps_the_bytecode_cache_so_a_suite_run_before_starts_warm(tmp_path):
    project = _project(tmp_path)
    cached = project / "pkg" / "__pycache__" / f"calc.{sys.implementation.cache_tag}.pyc"
    cached.write_bytes(b"compiled")
    with scratch_copy(project) as copy:
        assert (copy / "pkg" / "__pycache__" / cached.name).read_bytes() == b"compiled"


def test_an_edit_in_the_copy_is_not_hidden_by_the_copied_bytecode(tmp_path):
    """The copied .pyc matches the original source's mtime and size; an edit of the same size
    must still run (the child compiles it again), as must one hidden by an unchecked hash pyc."""
    project = _project(tmp_path)
    tests = project / "tests" / "test_calc.py"
    tests.write_text("import sys\nsys.path.insert(0, '.')\nfrom pkg.calc import add\n\n"
                     "def test_add():\n    assert add(1, 2) == 3\n")
    py_compile.compile(str(project / "pkg" / "calc.py"), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    run = run_tests(project, test_timeout=10)
    assert {o.outcome for o in run.outcomes} == {"failed"}
    with scratch_copy(project) as copy:
        apply_edit(copy, FunctionEdit("pkg/calc.py", "add", "def add(a, b):\n    return a + b\n"))
        assert len((copy / "pkg" / "calc.py").read_bytes()) == len((project / "pkg" / "calc.py").read_bytes())
        run = run_tests(copy, test_timeout=10, in_place=True)
    assert {o.outcome for o in run.outcomes} == {"passed"}


def test_scratch_copy_is_removed_afterwards(tmp_path):
    project = _project(tmp_path)
    with scratch_copy(project) as copy:
        pass
    assert not copy.exists() and not copy.parent.exists()
    with pytest.raises(RuntimeError):
        with scratch_copy(project) as copy:
            raise RuntimeError("boom")
    assert not copy.exists()


def test_editing_the_copy_leaves_the_original_byte_identical(tmp_path):
    project = _project(tmp_path)
    before = _tree_digest(project)
    with scratch_copy(project) as copy:
        apply_edit(copy, FunctionEdit("pkg/calc.py", "add", "def add(a, b):\n    return a + b\n"))
        (copy / "new_file.py").write_text("x = 1\n")
        assert (copy / "pkg" / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert _tree_digest(project) == before


def test_symlinks_are_copied_as_symlinks(tmp_path):
    project = _project(tmp_path)
    (project / "pkg" / "alias.py").symlink_to("calc.py")
    (project / "data").symlink_to(tmp_path / "elsewhere")  # dangling is fine too
    with scratch_copy(project) as copy:
        assert (copy / "pkg" / "alias.py").is_symlink()
        assert os.readlink(copy / "pkg" / "alias.py") == "calc.py"
        assert (copy / "data").is_symlink()


def test_link_back_into_the_original_is_never_written_through(tmp_path):
    project = _project(tmp_path)
    (project / "pkg" / "linked.py").symlink_to(project / "pkg" / "calc.py")  # absolute: points at the original
    with scratch_copy(project) as copy:
        with pytest.raises(PatchError, match="outside the project"):
            apply_edit(copy, FunctionEdit("pkg/linked.py", "add", "def add(a, b):\n    return 0\n"))
    assert (project / "pkg" / "calc.py").read_text() == "def add(a, b):\n    return a - b\n"


def test_too_many_files_names_the_limit(tmp_path):
    project = _project(tmp_path)
    with pytest.raises(UserError, match="more than 3 files"):
        with scratch_copy(project, max_files=3):
            pass


def test_too_many_bytes_names_the_limit(tmp_path):
    project = _project(tmp_path)
    (project / "big.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    with pytest.raises(UserError, match="larger than 1 MB"):
        with scratch_copy(project, max_bytes=1024 * 1024):
            pass


def test_ignored_dirs_do_not_count_toward_the_limit(tmp_path):
    project = _project(tmp_path)
    (project / ".venv" / "big.bin").write_bytes(b"\0" * (2 * 1024 * 1024))
    with scratch_copy(project, max_bytes=1024 * 1024) as copy:
        assert (copy / "pkg" / "calc.py").exists()


def test_missing_project_is_an_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        with scratch_copy(tmp_path / "nope"):
            pass
