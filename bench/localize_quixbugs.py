"""How well `tracefix locate` finds QuixBugs' buggy line, and what the coverage run costs.

    .venv/bin/python bench/localize_quixbugs.py [--limit N] [--jobs 1] [--test-timeout 2]
        [--collectors auto|coverage|monitoring[,...]] [--python PATH] [--repeat R]

Each record is written to a temp dir (`<module_name>.py` = buggy_code, its support files,
its test file); the corpus itself is only read. The buggy lines are the buggy_code lines
that `fixed_code_minimal` changes (comments and blank lines left out); for a fix that only
inserts a line, the code lines just before and after the insertion count as the bug.

Cost: per record, a plain run (`run_tests(mode="outcomes")`) and one `locate()` per
collector, interleaved and rotated from record to record so drift on a noisy machine hits
them alike; the ratio is the localization's wall time over the plain run's, both with the
same per-test timeout. Records where a test hangs spend most of both runs waiting for
the timeout, so the ratios are also given without them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS_DIR, load_records, write_visible as write_record  # noqa: E402,F401

from tracefix.tracer.localize import locate, statement_starts  # noqa: E402
from tracefix.tracer.runner import run_tests  # noqa: E402

CORPUS = CORPUS_DIR / "quixbugs.jsonl"


def records(limit: int | None, ids: list[str] | None):
    return load_records(CORPUS, ids=ids)[:limit] if limit else load_records(CORPUS, ids=ids)


def _is_code(text: str) -> bool:
    return bool(text.strip()) and not text.strip().startswith("#")


def buggy_lines(rec: dict) -> set[int]:
    """1-based lines of buggy_code that the minimal fix touches, as statement first lines."""
    buggy = rec["buggy_code"].splitlines()
    fixed = rec["fixed_code_minimal"].splitlines()
    lines: set[int] = set()
    matcher = difflib.SequenceMatcher(None, buggy, fixed, autojunk=False)
    for tag, i1, i2, _j1, _j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lines.update(i + 1 for i in range(i1, i2) if _is_code(buggy[i]))
        elif tag == "insert":  # a missing line: blame its code neighbours
            before = next((i for i in range(i1 - 1, -1, -1) if _is_code(buggy[i])), None)
            after = next((i for i in range(i1, len(buggy)) if _is_code(buggy[i])), None)
            lines.update(i + 1 for i in (before, after) if i is not None)
    starts = statement_starts(rec["buggy_code"])
    return {starts.get(line, (line, line))[0] for line in lines}


def measure(rec: dict, index: int, args) -> dict:
    kinds = ["plain", *args.collectors]
    shift = index % len(kinds)
    order = kinds[shift:] + kinds[:shift]
    times: dict[str, list[float]] = {k: [] for k in kinds}
    locs = {}
    with tempfile.TemporaryDirectory(prefix="tracefix-bench-") as tmp:
        root = write_record(rec, Path(tmp) / rec["module_name"])
        for _ in range(args.repeat):
            for kind in order:
                started = time.perf_counter()
                if kind == "plain":
                    run = run_tests(root, mode="outcomes", test_timeout=args.test_timeout, python=args.python)
                else:
                    locs[kind] = locate(root, test_timeout=args.test_timeout, python=args.python,
                                        collector=None if kind == "auto" else kind)
                times[kind].append(time.perf_counter() - started)
    loc = locs[args.collectors[0]]
    module = f"{rec['module_name']}.py"
    bug = buggy_lines(rec)
    best = _bug_suspect(loc, module, bug)
    return {
        "id": rec["id"].split("/")[-1], "tests": len(run.outcomes), "failing": loc.failing,
        "timeouts": sum(o.outcome == "timeout" for o in run.outcomes),
        "bug": sorted(bug), "rank": best.rank if best else None,
        # Pessimistic rank: every line scoring as high as the bug is looked at first.
        "worst": sum(s.score >= best.score for s in loc.lines) if best else None,
        "function_first": bool(loc.functions) and loc.functions[0].path == module and any(
            loc.functions[0].line <= line <= loc.functions[0].end_line for line in bug),
        "collector": loc.collector,
        "ranks": {k: getattr(_bug_suspect(other, module, bug), "rank", None) for k, other in locs.items()},
        "seconds": {k: statistics.median(v) for k, v in times.items()},
    }


def _bug_suspect(loc, module: str, bug: set[int]):
    """The best-ranked line suspect that is a buggy line, or None."""
    hits = [s for s in loc.lines if s.path == module and s.line in bug]
    return min(hits, key=lambda s: s.rank) if hits else None


def report(rows: list[dict], args) -> None:
    kinds = args.collectors
    head = f"{'record':28} {'tests':>5} {'fail':>4} {'t/o':>3} {'bug':>8} {'rank':>4} {'worst':>5} {'plain s':>7}"
    head += "".join(f" {k + ' s':>12} {'ratio':>6}" for k in kinds)
    print(head)
    for r in rows:
        s = r["seconds"]
        line = (f"{r['id']:28} {r['tests']:>5} {r['failing']:>4} {r['timeouts']:>3} "
                f"{','.join(map(str, r['bug'])):>8} {r['rank'] or '-':>4} {r['worst'] or '-':>5} {s['plain']:>7.2f}")
        line += "".join(f" {s[k]:>12.2f} {s[k] / s['plain']:>6.2f}" for k in kinds)
        print(line)
    n = len(rows)
    print()
    for k in (1, 3, 5):
        ours = sum(r["rank"] is not None and r["rank"] <= k for r in rows)
        worst = sum(r["worst"] is not None and r["worst"] <= k for r in rows)
        print(f"buggy line in top {k}: {ours}/{n} ({100 * ours / n:.0f}%)   counting ties against us: {worst}/{n}")
    print(f"buggy function ranked first: {sum(r['function_first'] for r in rows)}/{n}")
    print(f"buggy line never run by a failing test (no rank): {sum(r['rank'] is None for r in rows)}/{n}")
    if len(kinds) > 1:
        same = sum(len(set(r["ranks"].values())) == 1 for r in rows)
        print(f"collectors {' and '.join(kinds)} give the buggy line the same rank: {same}/{n}")
    clean = [r for r in rows if not r["timeouts"]]
    for k in kinds:
        for label, subset in (("all records", rows), ("records without a hanging test", clean)):
            if not subset:
                continue
            ratios = [r["seconds"][k] / r["seconds"]["plain"] for r in subset]
            total = sum(r["seconds"][k] for r in subset) / sum(r["seconds"]["plain"] for r in subset)
            print(f"cost of locate ({rows[0]['collector'] if k == 'auto' else k}) vs plain run, {label} "
                  f"({len(subset)}): median ratio {statistics.median(ratios):.2f}, "
                  f"total {sum(r['seconds'][k] for r in subset):.1f}s / "
                  f"{sum(r['seconds']['plain'] for r in subset):.1f}s = {total:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--test-timeout", type=float, default=2.0)
    parser.add_argument("--collectors", default="auto", help="comma-separated: auto, coverage, monitoring")
    parser.add_argument("--python", default=None, help="interpreter that runs the tests (default: this one)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind per record; the median counts")
    parser.add_argument("--ids", nargs="*", help="only records whose id contains one of these")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    args.collectors = [c.strip() for c in args.collectors.split(",") if c.strip()]
    recs = records(args.limit, args.ids)
    started = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        rows = list(pool.map(lambda ir: measure(ir[1], ir[0], args), enumerate(recs)))
    report(rows, args)
    print(f"\n{len(rows)} records in {time.perf_counter() - started:.0f}s, python "
          f"{args.python or sys.executable}, per-test timeout {args.test_timeout:g}s, jobs {args.jobs}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
