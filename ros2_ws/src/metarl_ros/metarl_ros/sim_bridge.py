"""``sim_bridge``: a task-suite PyBullet robot behind the topics a ros2_control robot has.

Publishes ``/joint_states`` (and ``/imu``, ``/odom`` for bases), the environment's reference on
``/reference`` and ``/clock``; takes commands on the command topic. Task parameters are ROS
parameters that can change at run time (``ros2 param set /sim_bridge payload_mass_kg 4.0``).

``scenario: terrain_change`` (Husky) wraps the environment in ``sim.scenarios.terrain_change.TerrainChange``:
the steady arc as reference and a high-grip patch ``terrain_patch_start_m`` ahead, applied the tick the
chassis reaches it. The bridge only wires it: the patch logic is the simulator's. The crossing is
announced on ``/sim_bridge/scenario_events`` (JSON, transient local) for the experiment harness;
the controller hears only the sensors, as on a robot that does not know where the patch is.

Free-running mode steps the simulation on a timer at the control rate, holding the last command.
Lock-step mode advances exactly one control period per received command, which makes closed-loop
tests deterministic whatever the machine's load.
"""

from __future__ import annotations

import dataclasses
import json
import math

import gymnasium
import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray, String

import sim  # noqa: F401  (registers the environment ids)
from metarl_ros.node_lifetime import spin_until_shutdown
from metarl_runtime.sensor_mapping import twist_to_wheel_speeds
from sim.scenarios.terrain_change import DEFAULT_PATCH, TerrainChange, TerrainPatch

TASK_PARAMETERS = {
    "metarl/PandaPayload-v0": ("payload_mass_kg", "joint_damping_scale", "joint_friction_scale"),
    "metarl/HuskyTerrain-v0": ("payload_mass_kg", "ground_friction", "slope_rad", "motor_strength_scale"),
}
SCENARIOS = {"terrain_change": "metarl/HuskyTerrain-v0"}
"""``scenario`` values and the one environment each runs on ('' = none: the env's own reference)."""
GIF_EVERY_N_STEPS = 4
"""With ``record_gif_path`` set, one frame every this many control steps (25 fps at 100 Hz)."""
NUMERIC_TYPES = (Parameter.Type.INTEGER, Parameter.Type.DOUBLE)


def number_descriptor(description: str) -> ParameterDescriptor:
    """A float parameter that also takes an integer (``payload_mass_kg:=4``): ROS types a
    parameter by its default, and would otherwise refuse ``4`` for a ``0.0`` default."""
    return ParameterDescriptor(description=description, dynamic_typing=True)


def as_float(parameter: Parameter) -> float:
    """The numeric value of ``parameter`` as a float; ``ValueError`` naming it for anything else."""
    if parameter.type_ not in NUMERIC_TYPES:
        raise ValueError(f"parameter {parameter.name}={parameter.value!r}: expected a number")
    return float(parameter.value)


