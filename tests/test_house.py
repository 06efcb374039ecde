"""The house rules that keep the code base in shape: an installed wheel works on its own, the core runs
without torch, the layers point one way with no import cycles, and the code cites only documents the
repo has."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"shop_env": 0, "agents": 1, "training": 2, "shop_r1": 3}
"""Each package may import only packages of its own layer or below: shop_env <- agents <- training <- CLI."""

BLOCK_HEAVY = textwrap.dedent(
    """
    import sys

    class Missing:
        '''Make the model and training stack look uninstalled, as after `pip install shop-r1` (the core).'''

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "transformers", "trl", "peft", "accelerate", "gguf", "tensorboard"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Missing())
    """
)


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _annotation_only(tree: ast.Module) -> set[ast.AST]:
    """Import statements under `if TYPE_CHECKING:`: they never run, so they make no cycle."""
    return {
        statement for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for statement in ast.walk(node) if isinstance(statement, ast.Import | ast.ImportFrom)
    }


def _imports(name: str, path: Path, modules: dict[str, Path], *, runtime_only: bool = False) -> list[tuple[str, int]]:
    """Every module this one imports, at any depth of the file (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _annotation_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.append((module, node.lineno))
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names if f"{module}.{alias.name}" in modules]
    return found


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    modules = _modules()
    edges: dict[str, set[str]] = {name: set() for name in modules}
    upward = []
    for name, path in modules.items():
        for imported, line in _imports(name, path, modules):
            top = imported.split(".")[0]
            if top in LAYERS and LAYERS[top] > LAYERS[name.split(".")[0]]:
                upward.append(f"{path.relative_to(ROOT)}:{line}: {name} imports {imported}, a layer above it")
        for imported, _ in _imports(name, path, modules, runtime_only=True):
            if imported.split(".")[0] not in LAYERS:
                continue
            target = imported
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name and not name.startswith(target + "."):  # a package's own __init__
                edges[name].add(target)
    return edges, upward


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


def test_layers_point_one_way_and_nothing_imports_in_a_cycle():
    edges, upward = _graph()
    assert not upward, "\n".join(upward)
    assert not _cycles(edges), f"import cycles: {_cycles(edges)}"


def test_the_graph_check_would_catch_an_upward_import_and_a_cycle():
    edges = {"shop_env.a": {"shop_env.b"}, "shop_env.b": {"shop_env.a"}, "agents.c": set()}
    assert _cycles(edges) == [["shop_env.a", "shop_env.b"]]
    modules = {"shop_env.x": ROOT / "shop_env" / "x.py"}
    fake = ROOT / "tests" / "fixtures" / "_upward.py"
    fake.write_text("def f():\n    from training import grpo\n", encoding="utf-8")
    try:
        assert ("training", 2) in _imports("shop_env.x", fake, modules)
    finally:
        fake.unlink()


def test_code_cites_only_documents_the_repo_has():
    offenders = []
    code_dirs = [*LAYERS, "benchmarks", "experiments", "tests", "assets"]
    paths = [path for directory in code_dirs for path in (ROOT / directory).rglob("*") if path.suffix in {".py", ".md", ".yaml", ".sh"}]
    for path in [*paths, *ROOT.glob("docs/*.md"), ROOT / "README.md"]:
        if path.name == "test_house.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "SPEC" in line or "../shared" in line or "shared/paper" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "cite docs/contract.md instead:\n" + "\n".join(offenders)


def test_the_core_runs_without_torch_or_a_trainer(tmp_path):
    """The env, rewards, loaders, metrics and a baseline replay, with the model stack made unimportable;
    and a command that needs it names the extra to install instead of a traceback."""
    script = BLOCK_HEAVY + textwrap.dedent(
        """
        import gymnasium as gym
        import shop_env
        from shop_env.metrics import evaluate
        from shop_env.rewards import RewardConfig, score_response

        env = gym.make("ShopR1/SessionReplay-v0", sessions="bundled:test")
        observation, _ = env.reset(seed=0)
        _, reward, *_ = env.step('{"rationale": "done", "action": {"type": "terminate"}}')
        assert isinstance(reward, float)
        assert evaluate([None], [{"type": "terminate"}])["exact_acc"] == 0.0
        assert "torch" not in sys.modules and "trl" not in sys.modules
        import runpy
        sys.argv = ["shop-r1", *ARGS]
        runpy.run_module("shop_r1", run_name="__main__")
        """
    )
    def run(*args: str) -> subprocess.CompletedProcess:
        code = script.replace("*ARGS", ", ".join(repr(arg) for arg in args))
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    replay = run("replay", "--policy", "heuristic", "--sessions", "bundled:test")
    assert replay.returncode == 0, replay.stderr
    needs_models = run("eval", "--policy", "smollm2", "--limit", "1", "--out", str(tmp_path / "eval"))
    assert needs_models.returncode == 1 and "[models] extra" in needs_models.stderr, needs_models.stderr


@pytest.mark.slow
def test_a_built_wheel_replays_the_bundled_sessions_from_anywhere(tmp_path):
    """`pip install` of the wheel (not editable), then gym.make from another directory: the bundled
    sessions come from inside the installed package (importlib.resources), not from this checkout."""
    source = tmp_path / "source"  # the tracked files only: the build writes build/ and egg-info beside them
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True, text=True).stdout
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("shop_r1-*.whl"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = BLOCK_HEAVY + textwrap.dedent(
        f"""
        import gymnasium as gym
        import shop_env
        from shop_env.loaders import bundled_sessions

        import shop_env.assets

        for module in (shop_env, shop_env.assets):
            assert module.__file__.startswith({str(site)!r}), module.__file__
        assert len(bundled_sessions("train")) == 1000 and len(bundled_sessions("test")) == 200
        env = gym.make("ShopR1/SessionReplay-v0")
        observation, info = env.reset(seed=0)
        _, reward, *_ = env.step("not json")
        assert reward == 0.0 and observation["page"]
        print("ok", info["session_id"])
        """
    )
    # The wheel's directory first on the path; the checkout is nowhere on it (cwd is elsewhere).
    result = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr
