"""What `tracefix trace` records, before and after a change: time, output lines, the culprit.

    git archive <old commit> tracefix | tar -x -C /tmp/tracefix-before
    .venv/bin/python bench/trace_selection.py --before /tmp/tracefix-before

For each bundled fixture and two synthetic projects of 30 functions (the buggy one ranked
30th; `syn30hot` runs the pipeline ten times, so the functions are too many to fit),
runs `tracefix trace PROJECT` and `tracefix trace PROJECT TEST_ID` (the first failing test)
with the old package and with this checkout's, one after the other in the same run, each in
a fresh copy, and prints one Markdown row per project and command: wall seconds, lines of
the text trace, functions recorded and whether the culprit (where known) is among them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
# Imports tracefix from the folder given, ahead of an editable install of this checkout.
SHIM = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]; "
        "sys.path.insert(0, sys.argv.pop(1)); import runpy; runpy.run_module('tracefix', run_name='__main__')")
CULPRITS = {"syn30": "pipe/steps.py::scale", "syn30hot": "pipe/steps.py::scale"}


def synthetic(root: Path, steps: int = 28, repeat: int = 1) -> Path:
    """28 helpers with small loops, `pipeline` and the buggy `scale`, which a passing test also
    runs: 30 functions the failing test runs (`repeat` times each), `scale` ranked last."""
    (root / "pipe").mkdir(parents=True)
    (root / "pipe" / "__init__.py").write_text("")
    helpers = "".join(f"def step{i:02d}(x):\n    for k in range({i % 4}):\n        x += k\n    return x + 1\n\n\n"
                      for i in range(1, steps + 1))
    calls = "".join(f"    x = step{i:02d}(x)\n" for i in range(1, steps + 1))
    (root / "pipe" / "steps.py").write_text(
        helpers + "def scale(x):\n    doubled = x * 2 + x // 1000\n    return doubled\n\n\n"
        f"def pipeline(x):\n{calls}    return scale(x)\n")
    (root / "tests").mkdir()
    (root / "tests" / "test_pipe.py").write_text(
        "from pipe.steps import pipeline, scale\n\n\ndef test_scale_small():\n    assert scale(3) == 6\n\n\n"
        f"def test_pipeline():\n    results = [pipeline(v) for v in range(1000, {1000 + repeat})]\n"
        "    assert all(r % 2 == 0 for r in results)\n")
    return root


def projects(work: Path):
    for fixture in sorted(p for p in FIXTURES.iterdir() if (p / "tests").is_dir()):
        yield fixture.name, fixture
    yield "syn30", synthetic(work / "syn30-src")
    yield "syn30hot", synthetic(work / "syn30hot-src", repeat=10)


def run(package: Path | None, args: list[str], cwd: Path) -> tuple[float, str, int]:
    command = [sys.executable, "-c", SHIM, str(package)] if package else [sys.executable, "-m", "tracefix"]
    env = dict(os.environ, NO_COLOR="1", COLUMNS="120", VIRTUAL_ENV="")
    started = time.perf_counter()
    done = subprocess.run(command + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - started, done.stdout, done.returncode


def first_failing(project: Path) -> str | None:
    _s, out, _rc = run(None, ["locate", str(project), "--format", "json"], project)
    bad = [o["nodeid"] for o in json.loads(out)["outcomes"] if o["outcome"] in ("failed", "error", "timeout")]
    return bad[0] if bad else None


def measure(package, project: Path, name: str, ids: list[str]) -> dict:
    copy = Path(tempfile.mkdtemp(prefix=f"sel-{name}-"))
    shutil.copytree(project, copy / name)
    root = copy / name
    seconds, text, rc = run(package, ["trace", str(root), *ids, "--test-timeout", "2"], root)
    _s, data, _rc = run(package, ["trace", str(root), *ids, "--test-timeout", "2", "--format", "json"], root)
    shutil.rmtree(copy, ignore_errors=True)
    traced = json.loads(data) if data.strip() else {"tests": []}
    recorded = {c["function"] for t in traced["tests"] for c in t["calls"]}
    left = {u["function"] for t in traced["tests"] for u in t.get("unrecorded", ())}
    culprit = CULPRITS.get(name)
    return {"seconds": round(seconds, 2), "lines": len(text.splitlines()), "rc": rc, "recorded": len(recorded),
            "unrecorded": len(left), "culprit": None if culprit is None else
            ("recorded" if culprit in recorded else "named" if culprit in left else "missing")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a folder holding the old `tracefix` package")
    parser.add_argument("--only", nargs="*", help="these projects only (fixture names, syn30, syn30hot)")
    args = parser.parse_args()
    print("| project | command | before s | after s | before lines | after lines | recorded before/after "
          "| named as unrecorded (after) | culprit before/after |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for name, project in projects(Path(work)):
            if args.only and name not in args.only:
                continue
            test_id = first_failing(project)
            for label, ids in (("trace", []), ("trace TEST_ID", [test_id] if test_id else None)):
                if ids is None:
                    continue
                before = measure(args.before.resolve(), project, name, ids)
                after = measure(None, project, name, ids)
                print(f"| {name} | {label} | {before['seconds']} | {after['seconds']} | {before['lines']} | "
                      f"{after['lines']} | {before['recorded']}/{after['recorded']} | {after['unrecorded']} | "
                      f"{before['culprit'] or '-'}/{after['culprit'] or '-'} |", flush=True)


if __name__ == "__main__":
    main()