class SimBridgeNode(Node):
    """One simulated robot, its sensors out and its commands in."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_bridge", **kwargs)
        self.declare_parameter("env_id", "metarl/PandaPayload-v0", ParameterDescriptor(description="task-suite env id"))
        self.declare_parameter("lock_step", False, ParameterDescriptor(description="one control period per command"))
        self.declare_parameter("seed", 0, ParameterDescriptor(description="reset seed (reference trajectory)"))
        self.declare_parameter("episode_duration_s", 3600.0, number_descriptor("simulated time limit (s)"))
        self.declare_parameter("command_topic", "/effort_controller/commands", ParameterDescriptor(description="input"))
        self.declare_parameter(
            "record_gif_path",
            "",
            ParameterDescriptor(description="write a GIF of the run here at shutdown (empty: no rendering)"),
        )
        self.declare_parameter(
            "scenario", "", ParameterDescriptor(description=f"'' or one of {sorted(SCENARIOS)} (read at start)")
        )
        patch = DEFAULT_PATCH
        self.declare_parameter(
            "terrain_patch_start_m", patch.start_m, number_descriptor("terrain_change: patch distance (m)")
        )
        self.declare_parameter(
            "terrain_patch_ground_friction", patch.ground_friction, number_descriptor("terrain_change: patch friction")
        )
        self.env_id = env_id = self.get_parameter("env_id").value
        if env_id not in TASK_PARAMETERS:
            raise ValueError(f"env_id={env_id!r}: sim_bridge knows {sorted(TASK_PARAMETERS)}")
        scenario = self.get_parameter("scenario").value
        if scenario and SCENARIOS.get(scenario) != env_id:
            known = ", ".join(f"{name!r} (on {env})" for name, env in SCENARIOS.items())
            raise ValueError(f"scenario={scenario!r} on env_id={env_id!r}: sim_bridge knows {known}")
        self.gif_path = self.get_parameter("record_gif_path").value
        self.frames: list[np.ndarray] = []
        self.env = gymnasium.make(
            env_id,
            episode_duration_s=as_float(self.get_parameter("episode_duration_s")),
            render_mode="rgb_array" if self.gif_path else None,
        )
        if scenario == "terrain_change":
            self.env = TerrainChange(
                self.env,
                TerrainPatch(
                    as_float(self.get_parameter("terrain_patch_start_m")),
                    as_float(self.get_parameter("terrain_patch_ground_friction")),
                ),
            )
        # Latched: a harness that subscribes late still hears the crossing.
        self.scenario_events = self.create_publisher(
            String, "~/scenario_events", QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        )
        self.robot = self.env.unwrapped.robot
        task = self.env.unwrapped.get_task()
        for name in TASK_PARAMETERS[env_id]:
            self.declare_parameter(name, float(getattr(task, name)), number_descriptor(f"task {name}"))
        # Values given at start (`-p`, launch, YAML) are the task from the first step on.
        given = {name: as_float(self.get_parameter(name)) for name in TASK_PARAMETERS[env_id]}
        self.env.unwrapped.set_task(dataclasses.replace(task, **given))
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self.obs, _ = self.env.reset(seed=self.get_parameter("seed").value)
        # The clock starts one control period in: a stamp of exactly 0 means "never set" to the
        # controller's stamp policy (replaced by the receipt time), which a simulator's first
        # state must not be mistaken for.
        self.sim_time_s = 1.0 / self.robot.control_rate_hz
        self.command = np.zeros(self.robot.action_dim)
        self.lock_step = self.get_parameter("lock_step").value
        self.joint_states = self.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.reference = self.create_publisher(
            JointState if self.robot.command_interface != "twist" else Twist, "/reference", 10
        )
        self.clock = self.create_publisher(Clock, "/clock", 10)
        # A base (twist command) reports odometry and an IMU; an arm its joints only.
        is_base = self.robot.command_interface == "twist"
        self.imu = self.create_publisher(Imu, "/imu", qos_profile_sensor_data) if is_base else None
        self.odom = self.create_publisher(Odometry, "/odom", qos_profile_sensor_data) if is_base else None
        self.layout = {
            name: self.robot.state_slice(name)
            for name in ("joint_states.position", "joint_states.velocity")
            if any(f.startswith(name + ":") for f in self.robot.state_fields)
        }
        self.state_index = {field: index for index, field in enumerate(self.robot.state_fields)}
        self.reference_index = {field: index for index, field in enumerate(self.robot.reference_fields)}
        command_type = Twist if self.robot.command_interface == "twist" else Float64MultiArray
        self.create_subscription(command_type, self.get_parameter("command_topic").value, self.on_command, 10)
        period_s = 1.0 / self.robot.control_rate_hz
        # In lock-step the timer only re-publishes the current state, so a controller can start.
        self.create_timer(period_s if not self.lock_step else 0.05, self.on_timer)
        self.steps = 0

    def on_set_parameters(self, parameters) -> SetParametersResult:
        task = self.env.unwrapped.get_task()
        try:
            changes = {p.name: as_float(p) for p in parameters if p.name in TASK_PARAMETERS[self.env_id]}
            if not changes:
                return SetParametersResult(successful=True)
            self.env.unwrapped.set_task(dataclasses.replace(task, **changes))
        except (ValueError, TypeError) as error:
            return SetParametersResult(successful=False, reason=str(error))
        self.get_logger().info(f"task changed: {changes}")
        return SetParametersResult(successful=True)

    def on_command(self, msg) -> None:
        if isinstance(msg, Twist):
            command = twist_to_wheel_speeds(
                msg.linear.x, msg.angular.z, self.robot.wheel_radius_m, self.robot.track_width_m
            )
        else:
            command = np.asarray(msg.data, dtype=np.float64)
        if command.shape != (self.robot.action_dim,) or not np.all(np.isfinite(command)):
            shown = list(command[:8])
            self.get_logger().error(
                f"ignoring command {shown}{' ...' if command.size > 8 else ''}: need {self.robot.action_dim} "
                "finite values",
                throttle_duration_sec=1.0,
            )
            return
        # A finite but huge command (1e300) would overflow the float32 action: clamp it to the
        # robot's limits here, in float64, as its motors would.
        low, high = np.asarray(self.robot.action_low), np.asarray(self.robot.action_high)
        if np.any(command < low) or np.any(command > high):
            self.get_logger().warning(
                f"clamping command {list(command)} to the robot's limits", throttle_duration_sec=1.0
            )
        self.command = np.clip(command, low, high)
        if self.lock_step:
            self.step_and_publish()

    def on_timer(self) -> None:
        if self.lock_step:
            if self.steps == 0:  # until the controller answers, so that it can start
                self.publish_sensors()
        else:
            self.step_and_publish()

    def step_and_publish(self) -> None:
        self.obs, _, terminated, truncated, info = self.env.step(self.command.astype(np.float32))
        if info.get("terrain_patch_applied"):
            self._announce_terrain_patch()
        self.sim_time_s += 1.0 / self.robot.control_rate_hz
        self.steps += 1
        if terminated or truncated:
            self.obs, _ = self.env.reset()
        if self.gif_path and self.steps % GIF_EVERY_N_STEPS == 0:
            self.frames.append(self.env.render())
        self.publish_sensors()

    def _announce_terrain_patch(self) -> None:
        """Tell the harness when the chassis drove onto the patch: the stamp of the last state
        published on the old ground (the step just taken was the first on the patch)."""
        event = {
            "event": "terrain_patch",
            "sim_time_s": self.sim_time_s,
            "ground_friction": self.env.unwrapped.get_task().ground_friction,
        }
        self.scenario_events.publish(String(data=json.dumps(event)))
        self.get_logger().info(f"scenario event: {event}")

    def write_gif(self) -> None:
        """Save the recorded frames (played back in real time) to ``record_gif_path``."""
        if not (self.gif_path and self.frames):
            return
        import imageio.v2 as imageio

        period_s = GIF_EVERY_N_STEPS / self.robot.control_rate_hz
        imageio.mimsave(self.gif_path, self.frames, duration=period_s, loop=0)

    def publish_sensors(self) -> None:
        stamp = rclpy.time.Time(seconds=self.sim_time_s).to_msg()
        self.clock.publish(Clock(clock=stamp))
        state_dim = self.robot.state_dim
        state, reference = self.obs[:state_dim].astype(float), self.obs[state_dim:].astype(float)
        # The reference goes out first: a controller that ticks on each joint state then usually
        # has the reference of the same instant, not the previous one.
        if self.robot.command_interface != "twist":
            positions, velocities = self.layout["joint_states.position"], self.layout["joint_states.velocity"]
            reference_positions = self.robot.reference_slice("reference.position")
            reference_velocities = self.robot.reference_slice("reference.velocity")
            ref = JointState(
                name=list(self.robot.joint_names),
                position=list(reference[reference_positions]),
                velocity=list(reference[reference_velocities]),
            )
            ref.header.stamp = stamp
            self.reference.publish(ref)
            msg = JointState(
                name=list(self.robot.joint_names), position=list(state[positions]), velocity=list(state[velocities])
            )
            msg.header.stamp = stamp
            self.joint_states.publish(msg)
            return
        self._publish_base(state, reference, stamp)

    def _publish_base(self, state: np.ndarray, reference: np.ndarray, stamp) -> None:
        """A diff-drive base's sensors, each value found by its field name in the robot description."""
        field = {name: state[index] for name, index in self.state_index.items()}
        twist = Twist()
        twist.linear.x = reference[self.reference_index["reference.twist.linear.x"]]
        twist.angular.z = reference[self.reference_index["reference.twist.angular.z"]]
        self.reference.publish(twist)
        odom = Odometry()
        odom.header.stamp = stamp
        odom.twist.twist.linear.x = field["odom.twist.linear.x"]
        odom.twist.twist.linear.y = field["odom.twist.linear.y"]
        odom.twist.twist.angular.z = field["odom.twist.angular.z"]
        self.odom.publish(odom)
        imu = Imu()
        imu.header.stamp = stamp
        roll, pitch = field["imu.roll"], field["imu.pitch"]
        cr, sr, cp, sp = math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2), math.sin(pitch / 2)
        imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z = cr * cp, sr * cp, cr * sp, -sr * sp
        imu.angular_velocity.x = field["imu.angular_velocity.x"]
        imu.angular_velocity.y = field["imu.angular_velocity.y"]
        self.imu.publish(imu)
        # The joint states go last: a controller ticks on them, and a base's odometry and IMU of
        # the same stamp should be there already (the node waits for them if not).
        wheel_speeds = list(state[self.layout["joint_states.velocity"]])
        wheels = JointState(
            name=list(self.robot.joint_names), position=[0.0] * self.robot.joint_count, velocity=wheel_speeds
        )
        wheels.header.stamp = stamp
        self.joint_states.publish(wheels)


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = SimBridgeNode()

    def clean_up() -> None:
        node.write_gif()
        node.env.close()

    spin_until_shutdown(node, lambda: rclpy.spin(node), clean_up)


if __name__ == "__main__":
    main()
