"""The front door: `tracefix` and its commands (typer + rich).

Results go to stdout, progress and errors to stderr. Exit codes: 0 nothing wrong (or a
validated fix), 1 failures found / no fix, 2 usage or environment error (one line on
stderr, never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.text import Text

from tracefix.config import needs_model
from tracefix.errors import InternalSignal, UserError
from tracefix.tracer.coverage_session import check_collector
from tracefix.tracer.project import invocation
from tracefix.tracer.selection import SNAPSHOT_BUDGET


app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    invoke_without_command=True,
    help="Debug and repair failing Python tests from their real execution.",
)

EXIT_OK, EXIT_FAILURES, EXIT_ERROR = 0, 1, 2
UNRECORDED_SHOWN = 10  # functions named in the text trace's "not recorded" lines; JSON has them all


PIPE_WIDTH = 160  # columns when stdout is no terminal (a pipe, a file, a CI log) and COLUMNS is unset


def _stdout() -> Console:
    # A terminal: rich reads its width (COLUMNS first). Elsewhere rich would assume 80 columns
    # and cut a trace's source and values; a log has room, so COLUMNS or a wide default.
    return Console(no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=False,
                   width=None if sys.stdout.isatty() else _columns(PIPE_WIDTH))


def _columns(default: int) -> int:
    try:
        return max(40, int(os.environ["COLUMNS"]))
    except (KeyError, ValueError):
        return default


def _stderr() -> Console:
    # soft_wrap: a message is one line however long, so it greps and parses
    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=True,
                   quiet=_verbosity() < 0)


def _verbosity() -> int:
    """-1 with --quiet (stderr silent but for errors), 1 with --verbose, else 0."""
    try:  # recent typers carry their own copy of click
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context
    ctx = get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return obj.get("verbosity", 0) if isinstance(obj, dict) else 0


def _installed_version() -> str:
    """The version pip installed (pyproject.toml is the one place it is written)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tracefix")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tracefix {_installed_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Nothing on stderr but errors: no progress, no warnings."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr."),
    python: Optional[str] = typer.Option(None, "--python", help="The Python that runs the tests (with no "
                                         "command; see `tracefix trace --help`)."),
) -> None:
    """tracefix: run the failing tests under a tracer, localize, and (with a model) fix."""
    if quiet and verbose:
        raise UserError("--quiet and --verbose contradict each other: give one")
    ctx.obj = {"verbosity": -1 if quiet else int(verbose)}
    if ctx.invoked_subcommand is None:
        _default_job(None, python)


def _default_job(path: Optional[Path], python: Optional[str] = None) -> None:
    """`tracefix` alone: locate -> trace -> fix (the model-free stages only, with no model
    configured), as a short report."""
    from tracefix.config import load_config
    from tracefix.tracer.localize import locate_with_run
    from tracefix.tracer.tracing import trace_tests

    root_dir, _ids = invocation(path)
    config, sources, warnings = load_config(root_dir, {})
    err, out = _stderr(), _stdout()
    for warning in warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    config, _interpreter = _with_interpreter(root_dir, config, sources, python)
    with err.status("running the tests with per-test coverage...") if err.is_terminal else _nullcontext():
        loc, coverage = locate_with_run(root_dir, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                                        pytest_args=config.pytest_args, python=config.python)
    if loc.nothing_failing:
        out.print(f"all {loc.passing} tests pass")
        raise typer.Exit(EXIT_OK)
    out.print(f"[bold]{loc.failing} failing[/bold], {loc.passing} passing tests")
    for o in loc.outcomes:
        if o.bad:  # never markup: a parametrized id's "[a b]" would read as a style and vanish
            first, *more = explanation(o)
            out.print(Text.assemble("  ", ("✗", "red"), f" {o.nodeid}: {first}"))
            for line in more:
                out.print(f"      {line}", markup=False)
    out.print("most suspicious:")
    for s in loc.functions[:5]:
        out.print(f"  {s.rank}. {s.path}:{s.line} {s.qualname}  (score {s.score:.2f})", markup=False)
    failing = [o.nodeid for o in loc.outcomes if o.bad]
    with err.status("tracing the failing tests...") if err.is_terminal else _nullcontext():
        # The selection `tracefix trace` makes, from the ranking run just made.
        run = trace_tests(root_dir, failing, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                          pytest_args=config.pytest_args, python=config.python, max_snapshots=SNAPSHOT_BUDGET,
                          ranking=(loc, coverage))
    for t in run.traces:
        raised = [c for c in t.calls if c.raised or not c.finished]
        deepest = max(raised, key=lambda c: c.depth) if raised else None
        if deepest is not None:
            what = deepest.raised or f"did not return (stopped by {t.stopped_by})"
            where = f" (line {deepest.raised_line})" if deepest.raised_line else ""
            out.print(f"  {t.nodeid}: {deepest.function.split('::')[-1]} -> {what}{where}", markup=False)
    out.print("details: tracefix trace .   ranking: tracefix locate .")
    from tracefix.repair.fix import fix_project

    if not config.model and not _model_free_stages(config):
        out.print("no model configured: set TRACEFIX_MODEL or [tool.tracefix] model to get a fix proposed",
                  markup=False)
        raise typer.Exit(EXIT_FAILURES)

    with err.status("repairing...") if err.is_terminal else _nullcontext():
        report = fix_project(root_dir, config)
    _print_fix_report(report, err)
    raise typer.Exit(EXIT_OK if report.status == "fixed" else EXIT_FAILURES)


