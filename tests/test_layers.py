"""How Reclaim's modules depend on each other, read from their source (every import counts, also those
made only for type checking or inside a function): no import cycles anywhere, and the lab in layers."""

from __future__ import annotations

import ast
from pathlib import Path

import reclaim

ROOT = Path(reclaim.__file__).parent

# The lab, top down: a module imports only from layers below its own, or from its own package (a
# module of reclaim.lab.graph from another); the services of one layer do not import each other.
LAB_LAYERS: list[tuple[str, ...]] = [
    ("reclaim.lab",),  # the public names
    ("reclaim.lab.server",),  # serving, the route table
    ("reclaim.lab.graph", "reclaim.lab.exchange", "reclaim.lab.signin"),  # the services
    ("reclaim.lab.http",),  # what the endpoints share
    ("reclaim.lab.data",),  # the tenant
    ("reclaim.lab.extras",),  # what its logs imply
    ("reclaim.lab.odata",),  # query options, times, pages
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["reclaim", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (not a package it is in: its __init__ runs first
    whatever the module does)."""
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles(_imports())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_lab_imports_only_downwards() -> None:
    def place(module: str) -> tuple[int, str]:
        """The module's layer and the package (or module) of that layer it belongs to."""
        for depth, layer in enumerate(LAB_LAYERS):
            for owner in layer:
                if module == owner or (owner != "reclaim.lab" and module.startswith(owner + ".")):
                    return depth, owner
        raise AssertionError(f"{module} is in no layer of LAB_LAYERS")

    wrong = []
    for module, targets in sorted(_imports().items()):
        if module != "reclaim.lab" and not module.startswith("reclaim.lab."):
            continue
        depth, owner = place(module)
        for target in sorted(t for t in targets if t == "reclaim.lab" or t.startswith("reclaim.lab.")):
            target_depth, target_owner = place(target)
            if target_owner != owner and target_depth <= depth:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_one_investigation_service() -> None:
    """Rules are run and users judged in ``reclaim.investigation`` only (and inside ``reclaim.detect``):
    every front end asks it, so none can judge differently."""
    callers = []
    for name, path in _modules().items():
        if name == "reclaim.investigation" or name.startswith("reclaim.detect"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in {("engine", "run"), ("verdict", "verdicts"),
                                                              ("spark", "run")}
            ):  # fmt: skip
                callers.append(f"{name}:{node.lineno}")
    assert callers == []
