"""``adaptive_controller``: a lifecycle node that adapts a metarl bundle online and commands the robot.

configure: load and validate the bundle (refusing one for another robot or for joints the robot
lacks) and pick the controller by its mode: model-based (``gradient``/``rls``) or ``recurrent``
(RL², see below). activate: commands start. A tick runs when a new joint state arrives (at most at
``control_rate_hz``, so latency is compute only), or from a timer when sensors are late, which
then holds safely if they are stale. Each tick: take the latest validated state
and reference, append the transition, adapt every N ticks from the meta-parameters (kept only
if finite and the window loss dropped), plan, clamp, publish. Stale sensors -> safe hold.

With a ``recurrent`` bundle a tick is one step of the RL² policy, whose hidden state is the
adaptation (``export.runtime_control.RecurrentPolicyController``): ``~/reset_adaptation`` zeroes
it (a new trial), ``~/enable_adaptation false`` freezes it at zero (every tick then acts as the
first of a trial), and ``adapt_every_n_ticks`` does not apply.

Threading, chosen by measurement (Panda bundle, lock-step sim_bridge, 2-core machine, rclpy of
ROS 2 Kilted): a MultiThreadedExecutor (2 threads, the tick in its own callback group) reached
1.4 ticks/s with a p99 tick of 1.8 s, starved by executor overhead under the GIL; a
SingleThreadedExecutor held 100.0 Hz with a p99 tick of 1.9 ms. The node therefore spins
single-threaded; sensor callbacks only copy arrays under a lock, so a tick waits at most one of
them. Late ticks are counted as overruns in diagnostics.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import Node, State, TransitionCallbackReturn
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from export.runtime import BundleError
from export.runtime_control import load_controller
from metarl_ros.node_lifetime import spin_until_shutdown
from metarl_ros.sensor_mapping import SensorAssembler, SensorRejected, wheel_speeds_to_twist

COMMAND_INTERFACES = ("effort_forward", "joint_trajectory", "twist")


def _stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _float_range(low: float, high: float, description: str) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=description, floating_point_range=[FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    )


def _int_range(low: int, high: int, description: str) -> ParameterDescriptor:
    return ParameterDescriptor(
        description=description, integer_range=[IntegerRange(from_value=low, to_value=high, step=1)]
    )


class AdaptiveControllerNode(Node):
    """The robot-side adaptive controller; ROS at the edge, logic in ``export.runtime_control``."""

    def __init__(self, **kwargs) -> None:
        super().__init__("adaptive_controller", **kwargs)
        declare = self.declare_parameter
        declare("bundle_path", "", ParameterDescriptor(description="bundle directory written by `metarl export`"))
        declare("expected_robot", "", ParameterDescriptor(description="refuse bundles for another robot ('' = any)"))
        declare("control_rate_hz", 100.0, _float_range(1.0, 1000.0, "control loop rate (Hz)"))
        declare("adapt_every_n_ticks", 1, _int_range(1, 1000, "adapt once every N control ticks (model-based)"))
        declare("command_interface", "effort_forward", ParameterDescriptor(description="|".join(COMMAND_INTERFACES)))
        declare("command_topic", "/effort_controller/commands", ParameterDescriptor(description="command output"))
        declare("reference_topic", "/reference", ParameterDescriptor(description="JointState (arms) or Twist (bases)"))
        declare("joint_states_topic", "/joint_states", ParameterDescriptor(description="sensor_msgs/JointState input"))
        declare("imu_topic", "/imu", ParameterDescriptor(description="sensor_msgs/Imu input (bases)"))
        declare("odom_topic", "/odom", ParameterDescriptor(description="nav_msgs/Odometry input (bases)"))
        declare("stale_timeout_s", 0.1, _float_range(0.001, 10.0, "sensor age (s) beyond which the node holds"))
        declare(
            "reference_wait_s",
            0.01,
            _float_range(
                0.0,
                1.0,
                "longest a joint state waits for the reference of its own stamp, when the reference is "
                "stamped in step with the joint states (s; 0: never wait)",
            ),
        )
        declare(
            "enable_adaptation",
            True,
            ParameterDescriptor(description="adapt online (else meta-parameters, or a hidden state frozen at zero)"),
        )
        declare("intra_op_threads", 1, _int_range(1, 64, "onnxruntime threads"))
        declare(
            "trusted_public_key_path",
            "",
            ParameterDescriptor(
                description="Ed25519 PEM public key: run only bundles it signed ('' = unsigned allowed)"
            ),
        )
        self.manifest = None
        self.lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.timer = None

    # -- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        p = self.get_parameter
        self.get_logger().info(f"configuring: loading bundle {p('bundle_path').value!r}")
        interface = p("command_interface").value
        if interface not in COMMAND_INTERFACES:
            self.get_logger().error(f"command_interface={interface!r} is not one of {COMMAND_INTERFACES}")
            return TransitionCallbackReturn.FAILURE
        try:
            self.controller = load_controller(
                p("bundle_path").value,
                expected_robot=p("expected_robot").value or None,
                intra_op_threads=p("intra_op_threads").value,
                adapt_every_n_ticks=p("adapt_every_n_ticks").value,
                adaptation_enabled=p("enable_adaptation").value,
                trusted_public_key=p("trusted_public_key_path").value or None,
            )
        except (BundleError, OSError, ValueError) as error:
            self.get_logger().error(f"refusing bundle: {error}")
            self.counters["bundle_refused"] += 1
            return TransitionCallbackReturn.FAILURE
        manifest = self.manifest = self.controller.runtime.manifest
        if not math.isclose(p("control_rate_hz").value, manifest.control_rate_hz):
            # The model predicts one bundle period ahead: another tick rate would feed it wrong steps.
            self.get_logger().error(
                f"control_rate_hz={p('control_rate_hz').value:g} Hz differs from the bundle's "
                f"{manifest.control_rate_hz:g} Hz (its model steps one bundle period); set control_rate_hz to "
                f"{manifest.control_rate_hz:g}"
            )
            return TransitionCallbackReturn.FAILURE
        if interface == "twist" and manifest.command_interface != "twist":
            self.get_logger().error(
                f"bundle for '{manifest.robot}' commands efforts; it cannot drive a twist interface"
            )
            return TransitionCallbackReturn.FAILURE
        self.interface = interface
        self.sensors = SensorAssembler(manifest.state_fields, manifest.reference_fields, manifest.joint_names)
        self.stale_timeout_s = p("stale_timeout_s").value
        self.reference_wait_s = p("reference_wait_s").value
        self.period_s = 1.0 / p("control_rate_hz").value
        self.last_sensor_time = None
        self.tick_latencies_ms: list[float] = []
        self.tick_times: list[float] = []
        self.last_state_stamp_s = float("-inf")
        """Stamp of the newest joint state; a repeat of it is no new measurement to act on."""
        self.untreated_state = False
        """A new joint state arrived that no tick has acted on yet (the rate cap skipped it)."""
        self.reference_awaited_since: float | None = None
        """When the untreated state began to wait for its own reference (``perf_counter`` s)."""

        self.create_subscription(
            JointState, p("joint_states_topic").value, self.on_joint_states, qos_profile_sensor_data
        )
        if any(f.startswith("imu.") for f in manifest.state_fields):
            self.create_subscription(Imu, p("imu_topic").value, self.on_imu, qos_profile_sensor_data)
        if any(f.startswith("odom.") for f in manifest.state_fields):
            self.create_subscription(Odometry, p("odom_topic").value, self.on_odom, qos_profile_sensor_data)
        if any(f.startswith("reference.twist") for f in manifest.reference_fields):
            self.create_subscription(Twist, p("reference_topic").value, self.on_reference_twist, 10)
        else:
            self.create_subscription(JointState, p("reference_topic").value, self.on_reference_joints, 10)
        message_type = {"effort_forward": Float64MultiArray, "joint_trajectory": JointTrajectory, "twist": Twist}[
            interface
        ]
        self.command_publisher = self.create_lifecycle_publisher(message_type, p("command_topic").value, 10)
        self.diagnostics_publisher = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        self.configured_services = [
            self.create_service(Trigger, "~/reset_adaptation", self.on_reset_adaptation),
            self.create_service(SetBool, "~/enable_adaptation", self.on_enable_adaptation),
        ]
        self.get_logger().info(f"configured: bundle for '{manifest.robot}' ({manifest.mode}), {interface} commands")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.has_commanded = False
        self.timer = self.create_timer(self.period_s, self.on_timer)
        self.diagnostics_timer = self.create_timer(1.0, self.publish_diagnostics)
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        for timer in (self.timer, self.diagnostics_timer):
            self.destroy_timer(timer)
        self.timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for subscription in list(self.subscriptions):
            self.destroy_subscription(subscription)
        for service in self.configured_services:
            self.destroy_service(service)
        self.destroy_lifecycle_publisher(self.command_publisher)
        self.destroy_lifecycle_publisher(self.diagnostics_publisher)
        self.manifest = self.controller = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    # -- sensors ---------------------------------------------------------------------
    def _accept(self, update, *args) -> bool:
        """Apply a sensor update; count and log a refused one. True when it was accepted."""
        try:
            with self.lock:
                result = update(*args)
                self.last_sensor_time = time.monotonic()
        except SensorRejected as error:
            self.counters[error.reason] += 1
            self.get_logger().error(str(error), throttle_duration_sec=1.0)
            return False
        if result:
            self.get_logger().warning(f"joint_states: ignoring joints the bundle does not use: {result}")
            self.counters["unknown_joint"] += 1
        return True

    def on_joint_states(self, msg: JointState) -> None:
        accepted = self._accept(
            self.sensors.update_joint_states, msg.name, msg.position, msg.velocity, _stamp_s(msg.header.stamp)
        )
        stamp_s = _stamp_s(msg.header.stamp)
        if not accepted or stamp_s <= self.last_state_stamp_s:
            return
        previous_stamp_s, self.last_state_stamp_s = self.last_state_stamp_s, stamp_s
        self.untreated_state = True
        if self.reference_wait_s > 0 and self.sensors.last_stamp_s.get("reference") == previous_stamp_s:
            # The reference has come stamped in step with the joint states (a simulator or a
            # trajectory generator on the same clock), and this state's own reference is on its
            # way: act when it arrives (or, after reference_wait_s, on the watchdog), not on the last.
            self.reference_awaited_since = time.perf_counter()
            return
        self._tick_now()

    def _tick_now(self) -> None:
        """Tick as soon as the inputs are in (latency = compute only), at most twice per control
        period: a late message may catch up, a burst cannot flood the loop."""
        if self.timer is not None:
            if not self.tick_times or time.perf_counter() - self.tick_times[-1] >= 0.5 * self.period_s:
                self.on_tick()

    def on_reference_joints(self, msg: JointState) -> None:
        stamp_s = _stamp_s(msg.header.stamp)
        accepted = self._accept(self.sensors.update_reference_joints, msg.name, msg.position, msg.velocity, stamp_s)
        if accepted and self.untreated_state and stamp_s == self.last_state_stamp_s:
            self._tick_now()  # the reference a waiting state was held back for

    def on_reference_twist(self, msg: Twist) -> None:
        self._accept(self.sensors.update_reference_twist, msg.linear.x, msg.angular.z)

    def on_imu(self, msg: Imu) -> None:
        q, w = msg.orientation, msg.angular_velocity
        self._accept(self.sensors.update_imu, (q.x, q.y, q.z, q.w), (w.x, w.y, w.z), _stamp_s(msg.header.stamp))

    def on_odom(self, msg: Odometry) -> None:
        t = msg.twist.twist
        self._accept(
            self.sensors.update_odom_twist,
            (t.linear.x, t.linear.y, t.linear.z),
            (t.angular.x, t.angular.y, t.angular.z),
            _stamp_s(msg.header.stamp),
        )

    # -- control ---------------------------------------------------------------------
    def on_timer(self) -> None:
        """Watchdog and fallback clock, acting only when no joint state has driven a tick for 1.5
        periods: a new state the rate cap skipped gets its tick; stale (or never received) sensors
        get the safe hold. Merely late sensors get nothing new: re-planning on a state already
        acted on would put a duplicate transition into the adaptation window, and the command
        already sent stays in force until the next measurement or the stale timeout. Until the
        first complete state (joints and reference) the node commands nothing: it has not acted,
        so it has nothing to hold, and a zero command would override whatever holds the robot
        before it is heard."""
        if self.tick_times and time.perf_counter() - self.tick_times[-1] < 1.5 * self.period_s:
            return
        with self.lock:
            never_heard = self.last_sensor_time is None
            stale = never_heard or time.monotonic() - self.last_sensor_time > self.stale_timeout_s
        if never_heard:
            self.get_logger().warning("no sensor message yet: commanding nothing", throttle_duration_sec=2.0)
            self.counters["waiting_for_sensors"] += 1
            return
        awaited = self.reference_awaited_since
        if not stale and awaited is not None and time.perf_counter() - awaited < self.reference_wait_s:
            return  # the state's own reference is still due
        if stale or self.untreated_state:
            self.on_tick()

    def on_tick(self) -> None:
        started = time.perf_counter()
        self.tick_times.append(started)
        self.reference_awaited_since = None
        with self.lock:
            fresh = (
                self.last_sensor_time is not None and time.monotonic() - self.last_sensor_time <= self.stale_timeout_s
            )
            ready = self.sensors.state.complete() and self.sensors.reference.complete()
            state, reference = self.sensors.state.values.copy(), self.sensors.reference.values.copy()
        if fresh and ready:
            command = self.controller(state, reference)
            self.has_commanded = True
        elif self.has_commanded:
            self.counters["stale_hold" if not fresh else "incomplete_hold"] += 1
            command = self.controller.hold()
        else:
            # Nothing commanded since activation: nothing to hold, and no reason to act yet. The
            # state stays untreated, so the watchdog acts on it once the rest (the reference)
            # arrives: a lock-step robot repeats that same state until it is answered.
            self.counters["waiting_for_sensors"] += 1
            return
        self.untreated_state = False
        self.publish_command(command)
        elapsed_s = time.perf_counter() - started
        self.tick_latencies_ms.append(elapsed_s * 1e3)
        if elapsed_s > self.period_s:
            self.counters["overrun"] += 1

    def publish_command(self, command: np.ndarray) -> None:
        manifest = self.manifest
        command = np.clip(
            np.nan_to_num(command, nan=0.0, posinf=0.0, neginf=0.0), manifest.action_low, manifest.action_high
        )
        if self.interface == "effort_forward":
            self.command_publisher.publish(Float64MultiArray(data=[float(v) for v in command]))
        elif self.interface == "joint_trajectory":
            point = JointTrajectoryPoint(effort=[float(v) for v in command])
            point.time_from_start.nanosec = int(self.period_s * 1e9)
            self.command_publisher.publish(JointTrajectory(joint_names=list(manifest.joint_names), points=[point]))
        else:
            v, w = wheel_speeds_to_twist(
                float(command[0]), float(command[1]), manifest.wheel_radius_m, manifest.track_width_m
            )
            msg = Twist()
            msg.linear.x, msg.angular.z = v, w
            self.command_publisher.publish(msg)

    def publish_diagnostics(self) -> None:
        latencies = np.asarray(self.tick_latencies_ms[-1000:]) if self.tick_latencies_ms else np.zeros(1)
        times = np.asarray(self.tick_times[-1000:])
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        values = {
            "loop_rate_hz": f"{rate:.1f}",
            "tick_latency_p50_ms": f"{np.percentile(latencies, 50):.3f}",
            "tick_latency_p99_ms": f"{np.percentile(latencies, 99):.3f}",
            "ticks": str(len(self.tick_times)),
            "mode": self.manifest.mode,
            **self.controller.diagnostic_values(),
            "adaptation_enabled": str(self.controller.adaptation_enabled),
            **{f"count.{k}": str(v) for k, v in sorted(self.counters.items())},
        }
        level = DiagnosticStatus.WARN if self.counters.get("stale_hold") else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name="metarl/adaptive_controller",
            message="running",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(array)

    # -- services ----------------------------------------------------------------------
    def on_reset_adaptation(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self.lock:
            self.controller.reset()
        recurrent = self.manifest.mode == "recurrent"
        start = "a zero hidden state (a new trial)" if recurrent else "the meta-learned parameters"
        response.success, response.message = True, f"adaptation reset to {start}"
        return response

    def on_enable_adaptation(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self.controller.set_adaptation_enabled(bool(request.data))
        response.success, response.message = True, f"adaptation {'enabled' if request.data else 'disabled'}"
        return response


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = AdaptiveControllerNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin_until_shutdown(node, executor.spin)


if __name__ == "__main__":
    main()