EXPLANATION_LINES = 8  # lines of pytest's explanation of a failure in the bare summary


def explanation(outcome, limit: int = EXPLANATION_LINES) -> list[str]:
    """How pytest explained a failure, one item a line: its `E` lines (an assertion's `where`
    lines and diffs keep their own lines and indentation), else the one-line message."""
    lines = [line[1:] for line in outcome.longrepr.splitlines() if line.startswith("E ") or line == "E"]
    if not lines:
        return [outcome.message]
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    lines = [l[indent:].rstrip() for l in lines if l.strip()]
    if len(lines) > limit:
        lines = lines[:limit - 1] + [f"... ({len(lines) - limit + 1} more lines: tracefix trace)"]
    return lines


PathArg = typer.Argument(None, help="The project's root folder (default: pytest's rootdir for the current "
                                    "folder), or a test id such as tests/test_x.py::test_y.", show_default=False)
TestIdsArg = typer.Argument(None, help="pytest node ids to trace (default: every failing test).")
PythonOpt = typer.Option(None, "--python", help="The Python that runs the tests (default: python in "
                         "\\[tool.tracefix], else the active VIRTUAL_ENV, else .venv or venv in the project, "
                         "else tracefix's own).")


@app.command()
def trace(
    path: Optional[Path] = PathArg,
    test_ids: Optional[List[str]] = TestIdsArg,
    fmt: str = typer.Option("text", "--format", help="text, json (schema tracefix.trace/1.3) or diagnostics "
                            "(path:line:col: severity: message lines)."),
    test_timeout: Optional[float] = typer.Option(None, help="Seconds one test may run before it is stopped "
                                                            "(default: test_timeout of the configuration, 10)."),
    run_timeout: Optional[float] = typer.Option(None, help="Seconds the whole test run may take (default: "
                                                           "run_timeout of the configuration, 300)."),
    max_visits: int = typer.Option(5, help="Visits recorded per block per call (later ones are elided)."),
    max_calls: int = typer.Option(20, help="Calls recorded in full per function per test."),
    backend: Optional[str] = typer.Option(None, help="settrace or monitoring (default: the best this Python has)."),
    suspects: Optional[int] = typer.Option(None, help="Record the N most suspicious functions the traced tests ran, "
                                           "whatever their size (0: every project function; default: as many "
                                           "as fit in --max-snapshots)."),
    max_snapshots: int = typer.Option(SNAPSHOT_BUDGET, min=1, help="Snapshots (calls and block visits) per test: "
                                      "the functions the traced tests ran are recorded, most suspicious first, "
                                      "while they fit; the others are named."),
    function: Optional[List[str]] = typer.Option(None, "--function", help="Record only this function (repeatable): "
                                                 "pkg/mod.py::Class.method, Class.method or method; no ranking run."),
    python: Optional[str] = PythonOpt,
) -> None:
    """Record the failing tests block by block, with the variables at every block boundary."""
    from tracefix.tracer.selection import functions_named
    from tracefix.tracer.tracing import trace_run_json, trace_tests

    _check_format(fmt, ("text", "json", "diagnostics"))
    if function and suspects is not None:
        raise UserError("give --function or --suspects, not both")
    root_dir, test_ids = invocation(path, test_ids)
    functions = functions_named(root_dir, function) if function else None
    config, interpreter = _configured(root_dir, {"test_timeout": test_timeout, "run_timeout": run_timeout}, python)
    err = _stderr()
    with err.status("running the tests...", spinner="dots") if err.is_terminal else _nullcontext():
        run = trace_tests(root_dir, test_ids or (), functions=functions, test_timeout=config.test_timeout,
                          run_timeout=config.run_timeout, pytest_args=config.pytest_args,
                          bounds={"max_visits": max_visits, "max_calls": max_calls}, backend=backend,
                          suspects=suspects or None, max_snapshots=max_snapshots if suspects is None else None,
                          python=config.python)
    if fmt == "json":
        typer.echo(json.dumps(dict(trace_run_json(run), interpreter=interpreter.to_json()), indent=1))
    elif fmt == "diagnostics":
        _print_trace_diagnostics(run, root_dir)
    else:
        _print_trace_run(run, root_dir)
    bad = [t for t in run.traces if t.outcome not in ("passed", "skipped", "xfailed")]
    if not run.traces and not test_ids:
        raise typer.Exit(EXIT_OK)
    raise typer.Exit(EXIT_FAILURES if bad else EXIT_OK)


