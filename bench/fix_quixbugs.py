"""`tracefix fix` end to end with a real model on QuixBugs records.

    TRACEFIX_REQUEST_TIMEOUT=900 .venv/bin/python bench/fix_quixbugs.py \
        --model openai/qwen2.5-coder-1.5b --api-base http://127.0.0.1:8080/v1 --ids gcd,bitcount,...

Each record is written to a temp dir (buggy module, support files, its tests; QuixBugs has no
visible/hidden split, so the tests the loop sees are the ones that score it). tracefix runs as
a user runs it, in a child process, with `--format json`; the figures are its own report
(status, model calls, tokens, seconds). A fix is counted only when tracefix validated it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localize_quixbugs import records, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def fix_one(rec: dict, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="tracefix-qb-") as tmp:
        project = write_record(rec, Path(tmp) / rec["module_name"])
        cmd = [sys.executable, "-m", "tracefix", "fix", str(project), "--model", args.model,
               "--max-iters", str(args.max_iters), "--cache", args.cache, "--format", "json",
               "--test-timeout", str(args.test_timeout)]
        if args.api_base:
            cmd += ["--api-base", args.api_base]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout,
                              env=dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True"))
        if proc.returncode == 2 or not proc.stdout.strip():
            return {"id": rec["id"], "status": "error", "error": proc.stderr.strip()[-300:]}
        report = json.loads(proc.stdout)
        usage = report.get("usage") or {}
        return {"id": rec["id"], "status": report["status"], "calls": usage.get("calls", 0),
                "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
                "seconds": report["seconds"], "iterations": len(report["candidates"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--api-base")
    parser.add_argument("--ids", help="comma-separated record ids (substrings)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--max-iters", type=int, default=3)
    parser.add_argument("--test-timeout", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per record")
    parser.add_argument("--cache", default="off")
    parser.add_argument("--out")
    args = parser.parse_args()
    rows = []
    for rec in records(args.limit, args.ids.split(",") if args.ids else None):
        row = fix_one(rec, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
    fixed = sum(r["status"] == "fixed" for r in rows)
    print(f"fixed {fixed}/{len(rows)}; calls {sum(r.get('calls', 0) for r in rows)}; "
          f"tokens {sum(r.get('tokens', 0) for r in rows)}; "
          f"seconds {sum(r.get('seconds', 0) for r in rows):.0f}")


if __name__ == "__main__":
    main()
