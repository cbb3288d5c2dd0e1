"""A hostile publisher against ``adaptive_controller`` over real ROS 2 topics, fault by fault.

Each fault runs the same three phases on one node process (an untrained Panda bundle, the
Panda's own URDF as ``robot_description``): good data, the fault, good data again. Every command
the node publishes is checked (finite, within the URDF's effort limits); for a fault that
makes a required stream stale or invalid, the hold must arrive within that stream's timeout of
the last valid message; after the fault the node must command again (it recovers), and the
process must still run. The figures go to ``RELIABILITY.md``:

    python -m tests.ros.hostile_campaign --write RELIABILITY.md [--soak-ticks 1000000]
    python -m tests.metarl_runtime.controller_soak --ticks 1000000   # the soak alone, printed

(from the repository root, with the ROS 2 environment variables of the README). The tests in
``test_hostile_input.py`` run the same campaign and assert on it.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pybullet_data
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from benchmarks.report import write_section
from experiments.node_processes import call, change_state, spin_until, start_node, stop
from sim.panda_payload import HOME_RAD, PANDA

JOINTS = list(PANDA.joint_names)
PANDA_URDF = Path(pybullet_data.getDataPath()) / "franka_panda" / "panda.urdf"
JOINT_STATES_TIMEOUT_S = 0.1
REFERENCE_TIMEOUT_S = 0.3
PERIOD_S = 0.01
RELIABILITY_HEADER = "# Reliability\n\nThe faults and hostile inputs tried against the robot stack, with counts.\n"
HOLD_SLACK_S = 0.1
"""Allowed beyond a stream's timeout for the hold to reach the probe: the watchdog's 1.5-2
control periods plus DDS delivery, on a shared 2-core machine."""
NODE_PARAMETERS = {
    "joint_states_timeout_s": JOINT_STATES_TIMEOUT_S,
    "reference_timeout_s": REFERENCE_TIMEOUT_S,
    "reference_wait_s": 0.0,
    "hold_mode": "damping",
}


def urdf_effort_limits(urdf: str, joints: list[str]) -> np.ndarray:
    """The ``<limit effort>`` of ``joints`` in a URDF (the test's own reading, by regex)."""
    efforts = []
    for joint in joints:
        block = re.search(rf'<joint name="{joint}".*?</joint>', urdf, re.S).group(0)
        efforts.append(float(re.search(r'effort="([^"]+)"', block).group(1)))
    return np.array(efforts)


def _stamp(msg, stamp_s: float) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), round((stamp_s % 1) * 1e9) % 1_000_000_000


def joint_state(stamp_s: float, positions=None, velocities=None, names=None, efforts=()) -> JointState:
    msg = JointState(
        name=JOINTS if names is None else list(names),
        position=list(HOME_RAD) if positions is None else list(positions),
        velocity=[0.0] * 7 if velocities is None else list(velocities),
        effort=list(efforts),
    )
    _stamp(msg, stamp_s)
    return msg


Message = JointState | None


@dataclass(frozen=True)
class Fault:
    """One hostile input class: what the joint-states and reference streams carry during the fault."""

    name: str
    description: str
    joint_states: Callable[[int, float], Message]
    """(step, wall-clock stamp) -> the joint state to publish, or None for silence."""
    reference: Callable[[int, float], Message]
    holds_stream: str | None
    """The stream the node must report stale (and hold for), or None when it must keep commanding."""
    counter: str
    """The diagnostics counter that must count the fault."""


def _good(step: int, stamp_s: float) -> JointState:
    return joint_state(stamp_s)


