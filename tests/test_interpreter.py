"""The tests run in the project's Python (its venv), not in tracefix's, and the child
imports only what the tracer needs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from tracefix.errors import UserError
from tracefix.tracer.interpreter import project_interpreter
from tracefix.tracer.runner import run_tests

PYENV = Path.home() / ".pyenv" / "versions"
# pytest and what it imports, pure Python: linked into a project venv of any version.
PYTEST_STACK = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py",
                "exceptiongroup", "tomli")


def project_venv(where: Path, base: str = sys.executable, *, coverage: bool = False,
                 modules: dict[str, str] | None = None) -> Path:
    """A real venv (no pip, no network) that sees this venv's pytest through a .pth file and
    holds `modules` ({relative path: source}) in its own site-packages; its python."""
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True, capture_output=True)
    [site] = where.glob("lib/python3*/site-packages")
    ours = Path(pytest.__file__).resolve().parent.parent
    stack = where / "pytest-stack"
    stack.mkdir()
    for name in PYTEST_STACK + (("coverage",) if coverage else ()):
        if (ours / name).exists():
            (stack / name).symlink_to(ours / name)
    (site / "pytest_stack.pth").write_text(f"{stack}\n")
    for rel, source in (modules or {}).items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(source)
    return where / "bin" / "python"


PROJECT_DEPS = {
    "projdep/__init__.py": "VALUE = 41\n",  # a module tracefix's venv lacks
    "idna/__init__.py": "__version__ = '0-project'\n",  # one both have, at another version
}


def write_project(root: Path) -> Path:
    (root / "calc").mkdir(parents=True)
    (root / "calc" / "__init__.py").write_text("import projdep\n\n\ndef answer():\n    return projdep.VALUE\n")
    (root / "test_calc.py").write_text(
        "import idna\nimport calc\n\n\ndef test_answer():\n    assert calc.answer() == 42\n\n\n"
        "def test_dependency_is_the_projects():\n    assert idna.__version__ == '0-project'\n")
    return root


def _json(result):
    assert result.returncode == 1, result.stderr
    return json.loads(result.stdout)


def test_locate_runs_the_tests_in_the_projects_dot_venv(tmp_path):
    root = write_project(tmp_path / "proj")
    python = project_venv(root / ".venv", coverage=True, modules=PROJECT_DEPS)
    result = run_cli("locate", str(root), "--format", "json", env={"VIRTUAL_ENV": ""})
    data = _json(result)
    outcomes = {o["nodeid"]: o["outcome"] for o in data["outcomes"]}
    assert outcomes == {"test_calc.py::test_answer": "failed", "test_calc.py::test_dependency_is_the_projects": "passed"}
    assert data["functions"][0]["qualname"] == "answer"
    assert data["interpreter"]["path"] == str(python) and data["interpreter"]["source"] == ".venv"
    assert f"note: the tests run on {python}" in result.stderr


def test_python_flag_config_and_virtual_env_choose_the_interpreter(tmp_path):
    root = write_project(tmp_path / "proj")
    python = project_venv(tmp_path / "elsewhere", coverage=True, modules=PROJECT_DEPS)
    by_flag = _json(run_cli("trace", str(root), "--format", "json", "--python", str(python), env={"VIRTUAL_ENV": ""}))
    assert [t["nodeid"] for t in by_flag["tests"]] == ["test_calc.py::test_answer"]
    assert by_flag["interpreter"]["source"] == "--python"
    by_env = _json(run_cli("trace", str(root), "--format", "json", env={"VIRTUAL_ENV": str(tmp_path / "elsewhere")}))
    assert by_env["interpreter"] == {"path": str(python), "version": by_flag["interpreter"]["version"],
                                     "source": "VIRTUAL_ENV"}
    (root / "pyproject.toml").write_text('[tool.tracefix]\npython = "../elsewhere/bin/python"\n')
    by_config = _json(run_cli("locate", str(root), "--format", "json", env={"VIRTUAL_ENV": ""}))
    assert by_config["interpreter"]["source"] == "[tool.tracefix] python"
    assert len(by_config["outcomes"]) == 2 and by_config["failing"] == 1


def test_without_a_project_venv_tracefix_own_python_runs_them(tmp_path):
    root = write_project(tmp_path / "proj")
    assert project_interpreter(root, environ={}).source == "tracefix's own"
    # and there the project's dependency is missing: the failure the project venv avoids
    run = run_tests(root)
    assert run.collection_errors and "projdep" in run.collection_errors[0]


def test_runs_tests_of_the_project_venv_with_validation_too(tmp_path):
    """fix's validation runs (TestSettings.python) take the same interpreter."""
    from tracefix.repair.validate import TestSettings, validate

    root = write_project(tmp_path / "proj")
    python = project_venv(root / ".venv", modules=PROJECT_DEPS)
    baseline = run_tests(root, python=str(python)).outcomes
    outcome = validate(root, {"calc/__init__.py": "import projdep\n\n\ndef answer():\n    return projdep.VALUE + 1\n"},
                       baseline, ["test_calc.py::test_answer"], TestSettings(10, 60, (), str(python)))
    assert outcome.accepted, outcome.reason


def test_no_coverage_in_the_projects_python_is_one_clear_error(tmp_path):
    root = write_project(tmp_path / "proj")
    project_venv(root / ".venv", modules=PROJECT_DEPS)  # tracefix's version, no coverage.py
    result = run_cli("locate", str(root), env={"VIRTUAL_ENV": ""})
    if hasattr(sys, "monitoring"):
        assert result.returncode == 1, result.stderr  # the sys.monitoring collector needs nothing
        return
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()[-1:]
    assert "coverage.py is not installed in" in line and "pip install coverage" in line
    assert "Traceback" not in result.stderr
    # tracing needs no coverage.py
    assert run_cli("trace", str(root), env={"VIRTUAL_ENV": ""}).returncode == 1


