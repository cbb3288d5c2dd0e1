"""``payload_switch_session``: the payload-switch experiment over real ROS 2 topics.

Starts ``sim_bridge`` (Panda, lock-step) and ``adaptive_controller`` as their own processes,
brings the controller up through its lifecycle services, puts a payload into the hand by setting
the bridge's ``payload_mass_kg`` parameter mid-run, and records what a user would watch: the
tracking error per control tick (from ``/joint_states`` against ``/reference``), every command
published, and the controller's last diagnostics. With ``bag_path`` a ``bag_recorder`` process
writes the run's topics to an MCAP rosbag2 directory, as ``ros2 bag record -s mcap`` would on a
robot, for ``metarl eval --bag``. ``metarl demo`` runs it once with adaptation
on and once off; the closed-loop integration test runs the same function.

Lock-step makes the run deterministic under any CPU load: the bridge advances one control period
per command, so sim time is what counts, not wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from experiments.node_processes import set_double, spin_until
from experiments.ros_session import (
    bridge_and_controller,
    errors_on_grid,
    run_in_own_node,
    save_session,
    session_arguments,
    spin_to_sim_time,
    stamp_s,
)
from sim.panda_payload import PANDA
from sim.scenarios.payload_switch import EPISODE_S, PAYLOAD_AFTER_KG, SWITCH_S


@dataclass
class SessionResult:
    """One run: tracking error per tick on the control-period grid, and what was commanded."""

    errors: np.ndarray
    """RMS joint position error (rad) at t = 0.01, 0.02, ... s of sim time."""
    commands: np.ndarray
    switch_time_s: float
    """Sim time of the last state seen before the payload was set (the switch is no earlier)."""
    diagnostics: dict[str, str]
    joint_states: dict[float, np.ndarray]
    """The state vector heard at each stamp (s): positions then velocities, in the bridge's joint order."""
    references: dict[float, np.ndarray]
    """The reference heard at each stamp (s): positions then velocities."""


def run_session(
    node: Node,
    bundle: Path,
    log_dir: Path,
    adaptation: bool,
    seed: int = 3,
    switch_s: float = SWITCH_S,
    duration_s: float = EPISODE_S,
    payload_after_kg: float = PAYLOAD_AFTER_KG,
    gif_path: Path | None = None,
    timeout_s: float = 180.0,
    bag_path: Path | None = None,
) -> SessionResult:
    """Run the bridge and the controller until ``duration_s`` of sim time, switching the payload;
    with ``bag_path`` (a directory that must not exist yet) the run is recorded there."""
    tag = "adaptation_on" if adaptation else "adaptation_off"
    bridge_parameters: dict[str, object] = {"lock_step": True, "seed": seed}
    if gif_path is not None:
        bridge_parameters["record_gif_path"] = str(gif_path)
    # In lock-step the bridge waits for each command, so wall-clock gaps (a GIF frame being
    # rendered, a busy CPU) are not stale sensors; the watchdog stays on, with a looser bound.
    controller_parameters: dict[str, object] = {
        "bundle_path": str(bundle),
        "expected_robot": "panda",
        "enable_adaptation": adaptation,
        "stale_timeout_s": 1.0,
    }
    commands: list[np.ndarray] = []
    positions: dict[float, np.ndarray] = {}
    references: dict[float, np.ndarray] = {}
    joint_states: dict[float, np.ndarray] = {}
    reference_states: dict[float, np.ndarray] = {}

    def on_joint_states(msg: JointState) -> None:
        positions[stamp_s(msg)] = np.array(msg.position)
        joint_states[stamp_s(msg)] = np.concatenate([msg.position, msg.velocity])

    def on_reference(msg: JointState) -> None:
        references[stamp_s(msg)] = np.array(msg.position)
        reference_states[stamp_s(msg)] = np.concatenate([msg.position, msg.velocity])

    diagnostics: dict[str, str] = {}
    subscriptions = [
        node.create_subscription(
            Float64MultiArray, "/effort_controller/commands", lambda m: commands.append(np.array(m.data)), 100
        ),
        node.create_subscription(JointState, "/joint_states", on_joint_states, qos_profile_sensor_data),
        node.create_subscription(JointState, "/reference", on_reference, 100),
        node.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            lambda m: diagnostics.update({kv.key: kv.value for kv in m.status[0].values}),
            10,
        ),
    ]
    latest = lambda: max(positions, default=0.0)  # noqa: E731
    # Commands are paired with states by position, so the command subscription must have matched
    # the controller's publisher (made at configure) before the first command goes out.
    heard_everything = lambda: (  # noqa: E731
        bool(positions) and bool(references) and node.count_publishers("/effort_controller/commands") > 0
    )
    try:
        with bridge_and_controller(
            node, log_dir, tag, bridge_parameters, controller_parameters, heard_everything, bag_path
        ):
            deadline = time.monotonic() + timeout_s
            spin_to_sim_time(node, latest, switch_s, deadline)
            switch_time_s = latest()
            if not set_double(node, "sim_bridge", "payload_mass_kg", payload_after_kg):
                raise RuntimeError(f"sim_bridge refused payload_mass_kg={payload_after_kg}")
            spin_to_sim_time(node, latest, duration_s, deadline)
            spin_until(node, lambda: "ticks" in diagnostics, 3.0)
    finally:
        for subscription in subscriptions:
            node.destroy_subscription(subscription)
    errors = {s: float(np.sqrt(np.mean((positions[s] - references[s]) ** 2))) for s in set(positions) & set(references)}
    return SessionResult(
        errors=errors_on_grid(errors, PANDA.control_rate_hz)[: round(duration_s * PANDA.control_rate_hz)],
        commands=np.array(commands),
        switch_time_s=switch_time_s,
        diagnostics=diagnostics,
        joint_states=joint_states,
        references=reference_states,
    )


def main(args: list[str] | None = None) -> None:
    """Console script: one session, its result saved as ``--out`` (.npz) plus diagnostics JSON."""
    parser = session_arguments("payload_switch_session", __doc__.splitlines()[0])
    parser.add_argument("--switch-s", type=float, default=SWITCH_S)
    parser.add_argument("--duration-s", type=float, default=EPISODE_S)
    parser.add_argument("--payload-kg", type=float, default=PAYLOAD_AFTER_KG)
    options = parser.parse_args(args)
    result = run_in_own_node(
        "payload_switch_session",
        lambda node: run_session(
            node,
            options.bundle.resolve(),
            options.out.parent / "logs",
            options.adaptation == "on",
            options.seed,
            options.switch_s,
            options.duration_s,
            options.payload_kg,
            None if options.gif is None else options.gif.resolve(),
            bag_path=None if options.bag is None else options.bag.resolve(),
        ),
    )
    save_session(
        options.out,
        result.diagnostics,
        errors=result.errors,
        commands=result.commands,
        switch_time_s=result.switch_time_s,
    )


if __name__ == "__main__":
    main()
