"""Repair rate, tokens and time on real bug corpora: tracefix's strategies against a no-trace baseline.

    python bench/run_corpus.py /work/shared/corpus/quixbugs.jsonl \
        /work/shared/corpus/ldb_seeds.jsonl:source=LDB-seeds-humaneval,meta.generator_model=gpt-3.5-turbo-0613 \
        --model openai/qwen2.5-coder-1.5b --api-base http://127.0.0.1:8080/v1 \
        [--strategy baseline,flat,hierarchical] [--limit N] [--ids a,b] [--jobs 1] \
        [--max-iters 2] [--test-timeout 2] [--seed N] [--out bench/corpus_results.jsonl] [--redo a,b] \
        [--report-only] [--per-record]

A corpus argument is a JSONL path, optionally followed by `:field=value,...` filters on
(dotted) record fields. Records are taken from the corpora in turn (one from each, then the
next), so a run cut short still covers all of them.

Honesty rules (the corpus README's): each record is written into a temp dir as a tiny
project holding the buggy file and the *visible* tests only (a seed's `given_tests`;
QuixBugs' own test file, it has no split). Every strategy repairs its own fresh copy of
that project with the same model, iteration budget and validation, the response cache off.
Only then, once, is the result scored on the hidden `test_code`; no strategy ever sees it.

Strategies: `baseline` is plain self-repair (code + failing tests + errors, no trace,
`repair.baseline`); `flat` and `hierarchical` are tracefix's (`repair.fix`). The strategies of
one record run back to back, in an order that rotates from record to record, so drift on a
noisy machine hits them alike. Every outcome is one JSONL row in `--out`; a rerun with the
same `--out` skips the (record, strategy) pairs already there, so an interrupted run resumes;
`--redo` drops the named records' rows first, to run them again after a change that affects them.
The table at the end counts only records every strategy finished (paired comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from corpus import hidden_tests_pass, load_records, write_visible  # noqa: E402
from debugger.config import Config  # noqa: E402
from repair.fix import fix_project  # noqa: E402
from tracer.runner import run_tests  # noqa: E402

STRATEGIES = ("baseline", "flat", "hierarchical")
MAX_ERRORS_IN_A_ROW = 3  # then the model is down, not unlucky: stop rather than fill the results with errors


# --- which records ------------------------------------------------------------------------------

def parse_corpus_arg(arg: str) -> tuple[Path, dict[str, str]]:
    """"path.jsonl:field=value,meta.x=y" -> (path, filters)."""
    path, _, spec = arg.partition(":")
    filters = {}
    for item in filter(None, spec.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"run_corpus: filter {item!r} is not field=value")
        filters[key.strip()] = value.strip()
    if not Path(path).is_file():
        raise SystemExit(f"run_corpus: no corpus file {path}")
    return Path(path), filters


def interleave(groups: list[list[dict]]) -> list[dict]:
    """One record from each corpus in turn."""
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out


# --- one record -------------------------------------------------------------------------------

def failure_kind(outcomes) -> str:
    """The bug's category as the buggy code shows it on the visible tests."""
    bad = [o for o in outcomes if o.bad]
    if any(o.outcome == "timeout" for o in bad):
        return "hangs"
    if all(o.message.startswith(("AssertionError", "assert")) for o in bad):
        return "wrong result"
    return "raises"


def run_record(record: dict, strategies: list[str], config: Config, work: Path, done: set[tuple[str, str]],
               rotation: int):
    """Yields one row per strategy not yet done, as each finishes."""
    visible = write_visible(record, work / "visible" / _slug(record["id"]))
    before = run_tests(visible, test_timeout=config.test_timeout, run_timeout=config.run_timeout)
    base = {"id": record["id"], "source": record.get("source", ""), "model": config.model,
            "max_iters": config.max_iters, "python": sys.version.split()[0],
            **({"seed": config.seed} if config.seed is not None else {})}
    todo = [s for s in strategies if (record["id"], s) not in done]
    if not any(o.bad for o in before.outcomes):
        why = before.crashed or "the visible tests pass on the buggy code: nothing to repair"
        yield from (dict(base, strategy=s, status="skipped", error=why) for s in todo)
        return
    base["category"] = failure_kind(before.outcomes)
    order = todo[rotation % len(todo):] + todo[:rotation % len(todo)] if todo else []
    for strategy in order:
        yield repair(record, strategy, config, visible, work, base)


