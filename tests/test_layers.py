"""The house layering rules, checked on the source: a violation fails here, not on a robot.

sim never imports metarl_core, export or ROS; metarl_core never imports ROS; export.runtime
(and everything it imports from export/) never imports torch; the ROS package reaches learning
only through export.runtime.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROS_MODULES = ("rclpy", "metarl_ros", "sensor_msgs", "std_msgs", "geometry_msgs", "nav_msgs", "launch")


def imported_modules(path: Path) -> set[str]:
    """Top-level and nested imports of one file, as dotted module names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.name} imports {name}"
        for path in paths
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in forbidden
    ]


def test_sim_imports_neither_learning_nor_ros() -> None:
    assert offending(python_files("sim"), ("metarl_core", "export", "torch", *ROS_MODULES)) == []


def test_metarl_core_never_imports_ros() -> None:
    assert offending(python_files("metarl_core"), ROS_MODULES) == []


def runtime_closure() -> list[Path]:
    """export/runtime*.py (what the robot runs) and every export/ module they reach through imports."""
    seen: set[Path] = set()
    todo = sorted((ROOT / "export").glob("runtime*.py"))
    while todo:
        path = todo.pop()
        if path in seen or not path.exists():
            continue
        seen.add(path)
        for name in imported_modules(path):
            if name.split(".")[0] == "export":
                todo.append(ROOT / (name.replace(".", "/") + ".py"))
    return sorted(seen)


def test_export_runtime_is_torch_free() -> None:
    closure = runtime_closure()
    if not closure:
        pytest.skip("export/runtime.py does not exist yet")
    assert offending(closure, ("torch", "metarl_core")) == []


def test_ros_package_reaches_learning_only_through_export_runtime() -> None:
    ros_sources = python_files("ros2_ws/src/metarl_ros/metarl_ros")
    bad = [
        f"{path.name} imports {name}"
        for path in ros_sources
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in ("torch", "metarl_core")
        or (name.split(".")[0] == "export" and not name.startswith("export.runtime"))
    ]
    assert bad == []


def test_checker_sees_a_nested_forbidden_import(tmp_path: Path) -> None:
    """Guards the guard: an import hidden inside a function is still reported."""
    source = tmp_path / "bad.py"
    source.write_text("def f():\n    import torch.nn\n", encoding="utf-8")
    assert offending([source], ("torch",)) == ["bad.py imports torch.nn"]
