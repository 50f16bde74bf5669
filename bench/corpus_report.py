"""The corpus run's rows and the tables made from them (`bench/run_corpus.py` writes the rows).

A row is one (record, strategy) outcome, as one JSONL line. Tables count only the records
every strategy finished (a paired comparison); "stages" are derived from those rows.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

# --- the rows --------------------------------------------------------------------------------

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


def report(rows: list[dict], strategies: list[str], with_records: bool) -> str:
    return summary(rows, strategies) + ("\n\n" + per_record(rows, strategies) if with_records else "")