def repair(record: dict, strategy: str, config: Config, visible: Path, work: Path, base: dict) -> dict:
    root = work / "runs" / strategy / visible.name
    shutil.copytree(visible, root)
    started = time.perf_counter()
    report, error = None, ""
    log = config.log_path / f"{visible.name}.{strategy}.jsonl" if config.log_path else None
    try:
        report = fix_project(root, replace(config, strategy=strategy, log_path=log))
    except Exception as exc:  # a model or environment failure: no fix, and said so in the row
        error = f"{type(exc).__name__}: {exc}"[:300]
    seconds = round(time.perf_counter() - started, 1)
    usage = report.usage if report is not None else None
    fixed = report is not None and report.status == "fixed"
    edited = report.edited if fixed else {}
    return dict(
        base, strategy=strategy, status=report.status if report else "error", error=error,
        calls=usage.calls if usage else 0, prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0, seconds=seconds,
        candidates=len(report.candidates) if report else 0,
        fixed_in=next((c.function for c in report.candidates if c.outcome and c.outcome.accepted), None)
        if fixed else None,
        hidden_pass=hidden_tests_pass(record, work / "score" / strategy / visible.name, edited,
                                      test_timeout=config.test_timeout),
        diff=report.diff if fixed else "")


def _slug(record_id: str) -> str:
    return record_id.replace("/", "_")


# --- the table --------------------------------------------------------------------------------

def load_rows(path: Path | None) -> list[dict]:
    if path is None or not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interrupted run: that pair runs again
            continue
    return rows


def without(rows: list[dict], patterns: list[str], strategies: list[str]) -> list[dict]:
    """The rows left when the chosen strategies' rows of the records matching `patterns` go."""
    patterns = [p for p in patterns if p]
    return [r for r in rows if not (r["strategy"] in strategies and any(p in r["id"] for p in patterns))]


def write_rows(path: Path, rows: list[dict]) -> None:
    # Atomically: the file is the only record of hours of model time.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def paired(rows: list[dict], strategies: list[str]) -> list[dict]:
    """Rows of the records every strategy finished, skipped records left out."""
    latest = {(r["id"], r["strategy"]): r for r in rows if r["strategy"] in strategies}
    complete = {i for i, _ in latest if all((i, s) in latest for s in strategies)}
    return [r for (i, _), r in latest.items() if i in complete and r["status"] != "skipped"]


