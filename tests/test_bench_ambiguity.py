"""bench/mutation_ambiguity.py: every passing mutant is validated and scored on the hidden tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import mutation_ambiguity  # noqa: E402
from test_bench_corpus import QUIX, SEED  # noqa: E402


def test_each_validated_mutant_is_scored_and_a_rerun_skips_done_records(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps(SEED) + "\n" + json.dumps(QUIX) + "\n")
    out = tmp_path / "rows.jsonl"
    assert mutation_ambiguity.main([str(corpus), "--out", str(out), "--test-timeout", "2"]) == 0
    rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    # `x + 1` -> `x + 2` passes the visible `double(2) == 4` and fails the hidden `double(3) == 6`
    seed = {v["description"]: v["hidden_pass"] for v in rows[SEED["id"]]["validated"]}
    assert seed["line 2: `1` -> `2`"] is False
    quix = {v["description"]: v["hidden_pass"] for v in rows[QUIX["id"]]["validated"]}
    assert quix["line 2: `3` -> `2`"] is True
    assert rows[SEED["id"]]["failing"] == 1 and rows[SEED["id"]]["screened"] == rows[SEED["id"]]["unique"]
    capsys.readouterr()
    assert mutation_ambiguity.main([str(corpus), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2 and capsys.readouterr().out == ""
