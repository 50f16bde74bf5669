"""Diagnostics lines, the VS Code tasks and their problem matcher, `tracefix config`, and the
global terminal options: checked against real runs on the fixtures."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from conftest import run_cli
from tracefix.cli.diagnostics import (LINE_PATTERN, diagnostic_lines, failing_test_line, fix_diagnostic, parse_line,
                                  suspect_diagnostics)
from tracefix.cli.integrations import strip_jsonc, tasks_json
from tracefix.tracer.localize import locate
from tracefix.tracer import runner


def python_regex(vscode_regexp: str) -> re.Pattern:
    """VS Code's (JavaScript) regexp as Python reads it: named groups are the one difference
    that could appear in a matcher pattern."""
    return re.compile(re.sub(r"\(\?<([A-Za-z_]\w*)>", r"(?P<\1>", vscode_regexp))


def matcher_read(matcher: dict, line: str, root: Path) -> dict | None:
    """What VS Code's problem matcher takes from one output line: None when it does not match."""
    pattern = matcher["pattern"]
    match = python_regex(pattern["regexp"]).match(line)
    if not match:
        return None
    kind, base = matcher["fileLocation"]
    assert kind == "relative" and base == "${workspaceFolder}"
    return {"file": root / match.group(pattern["file"]), "line": int(match.group(pattern["line"])),
            "column": int(match.group(pattern["column"])), "severity": match.group(pattern["severity"]),
            "message": match.group(pattern["message"])}


def source_line(root: Path, path: str, line: int) -> str:
    return (root / path).read_text().splitlines()[line - 1]


# --- diagnostics from real runs ---------------------------------------------------------------------


def test_trace_diagnostics_point_at_the_failing_assertions(fixture_copy):
    root = fixture_copy("cart")
    result = run_cli("trace", str(root), "--format", "diagnostics")
    assert result.returncode == 1, result.stderr
    found = [parse_line(line) for line in result.stdout.splitlines()]
    assert all(found), result.stdout  # every stdout line is a diagnostic, nothing else
    assert [(d.path, d.line, d.column, d.severity) for d in found] == [
        ("tests/test_cart.py", 14, 5, "error"), ("tests/test_cart.py", 18, 5, "error")]
    assert source_line(root, "tests/test_cart.py", 18).strip() == "assert sale_price(1000, 25) == 750"
    assert found[1].message.startswith("tests/test_cart.py::test_sale_price failed: AssertionError: assert 0 == 750")


def test_trace_diagnostics_mark_where_recorded_code_raised(fixture_copy):
    root = fixture_copy("bank")
    (root / "tests" / "test_zero.py").write_text(
        "from bank.account import Account\n\n\ndef test_zero_deposit():\n    Account('x').deposit(0)\n")
    result = run_cli("trace", str(root), "tests/test_zero.py", "--format", "diagnostics")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        "tests/test_zero.py:5:5: error: tests/test_zero.py::test_zero_deposit failed: "
        "ValueError: deposit must be positive",
        "bank/account.py:16:13: error: ValueError: deposit must be positive raised in Account.deposit "
        "(tests/test_zero.py::test_zero_deposit)",
    ]
    assert source_line(root, "bank/account.py", 16).strip().startswith("raise ValueError")


def test_diagnostics_output_is_empty_when_nothing_fails(fixture_copy):
    root = fixture_copy("average")
    summary = root / "stats" / "summary.py"
    summary.write_text(summary.read_text().replace("(len(values) + 1)", "len(values)"))
    result = run_cli("trace", str(root), "--format", "diagnostics")
    assert result.returncode == 0 and result.stdout == ""


def test_suspects_are_warnings_at_the_suspect_lines(fixture_copy):
    root = fixture_copy("cart")
    loc = locate(root)
    found = suspect_diagnostics(root, loc.lines[:3], loc.formula)
    assert (found[0].path, found[0].line, found[0].severity) == ("shop/pricing.py", 8, "warning")
    assert source_line(root, "shop/pricing.py", 8).strip() == "cut = price * percent // 10"
    assert found[0].message == ("suspect #1: line in apply_discount (ochiai 1.000; run by 2 failing, "
                                "0 passing tests)")
    functions = suspect_diagnostics(root, loc.functions[:1])
    assert str(functions[0]).startswith("shop/pricing.py:4:1: warning: suspect #1: apply_discount (score 1.000;")
    blocks = suspect_diagnostics(root, loc.blocks[:1], "ochiai")
    assert "block 2 of apply_discount" in blocks[0].message
    # The whole localization in one call: failures first, then suspects, each read back whole.
    lines = diagnostic_lines(root, outcomes=loc.outcomes, suspects=loc.lines[:3], formula=loc.formula)
    assert [parse_line(l).severity for l in lines] == ["error", "error", "warning", "warning", "warning"]


