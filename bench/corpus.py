"""Records of the shared bug corpora (`/work/shared/corpus`, format in its README) as pytest projects.

Two views of one record, never mixed:
- `write_visible`: what a repair run may see: the buggy file, its support files and the
  visible tests (`given_tests` of a seed, one pytest test per assert line, in test_given.py;
  QuixBugs has no split, its test file is the visible one).
- `write_scored`: the hidden tests (`test_code`) next to a file, to score a result once.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

CORPUS_DIR = Path(os.environ.get("TRACEFIX_CORPUS_DIR", "/work/shared/corpus"))
VISIBLE_TESTS = "test_given.py"


def load_records(path: Path, where: dict[str, str] | None = None, ids: list[str] | None = None) -> list[dict]:
    """Usable records of one JSONL corpus: `meta.suspect` ones are left out (its README says so),
    `where` matches dotted fields exactly ("meta.generator_model": "gpt-3.5-turbo-0613"), `ids`
    keeps records whose id contains one of the strings."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if (record.get("meta") or {}).get("suspect"):
            continue
        if where and any(str(field(record, k)) != v for k, v in where.items()):
            continue
        if ids and not any(i in record["id"] for i in ids):
            continue
        out.append(record)
    return out


def field(record: dict, dotted: str):
    value = record
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def has_split(record: dict) -> bool:
    """Seeds have visible tests apart from the hidden ones; QuixBugs does not."""
    return bool(record.get("given_tests"))


def program_text(code: str) -> str:
    """The code without its module-level asserts. Some LDB seeds end with the generator's own
    example asserts; a failing one breaks every import of the module, so no test could run.
    They are tests, not program: the visible ones are in `given_tests` anyway."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    drop = {line for node in tree.body if isinstance(node, ast.Assert)
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    return "".join(line for i, line in enumerate(code.splitlines(keepends=True), 1) if i not in drop)


def write_program(record: dict, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / f"{record['module_name']}.py").write_text(program_text(record["buggy_code"]), encoding="utf-8")
    for rel, text in (record.get("support_files") or {}).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")
    return dest


def write_visible(record: dict, dest: Path) -> Path:
    """The project a repair run works on. A seed's hidden tests are not in it."""
    write_program(record, dest)
    if has_split(record):
        tests = [f"from {record['module_name']} import *  # noqa: F401,F403\n"]
        for i, line in enumerate(record["given_tests"]):
            tests.append(f"\n\ndef test_given_{i}():\n    {line.strip()}\n")
        (dest / VISIBLE_TESTS).write_text("".join(tests), encoding="utf-8")
    else:
        (dest / record["test_file_name"]).write_text(record["test_code"], encoding="utf-8")
    return dest


def write_scored(record: dict, dest: Path, edited: dict[str, str] | None = None) -> Path:
    """The buggy program with the accepted edits (if any) and the hidden tests."""
    write_program(record, dest)
    for rel, text in (edited or {}).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(text, encoding="utf-8")
    (dest / record["test_file_name"]).write_text(record["test_code"], encoding="utf-8")
    return dest


def hidden_tests_pass(record: dict, dest: Path, edited: dict[str, str] | None = None,
                      test_timeout: float = 10.0, timeout: float = 300.0) -> bool:
    """Whether every hidden test passes, each under a timeout (17 QuixBugs programs loop forever).

    A test the hidden suite skips itself (three QuixBugs files skip their slowest case) is not a
    failure; at least one test must have passed.
    """
    write_scored(record, dest, edited)
    from tracefix.tracer.runner import run_tests  # the per-test timeout lives there

    run = run_tests(dest, test_ids=[record["test_file_name"]], test_timeout=test_timeout, run_timeout=timeout)
    outcomes = {o.outcome for o in run.outcomes}
    return run.crashed is None and "passed" in outcomes and outcomes <= {"passed", "skipped"}
