"""Diffs that git accepts, and writes into the user's tree that are all-or-nothing and never clobber work."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tracefix.errors import UserError
from tracefix.repair.apply import apply_patch, snapshot_hashes
from tracefix.repair.diff import unified_diff

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes(text.encode())
    assert _git(repo, "init", "-q").returncode == 0
    _git(repo, "add", "-A")
    assert _git(repo, "commit", "-q", "-m", "init").returncode == 0
    return repo


def _git_applies(tmp_path: Path, files: dict[str, str], edited: dict[str, str]) -> Path:
    """A fresh repo holding `files`, with the diff to `edited` checked and applied by git."""
    repo = _repo(tmp_path, files)
    patch = unified_diff(repo, edited)
    (tmp_path / "fix.patch").write_text(patch)
    check = _git(repo, "apply", "--check", str(tmp_path / "fix.patch"))
    assert check.returncode == 0, check.stderr + patch
    assert _git(repo, "apply", str(tmp_path / "fix.patch")).returncode == 0
    return repo


# ----------------------------------------------------------------------------- diff


def test_diff_applies_with_git_apply(tmp_path):
    files = {"pkg/calc.py": "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n",
             "pkg/other.py": "X = 1\n"}
    edited = {"pkg/calc.py": files["pkg/calc.py"].replace("return a - b", "return a + b", 1), "pkg/other.py": "X = 1\n"}
    repo = _repo(tmp_path, files)
    patch = unified_diff(repo, edited)
    assert patch.startswith("diff --git a/pkg/calc.py b/pkg/calc.py\n--- a/pkg/calc.py\n+++ b/pkg/calc.py\n@@ ")
    assert "-    return a - b\n+    return a + b\n" in patch
    assert "other.py" not in patch  # unchanged files are left out
    shutil.rmtree(repo)
    repo = _git_applies(tmp_path, files, edited)
    assert (repo / "pkg" / "calc.py").read_text() == edited["pkg/calc.py"]


def test_diff_applies_with_patch_p1(tmp_path):
    if shutil.which("patch") is None:
        pytest.skip("needs patch")
    files = {"m.py": "a = 1\nb = 2\n"}
    repo = _repo(tmp_path, files)
    (tmp_path / "fix.patch").write_text(unified_diff(repo, {"m.py": "a = 1\nb = 3\n"}))
    result = subprocess.run(["patch", "-p1", "-i", str(tmp_path / "fix.patch")], cwd=repo, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (repo / "m.py").read_text() == "a = 1\nb = 3\n"


@pytest.mark.parametrize("old, new", [
    ("x = 1\ny = 2", "x = 1\ny = 3"),  # neither ends in a newline
    ("x = 1\ny = 2", "x = 1\ny = 3\n"),  # newline added
    ("x = 1\ny = 2\n", "x = 1\ny = 3"),  # newline removed
    ("x = 1\ny = 2", "x = 0\ny = 2"),  # unchanged last line without newline
])
def test_missing_trailing_newline_round_trips_through_git(tmp_path, old, new):
    repo = _git_applies(tmp_path, {"m.py": old}, {"m.py": new})
    assert (repo / "m.py").read_bytes() == new.encode()


def test_no_newline_marker_is_written(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\ny = 2"})
    patch = unified_diff(repo, {"m.py": "x = 1\ny = 3"})
    assert patch.endswith("-y = 2\n\\ No newline at end of file\n+y = 3\n\\ No newline at end of file\n")


def test_crlf_and_form_feed_lines_round_trip_through_git(tmp_path):
    old = "def f():\r\n    return 1\r\n\x0c\r\ndef g():\r\n    return 2\r\n"
    new = old.replace("return 1", "return 10")
    repo = _git_applies(tmp_path, {"m.py": old}, {"m.py": new})
    assert (repo / "m.py").read_bytes() == new.encode()


def test_new_file_diff_applies(tmp_path):
    repo = _git_applies(tmp_path, {"m.py": "x = 1\n"}, {"pkg/new.py": "def helper():\n    return 1\n"})
    assert (repo / "pkg" / "new.py").read_text() == "def helper():\n    return 1\n"


def test_no_changes_is_an_empty_diff(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\n"})
    assert unified_diff(repo, {"m.py": "x = 1\n"}) == ""


# ----------------------------------------------------------------------------- apply


def test_apply_writes_new_contents_and_keeps_mode(tmp_path):
    repo = _repo(tmp_path, {"run.py": "print(1)\n", "lib.py": "X = 1\n"})
    os.chmod(repo / "run.py", 0o755)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "mode")
    hashes = snapshot_hashes(repo, ["run.py", "lib.py"])
    written = apply_patch(repo, {"run.py": "print(2)\n", "lib.py": "X = 1\n"}, hashes)
    assert written == ["run.py"]  # lib.py already had that text
    assert (repo / "run.py").read_text() == "print(2)\n"
    assert stat.S_IMODE((repo / "run.py").stat().st_mode) == 0o755
    assert not [p for p in repo.iterdir() if p.name.endswith(".tracefix-tmp")]


def test_apply_refuses_dirty_file(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\n"})
    (repo / "m.py").write_text("x = 2  # the user's own change\n")
    hashes = snapshot_hashes(repo, ["m.py"])
    with pytest.raises(UserError, match=r"refusing to write m.py: it has uncommitted changes \(pass --allow-dirty\)"):
        apply_patch(repo, {"m.py": "x = 3\n"}, hashes)
    assert (repo / "m.py").read_text() == "x = 2  # the user's own change\n"


def test_apply_refuses_untracked_file(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\n"})
    (repo / "new.py").write_text("y = 1\n")
    with pytest.raises(UserError, match="uncommitted changes"):
        apply_patch(repo, {"new.py": "y = 2\n"}, snapshot_hashes(repo, ["new.py"]))


def test_allow_dirty_writes_over_uncommitted_changes(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\n"})
    (repo / "m.py").write_text("x = 2\n")
    hashes = snapshot_hashes(repo, ["m.py"])
    assert apply_patch(repo, {"m.py": "x = 3\n"}, hashes, allow_dirty=True) == ["m.py"]
    assert (repo / "m.py").read_text() == "x = 3\n"


def test_apply_refuses_file_changed_since_start(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\n"})
    hashes = snapshot_hashes(repo, ["m.py"])
    (repo / "m.py").write_text("x = 5\n")  # the user edits while the tests run
    for allow_dirty in (False, True):
        with pytest.raises(UserError, match="refusing to write m.py: it changed since the run started"):
            apply_patch(repo, {"m.py": "x = 3\n"}, hashes, allow_dirty=allow_dirty)
    assert (repo / "m.py").read_text() == "x = 5\n"


def test_apply_is_all_or_nothing(tmp_path):
    repo = _repo(tmp_path, {"a.py": "a = 1\n", "b.py": "b = 1\n"})
    hashes = snapshot_hashes(repo, ["a.py", "b.py"])
    (repo / "b.py").write_text("b = 2\n")  # only the second file is refused
    with pytest.raises(UserError, match="b.py"):
        apply_patch(repo, {"a.py": "a = 10\n", "b.py": "b = 10\n"}, hashes, allow_dirty=True)
    assert (repo / "a.py").read_text() == "a = 1\n"
    (repo / "b.py").write_text("b = 1\n")
    (repo / "c.py").write_text("c = 1\n")  # untracked: dirty
    hashes = snapshot_hashes(repo, ["a.py", "b.py", "c.py"])
    with pytest.raises(UserError, match="c.py"):
        apply_patch(repo, {"a.py": "a = 10\n", "b.py": "b = 10\n", "c.py": "c = 10\n"}, hashes)
    assert (repo / "a.py").read_text() == "a = 1\n" and (repo / "b.py").read_text() == "b = 1\n"
    assert sorted(p.name for p in repo.iterdir()) == [".git", "a.py", "b.py", "c.py"]


def test_outside_git_nothing_is_dirty(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n")
    hashes = snapshot_hashes(tmp_path, ["m.py"])
    assert apply_patch(tmp_path, {"m.py": "x = 2\n"}, hashes) == ["m.py"]
    assert (tmp_path / "m.py").read_text() == "x = 2\n"


def test_apply_creates_a_new_file(tmp_path):
    repo = _repo(tmp_path, {"m.py": "x = 1\n"})
    hashes = snapshot_hashes(repo, ["pkg/new.py"])
    assert apply_patch(repo, {"pkg/new.py": "y = 1\n"}, hashes) == ["pkg/new.py"]
    assert (repo / "pkg" / "new.py").read_text() == "y = 1\n"


def test_apply_keeps_crlf_bytes(tmp_path):
    (tmp_path / "m.py").write_bytes(b"x = 1\r\n")
    hashes = snapshot_hashes(tmp_path, ["m.py"])
    apply_patch(tmp_path, {"m.py": "x = 2\r\n"}, hashes)
    assert (tmp_path / "m.py").read_bytes() == b"x = 2\r\n"


def test_apply_writes_through_a_symlink_inside_the_project(tmp_path):
    (tmp_path / "real.py").write_text("x = 1\n")
    (tmp_path / "link.py").symlink_to("real.py")
    hashes = snapshot_hashes(tmp_path, ["link.py"])
    apply_patch(tmp_path, {"link.py": "x = 2\n"}, hashes)
    assert (tmp_path / "link.py").is_symlink()
    assert (tmp_path / "real.py").read_text() == "x = 2\n"


def test_edit_in_scratch_then_diff_and_apply_to_the_project(tmp_path):
    from tracefix.repair.patch import FunctionEdit, apply_edits
    from tracefix.tracer.scratch import scratch_copy

    source = "# calc\n\ndef add(a, b):\n    return a - b  # bug\n\n\ndef sub(a, b):\n    return a - b\n"
    repo = _repo(tmp_path, {"pkg/calc.py": source})
    hashes = snapshot_hashes(repo, ["pkg/calc.py"])
    with scratch_copy(repo) as copy:
        edited = apply_edits(copy, [FunctionEdit("pkg/calc.py", "add", "def add(a, b):\n    return a + b\n")])
    assert (repo / "pkg" / "calc.py").read_text() == source  # the scratch edit never reached the project
    patch = unified_diff(repo, edited)
    assert patch.count("\n-    ") == 1 and "-    return a - b  # bug\n+    return a + b\n" in patch
    assert apply_patch(repo, edited, hashes) == ["pkg/calc.py"]
    assert (repo / "pkg" / "calc.py").read_text() == source.replace("    return a - b  # bug\n", "    return a + b\n")
