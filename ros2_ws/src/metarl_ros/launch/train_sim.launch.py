"""Meta-train in simulation from a YAML config and write a bundle: ``meta_train`` with parameters."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
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
            DeclareLaunchArgument("config", default_value="configs/panda.yaml"),
            DeclareLaunchArgument("run_dir", default_value="runs/panda"),
            DeclareLaunchArgument("bundle_out", default_value="bundles/panda"),
            DeclareLaunchArgument("device", default_value="cpu", description="cpu or cuda"),
            trainer,
        ]
    )
