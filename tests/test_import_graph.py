"""The package's import graph has no cycle, counting imports inside functions too (a deferred import
is still a dependency), but not those under ``if TYPE_CHECKING:``, which never run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "bump_profiles"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (a ``from a import b`` counts ``a.b`` when it is a module)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known]
            found.update(subs if subs and len(subs) == len(node.names) else [target, *subs])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in known and m != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_the_package_has_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_walk_sees_deferred_imports_and_finds_a_cycle():
    graph = _graph()
    assert "bump_profiles.data.render" in graph["bump_profiles.data.schema"]  # imported inside Interaction.text
    assert "bump_profiles.data.schema" not in graph["bump_profiles.data.render"]  # under TYPE_CHECKING only
    graph["bump_profiles.errors"] = graph["bump_profiles.errors"] | {"bump_profiles.data.lamp"}
    assert _cycle(graph) is not None


@pytest.mark.parametrize("name, path", sorted(_modules().items()))
def test_no_module_is_over_400_lines(name, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 400, f"{name} has {lines} lines: split it by concern"



def _stages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph of the package root's subpackages and modules (``bump_profiles.data`` stands for all of data/)."""
    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    out: dict[str, set[str]] = {top(n): set() for n in graph}
    for name, deps in graph.items():
        out[top(name)] |= {top(d) for d in deps if top(d) != top(name)}
    return out


def test_the_subpackages_import_each_other_without_a_cycle():
    cycle = _cycle(_stages(_graph()))
    assert cycle is None, "subpackage cycle: " + " -> ".join(cycle or [])


def test_the_subpackage_walk_finds_a_cycle_through_two_modules():
    graph = _graph()
    graph["bump_profiles.data.schema"] = graph["bump_profiles.data.schema"] | {"bump_profiles.lamp.tasks"}
    assert _cycle(graph) is None  # no module cycle: lamp.tasks imports data.tasks, not data.schema
    assert _cycle(_stages(graph)) is not None

def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def _data_to_lamp(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """The data-layer modules that reach ``bump_profiles.lamp`` (directly or not), with what they reach there."""
    out = {}
    for name in graph:
        if _in(f"{PACKAGE}.data", name):
            hits = sorted(m for m in _reach(graph, name) if _in(f"{PACKAGE}.lamp", m))
            if hits:
                out[name] = hits
    return out


def test_the_data_layer_imports_nothing_from_lamp():
    graph = _graph()
    assert {"bump_profiles.data.lamp", "bump_profiles.data.render", "bump_profiles.data.tasks"} <= set(graph)
    assert _data_to_lamp(graph) == {}


def test_the_data_layer_check_sees_an_indirect_import_of_lamp():
    graph = _graph()
    graph["bump_profiles.errors"] = graph["bump_profiles.errors"] | {"bump_profiles.lamp.tasks"}
    assert "bump_profiles.data.lamp" in _data_to_lamp(graph)  # data.lamp imports errors


def test_the_package_root_holds_only_the_cli_its_config_and_errors():
    root = sorted(p.name for p in (SRC / PACKAGE).glob("*.py"))
    assert root == ["__init__.py", "cli.py", "config.py", "errors.py"], root
