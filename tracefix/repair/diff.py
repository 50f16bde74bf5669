"""Unified diffs of validated edits, in the form `git apply` and `patch -p1` accept."""

from __future__ import annotations

import difflib
from pathlib import Path

from tracefix.repair.patch import read_source, resolve_inside

NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(root: Path, edited: dict[str, str], context: int = 3) -> str:
    """One patch taking the files under `root` to the texts in `edited` (relative path -> new text).

    Paths are sorted; files whose text is unchanged are left out; a path that does not
    exist yet becomes a new file. "" when nothing changes.
    """
    return "".join(file_diff(root, path, edited[path], context) for path in sorted(edited))


def file_diff(root: Path, relpath: str, new_text: str, context: int = 3) -> str:
    """The diff of one file, with a `diff --git` header."""
    path = relpath.replace("\\", "/")
    target = resolve_inside(root, relpath)
    exists = target.is_file()
    old_text = read_source(target) if exists else ""
    if exists and old_text == new_text:
        return ""
    header = [f"diff --git a/{path} b/{path}\n"]
    if not exists:
        header.append("new file mode 100644\n")
    old_name = f"a/{path}" if exists else "/dev/null"
    hunks = difflib.unified_diff(
        _lines(old_text), _lines(new_text), fromfile=old_name, tofile=f"b/{path}", n=context, lineterm="\n")
    out = header
    for line in hunks:
        out.append(line)
        if not line.endswith("\n"):  # the last line of a file without a final newline
            out.append("\n" + NO_NEWLINE)
    return "".join(out) if len(out) > len(header) else "".join(header)


def _lines(text: str) -> list[str]:
    """Lines split at "\\n" only, ends kept: str.splitlines also splits at \\f, \\x1c, \\u2028..., git does not."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
