"""What the runtime recorder costs: CPU time of a pure-Python workload, recorded or not.

    .venv/bin/python bench/recorder_overhead.py [--backend settrace|monitoring] [--reps N] [--quick]
        [--suspects word_counts,top_words,Ledger.withdraw] [--each] [--no-memory] [--json PATH]
    PYTHONPATH=. /tmp/v3.12.1/bin/python bench/recorder_overhead.py --backend monitoring

Results and conclusions: bench/RECORDER.md.

One process measures, with time.process_time, the workload below run
  plain       -- nothing installed,
  coverage    -- coverage.Coverage() started around it (line coverage, the default core),
  hook only   -- the back end's cheapest hook and nothing else (settrace: a global trace
                 function that answers None; monitoring: PY_START answered with DISABLE):
                 the floor any recorder on that back end pays, whatever it records,
  suspects    -- the recorder watching a few suspect functions (the usual tracefix run),
  all         -- the recorder watching every function of the workload,
with the default bounds of `tracefix trace` (max_visits=5, max_calls=20, and the
recorder's max_total_calls=2000). Repetitions are interleaved (the order rotates from one
repetition to the next) so drift on a noisy machine hits every mode alike; a ratio is the
median over repetitions of mode / plain measured in the same repetition, shown beside the
ratio of the fastest runs. Recorded and coverage times include starting and stopping the
collector and building its data (`recorder.records()`, `cov.get_data()`).

`--each` adds one mode per workload function (the recorder watching it alone), to see
which kind of function the cost comes from.

Memory: a child process (so ru_maxrss starts fresh) records one function looping 10
million times (1 million with --quick) and reports the ru_maxrss growth, then the
tracemalloc peak of the same recording.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tracefix.tracer.cfg import functions_in  # noqa: E402
from tracefix.tracer.types import RECORDER_TOOL_ID as TOOL_ID  # noqa: E402
from tracefix.tracer.backends import backend_name, start_recording  # noqa: E402
from tracefix.tracer.recorder import Recorder  # noqa: E402

HERE = Path(__file__).resolve()
BOUNDS = {"max_visits": 5, "max_calls": 20}  # `tracefix trace` defaults
# A loop-heavy function called a few times, one called once, a method called 20,000 times
# that sometimes raises. Each is recorded under the default bounds; a hot function that runs
# before them (merge: 20,000 calls) would use up max_total_calls and leave them unrecorded.
SUSPECTS = ("word_counts", "top_words", "Ledger.withdraw")
MEMORY_TARGET = 64 * 2**20


# --- The workload: ordinary pure-Python code (a sort, a word count, recursion, a class) ----


def merge_sort(xs):
    if len(xs) <= 1:
        return xs
    mid = len(xs) // 2
    return merge(merge_sort(xs[:mid]), merge_sort(xs[mid:]))


def merge(left, right):
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def word_counts(lines):
    counts = {}
    for line in lines:
        for word in line.lower().split():
            word = word.strip(".,;:!?")
            if word:
                counts[word] = counts.get(word, 0) + 1
    return counts


def top_words(counts, n):
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def partitions(n, largest):
    """Ways to write n as a sum of parts no larger than `largest` (plain recursion)."""
    if n == 0:
        return 1
    if n < 0 or largest == 0:
        return 0
    return partitions(n - largest, largest) + partitions(n, largest - 1)


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost))
        prev = cur
    return prev[-1]


class InsufficientFunds(Exception):
    pass


class Ledger:
    def __init__(self, accounts):
        self.balances = {name: 100 for name in accounts}
        self.history = []

    def deposit(self, account, amount):
        self.balances[account] = self.balances.get(account, 0) + amount
        self.history.append(("deposit", account, amount))

    def withdraw(self, account, amount):
        balance = self.balances.get(account, 0)
        if amount > balance:
            raise InsufficientFunds(f"{account} has {balance}, needs {amount}")
        self.balances[account] = balance - amount
        self.history.append(("withdraw", account, amount))

    def transfer(self, src, dst, amount):
        self.withdraw(src, amount)
        self.deposit(dst, amount)

    def audit(self):
        net = {}
        for kind, account, amount in self.history:
            net[account] = net.get(account, 0) + (amount if kind == "deposit" else -amount)
        return net


def run_ledger(transfers, accounts):
    ledger = Ledger(accounts)
    refused = 0
    for src, dst, amount in transfers:
        try:
            ledger.transfer(src, dst, amount)
        except InsufficientFunds:
            refused += 1
    return refused, sum(ledger.audit().values())


def workload(data) -> tuple:
    """Every part once; the result is compared across modes (recording must not change it)."""
    ordered = merge_sort(data["numbers"])
    counts = {}
    for _ in range(data["count_rounds"]):
        counts = word_counts(data["lines"])
    top = top_words(counts, 5)
    ways = partitions(data["partition_n"], data["partition_n"])
    distances = [edit_distance(a, b) for a, b in data["pairs"]]
    refused, net = run_ledger(data["transfers"], data["accounts"])
    return ordered[:3], ordered[-1], top, ways, distances, refused, net


WORKLOAD = (merge_sort, merge, word_counts, top_words, partitions, edit_distance, Ledger, run_ledger, workload)


def spin(n):
    """The memory case: one recorded function, one hot loop."""
    k = 0
    total = 0
    while k < n:
        k += 1
        total += k & 7
    return total


# --- Measuring -----------------------------------------------------------------------------


def workload_data(quick: bool) -> dict:
    rng = random.Random(20240601)
    vocabulary = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(600)]
    people = [f"acct{i}" for i in range(40)]
    scale = 0.2 if quick else 1.0

    def n(x):
        return max(1, int(x * scale))

    return {
        "numbers": [rng.randrange(10**6) for _ in range(n(20_000))],
        "lines": [" ".join(rng.choice(vocabulary) for _ in range(12)) + "." for _ in range(n(20_000))],
        "count_rounds": 6,
        "partition_n": 20 if quick else 25,
        "pairs": [("".join(rng.choice("acgt") for _ in range(300)),
                   "".join(rng.choice("acgt") for _ in range(300))) for _ in range(n(64))],
        "transfers": [(rng.choice(people), rng.choice(people), rng.randint(1, 60)) for _ in range(n(20_000))],
        "accounts": people,
    }


def workload_functions(names=None):
    """FunctionInfo of every workload function (or of `names`, qualnames) in this file."""
    qualnames = set()
    for obj in WORKLOAD:
        if isinstance(obj, type):
            qualnames.update(f.__qualname__ for f in vars(obj).values() if callable(f))
        else:
            qualnames.add(obj.__qualname__)
    infos = [f for f in functions_in(HERE.read_text(), HERE.name) if f.qualname in qualnames]
    if names is None:
        return infos
    chosen = [f for f in infos if f.qualname in names]
    missing = set(names) - {f.qualname for f in chosen}
    if missing:
        raise SystemExit(f"not workload functions: {', '.join(sorted(missing))}; choose from {sorted(qualnames)}")
    return chosen


def run_plain(data):
    start = time.process_time()
    result = workload(data)
    return time.process_time() - start, result, None


def run_coverage(data):
    import coverage

    start = time.process_time()
    cov = coverage.Coverage(data_file=None)
    cov.start()
    try:
        result = workload(data)
    finally:
        cov.stop()
    measured = cov.get_data()
    elapsed = time.process_time() - start
    return elapsed, result, len(measured.lines(str(HERE)) or ())


def run_hook_only(data, backend):
    start = time.process_time()
    if backend == "settrace":
        sys.settrace(_no_trace)
        try:
            result = workload(data)
        finally:
            sys.settrace(None)
    else:
        mon = sys.monitoring
        mon.use_tool_id(TOOL_ID, "hook-only")
        mon.register_callback(TOOL_ID, mon.events.PY_START, _disable)
        mon.set_events(TOOL_ID, mon.events.PY_START)
        mon.restart_events()  # as a recording does: every code object reports once
        try:
            result = workload(data)
        finally:
            mon.set_events(TOOL_ID, 0)
            mon.register_callback(TOOL_ID, mon.events.PY_START, None)
            mon.free_tool_id(TOOL_ID)
    return time.process_time() - start, result, None


def _no_trace(frame, event, arg):
    return None


def _disable(code, offset):
    return sys.monitoring.DISABLE


def run_recorded(data, functions, backend):
    start = time.process_time()
    recorder = Recorder(functions, HERE.parent, **BOUNDS)
    recording = start_recording(recorder, backend)
    try:
        result = workload(data)
    finally:
        recording.stop()
    calls, dropped = recorder.records(recording.open_ended)
    elapsed = time.process_time() - start
    per_function = {f.qualname: 0 for f in functions}
    for c in calls:
        per_function[c.function.partition("::")[2]] += 1
    return elapsed, result, (len(calls), dropped, sum(len(c.visits) for c in calls), per_function)


def measure(modes: dict, data, reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in modes}
    expected = run_plain(data)[1]
    names = list(modes)
    for name in names:  # warm-up: imports, caches, code objects seen once
        modes[name](data)
    for rep in range(reps):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            gc.collect()
            elapsed, result, _ = modes[name](data)
            if result != expected:
                raise SystemExit(f"{name}: the workload's result changed under measurement")
            times[name].append(elapsed)
    return times


def report(times: dict[str, list[float]], details: dict) -> list[dict]:
    """One row per mode. `x plain` is the median of the per-repetition ratios; `x (mins)`
    divides the fastest runs, which is steadier when other processes steal the CPU's caches
    in bursts (noise only ever adds time)."""
    plain = times["plain"]
    rows = []
    print(f"{'mode':<22}{'median s':>10}{'min s':>9}{'x plain':>9}{'x (mins)':>10}{'ratio range':>13}  recorded")
    for name, ts in times.items():
        ratios = [t / p for t, p in zip(ts, plain)]
        row = {"mode": name, "median_s": statistics.median(ts), "min_s": min(ts),
               "ratio": statistics.median(ratios), "ratio_of_mins": min(ts) / min(plain),
               "ratio_min": min(ratios), "ratio_max": max(ratios), "detail": details.get(name)}
        rows.append(row)
        spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        print(f"{name:<22}{row['median_s']:>10.3f}{row['min_s']:>9.3f}{row['ratio']:>9.2f}"
              f"{row['ratio_of_mins']:>10.2f}{spread:>13}  {_detail_text(row['detail'])}")
    return rows


def _detail_text(detail) -> str:
    if detail is None:
        return ""
    if isinstance(detail, int):
        return f"{detail} lines covered"
    calls, dropped, visits, per_function = detail
    unrecorded = sorted(name for name, n in per_function.items() if n == 0)
    missing = f" (none of {', '.join(unrecorded)})" if unrecorded and len(per_function) <= 3 else (
        f" ({len(unrecorded)} functions with none)" if unrecorded else "")
    return f"{calls} calls{missing}, {visits} block visits, {dropped} dropped"


# --- Memory, in a child process --------------------------------------------------------------


def memory_child(backend: str, iterations: int) -> dict:
    functions = [f for f in functions_in(HERE.read_text(), HERE.name) if f.qualname == "spin"]
    start = time.process_time()
    spin(iterations)
    plain_s = time.process_time() - start

    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.process_time()
    _record_spin(functions, backend, iterations)
    recorded_s = time.process_time() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    tracemalloc.start()
    try:
        _record_spin(functions, backend, iterations)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # ru_maxrss is in KiB on Linux, bytes on macOS
    unit = 1 if sys.platform == "darwin" else 1024
    return {"iterations": iterations, "plain_s": plain_s, "recorded_s": recorded_s,
            "rss_before": rss_before * unit, "rss_delta": (rss_after - rss_before) * unit, "tracemalloc_peak": peak}


def _record_spin(functions, backend, iterations) -> None:
    recorder = Recorder(functions, HERE.parent, **BOUNDS)
    recording = start_recording(recorder, backend)
    try:
        result = spin(iterations)
    finally:
        recording.stop()
    (call,), _ = recorder.records(recording.open_ended)
    assert call.returned == str(result), (call.returned, result)


def measure_memory(backend: str, iterations: int) -> dict:
    out = subprocess.run([sys.executable, str(HERE), "--memory-child", str(iterations), "--backend", backend],
                         capture_output=True, text=True, check=True)
    mem = json.loads(out.stdout)
    verdict = "ok" if max(mem["rss_delta"], mem["tracemalloc_peak"]) < MEMORY_TARGET else "OVER TARGET"
    print(f"spin({iterations:,}) recorded: ru_maxrss +{mem['rss_delta'] / 2**20:.1f} MiB "
          f"(from {mem['rss_before'] / 2**20:.1f} MiB), "
          f"tracemalloc peak {mem['tracemalloc_peak'] / 2**20:.2f} MiB (target < 64 MiB: {verdict}); "
          f"CPU {mem['recorded_s']:.2f} s recorded vs {mem['plain_s']:.2f} s plain")
    return mem


# --- Main ----------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["settrace", "monitoring"], default=None,
                        help="recorder back end (default: the one tracefix picks on this Python)")
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 7, 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a fifth of the workload, fewer repetitions")
    parser.add_argument("--suspects", default=",".join(SUSPECTS), help="qualnames recorded in the 'suspects' mode")
    parser.add_argument("--each", action="store_true", help="also record each workload function alone")
    parser.add_argument("--no-memory", action="store_true", help="skip the 10-million-iteration memory case")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    backend = args.backend or backend_name()
    if backend == "monitoring" and not hasattr(sys, "monitoring"):
        raise SystemExit("--backend monitoring needs Python 3.12+")
    if args.memory_child:
        print(json.dumps(memory_child(backend, args.memory_child)))
        return
    reps = args.reps or (3 if args.quick else 7)

    import coverage

    data = workload_data(args.quick)
    suspects = workload_functions([s for s in args.suspects.split(",") if s])
    everything = workload_functions()
    modes = {
        "plain": run_plain,
        "coverage": run_coverage,
        "hook only": lambda d: run_hook_only(d, backend),
        "suspects": lambda d: run_recorded(d, suspects, backend),
        "all": lambda d: run_recorded(d, everything, backend),
    }
    if args.each:
        for info in everything:
            modes[f"only {info.qualname}"] = lambda d, fs=[info]: run_recorded(d, fs, backend)

    cov_core = _coverage_core()
    print(f"Python {platform.python_version()} ({platform.machine()}), recorder back end {backend}, "
          f"coverage {coverage.__version__} core {cov_core}, {reps} reps{' (quick)' if args.quick else ''}")
    print(f"suspects: {', '.join(f.qualname for f in suspects)}; all: {len(everything)} functions")
    details = {name: run(data)[2] for name, run in modes.items()}
    times = measure(modes, data, reps)
    rows = report(times, details)
    target = 1.2 if backend == "monitoring" else 3.0
    row = next(r for r in rows if r["mode"] == "suspects")
    verdict = "met" if max(row["ratio"], row["ratio_of_mins"]) <= target else (
        "MISSED" if min(row["ratio"], row["ratio_of_mins"]) > target else "borderline")
    print(f"target for 'suspects' on {backend}: <= {target}x -> {verdict} "
          f"(median ratio {row['ratio']:.2f}x, ratio of mins {row['ratio_of_mins']:.2f}x)")
    memory = None
    if not args.no_memory:
        memory = measure_memory(backend, 1_000_000 if args.quick else 10_000_000)
    if args.json:
        args.json.write_text(json.dumps({
            "python": platform.python_version(), "backend": backend, "coverage_core": cov_core, "reps": reps,
            "quick": args.quick, "suspects": [f.qualname for f in suspects], "rows": rows, "times": times,
            "memory": memory}, indent=2))


def _coverage_core() -> str:
    import coverage

    cov = coverage.Coverage(data_file=None)
    cov.start()
    cov.stop()
    return dict(cov.sys_info()).get("core", "?")


if __name__ == "__main__":
    main()