def _print_trace_run(run, root_dir: Path) -> None:
    from tracefix.tracer.tracing import MARKED_LINES
    from tracefix.tracer.view import Marks, render_legend, render_trace

    out = _stdout()
    if not run.traces:
        out.print(f"nothing to trace: all {len(run.outcomes)} tests pass")
    if run.traces:
        render_legend(out, Marks(frozenset(p for lines in run.marked.values() for p in lines)), MARKED_LINES)
    for trace_ in run.traces:
        render_trace(out, root_dir, trace_, marks=Marks(frozenset(run.marked.get(trace_.nodeid, ()))))
        out.print()
    for warning in run.warnings:
        _stderr().print(f"warning: {warning}", style="yellow", markup=False)
    note = _unrecorded_note(run)
    if note:
        header, items = note
        out.print(header + ":", markup=False, soft_wrap=True)
        for item in items[:UNRECORDED_SHOWN]:
            out.print(f"  {item}", markup=False, soft_wrap=True)
        if len(items) > UNRECORDED_SHOWN:
            out.print(f"  ... and {len(items) - UNRECORDED_SHOWN} more (--format json lists them)", markup=False)
    if run.traces:
        failing = len([t for t in run.traces if t.outcome != "passed"])
        out.print(f"{failing} failing of {len(run.outcomes)} tests traced with {run.backend} on Python {run.python}")


def _unrecorded_note(run) -> tuple[str, list[str]] | None:
    """A header and one line per function that the traced tests ran and the trace leaves out
    (most suspicious first), the header naming the flag that records them; None when none is."""
    from tracefix.tracer.selection import FUNCTIONS_RECORDED

    left = run.unrecorded()
    if not left:
        return None
    chosen = run.selection

    def why(u) -> str:
        rank = f"rank {u.rank}" if u.rank is not None else "no failing test ran it"
        if u.reason == "snapshots":
            return f"{rank}; its {u.snapshots} snapshots did not fit in the {chosen.max_snapshots} per test"
        return f"{rank}; past the {chosen.suspects or FUNCTIONS_RECORDED} functions recorded"

    include = f"{chosen.include} records them in full, " if chosen.include else ""
    header = (f"not recorded: {len(left)} functions the traced tests ran "
              f"({include}--suspects 0 every project function)")
    return header, [f"{u.function}  ({why(u)})" for u in left]


