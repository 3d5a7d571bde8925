"""reclaim/errors.py's docstring is true: the tree it draws is every ReclaimError there is (all defined
there, with their parents and exit codes), the exceptions it calls internal are all the others, and the
modules it says catch them are the ones that do."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from functools import cache
from pathlib import Path

import reclaim
from reclaim import errors
from reclaim.errors import ReclaimError

ROOT = Path(reclaim.__file__).parent
DOC = errors.__doc__ or ""


@cache
def _defined() -> list[type[BaseException]]:
    """Every exception class a Reclaim module defines, each module imported."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(reclaim.__path__, "reclaim."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def _documented_tree() -> dict[str, tuple[str | None, int]]:
    """name -> (parent, exit code) as the docstring draws them."""
    block = DOC.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    tree: dict[str, tuple[str | None, int]] = {}
    parents: list[tuple[int, str]] = []  # (indent, name) of the lines above, outermost first
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        code = re.search(r"\(exit (\d)\)", line)
        while parents and parents[-1][0] >= indent:
            parents.pop()
        tree[name] = (parents[-1][1] if parents else None, int(code.group(1)) if code else 1)
        parents.append((indent, name))
    return tree


def test_every_reclaim_error_is_in_errors_py_and_in_its_tree() -> None:
    mine = [c for c in _defined() if issubclass(c, ReclaimError)]
    assert [c for c in mine if c.__module__ != "reclaim.errors"] == []
    actual = {c.__name__: (None if c is ReclaimError else c.__bases__[0].__name__, c.exit_code) for c in mine}
    assert _documented_tree() == actual


def test_each_code_is_its_own() -> None:
    mine = [c for c in _defined() if issubclass(c, ReclaimError)]
    codes = [c.code for c in mine]
    assert len(set(codes)) == len(codes), sorted(codes)


def test_the_internal_exceptions_are_named() -> None:
    """Every other exception is internal, and the docstring names each, module and class."""
    internal = [f"{c.__module__}.{c.__qualname__}" for c in _defined() if not issubclass(c, ReclaimError)]
    assert [name for name in internal if f"``{name}``" not in DOC] == []
    named = re.findall(r"``(reclaim\.[\w.]+\.[A-Z_]\w*)``", DOC.split("Internal exceptions", 1)[1])
    assert sorted(named) == sorted(internal)


# -- who catches them -----------------------------------------------------------------------------
def _catchers() -> dict[str, set[str]]:
    """Module -> the ReclaimErrors its except clauses name, for every module but the CLI and web UI."""
    names = {c.__name__ for c in _defined() if issubclass(c, ReclaimError)}
    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        module = ".".join(["reclaim", *path.relative_to(ROOT).with_suffix("").parts]).removesuffix(
            ".__init__"
        )
        if module.startswith("reclaim.cli") or module == "reclaim.web.app":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
                for item in caught:
                    name = item.attr if isinstance(item, ast.Attribute) else getattr(item, "id", "")
                    if name in names:
                        found.setdefault(module, set()).add(name)
    return found


def test_the_modules_said_to_catch_them_are_those_that_do() -> None:
    said = re.findall(r"^- ``(reclaim[\w.]*)``", DOC, flags=re.MULTILINE)
    catchers = _catchers()
    unsaid = sorted(m for m in catchers if not any(m == s or m.startswith(s + ".") for s in said))
    assert unsaid == [], "these modules catch Reclaim errors; errors.py does not say so"
    idle = [s for s in said if not any(m == s or m.startswith(s + ".") for m in catchers)]
    assert idle == [], "errors.py says these catch Reclaim errors; they do not"


def test_the_cli_and_the_web_ui_report_any_of_them() -> None:
    assert "except ReclaimError" in (ROOT / "cli" / "main.py").read_text(encoding="utf-8")
    assert "except ReclaimError" in (ROOT / "web" / "app.py").read_text(encoding="utf-8")
    assert "``reclaim.cli.main``" in DOC and "``reclaim.web.app``" in DOC
