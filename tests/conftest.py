"""Shared test helpers: fixture projects copied to tmp_path, the CLI run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# Never let litellm reach for its price table over the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def fixture_copy(tmp_path):
    """Copy a bundled buggy project into tmp_path; tests never write into fixtures/."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest, ignore=shutil.ignore_patterns("__pycache__", ".tracefix"))
        return dest

    return copy


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run `tracefix ARGS` in a fresh interpreter, as the console script does."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160", **(env or {})}  # env may set COLUMNS
    return subprocess.run([sys.executable, "-m", "tracefix", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def mocks(*answers: str, strategy: str = "auto") -> dict:
    """Environment that makes the CLI's model answer with these texts, in order (litellm's
    mock_response). Canned answers are written for one strategy's requests: the traced loop
    unless said otherwise (the default portfolio would start with the model-free search, and
    a bug it fixes would never reach the answers). A `--strategy` flag still wins."""
    return {"TRACEFIX_MOCK_RESPONSES": json.dumps(list(answers)), "TRACEFIX_STRATEGY": strategy}
