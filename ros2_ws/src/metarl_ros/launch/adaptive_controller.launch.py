"""The adaptive controller on the robot: a lifecycle node, configured and activated at start."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    controller = LifecycleNode(
        package="metarl_ros",
        executable="adaptive_controller",
        name="adaptive_controller",
        namespace="",
        output="screen",
        parameters=[
            PathJoinSubstitution([FindPackageShare("metarl_ros"), "config", "adaptive_controller.yaml"]),
            {
                "bundle_path": LaunchConfiguration("bundle_path"),
                "expected_robot": LaunchConfiguration("expected_robot"),
                "command_topic": LaunchConfiguration("command_topic"),
                "trusted_public_key_path": LaunchConfiguration("trusted_public_key_path"),
                "cpu_wake_latency_us": ParameterValue(LaunchConfiguration("cpu_wake_latency_us"), value_type=int),
            },
        ],
    )
    configure = EmitEvent(
        event=ChangeState(
            lifecycle_node_matcher=matches_action(controller), transition_id=Transition.TRANSITION_CONFIGURE
        )
    )
    activate = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=controller,
            goal_state="inactive",
            entities=[
                EmitEvent(
                    event=ChangeState(
                        lifecycle_node_matcher=matches_action(controller), transition_id=Transition.TRANSITION_ACTIVATE
                    )
                )
            ],
        )
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("bundle_path", description="bundle directory written by `metarl export`"),
            DeclareLaunchArgument("expected_robot", default_value="panda"),
            DeclareLaunchArgument("command_topic", default_value="/effort_controller/commands"),
            DeclareLaunchArgument(
                "trusted_public_key_path",
                default_value="",
                description="Ed25519 public key: run only bundles it signed ('' = unsigned allowed)",
            ),
            DeclareLaunchArgument(
                "cpu_wake_latency_us",
                default_value="-1",
                description="while active, no CPU idle state slower to leave than this (µs; -1: the system's)",
            ),
            controller,
            activate,
            configure,
        ]
    )
