"""Package layering: no kgkd package imports a higher one, at module top level or inside a function,
and no two kgkd modules import each other (directly or round a longer loop).

The layers, lowest first: utils / errors / paths / labels < graph < data < models / export
< distill < signals < recipes < cli / notebook / __main__. A package may import its own
modules and any lower layer. An upward import is either a design error (move the shared
piece down, as ``kgkd.signals.mixture`` and ``kgkd.data.domains`` did) or a deliberate
exception, listed in :data:`ALLOWED` with the reason. Module cycles are checked without the
packages' ``__init__`` re-exports and ``if TYPE_CHECKING:`` imports (neither runs a loop at
import time). The checks read the source with ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import kgkd

ROOT = Path(kgkd.__file__).parent

#: Top-level name under ``kgkd`` → layer (higher may import lower).
LAYERS: dict[str, int] = {
    "utils": 0,
    "errors": 0,
    "paths": 0,
    "labels": 0,
    "graph": 1,
    "data": 2,
    "models": 3,
    "export": 3,
    "distill": 4,
    "signals": 5,
    "recipes": 6,
    "cli": 7,
    "notebook": 7,
    "__main__": 7,
    "__init__": 0,  # ``kgkd/__init__.py`` runs before any kgkd module: it may import layer 0 only
}

#: Known upward imports: (importing module, imported module) → why it is allowed. Keep it empty.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """Absolute kgkd module names one import statement reads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if target == "kgkd":  # ``from kgkd import data`` reads kgkd.data; ``__version__`` reads kgkd itself
        return [f"kgkd.{a.name}" if (ROOT / a.name).is_dir() or (ROOT / f"{a.name}.py").is_file() else "kgkd"
                for a in node.names]
    return [target]


def _layer(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if parts[0] != "kgkd":
        return None
    top = parts[1] if len(parts) > 1 else "__init__"
    return top, LAYERS.get(top, -1)


def upward_imports() -> list[tuple[str, str, int]]:
    """``(importing module, imported module, line)`` for every import of a higher layer."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        own = _layer(module)
        assert own is not None and own[1] >= 0, f"{path}: add its package '{own}' to LAYERS"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _imported(node, module, path.name == "__init__.py"):
                other = _layer(target)
                if other is None or other[0] == own[0]:
                    continue
                assert other[1] >= 0, f"{path}:{node.lineno}: imports '{target}'; add its package to LAYERS"
                if other[1] > own[1]:
                    found.append((module, target, node.lineno))
    return found


def test_no_package_imports_a_higher_one() -> None:
    bad = [
        f"{m} (line {line}) imports {t}"
        for m, t, line in upward_imports()
        if (m, t) not in ALLOWED
    ]
    assert not bad, "upward imports (move the shared piece down, or list it in ALLOWED with why):\n" + "\n".join(bad)


def test_allowed_exceptions_are_still_needed() -> None:
    """An exception that no longer occurs is removed from ALLOWED, so the list stays honest."""
    present = {(m, t) for m, t, _ in upward_imports()}
    stale = sorted(set(ALLOWED) - present)
    assert not stale, f"remove these from ALLOWED, the imports are gone: {stale}"


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    """A late import inside a function counts like a top-level one."""
    tree = ast.parse("def f():\n    from kgkd.recipes import pipeline\n")
    targets = [t for node in ast.walk(tree) for t in _imported(node, "kgkd.graph.x", False)]
    assert targets == ["kgkd.recipes"]


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def module_graph() -> nx.DiGraph:
    """kgkd module → the kgkd modules it imports at run time (``from pkg import submodule`` included)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py") if p.name != "__init__.py"}
    graph: nx.DiGraph = nx.DiGraph()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skip = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.ImportFrom) else [""]
            for target in _imported(node, module, False):
                for name in names:
                    hit = f"{target}.{name}" if f"{target}.{name}" in modules else target
                    if hit in modules and hit != module:
                        graph.add_edge(module, hit)
    return graph


def test_no_import_cycles_between_modules() -> None:
    loops = [sorted(c) for c in nx.strongly_connected_components(module_graph()) if len(c) > 1]
    assert not loops, (
        "modules importing each other (move the shared piece into a lower module; a local import "
        f"inside a function still counts): {loops}"
    )
