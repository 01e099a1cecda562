"""The architecture's rules, checked: no import cycle inside odepipe/, one plugin host per
process, bundles that import only odepipe's public API, and runs that import only what they use."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "odepipe"
BUNDLES = ROOT / "plugins"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, package: str) -> Set[str]:
    """Modules of odepipe that ``path`` imports (at any depth: lazy imports count too)."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    is_package = path.name == "__init__.py"
    found: Set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(package))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(package):
                continue
            if target == package:  # `from odepipe import x`: the public API, whatever x is
                found.add(target)
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
    return {m for m in found if m != name}


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (imports for annotations only,
    which never run and so cannot make a cycle)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def _exists(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _graph() -> Dict[str, Set[str]]:
    return {_module_name(p): _imports(p, "odepipe") for p in CORE.rglob("*.py")}


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as a path, or [] (a module importing its own package's __init__ for a
    public name is part of Python's import order, not a cycle, so package inits are skipped)."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt == "odepipe" or nxt not in graph or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_core_has_no_import_cycle():
    assert _cycle(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"odepipe.a": {"odepipe.b"}, "odepipe.b": {"odepipe.a"}}) == [
        "odepipe.a", "odepipe.b", "odepipe.a"]


def test_the_library_never_imports_the_cli():
    importers = [m for m, deps in _graph().items() if "odepipe.cli" in deps and m != "odepipe.__main__"]
    assert importers == []


def test_bundles_import_only_the_public_api():
    private = {}
    for path in BUNDLES.rglob("*.py"):
        used = {m for m in _imports(path, "odepipe") if not m.startswith("odepipe_plugins")}
        bad = sorted(m for m in used if m not in ("odepipe", "odepipe.testing"))
        if bad:
            private[str(path.relative_to(ROOT))] = bad
    assert private == {}


def _run_python(code: str) -> List[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_one_plugin_host_per_process_and_one_command_hook_call_per_plugin(tmp_path):
    code = """
import json, pluggy, sys
calls = []
real = pluggy.PluginManager.subset_hook_caller
def counting(self, name, remove_plugins):
    caller = real(self, name, remove_plugins)
    if name != "odepipe_register_commands":
        return caller
    def call(**kw):
        calls.append(sorted(n for n, p in self.list_name_plugin() if p not in remove_plugins))
        return caller(**kw)
    return call
pluggy.PluginManager.subset_hook_caller = counting
from odepipe import host
made = []
init = host.PluginHost.__init__
def counted_init(self, *a, **k):
    made.append(1)
    init(self, *a, **k)
host.PluginHost.__init__ = counted_init
from odepipe.cli import main
try:
    main(["ls"])
except SystemExit:
    pass
print(json.dumps({"hosts": len(made), "calls": calls}))
"""
    result = json.loads(_run_python(code)[-1])
    assert result["hosts"] == 1
    callers = [c[0] for c in result["calls"]]
    assert len(callers) == len(set(callers)) and "odepipe_plugins.text" in callers


def test_a_spiral_run_imports_no_text_csv_or_tokenizer_module(tmp_path):
    code = f"""
import sys
from odepipe.cli import main
try:
    main(["run", "spiral", "train.steps=2", "data.n_spirals=16", "data.n_test=8",
          "train.batch_size=8", "train.plot=false", "-q", "--out", {str(tmp_path / 'run')!r}])
except SystemExit as exc:
    assert not exc.code, exc.code
print(" ".join(sorted(m for m in sys.modules if m.startswith(("odepipe", "sentencepiece", "datasets")))))
"""
    loaded = set(_run_python(code)[-1].split())
    assert "odepipe_plugins.series.spiral" in loaded  # the check sees what a run imports
    unwanted = {m for m in loaded if m.startswith(("odepipe_plugins.text.", "sentencepiece",
                                                   "datasets", "odepipe_plugins.depth.resnet",
                                                   "odepipe_plugins.irregular."))
                and m != "odepipe_plugins.text.commands"}
    unwanted |= loaded & {"odepipe_plugins.series.csv_source", "odepipe_plugins.series.series_io"}
    assert unwanted == set()
