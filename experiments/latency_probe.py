"""Measures a running ``adaptive_controller`` from outside, as the robot's drivers would see it.

Starts the controller (a separate process, as with ``ros2 run``), configures and activates it,
publishes joint states and references at the control rate, and records for each command the
time since the newest sensor message published before it (end-to-end latency: transport in,
waiting for the tick, adapt + plan, transport out) and the rate commands arrive at. Also reads the node's
overruns and CPU time, and the node's stage profile (``stage.*`` of its diagnostics). Before
the stream it measures the floor: a JointState ping-pong at the same rate with a bare echo node
(``--pong``, another process, the same QoS as the controller's input and output), i.e. DDS both
ways and one rclpy wake-up with no work. Prints one JSON object; ``metarl bench ros`` runs this
per rate and repeat. ``--adapt-after-publish`` starts the node with ``adapt_after_publish:=true``
(issue 17's option), to compare the two tick orderings. ``--node-cpu K`` gives the node (and the
floor's echo node, so that the floor is measured where the node runs) CPU K alone and this probe
the other CPUs: "one core for the node", as a robot's controller would be pinned (``taskset -c K``,
systemd ``CPUAffinity=``), so that the probe's own publishing does not queue behind the node's tick.
``--cpu-wake-latency-us N`` starts the node with ``cpu_wake_latency_us:=N``: no CPU idle state
slower to leave than N µs while it is active.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from sim.panda_payload import HOME_RAD as PANDA_HOME_RAD
from sim.panda_payload import PANDA

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S  # utime + stime


PING_TOPIC, PONG_TOPIC = "/metarl_latency_probe/ping", "/metarl_latency_probe/pong"
JOINTS = list(PANDA.joint_names)
HOME_RAD = PANDA_HOME_RAD.tolist()
"""The Panda at rest in its home pose: what the probe streams to the controller."""
AT_REST_RAD_S = [0.0] * PANDA.joint_count


def echo() -> None:
    """The ping-pong partner: republish each JointState on the pong topic, doing nothing else."""
    rclpy.init()
    node = rclpy.create_node("latency_probe_echo")
    pong = node.create_publisher(JointState, PONG_TOPIC, 100)
    node.create_subscription(JointState, PING_TOPIC, pong.publish, qos_profile_sensor_data)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def ping_pong_ms(node, rate_hz: float, seconds: float) -> np.ndarray:
    """Round trips (ms) of JointStates sent at ``rate_hz`` to :func:`echo` and back, after the
    first second (discovery and warm-up). Raises ``RuntimeError`` if no echo comes back."""
    sent: dict[int, float] = {}
    round_trips: list[float] = []

    def on_pong(msg: JointState) -> None:
        key = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if key in sent:
            round_trips.append(time.perf_counter() - sent.pop(key))

    node.create_subscription(JointState, PONG_TOPIC, on_pong, 100)
    ping = node.create_publisher(JointState, PING_TOPIC, qos_profile_sensor_data)
    deadline = time.perf_counter() + 20.0
    while ping.get_subscription_count() == 0 and time.perf_counter() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    period = 1.0 / rate_hz
    start = next_send = time.perf_counter()
    warm_after = 0
    while time.perf_counter() - start < seconds + 1.0:
        if time.perf_counter() >= next_send:
            if time.perf_counter() - start < 1.0:
                warm_after = len(round_trips) + 1
            msg = JointState(name=JOINTS, position=HOME_RAD, velocity=AT_REST_RAD_S)
            msg.header.stamp = node.get_clock().now().to_msg()
            sent[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = time.perf_counter()
            ping.publish(msg)
            next_send += period
        rclpy.spin_once(node, timeout_sec=max(0.0, min(period / 4, next_send - time.perf_counter())))
    if len(round_trips) <= warm_after:
        raise RuntimeError("ping-pong: no echo came back")
    return np.asarray(round_trips[warm_after:]) * 1e3


def pinned_to(cpu: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that gives a child process CPU ``cpu`` alone (None: no pinning)."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def measure(
    bundle: str,
    rate_hz: float,
    seconds: float,
    floor_seconds: float = 5.0,
    adapt_after_publish: bool = False,
    node_cpu: int | None = None,
    cpu_wake_latency_us: int = -1,
) -> dict[str, float]:
    if node_cpu is not None:
        available = os.sched_getaffinity(0)
        others = available - {node_cpu}
        if node_cpu not in available or not others:
            raise ValueError(
                f"--node-cpu {node_cpu}: needs that CPU and at least one other among this process's {sorted(available)}"
            )
        os.sched_setaffinity(0, others)
    controller = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "adaptive_controller"),
            "--ros-args",
            "-p",
            f"bundle_path:={bundle}",
            "-p",
            f"control_rate_hz:={rate_hz}",
            "-p",
            "stale_timeout_s:=0.5",
            "-p",
            f"adapt_after_publish:={str(adapt_after_publish).lower()}",
            "-p",
            f"cpu_wake_latency_us:={cpu_wake_latency_us}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned_to(node_cpu),
    )
    echo_process = subprocess.Popen(
        [sys.executable, "-m", "experiments.latency_probe", "--pong"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned_to(node_cpu),
    )
    rclpy.init()
    node = rclpy.create_node("latency_probe")
    sent: list[float] = []
    latencies: list[float] = []
    command_times: list[float] = []
    diagnostics: dict[str, str] = {}
    # Callbacks run only in the stream loop's spin: every figure below is of the stream, none of
    # the holds that follow it.

    def on_command(_: Float64MultiArray) -> None:
        now = time.perf_counter()
        if sent:
            latencies.append(now - sent[-1])
            command_times.append(now)

    node.create_subscription(Float64MultiArray, "/effort_controller/commands", on_command, 100)
    node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: diagnostics.update({kv.key: kv.value for kv in m.status[0].values}),
        10,
    )
    states = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    reference = node.create_publisher(JointState, "/reference", 10)
    client = node.create_client(ChangeState, "/adaptive_controller/change_state")
    try:
        # The node up (idle, unconfigured) before the floor: its start-up would otherwise run on
        # the echo's CPU, and with --node-cpu on that CPU alone (a 270 ms floor p99 seen so).
        if not client.wait_for_service(timeout_sec=20):
            raise RuntimeError("adaptive_controller did not come up")
        floor_ms = ping_pong_ms(node, rate_hz, floor_seconds)
        echo_process.send_signal(signal.SIGINT)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
            rclpy.spin_until_future_complete(node, future, timeout_sec=20)
            if not future.result() or not future.result().success:
                raise RuntimeError(f"transition {transition} failed")
        joints, home = JOINTS, HOME_RAD
        period = 1.0 / rate_hz
        start = time.perf_counter()
        cpu_start, wall_start = cpu_seconds(controller.pid), time.monotonic()
        next_send = start
        while time.perf_counter() - start < seconds:
            now = time.perf_counter()
            if now >= next_send:
                msg = JointState(name=joints, position=home, velocity=AT_REST_RAD_S)
                msg.header.stamp = node.get_clock().now().to_msg()
                states.publish(msg)
                reference.publish(JointState(name=joints, position=home, velocity=AT_REST_RAD_S, header=msg.header))
                sent.append(time.perf_counter())
                next_send += period
            rclpy.spin_once(node, timeout_sec=max(0.0, min(period / 4, next_send - time.perf_counter())))
        cpu_used = cpu_seconds(controller.pid) - cpu_start
        wall = time.monotonic() - wall_start
        node_cpus = len(os.sched_getaffinity(controller.pid))
    finally:
        controller.send_signal(signal.SIGINT)
        controller.wait(timeout=10)
        if echo_process.poll() is None:
            echo_process.send_signal(signal.SIGINT)
        echo_process.wait(timeout=10)
        node.destroy_node()
        rclpy.shutdown()
    warm = np.asarray(latencies[int(rate_hz) :]) * 1e3  # skip the first second (ORT warm-up)
    warm_times = command_times[int(rate_hz) :]
    ticks = int(diagnostics.get("ticks", "0"))
    return {
        "rate_hz": rate_hz,
        "latency_p50_ms": float(np.percentile(warm, 50)),
        "latency_p99_ms": float(np.percentile(warm, 99)),
        # Commands per second as the drivers receive them while the stream runs (the node's own
        # loop_rate_hz averages over its last 1000 ticks, the warm-up among them).
        "achieved_rate_hz": (len(warm_times) - 1) / (warm_times[-1] - warm_times[0]),
        "sensor_rate_hz": len(sent) / seconds,
        "tick_p50_ms": float(diagnostics.get("tick_latency_p50_ms", "nan")),
        "tick_p99_ms": float(diagnostics.get("tick_latency_p99_ms", "nan")),
        "overrun_percent": 100.0 * int(diagnostics.get("count.overrun", "0")) / max(ticks, 1),
        "cpu_cores": cpu_used / wall,
        "node_cpus_allowed": float(node_cpus),
        "floor_p50_ms": float(np.percentile(floor_ms, 50)),
        "floor_p99_ms": float(np.percentile(floor_ms, 99)),
        **{key: float(value) for key, value in diagnostics.items() if key.startswith("stage.")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pong", action="store_true", help="run as the ping-pong echo node, nothing else")
    parser.add_argument("--bundle")
    parser.add_argument("--rate-hz", type=float)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--floor-seconds", type=float, default=5.0, help="ping-pong time before the stream")
    parser.add_argument(
        "--adapt-after-publish",
        action="store_true",
        help="the node adapts after publishing (adapt_after_publish:=true)",
    )
    parser.add_argument(
        "--node-cpu",
        type=int,
        default=None,
        help="pin the node (and the floor's echo) to this CPU, the probe to the others",
    )
    parser.add_argument(
        "--cpu-wake-latency-us",
        type=int,
        default=-1,
        help="the node's cpu_wake_latency_us (-1: the system's idle states as they are)",
    )
    args = parser.parse_args()
    if args.pong:
        echo()
        return
    if args.bundle is None or args.rate_hz is None:
        parser.error("--bundle and --rate-hz are required (unless --pong)")
    result = measure(
        args.bundle,
        args.rate_hz,
        args.seconds,
        args.floor_seconds,
        args.adapt_after_publish,
        args.node_cpu,
        args.cpu_wake_latency_us,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
