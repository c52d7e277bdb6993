"""The dependency rules of DESIGN.md and the README's architecture section, checked on the import
graph of the source files (every import statement, lazy ones inside functions included)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("progan", "stylegan_lite", "data_prep", "app")
FORBIDDEN = {
    "progan": {"stylegan_lite", "app", "data_prep", "families"},
    "stylegan_lite": {"app", "data_prep", "families"},
    "data_prep": {"progan", "stylegan_lite", "app", "families"},
}
# Inside progan: which module-name prefixes each part may not import.
MODEL_FILES = ("progan.config", "progan.layers", "progan.conditioning", "progan.networks", "progan.losses",
               "progan.images", "progan.minibatch_discrimination", "progan.spectral_norm")
INNER_RULES = {
    **{name: ("progan.training", "progan.metrics") for name in MODEL_FILES},
    "progan.hub": ("progan.training", "progan.metrics", "progan.networks", "progan.layers", "progan.losses"),
    "progan.metrics": ("progan.training",),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Absolute names of everything ``path`` imports; ``from X import y`` counts as X.y when that is a module."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules}
    return found


def test_packages_only_import_downwards():
    checked = 0
    modules = _modules()
    for package, forbidden in FORBIDDEN.items():
        for path in (ROOT / package).rglob("*.py"):
            bad = {name.split(".")[0] for name in _imports(path, modules)} & forbidden
            assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
            checked += 1
    assert checked >= 8  # the rule was checked against real files


@pytest.mark.parametrize("part", sorted(INNER_RULES))
def test_progan_parts_respect_their_layer(part):
    """Model files import neither training nor metrics; hub needs only the config; metrics never trains."""
    modules = _modules()
    owned = [n for n in modules if n == part or n.startswith(part + ".")]
    assert owned, f"no module {part}: update INNER_RULES with the layout"
    for name in owned:
        for imported in _imports(modules[name], modules):
            for banned in INNER_RULES[part]:
                assert not (imported == banned or imported.startswith(banned + ".")), \
                    f"{name} imports {imported} ({part} may not import {banned})"


def test_progan_is_grouped_into_subpackages():
    """The tree shows the architecture: the machinery lives in subpackages, not beside the model."""
    top = {p.stem for p in (ROOT / "progan").glob("*.py")} - {"__init__"}
    assert top == {name.split(".")[1] for name in MODEL_FILES}, f"unexpected files at progan/: {sorted(top)}"
    for sub in ("training", "metrics", "hub"):
        assert (ROOT / "progan" / sub / "__init__.py").is_file()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of module names, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles_inside_a_package(package):
    modules = _modules()
    # A package's own __init__ is left out: importing a submodule always runs it, which is not a cycle.
    inside = {n: p for n, p in modules.items() if n.startswith(package + ".")}
    graph = {n: {m for m in _imports(p, modules) if m in inside} for n, p in inside.items()}
    assert sum(map(len, graph.values())) > 0  # the graph was built from real imports
    assert _cycle(graph) is None, f"import cycle in {package}: {' -> '.join(_cycle(graph))}"


def test_no_pickle_loading_anywhere():
    for path in ROOT.rglob("*.py"):
        if ".git" in path.parts or "tests" in path.parts:
            continue
        text = path.read_text()
        assert "pickle.load" not in text, path
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"
