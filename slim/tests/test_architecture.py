"""The project's shape (issue 28): imports between its packages point one way, slim's modules import
each other without a cycle (lazy imports included), and no project file outgrows 350 lines."""

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Who may import whom: the in-process collector and the scenario definitions import nothing of the
# project; slim reads both; benchmarks, notebooks and CI helpers use slim's library functions.
ALLOWED = {"tracer": set(), "scenarios": set(), "slim": {"scenarios", "tracer"},
           "benchmarks": {"slim", "scenarios"}, "notebooks": {"slim", "scenarios"}, "ci": {"slim", "scenarios"}}
MAX_LINES = 350


def project_files(package: str) -> list[Path]:
    return sorted(p for p in (REPO / package).rglob("*.py") if "tests" not in p.relative_to(REPO).parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module an import statement of the file names (lazy ones too), relative ones resolved."""
    names, package = set(), module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_imports_between_the_packages_point_one_way():
    wrong = sorted(f"{path.relative_to(REPO)} imports {name}" for package, allowed in ALLOWED.items()
                   for path in project_files(package) for name in imported(path)
                   if name.split(".")[0] in ALLOWED and name.split(".")[0] not in allowed | {package})
    assert wrong == []


def test_slims_modules_import_each_other_without_a_cycle():
    modules = {module_name(path): path for path in project_files("slim")}
    graph = {name: {other for other in imported(path) if other in modules and other != name}
             for name, path in modules.items()}
    assert len(graph) > 50 and any(graph.values())  # the graph is slim's, with edges in it
    assert cycles(graph) == []


def test_cycles_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_project_file_outgrows_350_lines():
    sizes = defaultdict(int)
    for package in ALLOWED:
        for path in project_files(package):
            sizes[str(path.relative_to(REPO))] = len(path.read_text().splitlines())
    assert len(sizes) > 100
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
