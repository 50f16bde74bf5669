"""What every repair run fixes at its start, whatever the strategy."""

from __future__ import annotations

from pathlib import Path

from tracefix.config import Config
from tracefix.repair.apply import snapshot_hashes
from tracefix.repair.validate import TestSettings
from tracefix.tracer.project import source_files


def run_setup(root: Path, config: Config) -> tuple[list[str], dict[str, str], TestSettings]:
    """What every repair run fixes at its start: the editable files, their hashes (so --apply
    can refuse files that change meanwhile) and the test settings."""
    sources = source_files(root, list(config.include), list(config.exclude))
    return sources, snapshot_hashes(root, sources), TestSettings(config.test_timeout, config.run_timeout,
                                                                 tuple(config.pytest_args), config.python)


def failing_tests(outcomes, test_ids=()) -> list[str]:
    """Node ids of the failing tests, limited to those the given ids name (a file, a class, a test)."""
    failing = [o.nodeid for o in outcomes if o.bad]
    if test_ids:
        failing = [n for n in failing if any(n == t or n.startswith(t.rstrip(":") + "::") for t in test_ids)]
    return failing
