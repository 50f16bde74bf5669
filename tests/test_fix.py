"""`tracefix fix` end to end with canned model answers (litellm's mock_response, offline)."""

from __future__ import annotations

import hashlib
import json
import subprocess

from conftest import mocks, run_cli
from tracefix.repair.traced import VERDICT_TOKENS

MODEL = ["--model", "openai/mock-model", "--cache", "off"]

GOOD_MEAN = '''Here is the fix:
```python
def mean(values):
    """Arithmetic mean of a non-empty list of numbers."""
    total = 0
    for v in values:
        total += v
    return total / len(values)
```'''

VERDICTS_MEAN = json.dumps([
    {"block": 0, "correct": True, "explanation": "starts the sum at zero"},
    {"block": 3, "correct": False, "explanation": "divides by len(values) + 1 instead of len(values)"},
])


def tree_digest(root) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".tracefix" not in p.parts}


def test_correct_fix_is_validated_and_printed_as_a_diff(fixture_copy):
    root = fixture_copy("average")
    before = tree_digest(root)
    result = run_cli("fix", str(root), *MODEL, env=mocks(VERDICTS_MEAN, GOOD_MEAN))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("diff --git a/stats/summary.py b/stats/summary.py")
    assert "-    return total / (len(values) + 1)" in result.stdout
    assert "+    return total / len(values)" in result.stdout
    assert "validated fix" in result.stderr and "divides by len(values) + 1" in result.stderr
    # the user's tree is untouched without --apply
    assert tree_digest(root) == before
    # and the diff applies as is
    check = subprocess.run(["git", "apply", "--check", "-"], input=result.stdout, cwd=root, text=True,
                           capture_output=True)
    assert check.returncode == 0, check.stderr


def test_fix_that_breaks_a_passing_test_is_rejected(fixture_copy):
    root = fixture_copy("bank")
    breaking = '''```python
def withdraw(self, amount):
    if amount >= self.balance:
        raise InsufficientFunds(f"{self.owner} has {self.balance}, needs {amount}")
    self.balance -= amount
    self.history.append(("withdraw", amount))
    return self.balance
```'''
    verdicts = '[{"block": 0, "correct": false, "explanation": "allows an overdraft of one"}]'
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "1", env=mocks(verdicts, breaking),
                     timeout=180)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "breaks 1 that passed: tests/test_account.py::test_deposit_then_withdraw" in result.stderr


