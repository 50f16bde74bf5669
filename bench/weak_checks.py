"""How well the "weakly checked" warning (repair/checked_by.py) separates fixes that pass the
hidden tests from plausible-but-wrong ones, on the validated rows of a run_corpus.py results
file: each record's visible project is written afresh, ranked once (the coverage run a
located start makes), and the stored diff is checked against it. No model is called.

    .venv/bin/python bench/weak_checks.py --out bench/corpus_results_v5.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpus import load_records, write_visible  # noqa: E402

from tracefix.repair.checked_by import unchecked_warning  # noqa: E402
from tracefix.tracer.localize import locate_with_run  # noqa: E402

CORPORA = ("/work/shared/corpus/quixbugs.jsonl", "/work/shared/corpus/ldb_seeds.jsonl")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run_corpus.py's rows")
    parser.add_argument("--corpus", action="append", help=f"a corpus JSONL (repeatable; default {', '.join(CORPORA)})")
    parser.add_argument("--test-timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    records = {r["id"]: r for path in (args.corpus or CORPORA) for r in load_records(Path(path))}
    rows = [json.loads(line) for line in Path(args.out).read_text().splitlines() if line.strip()]
    fixed = [r for r in rows if r.get("status") == "fixed" and r.get("diff") and r["id"] in records]
    table = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for row in fixed:
        record = records[row["id"]]
        with tempfile.TemporaryDirectory() as tmp:
            root = write_visible(record, Path(tmp) / "project")
            loc, coverage = locate_with_run(root, test_timeout=args.test_timeout)
            failing = [o.nodeid for o in loc.outcomes if o.bad]
            weak = unchecked_warning(root, row["diff"], coverage, failing) is not None
        table[(weak, bool(row.get("hidden_pass")))] += 1
        print(f"{row['id']} {row['strategy']}: {'weak' if weak else 'checked'}, hidden "
              f"{'pass' if row.get('hidden_pass') else 'fail'}", flush=True)
    print()
    print("| warning | hidden tests pass | hidden tests fail |")
    print("|---|---|---|")
    for weak in (True, False):
        print(f"| {'weakly checked' if weak else 'no warning'} | {table[(weak, True)]} | {table[(weak, False)]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
