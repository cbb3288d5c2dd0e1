"""``terrain_change_session``: the Husky's terrain-change experiment over real ROS 2 topics.

The Husky's counterpart of ``payload_switch_session``. Starts ``sim_bridge`` (HuskyTerrain-v0,
lock-step, ``scenario: terrain_change``) and ``adaptive_controller`` as their own processes; the
bridge drives the steady arc of ``sim.scenarios.terrain_change`` and puts the high-grip patch
under the robot the tick the chassis reaches it (the patch logic is the simulator's
``TerrainChange`` wrapper; the bridge announces the crossing on ``/sim_bridge/scenario_events``,
which only this harness hears). The node commands the interface its bundle declares (``twist``
for the Husky, on ``/cmd_vel``) and hears only the sensors: odometry twist, IMU, wheel joint
states. Recorded: the twist-tracking error per control tick from ``/odom`` against the
reference, every command, the crossing time and the node's last diagnostics; with ``bag_path`` an
MCAP bag of the run. ``metarl demo --robot husky`` runs it with adaptation on and off; the
closed-loop test runs the same function.

The figures are ``sim.scenarios.terrain_change.summarize``'s, on the same definitions as the
in-process run: ``errors[k]`` is the error of the state after ``k + 1`` steps, and ``crossing_s`` is
the index of the first state on the patch over the control rate. (The bridge announces the stamp
of the last state on the old ground, the state after ``k`` steps: one period later.)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from std_msgs.msg import String

from experiments.node_processes import spin_until
from experiments.ros_session import (
    bridge_and_controller,
    errors_on_grid,
    run_in_own_node,
    save_session,
    session_arguments,
    spin_to_sim_time,
    stamp_s,
)
from metarl_runtime.tracking_reward import TrackingReward
from sim.husky_terrain import HUSKY, HUSKY_REWARD
from sim.scenarios.terrain_change import DEFAULT_PATCH, EPISODE_S, TerrainPatch

COMMAND_TOPICS = {"twist": ("/cmd_vel", Twist)}
"""Where the node publishes for each command interface a Husky bundle can declare."""
BAG_TOPICS = (
    "/joint_states:sensor_msgs/msg/JointState",
    "/imu:sensor_msgs/msg/Imu",
    "/odom:nav_msgs/msg/Odometry",
    "/reference:geometry_msgs/msg/Twist",
    "/cmd_vel:geometry_msgs/msg/Twist",
    "/diagnostics:diagnostic_msgs/msg/DiagnosticArray",
)
"""A Husky run's topics, as ``ros2 bag record`` would take them on the robot."""


@dataclass
class TerrainSessionResult:
    """One run: the twist-tracking error per tick on the control-period grid, and what was commanded."""

    errors: np.ndarray
    """Twist error (m/s, the env's ``tracking_error``) of the state after 1, 2, ... steps."""
    commands: np.ndarray
    """Every command heard, in order: (linear.x m/s, angular.z rad/s) for ``twist``."""
    crossing_s: float
    """``errors[round(crossing_s * rate)]`` is the first state on the patch (inf: never reached), as
    ``run_terrain_change`` has it."""
    diagnostics: dict[str, str]


def bundle_command_interface(bundle: Path) -> str:
    """The command interface ``bundle.json`` declares; ``ValueError`` for one this session cannot record."""
    interface = json.loads((bundle / "bundle.json").read_text(encoding="utf-8")).get("command_interface")
    if interface not in COMMAND_TOPICS:
        raise ValueError(
            f"{bundle / 'bundle.json'}: command_interface={interface!r}; the terrain-change session "
            f"records {sorted(COMMAND_TOPICS)}"
        )
    return interface


