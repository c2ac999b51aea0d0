"""The layers, held by a test: which package may import which, only the HTTP edge knows Flask,
``terminology`` is the ground floor, and no module imports itself back through others.

Read from the source (every import, also those inside functions; not those only for type
checkers), so a new import that crosses a layer fails here before review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("facade", "legacy_adapters", "terminology")
WEB_FRAMEWORKS = ("flask", "flask_smorest", "werkzeug", "authlib.integrations")

# What each part of the product may import of the product: a module and what lies under it;
# "facade!" is the root module alone (its version).
ALLOWED: dict[str, tuple[str, ...]] = {
    "terminology": ("terminology",),
    "legacy_adapters": ("legacy_adapters", "terminology", "facade.errors", "facade.search"),
    "facade": (),
    "facade.search": ("facade.search", "facade.errors"),
    "facade.access": ("facade.access", "facade.search", "facade.errors", "facade.state"),
    "facade.state": ("facade.state", "legacy_adapters.watchdog"),  # bounded waits, as on the legacy database
    "facade.smart": ("facade.smart", "facade.access.scopes", "facade.config", "facade.state", "facade.errors"),
    "facade.audit": (
        "facade.audit",
        "facade.access.grant",
        "facade.smart.events",
        "facade.search",
        "facade.errors",
        "facade.state",
        "facade.config",
        "legacy_adapters.protocol",
    ),
    "facade.core": (
        "facade.core",
        "facade.search",
        "facade.access",
        "facade.errors",
        "facade!",
        "legacy_adapters.protocol",
        "legacy_adapters.code_tables",
        "legacy_adapters.mapping.fhirdefs",  # FHIR R4's element table (_summary, _elements)
        "terminology",
    ),
    "facade.bulk": (
        "facade.bulk",
        "facade.core",
        "facade.access",
        "facade.search",
        "facade.errors",
        "facade.state",
        "facade.config",
        "legacy_adapters.protocol",
    ),
    "facade.sandbox": (
        "facade.sandbox",
        "facade.bulk",  # its export is the bulk engine's, shaped by the policy
        "facade.core",
        "facade.search",
        "facade.access",
        "facade.errors",
        "legacy_adapters.protocol",
        "legacy_adapters.mapping.fhirdefs",
        "legacy_adapters.mapping.yamlpos",
    ),
    "facade.operations": ("facade.operations",),
    "facade.config": (),
    "facade.errors": (),
    "facade.gunicorn": (
        "facade.config",
        "facade.errors",  # the OperationOutcome of what gunicorn refuses itself
        "facade.app",
        "facade.audit",
        "facade.operations",
        "legacy_adapters.engines",
        "legacy_adapters.sources",
    ),
    "facade.web": ("facade", "legacy_adapters.protocol"),
    "facade.app": ("facade", "legacy_adapters", "terminology"),
    "facade.cli": ("facade", "legacy_adapters", "terminology"),
}
WEB_FRAMEWORK = ("flask", "flask_smorest", "werkzeug", "authlib.integrations")
KNOWS_THE_WEB = ("facade.web", "facade.app")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The product module an imported name lives in (``facade.errors.NotFound`` → ``facade.errors``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(path: Path) -> set[str]:
    """Everything the module imports (product modules by their own name, others as written)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):  # imports only for type checkers are not dependencies at run time
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:  # "from package import module" imports the module, not the package's others
                full = f"{node.module}.{alias.name}"
                names.add(full if full in MODULES else node.module)
    return {(_owner(name) or name) for name in names}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    return max((key for key in ALLOWED if module == key or module.startswith(key + ".")), key=len)


def _allowed(target: str, allowed: tuple[str, ...]) -> bool:
    return any(target == rule[:-1] if rule.endswith("!") else target == rule or target.startswith(rule + ".") for rule in allowed)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_what_its_layer_may(module):
    allowed = ALLOWED[_layer(module)]
    crossing = sorted(t for t in GRAPH[module] if t in MODULES and t != module and not _allowed(t, allowed))
    assert crossing == [], f"{module} ({_layer(module)}) may import only {allowed}; it imports {crossing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_the_http_edge_knows_the_web_framework(module):
    if any(module == edge or module.startswith(edge + ".") for edge in KNOWS_THE_WEB):
        return
    uses = sorted(name for name in GRAPH[module] if any(name == f or name.startswith(f + ".") for f in WEB_FRAMEWORK))
    assert uses == [], f"{module} imports the web framework: {uses}"


def test_no_import_cycles():
    edges = {m: {t for t in names if t in MODULES and t != m} for m, names in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == [], f"import cycles: {cycles}"


def test_the_rules_cover_every_module():
    assert all(_layer(module) for module in MODULES)


def test_test_modules_take_fixtures_as_arguments_not_imports():
    """A test module importing ``conftest`` gets whichever conftest Python found first: shared
    constants and helpers live in tests/support."""
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "conftest":
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} imports conftest")
            if isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "conftest" for alias in node.names):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} imports conftest")
