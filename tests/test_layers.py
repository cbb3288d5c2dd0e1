"""The floor plan, checked on the source: a violation fails here, not on a robot.

Top-level packages sit on floors (``FLOORS``, lowest first) and import only from lower floors:
the world (``sim``), the robot's torch-free runtime, the learners, the exporters that trace
them, the ROS 2 experiment sessions, the benchmarks, and the ``metarl`` command on top. The ROS
package stands beside them and reaches learning only through ``metarl_runtime``. No two
packages and no two modules import each other, directly or around a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from tests.metarl_runtime.test_robot_install import distribution_packages

ROOT = Path(__file__).resolve().parents[1]
FLOORS = distribution_packages()
"""``setup.py``'s packages, lowest floor first; docs/architecture.md draws them."""
ROS_PACKAGE_DIR = ROOT / "ros2_ws" / "src" / "metarl_ros"
ROS_MODULES = ("rclpy", "metarl_ros", "sensor_msgs", "std_msgs", "geometry_msgs", "nav_msgs", "launch", "launch_ros")
TRAINING_ONLY = ("torch", "gymnasium", "pybullet", "pybullet_data", "onnx", "onnxscript", "matplotlib", "tqdm")
"""What the robot install (numpy + onnxruntime + pyyaml + cryptography) does not have."""


def imported_modules(path: Path) -> set[str]:
    """Top-level and nested absolute imports of one file, as dotted module names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def sources() -> dict[str, Path]:
    """Every module of the floors and of the ROS package, by dotted name."""
    modules: dict[str, Path] = {}
    for base, tops in ((ROOT, FLOORS), (ROS_PACKAGE_DIR, ("metarl_ros",))):
        for top in tops:
            for path in sorted((base / top).rglob("*.py")):
                parts = path.relative_to(base).with_suffix("").parts
                modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name refers to (``from a.b import c`` may name a function)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (itself and its own package excluded)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name, modules) for name in imported_modules(path)}
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        graph[module] = {t for t in targets if t and t != module and t != package}
    return graph


def package_of(module: str, modules: dict[str, Path]) -> str:
    return module if modules[module].name == "__init__.py" else module.rpartition(".")[0] or module


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a path that returns to its start, or [] when it has none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def offending(modules: dict[str, Path], prefixes: Iterable[str], forbidden: tuple[str, ...]) -> list[str]:
    """``module imports name`` for every import of ``forbidden`` roots by modules under ``prefixes``."""
    chosen = [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]
    return [
        f"{module} imports {name}"
        for module in chosen
        for name in sorted(imported_modules(modules[module]))
        if name.split(".")[0] in forbidden
    ]


def test_each_floor_imports_only_the_floors_below_it() -> None:
    modules = sources()
    bad = []
    for module, targets in import_graph(modules).items():
        top = module.split(".")[0]
        if top not in FLOORS:
            continue
        for target in targets:
            other = target.split(".")[0]
            if other in FLOORS and FLOORS.index(other) > FLOORS.index(top):
                bad.append(f"{module} imports {target} ({other} is above {top})")
    assert bad == []


def test_no_two_packages_import_each_other_even_around_a_loop() -> None:
    modules = sources()
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph(modules).items():
        source = package_of(module, modules)
        packages.setdefault(source, set()).update(
            package_of(t, modules) for t in targets if package_of(t, modules) != source
        )
    assert find_cycle(packages) == []


def test_no_two_modules_import_each_other_even_around_a_loop() -> None:
    assert find_cycle(import_graph(sources())) == []


def test_the_robot_runtime_needs_numpy_and_onnxruntime_only() -> None:
    """What the robot installs: no training library, no simulator, nothing above its floor."""
    assert offending(sources(), ["metarl_runtime"], (*TRAINING_ONLY, "sim", *ROS_MODULES)) == []


def test_sim_never_imports_torch_or_ros() -> None:
    assert offending(sources(), ["sim"], ("torch", *ROS_MODULES)) == []


def test_only_the_experiment_sessions_and_the_ros_package_import_ros() -> None:
    """The library, exporters, benchmarks and CLI run ROS-side work in subprocesses, never by import."""
    floors = [f for f in FLOORS if f != "experiments"]
    assert offending(sources(), floors, ROS_MODULES) == []


def test_ros_package_reaches_learning_only_through_the_runtime() -> None:
    modules = sources()
    bad = offending(modules, ["metarl_ros"], ("torch", "metarl_core", "export", "benchmarks", "metarl", "experiments"))
    sim_users = offending(modules, ["metarl_ros"], ("sim",))
    bad += [line for line in sim_users if not line.startswith("metarl_ros.sim_bridge ")]
    assert bad == []


def test_checker_sees_a_nested_forbidden_import(tmp_path: Path) -> None:
    """Guards the guard: an import hidden inside a function is still reported."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    import torch.nn\n", encoding="utf-8")
    assert offending({"bad": source}, ["bad"], ("torch",)) == ["bad imports torch.nn"]


def test_cycle_finder_reports_a_loop_of_three() -> None:
    """Guards the guard: a loop through three nodes is found and shown closed."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
