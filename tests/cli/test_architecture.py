"""The import directions of ARCHITECTURE.md, checked on the source: layers import only downward, and no
module imports itself back through others (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("rexbert", "modeling_rexbert", "curation", "training", "evaluation", "model_cards")

# layer -> the project layers it may import (itself always). `rexbert` is the roof (CLI, demo, and
# the `cli` module of each stage); `rexbert.core` the foundation that every stage may use.
ALLOWED = {
    "rexbert.core": set(),
    "modeling_rexbert": set(),
    "curation": {"rexbert.core"},
    "training": {"rexbert.core", "modeling_rexbert"},
    "evaluation": {"rexbert.core", "modeling_rexbert"},
    "model_cards": {"rexbert.core", "evaluation"},
    "rexbert": {"rexbert.core", "modeling_rexbert", "curation", "training", "evaluation", "model_cards"},
}


def layer_of(module: str) -> str | None:
    if module == "rexbert.core" or module.startswith("rexbert.core."):
        return "rexbert.core"
    if module.endswith((".cli", ".__main__")):  # a stage's command-line shell belongs to the roof that loads it
        return "rexbert"
    top = module.split(".")[0]
    return top if top in PACKAGES else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every project module `path` imports, at module level or inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return {m for m in found if layer_of(m)}


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "metric_modules" not in path.parts:  # loaded by path by `evaluate`, never imported
                modules[module_name(path)] = path
    return modules


MODULES = project_modules()
# a module that imports its own package's __init__ makes no circle of logic (Python loads the package first)
GRAPH = {name: {m for m in imported_modules(path) if m in MODULES and m != name and not name.startswith(m + ".")}
         for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downward(module):
    layer = layer_of(module)
    wrong = sorted(m for m in imported_modules(MODULES[module])
                   if layer_of(m) != layer and layer_of(m) not in ALLOWED[layer])
    assert not wrong, f"{module} ({layer}) imports {wrong}: see ARCHITECTURE.md for what each layer may import"


def test_modeling_imports_only_torch_and_transformers():
    """It ships to the Hub as remote code: nothing beyond torch, transformers (and optional flash-attn);
    huggingface_hub and tokenizers come with transformers (its configs are huggingface_hub's strict
    dataclasses, its fast tokenizers are tokenizers')."""
    import sys

    allowed = {"torch", "transformers", "huggingface_hub", "tokenizers", "flash_attn", "modeling_rexbert", "__future__"} | \
        set(sys.stdlib_module_names)
    for path in (ROOT / "modeling_rexbert").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            extra = [n for n in names if n and n.split(".")[0] not in allowed]
            assert not extra, f"{path.name} imports {extra}"


def test_no_import_circles():
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
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
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"