def test_validated_fix_is_info_at_the_def_line_of_the_new_text(fixture_copy):
    root = fixture_copy("cart")
    edited = {"shop/pricing.py": "# moved\n\n" + (root / "shop/pricing.py").read_text().replace("// 10", "// 100")}
    on_disk = fix_diagnostic(root, "shop/pricing.py::apply_discount")
    in_edit = fix_diagnostic(root, "shop/pricing.py::apply_discount", edited)
    assert (on_disk.line, in_edit.line, in_edit.column, in_edit.severity) == (4, 6, 1, "info")
    assert "validated fix for apply_discount" in in_edit.message
    assert fix_diagnostic(root, "shop/pricing.py::no_such_function") is None
    assert fix_diagnostic(root, "shop/missing.py::f") is None
    lines = diagnostic_lines(root, fixed=["shop/pricing.py::apply_discount"], edited=edited)
    assert lines == [str(in_edit)]


# --- diagnostics: the line chosen, the message kept on one line -----------------------------------------


def outcome(nodeid, frames=(), message="AssertionError: assert 1 == 2", status="failed"):
    return runner.TestOutcome(nodeid, status, message, frames=tuple(frames))


def test_failure_line_is_the_tests_own_frame_not_the_innermost():
    frames = [("tests/test_a.py", 10, "test_x"), ("pkg/mod.py", 3, "helper")]
    assert failing_test_line(outcome("tests/test_a.py::test_x", frames)) == ("tests/test_a.py", 10)


def test_failure_line_of_parametrized_and_class_tests():
    frames = [("tests/test_a.py", 7, "test_m"), ("pkg/mod.py", 3, "helper")]
    assert failing_test_line(outcome("tests/test_a.py::TestA::test_m[1-2]", frames)) == ("tests/test_a.py", 7)


def test_failure_in_a_fixture_points_into_the_tests_then_anywhere_then_line_one():
    in_conftest = [("tests/conftest.py", 5, "db"), ("pkg/db.py", 9, "connect")]
    assert failing_test_line(outcome("tests/test_a.py::test_x", in_conftest)) == ("pkg/db.py", 9)
    in_file = [("tests/test_a.py", 4, "db"), ("pkg/db.py", 9, "connect")]
    assert failing_test_line(outcome("tests/test_a.py::test_x", in_file)) == ("tests/test_a.py", 4)
    assert failing_test_line(outcome("tests/test_a.py::test_x")) == ("tests/test_a.py", 1)


def test_messages_are_one_bounded_line_and_passing_tests_say_nothing(tmp_path):
    long = "AssertionError: assert [\n" + "\n".join(f"  {i}," for i in range(500)) + "\n]"
    lines = diagnostic_lines(tmp_path, outcomes=[outcome("t.py::test_a", message=long),
                                                 outcome("t.py::test_b", status="passed")])
    (line,) = lines
    assert "\n" not in line and len(line) < 500 and line.endswith("...")
    assert parse_line(line).column == 1  # unreadable file: column 1


def test_line_pattern_keeps_colons_in_the_message_and_rejects_other_lines():
    d = parse_line("pkg/a.py:3:5: error: x.py:1:2: error: nested")
    assert (d.path, d.line, d.message) == ("pkg/a.py", 3, "x.py:1:2: error: nested")
    for other in ("tracefix: 2 of 4 tests fail", "pkg/a.py:3: error: no column", "a.py:1:1: fatal: x"):
        assert parse_line(other) is None
    assert python_regex(LINE_PATTERN).pattern == LINE_PATTERN


# --- VS Code tasks ------------------------------------------------------------------------------------