def summary(rows: list[dict], strategies: list[str]) -> str:
    skipped = sorted({r["id"] for r in rows if r["status"] == "skipped"})
    rows = paired(rows, strategies)
    records = len({r["id"] for r in rows})
    lines = [f"{records} records, every strategy on each (paired)."
             + (f" {len(skipped)} more skipped: no visible test fails on the buggy code." if skipped else ""), "",
             "| strategy | fixed / attempted | repair rate | hidden tests pass (pass@1) | calls / bug "
             "| prompt tok / bug | completion tok / bug | tokens / fixed bug (prompt + completion) | median s / bug "
             "| errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for strategy in strategies:
        mine = [r for r in rows if r["strategy"] == strategy]
        n = len(mine) or 1
        fixed = sum(r["status"] == "fixed" for r in mine)
        hidden = sum(bool(r.get("hidden_pass")) for r in mine)
        lines.append(
            f"| {strategy} | {fixed}/{len(mine)} | {fixed / n:.0%} | {hidden}/{len(mine)} ({hidden / n:.0%}) "
            f"| {sum(r['calls'] for r in mine) / n:.1f} | {sum(r['prompt_tokens'] for r in mine) / n:,.0f} "
            f"| {sum(r['completion_tokens'] for r in mine) / n:,.0f} "
            f"| {per_fixed(mine, fixed)} "
            f"| {statistics.median(r['seconds'] for r in mine) if mine else 0:.0f} "
            f"| {sum(r['status'] == 'error' for r in mine)} |")
    for key, title in (("source", "corpus"), ("category", "bug category (how the buggy code fails)")):
        groups = sorted({r.get(key) or "-" for r in rows})
        lines += ["", f"| {title} | records | " + " | ".join(f"{s} fixed" for s in strategies) + " |",
                  "|---|---|" + "---|" * len(strategies)]
        for group in groups:
            mine = [r for r in rows if (r.get(key) or "-") == group]
            cells = []
            for strategy in strategies:
                these = [r for r in mine if r["strategy"] == strategy]
                cells.append(f"{sum(r['status'] == 'fixed' for r in these)}/{len(these)}")
            lines.append(f"| {group} | {len({r['id'] for r in mine})} | " + " | ".join(cells) + " |")
    return "\n".join(lines + overlap(rows, strategies) + fixes(rows, strategies) + staged(rows, strategies))


def per_fixed(rows: list[dict], fixed: int) -> str:
    """All tokens spent, fixed or not, over the bugs fixed: what one fix costs."""
    if not fixed:
        return "-"
    prompt, completion = (sum(r[k] for r in rows) for k in ("prompt_tokens", "completion_tokens"))
    return f"{(prompt + completion) / fixed:,.0f} ({prompt / fixed:,.0f} + {completion / fixed:,.0f})"


def overlap(rows: list[dict], strategies: list[str]) -> list[str]:
    """Each strategy against the first, record by record: on a paired sample this small, the
    records only one side fixes say more than the two repair rates."""
    fixed = {(r["id"], r["strategy"]) for r in rows if r["status"] == "fixed"}
    records = {r["id"] for r in rows}
    first = strategies[0]
    lines = ["", f"| against {first} | fixed by both | only by {first} | only by it | by neither |",
             "|---|---|---|---|---|"]
    theirs = {i for i in records if (i, first) in fixed}
    for strategy in strategies[1:]:
        mine = {i for i in records if (i, strategy) in fixed}
        lines.append(f"| {strategy} | {len(mine & theirs)} | {len(theirs - mine)} | {len(mine - theirs)} "
                     f"| {len(records - mine - theirs)} |")
    return lines if len(strategies) > 1 else []


def changed_lines(diff: str) -> int:
    """Lines a unified diff removes or adds, its headers left out."""
    return sum(1 for line in diff.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---")))


def fixes(rows: list[dict], strategies: list[str]) -> list[str]:
    """What the accepted patches look like: how many came from the first candidate, and how
    many lines they change (a reviewer merges a two-line fix more readily than a rewrite)."""
    lines = ["", "| the fixes | fixed | on the first candidate | lines changed, median | largest |",
             "|---|---|---|---|---|"]
    for strategy in strategies:
        mine = [r for r in rows if r["strategy"] == strategy and r["status"] == "fixed"]
        sizes = [changed_lines(r["diff"]) for r in mine if r.get("diff")]
        lines.append(f"| {strategy} | {len(mine)} | {sum(r.get('candidates') == 1 for r in mine)} "
                     f"| {f'{statistics.median(sizes):g}' if sizes else '-'} | {max(sizes) if sizes else '-'} |")
    return lines


def staged_row(stage_rows: list[dict]) -> dict:
    """What `--strategy a,b` would have done on a record, had each stage answered as it did in
    its own run here: the stages' costs up to the first that fixed it, and that stage's result."""
    spent = []
    for row in stage_rows:
        spent.append(row)
        if row["status"] == "fixed":
            break
    last = spent[-1]
    total = {k: sum(r.get(k) or 0 for r in spent)
             for k in ("calls", "prompt_tokens", "completion_tokens", "seconds", "candidates")}
    return dict(last, **total, strategy=",".join(r["strategy"] for r in stage_rows))


def staged(rows: list[dict], strategies: list[str]) -> list[str]:
    """The first strategy and each other one as two stages, in both orders (`repair.stages`)."""
    if len(strategies) < 2:
        return []
    by = {(r["id"], r["strategy"]): r for r in rows}
    records = list(dict.fromkeys(r["id"] for r in rows))
    lines = ["", "| stages (derived from the rows above) | fixed / attempted | hidden tests pass | tokens / bug "
             "| tokens / fixed bug (prompt + completion) | median s / bug |", "|---|---|---|---|---|---|"]
    first = strategies[0]
    for order in [(first, s) for s in strategies[1:]] + [(s, first) for s in strategies[1:]]:
        mine = [staged_row([by[(i, s)] for s in order]) for i in records]
        fixed = sum(r["status"] == "fixed" for r in mine)
        tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in mine)
        lines.append(f"| {', then '.join(order)} | {fixed}/{len(mine)} | {sum(bool(r.get('hidden_pass')) for r in mine)} "
                     f"| {tokens / max(len(mine), 1):,.0f} | {per_fixed(mine, fixed)} "
                     f"| {statistics.median(r['seconds'] for r in mine) if mine else 0:.0f} |")
    return lines


def per_record(rows: list[dict], strategies: list[str]) -> str:
    """One line per record: each strategy's outcome ("fixed", "fixed, hidden fail", "no fix")
    with its calls and tokens."""
    rows = paired(rows, strategies)
    by = {(r["id"], r["strategy"]): r for r in rows}
    lines = ["| record | category | " + " | ".join(strategies) + " |", "|---|---|" + "---|" * len(strategies)]
    for record_id in dict.fromkeys(r["id"] for r in rows):
        cells = []
        for strategy in strategies:
            r = by[(record_id, strategy)]
            outcome = {"fixed": "fixed" if r.get("hidden_pass") else "fixed, hidden fail"}.get(
                r["status"], r["status"].replace("_", " "))
            cells.append(f"{outcome} ({r['calls']} calls, {r['prompt_tokens'] + r['completion_tokens']:,} tok)")
        lines.append(f"| {record_id} | {by[(record_id, strategies[0])].get('category', '-')} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", help="path.jsonl[:field=value,...]")
    parser.add_argument("--model")
    parser.add_argument("--api-base")
    parser.add_argument("--strategy", default=",".join(STRATEGIES), help="comma-separated (default: all three)")
    parser.add_argument("--limit", type=int, help="records per corpus")
    parser.add_argument("--ids", help="comma-separated substrings of record ids")
    parser.add_argument("--jobs", type=int, default=1, help="records repaired at once (default 1)")
    parser.add_argument("--max-iters", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=768, help="completion tokens per model call")
    parser.add_argument("--token-budget", type=int, default=6000, help="prompt tokens per model call")
    parser.add_argument("--test-timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, help="sampling seed for every request (repeatable retries; off by default)")
    parser.add_argument("--request-timeout", type=float, default=float(os.environ.get("TRACEFIX_REQUEST_TIMEOUT",
                                                                                     900)))
    parser.add_argument("--out", type=Path, help="JSONL of every outcome; resumed from when it exists")
    parser.add_argument("--log-dir", type=Path, help="keep every prompt and answer, one JSONL per record and strategy")
    parser.add_argument("--redo", help="comma-separated substrings of record ids: drop their rows for the chosen "
                                       "strategies from --out and run them again (after a fix that changes them)")
    parser.add_argument("--report-only", action="store_true", help="print the table from --out and stop")
    parser.add_argument("--per-record", action="store_true", help="also print every record's outcomes")
    args = parser.parse_args(argv)

    strategies = [s for s in args.strategy.split(",") if s]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise SystemExit(f"run_corpus: unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}")
    rows = load_rows(args.out)
    if args.redo:
        if not args.out:
            raise SystemExit("run_corpus: --redo needs --out (the rows to drop)")
        kept = without(rows, args.redo.split(","), strategies)
        print(f"run_corpus: {len(rows) - len(kept)} rows dropped from {args.out} to run again", file=sys.stderr)
        rows = kept
        write_rows(args.out, rows)
    if args.report_only:
        print(report(rows, strategies, args.per_record))
        return 0
    if not args.model:
        raise SystemExit("run_corpus: --model is required (or --report-only)")
    ids = args.ids.split(",") if args.ids else None
    groups = []
    for arg in args.corpora:
        path, where = parse_corpus_arg(arg)
        groups.append(load_records(path, where, ids)[:args.limit])
    records = interleave(groups)
    # A row that ended in an error (model unreachable, ...) says nothing of the strategy: run it again.
    done = {(r["id"], r["strategy"]) for r in rows if r["status"] != "error"}
    todo = [r for r in records if any((r["id"], s) not in done for s in strategies)]
    print(f"{len(records)} records, {len(records) - len(todo)} already done in {args.out}", file=sys.stderr)

    config = Config(model=args.model, api_base=args.api_base, cache_dir=None, max_iters=args.max_iters,
                    max_tokens=args.max_tokens, token_budget=args.token_budget,
                    request_timeout=args.request_timeout, retries=1, test_timeout=args.test_timeout,
                    run_timeout=300.0, log_path=args.log_dir.resolve() if args.log_dir else None, seed=args.seed)
    lock, stop, errors = threading.Lock(), threading.Event(), []
    with tempfile.TemporaryDirectory(prefix="tracefix-corpus-") as tmp:
        def one(indexed: tuple[int, dict]) -> None:
            index, record = indexed
            if stop.is_set():
                return
            for row in run_record(record, strategies, config, Path(tmp) / str(index), done, index):
                with lock:
                    errors[:] = errors + [row["error"]] if row["status"] == "error" else []
                    if len(errors) >= MAX_ERRORS_IN_A_ROW:
                        stop.set()
                    rows.append(row)
                    print(json.dumps({k: v for k, v in row.items() if k != "diff"}), file=sys.stderr, flush=True)
                    if args.out:
                        with open(args.out, "a", encoding="utf-8") as handle:
                            handle.write(json.dumps(row) + "\n")

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, enumerate(todo)))
    if stop.is_set():
        print(f"run_corpus: stopped after {len(errors)} failed runs in a row: {errors[-1]}", file=sys.stderr)
        return 1
    print(report(rows, strategies, args.per_record))
    return 0


def report(rows: list[dict], strategies: list[str], with_records: bool) -> str:
    return summary(rows, strategies) + ("\n\n" + per_record(rows, strategies) if with_records else "")


if __name__ == "__main__":
    sys.exit(main())
