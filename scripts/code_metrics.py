"""Size and shape of the ``nasforge`` package: the figures the redesign issue asks for.

Prints JSON: total lines, modules over 500 lines, functions over 60 and 80 lines, CLI command
functions over 40 lines, import circles (strongly connected components of the module-level
import graph, imports under ``if TYPE_CHECKING:`` and inside functions left out) and, when the
``duplicates`` command is on PATH, its count of duplicate pairs in ``nasforge/``.

Usage: ``python scripts/code_metrics.py [ROOT]`` (ROOT: a checkout; default: this one).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, lazy: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements of a module; with ``lazy``, those inside functions too."""
    found: list[ast.Import | ast.ImportFrom] = []
    if lazy:
        skip: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and _is_type_checking(node):
                skip.update(id(n) for child in node.body for n in ast.walk(child))
        return [n for n in ast.walk(tree)
                if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in skip]

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _resolve(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _import_graph(files: dict[str, ast.Module], is_pkg: dict[str, bool],
                  lazy: bool) -> nx.DiGraph:
    modules = set(files)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for mod, tree in files.items():
        package = mod if is_pkg[mod] else mod.rpartition(".")[0]
        for node in _imports(tree, lazy):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != mod:
                    graph.add_edge(mod, resolved)
    return graph


def _command_functions(tree: ast.Module) -> set[str]:
    """Names of the functions a CLI module registers as commands (decorator or call form)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) \
                        and dec.func.attr in {"command", "callback"}:
                    names.add(node.name)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Call) \
                and isinstance(node.func.func, ast.Attribute) \
                and node.func.func.attr == "command":
            for arg in node.args:
                if isinstance(arg, ast.Name):
                    names.add(arg.id)
    return names


def measure(root: Path) -> dict[str, object]:
    pkg = root / "nasforge"
    files: dict[str, ast.Module] = {}
    is_pkg: dict[str, bool] = {}
    lines = 0
    big_modules: dict[str, int] = {}
    long_60: dict[str, int] = {}
    long_80: dict[str, int] = {}
    long_commands: dict[str, int] = {}
    for path in sorted(pkg.rglob("*.py")):
        text = path.read_text()
        n = text.count("\n")
        lines += n
        rel = str(path.relative_to(root))
        if n > 500:
            big_modules[rel] = n
        tree = ast.parse(text)
        mod = _module_name(path, root)
        files[mod] = tree
        is_pkg[mod] = path.name == "__init__.py"
        commands = _command_functions(tree) if "/cli/" in rel else set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                where = f"{rel}::{node.name}"
                if size > 60:
                    long_60[where] = size
                if size > 80:
                    long_80[where] = size
                if node.name in commands and size > 40:
                    long_commands[where] = size
    circles = {}
    for lazy in (False, True):
        graph = _import_graph(files, is_pkg, lazy)
        circles["with_function_imports" if lazy else "module_level"] = sorted(
            sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)
    result: dict[str, object] = {
        "lines": lines,
        "modules": len(files),
        "modules_over_500": big_modules,
        "functions_over_60": len(long_60),
        "functions_over_80": long_80,
        "cli_commands_over_40": long_commands,
        "import_circles": circles,
    }
    tool = shutil.which("duplicates")
    if tool:
        out = subprocess.run([tool, "--repo", str(pkg), "--most", "200", "--seconds", "120"],
                             capture_output=True, text=True, check=False).stdout
        match = re.search(r"(\d+) pairs?", out)
        result["duplicate_pairs"] = int(match.group(1)) if match else 0
    return result


if __name__ == "__main__":
    where = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    print(json.dumps(measure(where.resolve()), indent=1))
