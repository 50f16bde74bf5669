"""Writing a validated patch into the user's tree: all files or none, never over the user's work.

A run takes `snapshot_hashes` of the files it may edit when it starts; `apply_patch` refuses
when one of them changed since (the user kept editing while tests ran) or, unless
`allow_dirty`, when git shows uncommitted changes in it (a patch written over them could not
be told apart from them, nor undone with git).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tempfile
from pathlib import Path

from tracefix.errors import UserError
from tracefix.repair.patch import encode_source, resolve_inside

ABSENT = ""  # the snapshot hash of a file that did not exist when the run started


def snapshot_hashes(root: Path, paths) -> dict[str, str]:
    """sha256 of each file's bytes now (relative path -> hex digest; ABSENT when missing)."""
    return {path: _hash_of(resolve_inside(root, path)) for path in paths}


def apply_patch(root: Path, edited: dict[str, str], hashes_at_start: dict[str, str],
                allow_dirty: bool = False) -> list[str]:
    """Write `edited` (relative path -> new text) under `root`; the paths written, in order.

    Every file is checked before any is written; the new contents then go to temp files
    beside their targets and are moved over them with os.replace, keeping each file's mode.
    Files whose text is already the new text are skipped.
    """
    targets = {path: resolve_inside(root, path) for path in edited}
    for path, target in targets.items():
        _check_unchanged(path, target, hashes_at_start)
    if not allow_dirty:
        for path, target in targets.items():
            _check_clean(path, target)
    staged = _stage(edited, targets)
    for temp, target in staged.values():
        os.replace(temp, target)
    return list(staged)


def _hash_of(target: Path) -> str:
    try:
        return hashlib.sha256(target.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ABSENT


def _check_unchanged(path: str, target: Path, hashes_at_start: dict[str, str]) -> None:
    if path not in hashes_at_start:
        raise ValueError(f"no snapshot of {path} was taken when the run started")
    if _hash_of(target) != hashes_at_start[path]:
        raise UserError(f"refusing to write {path}: it changed since the run started; run tracefix again")


def _check_clean(path: str, target: Path) -> None:
    if not target.exists() or not _in_git_work_tree(target.parent):
        return
    result = _git(target.parent, "status", "--porcelain", "--", target.name)
    if result.returncode != 0:
        raise UserError(f"could not check {path} for uncommitted changes: {result.stderr.strip()} "
                            "(pass --allow-dirty to skip the check)")
    if result.stdout.strip():
        raise UserError(f"refusing to write {path}: it has uncommitted changes (pass --allow-dirty)")


def _in_git_work_tree(directory: Path) -> bool:
    result = _git(directory, "rev-parse", "--is-inside-work-tree")
    return result.returncode == 0 and result.stdout.strip() == "true"


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:  # no git installed: nothing can be under git
        return subprocess.CompletedProcess(["git", *args], 128, "", "git not found")


def _stage(edited: dict[str, str], targets: dict[str, Path]) -> dict[str, tuple[str, Path]]:
    """New contents in temp files beside their targets (same filesystem, so os.replace is atomic)."""
    staged: dict[str, tuple[str, Path]] = {}
    try:
        for path, text in edited.items():
            target = targets[path]
            data = encode_source(text, target)
            if target.exists() and target.read_bytes() == data:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            staged[path] = (_write_temp(target, data), target)
    except BaseException:
        for temp, _ in staged.values():
            _remove(temp)
        raise
    return staged


def _write_temp(target: Path, data: bytes) -> str:
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tracefix-tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, _mode_for(target))
    except BaseException:
        _remove(temp)
        raise
    return temp


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:  # a new module (whole-file edit): the usual mode for source files
        return 0o644


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