def run_session(
    node: Node,
    bundle: Path,
    log_dir: Path,
    adaptation: bool,
    seed: int = 3,
    duration_s: float = EPISODE_S,
    patch: TerrainPatch = DEFAULT_PATCH,
    task: dict[str, float] | None = None,
    gif_path: Path | None = None,
    timeout_s: float = 180.0,
    bag_path: Path | None = None,
) -> TerrainSessionResult:
    """Run the bridge and the controller until ``duration_s`` of sim time over the terrain patch.

    ``task`` sets the bridge's task parameters from the start (``payload_mass_kg``,
    ``motor_strength_scale``, ...; friction 1 elsewhere, as in the in-process run); with
    ``bag_path`` (a directory that must not exist yet) the run is recorded there.
    """
    interface = bundle_command_interface(bundle)
    command_topic, command_type = COMMAND_TOPICS[interface]
    tag = "adaptation_on" if adaptation else "adaptation_off"
    bridge_parameters: dict[str, object] = {
        "env_id": "metarl/HuskyTerrain-v0",
        "lock_step": True,
        "seed": seed,
        "command_topic": command_topic,
        "scenario": "terrain_change",
        "terrain_patch_start_m": patch.start_m,
        "terrain_patch_ground_friction": patch.ground_friction,
        **(task or {}),
    }
    if gif_path is not None:
        bridge_parameters["record_gif_path"] = str(gif_path)
    # In lock-step the bridge waits for each command, so wall-clock gaps are not stale sensors.
    controller_parameters: dict[str, object] = {
        "bundle_path": str(bundle),
        "expected_robot": HUSKY.name,
        "command_interface": interface,
        "command_topic": command_topic,
        "enable_adaptation": adaptation,
        "stale_timeout_s": 1.0,
    }
    # The env's own twist error (its reward, negated), from the sensors the node hears.
    score = TrackingReward(HUSKY_REWARD.to_json(), HUSKY.state_fields, HUSKY.reference_fields, HUSKY.action_dim)
    no_command = np.zeros(HUSKY.action_dim)
    linear, angular = HUSKY.state_fields.index("odom.twist.linear.x"), HUSKY.state_fields.index("odom.twist.angular.z")
    reference: list[np.ndarray] = []  # the latest reference heard (none before the first)
    errors: dict[float, float] = {}
    commands: list[tuple[float, float]] = []
    crossings: list[float] = []
    diagnostics: dict[str, str] = {}

    def on_odom(msg: Odometry) -> None:
        # The reference is a Twist (no stamp), published just before each odometry message; the
        # arc is constant, so the latest heard is the one of this stamp.
        if reference:
            state = np.zeros(HUSKY.state_dim)
            state[linear], state[angular] = msg.twist.twist.linear.x, msg.twist.twist.angular.z
            errors[stamp_s(msg)] = -score(state, reference[-1], no_command)

    def on_reference(msg: Twist) -> None:
        reference[:] = [np.array([msg.linear.x, msg.angular.z])]

    def on_event(msg: String) -> None:
        event = json.loads(msg.data)
        if event.get("event") == "terrain_patch":
            crossings.append(float(event["sim_time_s"]))

    subscriptions = [
        node.create_subscription(Twist, "/reference", on_reference, 100),
        node.create_subscription(Odometry, "/odom", on_odom, qos_profile_sensor_data),
        node.create_subscription(
            command_type, command_topic, lambda m: commands.append((m.linear.x, m.angular.z)), 100
        ),
        node.create_subscription(
            String,
            "/sim_bridge/scenario_events",
            on_event,
            QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        ),
        node.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: diagnostics.update({kv.key: kv.value for kv in m.status[0].values}),
            10,
        ),
    ]
    latest = lambda: max(errors, default=0.0)  # noqa: E731
    heard_everything = lambda: bool(errors) and node.count_publishers(command_topic) > 0  # noqa: E731
    try:
        with bridge_and_controller(
            node, log_dir, tag, bridge_parameters, controller_parameters, heard_everything, bag_path, BAG_TOPICS
        ):
            spin_to_sim_time(node, latest, duration_s, time.monotonic() + timeout_s)
            spin_until(node, lambda: "ticks" in diagnostics, 3.0)
    finally:
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
    rate_hz = HUSKY.control_rate_hz
    # The grid starts at the bridge's first stamp (1/rate, the state before any step): drop it, so
    # that errors[k] is the state after k + 1 steps, as in the in-process run.
    per_tick = errors_on_grid(errors, rate_hz)[1 : round(duration_s * rate_hz) + 1]
    crossing_s = crossings[0] - 1.0 / rate_hz if crossings else float("inf")
    return TerrainSessionResult(per_tick, np.array(commands), crossing_s, diagnostics)


def main(args: list[str] | None = None) -> None:
    """Console script: one session, its result saved as ``--out`` (.npz) plus diagnostics JSON."""
    parser = session_arguments("terrain_change_session", __doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=EPISODE_S)
    parser.add_argument("--patch-start-m", type=float, default=DEFAULT_PATCH.start_m)
    parser.add_argument("--patch-friction", type=float, default=DEFAULT_PATCH.ground_friction)
    options = parser.parse_args(args)
    result = run_in_own_node(
        "terrain_change_session",
        lambda node: run_session(
            node,
            options.bundle.resolve(),
            options.out.parent / "logs",
            options.adaptation == "on",
            options.seed,
            options.duration_s,
            TerrainPatch(options.patch_start_m, options.patch_friction),
            gif_path=None if options.gif is None else options.gif.resolve(),
            bag_path=None if options.bag is None else options.bag.resolve(),
        ),
    )
    save_session(
        options.out, result.diagnostics, errors=result.errors, commands=result.commands, crossing_s=result.crossing_s
    )


if __name__ == "__main__":
    main()
