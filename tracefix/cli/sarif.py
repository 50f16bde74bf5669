"""Findings as a SARIF 2.1.0 log, the format GitHub code scanning (and SARIF viewers) read.

The same findings as `--format diagnostics` (the messages, lines and columns come from
`cli/diagnostics.py`), as SARIF results with stable rule ids:

- `tracefix/failing-test`: a failing test, at the test's line on the failure's stack;
- `tracefix/suspect`: a function or line ranked by fault localization, its score in
  `properties` and as the result's `rank` (0-100);
- `tracefix/fix`: a validated fix, with a SARIF `fixes` entry whose replacements take the
  files as they were to the fixed files.

Paths are relative to the project root (`uriBaseId` "%SRCROOT%"), with forward slashes.
Each result carries a `partialFingerprints` entry built from what survives an unrelated edit
(path, function, statement text; never a line number), so a rerun's alerts match the last
run's instead of piling up.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

from tracefix.cli.diagnostics import failure_diagnostics, suspect_diagnostics
from tracefix.repair.diff import Replacement, replacements_in
from tracefix.tracer.localize import Localization, Suspect

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
FINGERPRINT = "tracefixLocation/v1"

RULES = (
    {"id": "tracefix/failing-test", "name": "FailingTest",
     "shortDescription": {"text": "A test fails"},
     "fullDescription": {"text": "A pytest test fails, errors, times out or crashes; the location is the "
                                 "test's own line on the failure's stack."},
     "defaultConfiguration": {"level": "error"}},
    {"id": "tracefix/suspect", "name": "SuspiciousCode",
     "shortDescription": {"text": "Code the failing tests point at"},
     "fullDescription": {"text": "A function or statement ranked by spectrum-based fault localization: run "
                                 "by failing tests more than by passing ones. The score is in the result's "
                                 "properties (suspiciousness, rank, formula)."},
     "defaultConfiguration": {"level": "warning"}},
    {"id": "tracefix/fix", "name": "ValidatedFix",
     "shortDescription": {"text": "A validated fix"},
     "fullDescription": {"text": "An edit with which the failing tests pass and every test that passed "
                                 "before still passes; the result's fixes entry holds it."},
     "defaultConfiguration": {"level": "note"}},
)
RULE_INDEX = {rule["id"]: i for i, rule in enumerate(RULES)}

# Scores of these formulas lie in [0, 1], so score * 100 is a SARIF rank as it is; DStar's
# grow with the number of failing tests, so its ranks are relative to the best suspect.
BOUNDED_FORMULAS = ("ochiai", "tarantula")

# The repair strategies rank their suspects with locate's default formula.
FIX_FORMULA = "ochiai"


def locate_log(root: Path, loc: Localization, version: str) -> dict:
    """The SARIF log of `tracefix locate`: failing tests, then suspect functions and lines."""
    root = Path(root)
    results = failing_test_results(root, loc.outcomes)
    results += suspect_results(root, loc.functions, loc.formula)
    results += suspect_results(root, loc.lines, loc.formula)
    properties = {"command": "locate", "formula": loc.formula, "failing": loc.failing, "passing": loc.passing,
                  "collector": loc.collector}
    return sarif_log(root, results, version, properties)


def fix_log(root: Path, report, version: str) -> dict:
    """The SARIF log of `tracefix fix` (a repair.records.FixReport): failing tests, suspect
    functions and, when a fix was validated, its result with the fix attached."""
    root = Path(root)
    results = failing_test_results(root, report.outcomes)
    results += suspect_results(root, report.suspects, FIX_FORMULA)
    fixed = fix_result(root, report)
    if fixed is not None:
        results.append(fixed)
    properties = {"command": "fix", "status": report.status, "failing": len(report.failing),
                  "applied": list(report.applied)}
    return sarif_log(root, results, version, properties)


def sarif_log(root: Path, results: list[dict], version: str, properties: dict) -> dict:
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "tracefix", "version": version, "rules": list(RULES)}},
            # A consumer that does not know %SRCROOT% (GitHub takes the repository's root) can
            # resolve the relative paths against the folder tracefix ran on.
            "originalUriBaseIds": {SRCROOT: {"uri": Path(root).resolve().as_uri().rstrip("/") + "/"}},
            "columnKind": "utf16CodeUnits",
            "results": results,
            "properties": properties,
        }],
    }


def dumps(log: dict) -> str:
    return json.dumps(log, indent=1, ensure_ascii=False) + "\n"


# --- results ------------------------------------------------------------------------------

def failing_test_results(root: Path, outcomes: Iterable) -> list[dict]:
    out = []
    for outcome in outcomes:
        for d in failure_diagnostics(root, [outcome]):
            out.append(_result("tracefix/failing-test", "error" if d.severity == "error" else "warning",
                               d.message, _location(d.path, {"startLine": d.line, "startColumn": d.column}),
                               _fingerprint("test", outcome.nodeid)))
    return out


def suspect_results(root: Path, suspects: Iterable[Suspect], formula: str) -> list[dict]:
    """A result per suspect, in rank order: a warning for the first of its kind, notes after."""
    suspects = list(suspects)
    best = max((s.score for s in suspects), default=0.0)
    texts: dict[str, list[str] | None] = {}
    seen: dict[tuple, int] = {}
    out = []
    for s, d in zip(suspects, suspect_diagnostics(root, suspects, formula)):
        region = {"startLine": d.line, "startColumn": d.column, "endLine": max(s.end_line, d.line)}
        # A line is known by its statement's text within its function (the nth such statement),
        # a function or block by its name: neither moves when code above it changes.
        what = _source_line(root, s.path, s.line, texts) if s.kind == "line" else str(s.block or "")
        key = (s.kind, s.path, s.qualname, what)
        seen[key] = seen.get(key, 0) + 1
        result = _result("tracefix/suspect", "warning" if s.rank == 1 else "note", d.message,
                         _location(s.path, region, s.qualname), _fingerprint(*key, str(seen[key])))
        result["rank"] = _rank(s.score, formula, best)
        result["properties"] = {"kind": s.kind, "suspiciousness": round(s.score, 4), "rank": s.rank,
                                "formula": formula, "failingCovering": s.failing_covering,
                                "passingCovering": s.passing_covering}
        out.append(result)
    return out


def fix_result(root: Path, report) -> dict | None:
    """The validated fix as a result at the fixed function, with the edit as its `fixes`; None
    without one."""
    accepted = [c.function for c in report.candidates if c.outcome is not None and c.outcome.accepted]
    replacements = replacements_in(report.diff)
    if report.status != "fixed" or not accepted or not replacements:
        return None
    key = accepted[-1]
    path, _, qualname = key.partition("::")
    suspect = next((s for s in report.suspects if s.function == key), None)
    if suspect is not None:  # located before the fix: lines of the file as it was
        region = {"startLine": suspect.line, "endLine": max(suspect.end_line, suspect.line)}
    else:
        first = next((r for r in replacements if r.path == path), replacements[0])
        path, region = first.path, {"startLine": max(first.start, 1)}
    message = (f"validated fix for {qualname or path}: the failing tests pass with it and no passing test "
               f"breaks{' (written by --apply)' if report.applied else ''}")
    result = _result("tracefix/fix", "note", message, _location(path, region, qualname),
                     _fingerprint("fix", path, qualname))
    changes = []
    for changed in dict.fromkeys(r.path for r in replacements):
        changes.append({"artifactLocation": _artifact(changed),
                        "replacements": [_replacement(r) for r in replacements if r.path == changed]})
    result["fixes"] = [{"description": {"text": f"the validated fix for {qualname or path}"},
                        "artifactChanges": changes}]
    return result


def _result(rule: str, level: str, message: str, location: dict, fingerprint: str) -> dict:
    return {"ruleId": rule, "ruleIndex": RULE_INDEX[rule], "level": level, "message": {"text": message},
            "locations": [location], "partialFingerprints": {FINGERPRINT: fingerprint}}


def _location(path: str, region: dict, qualname: str = "") -> dict:
    location = {"physicalLocation": {"artifactLocation": _artifact(path), "region": region}}
    if qualname:
        location["logicalLocations"] = [{"fullyQualifiedName": qualname, "kind": "function"}]
    return location


def _artifact(path: str) -> dict:
    # uri is a URI reference: a space or a '#' in a file name must be escaped, '/' stays
    return {"uri": quote(path.replace("\\", "/")), "uriBaseId": SRCROOT}


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:32]


def _rank(score: float, formula: str, best: float) -> float:
    if formula in BOUNDED_FORMULAS:
        return round(100 * min(max(score, 0.0), 1.0), 2)
    return round(100 * score / best, 2) if best > 0 else 0.0


def _source_line(root: Path, path: str, line: int, texts: dict) -> str:
    if path not in texts:
        try:
            texts[path] = (root / path).read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError):
            texts[path] = None
    lines = texts[path]
    return " ".join(lines[line - 1].split()) if lines and 1 <= line <= len(lines) else ""


# --- the fix as replacements -----------------------------------------------------------------

def _replacement(r: Replacement) -> dict:
    replacement: dict = {"deletedRegion": deleted_region(r)}
    if r.new:
        replacement["insertedContent"] = {"text": r.new}
    return replacement


def deleted_region(r: Replacement) -> dict:
    """The old lines as a SARIF region, line ends included; empty (an insertion point) for none.

    Whole lines end at column 1 of the next line; the file's last line, when it has no end,
    at its last character (columns count UTF-16 code units, run.columnKind).
    """
    start = max(r.start, 1)
    if r.old and not r.old[-1].endswith("\n"):
        end_line, end_column = start + len(r.old) - 1, len(r.old[-1].encode("utf-16-le")) // 2 + 1
    else:
        end_line, end_column = start + len(r.old), 1
    return {"startLine": start, "startColumn": 1, "endLine": end_line, "endColumn": end_column}