FAULTS = (
    Fault("joint_states_stop", "/joint_states stops, /reference keeps coming", lambda i, t: None, _good,
          "joint_states", "stale_hold.joint_states"),
    Fault("joint_states_nan", "/joint_states all-NaN, /reference keeps coming",
          lambda i, t: joint_state(t, [math.nan] * 7, [math.nan] * 7), _good, "joint_states", "non_finite"),
    Fault("position_1e300", "a position of 1e300 (overflows float32)",
          lambda i, t: joint_state(t, [1e300] * 7), _good, "joint_states", "out_of_range"),
    Fault("velocity_1e39", "a velocity of 1e39 (overflows float32)",
          lambda i, t: joint_state(t, velocities=[1e39] * 7), _good, "joint_states", "out_of_range"),
    Fault("duplicate_names", "a joint named twice in one message",
          lambda i, t: joint_state(t, [*HOME_RAD, 0.0], [0.0] * 8, [*JOINTS, JOINTS[0]]), _good,
          "joint_states", "duplicate_joint"),
    Fault("missing_joint", "a commanded joint missing",
          lambda i, t: joint_state(t, HOME_RAD[:6], [0.0] * 6, JOINTS[:6]), _good, "joint_states", "missing_joint"),
    Fault("length_mismatch", "7 names, 3 positions",
          lambda i, t: joint_state(t, [0.0] * 3), _good, "joint_states", "length_mismatch"),
    Fault("reference_stop", "/reference stops, /joint_states keep coming", _good, lambda i, t: None,
          "reference", "stale_hold.reference"),
    Fault("reference_nan", "/reference all-NaN", _good,
          lambda i, t: joint_state(t, [math.nan] * 7), "reference", "non_finite.reference"),
    Fault("future_reference", "every 5th /reference stamped 1 h ahead", _good,
          lambda i, t: joint_state(t + (3600.0 if i % 5 == 0 else 0.0)), None, "future_stamp.reference"),
    Fault("future_joint_states", "every 5th /joint_states stamped 1 h ahead",
          lambda i, t: joint_state(t + (3600.0 if i % 5 == 0 else 0.0)), _good, None, "future_stamp.joint_states"),
    Fault("clock_restart", "both streams' clocks restart at 1 s",
          lambda i, t: joint_state(1.0 + i * PERIOD_S), lambda i, t: joint_state(1.0 + i * PERIOD_S), None,
          "clock_restart.joint_states"),
    Fault("zero_stamps", "both streams stamped 0", lambda i, t: joint_state(0.0), lambda i, t: joint_state(0.0),
          None, "zero_stamp.joint_states"),
    Fault("malformed_effort", "7 names, 2 efforts (unused)", lambda i, t: joint_state(t, efforts=[1.0, 2.0]), _good,
          None, "malformed_effort"),
    Fault("unknown_names", "5,000 new unknown joint names per message",
          lambda i, t: joint_state(t, [*HOME_RAD, *[0.0] * 5000], [0.0] * 5007,
                                   [*JOINTS, *(f"hostile_{i}_{k}" for k in range(5000))]),
          _good, None, "unknown_joint"),
)  # fmt: skip


@dataclass
class FaultResult:
    """What one fault did to the node."""

    fault: Fault
    messages_sent: int = 0
    commands: int = 0
    bad_commands: int = 0
    """NaN, inf, or beyond the URDF's effort limits: must be 0."""
    hold_latency_s: float | None = None
    """From the last valid message of the stream to the first hold heard (faults that hold)."""
    commanded_during_fault: int = 0
    """Non-hold commands heard during the fault (after its stream's timeout, for holding faults)."""
    holds_during_fault: int = 0
    """Holds heard during a fault that must not hold (must be 0)."""
    recovered: bool = False
    counted: int = 0
    alive: bool = True


@dataclass
class CampaignResult:
    faults: list[FaultResult] = field(default_factory=list)
    node_rss_kb_before: int = 0
    node_rss_kb_after: int = 0
    log_bytes: int = 0


