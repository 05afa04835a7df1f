"""The layout the development page (docs/development.md) describes: one module per stage, a leaf stage API, no cycles.

import-linter (scripts/lint.sh) checks the layer contracts; these tests check what it does not: that no
module of any curate package imports itself back through others (function-level imports included),
and that every built-in stage lives in a `stages/` module of its own.
"""

from __future__ import annotations

import inspect
import sys

import grimp

from curate.core import stage_api
from curate.pipeline.plan import PlanContext

PACKAGES = ("curate.core", "curate.pipeline", "curate.dedup", "curate.filters", "curate.refiners")


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycle_anywhere_in_the_packages() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert len(graph.modules) > 60  # the graph really holds the packages
    assert _cycles(graph) == []


def test_the_stage_api_imports_nothing_of_the_engine_or_the_stage_packages() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    reach = graph.find_downstream_modules("curate.core.stage_api", as_package=False)
    upstream = graph.find_upstream_modules("curate.core.stage_api")
    assert reach  # the built-in stages import it
    assert not [m for m in upstream if not m.startswith("curate.core")], upstream


def test_every_builtin_stage_is_registered_from_a_stages_module_of_its_own_package() -> None:
    modules = stage_api.builtin_stage_modules()
    assert {m.rsplit(".", 2)[0] for m in modules if m.count(".") >= 3} == set(PACKAGES[1:])
    stage_api.load_builtin_stages()
    for spec in stage_api.all_stages():
        target = getattr(spec.build, "__wrapped_stage__", spec.build)
        module = target.__module__
        if not module.startswith("curate."):
            continue  # the example plugin and user plugins
        assert ".stages." in module, f"stage {spec.name!r} is registered in {module}, not in a stages/ module"


def test_plan_context_provides_every_member_of_the_build_context_protocol() -> None:
    members = [n for n, _ in inspect.getmembers(stage_api.BuildContext) if not n.startswith("_")]
    members += list(stage_api.BuildContext.__annotations__)
    assert {"add", "barrier", "add_job", "work_path", "handoff_reader", "tasks", "stage_label"} <= set(members)
    ctx = PlanContext(tasks=2, workers=1, on_error="skip", intermediate_dir="/tmp/w", output_dir="/tmp/o")
    missing = [n for n in members if not hasattr(ctx, n)]
    assert missing == []


def test_the_development_page_layout_tree_names_every_module() -> None:
    """docs/development.md's tree (one line per module) stays current: each module of each package is named
    in its package's part of the tree (inspect/ and commands/ are summed up on one line with their names)."""
    from curate_testing import REPO

    text = (REPO / "docs" / "development.md").read_text()
    start = text.index("```text")
    tree = text[start : text.index("```", start + 7)]
    parts: dict[str, str] = {}
    current = None
    for line in tree.splitlines()[1:]:
        if line and not line.startswith(" "):
            current = line.split()[0].rstrip("/")
        if current:
            parts[current] = parts.get(current, "") + line + "\n"
    missing = []
    for pkg in ("core", "pipeline", "dedup", "filters", "refiners"):
        for f in sorted((REPO / pkg).rglob("*.py")):
            if f.name == "__init__.py" or "assets" in f.parts:
                continue
            if f.stem not in parts.get(pkg, ""):
                missing.append(str(f.relative_to(REPO)))
    assert missing == [], "add these modules to the layout tree in docs/development.md"


def test_every_package_folder_is_installed():
    """pyproject lists packages by hand (folders map to curate.*): a new sub-package missing there is missing
    from the wheel (the wheel test would only say that the import failed)."""
    import tomllib
    from curate_testing import REPO

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    for pkg in ("core", "pipeline", "dedup", "filters", "refiners"):
        for init in (REPO / pkg).rglob("__init__.py"):
            name = ".".join(["curate", *init.parent.relative_to(REPO).parts])
            assert name in listed, f"add {name!r} to [tool.setuptools] packages in pyproject.toml"
