"""The tree keeps the shape the README draws: no import circle between modules (at any depth: inside
functions and under TYPE_CHECKING too), the runtime imports nothing of the provisioning library, and
no source file outgrows one responsibility (~400 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"dac_runtime": ROOT / "runtime" / "dac_runtime", "dac_provision": ROOT / "dac_provision"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for name, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            named.add(target)
            named.update(f"{target}.{alias.name}" for alias in node.names)  # "from . import x" names a module
    # a name counts as the module that holds it: the longest known prefix
    resolved = set()
    for name in named:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            resolved.add(name)
    return resolved


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _circles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def _is_package_init(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def test_no_module_imports_one_that_imports_it_back():
    # A package's __init__ re-exporting its own modules is not a circle between rooms.
    circles = [c for c in _circles() if not all(_is_package_init(m) or m.startswith(c[0] + ".") for m in c)]
    assert circles == []


def test_the_runtime_imports_nothing_of_the_provisioning_library():
    leaks = {
        m: sorted(i for i in GRAPH[m] if i.startswith("dac_provision")) for m in GRAPH if m.startswith("dac_runtime")
    }
    assert {m: i for m, i in leaks.items() if i} == {}


def test_a_source_file_stays_under_the_size_of_one_responsibility():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in MODULES.values()}
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}
