"""The child-side session that records each test with a fresh Recorder."""

from __future__ import annotations

from pathlib import Path

from tracefix.tracer.cfg import functions_in
from tracefix.tracer.project import source_files
from tracefix.tracer.records import TestTrace, to_json
from tracefix.tracer.backends import start_recording
from tracefix.tracer.recorder import Recorder


def project_functions(root: Path, files: list[str] | None = None, keys: set[str] | None = None):
    """FunctionInfos of the project's source files (only the files `keys` name, when given);
    files that do not parse are skipped (pytest reports them if a test imports them)."""
    if files is None and keys:
        # Parsing the whole project for a few functions cost sqlparse's traced run 80 ms, and
        # the garbage it left made the first test pay a collection (15 ms on toolz).
        files = sorted({key.partition("::")[0] for key in keys})
    functions = []
    for rel in files if files is not None else source_files(root):
        try:
            source = (root / rel).read_text(encoding="utf-8")
            infos = functions_in(source, rel)
        except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
            continue
        functions.extend(f for f in infos if keys is None or f.key in keys)
    return functions


class TraceSession:
    def __init__(self, root: Path, options: dict) -> None:
        self.root = Path(root).resolve()
        keys = set(options["functions"]) if options.get("functions") else None
        self.functions = project_functions(self.root, options.get("files"), keys)
        self.bounds = {k: options[k] for k in ("max_visits", "max_calls", "max_total_calls") if k in options}
        self.backend = options.get("backend")
        self.recording = None

    def skip_files(self, paths) -> None:
        """Record no function of the collected test modules nor of conftest files."""
        skipped = set()
        for path in paths:
            for spelling in (Path(path).absolute(), Path(path).resolve()):
                try:
                    skipped.add(spelling.relative_to(self.root).as_posix())
                except ValueError:
                    pass
        self.functions = [f for f in self.functions if f.path not in skipped]

    def stop_test(self) -> None:
        if self.recording is not None:
            self.recording.stop()

    def pause(self) -> None: ...  # a recording cannot be resumed mid-call; only coverage pauses

    def resume(self) -> None: ...

    def begin_test(self, nodeid: str) -> None:
        recorder = Recorder(self.functions, self.root, **self.bounds)
        self.recording = start_recording(recorder, self.backend)

    def on_timeout(self, frame) -> None:
        if self.recording is not None and self.recording.running:
            self.recording.stop()
            self.recording.recorder.stop_in(frame)

    def end_test(self, nodeid: str, outcome: dict) -> dict:
        recording, self.recording = self.recording, None
        if recording is None:
            return {}
        recording.stop()  # idempotent enough: a second stop after a timeout is harmless
        recorder = recording.recorder
        calls, dropped = recorder.records(recording.open_ended)
        trace = TestTrace(
            nodeid=nodeid, outcome=outcome["outcome"], message=outcome["message"],
            longrepr=outcome["longrepr"], functions=tuple(recorder.used_functions()),
            calls=tuple(calls), dropped_calls=dropped, duration=outcome["duration"],
            call_counts=recorder.call_counts(),
        )
        # Not part of the trace: what tracing.py needs to leave a function out afterwards.
        return dict(to_json(trace), dropped_by_function=recorder.dropped_by_function())

    def close(self) -> dict:
        return {}
