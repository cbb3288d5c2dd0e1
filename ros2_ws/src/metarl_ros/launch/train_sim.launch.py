"""Meta-train in simulation from a YAML config and write a bundle: ``meta_train`` with parameters.

Defaults work from any directory: the config is the one the ``metarl`` package installs
(``share/metarl/configs``), runs and bundles go under ``~/metarl``.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import EnvironmentVariable, LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    home = EnvironmentVariable("HOME")
    trainer = Node(
        package="metarl_ros",
        executable="meta_train",
        name="meta_train",
        output="screen",
        parameters=[
            PathJoinSubstitution([FindPackageShare("metarl_ros"), "config", "meta_train.yaml"]),
            {
                "config": LaunchConfiguration("config"),
                "run_dir": LaunchConfiguration("run_dir"),
                "bundle_out": LaunchConfiguration("bundle_out"),
                "device": LaunchConfiguration("device"),
            },
        ],
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "config",
                default_value=PathJoinSubstitution([FindPackageShare("metarl"), "configs", "panda.yaml"]),
                description="training YAML (default: the installed configs/panda.yaml)",
            ),
            DeclareLaunchArgument(
                "run_dir",
                default_value=PathJoinSubstitution([home, "metarl", "runs", "panda"]),
                description="checkpoints",
            ),
            DeclareLaunchArgument(
                "bundle_out",
                default_value=PathJoinSubstitution([home, "metarl", "bundles", "panda"]),
                description="where the exported bundle goes",
            ),
            DeclareLaunchArgument("device", default_value="cpu", description="cpu or cuda"),
            trainer,
        ]
    )
