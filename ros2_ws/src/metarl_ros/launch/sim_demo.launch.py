"""sim_bridge (PyBullet Panda) and the adaptive controller: change the payload at run time with
``ros2 param set /sim_bridge payload_mass_kg 4.0`` and watch /diagnostics."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("metarl_ros")
    bridge = Node(
        package="metarl_ros",
        executable="sim_bridge",
        name="sim_bridge",
        output="screen",
        parameters=[
            PathJoinSubstitution([share, "config", "sim_bridge.yaml"]),
            # Typed: `payload_mass_kg:=4` is 4.0, not an integer the float parameter refuses.
            {"payload_mass_kg": ParameterValue(LaunchConfiguration("payload_mass_kg"), value_type=float)},
        ],
    )
    controller = LifecycleNode(
        package="metarl_ros",
        executable="adaptive_controller",
        name="adaptive_controller",
        namespace="",
        output="screen",
        parameters=[
            PathJoinSubstitution([share, "config", "adaptive_controller.yaml"]),
            {"bundle_path": LaunchConfiguration("bundle_path")},
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
            DeclareLaunchArgument("payload_mass_kg", default_value="0.0", description="payload in the hand (kg)"),
            bridge,
            controller,
            activate,
            configure,
        ]
    )