@app.command()
def locate(
    path: Optional[Path] = PathArg,
    test_ids: Optional[List[str]] = typer.Argument(
        None, help="pytest node ids or files to run (default: the whole suite; passing tests sharpen the ranking)."),
    top: int = typer.Option(10, "--top", help="How many suspects of each kind to show."),
    fmt: str = typer.Option("text", "--format", help="text, json, diagnostics (path:line:col: severity: message) "
                            "or sarif (SARIF 2.1.0, for GitHub code scanning)."),
    formula: str = typer.Option("ochiai", help="ochiai, tarantula or dstar."),
    test_timeout: Optional[float] = typer.Option(None, help="Seconds one test may run before it is stopped "
                                                            "(default: test_timeout of the configuration, 10)."),
    run_timeout: Optional[float] = typer.Option(None, help="Seconds the whole test run may take (default: "
                                                           "run_timeout of the configuration, 300)."),
    collector: Optional[str] = typer.Option(None, help="coverage or monitoring (Python 3.12+; default: monitoring "
                                                       "where it is free, else coverage)."),
    python: Optional[str] = PythonOpt,
) -> None:
    """Rank functions, blocks and lines by how strongly the failing tests point at them."""
    from tracefix.tracer.localize import locate as locate_

    _check_format(fmt, ("text", "json", "diagnostics", "sarif"))
    check_collector(collector, _NoVersionCheck)
    root_dir, test_ids = invocation(path, test_ids)
    config, interpreter = _configured(root_dir, {"test_timeout": test_timeout, "run_timeout": run_timeout}, python)
    check_collector(collector, interpreter)
    err = _stderr()
    with err.status("running the tests with per-test coverage...") if err.is_terminal else _nullcontext():
        loc = locate_(root_dir, test_ids=test_ids or (), formula=formula, test_timeout=config.test_timeout,
                      run_timeout=config.run_timeout, pytest_args=config.pytest_args, collector=collector,
                      python=config.python)
    shown = loc.top(top)
    if fmt == "json":
        typer.echo(json.dumps(dict(shown.to_json(), interpreter=interpreter.to_json()), indent=1))
    elif fmt == "diagnostics":
        from tracefix.cli.diagnostics import diagnostic_lines, lines_text

        sys.stdout.write(lines_text(diagnostic_lines(root_dir, outcomes=loc.outcomes, suspects=shown.lines,
                                                     formula=loc.formula)))
    elif fmt == "sarif":
        from tracefix.cli.sarif import dumps, locate_log

        sys.stdout.write(dumps(locate_log(root_dir, shown, _installed_version())))
    else:
        _print_localization(shown, root_dir)
    for warning in loc.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    raise typer.Exit(EXIT_OK if loc.nothing_failing else EXIT_FAILURES)


def _configured(root_dir: Path, flags: dict, python: Optional[str] = None):
    """The project's configuration (pyproject, environment, these flags), its warnings shown,
    with the Python that runs the tests: `trace` and `locate` read the same settings as `fix`."""
    from tracefix.config import load_config

    config, sources, warnings = load_config(root_dir, flags)
    for warning in warnings:
        _stderr().print(f"warning: {warning}", style="yellow", markup=False)
    return _with_interpreter(root_dir, config, sources, python)


class _NoVersionCheck:
    """Stands for the project's interpreter before it is known: only the name is checked."""

    has_monitoring = True


def _with_interpreter(root_dir: Path, config, sources: dict, python: Optional[str]):
    """The config with `python` set to the interpreter that runs the tests, and that
    interpreter; a note on stderr names it when it is not tracefix's own (always with -v)."""
    from dataclasses import replace

    from tracefix.tracer.interpreter import project_interpreter

    if python is not None:
        interpreter = project_interpreter(root_dir, python, "flag")
    else:
        interpreter = project_interpreter(root_dir, config.python, sources.get("python", "default"))
    if not interpreter.own or _verbosity() > 0:
        _stderr().print(f"note: the tests run on {interpreter.path} (Python {interpreter.version}, "
                        f"from {interpreter.source})", markup=False)
    return replace(config, python=interpreter.path), interpreter


