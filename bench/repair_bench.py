"""Flat vs hierarchical repair, in one run, on the bundled fixtures and a sample of LDB seeds.

    python bench/repair_bench.py --model openai/qwen2.5-coder-1.5b --api-base http://127.0.0.1:8080/v1 \
        [--limit 6] [--max-iters 2] [--fixtures average,bank,cart,flatten,search,shipping] [--out results.jsonl]

Each case is repaired twice from the same buggy copy, once per strategy, with the response
cache off (no strategy sees the other's answers). Measured per strategy: validated fixes,
model calls, prompt and completion tokens, wall seconds.

LDB seeds (/work/shared/corpus/ldb_seeds.jsonl): records with `meta.suspect` are left out.
The repair loop sees the buggy file and the *visible* tests only (`given_tests`, each assert
line one pytest test in test_given.py). A seed enters the sample only when a visible test
fails on the buggy file (otherwise there is nothing to repair). The sample is seeded and
stratified: half of it (rounded down) from seeds defining more than one function, where
the call tree has something to say. The hidden tests (`test_code`) are used once, at the
end, to score the patched file; the loop never sees them.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from corpus import CORPUS_DIR, hidden_tests_pass, write_visible  # noqa: E402
from tracefix.config import Config  # noqa: E402
from tracefix.repair.fix import fix_project  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CORPUS = CORPUS_DIR / "ldb_seeds.jsonl"
FIXTURES = ("average", "bank", "cart", "flatten", "search", "shipping")
STRATEGIES = ("flat", "hierarchical")


# --- cases -------------------------------------------------------------------------------------

def fixture_case(name: str, work: Path) -> dict:
    dest = work / "fixtures" / name
    shutil.copytree(ROOT / "fixtures" / name, dest, ignore=shutil.ignore_patterns("__pycache__", ".tracefix"))
    return {"id": f"fixture/{name}", "kind": "fixture", "root": dest}


def visible_tests_fail(root: Path) -> bool:
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "test_given.py"],
                         cwd=root, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    return run.returncode == 1


def function_count(code: str) -> int:
    try:
        return sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(ast.parse(code)))
    except SyntaxError:
        return 0


def seed_cases(limit: int, work: Path, rng_seed: int) -> list[dict]:
    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    usable = [r for r in records if not (r.get("meta") or {}).get("suspect") and r.get("given_tests")
              and not (r.get("meta") or {}).get("needs_numpy") and function_count(r["buggy_code"]) > 0]
    rng = random.Random(rng_seed)
    multi = [r for r in usable if function_count(r["buggy_code"]) > 1]
    single = [r for r in usable if function_count(r["buggy_code"]) == 1]
    rng.shuffle(multi)
    rng.shuffle(single)
    cases: list[dict] = []
    for pool, wanted in ((multi, limit // 2), (single, limit - limit // 2)):
        taken = 0
        for record in pool:
            if taken >= wanted:
                break
            dest = work / "seeds" / record["id"].replace("/", "_")
            write_visible(record, dest)
            if not visible_tests_fail(dest):
                shutil.rmtree(dest)
                continue
            cases.append({"id": record["id"], "kind": "seed", "root": dest, "record": record})
            taken += 1
    return cases


# --- one repair, scored ------------------------------------------------------------------------

def repair(case: dict, strategy: str, config: Config, work: Path) -> dict:
    root = work / "runs" / strategy / case["root"].name
    shutil.copytree(case["root"], root)
    started = time.perf_counter()
    error = ""
    try:
        report = fix_project(root, replace(config, strategy=strategy))
    except Exception as exc:  # a model or environment failure: counted as no fix, reported
        report, error = None, f"{type(exc).__name__}: {exc}"
    seconds = round(time.perf_counter() - started, 1)
    usage = report.usage if report is not None else None
    result = {
        "case": case["id"], "strategy": strategy, "status": report.status if report else "error", "error": error,
        "calls": usage.calls if usage else 0, "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0, "seconds": seconds,
        "candidates": len(report.candidates) if report else 0,
        "prime": report.hierarchy.prime if report and report.hierarchy else None,
        "path": len(report.hierarchy.path) if report and report.hierarchy else None,
        "fixed_function": next((c.function for c in (report.candidates if report else ())
                                if c.outcome is not None and c.outcome.accepted), None),
    }
    if case["kind"] == "seed":
        edited = report.edited if report and report.status == "fixed" else {}
        result["hidden_pass"] = hidden_tests_pass(case["record"], work / "score" / strategy / case["root"].name,
                                                  edited)
    return result


# --- the table ---------------------------------------------------------------------------------

def summary(results: list[dict]) -> str:
    lines = ["| strategy | cases | validated fixes | hidden tests pass (seeds) | calls | prompt tok | completion tok "
             "| seconds |", "|---|---|---|---|---|---|---|---|"]
    for strategy in STRATEGIES:
        rows = [r for r in results if r["strategy"] == strategy]
        seeds = [r for r in rows if "hidden_pass" in r]
        lines.append(
            f"| {strategy} | {len(rows)} | {sum(r['status'] == 'fixed' for r in rows)}/{len(rows)} "
            f"| {sum(r['hidden_pass'] for r in seeds)}/{len(seeds)} | {sum(r['calls'] for r in rows)} "
            f"| {sum(r['prompt_tokens'] for r in rows)} | {sum(r['completion_tokens'] for r in rows)} "
            f"| {sum(r['seconds'] for r in rows):.0f} |")
    lines += ["", "| case | strategy | status | hidden | calls | tokens (p+c) | s | fixed function | prime suspect |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        hidden = {True: "pass", False: "fail"}.get(r.get("hidden_pass"), "-")
        lines.append(f"| {r['case']} | {r['strategy']} | {r['status']}{' (' + r['error'][:60] + ')' if r['error'] else ''}"
                     f" | {hidden} | {r['calls']} | {r['prompt_tokens']}+{r['completion_tokens']} | {r['seconds']} "
                     f"| {r['fixed_function'] or '-'} | {r['prime'] or '-'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-base")
    parser.add_argument("--limit", type=int, default=6, help="LDB seeds in the sample (default 6)")
    parser.add_argument("--fixtures", default=",".join(FIXTURES), help="comma-separated, or '' for none")
    parser.add_argument("--max-iters", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=768)
    parser.add_argument("--request-timeout", type=float,
                        default=float(os.environ.get("TRACEFIX_REQUEST_TIMEOUT", 600)))
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--out", type=Path, help="JSONL of every run")
    args = parser.parse_args(argv)

    config = Config(model=args.model, api_base=args.api_base, cache_dir=None, max_iters=args.max_iters,
                    max_tokens=args.max_tokens, request_timeout=args.request_timeout, retries=1,
                    test_timeout=10.0, run_timeout=300.0)
    with tempfile.TemporaryDirectory(prefix="tracefix-repair-bench-") as tmp:
        work = Path(tmp)
        cases = [fixture_case(n, work) for n in args.fixtures.split(",") if n]
        cases += seed_cases(args.limit, work, args.seed)
        print(f"{len(cases)} cases: {', '.join(c['id'] for c in cases)}", file=sys.stderr)
        results = []
        for case in cases:
            for strategy in STRATEGIES:
                result = repair(case, strategy, config, work)
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
                if args.out:
                    with open(args.out, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(result) + "\n")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
