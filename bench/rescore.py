"""Score again, on the hidden tests, the fixes that rows of `run_corpus.py` already hold.

    python bench/rescore.py --out bench/corpus_results_v5.jsonl /work/shared/corpus/quixbugs.jsonl \
        [/work/shared/corpus/ldb_seeds.jsonl ...] [--ids knapsack,levenshtein] [--test-timeout 3]

For a change to the scorer (`corpus.hidden_tests_pass`), not to a strategy: each fixed row's
diff is applied to the record's buggy program again (`git apply`) and the result is scored as
`run_corpus.py` scores it. No repair runs and no model is called; rows that are not fixes, or
whose diff no longer applies, are left as they are (said on stderr). The file is rewritten
atomically.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import hidden_tests_pass, load_records, write_program  # noqa: E402
from corpus_report import load_rows, write_rows  # noqa: E402


def edited_files(record: dict, diff: str, work: Path) -> dict[str, str] | None:
    """{path: text} of the files the diff changes, applied to the buggy program; None if it fails."""
    write_program(record, work)
    applied = subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], input=diff, text=True,
                             cwd=work, capture_output=True)
    if applied.returncode != 0:
        return None
    changed = subprocess.run(["git", "apply", "--numstat", "-"], input=diff, text=True, cwd=work,
                             capture_output=True, check=True).stdout
    paths = [line.split("\t", 2)[2] for line in changed.splitlines() if line.count("\t") >= 2]
    return {p: (work / p).read_text(encoding="utf-8") for p in paths}


def rescore(rows: list[dict], records: dict[str, dict], ids: list[str], test_timeout: float) -> int:
    """Rescore the matching fixed rows in place; the number whose score changed."""
    changed = 0
    for row in rows:
        if row.get("status") != "fixed" or not row.get("diff") or (ids and not any(i in row["id"] for i in ids)):
            continue
        record = records.get(row["id"])
        if record is None:
            print(f"rescore: no record {row['id']} in the corpora given; left as it is", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(prefix="tracefix-rescore-") as tmp:
            edited = edited_files(record, row["diff"], Path(tmp) / "program")
            if edited is None:
                print(f"rescore: {row['id']} ({row['strategy']}): the diff does not apply; left as it is",
                      file=sys.stderr)
                continue
            score = hidden_tests_pass(record, Path(tmp) / "score", edited, test_timeout=test_timeout)
        if score != row.get("hidden_pass"):
            print(f"rescore: {row['id']} ({row['strategy']}): hidden {row.get('hidden_pass')} -> {score}")
            row["hidden_pass"] = score
            changed += 1
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpora", nargs="+", type=Path, help="the JSONL corpora the rows came from")
    ap.add_argument("--out", type=Path, required=True, help="run_corpus.py's rows, rewritten in place")
    ap.add_argument("--ids", default="", help="comma-separated substrings of record ids")
    ap.add_argument("--test-timeout", type=float, default=3.0)
    args = ap.parse_args(argv)
    records = {r["id"]: r for path in args.corpora for r in load_records(path)}
    rows = load_rows(args.out)
    changed = rescore(rows, records, [i for i in args.ids.split(",") if i], args.test_timeout)
    write_rows(args.out, rows)
    print(f"rescore: {changed} of {len(rows)} rows changed their hidden score")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
