"""Which Python runs the project's tests, and what it can do, chosen once per command.

The tests run in the project's interpreter, not tracefix's: installed with pipx, tracefix's
own venv lacks the project's dependencies, and holds its own versions of the ones both have.
Only the child runs there (pytest, the recorder, optionally coverage.py); models, the CLI
and the patching stay in tracefix's process.

Order: `--python`, `python` in `[tool.tracefix]` (or TRACEFIX_PYTHON), the active
`VIRTUAL_ENV`, a `.venv` or `venv` in the project root, else tracefix's own interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from tracefix.errors import UserError

SUPPORTED = ((3, 10), (3, 13))  # the versions the child's recorder and plugin are tested on
PROBE_TIMEOUT = 30.0
# Runs on any Python from 2.7 up, so an old one is named rather than misread.
_PROBE = ("import sys, json\n"
          "mods = {}\n"
          "try:\n"
          "    import importlib.util as u\n"
          "    mods = dict((m, u.find_spec(m) is not None) for m in ('pytest', 'coverage'))\n"
          "except Exception:\n"
          "    pass\n"
          "print(json.dumps({'version': list(sys.version_info[:3]), 'modules': mods}))\n")


@dataclass(frozen=True)
class Interpreter:
    path: str  # as found, symlinks kept: a venv's bin/python is a link whose venv matters
    source: str  # "--python", "[tool.tracefix] python", "VIRTUAL_ENV", ".venv", "tracefix's own"
    version: str  # "3.12.1"
    has_coverage: bool

    @property
    def has_monitoring(self) -> bool:
        return tuple(int(p) for p in self.version.split(".")[:2]) >= (3, 12)

    @property
    def own(self) -> bool:
        return os.path.abspath(self.path) == os.path.abspath(sys.executable)

    def to_json(self) -> dict:
        return {"path": self.path, "version": self.version, "source": self.source}


def project_interpreter(root: Path, configured: str | None = None, source: str = "flag",
                        environ=None) -> Interpreter:
    """The interpreter that runs `root`'s tests, checked: a UserError when it is no Python,
    an unsupported one, or one without pytest."""
    path, where = _chosen(Path(root), configured, source, os.environ if environ is None else environ)
    return described(path, where)


def _chosen(root: Path, configured: str | None, source: str, environ) -> tuple[str, str]:
    if configured:
        return _configured_path(root, str(configured), source), _source_name(source)
    venv = environ.get("VIRTUAL_ENV")
    if venv and _venv_python(Path(venv)):
        return _venv_python(Path(venv)), "VIRTUAL_ENV"
    for name in (".venv", "venv"):
        found = _venv_python(root / name)
        if found:
            return found, name
    return sys.executable, "tracefix's own"


def _source_name(source: str) -> str:
    if source == "pyproject.toml":
        return "[tool.tracefix] python"
    if source.startswith("env "):
        return source[4:]
    return "--python"


def _configured_path(root: Path, text: str, source: str) -> str:
    path = Path(text).expanduser()
    if path.is_absolute():
        return str(path)
    base = root if source == "pyproject.toml" else Path.cwd()
    if os.sep not in text and not (base / path).exists():
        found = shutil.which(text)  # a bare name: python3.12
        if found:
            return found
    return os.path.abspath(base / path)


def _venv_python(venv: Path) -> str | None:
    for rel in ("bin/python", "Scripts/python.exe"):
        candidate = venv / rel
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def described(path: str, source: str) -> Interpreter:
    """Probe `path` once: its version and whether pytest and coverage.py are installed there.
    A probe is a process start (25 ms); the CLI and the run it starts ask for the same
    interpreter, so a probe is kept for as long as the file is unchanged."""
    if not os.path.exists(path):
        raise UserError(f"the Python for the tests ({source}) does not exist: {path}")
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
    probed = _PROBED.get(key)
    if probed is None:
        probed = _PROBED[key] = _probe(path, source)
    return replace(probed, source=source)


_PROBED: dict[tuple, Interpreter] = {}


def _probe(path: str, source: str) -> Interpreter:
    try:
        done = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL)
        data = json.loads(done.stdout.strip().splitlines()[-1])
        version = tuple(int(v) for v in data["version"])
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError, TypeError):
        raise UserError(f"{path} ({source}) is not a Python interpreter: give the path of the project's "
                        "python, e.g. --python .venv/bin/python") from None
    shown = ".".join(map(str, version))
    if not SUPPORTED[0] <= version[:2] <= SUPPORTED[1]:
        low, high = (".".join(map(str, v)) for v in SUPPORTED)
        raise UserError(f"{path} ({source}) is Python {shown}: tracefix runs tests on Python {low} to {high}")
    if not data["modules"].get("pytest"):
        raise UserError(f"pytest is not installed in {path} ({source}): run {path} -m pip install pytest")
    return Interpreter(path, source, shown, bool(data["modules"].get("coverage")))


def collector_for(interpreter: Interpreter | None, name: str | None) -> str | None:
    """The collector to ask the child for: `name`, or monitoring where the project's Python
    has no coverage.py; a UserError where it can run neither."""
    if interpreter is None or interpreter.has_coverage:
        return name
    if name == "coverage" or not interpreter.has_monitoring:
        raise UserError(f"coverage.py is not installed in {interpreter.path} (Python {interpreter.version}), "
                        f"which runs the tests: run {interpreter.path} -m pip install coverage"
                        + ("" if interpreter.has_monitoring else ", or use a Python 3.12+"))
    return "monitoring"
