"""`tracefix hook` under the real pre-commit, in a git repository made from a fixture.

The hook runs as a `repo: local` hook with `language: system` and this environment's
tracefix: a `repo: <path to tracefix>` hook would make pre-commit pip-install tracefix and
its dependencies into a fresh virtualenv, which needs the network (litellm and libcst are in
no local index here). The local hook copies every other setting from .pre-commit-hooks.yaml.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from test_fix import tree_digest

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / ".pre-commit-hooks.yaml"
SUSPECT = "shop/pricing.py:8:5: warning: suspect #1: line in apply_discount"


def tracefix_entry() -> str:
    script = Path(sys.executable).with_name("tracefix")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tracefix"]
    return shlex.join([*command, "hook"])


def manifest_hook() -> dict:
    from pre_commit.clientlib import load_manifest

    (hook,) = load_manifest(str(MANIFEST))
    return hook


def git_project(fixture_copy, name: str = "cart") -> Path:
    root = fixture_copy(name)
    hook = manifest_hook()
    local = {key: hook[key] for key in ("id", "name", "pass_filenames", "require_serial", "always_run", "stages")}
    local.update(language="system", entry=tracefix_entry())
    # JSON is YAML: no YAML writer needed.
    (root / ".pre-commit-config.yaml").write_text(json.dumps({"repos": [{"repo": "local", "hooks": [local]}]},
                                                             indent=1))
    git(root, "init", "-q")
    git(root, "add", "-A")
    return root


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=root, capture_output=True,
                            text=True, env=dict(os.environ, GIT_CONFIG_NOSYSTEM="1"), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def pre_commit(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_HOME=str(root.parent / "pre-commit-home"), NO_COLOR="1",
               GIT_CONFIG_NOSYSTEM="1", PRE_COMMIT_COLOR="never")
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_manifest_declares_a_pre_push_hook_pre_commit_accepts():
    result = subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", str(MANIFEST)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    hook = manifest_hook()
    assert (hook["id"], hook["entry"], hook["language"]) == ("tracefix", "tracefix hook", "python")
    assert hook["pass_filenames"] is False and hook["require_serial"] is True and hook["always_run"] is True
    assert hook["stages"] == ["pre-push", "manual"]


def test_pre_commit_hook_fails_on_the_bug_with_the_suspect_then_passes_once_fixed(fixture_copy):
    root = git_project(fixture_copy)
    failed = pre_commit(root, "--hook-stage", "manual", "--all-files")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    out = failed.stdout
    assert "Failed" in out and "- hook id: tracefix" in out
    assert "tracefix: 2 of 4 tests fail" in out
    assert "tests/test_cart.py:18:5: error: tests/test_cart.py::test_sale_price failed" in out
    assert SUSPECT in out
    assert not [line for line in git(root, "status", "--porcelain").splitlines() if not line.startswith("A ")], \
        "the hook wrote into the repository"

    # Not a per-commit hook: the default stage does not run the tests.
    commit_stage = pre_commit(root, "--all-files")
    assert commit_stage.returncode == 0 and "tracefix" not in commit_stage.stdout

    pricing = root / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text().replace("percent // 10", "percent // 100"))
    passed = pre_commit(root, "--hook-stage", "manual", "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout and "suspect" not in passed.stdout


def test_hook_passes_with_one_line_and_is_silent_with_quiet(fixture_copy):
    root = fixture_copy("average")
    summary = root / "stats" / "summary.py"
    summary.write_text(summary.read_text().replace("(len(values) + 1)", "len(values)"))
    result = run_cli("hook", str(root))
    assert (result.returncode, result.stdout) == (0, "tracefix: all 3 tests pass\n")
    quiet = run_cli("--quiet", "hook", str(root))
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")


def test_hook_errors_are_one_line_exit_2(tmp_path):
    result = run_cli("hook", str(tmp_path / "nope"))
    assert result.returncode == 2 and "no such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_hook_without_a_model_proposes_what_the_mutation_search_finds_and_writes_nothing(fixture_copy):
    pytest.importorskip("tracefix.repair.fix")
    no_model = {"TRACEFIX_MODEL": ""}
    root = fixture_copy("average")  # `len(values) + 1` -> `len(values)`: one mutant away
    before = tree_digest(root)
    found = run_cli("hook", str(root), env=no_model, timeout=300)
    assert found.returncode == 1, found.stderr
    assert "proposed fix, validated by the tests and NOT written" in found.stdout
    assert "+    return total / len(values)\n" in found.stdout
    assert tree_digest(root) == before
    # no edit of the search's kinds fixes the cart: said, with what a model would add
    cart = run_cli("hook", str(fixture_copy("cart")), env=no_model, timeout=300)
    assert cart.returncode == 1 and "tracefix: no validated fix (" in cart.stdout
    assert "no model configured: set model in [tool.tracefix]" in cart.stdout
    # a strategy with no model-free stage: the suspects alone, as before
    only_model = run_cli("hook", str(root), env={**no_model, "TRACEFIX_STRATEGY": "baseline"}, timeout=300)
    assert only_model.returncode == 1 and "most suspicious" in only_model.stdout
    assert "validated fix" not in only_model.stdout and "proposed fix" not in only_model.stdout


# --- with a model configured: the fix is shown, written only with apply = true ---------------------

VERDICTS = '[{"block": 2, "correct": false, "explanation": "divides by ten, not a hundred"}]'
FIXED = ('```python\ndef apply_discount(price, percent):\n    """Price after taking `percent` percent off, rounded '
         'down to a whole cent."""\n    if percent <= 0:\n        return price\n    cut = price * percent // 100\n'
         '    return max(price - cut, 0)\n```')


def configure_mock_model(root: Path, apply: bool) -> None:
    # JSON strings are TOML basic strings: the newlines in the answers survive. The flat
    # strategy asks exactly one verdict and one fix: the two canned answers.
    with open(root / "pyproject.toml", "a") as f:
        f.write(f'\n[tool.tracefix]\nmodel = "openai/mock"\ncache_dir = "off"\nstrategy = "flat"\n'
                f'apply = {str(apply).lower()}\n'
                f"mock_responses = [{json.dumps(VERDICTS)}, {json.dumps(FIXED)}]\n")


def test_hook_shows_the_validated_fix_without_writing_it(fixture_copy):
    pytest.importorskip("tracefix.repair.fix")
    root = fixture_copy("cart")
    configure_mock_model(root, apply=False)
    before = (root / "shop" / "pricing.py").read_text()
    result = run_cli("hook", str(root), timeout=300)
    assert result.returncode == 1, result.stderr
    assert SUSPECT in result.stdout
    assert "NOT written" in result.stdout
    assert "-    cut = price * percent // 10\n+    cut = price * percent // 100\n" in result.stdout
    assert "shop/pricing.py:4:1: info: validated fix for apply_discount" in result.stdout
    assert (root / "shop" / "pricing.py").read_text() == before


def test_hook_writes_the_fix_when_the_config_says_apply(fixture_copy):
    pytest.importorskip("tracefix.repair.fix")
    root = fixture_copy("cart")
    configure_mock_model(root, apply=True)
    git(root, "init", "-q")  # apply refuses files with uncommitted changes: commit them first
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "buggy")
    result = run_cli("hook", str(root), timeout=300)
    assert result.returncode == 1, result.stderr  # the push still stops: the fix is not committed yet
    assert "written to shop/pricing.py" in result.stdout
    assert "cut = price * percent // 100" in (root / "shop" / "pricing.py").read_text()