def test_method_fix_is_accepted(fixture_copy):
    root = fixture_copy("bank")
    good = '''```python
def withdraw(self, amount):
    if amount > self.balance:
        raise InsufficientFunds(f"{self.owner} has {self.balance}, needs {amount}")
    self.balance -= amount
    self.history.append(("withdraw", amount))
    return self.balance
```'''
    result = run_cli("fix", str(root), *MODEL, env=mocks("[]", "[]", good), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "-        if amount > self.balance + 1:" in result.stdout
    assert "+        if amount > self.balance:" in result.stdout
    assert "malformed verdicts twice" in result.stderr


def test_an_answer_without_code_is_followed_up_once_and_verdicts_get_a_short_answer_limit(fixture_copy, tmp_path):
    root = fixture_copy("average")
    log = tmp_path / "log.jsonl"
    answers = mocks(VERDICTS_MEAN, "The bug is the division by len(values) + 1.", GOOD_MEAN)
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "1", env={**answers, "TRACEFIX_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stderr
    assert "+    return total / len(values)" in result.stdout
    rows = [json.loads(line) for line in log.read_text().splitlines() if "response" in json.loads(line)]
    assert [r["purpose"] for r in rows] == ["verdicts", "patch", "patch-code"]
    assert "no usable code" in rows[2]["messages"][-1]["content"]
    blocks = rows[0]["messages"][-1]["content"].split("Blocks to judge: ")[1].count(",") + 1
    assert rows[0]["max_tokens"] == VERDICT_TOKENS[0] + VERDICT_TOKENS[1] * blocks
    assert rows[1]["max_tokens"] > rows[0]["max_tokens"]


def test_a_rejected_answer_comes_back_as_its_code_not_its_prose(fixture_copy, tmp_path):
    root = fixture_copy("average")
    log = tmp_path / "log.jsonl"
    unchanged = ("The bug is in the loop.\n```python\ndef mean(values):\n"
                 "    \"\"\"Arithmetic mean of a non-empty list of numbers.\"\"\"\n    total = 0\n"
                 "    for v in values:\n        total += v\n    return total / (len(values) + 1)\n```")
    answers = mocks(VERDICTS_MEAN, unchanged, VERDICTS_MEAN, GOOD_MEAN)
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "2", env={**answers, "TRACEFIX_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stderr
    prompts = [json.loads(line)["messages"][-1]["content"] for line in log.read_text().splitlines()
               if json.loads(line).get("purpose") == "patch" and "response" in json.loads(line)]
    shown = prompts[1].split("## A previous attempt that was rejected")[1].split("## Task")[0]
    assert shown.startswith("\n```python\ndef mean(values):")  # one fence, the code alone
    assert "The bug is in the loop." not in shown and "repeats the original code unchanged" in shown


def test_garbage_answers_give_no_fix(fixture_copy):
    root = fixture_copy("average")
    answers = [
        # an answer without usable code is followed up once, asking for just the code
        VERDICTS_MEAN, "", "",  # empty answer, twice
        VERDICTS_MEAN, "I think the bug is in the division.", "Still the division.",  # prose, no code
        VERDICTS_MEAN, *["```python\ndef mean(values):\n    return total /\n```"] * 2,  # syntax error, twice
        VERDICTS_MEAN, "```python\ndef average(values):\n    return 0\n```",  # renamed function
        VERDICTS_MEAN, "```python\ndef mean(values, extra):\n    return 0\n```",  # changed signature
    ]
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "5", env=mocks(*answers), timeout=180)
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert "no validated fix after 5 candidates" in err
    assert err.count("rejected") == 5
    assert "syntax" in err.lower() or "line 2" in err


def test_unchanged_code_is_rejected_without_running_tests(fixture_copy):
    root = fixture_copy("average")
    original = "```python\n" + (root / "stats" / "summary.py").read_text().split("\n\n\n")[1] + "\n```"
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "1", env=mocks(VERDICTS_MEAN, original))
    assert result.returncode == 1
    assert "repeats the original code unchanged" in result.stderr


def test_model_timeout_is_one_line_error(fixture_copy):
    root = fixture_copy("average")
    env = {**mocks("litellm.Timeout"), "TRACEFIX_REQUEST_TIMEOUT": "0.01", "TRACEFIX_RETRIES": "0"}
    result = run_cli("fix", str(root), *MODEL, env=env)
    assert result.returncode == 2
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_model_configured_is_an_error_for_a_model_strategy(fixture_copy):
    root = fixture_copy("average")
    result = run_cli("fix", str(root), "--strategy", "auto", env={"TRACEFIX_MODEL": ""})
    assert result.returncode == 2
    assert "no model configured" in result.stderr


def test_the_default_portfolio_fixes_without_a_model_what_a_mutant_fixes(fixture_copy):
    root = fixture_copy("average")
    before = (root / "stats/summary.py").read_text()
    result = run_cli("fix", str(root), env={"TRACEFIX_MODEL": ""})
    assert result.returncode == 0, result.stderr
    assert "+    return total / len(values)" in result.stdout  # the clean edit, not `* 1` or `+ 0`
    assert "fixed without a model call" in result.stderr
    assert (root / "stats/summary.py").read_text() == before


def test_without_a_model_the_default_portfolio_names_what_it_skipped(fixture_copy, tmp_path):
    root = fixture_copy("average")
    # no mutant fixes a mean that is off by a factor: the model stages were needed
    (root / "stats/summary.py").write_text((root / "stats/summary.py").read_text().replace(
        "return total / (len(values) + 1)", "return total / len(values) * 0.5 + total / len(values) * 0.25"))
    result = run_cli("fix", str(root), env={"TRACEFIX_MODEL": ""})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "baseline skipped: no model configured" in result.stderr
    assert "auto skipped: no model configured" in result.stderr


def test_nothing_to_fix_when_tests_pass(fixture_copy):
    root = fixture_copy("average")
    path = root / "stats" / "summary.py"
    path.write_text(path.read_text().replace("(len(values) + 1)", "len(values)"))
    # A usable model (here: mocked) is checked before the tests run; none is asked.
    result = run_cli("fix", str(root), *MODEL, env=mocks())
    assert result.returncode == 0
    assert "nothing to fix" in result.stdout


def _git_repo(root):
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=root, check=True)


def test_apply_writes_the_validated_patch(fixture_copy):
    root = fixture_copy("average")
    _git_repo(root)
    result = run_cli("fix", str(root), *MODEL, "--apply", env=mocks(VERDICTS_MEAN, GOOD_MEAN))
    assert result.returncode == 0, result.stderr
    assert "return total / len(values)" in (root / "stats" / "summary.py").read_text()
    after = subprocess.run([".venv-none"] if False else ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=root, capture_output=True, text=True)
    assert "3 passed" in after.stdout


