"""bench/budget_curve.py: repair rate at token budgets, paired by record, from run_corpus rows."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import budget_curve  # noqa: E402


def row(record: str, strategy: str, status: str, tokens: int, hidden: bool, seed=1, seconds=10.0) -> dict:
    return {"id": record, "strategy": strategy, "status": status, "prompt_tokens": tokens, "completion_tokens": 0,
            "hidden_pass": hidden, "seed": seed, "seconds": seconds, "source": "S"}


ROWS = [
    row("a", "baseline", "fixed", 1500, True), row("a", "default", "fixed", 0, True),
    row("b", "baseline", "no_fix", 3000, False), row("b", "default", "fixed", 4000, False),  # plausible, wrong
    row("c", "baseline", "fixed", 800, True), row("c", "default", "fixed", 800, True),
    row("d", "baseline", "fixed", 900, True),  # default never ran on d: not paired, left out
]


def test_a_fix_counts_from_the_budget_it_cost():
    by = budget_curve.complete_rows(ROWS, ["baseline", "default"])
    assert {k[0] for k in by} == {"a", "b", "c"}
    assert budget_curve.rate(by, "default", 0, False) == (1 / 3, 3)
    assert budget_curve.rate(by, "baseline", 1000, False)[0] == 1 / 3
    assert budget_curve.rate(by, "baseline", 2000, False)[0] == 2 / 3
    assert budget_curve.rate(by, "default", 5000, False)[0] == 1.0
    assert budget_curve.rate(by, "default", 5000, True)[0] == 2 / 3  # b fails the hidden tests


def test_the_difference_is_paired_by_record_with_an_interval():
    by = budget_curve.complete_rows(ROWS, ["baseline", "default"])
    mean, half, n = budget_curve.paired_difference(by, "default", "baseline", 0, True)
    assert n == 3 and abs(mean - 1 / 3) < 1e-9 and half > 0
    mean, _half, _n = budget_curve.paired_difference(by, "default", "baseline", 20000, True)
    assert mean == 0


def test_the_table_and_the_plot_are_made_from_the_rows():
    text = budget_curve.table(ROWS, ["baseline", "default"], (0, 2000))
    assert "3 records" in text and "| default | 33% / 33% | 67% / 67% | 1/3 |" in text
    root = ET.fromstring(budget_curve.svg(ROWS, ["baseline", "default"], (0, 2000)))
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_a_second_seed_gives_each_strategy_its_seed_to_seed_difference():
    seed2 = [dict(r, seed=2) for r in ROWS]
    seed2[0] = row("a", "baseline", "no_fix", 1500, False, seed=2)  # the baseline loses a under seed 2
    by = budget_curve.complete_rows(ROWS + seed2, ["baseline", "default"])
    assert budget_curve.seed_difference(by, "baseline", 1, 2, 20000, True)[::2] == (-1 / 3, 3)
    assert budget_curve.seed_difference(by, "default", 1, 2, 20000, True)[::2] == (0, 3)
    text = budget_curve.table(ROWS + seed2, ["baseline", "default"], (0, 20000))
    assert "| seed 2 minus seed 1, hidden tests, same records |" in text
    assert "| baseline | +0% +- 0% | -33% +- 65% | 3 |" in text


def test_rows_of_several_files_are_read_together(tmp_path, capsys):
    import json
    one, two = tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"
    one.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    two.write_text("".join(json.dumps(dict(r, seed=2)) + "\n" for r in ROWS))
    assert budget_curve.main(["--out", str(one), str(two), "--strategies", "baseline,default"]) == 0
    out = capsys.readouterr().out
    assert "seeds 1, 2" in out and "| seed 2 minus seed 1" in out
