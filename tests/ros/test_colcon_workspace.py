"""``colcon build`` at the repository root builds ``metarl`` and ``metarl_ros`` into the layout
``ros2 launch`` and ``ros2 run`` look in, without colcon-ros warnings, and an installed node starts
from that install and loads a bundle."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from lifecycle_msgs.msg import Transition

from sim.panda_payload import PANDA

from .colcon_workspace import ROOT, ColconInstall
from .ros_harness import change_state, stop
from .untrained_bundles import untrained_bundle

SOURCE = ROOT / "ros2_ws" / "src" / "metarl_ros"
CONSOLE_SCRIPTS = sorted(set(re.findall(r'"(\w+) = metarl_ros\.', (SOURCE / "setup.py").read_text())))


def test_both_packages_are_built_without_colcon_warnings(colcon_install: ColconInstall) -> None:
    assert "Summary: 2 packages finished" in colcon_install.output, colcon_install.output[-2000:]
    assert re.findall(r"WARNING:colcon.*", colcon_install.output) == []


def test_metarl_ros_is_installed_where_ros2_launch_looks(colcon_install: ColconInstall) -> None:
    prefix = colcon_install.prefix("metarl_ros")
    share = prefix / "share" / "metarl_ros"
    assert (share / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "metarl_ros").is_file()
    assert {p.name for p in (share / "launch").glob("*.launch.py")} == {
        p.name for p in (SOURCE / "launch").glob("*.launch.py")
    }
    assert {p.name for p in (share / "config").glob("*.yaml")} == {p.name for p in (SOURCE / "config").glob("*.yaml")}
    for executable in CONSOLE_SCRIPTS:
        assert (prefix / "lib" / "metarl_ros" / executable).is_file(), f"lib/metarl_ros/{executable} missing"


def test_metarl_is_installed_with_its_marker_package_xml_and_configs(colcon_install: ColconInstall) -> None:
    prefix = colcon_install.prefix("metarl")
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "metarl").is_file()
    assert (prefix / "share" / "metarl" / "package.xml").is_file()
    assert (prefix / "share" / "metarl" / "configs" / "panda.yaml").is_file()  # train_sim.launch.py's default


def test_the_sourced_install_imports_the_runtime_and_the_nodes_from_the_install(
    colcon_install: ColconInstall, tmp_path: Path
) -> None:
    environment = colcon_install.environment()
    shebang = (colcon_install.prefix("metarl_ros") / "lib" / "metarl_ros" / "adaptive_controller").read_text()
    interpreter = shebang.splitlines()[0].removeprefix("#!")
    done = subprocess.run(
        [
            interpreter,
            "-c",
            "import metarl_runtime.model_runtime as r, metarl_ros.adaptive_controller as n; "
            "print(r.__file__, n.__file__)",
        ],
        env=environment,
        cwd=tmp_path,  # not the checkout, whose packages would shadow the install
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    runtime_file, node_file = done.stdout.split()
    assert Path(runtime_file).is_relative_to(colcon_install.prefix("metarl")), runtime_file
    assert Path(node_file).is_relative_to(colcon_install.prefix("metarl_ros")), node_file


@pytest.mark.integration
def test_an_installed_adaptive_controller_configures_with_a_bundle(
    ros_node, colcon_install: ColconInstall, tmp_path: Path
) -> None:
    bundle = untrained_bundle(PANDA, tmp_path / "bundle")
    executable = colcon_install.prefix("metarl_ros") / "lib" / "metarl_ros" / "adaptive_controller"
    log_path = tmp_path / "controller.log"
    with open(log_path, "w") as log:
        controller = subprocess.Popen(
            [str(executable), "--ros-args", "-p", f"bundle_path:={bundle}", "-p", "expected_robot:=panda"],
            env=colcon_install.environment(),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE), log_path.read_text()
    finally:
        stop(controller)
    assert "configured: bundle for 'panda'" in log_path.read_text()
