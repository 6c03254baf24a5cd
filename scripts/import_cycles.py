"""List the modules of a package that import each other in a circle (`make lint`).

    python scripts/import_cycles.py receiver

Every import statement counts, wherever it is (module level, inside a function, under an `if`).
Relative imports are resolved against the importing module, and `from X import n` means the
module `X.n` when there is one, else `X`: `from . import keys` depends on `keys`, `from ..a
import b` on `a.b` or `a`. Only modules of the package are nodes; an import of a package
depends on its `__init__.py` alone. Prints each circle and exits 1 if there is any, else prints
"no import circles among N modules". Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import deque
from itertools import pairwise
from pathlib import Path

# module -> {imported module: a line of the module that imports it}
Graph = dict[str, dict[str, int]]


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `package_dir` (the package root)."""
    root = package_dir.resolve()
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _from_base(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The dotted name after `from` with any leading dots resolved; None above the top."""
    if not node.level:
        return node.module
    base = module.split(".")
    drop = node.level - 1 if is_package else node.level
    if drop > len(base) - 1:
        return None
    base = base[: len(base) - drop]
    if node.module:
        base += node.module.split(".")
    return ".".join(base)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _imported(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: dict[str, Path]
) -> set[str]:
    """The package's modules one import statement depends on."""
    if isinstance(node, ast.Import):
        found = {_resolve(alias.name, modules) for alias in node.names}
    else:
        base = _from_base(node, module, is_package)
        if base is None:
            return set()
        # `from X import n`: the module X.n if there is one, else X (n is a name in X).
        found = {
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else _resolve(base, modules)
            for alias in node.names
        }
    return {name for name in found if name is not None and name != module}


def import_graph(package_dir: Path) -> Graph:
    modules = module_files(package_dir)
    graph: Graph = {name: {} for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):  # every statement: module level, in functions, under ifs
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _imported(node, module, is_package, modules):
                    graph[module].setdefault(target, node.lineno)
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def one_circle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (inside it)."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node]):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    return [start]  # not reached: every member of a component lies on a circle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List the import circles of a package.")
    parser.add_argument("package", type=Path, help="the package directory, e.g. receiver")
    args = parser.parse_args(argv)
    if not (args.package / "__init__.py").is_file():
        parser.error(f"{args.package} is not a package directory (no __init__.py)")
    graph = import_graph(args.package)
    components = strongly_connected(graph)
    if not components:
        print(f"no import circles among {len(graph)} modules")
        return 0
    for component in components:
        circle = one_circle(graph, component)
        steps = " -> ".join(f"{a} (line {graph[a][b]})" for a, b in pairwise(circle))
        print(f"import circle among {len(component)} modules: {', '.join(component)}")
        print(f"  for example: {steps} -> {circle[-1]}")
    print(f"{len(components)} import circle(s) among {len(graph)} modules")
    return 1


if __name__ == "__main__":
    sys.exit(main())
