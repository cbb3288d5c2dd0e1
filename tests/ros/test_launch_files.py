"""Launch files checked without the `launch` packages (no wheels): they parse, start executables
that colcon installed where launch_ros looks (``lib/metarl_ros``), use YAML files installed to
``share/metarl_ros/config``, set only parameters the nodes declare, and type every numeric
argument (``payload_mass_kg:=4`` must reach the node as a float)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import rclpy
import yaml

from .ros_harness import private_domain_id

PACKAGE = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "metarl_ros"
LAUNCH_FILES = sorted((PACKAGE / "launch").glob("*.launch.py"))
CONSOLE_SCRIPTS = set(re.findall(r'"(\w+) = metarl_ros\.', (PACKAGE / "setup.py").read_text()))


def node_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("Node", "LifecycleNode")
    ]


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def declared_parameters(executable: str) -> set[str]:
    """Parameters a node declares, read from the node itself (meta_train from its source: it starts training).

    The node is built in a DDS domain of its own: a participant lingers in this process after
    ``rclpy.shutdown`` and would stand in the graph of later tests as a node that never answers.
    """
    if executable == "meta_train":
        source = (PACKAGE / "metarl_ros" / "meta_train.py").read_text()
        return set(re.findall(r'declare_parameter\("(\w+)"', source))
    from metarl_ros.adaptive_controller import AdaptiveControllerNode
    from metarl_ros.sim_bridge import SimBridgeNode

    node_type = {"adaptive_controller": AdaptiveControllerNode, "sim_bridge": SimBridgeNode}[executable]
    rclpy.init(domain_id=private_domain_id())
    try:
        node = node_type()
        names = set(node._parameters)
        node.destroy_node()
    finally:
        rclpy.shutdown()
    return names


def test_there_are_the_three_launch_files() -> None:
    assert {p.name for p in LAUNCH_FILES} == {
        "train_sim.launch.py",
        "adaptive_controller.launch.py",
        "sim_demo.launch.py",
    }


def launch_argument_defaults(tree: ast.AST) -> dict[str, str | None]:
    """``DeclareLaunchArgument(name, default_value=...)``: the default when it is a literal string."""
    defaults: dict[str, str | None] = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "DeclareLaunchArgument":
            default = keyword(call, "default_value")
            defaults[call.args[0].value] = default.value if isinstance(default, ast.Constant) else None
    return defaults


def is_number(text: str | None) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_numeric_launch_argument_is_typed(launch_file: Path) -> None:
    tree = ast.parse(launch_file.read_text(), filename=str(launch_file))
    numeric = {name for name, default in launch_argument_defaults(tree).items() if is_number(default)}
    for call in node_calls(tree):
        for item in keyword(call, "parameters").elts:
            if not isinstance(item, ast.Dict):
                continue
            for key, value in zip(item.keys, item.values, strict=True):
                called = getattr(getattr(value, "func", None), "id", "")
                if called == "ParameterValue":
                    assert keyword(value, "value_type") is not None, f"{key.value}: ParameterValue without value_type"
                elif called == "LaunchConfiguration":
                    argument = value.args[0].value
                    assert argument not in numeric, f"{launch_file.name}: {key.value} from numeric {argument} untyped"


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_consistent_with_the_package(launch_file: Path, colcon_install) -> None:
    tree = ast.parse(launch_file.read_text(), filename=str(launch_file))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    calls = node_calls(tree)
    assert calls, "launches no node"
    for call in calls:
        executable = keyword(call, "executable").value
        assert executable in CONSOLE_SCRIPTS, f"{executable} is not a console script of metarl_ros"
        # Installed by colcon where `ros2 run` and launch_ros look for a package's executables.
        installed = colcon_install.prefix("metarl_ros") / "lib" / "metarl_ros" / executable
        assert installed.is_file(), f"{executable} is not installed in lib/metarl_ros"
        declared = declared_parameters(executable)
        parameters = keyword(call, "parameters")
        for item in parameters.elts:
            if isinstance(item, ast.Dict):
                keys = {k.value for k in item.keys}
            else:  # PathJoinSubstitution([share, "config", "<file>.yaml"])
                yaml_name = item.args[0].elts[-1].value
                path = colcon_install.prefix("metarl_ros") / "share" / "metarl_ros" / "config" / yaml_name
                assert path.exists(), f"{launch_file.name} uses missing {path}"
                keys = set(next(iter(yaml.safe_load(path.read_text()).values()))["ros__parameters"])
            undeclared = keys - declared
            assert not undeclared, f"{launch_file.name} sets {sorted(undeclared)} that {executable} does not declare"
