"""bench/run_corpus.py: the corpus projects keep hidden tests hidden, runs resume, the table counts right."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tracefix.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import corpus  # noqa: E402
import corpus_report  # noqa: E402
import rescore  # noqa: E402
import run_corpus  # noqa: E402

SEED = {
    "id": "seeds/demo/HumanEval_0", "source": "LDB-seeds-humaneval", "module_name": "prog", "entry_point": "double",
    "buggy_code": "def double(x):\n    return x + 1\n\nassert double(3) == 6\n",
    "fixed_code": "def double(x):\n    return x * 2\n",
    "test_file_name": "test_hidden.py",
    "test_code": "from prog import double\n\ndef test_hidden():\n    assert double(3) == 6\n    assert double(5) == 10\n",
    "support_files": {}, "given_tests": ["assert double(2) == 4"],
    "meta": {"generator_model": "gpt-3.5-turbo-0613", "suspect": None},
}
QUIX = {
    "id": "quixbugs/halve", "source": "QuixBugs", "module_name": "halve", "entry_point": "halve",
    "buggy_code": "def halve(x):\n    return x // 3\n", "fixed_code": "def halve(x):\n    return x // 2\n",
    "test_file_name": "test_halve.py",
    "test_code": "from halve import halve\n\ndef test_halve():\n    assert halve(8) == 4\n",
    "support_files": {"data/table.txt": "1 2 3\n"},
}


def answer(body: str) -> str:
    return f"The function is wrong.\n```python\n{body}```"


def test_visible_project_holds_the_given_tests_and_never_the_hidden_ones(tmp_path):
    root = corpus.write_visible(SEED, tmp_path / "seed")
    assert sorted(p.name for p in root.iterdir()) == ["prog.py", "test_given.py"]
    assert "assert double(2) == 4" in (root / "test_given.py").read_text()
    # the generator's module-level assert would break every import: it is not program
    assert (root / "prog.py").read_text() == "def double(x):\n    return x + 1\n\n"
    quix = corpus.write_visible(QUIX, tmp_path / "quix")  # no split: its test file is the visible one
    assert (quix / "test_halve.py").read_text() == QUIX["test_code"]
    assert (quix / "data/table.txt").read_text() == "1 2 3\n"


def test_records_are_filtered_by_field_and_id_and_suspects_are_left_out(tmp_path):
    suspect = dict(SEED, id="seeds/demo/HumanEval_1", meta={"generator_model": "gpt-3.5-turbo-0613",
                                                                 "suspect": "reference fails"})
    other = dict(SEED, id="seeds/demo/HumanEval_2", meta={"generator_model": "codellama", "suspect": None})
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (SEED, suspect, other)))
    ids = lambda records: [r["id"] for r in records]  # noqa: E731
    assert ids(corpus.load_records(path)) == [SEED["id"], other["id"]]
    assert ids(corpus.load_records(path, {"meta.generator_model": "gpt-3.5-turbo-0613"})) == [SEED["id"]]
    assert ids(corpus.load_records(path, ids=["_2"])) == [other["id"]]
    assert run_corpus.parse_corpus_arg(f"{path}:source=X,meta.a=b") == (path, {"source": "X", "meta.a": "b"})
    with pytest.raises(SystemExit, match="no corpus file"):
        run_corpus.parse_corpus_arg(str(tmp_path / "missing.jsonl"))


def test_interleave_takes_one_record_from_each_corpus_in_turn():
    assert run_corpus.interleave([[1, 2, 3], ["a"], [10, 20]]) == [1, "a", 10, 2, 20, 3]


def mock_config(*answers: str, **overrides) -> Config:
    return Config(model="openai/mock-model", cache_dir=None, max_iters=1, test_timeout=5.0,
                  mock_responses=answers, **overrides)


def test_a_fix_that_passes_only_the_visible_tests_is_scored_as_failing_the_hidden_ones(tmp_path):
    # double(2) == 4 holds for x + x and x * x alike; the hidden double(3) == 6 tells them apart
    overfit = answer("def double(x):\n    return x * x\n")
    [row] = list(run_corpus.run_record(SEED, ["baseline"], mock_config(overfit), tmp_path, set(), 0))
    assert row["status"] == "fixed" and row["hidden_pass"] is False
    assert row["category"] == "wrong result" and row["calls"] == 1
    right = answer("def double(x):\n    return 2 * x\n")
    [row] = list(run_corpus.run_record(SEED, ["baseline"], mock_config(right), tmp_path / "again", set(), 0))
    assert row["status"] == "fixed" and row["hidden_pass"] is True
    assert "+    return 2 * x" in row["diff"]


def test_a_hidden_test_the_suite_itself_skips_does_not_fail_the_score(tmp_path):
    # three QuixBugs test files skip their slowest case; the reference fix must still score as passing
    skipping = dict(QUIX, test_code=QUIX["test_code"] + "\n\nimport pytest\n\n@pytest.mark.skip(reason='slow')\n"
                    "def test_slow():\n    assert False\n")
    fixed = {"halve.py": QUIX["fixed_code"]}
    assert corpus.hidden_tests_pass(skipping, tmp_path / "ok", fixed) is True
    assert corpus.hidden_tests_pass(skipping, tmp_path / "buggy") is False
    only_skipped = dict(QUIX, test_code="import pytest\n\n@pytest.mark.skip\ndef test_slow():\n    pass\n")
    assert corpus.hidden_tests_pass(only_skipped, tmp_path / "none", fixed) is False  # nothing ran: no evidence


def test_rescore_applies_each_fixed_rows_diff_again_and_rewrites_only_the_changed_scores(tmp_path):
    skipping = dict(QUIX, test_code=QUIX["test_code"] + "\n\nimport pytest\n\n@pytest.mark.skip\ndef test_slow():\n"
                    "    assert False\n")
    diff = ("--- a/halve.py\n+++ b/halve.py\n@@ -1,2 +1,2 @@\n def halve(x):\n-    return x // 3\n"
            "+    return x // 2\n")
    rows = [dict(id=QUIX["id"], strategy="default", status="fixed", hidden_pass=False, diff=diff),
            dict(id=QUIX["id"], strategy="baseline", status="no_fix", hidden_pass=False, diff=""),
            dict(id=QUIX["id"], strategy="focused", status="fixed", hidden_pass=False, diff="not a diff")]
    out = tmp_path / "rows.jsonl"
    corpus_report.write_rows(out, rows)
    corpus_path = tmp_path / "c.jsonl"
    corpus_path.write_text(json.dumps(skipping) + "\n")
    assert rescore.main([str(corpus_path), "--out", str(out)]) == 0
    after = corpus_report.load_rows(out)
    assert [r["hidden_pass"] for r in after] == [True, False, False]  # an unappliable diff is left alone
    assert [r["diff"] for r in after] == [r["diff"] for r in rows]


def test_traced_strategy_runs_on_a_corpus_record_and_no_fix_scores_false(tmp_path):
    right = answer("def halve(x):\n    return x // 2\n")
    config = mock_config(right, log_path=tmp_path / "logs")
    [row] = list(run_corpus.run_record(QUIX, ["flat"], config, tmp_path, set(), 0))
    assert (row["status"], row["hidden_pass"], row["fixed_in"], row["calls"]) == ("fixed", True, "halve.py::halve", 1)
    logged = [json.loads(line) for line in (tmp_path / "logs" / "quixbugs_halve.flat.jsonl").read_text().splitlines()]
    assert [r["purpose"] for r in logged if "response" in r] == ["patch"]  # one block: no verdict call
    [row] = list(run_corpus.run_record(QUIX, ["baseline"], mock_config("no code here", "still no code"), tmp_path / "b", set(), 0))
    assert (row["status"], row["hidden_pass"]) == ("no_fix", False)


def test_an_arm_with_settings_runs_the_strategy_with_them_and_reports_under_its_whole_name(tmp_path):
    # Two blocks (the loop and the return), so verdicts "auto" asks for them and "off" does not.
    looping = dict(QUIX, buggy_code="def halve(x):\n    for _ in range(1):\n        x = x // 3\n    return x\n")
    right = answer("def halve(x):\n    return x // 2\n")
    verdicts = '[{"block": 1, "correct": false, "explanation": "divides by 3"}]'
    rows = {}
    for strategy, answers in (("flat", (verdicts, right)), ("flat@verdicts=off", (right,))):
        config = mock_config(*answers, log_path=tmp_path / "logs")
        [rows[strategy]] = run_corpus.run_record(looping, [strategy], config, tmp_path / strategy, set(), 0)
    assert {s: (r["strategy"], r["status"], r["calls"]) for s, r in rows.items()} == {
        "flat": ("flat", "fixed", 2), "flat@verdicts=off": ("flat@verdicts=off", "fixed", 1)}
    logged = (tmp_path / "logs" / "quixbugs_halve.flat@verdicts=off.jsonl").read_text().splitlines()
    assert [json.loads(line)["purpose"] for line in logged if "response" in json.loads(line)] == ["patch"]
    assert run_corpus.unknown_strategy("auto@verdicts=off") == ""
    assert "verdicts=auto|on|off" in run_corpus.unknown_strategy("auto@verdicts=maybe")
    assert "verdicts=auto|on|off" in run_corpus.unknown_strategy("auto@temperature=1")
    with pytest.raises(SystemExit, match="unknown strategy 'ldb'"):
        run_corpus.main(["x.jsonl", "--strategy", "ldb@verdicts=off", "--report-only"])


def test_done_pairs_are_skipped_and_a_record_with_nothing_failing_is_marked_skipped(tmp_path):
    right = answer("def halve(x):\n    return x // 2\n")
    rows = list(run_corpus.run_record(QUIX, ["baseline", "flat"], mock_config(right), tmp_path,
                                      {(QUIX["id"], "flat")}, 0))
    assert [r["strategy"] for r in rows] == ["baseline"]
    passing = dict(QUIX, buggy_code=QUIX["fixed_code"])
    rows = list(run_corpus.run_record(passing, ["baseline"], mock_config(), tmp_path / "p", set(), 0))
    assert rows[0]["status"] == "skipped" and "nothing to repair" in rows[0]["error"]


TWO_LINE_DIFF = """--- a/prog.py
+++ b/prog.py
@@ -1,3 +1,3 @@
 def double(x):