def _print_localization(loc, root_dir: Path) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out = _stdout()
    if loc.nothing_failing:
        out.print(f"nothing to localize: all {loc.passing} tests pass")
        return
    out.print(f"{loc.failing} failing, {loc.passing} passing tests; formula {loc.formula}")
    sources = _LineSource(root_dir)
    for kind, suspects in (("functions", loc.functions), ("blocks", loc.blocks), ("lines", loc.lines)):
        # No vertical rules: at 80 columns every character goes to the source text.
        table = Table(title=f"suspect {kind}", title_justify="left", show_lines=False, box=box.SIMPLE_HEAD,
                      show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        # "fail" and "pass": how many failing and passing tests run the suspect.
        columns = ("rank", "where", "function") + (("source",) if kind != "functions" else ()) + (
            "score", "fail", "pass")
        for col in columns:  # a narrow console wraps the text columns, never the numbers
            number = col in ("rank", "score", "fail", "pass")
            table.add_column(col, justify="right" if number else "left", no_wrap=number, overflow="fold",
                             min_width=16 if col == "source" else None)
        for s in suspects:
            where = f"{s.path}:{s.line}" + (f"-{s.end_line}" if s.end_line != s.line else "")
            label = s.qualname + (f" [block {s.block}]" if s.block is not None else "")
            source = ((Text(sources.first_statement(s.path, s.line, s.end_line)),)
                      if kind != "functions" else ())
            table.add_row(str(s.rank), where, label, *source, f"{s.score:.3f}", str(s.failing_covering),
                          str(s.passing_covering))
        out.print(table)


class _LineSource:
    """Source lines of the project's files, read once each, for the tables of `locate`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, list[str]] = {}

    def first_statement(self, path: str, start: int, end: int) -> str:
        """The first line of code in start..end, stripped, with " …" when more lines follow. A
        block's range begins with the function's docstring when the body does: skipped (a
        docstring never runs)."""
        lines = self._lines(path)
        number, quote = start, None
        while number <= min(end, len(lines)):
            text = lines[number - 1].strip()
            if quote is not None:  # inside a docstring that started above
                quote = None if quote in text else quote
            elif text[:3] in ('"""', "'''"):  # a docstring: one line, or the first of several
                quote = None if len(text) >= 6 and text.endswith(text[:3]) else text[:3]
            elif text and not text.startswith("#"):
                return text + (" …" if number < end else "")
            number += 1
        return lines[start - 1].strip() if 0 < start <= len(lines) else ""

    def _lines(self, path: str) -> list[str]:
        lines = self._files.get(path)
        if lines is None:
            try:
                lines = (self.root / path).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                lines = []
            self._files[path] = lines
        return lines


@app.command()
def fix(
    path: Optional[Path] = PathArg,
    test_ids: Optional[List[str]] = TestIdsArg,
    model: Optional[str] = typer.Option(None, help="litellm model name, e.g. gpt-4o-mini or openai/<name>."),
    api_base: Optional[str] = typer.Option(None, help="Base URL of an OpenAI-compatible server."),
    max_iters: Optional[int] = typer.Option(None, help="Repair iterations (default 5)."),
    candidates: Optional[int] = typer.Option(None, help="Candidates asked for per iteration (default 1)."),
    strategy: Optional[str] = typer.Option(None, help="A portfolio: default (mutation, then baseline, then auto) "
                                                      "or model-free; or one strategy: mutation (no model), "
                                                      "baseline (no trace), focused (samples at the marked "
                                                      "suspicious lines), auto, flat, hierarchical; or stages, "
                                                      "comma-separated, tried in order under one budget."),
    verdicts: Optional[str] = typer.Option(None, help="Per-block verdicts in the traced loop: auto (default: off "
                                                      "for a model whose name says <= 15B parameters, else on), "
                                                      "on, off."),
    decompose: bool = typer.Option(False, "--decompose",
                                   help="Split a long (>40 lines) failing function into helpers first, then debug "
                                        "them bottom-up."),
    keep_structure: bool = typer.Option(False, "--keep-structure",
                                        help="With --decompose: carry the fix back into the original function."),
    apply: bool = typer.Option(False, "--apply", help="Write the validated patch into the project."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="With --apply: write even over uncommitted changes."),
    cache: Optional[str] = typer.Option(None, help="Response cache folder, or 'off' (default .tracefix/cache)."),
    token_budget: Optional[int] = typer.Option(None, help="Prompt tokens per request."),
    budget_tokens: Optional[int] = typer.Option(None, help="Model tokens (prompt + completion) for the whole run."),
    budget_usd: Optional[float] = typer.Option(None, help="USD for the whole run (cost_budget)."),
    budget_seconds: Optional[float] = typer.Option(None, help="Wall seconds for the whole run's model stages."),
    test_timeout: Optional[float] = typer.Option(None, help="Seconds one test may run."),
    fmt: str = typer.Option("text", "--format", help="text (diff on stdout), json (the whole story), diagnostics "
                            "or sarif (SARIF 2.1.0; a validated fix as the result's fixes)."),
    python: Optional[str] = PythonOpt,
) -> None:
    """Propose a patch, validated by the tests in a scratch copy; --apply writes it."""
    from tracefix.config import load_config
    from tracefix.repair.fix import fix_project

    _check_format(fmt, ("text", "json", "diagnostics", "sarif"))
    root_dir, test_ids = invocation(path, test_ids)
    flags = {"model": model, "api_base": api_base, "max_iters": max_iters, "candidates": candidates,
             "strategy": strategy, "verdicts": verdicts, "apply": apply or None, "allow_dirty": allow_dirty or None,
             "decompose": decompose or None, "keep_structure": keep_structure or None,
             "cache_dir": cache, "token_budget": token_budget, "test_timeout": test_timeout,
             "budget_tokens": budget_tokens, "cost_budget": budget_usd, "budget_seconds": budget_seconds}
    config, sources, warnings = load_config(root_dir, flags)
    err = _stderr()
    for warning in warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    config, interpreter = _with_interpreter(root_dir, config, sources, python)
    client = _ready_client(config) if config.model and needs_model(config.strategy) else None
    with err.status("starting...") if err.is_terminal else _nullcontext() as status:
        def progress(message: str) -> None:
            if status is not None and hasattr(status, "update"):
                status.update(message)
        report = fix_project(root_dir, config, test_ids or (), client=client, progress=progress)
    if fmt == "json":
        from tracefix.tracer.records import to_json

        typer.echo(json.dumps(dict(to_json(report), interpreter=interpreter.to_json()), indent=1, default=str))
    elif fmt == "diagnostics":
        from tracefix.cli.diagnostics import diagnostic_lines, lines_text

        fixed = [c.function for c in report.candidates if c.outcome and c.outcome.accepted][-1:]
        sys.stdout.write(lines_text(diagnostic_lines(root_dir, outcomes=report.outcomes, fixed=fixed,
                                                     edited=report.edited)))
    elif fmt == "sarif":
        from tracefix.cli.sarif import dumps, fix_log

        sys.stdout.write(dumps(fix_log(root_dir, report, _installed_version())))
        for warning in report.warnings:
            err.print(f"warning: {warning}", style="yellow", markup=False)
    else:
        _print_fix_report(report, err)
    raise typer.Exit(EXIT_OK if report.status in ("fixed", "nothing_failing") else EXIT_FAILURES)


def _ready_client(config):
    """The model client, checked before any test runs: an unknown model name or a missing key
    is reported in a second, not after the suite has run."""
    from tracefix.debugger.llm import LLMClient

    client = LLMClient(config)
    client.check_ready()
    return client


def _print_fix_report(report, err: Console) -> None:
    if report.status == "nothing_failing":
        _stdout().print("nothing to fix: all tests pass")
        return
    if getattr(report, "hierarchy", None) is not None:
        _print_call_tree(report.hierarchy, err)
    for judgment in report.judgments:
        for v in judgment.verdicts:
            if not v.correct:
                err.print(f"  {judgment.function} block {v.block}: wrong: {v.explanation}", style="red",
                          markup=False)
        if judgment.note:
            err.print(f"  {judgment.function}: {judgment.note}", style="yellow", markup=False)
    for c in report.candidates:
        why = c.rejected or (c.outcome.reason if c.outcome else "")
        mark = "accepted" if c.outcome and c.outcome.accepted else "rejected"
        err.print(f"  iteration {c.iteration}: candidate for {c.function} {mark}: {why}", markup=False)
    if report.status == "fixed":
        sys.stdout.write(report.diff)
        sys.stdout.flush()
        where = f"; written to {', '.join(report.applied)}" if report.applied else " (not applied; use --apply)"
        err.print(f"validated fix for {len(report.failing)} failing tests{where}", style="green")
    else:
        stopped = f"; stopped by the {report.stopped_by} budget" if report.stopped_by else ""
        err.print(f"no validated fix after {len(report.candidates)} candidates{stopped}", style="red")
    for warning in report.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    if report.usage is not None:
        u = report.usage
        err.print(f"model: {u.calls} calls ({u.cached_calls} cached), {u.prompt_tokens} prompt + "
                  f"{u.completion_tokens} completion tokens, ${u.cost:.4f}, {report.seconds:.1f}s")


def _print_call_tree(hierarchy, err: Console) -> None:
    """The failing test's call tree (its failing region) with the bottom-up verdict of each judged function."""
    from tracefix.debugger.callgraph import call_tree, failing_path
    from tracefix.tracer.view import render_call_tree

    if hierarchy.trace is not None:
        region = {n.id for n in failing_path(call_tree(hierarchy.trace))}
        render_call_tree(err, hierarchy.trace, hierarchy.function_verdicts(), only=region)
    if hierarchy.prime:
        err.print(f"  prime suspect: {hierarchy.prime} (the deepest function with a call judged wrong)",
                  style="red", markup=False)
    for warning in hierarchy.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)