class HostileProbe:
    """Publishes the streams and records every command and the latest diagnostics."""

    def __init__(self, node: Node, limits: np.ndarray) -> None:
        self.node = node
        self.limits = limits
        self.joint_states = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        self.reference = node.create_publisher(JointState, "/reference", 10)
        self.commands: list[tuple[float, np.ndarray]] = []
        self.bad_commands = 0
        self.diagnostics: dict[str, str] = {}
        node.create_subscription(Float64MultiArray, "/effort_controller/commands", self._on_command, 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_command(self, msg: Float64MultiArray) -> None:
        command = np.array(msg.data)
        if command.shape != self.limits.shape or not np.all(np.isfinite(command)) or np.any(abs(command) > self.limits):
            self.bad_commands += 1
        self.commands.append((time.monotonic(), command))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "metarl/adaptive_controller":
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def run(self, seconds: float, joint_states: Callable, reference: Callable) -> tuple[int, float | None]:
        """Publish at ~100 Hz for ``seconds``; returns (messages sent, time of the last valid joint state)."""
        sent, step, started = 0, 0, time.monotonic()
        while time.monotonic() < started + seconds:
            stamp_s = time.time()
            for publisher, make in ((self.reference, reference), (self.joint_states, joint_states)):
                msg = make(step, stamp_s)
                if msg is not None:
                    publisher.publish(msg)
                    sent += 1
            step += 1
            next_s = started + step * PERIOD_S
            while (wait_s := next_s - time.monotonic()) > 0:
                rclpy.spin_once(self.node, timeout_sec=wait_s)
        return sent, step

    def count(self, key: str) -> int:
        return int(self.diagnostics.get(f"count.{key}", 0))


def set_string(node: Node, target: str, name: str, value: str) -> bool:
    """Set a string parameter of ``target``; True when accepted (URDFs are too long for ``-p``)."""
    client = node.create_client(SetParameters, f"/{target}/set_parameters")
    parameter = Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))
    return call(node, client, SetParameters.Request(parameters=[parameter])).results[0].successful


def rss_kb(pid: int) -> int:
    """Resident memory of a process (kB, from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _is_hold(command: np.ndarray) -> bool:
    return bool(np.all(command == 0.0))  # velocities are 0 in the good data: every hold is zero


def run_fault(probe: HostileProbe, fault: Fault, process, good_s: float, fault_s: float) -> FaultResult:
    """Good data, the fault, good data; one fault's figures."""
    result = FaultResult(fault)
    before = probe.count(fault.counter)
    sent, _ = probe.run(good_s, _good, _good)
    fault_started = time.monotonic()
    first = len(probe.commands)
    sent_fault, _ = probe.run(fault_s, fault.joint_states, fault.reference)
    fault_ended = time.monotonic()
    during = [(t, c) for t, c in probe.commands[first:] if t <= fault_ended]
    if fault.holds_stream is not None:
        timeout_s = JOINT_STATES_TIMEOUT_S if fault.holds_stream == "joint_states" else REFERENCE_TIMEOUT_S
        holds = [t for t, c in during if _is_hold(c)]
        result.hold_latency_s = holds[0] - fault_started if holds else None
        result.commanded_during_fault = sum(
            1 for t, c in during if t > fault_started + timeout_s + HOLD_SLACK_S and not _is_hold(c)
        )
    else:
        result.commanded_during_fault = sum(1 for _, c in during if not _is_hold(c))
        result.holds_during_fault = sum(1 for _, c in during if _is_hold(c))
    recovery_from = len(probe.commands)
    sent_after, _ = probe.run(good_s, _good, _good)
    spin_until(probe.node, lambda: probe.count(fault.counter) > before, 2.5)  # diagnostics come at 1 Hz
    result.recovered = any(not _is_hold(c) for _, c in probe.commands[recovery_from:])
    result.messages_sent = sent + sent_fault + sent_after
    result.counted = probe.count(fault.counter) - before
    result.alive = process.poll() is None
    return result


def run_campaign(
    bundle: Path, log_path: Path, faults=FAULTS, good_s: float = 0.6, fault_s: float = 0.8
) -> CampaignResult:
    """Start one node on ``bundle``, run every fault against it, and stop it. Needs ``rclpy.init()``."""
    urdf = PANDA_URDF.read_text()
    limits = urdf_effort_limits(urdf, JOINTS)
    probe_node = rclpy.create_node(f"hostile_probe_{os.getpid()}")
    process = start_node("adaptive_controller", {"bundle_path": str(bundle), **NODE_PARAMETERS}, log_path)
    campaign = CampaignResult()
    try:
        probe = HostileProbe(probe_node, limits)
        if not set_string(probe_node, "adaptive_controller", "robot_description", urdf):
            raise RuntimeError("adaptive_controller refused robot_description while unconfigured")
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            if not change_state(probe_node, "adaptive_controller", transition):
                raise RuntimeError(f"transition {transition} failed; see {log_path}")
        time.sleep(0.5)  # discovery
        probe.run(1.0, _good, _good)
        campaign.node_rss_kb_before = rss_kb(process.pid)
        for fault in faults:
            before = len(probe.commands), probe.bad_commands
            result = run_fault(probe, fault, process, good_s, fault_s)
            result.commands = len(probe.commands) - before[0]
            result.bad_commands = probe.bad_commands - before[1]
            campaign.faults.append(result)
        campaign.node_rss_kb_after = rss_kb(process.pid)
    finally:
        stop(process)
        probe_node.destroy_node()
    campaign.log_bytes = log_path.stat().st_size
    return campaign


