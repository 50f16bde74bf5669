"""The package's shape: one `tracefix` namespace, imports pointing one way, no import loop."""

from __future__ import annotations

import ast
from pathlib import Path

import tracefix

PACKAGE = Path(tracefix.__file__).resolve().parent
# Lower layers never import higher ones (tracefix/__init__, errors and config are the bottom).
LAYERS = {"errors": 0, "config": 0, "__init__": 0, "__main__": 4, "tracer": 1, "debugger": 2, "repair": 3, "cli": 4}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every module of tracefix -> the tracefix modules it imports, at any depth of its code
    (an import inside a function is an import too)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found.update(t for t in targets if t in modules and t != name)
        graph[name] = found
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 else 0


def test_every_module_lives_under_the_tracefix_namespace():
    top_level = {p.name for p in PACKAGE.parent.iterdir() if (p / "__init__.py").exists()}
    assert not {"tracer", "debugger", "repair"} & top_level


def test_imports_point_down_the_layers_only():
    upward = sorted(f"{a} -> {b}" for a, targets in _imports().items() for b in targets
                    if _layer(b) > _layer(a) and not b.startswith(a + "."))
    assert upward == []


def test_no_import_loop_anywhere():
    graph = _imports()
    # A package's __init__ importing its own submodules is not a loop of meaning: drop those edges.
    graph = {a: {b for b in bs if not b.startswith(a + ".")} for a, bs in graph.items()}
    loops: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                loops.append(path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert loops == []


def test_the_tracer_never_imports_the_llm_stack():
    for path in (PACKAGE / "tracer").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"litellm", "openai", "typer", "libcst"}, path