-    return x + x + 1
+    return x + x
 # end
"""


def test_rows_survive_a_cut_line_and_the_table_pairs_records(tmp_path):
    def row(i, strategy, status, p=100, c=20, seconds=10.0, category="wrong result", candidates=1, diff=""):
        return {"id": i, "strategy": strategy, "status": status, "source": "Q", "category": category, "calls": 2,
                "prompt_tokens": p, "completion_tokens": c, "seconds": seconds, "hidden_pass": status == "fixed",
                "candidates": candidates, "diff": diff}

    out = tmp_path / "rows.jsonl"
    rows = [row("a", "baseline", "fixed"), row("a", "flat", "no_fix"), row("b", "baseline", "no_fix"),
            row("b", "flat", "fixed", p=300, seconds=30.0, candidates=2, diff=TWO_LINE_DIFF),
            row("c", "baseline", "fixed"),  # c: flat never ran
            row("e", "baseline", "skipped"), row("e", "flat", "skipped")]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "d", "strat')
    loaded = corpus_report.load_rows(out)
    assert len(loaded) == 7
    table = corpus_report.summary(loaded, ["baseline", "flat"])
    assert table.startswith("2 records, every strategy on each (paired). 1 more skipped")
    assert "| baseline | 1/2 | 50% | 1/2 (50%) | 2.0 | 100 | 20 | 240 (200 + 40) | 10 | 0 |" in table
    assert "| flat | 1/2 | 50% | 1/2 (50%) | 2.0 | 200 | 20 | 440 (400 + 40) | 20 | 0 |" in table
    assert "| wrong result | 2 | 1/2 | 1/2 |" in table
    assert "| flat | 0 | 1 | 1 | 0 |" in table  # a: only baseline, b: only flat
    assert "| baseline | 1 | 1 | - | - |" in table  # a's row carries no diff
    assert "| flat | 1 | 0 | 2 | 2 |" in table  # the headers are not changed lines
    # a: baseline fixes it, flat never runs; b: baseline fails (120 tok), flat fixes it (320 tok)
    assert "| baseline, then flat | 2/2 | 2 | 280 | 280 (250 + 30) | 25 |" in table
    assert "| flat, then baseline | 2/2 | 2 | 280 | 280 (250 + 30) | 25 |" in table  # a: flat fails (120), baseline fixes (120)
    records = corpus_report.per_record(loaded, ["baseline", "flat"])
    assert "| b | wrong result | no fix (2 calls, 120 tok) | fixed (2 calls, 320 tok) |" in records
    assert "| c |" not in records


def test_report_only_prints_the_table_without_a_model(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    out.write_text(json.dumps({"id": "a", "strategy": "baseline", "status": "fixed", "calls": 1, "prompt_tokens": 5,
                               "completion_tokens": 5, "seconds": 1.0, "hidden_pass": True}) + "\n")
    assert run_corpus.main(["x.jsonl", "--strategy", "baseline", "--out", str(out), "--report-only"]) == 0
    assert "| baseline | 1/1 | 100% |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown strategy 'ldb'"):
        run_corpus.main(["x.jsonl", "--strategy", "ldb", "--report-only"])


def test_a_run_stops_when_the_model_keeps_failing_and_a_rerun_retries_the_failed_pairs(tmp_path, monkeypatch,
                                                                                      capsys):
    path, out = tmp_path / "c.jsonl", tmp_path / "rows.jsonl"
    records = [dict(QUIX, id=f"quixbugs/halve{i}") for i in range(5)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    down = {"status": "error", "error": "APIConnectionError: connection refused", "calls": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "seconds": 0.1, "hidden_pass": False}
    monkeypatch.setattr(run_corpus, "repair", lambda record, strategy, *a: dict(down, id=record["id"],
                                                                                  strategy=strategy))
    args = [str(path), "--model", "openai/unreachable", "--strategy", "baseline", "--out", str(out)]
    assert run_corpus.main(args) == 1
    assert "stopped after 3 failed runs in a row: APIConnectionError" in capsys.readouterr().err
    assert len(corpus_report.load_rows(out)) == 3
    up = dict(down, status="no_fix", error="")
    monkeypatch.setattr(run_corpus, "repair", lambda record, strategy, *a: dict(up, id=record["id"],
                                                                                strategy=strategy))
    assert run_corpus.main(args) == 0
    assert "5 records, every strategy on each" in capsys.readouterr().out  # the 3 failed pairs ran again


def test_redo_drops_the_named_records_rows_for_the_chosen_strategies_and_runs_them_again(tmp_path, monkeypatch,
                                                                                        capsys):
    path, out = tmp_path / "c.jsonl", tmp_path / "rows.jsonl"
    records = [dict(QUIX, id=f"quixbugs/halve{i}") for i in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    runs = []

    def repair(record, strategy, *a):
        runs.append((record["id"], strategy))
        return {"id": record["id"], "strategy": strategy, "status": "no_fix", "error": "", "calls": 1,
                "prompt_tokens": 10, "completion_tokens": 5, "seconds": 0.1, "hidden_pass": False}

    monkeypatch.setattr(run_corpus, "repair", repair)
    both = [str(path), "--model", "openai/m", "--strategy", "baseline,flat", "--out", str(out)]
    assert run_corpus.main(both) == 0
    assert len(runs) == 6
    runs.clear()
    flat_only = [str(path), "--model", "openai/m", "--strategy", "flat", "--out", str(out), "--redo", "halve1"]
    assert run_corpus.main(flat_only) == 0
    assert runs == [("quixbugs/halve1", "flat")]
    assert "1 rows dropped" in capsys.readouterr().err
    rows = corpus_report.load_rows(out)
    assert sorted((r["id"], r["strategy"]) for r in rows) == sorted(
        (f"quixbugs/halve{i}", s) for i in range(3) for s in ("baseline", "flat"))
    with pytest.raises(SystemExit, match="--redo needs --out"):
        run_corpus.main([str(path), "--model", "openai/m", "--redo", "halve1"])


def test_a_seed_reaches_the_repair_config_and_every_row(tmp_path, monkeypatch):
    path, out = tmp_path / "c.jsonl", tmp_path / "rows.jsonl"
    path.write_text(json.dumps(QUIX) + "\n")
    seeds = []

    def repair(record, strategy, config, visible, work, base):
        seeds.append(config.seed)
        return dict(base, strategy=strategy, status="no_fix", error="", calls=1, prompt_tokens=1,
                    completion_tokens=1, seconds=0.1, hidden_pass=False)

    monkeypatch.setattr(run_corpus, "repair", repair)
    assert run_corpus.main([str(path), "--model", "openai/m", "--strategy", "baseline", "--seed", "3",
                            "--out", str(out)]) == 0
    assert seeds == [3]
    assert [r["seed"] for r in corpus_report.load_rows(out)] == [3]


def test_a_sample_is_the_same_draw_every_time_and_keeps_corpus_order():
    records = [{"id": str(i)} for i in range(100)]
    first = run_corpus.sampled(records, 40, seed=7)
    assert first == run_corpus.sampled(records, 40, seed=7) and len(first) == 40
    assert [int(r["id"]) for r in first] == sorted(int(r["id"]) for r in first)
    assert first != run_corpus.sampled(records, 40, seed=8)
    assert run_corpus.sampled(records[:5], 40) == records[:5]


def test_ids_pick_among_the_sampled_records_and_do_not_change_the_draw(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"id": f"rec_{i}", "source": "s"}) + "\n" for i in range(100)))
    drawn = run_corpus.collect_records([f"{path}:sample=10,sample_seed=3"])
    picked = [drawn[0]["id"], drawn[5]["id"]]
    again = run_corpus.collect_records([f"{path}:sample=10,sample_seed=3"], ids=picked)
    # Filtered first, the ids would have been the whole population of a new draw; a whole id
    # names its record alone, a part of one names every record it is in.
    assert [r["id"] for r in again] == picked
    assert {r["id"] for r in run_corpus.collect_records([str(path)], ids=["rec_1", "rec_9"])} == {"rec_1", "rec_9"}
    assert len(run_corpus.collect_records([str(path)], ids=["c_9"])) == 11