def _check_format(fmt: str, allowed: tuple[str, ...] = ("text", "json")) -> None:
    if fmt not in allowed:
        raise UserError(f"unknown format {fmt!r}: use {', '.join(allowed[:-1])} or {allowed[-1]}")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- integrations: config, vscode, hook (and the diagnostics output of trace) -----------------


def _print_trace_diagnostics(run, root_dir: Path) -> None:
    from tracefix.cli.diagnostics import diagnostic_lines, lines_text

    sys.stdout.write(lines_text(diagnostic_lines(root_dir, outcomes=run.outcomes, traces=run.traces)))
    sys.stdout.flush()
    err = _stderr()
    for warning in run.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    note = _unrecorded_note(run)
    if note:
        err.print(f"note: {note[0]}: {', '.join(i.split('  ')[0] for i in note[1][:UNRECORDED_SHOWN])}"
                  f"{' ...' if len(note[1]) > UNRECORDED_SHOWN else ''}", markup=False)


@app.command("config")
def config_command(
    path: Optional[Path] = PathArg,
    fmt: str = typer.Option("text", "--format", help="text or json (schema tracefix.config/1)."),
    settings: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                 help="Override a setting as a flag would (repeatable)."),
) -> None:
    """Show the effective configuration and where each value came from."""
    from rich.table import Table
    from rich.text import Text

    from tracefix.config import load_config
    from tracefix.cli.integrations import config_json, config_rows, parse_settings, value_text

    _check_format(fmt)
    root_dir, _ids = invocation(path, needs_python=False)
    loaded = load_config(root_dir, parse_settings(settings or []))
    err = _stderr()
    for warning in loaded.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    if fmt == "json":
        typer.echo(json.dumps(config_json(loaded, root_dir), indent=1))
        raise typer.Exit(EXIT_OK)
    out = _stdout()
    pyproject = root_dir / "pyproject.toml"
    out.print(Text(f"tracefix configuration for {root_dir} "
                   f"({'from ' + str(pyproject) if pyproject.is_file() else 'no pyproject.toml'})"), soft_wrap=True)
    table = Table(show_lines=False, box=None, pad_edge=False)
    for column in ("setting", "value", "source") + (("environment variable",) if _verbosity() > 0 else ()):
        table.add_column(column)
    for row in config_rows(loaded):
        style = "dim" if row.source == "default" else None
        cells = [Text(row.name, style=style or ""), Text(value_text(row.value)), Text(row.source, style=style or "")]
        if _verbosity() > 0:
            cells.append(Text("TRACEFIX_" + row.name.upper()))
        table.add_row(*cells)
    out.print(table)


