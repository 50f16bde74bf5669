"""bench/weak_checks.py: the weakly-checked warning scored against the hidden-test outcome of stored fixes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import weak_checks  # noqa: E402

FIX = ("diff --git a/prog.py b/prog.py\n--- a/prog.py\n+++ b/prog.py\n@@ -1,2 +1,2 @@\n"
       " def double(x):\n-    return x + 1\n+    return x * 2\n")


def record(rid: str, given: list[str]) -> dict:
    return {
        "id": rid, "source": "LDB-seeds-humaneval", "module_name": "prog", "entry_point": "double",
        "buggy_code": "def double(x):\n    return x + 1\n", "fixed_code": "def double(x):\n    return x * 2\n",
        "test_file_name": "test_hidden.py", "test_code": "from prog import double\n\ndef test_hidden():\n    assert double(5) == 10\n",
        "support_files": {}, "given_tests": given, "meta": {"generator_model": "m"},
    }


def test_a_fix_only_its_failing_test_runs_is_weak_and_one_a_passing_test_runs_is_not(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps(record("one-test", ["assert double(2) == 4"])) + "\n"
                      + json.dumps(record("two-tests", ["assert double(2) == 4", "assert double(1) == 2"])) + "\n")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in (
        {"id": "one-test", "strategy": "default", "status": "fixed", "diff": FIX, "hidden_pass": False},
        {"id": "two-tests", "strategy": "default", "status": "fixed", "diff": FIX, "hidden_pass": True},
        {"id": "two-tests", "strategy": "baseline", "status": "no_fix", "diff": "", "hidden_pass": False},
    )))
    assert weak_checks.main(["--out", str(rows), "--corpus", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "one-test default: weak, hidden fail" in out
    assert "two-tests default: checked, hidden pass" in out
    assert "| weakly checked | 0 | 1 |" in out and "| no warning | 1 | 0 |" in out