@pytest.mark.parametrize("bad", ["text", "echo"])
def test_a_path_that_is_not_a_python_is_one_line_exit_2(tmp_path, bad):
    root = write_project(tmp_path / "proj")
    if bad == "text":
        path = tmp_path / "python"
        path.write_text("not a program\n")
        path.chmod(0o755)
    else:
        path = Path("/bin/echo")
    result = run_cli("locate", str(root), "--python", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"tracefix: error: {path} (--python) is not a Python interpreter: give the " \
                                    "path of the project's python, e.g. --python .venv/bin/python"
    missing = run_cli("trace", str(root), "--python", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def _pyenv(version: str) -> Path:
    found = sorted(PYENV.glob(f"{version}.*/bin/python"))
    if not found:
        pytest.skip(f"no Python {version} under {PYENV}")
    return found[-1]


def test_an_unsupported_python_is_one_line_exit_2(tmp_path):
    root = write_project(tmp_path / "proj")
    old = _pyenv("3.9")
    with pytest.raises(UserError, match=r"is Python 3\.9\.\d+: tracefix runs tests on Python 3\.10 to 3\.13"):
        project_interpreter(root, str(old))


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_trace_and_locate_on_another_python_version(tmp_path, version):
    base = _pyenv(version)
    root = write_project(tmp_path / "proj")
    python = project_venv(root / ".venv", str(base), modules=PROJECT_DEPS)
    if subprocess.run([str(python), "-c", "import pytest"], capture_output=True).returncode:
        pytest.skip(f"this venv's pytest does not import on Python {version} (a dependency is missing)")
    traced = _json(run_cli("trace", str(root), "--format", "json", env={"VIRTUAL_ENV": ""}))
    assert traced["python"].startswith(version + ".") and traced["interpreter"]["version"] == traced["python"]
    # the back end the child chose on its own interpreter, not the one tracefix's would
    assert traced["backend"] == ("settrace" if version == "3.10" else "monitoring")
    [test] = traced["tests"]
    assert test["nodeid"] == "test_calc.py::test_answer"
    assert any(c["function"] == "calc/__init__.py::answer" for c in test["calls"])
    located = run_cli("locate", str(root), "--format", "json", env={"VIRTUAL_ENV": ""})
    if version == "3.10":  # no coverage.py linked in, and no sys.monitoring
        assert located.returncode == 2 and "coverage.py is not installed" in located.stderr
        return
    data = _json(located)
    assert data["collector"] == "monitoring" and data["functions"][0]["qualname"] == "answer"


HEAVY = ("litellm", "openai", "typer", "rich", "libcst", "click", "httpx", "tracefix.debugger", "tracefix.repair",
         "tracefix.cli")


@pytest.mark.parametrize("mode", ["outcomes", "coverage", "trace"])
def test_the_child_imports_nothing_but_the_tracer(tmp_path, mode):
    (tmp_path / "lib.py").write_text("def f():\n    return 1\n")
    (tmp_path / "test_lib.py").write_text(
        "import sys\nimport lib\n\n\ndef test_light():\n    lib.f()\n"
        f"    loaded = [m for m in {HEAVY!r} if m in sys.modules]\n    assert loaded == []\n")
    run = run_tests(tmp_path, mode=mode, options={"files": ["lib.py"]})
    assert [(o.nodeid, o.outcome, o.message) for o in run.outcomes] == [("test_lib.py::test_light", "passed", "")]


def test_fix_validates_in_the_projects_venv(tmp_path):
    """fix: the first run, the validation of the candidate and the JSON report all use the
    project's venv (tracefix's own cannot even import the project)."""
    from conftest import mocks

    root = write_project(tmp_path / "proj")
    python = project_venv(root / ".venv", coverage=True, modules=PROJECT_DEPS)
    answer = ("answer() is one short.\n```python\nimport projdep\n\n\ndef answer():\n"
              "    return projdep.VALUE + 1\n```")
    result = run_cli("fix", str(root), "--model", "openai/mock-model", "--cache", "off", "--strategy", "baseline",
                     "--format", "json", env=dict(mocks(answer), VIRTUAL_ENV=""))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "fixed" and "+    return projdep.VALUE + 1" in report["diff"]
    assert report["interpreter"]["path"] == str(python)


def test_an_interpreter_is_probed_once_while_it_is_unchanged(tmp_path, monkeypatch):
    """The CLI and the run it starts both ask for the project's Python: one process start."""
    from tracefix.tracer import interpreter

    probes = []
    real_run = subprocess.run
    monkeypatch.setattr(interpreter.subprocess, "run", lambda *a, **k: probes.append(a) or real_run(*a, **k))
    python = tmp_path / "python"
    python.symlink_to(sys.executable)
    first = interpreter.described(str(python), "--python")
    second = interpreter.described(str(python), "[tool.tracefix] python")
    assert len(probes) == 1
    assert (first.version, second.version) == (first.version, first.version)
    assert second.source == "[tool.tracefix] python"
    python.unlink()
    python.write_text("#!/bin/sh\nexit 3\n")
    python.chmod(0o755)
    with pytest.raises(UserError, match="is not a Python interpreter"):
        interpreter.described(str(python), "--python")  # changed on disk: probed again
    assert len(probes) == 2
