"""Repair rate at fixed token budgets per bug (a pass@t curve), from `run_corpus.py`'s rows.

    python bench/budget_curve.py --out bench/corpus_results_v5.jsonl [more.jsonl ...] --strategies baseline,default \
        [--budgets 0,1000,2000,5000,10000,20000] [--svg bench/budget_curve.svg]

A run stops at its first validated fix, so a row's tokens are what that fix cost: cutting each
trajectory at budget t counts a record as fixed at t when it was fixed with at most t tokens
(Olausson et al.'s pass@t, one trajectory per record and seed). Rows carry a `seed`; each
seed is one repetition. The difference between two strategies is paired by record: per
record, the mean over seeds of (fixed by A at t) - (fixed by B at t); the interval is that
mean +- 1.96 standard errors over records, so a difference whose interval holds 0 is noise.
Plausible-but-wrong: validated on the visible tests, failing the hidden ones. With two seeds
or more, the table also gives each strategy's seed-to-seed difference on the records both
seeds ran: the noise of repeated runs, which a difference between strategies has to beat.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus_report import load_rows  # noqa: E402

BUDGETS = (0, 1000, 2000, 5000, 10000, 20000)


def tokens(row: dict) -> int:
    return (row.get("prompt_tokens") or 0) + (row.get("completion_tokens") or 0)


def fixed_at(row: dict, budget: int, hidden: bool) -> bool:
    ok = bool(row.get("hidden_pass")) if hidden else row["status"] == "fixed"
    return ok and tokens(row) <= budget


def complete_rows(rows: list[dict], strategies: list[str]) -> dict[tuple[str, str, object], dict]:
    """(record, strategy, seed) -> row, for the (record, seed) pairs every strategy finished."""
    latest = {(r["id"], r["strategy"], r.get("seed")): r for r in rows
              if r["strategy"] in strategies and r["status"] not in ("error", "skipped")}
    return {k: v for k, v in latest.items() if all((k[0], s, k[2]) in latest for s in strategies)}


def rate(by: dict, strategy: str, budget: int, hidden: bool) -> tuple[float, int]:
    mine = [r for (_i, s, _seed), r in by.items() if s == strategy]
    return (sum(fixed_at(r, budget, hidden) for r in mine) / len(mine) if mine else 0.0), len(mine)


def paired_difference(by: dict, a: str, b: str, budget: int, hidden: bool) -> tuple[float, float, int]:
    """(mean difference a - b per record, its 95% half-width, records)."""
    diffs: dict[str, list[int]] = {}
    for (record, strategy, seed), row in by.items():
        if strategy != a:
            continue
        other = by[(record, b, seed)]
        diffs.setdefault(record, []).append(int(fixed_at(row, budget, hidden)) - int(fixed_at(other, budget, hidden)))
    means = [sum(d) / len(d) for d in diffs.values()]
    if len(means) < 2:
        return (means[0] if means else 0.0), float("nan"), len(means)
    return statistics.mean(means), 1.96 * statistics.stdev(means) / math.sqrt(len(means)), len(means)


def seed_difference(by: dict, strategy: str, a, b, budget: int, hidden: bool) -> tuple[float, float, int]:
    """(mean of fixed under seed b - fixed under seed a, its 95% half-width, records run under both)."""
    diffs = [int(fixed_at(by[(record, s, b)], budget, hidden)) - int(fixed_at(row, budget, hidden))
             for (record, s, seed), row in by.items() if s == strategy and seed == a and (record, s, b) in by]
    if len(diffs) < 2:
        return (diffs[0] if diffs else 0.0), float("nan"), len(diffs)
    return statistics.mean(diffs), 1.96 * statistics.stdev(diffs) / math.sqrt(len(diffs)), len(diffs)


def table(rows: list[dict], strategies: list[str], budgets=BUDGETS) -> str:
    by = complete_rows(rows, strategies)
    records = len({k[0] for k in by})
    seeds = sorted({str(k[2]) for k in by})
    lines = [f"{records} records, seeds {', '.join(seeds)} (each strategy on every record and seed).", "",
             "| strategy | " + " | ".join(f"<= {b:,} tok" for b in budgets) + " | plausible but wrong | median s to a fix |",
             "|---|" + "---|" * (len(budgets) + 2)]
    for strategy in strategies:
        cells = []
        for budget in budgets:
            v, n = rate(by, strategy, budget, False)
            h, _ = rate(by, strategy, budget, True)
            cells.append(f"{v:.0%} / {h:.0%}")
        mine = [r for (_i, s, _seed), r in by.items() if s == strategy]
        fixed = [r for r in mine if r["status"] == "fixed"]
        wrong = sum(not r.get("hidden_pass") for r in fixed)
        seconds = [r["seconds"] for r in fixed]
        lines.append(f"| {strategy} | " + " | ".join(cells)
                     + f" | {wrong}/{len(fixed)} | {statistics.median(seconds) if seconds else 0:.0f} |")
    lines += ["", "Cells: validated / hidden tests pass, share of record-seed pairs fixed within the budget."]
    first = strategies[0]
    for other in strategies[1:]:
        lines += ["", f"| {other} minus {first}, hidden tests, paired by record | "
                  + " | ".join(f"<= {b:,}" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
        cells = []
        for budget in budgets:
            d, half, _n = paired_difference(by, other, first, budget, True)
            cells.append(f"{d:+.0%} +- {half:.0%}" if not math.isnan(half) else f"{d:+.0%}")
        lines.append("| difference (95% interval) | " + " | ".join(cells) + " |")
    raw_seeds = sorted({k[2] for k in by}, key=str)
    for later in raw_seeds[1:]:
        first_seed = raw_seeds[0]
        lines += ["", f"| seed {later} minus seed {first_seed}, hidden tests, same records | "
                  + " | ".join(f"<= {b:,}" for b in budgets) + " | records |", "|---|" + "---|" * (len(budgets) + 1)]
        for strategy in strategies:
            cells, n = [], 0
            for budget in budgets:
                d, half, n = seed_difference(by, strategy, first_seed, later, budget, True)
                cells.append(f"{d:+.0%} +- {half:.0%}" if not math.isnan(half) else f"{d:+.0%}")
            lines.append(f"| {strategy} | " + " | ".join(cells) + f" | {n} |")
    for source in sorted({by_row.get("source", "-") for by_row in by.values()}):
        sub = {k: v for k, v in by.items() if v.get("source", "-") == source}
        cells = [f"{s}: " + ", ".join(f"{rate(sub, s, b, True)[0]:.0%}" for b in (budgets[0], budgets[-1]))
                 for s in strategies]
        lines.append(f"\n{source} ({len({k[0] for k in sub})} records), hidden at {budgets[0]:,} and "
                     f"{budgets[-1]:,} tokens: " + "; ".join(cells))
    return "\n".join(lines)


def svg(rows: list[dict], strategies: list[str], budgets=BUDGETS, width: int = 560, height: int = 320) -> str:
    """The hidden-test curve per strategy as a small SVG line chart (no plotting library)."""
    by = complete_rows(rows, strategies)
    left, right, top, bottom = 50, 150, 20, 40
    w, h = width - left - right, height - top - bottom
    x = lambda i: left + w * i / max(len(budgets) - 1, 1)  # noqa: E731  budgets evenly spaced
    y = lambda v: top + h * (1 - v)  # noqa: E731
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="11">', f'<rect width="{width}" height="{height}" fill="white"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(tick)}" y2="{y(tick)}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4}" text-anchor="end">{tick:.0%}</text>')
    for i, budget in enumerate(budgets):
        out.append(f'<text x="{x(i)}" y="{top + h + 16}" text-anchor="middle">{budget:,}</text>')
    out.append(f'<text x="{left + w / 2}" y="{height - 6}" text-anchor="middle">token budget per bug</text>')
    for n, strategy in enumerate(strategies):
        colour = colours[n % len(colours)]
        points = " ".join(f"{x(i):.1f},{y(rate(by, strategy, b, True)[0]):.1f}" for i, b in enumerate(budgets))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        out.append(f'<text x="{left + w + 10}" y="{top + 14 + 16 * n}" fill="{colour}">{strategy}</text>')
    out.append(f'<text x="{left}" y="{top - 6}">hidden tests pass, share of bugs</text>')
    return "\n".join(out + ["</svg>"]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, nargs="+", required=True, help="run_corpus.py's rows (one file per seed, or one for all)")
    parser.add_argument("--strategies", required=True, help="comma-separated; the first is the one compared against")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--svg", type=Path, help="write the hidden-test curve here")
    args = parser.parse_args(argv)
    strategies = [s for s in args.strategies.split(",") if s]
    budgets = tuple(int(b) for b in args.budgets.split(","))
    rows = [row for path in args.out for row in load_rows(path)]
    print(table(rows, strategies, budgets))
    if args.svg:
        args.svg.write_text(svg(rows, strategies, budgets), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