def test_vscode_tasks_problem_matcher_reads_real_tracefix_output(fixture_copy):
    root = fixture_copy("bank")
    (root / "tests" / "test_zero.py").write_text(
        "from bank.account import Account\n\n\ndef test_zero_deposit():\n    Account('x').deposit(0)\n")
    result = run_cli("vscode", str(root))
    assert result.returncode == 0, result.stderr
    tasks = json.loads((root / ".vscode" / "tasks.json").read_text())
    by_label = {t["label"]: t for t in tasks["tasks"]}
    assert set(by_label) == {"tracefix: locate", "tracefix: fix", "tracefix: trace"}
    for name, task in by_label.items():
        assert task["command"] == "tracefix"
        assert task["args"] == [name.split(": ")[1], "${workspaceFolder}", "--format", "diagnostics"]
        assert task["problemMatcher"]["owner"] == "tracefix"
    # Run the trace task as VS Code would (variables substituted), read its output with the matcher.
    task = by_label["tracefix: trace"]
    args = [a.replace("${workspaceFolder}", str(root)) for a in task["args"]]
    run = run_cli(*args, cwd=root)
    assert run.returncode == 1, run.stderr
    read = [matcher_read(task["problemMatcher"], line, root) for line in run.stdout.splitlines()]
    assert read and all(read), run.stdout
    for problem in read:
        assert problem["file"].is_file() and problem["severity"] in ("error", "warning", "info")
        text = problem["file"].read_text().splitlines()[problem["line"] - 1]
        assert text[problem["column"] - 1:].strip() and not text[: problem["column"] - 1].strip()
    assert {(p["file"].name, p["line"]) for p in read} == {("test_account.py", 14), ("test_zero.py", 5),
                                                          ("account.py", 16)}


def test_vscode_merge_keeps_user_tasks_and_replaces_tracefixs(fixture_copy):
    root = fixture_copy("average")
    (root / ".vscode").mkdir()
    mine = {"label": "build docs", "type": "shell", "command": "make docs"}
    stale = {"label": "tracefix: locate", "type": "shell", "command": "old-tracefix"}
    (root / ".vscode" / "tasks.json").write_text(json.dumps(
        {"version": "2.0.0", "tasks": [mine, stale], "inputs": [{"id": "x", "type": "promptString"}]}))
    result = run_cli("vscode", str(root), "--command", ".venv/bin/tracefix")
    assert result.returncode == 0, result.stderr
    assert "1 other tasks kept" in result.stdout and "replaced" in result.stdout
    data = json.loads((root / ".vscode" / "tasks.json").read_text())
    assert data["tasks"][0] == mine
    assert data["inputs"] == [{"id": "x", "type": "promptString"}]
    ours = [t for t in data["tasks"] if t["label"].startswith("tracefix: ")]
    assert len(ours) == 3 and {t["command"] for t in ours} == {".venv/bin/tracefix"}
    again = run_cli("vscode", str(root), "--command", ".venv/bin/tracefix")
    assert again.returncode == 0 and "unchanged" in again.stdout
    assert not (root / ".vscode" / "tasks.json.bak").exists()


def test_vscode_reads_comments_and_trailing_commas_and_keeps_a_copy(fixture_copy):
    root = fixture_copy("average")
    (root / ".vscode").mkdir()
    original = textwrap.dedent("""\
        // See https://go.microsoft.com/fwlink/?LinkId=733558
        // for the documentation about the tasks.json format
        {
            "version": "2.0.0",
            /* my tasks */
            "tasks": [
                {
                    "label": "echo // not a comment",
                    "type": "shell",
                    "command": "echo \\"/* still a string */\\"",  // a comment
                },
            ],
        }
        """)
    (root / ".vscode" / "tasks.json").write_text(original)
    result = run_cli("vscode", str(root))
    assert result.returncode == 0, result.stderr
    assert "comments" in result.stderr and "tasks.json.bak" in result.stderr
    data = json.loads((root / ".vscode" / "tasks.json").read_text())
    assert data["tasks"][0] == {"label": "echo // not a comment", "type": "shell",
                                "command": 'echo "/* still a string */"'}
    assert (root / ".vscode" / "tasks.json.bak").read_text() == original