@app.command()
def vscode(
    path: Optional[Path] = PathArg,
    force: bool = typer.Option(False, "--force", help="Replace .vscode/tasks.json instead of merging into it."),
    command: str = typer.Option("tracefix", "--command", help="How the tasks start tracefix, e.g. .venv/bin/tracefix."),
) -> None:
    """Write .vscode/tasks.json tasks (locate, fix, trace) whose findings land in the Problems panel."""
    from tracefix.cli.integrations import TASK_COMMANDS, tasks_json

    root_dir, _ids = invocation(path, needs_python=False)
    target = root_dir / ".vscode" / "tasks.json"
    existing = None
    if target.exists() and not force:
        try:
            existing = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read {target} ({exc}); run again with --force to replace it") from None
    merge = tasks_json(existing, command, where=str(target))
    if existing == merge.text:
        typer.echo(f"{target} already has the tracefix tasks; unchanged")
        raise typer.Exit(EXIT_OK)
    err = _stderr()
    try:
        target.parent.mkdir(exist_ok=True)
        if merge.dropped_comments:
            backup = target.with_name("tasks.json.bak")
            backup.write_text(existing or "", encoding="utf-8")
            err.print(f"warning: the comments in {target} are not kept in the merged file; the old file is "
                      f"{backup}", style="yellow", markup=False)
        scratch = target.with_name(".tasks.json.tracefix-tmp")
        scratch.write_text(merge.text, encoding="utf-8")
        os.replace(scratch, target)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc}") from None
    yours = f"; {merge.kept} other tasks kept" if merge.kept else ""
    typer.echo(f"wrote {target}: {len(TASK_COMMANDS)} tracefix tasks "
               f"({'replaced' if merge.replaced else 'added'}){yours}")


