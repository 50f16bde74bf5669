"""The model-free mutation search on real libraries' own suites: fixed or not, seconds, candidates per second.

    python bench/mutation_real.py [--only toolz] [--out bench/mutation_real_results.jsonl]

Each injected bug of `bench/real_projects.py` (same pinned sdists, same venvs, same bug list)
is written into a fresh unpacked copy of its library, and `tracefix fix --strategy mutation`
runs on it with the library's venv as the project's Python, the whole suite as the tests.
A fix counts as the reference when the fixed file equals the unmodified one (the injected
edit undone exactly). Rows are JSON lines, resumable: a bug already in `--out` is skipped.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_projects as rp  # noqa: E402

DEFAULT_OUT = rp.HERE / "mutation_real_results.jsonl"
SUMMARY = re.compile(r"mutation search: (\d+) of (\d+) distinct mutants screened \((\d+) generated, ([\d.]+)/s\)")


def screened_of(warnings: list[str]) -> dict:
    """The search's own figures from its summary warning."""
    for warning in warnings:
        found = SUMMARY.search(warning)
        if found:
            screened, unique, generated, rate = found.groups()
            return {"screened": int(screened), "unique": int(unique), "generated": int(generated),
                    "per_second": float(rate)}
    return {}


def fix_row(bug: rp.Bug, cache: Path, base: str) -> dict:
    lib = rp.LIBRARIES[bug.library]
    tree = rp.fresh_tree(rp.sdist_of(lib, cache), cache / "work-mutation" / bug.id.replace("/", "_"))
    version = rp.python_version(base)
    python = rp.venv_python(lib, base, version, tree, cache)
    original = (tree / bug.path).read_text(encoding="utf-8")
    with rp.injected(tree, bug):
        started = time.perf_counter()
        _seconds, done = rp.run(rp.tracefix_cmd("fix", str(tree), "--strategy", "mutation", "--format", "json",
                                                "--python", python))
        seconds = time.perf_counter() - started
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"id": bug.id, "python": version, "status": "error", "error": done.stderr.strip()[-500:]}
    edited = (report.get("edited") or {}).get(bug.path)
    return {"id": bug.id, "python": version, "kind": bug.kind, "status": report["status"],
            "seconds": round(seconds, 1), "same_as_reference": edited == original,
            "failing": len(report.get("failing", [])), **screened_of(report.get("warnings", [])),
            "winner": next((w.split(": ", 1)[1] for w in report.get("warnings", [])
                            if w.startswith("fixed without a model call")), "")}


def table(rows: list[dict]) -> str:
    lines = ["| bug | kind | status | same as reference | screened / distinct | candidates/s | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['id']} | {r.get('kind', '-')} | {r['status']} | {r.get('same_as_reference', '-')} "
                     f"| {r.get('screened', '-')} / {r.get('unique', '-')} | {r.get('per_second', '-')} "
                     f"| {r.get('seconds', '-')} |")
    fixed = [r for r in rows if r["status"] == "fixed"]
    lines.append(f"\nfixed without a model: {len(fixed)}/{len(rows)}, "
                 f"{sum(bool(r.get('same_as_reference')) for r in fixed)} identical to the original code")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="the Python the libraries' venvs are made from")
    parser.add_argument("--only", action="append", choices=sorted(rp.LIBRARIES))
    parser.add_argument("--cache", type=Path, default=rp.DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    rows = [json.loads(l) for l in args.out.read_text().splitlines() if l.strip()] if args.out.exists() else []
    if not args.table_only:
        done = {r["id"] for r in rows if r["status"] != "error"}
        for bug in rp.BUGS:
            if bug.id in done or (args.only and bug.library not in args.only):
                continue
            row = fix_row(bug, args.cache, args.python)
            print(f"{bug.id}: {row['status']} in {row.get('seconds', '-')}s", file=sys.stderr)
            rows = [r for r in rows if r["id"] != bug.id] + [row]
            with args.out.open("a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
