"""The shape of the code, pinned: no import cycle anywhere (type-only and lazy imports included), one writer
of deployment records, a pure core that imports nothing that does I/O, and services that never see the
kernel (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "nucleus"
DEPLOYMENT_WRITES = {"queue_deployment", "start_deployment", "finish_deployment", "commit", "begin_deployment",
                     "set_roots"}
PURE = ["nucleus.versions", "nucleus.resolve", "nucleus.deployment.plan", "nucleus.deployment.model",
        "nucleus.lifecycle.states", "nucleus.lifecycle.events", "nucleus.lifecycle.spec", "nucleus.ipc.eventstream",
        "nucleus.ipc.rpc", "nucleus.configuration.tree", "nucleus.configuration.merge"]
IO_MODULES = {"nucleus.store", "nucleus.state", "nucleus.lifecycle.process", "nucleus.lifecycle.kernel",
              "nucleus.daemon", "nucleus.deployment.candidates", "nucleus.deployment.apply", "socket", "sqlite3",
              "subprocess"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every module `path` imports, wherever the import is written (top level, a function, TYPE_CHECKING)."""
    def resolve(name: str) -> str:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {resolve(a.name) or a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {resolve(f"{node.module}.{a.name}") or resolve(node.module) or node.module for a in node.names}
    return found


def test_the_import_graph_has_no_cycle() -> None:
    known = modules()
    graph = {name: {m for m in imports(path, known) if m in known and m != name} for name, path in known.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, "import cycle: " + " -> ".join(visiting[visiting.index(name):] + [name])
        visiting.append(name)
        for other in sorted(graph[name]):
            visit(other)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_exactly_one_module_writes_deployment_records() -> None:
    writers = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in DEPLOYMENT_WRITES and name != "nucleus.state":
                writers.add(name)
    assert writers == {"nucleus.deployment.status"}


def test_the_pure_core_imports_nothing_that_does_io() -> None:
    known = modules()
    for name in PURE:
        assert not imports(known[name], known) & IO_MODULES, name


def test_a_service_never_sees_the_kernel() -> None:
    known = modules()
    assert "nucleus.lifecycle.kernel" not in imports(known["nucleus.lifecycle.service"], known)
    assert "nucleus.lifecycle.kernel" not in imports(known["nucleus.lifecycle.host"], known)
