"""How many mutants pass the visible tests, and which of them are right: the data behind the
mutation stage's plausible-but-wrong fixes.

    nice -n 10 .venv/bin/python bench/mutation_ambiguity.py CORPUS[:filters] ... --out bench/mutation_ambiguity.jsonl

Each record becomes the tiny visible project `run_corpus.py` repairs. Every distinct mutant
`repair.mutation_search.ranked_mutants` proposes (not only up to the first that passes) is
screened in one worker against the failing tests and the passing tests that reach the
mutated lines; each survivor is validated in full (`repair.validate`) and, only then, scored
once on the hidden tests. One JSON line per record: the validated mutants in search order
(the first is the fix the mutation stage reports), each with its hidden-test outcome.
A rerun skips the ids already in --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import hidden_tests_pass, write_visible  # noqa: E402
from run_corpus import collect_records  # noqa: E402

from tracefix.config import Config  # noqa: E402
from tracefix.errors import UserError  # noqa: E402
from tracefix.repair.mutation_search import MAX_LINES, _passing_reaching, ranked_mutants  # noqa: E402
from tracefix.repair.setup import located_start  # noqa: E402
from tracefix.repair.validate import validate  # noqa: E402
from tracefix.tracer.scratch import scratch_copy  # noqa: E402
from tracefix.tracer.worker import Worker  # noqa: E402


def run_one(record: dict, config: Config, deadline: float) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tracefix-amb-") as tmp:
        project = write_visible(record, Path(tmp) / record["module_name"])
        row = {"id": record["id"], "source": record.get("source", ""), "validated": []}
        try:
            start = located_start(project, config)
        except UserError as exc:  # a record whose visible tests cannot run (run_corpus says "error")
            return dict(row, status="error", error=str(exc), seconds=round(time.perf_counter() - started, 1))
        row = {"id": record["id"], "source": record.get("source", ""), "failing": len(start.failing),
               "passing": sum(1 for o in start.outcomes if o.outcome == "passed"), "validated": []}
        if not start.failing:
            return dict(row, status="skipped", seconds=round(time.perf_counter() - started, 1))
        _, ordered = ranked_mutants(project, start.loc, start.sources, MAX_LINES)
        tests = start.failing + _passing_reaching(start.coverage, start.outcomes, start.loc, start.sources,
                                                  MAX_LINES)
        screened = 0
        with scratch_copy(project) as scratch, Worker(scratch, tests, test_timeout=config.test_timeout) as worker:
            worker.start()
            for index, mutant in enumerate(ordered):
                if time.perf_counter() - started > deadline:
                    break
                screened += 1
                answer = worker.try_candidate(mutant.path, mutant.qualname, mutant.function_source,
                                              mutant.first_line)
                if not answer.all_passed:
                    continue
                outcome = validate(project, {mutant.path: mutant.file_text}, start.outcomes, start.failing,
                                   start.settings)
                if not outcome.accepted:
                    continue
                with tempfile.TemporaryDirectory(prefix="tracefix-amb-hidden-") as scored:
                    right = hidden_tests_pass(record, Path(scored), {mutant.path: mutant.file_text},
                                              test_timeout=config.test_timeout)
                row["validated"].append({"index": index, "operator": mutant.operator, "line": mutant.line,
                                         "description": mutant.description, "hidden_pass": right})
        return dict(row, status="done", unique=len(ordered), screened=screened,
                    seconds=round(time.perf_counter() - started, 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="+", help="path.jsonl[:field=value,...] as run_corpus.py takes them")
    parser.add_argument("--out", type=Path, default=Path("bench/mutation_ambiguity.jsonl"))
    parser.add_argument("--test-timeout", type=float, default=3.0)
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds of search per record")
    args = parser.parse_args(argv)
    records = collect_records(args.corpora)
    config = Config(test_timeout=args.test_timeout, run_timeout=120.0)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["id"] for line in args.out.read_text().splitlines() if line.strip()}
    with args.out.open("a", encoding="utf-8") as sink:
        for record in records:
            if record["id"] in done:
                continue
            row = run_one(record, config, args.deadline)
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            marks = "".join("+" if v["hidden_pass"] else "-" for v in row["validated"])
            print(f"{row['id']}: {row['status']} {row.get('screened', 0)}/{row.get('unique', 0)} screened, "
                  f"validated [{marks}] in {row['seconds']}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
