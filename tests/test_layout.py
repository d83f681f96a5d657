"""The package's shape: no import cycles (counting imports inside functions), modules of a
readable size, and `import rag` light."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "rag"
MAX_LINES = 330  # the house style says "about 300"


def import_graph() -> dict[str, set[str]]:
    """module -> the rag modules it imports anywhere in its source (module level or inside functions)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:  # from .x import y
                    edges.add(node.module.split(".")[0])
                elif node.level == 1:  # from . import x, y
                    edges.update(a.name for a in node.names)
                elif node.module and node.module.split(".")[0] == "rag":
                    parts = node.module.split(".")
                    edges.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                edges.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rag."))
        graph[path.stem] = {e for e in edges if e in modules and e != path.stem}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        stack.pop()
        return []

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return []


def test_the_graph_reader_sees_imports_inside_functions():
    graph = import_graph()
    assert "index" in graph["pipeline"]  # `from .index import build` inside Rag.build
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_rag_has_no_import_cycle():
    assert find_cycle(import_graph()) == []


def test_config_imports_nothing_from_rag_but_errors():
    assert import_graph()["config"] <= {"errors"}


def test_only_the_vector_store_modules_know_the_stores():
    """FAISS and Milvus are named only where they are implemented (and where one is chosen)."""
    for path in PACKAGE.glob("*.py"):
        if path.stem in ("vectorstore", "milvus", "store", "embed"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "import faiss" not in text and "pymilvus" not in text, path.name


def test_modules_stay_readable():
    long = {p.name: n for p in PACKAGE.glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
