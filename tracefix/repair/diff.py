"""Unified diffs of validated edits, in the form `git apply` and `patch -p1` accept."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
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


# --- reading a diff back ---------------------------------------------------------------------

@dataclass(frozen=True)
class Replacement:
    """One run of changed lines of a validated diff: old lines from `start` give way to `new`."""

    path: str
    start: int  # first old line replaced (1-based); for a pure insertion, the line it goes before
    old: tuple[str, ...]  # the old lines, ends kept; the file's last line may have none
    new: str  # the text that takes their place


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def replacements_in(diff: str) -> list[Replacement]:
    """The replacements a unified diff (unified_diff's, taken against the files as they were
    before any --apply) makes, in file order: each run of -/+ lines between context lines.

    Read from the diff rather than from the edited files, because after --apply the old text
    is gone from disk and the diff is the one record of it.
    """
    out: list[Replacement] = []
    path, start, old, new = "", 0, [], []
    old_left = new_left = line_no = 0
    last = ""

    def flush() -> None:
        nonlocal old, new
        if old or new:
            out.append(Replacement(path, start, tuple(old), "".join(new)))
        old, new = [], []

    for line in _lines(diff):
        if line.startswith("\\"):  # "\ No newline at end of file": the line before has no end
            for lines in ((old,) if last == "-" else (new,) if last == "+" else ()):
                if lines:
                    lines[-1] = lines[-1].rstrip("\n")
            continue
        if old_left or new_left:
            tag, body = line[:1], line[1:]
            last = tag
            if tag == " ":
                flush()
                line_no, old_left, new_left = line_no + 1, old_left - 1, new_left - 1
                continue
            if not (old or new):
                start = line_no
            if tag == "-":
                old.append(body)
                line_no, old_left = line_no + 1, old_left - 1
            else:
                new.append(body)
                new_left -= 1
            continue
        flush()
        hunk = _HUNK.match(line)
        if line.startswith("+++ "):
            path = line[4:].rstrip("\n")
            path = path[2:] if path.startswith("b/") else path
        elif hunk:
            first, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            new_count = int(hunk.group(4) or 1)
            # an empty old range names the line *after which* the new lines go
            line_no, old_left, new_left = (first if count else first + 1), count, new_count
    flush()
    return out
