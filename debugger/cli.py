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

from tracer.errors import TracefixError

__version__ = "0.1.0"

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
    invoke_without_command=True,
    help="Debug and repair failing Python tests from their real execution.",
)

EXIT_OK, EXIT_FAILURES, EXIT_ERROR = 0, 1, 2


def _stdout() -> Console:
    # Rich assumes 80 columns when stdout is not a terminal; traces read better wider.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 120))
    return Console(no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False, soft_wrap=False,
                   width=width)


def _stderr() -> Console:
    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None, highlight=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tracefix {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """tracefix: run the failing tests under a tracer, localize, and (with a model) fix."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(trace, path=Path("."), test_ids=None)


PathArg = typer.Argument(Path("."), help="The project's root folder.", show_default=True)
TestIdsArg = typer.Argument(None, help="pytest node ids to trace (default: every failing test).")


@app.command()
def trace(
    path: Path = PathArg,
    test_ids: Optional[List[str]] = TestIdsArg,
    fmt: str = typer.Option("text", "--format", help="text or json (schema tracefix.trace/1)."),
    test_timeout: float = typer.Option(10.0, help="Seconds one test may run before it is stopped."),
    run_timeout: float = typer.Option(300.0, help="Seconds the whole test run may take."),
    max_visits: int = typer.Option(5, help="Visits recorded per block per call (later ones are elided)."),
    max_calls: int = typer.Option(20, help="Calls recorded in full per function per test."),
    backend: Optional[str] = typer.Option(None, help="settrace or monitoring (default: the best this Python has)."),
) -> None:
    """Record the failing tests block by block, with the variables at every block boundary."""
    from tracer.project import check_project
    from tracer.tracing import trace_run_json, trace_tests

    _check_format(fmt)
    root_dir = check_project(path)
    err = _stderr()
    with err.status("running the tests...", spinner="dots") if err.is_terminal else _nullcontext():
        run = trace_tests(root_dir, test_ids or (), test_timeout=test_timeout, run_timeout=run_timeout,
                          bounds={"max_visits": max_visits, "max_calls": max_calls}, backend=backend)
    if fmt == "json":
        typer.echo(json.dumps(trace_run_json(run), indent=1))
    else:
        _print_trace_run(run, root_dir)
    bad = [t for t in run.traces if t.outcome not in ("passed", "skipped", "xfailed")]
    if not run.traces and not test_ids:
        raise typer.Exit(EXIT_OK)
    raise typer.Exit(EXIT_FAILURES if bad else EXIT_OK)


def _print_trace_run(run, root_dir: Path) -> None:
    from tracer.view import render_trace

    out = _stdout()
    if not run.traces:
        out.print(f"nothing to trace: all {len(run.outcomes)} tests pass")
    for trace_ in run.traces:
        render_trace(out, root_dir, trace_)
        out.print()
    for warning in run.warnings:
        _stderr().print(f"warning: {warning}", style="yellow")
    if run.traces:
        failing = len([t for t in run.traces if t.outcome != "passed"])
        out.print(f"{failing} failing of {len(run.outcomes)} tests traced with {run.backend} on Python {run.python}")


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise TracefixError(f"unknown format {fmt!r}: use text or json")


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main() -> None:
    """Console entry point: every TracefixError becomes one line on stderr and exit code 2."""
    try:
        app()
    except TracefixError as exc:
        print(f"tracefix: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        print("tracefix: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