def test_apply_refuses_a_dirty_file(fixture_copy):
    root = fixture_copy("average")
    _git_repo(root)
    path = root / "stats" / "summary.py"
    path.write_text(path.read_text() + "\n# local edit\n")
    dirty = path.read_bytes()
    result = run_cli("fix", str(root), *MODEL, "--apply", env=mocks(VERDICTS_MEAN, GOOD_MEAN))
    assert result.returncode == 2
    assert "uncommitted changes" in result.stderr
    assert path.read_bytes() == dirty


def test_recorded_real_model_answers_replay_offline(fixture_copy, tmp_path):
    """Answers Qwen2.5-Coder-1.5B gave on this fixture, replayed from disk: no server, no key."""
    import shutil

    from conftest import FIXTURES

    root = fixture_copy("average")
    cache = tmp_path / "recorded"
    shutil.copytree(FIXTURES / "recorded" / "average", cache)
    result = run_cli("fix", str(root), "--model", "openai/qwen2.5-coder-1.5b", "--cache", str(cache),
                     "--strategy", "auto", env={"OPENAI_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert "-    return total / (len(values) + 1)" in result.stdout
    assert "+    return total / len(values)" in result.stdout
    assert "#" not in result.stdout.split("+    return")[0].split("@@")[-1]  # no inline values copied into the patch
    # a fix answer without code and its follow-up: verdicts are off for a model named 1.5B
    assert "2 calls (2 cached)" in result.stderr and "verdicts off: a small model (1.5B" in result.stderr
    shutil.rmtree(root)
    root = fixture_copy("average")
    asked = run_cli("fix", str(root), "--model", "openai/qwen2.5-coder-1.5b", "--cache", str(cache),
                    "--strategy", "auto", "--verdicts", "on", env={"OPENAI_API_KEY": ""})
    assert asked.returncode == 0 and "3 calls (3 cached)" in asked.stderr  # the recorded verdicts too


def test_rejected_candidate_is_retraced_for_the_next_prompt(fixture_copy):
    """The second fix prompt shows how the first attempt ran (a log of the conversation)."""
    root = fixture_copy("average")
    wrong = "```python\ndef mean(values):\n    total = 1\n    for v in values:\n        total += v\n    return total / len(values)\n```"
    log = root.parent / "log.jsonl"
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "2", "--strategy", "flat",
                     env={**mocks(VERDICTS_MEAN, wrong, VERDICTS_MEAN, GOOD_MEAN), "TRACEFIX_LOG_PATH": str(log)},
                     timeout=240)
    assert result.returncode == 0, result.stderr
    prompts = [json.loads(line) for line in log.read_text().splitlines()]
    second_fix = [p for p in prompts if p.get("purpose") == "patch"][1]
    text = json.dumps(second_fix)
    assert "How the failing test ran on it" in text
    assert "total = 1" in text and "returned 2.3333333333333335" in text


def test_the_prompts_show_the_other_failing_tests_that_ran_the_function(fixture_copy, tmp_path):
    root = fixture_copy("average")
    log = tmp_path / "log.jsonl"
    result = run_cli("fix", str(root), *MODEL, "--max-iters", "1",
                     env={**mocks(VERDICTS_MEAN, GOOD_MEAN), "TRACEFIX_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in log.read_text().splitlines() if "response" in json.loads(line)]
    for row in rows:
        prompt = row["messages"][-1]["content"]
        traced = prompt.split("## Failing test ")[1].split("\n")[0]
        others = prompt.split("## Another failing test, ")[1:]
        assert len(others) == 1 and traced not in others[0]  # two tests fail on mean; test_spread passes
        assert "def test_mean_of_" in others[0] and "Error: AssertionError: assert" in others[0]
        assert "test_spread" not in prompt


def test_a_function_that_ran_as_one_block_gets_no_separate_verdict_call(tmp_path):
    (tmp_path / "calc.py").write_text('def double(x):\n    """Twice x."""\n    return x + 2\n')
    (tmp_path / "test_calc.py").write_text(
        "from calc import double\n\n\ndef test_double():\n    assert double(3) == 6\n")
    log = tmp_path / "log.jsonl"
    fixed = "```python\ndef double(x):\n    \"\"\"Twice x.\"\"\"\n    return x * 2\n```"
    result = run_cli("fix", str(tmp_path), *MODEL, "--format", "json",
                     env={**mocks(fixed), "TRACEFIX_LOG_PATH": str(log)})
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in log.read_text().splitlines() if "response" in json.loads(line)]
    assert [r["purpose"] for r in rows] == ["patch"]
    (judgment,) = json.loads(result.stdout)["judgments"]
    assert judgment["note"].startswith("one block ran")
