"""Model-free repair (`--strategy mutation`) on the 40 QuixBugs records.

    nice -n 10 .venv/bin/python bench/mutation_quixbugs.py --out bench/mutation_results.jsonl

Each record becomes a tiny project in a temp dir (bench/corpus.py: the buggy module, its
support files, its tests; QuixBugs has no visible/hidden split). `mutation_report` runs on it
with a per-test timeout (17 buggy programs loop forever) and zero model calls. One JSON line
per record goes to --out as soon as it is done; a rerun skips the ids already there. Then
`--baseline N` records are searched again screening each candidate in its own pytest process
(the way the probe did), for the speed ratio of the persistent worker against that.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS_DIR, load_records, write_visible  # noqa: E402

from tracefix.config import Config  # noqa: E402
from tracefix.repair.mutation_search import mutation_report  # noqa: E402
from tracefix.repair.setup import located_start  # noqa: E402


def run_one(record: dict, config: Config, deadline: float, fast: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="tracefix-mut-") as tmp:
        project = write_visible(record, Path(tmp) / record["module_name"])
        start = located_start(project, config)
        report, result = mutation_report(start, config, deadline_s=deadline, fast=fast)
        edited = report.edited.get(f"{record['module_name']}.py") if report.edited else None
        return {"id": record["id"], "status": report.status, "seconds": report.seconds,
                "tokens": 0 if report.usage is None else report.usage.prompt_tokens + report.usage.completion_tokens,
                "fast": fast, "winner": result.winner if result else "",
                "generated": result.generated if result else 0, "unique": result.unique if result else 0,
                "screened": result.screened if result else 0, "validated": result.validated if result else 0,
                "fallback_runs": result.fallback_runs if result else 0,
                "worker_starts": result.worker_starts if result else 0,
                "per_second": result.per_second if result else 0.0,
                "same_as_reference": edited is not None and _same_code(edited, record.get("fixed_code_minimal")
                                                                       or record["fixed_code"]),
                "diff": report.diff}


def _same_code(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except SyntaxError:
        return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(CORPUS_DIR / "quixbugs.jsonl"))
    parser.add_argument("--out", default="bench/mutation_results.jsonl")
    parser.add_argument("--ids", default="", help="comma-separated parts of record ids")
    parser.add_argument("--test-timeout", type=float, default=2.0)
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds of search per record")
    parser.add_argument("--baseline", type=int, default=3, help="records also screened one process per candidate")
    parser.add_argument("--baseline-deadline", type=float, default=30.0)
    args = parser.parse_args(argv)
    records = load_records(Path(args.corpus), ids=[i for i in args.ids.split(",") if i] or None)
    config = Config(test_timeout=args.test_timeout, run_timeout=120.0)
    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    done = {(r["id"], r["fast"]) for r in rows}
    with out.open("a", encoding="utf-8") as sink:
        for record in records:
            if (record["id"], True) not in done:
                rows.append(_write(sink, run_one(record, config, args.deadline)))
        # The baseline on the records with the most candidates screened: a rate over many.
        fast_rows = {r["id"]: r for r in rows if r["fast"]}
        chosen = sorted((r for r in fast_rows.values() if r["screened"]), key=lambda r: -r["screened"])
        for row in chosen[:args.baseline]:
            if (row["id"], False) not in done:
                record = next(r for r in records if r["id"] == row["id"])
                rows.append(_write(sink, run_one(record, config, args.baseline_deadline, fast=False)))
    print_summary(rows)
    return 0


def _write(sink, row: dict) -> dict:
    sink.write(json.dumps(row) + "\n")
    sink.flush()
    print(f"{row['id']}: {row['status']} in {row['seconds']:.1f}s, {row['screened']}/{row['unique']} screened "
          f"({row['per_second']}/s{'' if row['fast'] else ', one process each'}) {row['winner']}", flush=True)
    return row


def print_summary(rows: list[dict]) -> None:
    fast = [r for r in rows if r["fast"]]
    fixed = [r for r in fast if r["status"] == "fixed"]
    print(f"fixed {len(fixed)}/{len(fast)} with {sum(r['tokens'] for r in fast)} tokens; "
          f"{sum(r['same_as_reference'] for r in fixed)} identical to the reference fix")
    if fast:
        print(f"median seconds per record {statistics.median(r['seconds'] for r in fast):.1f}; "
              f"to a fix {statistics.median(r['seconds'] for r in fixed) if fixed else float('nan'):.1f}")
    slow = {r["id"]: r for r in rows if not r["fast"] and r["screened"]}
    pairs = [(fr, slow[fr["id"]]) for fr in fast if fr["id"] in slow and fr["per_second"]]
    if pairs:
        fast_rate = sum(f["screened"] for f, _ in pairs) / sum(f["screened"] / f["per_second"] for f, _ in pairs)
        slow_rate = sum(s["screened"] for _, s in pairs) / sum(s["screened"] / s["per_second"] for _, s in pairs)
        print(f"candidates/s on {len(pairs)} records: worker {fast_rate:.1f}, one process each {slow_rate:.2f}, "
              f"ratio {fast_rate / slow_rate:.1f}x")
    all_fast = [r for r in fast if r["per_second"]]
    if all_fast:
        rate = sum(r["screened"] for r in all_fast) / sum(r["screened"] / r["per_second"] for r in all_fast)
        print(f"worker candidates/s over all {len(all_fast)} records: {rate:.1f}")


if __name__ == "__main__":
    sys.exit(main())