@app.command()
def hook(
    path: Optional[Path] = PathArg,
    top: int = typer.Option(5, "--top", help="How many suspect lines to show."),
    python: Optional[str] = PythonOpt,
) -> None:
    """For pre-commit: run the tests; on failures show the suspects and a proposed fix (the model-free
    stages alone without a model). Exit 1 on failures. Never prompts; writes files only with apply = true in the config."""
    from tracefix.config import load_config
    from tracefix.cli.diagnostics import diagnostic_lines, lines_text
    from tracefix.tracer.localize import locate as locate_

    root_dir, _ids = invocation(path)
    config, sources, warnings = load_config(root_dir)
    err = _stderr()
    for warning in warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    config, _interpreter = _with_interpreter(root_dir, config, sources, python)
    with err.status("tracefix: running the tests...") if err.is_terminal else _nullcontext():
        loc = locate_(root_dir, test_timeout=config.test_timeout, run_timeout=config.run_timeout,
                      pytest_args=config.pytest_args, python=config.python)
    for warning in loc.warnings:
        err.print(f"warning: {warning}", style="yellow", markup=False)
    if _verbosity() > 0:
        for outcome in loc.outcomes:
            err.print(f"{outcome.outcome:>8} {outcome.nodeid}", markup=False)
    if loc.nothing_failing:
        if _verbosity() >= 0:
            typer.echo(f"tracefix: all {loc.passing} tests pass")
        raise typer.Exit(EXIT_OK)
    bad = [o for o in loc.outcomes if o.bad]
    typer.echo(f"tracefix: {len(bad)} of {len(loc.outcomes)} tests fail")
    sys.stdout.write(lines_text(diagnostic_lines(root_dir, outcomes=loc.outcomes)))
    suspects = diagnostic_lines(root_dir, suspects=loc.lines[:top], formula=loc.formula)
    if suspects:
        typer.echo(f"most suspicious lines ({loc.formula}):")
        sys.stdout.write(lines_text(suspects))
    sys.stdout.flush()
    _hook_fix(root_dir, config, err)
    raise typer.Exit(EXIT_FAILURES)


def _model_free_stages(config) -> bool:
    """Whether the configured strategy has stages that need no model (the default portfolio's
    mutation search): they run, and propose a fix, with no model configured."""
    from tracefix.repair.fix import strategies_for

    return not config.decompose and any(not s.uses_model for s in strategies_for(config.strategy))


def _hook_fix(root_dir: Path, config, err: Console) -> None:
    """The proposed fix for the hook: printed, written only when the config says apply = true.
    Without a model, only the strategy's model-free stages run; nothing runs when it has none."""
    try:
        from tracefix.repair.fix import fix_project
    except ImportError as exc:
        if config.model:
            err.print(f"note: a model is configured, but this tracefix cannot propose fixes ({exc})", markup=False)
        return
    if not config.model and not _model_free_stages(config):
        return
    doing = "asking the model for a fix" if config.model else "searching for a fix without a model"
    with err.status(f"tracefix: {doing}...") if err.is_terminal else _nullcontext():
        try:
            report = fix_project(root_dir, config)
        except UserError as exc:
            err.print(f"warning: no fix proposed: {exc}", style="yellow", markup=False)
            return
    if report.status != "fixed":
        unasked = "" if config.model else "; no model configured: set model in [tool.tracefix] to let one try"
        typer.echo(f"tracefix: no validated fix ({len(report.candidates)} candidates tried{unasked})")
        return
    if report.applied:
        typer.echo(f"tracefix: validated fix written to {', '.join(report.applied)} (apply = true); review it:")
    else:
        typer.echo("tracefix: proposed fix, validated by the tests and NOT written "
                   "(set apply = true in [tool.tracefix] to write it):")
    sys.stdout.write(report.diff)
    from tracefix.cli.diagnostics import diagnostic_lines, lines_text

    fixed = [c.function for c in report.candidates if c.outcome is not None and c.outcome.accepted]
    sys.stdout.write(lines_text(diagnostic_lines(root_dir, fixed=fixed[-1:], edited=report.edited)))
    sys.stdout.flush()


def main() -> None:
    """Console entry point: a UserError becomes one line on stderr and exit code 2; an internal
    signal that escaped (a repair attempt that found nothing to try) one line and exit 1."""
    try:
        app()
    except UserError as exc:
        print(f"tracefix: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except InternalSignal as exc:
        # One of tracefix's own attempts failed where nothing caught it: not the user's input.
        print(f"tracefix: no fix: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILURES)
    except KeyboardInterrupt:
        print("tracefix: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
