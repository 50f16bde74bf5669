"""Repair rate, tokens and time on real bug corpora: tracefix's strategies against a no-trace baseline.

    python bench/run_corpus.py /work/shared/corpus/quixbugs.jsonl \
        /work/shared/corpus/ldb_seeds.jsonl:source=LDB-seeds-humaneval,meta.generator_model=gpt-3.5-turbo-0613 \
        --model openai/qwen2.5-coder-1.5b --api-base http://127.0.0.1:8080/v1 \
        [--strategy baseline,flat,hierarchical,auto@verdicts=off] [--limit N] [--ids a,b] [--jobs 1] \
        [--max-iters 2] [--test-timeout 2] [--seed N] [--out bench/corpus_results.jsonl] [--redo a,b] \
        [--report-only] [--per-record]

A corpus argument is a JSONL path, optionally followed by `:field=value,...` filters on
(dotted) record fields; `sample=N` (with `sample_seed=S`, default 0) keeps N of the matching
records drawn with that seed. Records are taken from the corpora in turn (one from each, then the
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
The table at the end (`bench/corpus_report.py`) counts only records every strategy finished.

A strategy may carry settings after `@` (`auto@verdicts=off`): an ablation arm, run and reported
under that whole name beside the unmodified strategy, on the same records and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
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
from corpus_report import load_rows, report, without, write_rows  # noqa: E402
from tracefix.config import PORTFOLIOS, STRATEGIES as config_strategies, VERDICTS, Config  # noqa: E402
from tracefix.repair.fix import fix_project  # noqa: E402
from tracefix.tracer.runner import run_tests  # noqa: E402

STRATEGIES = ("baseline", "flat", "hierarchical")  # the default comparison
# Any strategy or portfolio `tracefix fix --strategy` takes; "a+b" is the staged run "a,b".
KNOWN = (*config_strategies, *PORTFOLIOS)
SETTINGS = {"verdicts": VERDICTS}  # what an arm may set after "@", and to which values
COMMIT = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
                        capture_output=True, text=True).stdout.strip()  # the code a row was measured on
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


def collect_records(corpora: list[str], ids: list[str] | None = None, limit: int | None = None) -> list[dict]:
    """The records the corpus arguments name, taken from the corpora in turn. `ids` pick among
    the sampled records: drawn first, a sample is the same with or without them."""
    groups = []
    for arg in corpora:
        path, where = parse_corpus_arg(arg)
        sample, sample_seed = where.pop("sample", None), int(where.pop("sample_seed", 0))
        records = load_records(path, where)
        records = sampled(records, int(sample), sample_seed) if sample else records
        if ids:
            all_ids = {r["id"] for r in records}
            records = [r for r in records if _named(r["id"], ids, all_ids)]
        groups.append(records[:limit])
    return interleave(groups)


def _named(record_id: str, ids: list[str], all_ids: set[str]) -> bool:
    """An entry that is a whole id names that record alone ("MBPP_13" is not "MBPP_136"); any
    other entry names every id it is part of."""
    return record_id in ids or any(i in record_id for i in ids if i not in all_ids)


def sampled(records: list[dict], n: int, seed: int = 0) -> list[dict]:
    """`n` records drawn with a fixed seed (`path:...,sample=40`), in corpus order: the same
    draw on every machine and every resumed run."""
    import random

    chosen = set(random.Random(seed).sample(range(len(records)), min(n, len(records))))
    return [r for i, r in enumerate(records) if i in chosen]


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
            "max_iters": config.max_iters, "python": sys.version.split()[0], "commit": COMMIT,
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
        report = fix_project(root, arm_config(strategy, replace(config, log_path=log)))
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
        without_model=fixed and (usage is None or usage.calls == 0),
        fixed_in=next((c.function for c in report.candidates if c.outcome and c.outcome.accepted), None)
        if fixed else None,
        hidden_pass=hidden_tests_pass(record, work / "score" / strategy / visible.name, edited,
                                      test_timeout=config.test_timeout),
        diff=report.diff if fixed else "")


def arm_config(strategy: str, config: Config) -> Config:
    """The config one strategy runs with: "a+b" is the staged run "a,b", and "a@key=value;key=value"
    changes the settings that follow the "@" (";" between them: "," separates strategies)."""
    name, _, settings = strategy.partition("@")
    return replace(config, strategy=name.replace("+", ","), **dict(_settings(settings)))


def _settings(text: str) -> list[tuple[str, str]]:
    pairs = [item.partition("=") for item in text.split(";") if item]
    return [(key, value) for key, _, value in pairs]


def unknown_strategy(strategy: str) -> str:
    """Why `strategy` is not one run_corpus can run, or "" when it is."""
    name, _, settings = strategy.partition("@")
    bad = next((part for part in name.split("+") if part not in KNOWN), None)
    if bad is not None:
        return f"unknown strategy {bad!r}; choose from {', '.join(KNOWN)} (or several joined by +)"
    for key, value in _settings(settings):
        if value not in SETTINGS.get(key, ()):
            allowed = "; ".join(f"{k}={'|'.join(v)}" for k, v in SETTINGS.items())
            return f"setting {key}={value!r} in {strategy!r} is not one of {allowed}"
    return ""


def _slug(record_id: str) -> str:
    return record_id.replace("/", "_")


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
    problem = next(filter(None, map(unknown_strategy, strategies)), "")
    if problem:
        raise SystemExit(f"run_corpus: {problem}")
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
    records = collect_records(args.corpora, args.ids.split(",") if args.ids else None, args.limit)
    # A row that ended in an error (model unreachable, ...) says nothing of the strategy: run it again.
    # Rows of another seed are another repetition: they do not count as done for this one.
    done = {(r["id"], r["strategy"]) for r in rows if r["status"] != "error" and r.get("seed") == args.seed}
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


if __name__ == "__main__":
    sys.exit(main())