def reliability_markdown(campaign: CampaignResult, soak=None) -> str:
    """The RELIABILITY.md text for a campaign (and a soak, if run)."""
    lines = [
        "## The node under faults and hostile input (over ROS 2)",
        "",
        "Produced by `python -m tests.ros.hostile_campaign --write RELIABILITY.md --soak-ticks 1000000` (the",
        "soak after the campaign; it rewrites this section only); `tests/ros/test_hostile_input.py` runs the same "
        "campaign and",
        "asserts on it. One `adaptive_controller` process (untrained Panda bundle, the Panda URDF of",
        "`pybullet_data` as `robot_description`, `joint_states_timeout_s` "
        f"{JOINT_STATES_TIMEOUT_S}, `reference_timeout_s` {REFERENCE_TIMEOUT_S}) is fed good data, a fault, "
        "then good data again, at ~100 Hz over real ROS 2 topics. A bad command is NaN, inf or beyond the "
        "URDF's effort limits. Hold latency: from the fault's start to the first hold heard by the probe "
        f"(must be within the stream's timeout + {HOLD_SLACK_S} s; timing on a shared 2-core machine is noisy).",
        "",
        "| fault | messages sent | commands received | bad commands | hold latency (s) | commanded in fault "
        "| holds in fault | recovered | counted | crashed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in campaign.faults:
        latency = "—" if r.fault.holds_stream is None else (f"{r.hold_latency_s:.3f}" if r.hold_latency_s else "none")
        lines.append(
            f"| `{r.fault.name}`: {r.fault.description} | {r.messages_sent} | {r.commands} | {r.bad_commands} | "
            f"{latency} | {r.commanded_during_fault} | "
            f"{r.holds_during_fault if r.fault.holds_stream is None else '—'} | "
            f"{'yes' if r.recovered else 'NO'} | "
            f"`count.{r.fault.counter}` +{r.counted} | {'no' if r.alive else 'YES'} |"
        )
    total = campaign.faults
    lines += [
        "",
        f"Totals: {sum(r.messages_sent for r in total)} messages sent, {sum(r.commands for r in total)} commands "
        f"received, {sum(r.bad_commands for r in total)} NaN/out-of-limit commands, "
        f"{sum(not r.alive for r in total)} crashes. Node memory (RSS) {campaign.node_rss_kb_before / 1024:.1f} MiB "
        f"before the faults, {campaign.node_rss_kb_after / 1024:.1f} MiB after; its log {campaign.log_bytes} bytes.",
        "",
        '"Commanded in fault": non-hold commands during the fault (for the faults that must hold, only those '
        "after the stream's timeout + slack: must be 0); faults that must not hold show how many commands "
        'the node kept sending, and "holds in fault" how many holds they caused (must be 0).',
    ]
    if soak is not None:
        lines += ["", *soak.markdown_lines()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the Markdown here (else print it)")
    parser.add_argument("--soak-ticks", type=int, default=0, help="also run the in-process tick soak")
    args = parser.parse_args(argv)
    from tests.metarl_runtime.controller_soak import run_soak
    from tests.ros.untrained_bundles import untrained_bundle

    with tempfile.TemporaryDirectory() as tmp:
        bundle = untrained_bundle(PANDA, Path(tmp) / "panda")
        rclpy.init()
        try:
            campaign = run_campaign(bundle, Path(tmp) / "controller.log")
        finally:
            rclpy.try_shutdown()
        soak = run_soak(bundle, args.soak_ticks, trace_heap=False) if args.soak_ticks else None
    text = reliability_markdown(campaign, soak)
    if args.write:
        write_section(args.write, "node", text, kind="reliability", header=RELIABILITY_HEADER)
    print(text)


if __name__ == "__main__":
    main()
