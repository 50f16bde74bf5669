"""Entry point of the child process that runs pytest (started by `runner.child_command`).

User code runs here, never in the tracefix process: a test that loops forever, eats
memory or kills the interpreter takes only the child down. The config names a mode:
"outcomes" (plain run), "trace" (block recorder) or "coverage" (per-test line data).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _session(mode: str, root: Path, options: dict):
    if mode == "trace":
        from tracefix.tracer.trace_session import TraceSession

        return TraceSession(root, options)
    if mode == "coverage":
        from tracefix.tracer.coverage_session import CoverageSession

        return CoverageSession(root, options)
    from tracefix.tracer.plugin import NullSession

    return NullSession()


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    root = Path(config["root"]).resolve()
    out_dir = Path(config["out_dir"])
    os.chdir(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))

    import pytest

    from tracefix.tracer.plugin import CoverageReportOff, OutcomePlugin, XdistOff

    session = _session(config["mode"], root, config.get("options", {}))
    with open(out_dir / "tests.jsonl", "w", encoding="utf-8") as out:
        plugin = OutcomePlugin(root, out, out_dir / "current", session, config.get("test_timeout", 0))
        args = ["-p", "no:cacheprovider", "-q", "--no-header", "-rN",
                *config.get("pytest_args", []), *config.get("test_ids", [])]
        code = pytest.main(args, plugins=[plugin, CoverageReportOff(), XdistOff()])
    if os.getpid() != plugin.pid:
        os._exit(0)  # a forked test process that got this far: the session's owner reports
    summary = {"exit_code": int(code), "collection_errors": plugin.collection_errors,
               "session": session.close()}
    (out_dir / "summary.json").write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