def test_vscode_refuses_a_broken_tasks_file_unless_forced(fixture_copy):
    root = fixture_copy("average")
    (root / ".vscode").mkdir()
    target = root / ".vscode" / "tasks.json"
    target.write_text('{"version": "2.0.0", "tasks": [ {"label": "x" ]}')
    result = run_cli("vscode", str(root))
    assert result.returncode == 2
    assert "not valid JSON" in result.stderr and "--force" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert target.read_text() == '{"version": "2.0.0", "tasks": [ {"label": "x" ]}'
    forced = run_cli("vscode", str(root), "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(json.loads(target.read_text())["tasks"]) == 3


def test_tasks_file_of_the_wrong_shape_is_refused():
    from tracefix.errors import UserError

    with pytest.raises(UserError, match="not a tasks file"):
        tasks_json('{"tasks": {"label": "x"}}')
    with pytest.raises(UserError, match="not a tasks file"):
        tasks_json("[1, 2]")
    assert json.loads(tasks_json("").text)["version"] == "2.0.0"


def test_strip_jsonc_leaves_strings_alone():
    text = '{"a": "x // y", "b": "q\\" /* z */", /* c */ "c": [1, 2,], // d\n "e": "http://e",}'
    assert json.loads(strip_jsonc(text)) == {"a": "x // y", "b": 'q" /* z */', "c": [1, 2], "e": "http://e"}
    assert strip_jsonc('{"a": 1}') == '{"a": 1}'
    assert strip_jsonc('{"a": [1 , ]}') == '{"a": [1   ]}'


# --- tracefix config --------------------------------------------------------------------------------


def test_config_says_where_every_value_came_from(fixture_copy):
    root = fixture_copy("average")
    with open(root / "pyproject.toml", "a") as f:
        f.write('\n[tool.tracefix]\nmodel = "openai/gpt-4o-mini"\nmax-iters = 3\npytest_args = ["-x"]\n')
    env = {"TRACEFIX_TEMPERATURE": "0.5", "TRACEFIX_MAX_ITERS": "4"}
    result = run_cli("config", str(root), "--set", "candidates=2", "--set", "max_iters=6", "--format", "json",
                     env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema"] == "tracefix.config/1" and data["pyproject"] == str(root / "pyproject.toml")
    settings = data["settings"]
    assert settings["model"] == {"value": "openai/gpt-4o-mini", "source": "pyproject.toml"}
    assert settings["pytest_args"] == {"value": ["-x"], "source": "pyproject.toml"}
    assert settings["temperature"] == {"value": 0.5, "source": "env TRACEFIX_TEMPERATURE"}
    assert settings["max_iters"] == {"value": 6, "source": "flag"}
    assert settings["candidates"] == {"value": 2, "source": "flag"}
    assert settings["retries"] == {"value": 2, "source": "default"}
    assert settings["cache_dir"]["value"] == str(root / ".tracefix" / "cache")
    text = run_cli("config", str(root), env=env)
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line.split() for line in text.stdout.splitlines()[2:] if line.strip()}
    assert rows["model"][1:] == ['"openai/gpt-4o-mini"', "pyproject.toml"]
    assert rows["max_iters"][1:] == ["4", "env", "TRACEFIX_MAX_ITERS"]
    assert rows["temperature"][1:] == ["0.5", "env", "TRACEFIX_TEMPERATURE"]
    assert rows["cost_budget"][1:] == ["none", "default"]
    assert len(rows) == len(settings)


def test_config_warns_about_unknown_keys_on_stderr(fixture_copy):
    root = fixture_copy("average")
    with open(root / "pyproject.toml", "a") as f:
        f.write('\n[tool.tracefix]\nmodle = "x"\n')
    result = run_cli("config", str(root), "--format", "json")
    assert result.returncode == 0
    assert "unknown key 'modle'" in result.stderr and "did you mean 'model'" in result.stderr
    assert json.loads(result.stdout)["warnings"] == [result.stderr.strip().removeprefix("warning: ")]
    quiet = run_cli("--quiet", "config", str(root))
    assert quiet.returncode == 0 and quiet.stderr == "" and "model" in quiet.stdout


def test_config_rejects_unknown_and_ill_typed_settings(fixture_copy):
    root = fixture_copy("average")
    unknown = run_cli("config", str(root), "--set", "max_iter=3")
    assert unknown.returncode == 2 and "unknown setting 'max_iter'" in unknown.stderr
    assert "did you mean 'max_iters'" in unknown.stderr
    shapeless = run_cli("config", str(root), "--set", "max_iters")
    assert shapeless.returncode == 2 and "KEY=VALUE" in shapeless.stderr
    typed = run_cli("config", str(root), env={"TRACEFIX_MAX_ITERS": "many"})
    assert typed.returncode == 2 and "TRACEFIX_MAX_ITERS must be an integer" in typed.stderr
    assert "Traceback" not in typed.stderr
    missing = run_cli("config", str(root / "nope"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr


# --- terminal options ---------------------------------------------------------------------------------


def test_quiet_and_verbose(fixture_copy):
    root = fixture_copy("average")
    both = run_cli("--quiet", "--verbose", "config", str(root))
    assert both.returncode == 2 and "contradict" in both.stderr
    verbose = run_cli("-v", "config", str(root))
    assert verbose.returncode == 0 and "TRACEFIX_MODEL" in verbose.stdout


def test_no_color_and_no_spinner_when_not_a_terminal(fixture_copy):
    root = fixture_copy("cart")
    result = run_cli("hook", str(root))  # run_cli sets NO_COLOR; stderr is a pipe
    assert result.returncode == 1
    assert "\x1b[" not in result.stdout + result.stderr
    assert "running the tests" not in result.stderr
