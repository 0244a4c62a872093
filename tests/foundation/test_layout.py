"""The layout's promises: the core imports none of the tools, and no module cycles.

The core is the client runtime a task imports: the package itself, its private
modules, the seed-parity faces and the Celery glue. The tools around it (the CLI,
the local runner, the demo, the soak, the bench, the hub server) may import the
core, never the other way round.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Collection, Iterator
from pathlib import Path

import asyncstream

PACKAGE = Path(asyncstream.__file__).parent
TOOLS = ("cli", "run", "demo", "soak", "bench", "hub")
# Imported only by the tools and the Celery glue: the client runtime must not pull
# them in. (click and rich are left out: httpx imports them for its own command
# line whenever they are installed.)
TOOL_DEPENDENCIES = ("fastapi", "uvicorn", "aiosqlite", "prometheus_client", "celery")
# The split of the hub into context, schemas and route modules removes this
# cycle: then empty the list, and the test holds the package to no cycle at all.
KNOWN_CYCLES: list[list[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def core_modules() -> list[str]:
    return [
        name
        for name in all_modules()
        if name.split(".")[1:2] not in ([tool] for tool in TOOLS)
        and name != "asyncstream.__main__"
    ]


def imported_names(name: str, path: Path, modules: Collection[str]) -> Iterator[str]:
    """Every asyncstream module ``path`` imports, wherever the import statement is."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from . import _portal`` imports the module ``_portal``, not a
            # name defined by the package's ``__init__``.
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            yield from (m for m in submodules if m in modules)
            if any(m not in modules for m in submodules):
                yield base


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {
        name: {d for d in imported_names(name, path, modules) if d in modules} - {name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def modules_loaded_by_importing(names: list[str]) -> list[str]:
    """``sys.modules`` of a fresh interpreter after importing ``names``."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_importing_every_core_module_loads_no_tool() -> None:
    loaded = modules_loaded_by_importing(core_modules())

    tools = tuple(f"asyncstream.{tool}" for tool in TOOLS)
    assert [m for m in loaded if m.startswith(tools)] == []
    assert "asyncstream.celery" in loaded  # the check saw the whole core


def test_the_client_runtime_needs_none_of_the_tools_dependencies() -> None:
    runtime = [m for m in core_modules() if m != "asyncstream.celery"]
    loaded = modules_loaded_by_importing(runtime)

    assert [m for m in loaded if m.split(".")[0] in TOOL_DEPENDENCIES] == []
    assert "asyncstream.utils.inputs" in loaded


def test_core_modules_import_no_tool_even_lazily() -> None:
    graph = import_graph()
    tools = tuple(f"asyncstream.{tool}" for tool in TOOLS)
    wrong = {
        name: sorted(d for d in graph[name] if d.startswith(tools))
        for name in core_modules()
    }

    assert {name: deps for name, deps in wrong.items() if deps} == {}


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(import_graph()) == KNOWN_CYCLES


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert cycles(graph) == [["a", "b", "c"]]
