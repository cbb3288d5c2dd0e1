"""``adaptive_controller``: a lifecycle node that adapts a metarl bundle online and commands the robot.

configure: load and validate the bundle (refusing one for another robot or for joints the robot
lacks) and pick the controller by its mode: model-based (``gradient``/``rls``) or ``recurrent``
(RL², see below). activate: commands start. A tick runs when a new joint state arrives (at most at
``control_rate_hz``, so latency is compute only), or from a timer when sensors are late, which
then holds safely if they are stale; those rules are ``metarl_ros.tick_schedule``, ROS-free and
unit-tested. Each tick: take the latest validated state
and reference, append the transition, adapt every N ticks from the meta-parameters (kept only
if finite and the window loss dropped), plan, clamp, publish. With ``adapt_after_publish: true``
the tick instead plans with the parameters adapted at the end of the tick before and adapts
after the publish, for the next tick, in its own callback: the command's latency holds no adapt
graph, the single-threaded executor cannot start the next tick before it ends (its time counts
towards the overrun check), but the parameters are one period older (off by default: the
closed-loop ROS test's bundle tracks 20x worse so, BENCHMARKS.md). After the publish the tick
also draws the next plan's sampling noise (the same draws either way).

Safety (README "Safety", docs/architecture.md): every required input stream has its own
watchdog and timeout (``metarl_runtime.stream_watchdog``); a stale or invalid one gives the
interface's safe hold (``metarl_ros.safe_hold``, ``hold_mode``), counted per stream. Stamps go
through a policy that no message can lock out. Every callback and the tick are guarded: an
exception is counted, logged at most once a second and, in a tick, answered with the hold; none
reaches the executor. Commands are clamped to ``min(bundle, robot)``, the robot's limits coming
from the URDF in ``robot_description`` (``metarl_ros.robot_limits``); a bundle wider than the
robot is refused at configure. Deactivate, cleanup, shutdown and error send the hold once (the
last command does not stay in force) and release timers, subscriptions and publishers. A
parameter read only at configure cannot be changed while configured; run-time ones apply at once.

With a ``recurrent`` bundle a tick is one step of the RL² policy, whose hidden state is the
adaptation (``metarl_runtime.controllers.RecurrentPolicyController``): ``~/reset_adaptation`` zeroes
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
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecyclePublisher, Node, State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from metarl_ros.node_lifetime import spin_until_shutdown
from metarl_ros.robot_limits import RobotLimitsError, allowed_command_limits, parse_urdf_limits
from metarl_ros.safe_hold import HOLD_MODES, safe_hold
from metarl_ros.tick_schedule import HISTORY_LENGTH, TickSchedule
from metarl_runtime.bundle_manifest import CommonManifest
from metarl_runtime.controllers import OnlineAdaptiveController, RecurrentPolicyController, load_controller
from metarl_runtime.cpu_wake_latency import CpuWakeLatencyRequest
from metarl_runtime.model_runtime import BundleError
from metarl_runtime.sensor_mapping import SensorAssembler, SensorRejected, wheel_speeds_to_twist
from metarl_runtime.stream_watchdog import StampPolicy, StreamWatchdog

COMMAND_INTERFACES = ("effort_forward", "joint_trajectory", "twist")
TICK_STAGES = ("sensors", "adapt", "plan", "publish")
"""Where a commanded tick's time goes, each reported as ``stage.<name>_p50_ms``/``_p99_ms``:
the joint-state callback's message conversion and sensor mapping (``sensors``), the controller's
adaptation (``adapt``, 0 on ticks that do not adapt) and the rest of its step (``plan``: the
planner graph runs and numpy glue, clamping and checks), and building and publishing the command.
With ``adapt_after_publish: true`` the adaptation runs after ``publish``: ``adapt`` is then off
the command's latency (``tick_latency_*``, start to command) but still inside the tick's time."""


class ConfigureRefused(Exception):
    """A configure that cannot succeed; its message is the reason logged."""


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


STREAM_TIMEOUT_PARAMETERS = {
    "joint_states": "joint_states_timeout_s",
    "reference": "reference_timeout_s",
    "imu": "imu_timeout_s",
    "odom": "odom_timeout_s",
}
"""Each input stream's own timeout parameter (0: ``stale_timeout_s``)."""
CONFIGURE_ONLY_PARAMETERS = frozenset(
    {
        "bundle_path",
        "expected_robot",
        "control_rate_hz",
        "adapt_every_n_ticks",
        "adapt_after_publish",
        "command_interface",
        "command_topic",
        "reference_topic",
        "joint_states_topic",
        "imu_topic",
        "odom_topic",
        "intra_op_threads",
        "robot_description",
        "trusted_public_key_path",
        "cpu_wake_latency_us",
    }
)
"""Parameters read by on_configure: a change while configured is refused, not silently ignored."""
TOPIC_PARAMETERS = ("command_topic", "reference_topic", "joint_states_topic", "imu_topic", "odom_topic")


class AdaptiveControllerNode(Node):
    """The robot-side adaptive controller; ROS at the edge, logic in ``metarl_runtime.controllers``."""

    def __init__(self, **kwargs) -> None:
        super().__init__("adaptive_controller", **kwargs)
        declare = self.declare_parameter
        declare("bundle_path", "", ParameterDescriptor(description="bundle directory written by `metarl export`"))
        declare("expected_robot", "", ParameterDescriptor(description="refuse bundles for another robot ('' = any)"))
        declare("control_rate_hz", 100.0, _float_range(1.0, 1000.0, "control loop rate (Hz)"))
        declare("adapt_every_n_ticks", 1, _int_range(1, 1000, "adapt once every N control ticks (model-based)"))
        declare(
            "adapt_after_publish",
            False,
            ParameterDescriptor(
                description="model-based: adapt before planning (false, as trained) or after publishing, for "
                "the next tick (true: the command sooner, the parameters one period older)"
            ),
        )
        declare("command_interface", "effort_forward", ParameterDescriptor(description="|".join(COMMAND_INTERFACES)))
        declare("command_topic", "/effort_controller/commands", ParameterDescriptor(description="command output"))
        declare("reference_topic", "/reference", ParameterDescriptor(description="JointState (arms) or Twist (bases)"))
        declare("joint_states_topic", "/joint_states", ParameterDescriptor(description="sensor_msgs/JointState input"))
        declare("imu_topic", "/imu", ParameterDescriptor(description="sensor_msgs/Imu input (bases)"))
        declare("odom_topic", "/odom", ParameterDescriptor(description="nav_msgs/Odometry input (bases)"))
        declare(
            "stale_timeout_s", 0.1, _float_range(0.001, 10.0, "default age (s) of a stream beyond which the node holds")
        )
        for stream, name in STREAM_TIMEOUT_PARAMETERS.items():
            declare(
                name,
                0.0,
                _float_range(0.0, 10.0, f"{stream}: age (s) beyond which the node holds (0: stale_timeout_s)"),
            )
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
            "future_stamp_tolerance_s",
            1.0,
            _float_range(0.001, 3600.0, "stamps further ahead of this node's clock are refused (s)"),
        )
        declare(
            "clock_restart_s",
            1.0,
            _float_range(0.001, 3600.0, "a stamp this much older than its stream's last is a clock restart (s)"),
        )
        declare("hold_mode", "damping", ParameterDescriptor(description="effort hold: " + "|".join(HOLD_MODES)))
        declare("hold_damping_nms_per_rad", 5.0, _float_range(0.0, 1000.0, "Kd of the damping hold (N·m·s/rad)"))
        declare(
            "robot_description",
            "",
            ParameterDescriptor(description="the robot's URDF; its <limit effort velocity> bound the bundle's"),
        )
        declare(
            "enable_adaptation",
            True,
            ParameterDescriptor(description="adapt online (else meta-parameters, or a hidden state frozen at zero)"),
        )
        declare("intra_op_threads", 1, _int_range(1, 64, "onnxruntime threads"))
        declare(
            "cpu_wake_latency_us",
            -1,
            _int_range(
                -1,
                1_000_000,
                "while active, hold the CPUs' wake latency at most this (µs) through /dev/cpu_dma_latency "
                "(0: no idle state that is slow to leave; -1: leave the system's setting)",
            ),
        )
        declare(
            "trusted_public_key_path",
            "",
            ParameterDescriptor(
                description="Ed25519 PEM public key: run only bundles it signed ('' = unsigned allowed)"
            ),
        )
        # The node's whole state; what configure makes is None until it has.
        self.lock = threading.Lock()
        """Held by sensor callbacks, parameter changes and a tick's read of the inputs."""
        self.counters: Counter[str] = Counter()
        """Every ``count.<reason>`` of diagnostics that the node itself counts."""
        self.configured = False
        self.has_commanded = False
        """A command went out since activation: there is something to hold."""
        self.manifest: CommonManifest | None = None
        self.controller: OnlineAdaptiveController | RecurrentPolicyController | None = None
        self.interface: str | None = None
        """``command_interface``: one of :data:`COMMAND_INTERFACES`."""
        self.command_low: np.ndarray | None = None
        self.command_high: np.ndarray | None = None
        """Commands are clamped to ``[command_low, command_high]``, ``min(bundle, robot)``."""
        self.hold_mode: str | None = None
        self.hold_damping_nms_per_rad: float | None = None
        self.stamps: StampPolicy | None = None
        self.sensors: SensorAssembler | None = None
        self.watchdog: StreamWatchdog | None = None
        self.schedule: TickSchedule | None = None
        """When a tick runs, and the tick history behind the rate and latency figures."""
        self.stage_ms: dict[str, deque[float]] = {}
        """Each of :data:`TICK_STAGES`' last durations (ms), a ring per stage."""
        self.entities: list[Subscription | Service] = []
        """Subscriptions and services made by on_configure, released by cleanup and shutdown."""
        self.command_publisher: LifecyclePublisher | None = None
        self.diagnostics_publisher: LifecyclePublisher | None = None
        self.timer: Timer | None = None
        """The watchdog and fallback tick, made by activate: None while the node is inactive."""
        self.diagnostics_timer: Timer | None = None
        self.wake_latency = CpuWakeLatencyRequest()
        """Held from activate to deactivate when ``cpu_wake_latency_us`` >= 0."""
        self.add_on_set_parameters_callback(self.on_set_parameters)

    # -- lifecycle ---------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load and check the bundle, then create the node's entities; on any failure, log why
        (the error's message), release whatever was created and stay unconfigured."""
        self.get_logger().info(f"configuring: loading bundle {self.get_parameter('bundle_path').value!r}")
        try:
            self._configure()
        except ConfigureRefused as error:
            self.get_logger().error(f"configure failed: {error}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        except Exception as error:  # anything a bundle or a parameter can provoke: logged, never raised
            self.get_logger().error(f"configure failed: {type(error).__name__}: {error}")
            self.counters["configure_error"] += 1
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.configured = True
        self.get_logger().info(
            f"configured: bundle for '{self.manifest.robot}' ({self.manifest.mode}), {self.interface} commands, "
            f"hold {self.hold_mode}"
        )
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        """The configure steps in order; each raises :class:`ConfigureRefused` with the reason,
        and the parameters are checked before anything is loaded or created."""
        interface, hold_mode = self._check_parameters()
        manifest = self._load_controller(interface)
        self.command_low, self.command_high = self._command_limits(
            manifest, self.get_parameter("robot_description").value
        )
        self.interface = interface
        self.hold_mode = hold_mode
        self.hold_damping_nms_per_rad = self.get_parameter("hold_damping_nms_per_rad").value
        streams = self._make_input_pipeline(manifest)
        self._make_subscriptions(manifest, streams)
        self._make_publishers(interface)
        self._make_services()

    def _check_parameters(self) -> tuple[str, str]:
        """The ``command_interface`` and ``hold_mode`` chosen, once they and the topic names are valid."""
        p = self.get_parameter
        interface = p("command_interface").value
        if interface not in COMMAND_INTERFACES:
            raise ConfigureRefused(f"command_interface={interface!r} is not one of {COMMAND_INTERFACES}")
        hold_mode = p("hold_mode").value
        if hold_mode not in HOLD_MODES:
            raise ConfigureRefused(f"hold_mode={hold_mode!r} is not one of {HOLD_MODES}")
        empty = [name for name in TOPIC_PARAMETERS if not str(p(name).value).strip()]
        if empty:
            raise ConfigureRefused(f"empty topic name for {empty}")
        return interface, hold_mode

    def _load_controller(self, interface: str) -> CommonManifest:
        """Load and check the bundle into :attr:`controller`; refuse one that does not fit this
        node's rate or command interface. Returns its manifest."""
        p = self.get_parameter
        try:
            self.controller = load_controller(
                p("bundle_path").value,
                expected_robot=p("expected_robot").value or None,
                intra_op_threads=p("intra_op_threads").value,
                adapt_every_n_ticks=p("adapt_every_n_ticks").value,
                adaptation_enabled=p("enable_adaptation").value,
                trusted_public_key=p("trusted_public_key_path").value or None,
                adapt_after_command=p("adapt_after_publish").value,
            )
        except (BundleError, OSError, ValueError, KeyError, TypeError) as error:
            self.counters["bundle_refused"] += 1
            raise ConfigureRefused(f"refusing bundle: {type(error).__name__}: {error}") from error
        manifest = self.manifest = self.controller.runtime.manifest
        if not math.isclose(p("control_rate_hz").value, manifest.control_rate_hz):
            # The model predicts one bundle period ahead: another tick rate would feed it wrong steps.
            raise ConfigureRefused(
                f"control_rate_hz={p('control_rate_hz').value:g} Hz differs from the bundle's "
                f"{manifest.control_rate_hz:g} Hz (its model steps one bundle period); set control_rate_hz to "
                f"{manifest.control_rate_hz:g}"
            )
        if interface == "twist" and manifest.command_interface != "twist":
            raise ConfigureRefused(f"bundle for '{manifest.robot}' commands efforts; it cannot drive a twist interface")
        return manifest

    def _make_input_pipeline(self, manifest: CommonManifest) -> list[str]:
        """The stamp policy, sensor assembly, per-stream watchdog and tick schedule, all fresh.
        Returns the required streams: joint states, reference, and IMU/odometry if the bundle reads them."""
        p = self.get_parameter
        self.stamps = StampPolicy(p("future_stamp_tolerance_s").value, p("clock_restart_s").value)
        self.sensors = SensorAssembler(
            manifest.state_fields, manifest.reference_fields, manifest.joint_names, self.stamps
        )
        streams = ["joint_states", "reference"]
        streams += [s for s in ("imu", "odom") if any(f.startswith(f"{s}.") for f in manifest.state_fields)]
        self.watchdog = StreamWatchdog({s: self._stream_timeout_s(s) for s in streams})
        self.schedule = TickSchedule(1.0 / p("control_rate_hz").value, p("reference_wait_s").value)
        self.stage_ms = {stage: deque(maxlen=HISTORY_LENGTH) for stage in TICK_STAGES}
        self._forget_stream_state()
        return streams

    def _make_subscriptions(self, manifest: CommonManifest, streams: list[str]) -> None:
        """One guarded subscription per required stream; the reference is a Twist for a base."""
        p, guard, sub = self.get_parameter, self._guarded, self.create_subscription
        joint_reference = not any(f.startswith("reference.twist") for f in manifest.reference_fields)
        self.in_step_streams = [
            s for s in ("reference", "imu", "odom") if s in streams and (s != "reference" or joint_reference)
        ]
        self.entities.append(
            sub(
                JointState,
                p("joint_states_topic").value,
                guard("joint_states", self.on_joint_states),
                qos_profile_sensor_data,
            )
        )
        if "imu" in streams:
            self.entities.append(sub(Imu, p("imu_topic").value, guard("imu", self.on_imu), qos_profile_sensor_data))
        if "odom" in streams:
            self.entities.append(
                sub(Odometry, p("odom_topic").value, guard("odom", self.on_odom), qos_profile_sensor_data)
            )
        if any(f.startswith("reference.twist") for f in manifest.reference_fields):
            self.entities.append(
                sub(Twist, p("reference_topic").value, guard("reference", self.on_reference_twist), 10)
            )
        else:
            self.entities.append(
                sub(JointState, p("reference_topic").value, guard("reference", self.on_reference_joints), 10)
            )

    def _make_publishers(self, interface: str) -> None:
        """The command publisher (its message type the interface's) and ``/diagnostics``."""
        message_type = {"effort_forward": Float64MultiArray, "joint_trajectory": JointTrajectory, "twist": Twist}[
            interface
        ]
        self.command_publisher = self.create_lifecycle_publisher(
            message_type, self.get_parameter("command_topic").value, 10
        )
        self.diagnostics_publisher = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)

    def _make_services(self) -> None:
        """``~/reset_adaptation`` and ``~/enable_adaptation``, guarded."""
        self.entities += [
            self.create_service(
                Trigger, "~/reset_adaptation", self._guarded_service("reset_adaptation", self.on_reset_adaptation)
            ),
            self.create_service(
                SetBool, "~/enable_adaptation", self._guarded_service("enable_adaptation", self.on_enable_adaptation)
            ),
        ]

    def _command_limits(self, manifest: CommonManifest, robot_description: str) -> tuple[np.ndarray, np.ndarray]:
        """``min(bundle, robot)``; a bundle wider than the robot's URDF limits is refused."""
        if not robot_description.strip():
            return manifest.action_low, manifest.action_high
        try:
            limits = parse_urdf_limits(robot_description)
            return allowed_command_limits(
                limits, manifest.joint_names, manifest.command_interface, manifest.action_low, manifest.action_high
            )
        except RobotLimitsError as error:
            self.counters["bundle_refused"] += 1
            raise ConfigureRefused(str(error)) from error

    def _stream_timeout_s(self, stream: str) -> float:
        own = self.get_parameter(STREAM_TIMEOUT_PARAMETERS[stream]).value
        return own if own > 0 else self.get_parameter("stale_timeout_s").value

    def _forget_stream_state(self) -> None:
        """Stamps, receipts and the waiting state start again (configure, activate)."""
        self.sensors.forget_stamps()
        self.watchdog.forget()
        self.schedule.forget_states()
        self.has_commanded = False

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        with self.lock:
            self._forget_stream_state()
        self.timer = self.create_timer(self.schedule.period_s, self._guarded("timer", self.on_timer))
        self.diagnostics_timer = self.create_timer(1.0, self._guarded("diagnostics", self.publish_diagnostics))
        self._hold_wake_latency()
        return super().on_activate(state)

    def _hold_wake_latency(self) -> None:
        """The ``cpu_wake_latency_us`` request, if one is asked for; a system that does not grant
        it costs latency, not safety, so the node runs on without it and says why."""
        bound_us = self.get_parameter("cpu_wake_latency_us").value
        if bound_us < 0:
            return
        try:
            self.wake_latency.hold(bound_us)
        except OSError as error:
            self.counters["cpu_wake_latency_refused"] += 1
            self.get_logger().warning(
                f"cpu_wake_latency_us={bound_us}: not held, the CPUs idle as the system allows "
                f"({error.strerror}: {self.wake_latency.device})"
            )
            return
        self.get_logger().info(f"CPU wake latency held at most {bound_us} µs while active")

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_commanding()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """From any state: a final hold if the node was commanding, then nothing is left running."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self.get_logger().error(f"error in state {state.label!r}: stopping commands and releasing everything")
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_commanding(self) -> None:
        """End commanding for good: the hold goes out once (so the last command does not stay in
        force), then the timers that could command again are destroyed."""
        timers, self.timer, self.diagnostics_timer = (self.timer, self.diagnostics_timer), None, None
        for timer in timers:
            if timer is not None:
                self.destroy_timer(timer)
        self.wake_latency.release()
        if self.has_commanded and self.command_publisher is not None:
            try:
                self._publish_hold(self._stale_now())
            except Exception as error:  # the hold is best effort here; stopping is not
                self.get_logger().error(f"final hold failed: {type(error).__name__}: {error}")
        self.has_commanded = False

    def _release(self) -> None:
        """Stop commanding and destroy everything configure created; safe from any state."""
        if self.controller is not None:
            self._stop_commanding()
        for entity in self.entities:
            destroy = self.destroy_service if isinstance(entity, Service) else self.destroy_subscription
            destroy(entity)
        self.entities = []
        for publisher in (self.command_publisher, self.diagnostics_publisher):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self.command_publisher = self.diagnostics_publisher = None
        self.manifest = self.controller = None
        self.configured = False

    # -- parameters --------------------------------------------------------------------
    def on_set_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """A change either takes effect now or is refused with the reason: configure-time
        parameters are refused while configured; run-time ones are checked and applied."""
        names = {parameter.name for parameter in parameters}
        frozen = sorted(names & CONFIGURE_ONLY_PARAMETERS)
        if self.configured and frozen:
            return SetParametersResult(
                successful=False, reason=f"{frozen} apply at configure only: deactivate and clean up first"
            )
        for parameter in parameters:
            if parameter.name == "hold_mode" and parameter.value not in HOLD_MODES:
                return SetParametersResult(successful=False, reason=f"hold_mode must be one of {HOLD_MODES}")
        if self.configured:
            with self.lock:
                self._apply_run_time(parameters)
        return SetParametersResult(successful=True)

    def _apply_run_time(self, parameters: list[Parameter]) -> None:
        values = {parameter.name: parameter.value for parameter in parameters}
        for stream in self.watchdog.streams:
            name = STREAM_TIMEOUT_PARAMETERS[stream]
            own = values.get(name, self.get_parameter(name).value)
            default = values.get("stale_timeout_s", self.get_parameter("stale_timeout_s").value)
            self.watchdog.set_timeout(stream, own if own > 0 else default)
        if "enable_adaptation" in values:
            self.controller.set_adaptation_enabled(bool(values["enable_adaptation"]))
        if "reference_wait_s" in values:
            self.schedule.reference_wait_s = values["reference_wait_s"]
        if "future_stamp_tolerance_s" in values:
            self.stamps.future_tolerance_s = values["future_stamp_tolerance_s"]
        if "clock_restart_s" in values:
            self.stamps.clock_restart_s = values["clock_restart_s"]
        if "hold_mode" in values:
            self.hold_mode = values["hold_mode"]
        if "hold_damping_nms_per_rad" in values:
            self.hold_damping_nms_per_rad = values["hold_damping_nms_per_rad"]

    # -- guard -------------------------------------------------------------------------
    def _guarded(self, name: str, callback: Callable[..., None]) -> Callable[..., None]:
        """``callback`` (a subscription's or a timer's) such that no exception leaves it, so none
        reaches the executor: an error is counted as ``callback_error.<name>`` and logged, at
        most once a second."""

        def guarded(*args) -> None:
            try:
                callback(*args)
            except Exception as error:
                self._count_callback_error(name, error)

        return guarded

    def _guarded_service(self, name: str, callback: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """A service callback that answers ``success: false`` with the error's message instead
        of raising; counted and logged like :meth:`_guarded`."""

        def guarded(request, response):
            try:
                return callback(request, response)
            except Exception as error:
                self._count_callback_error(name, error)
                response.success, response.message = False, f"{type(error).__name__}: {error}"
                return response

        return guarded

    def _count_callback_error(self, name: str, error: Exception) -> None:
        self.counters[f"callback_error.{name}"] += 1
        self.get_logger().error(
            f"{name} callback failed: {type(error).__name__}: {str(error)[:500]}", throttle_duration_sec=1.0
        )

    # -- sensors ---------------------------------------------------------------------
    def _now_s(self) -> float | None:
        """This node's clock (what stamps are compared with), in s; ``None`` while it reads zero
        (``use_sim_time`` before the first ``/clock``), when no stamp can be judged in the future."""
        nanoseconds = self.get_clock().now().nanoseconds
        return nanoseconds * 1e-9 if nanoseconds > 0 else None

    def _accept(self, stream: str, update: Callable[..., list[str] | None], *args: object) -> bool:
        """Apply a sensor update; count and log a refused one. True when it was accepted."""
        try:
            with self.lock:
                result = update(*args)
                self.watchdog.valid(stream, time.monotonic())
        except SensorRejected as error:
            self.counters[error.reason] += 1
            self.counters[f"{error.reason}.{stream}"] += 1
            self.get_logger().error(str(error)[:500], throttle_duration_sec=1.0)
            return False
        if result:
            shown = ", ".join(result[:8]) + (f" and {len(result) - 8} more" if len(result) > 8 else "")
            self.get_logger().warning(
                f"joint_states: ignoring joints the bundle does not use: {shown}", throttle_duration_sec=5.0
            )
            self.counters["unknown_joint"] += 1
        return True

    def on_joint_states(self, msg: JointState) -> None:
        started = time.perf_counter()
        accepted = self._accept(
            "joint_states",
            self.sensors.update_joint_states,
            msg.name,
            msg.position,
            msg.velocity,
            _stamp_s(msg.header.stamp),
            self._now_s(),
            msg.effort,
        )
        self.stage_ms["sensors"].append((time.perf_counter() - started) * 1e3)
        if not accepted:
            return
        stamps = self.sensors.last_stamp_s
        if self.schedule.state_arrived(stamps["joint_states"], self._in_step_stamp_s(), time.perf_counter()):
            self._tick_if_active()

    def _in_step_stamp_s(self) -> float | None:
        """The oldest last stamp of the stamped streams a tick reads beside the joint states (a
        JointState reference, the IMU, odometry); None before each has been heard.

        The schedule's wait for the reference of the state's own stamp covers them all: a base's
        state is assembled from joint states, odometry and IMU published together, and ticking on
        the joint states alone would plan on the previous step's odometry whenever it is delivered
        later (issue 13: over ROS, the Husky's loop then differs from run to run in lock-step)."""
        stamps = self.sensors.last_stamp_s
        companions = [stamps.get(stream) for stream in self.in_step_streams]
        return None if not companions or None in companions else min(companions)

    def _companion_arrived(self) -> None:
        """A stamped stream the untreated state may be waiting for has come: tick if it was the last."""
        if self.schedule.reference_arrived(self._in_step_stamp_s(), time.perf_counter()):
            self._tick_if_active()

    def _tick_if_active(self) -> None:
        """A tick the schedule calls for on a message (latency = compute only); none while inactive."""
        if self.timer is not None:
            self.on_tick()

    def on_reference_joints(self, msg: JointState) -> None:
        accepted = self._accept(
            "reference",
            self.sensors.update_reference_joints,
            msg.name,
            msg.position,
            msg.velocity,
            _stamp_s(msg.header.stamp),
            self._now_s(),
        )
        if accepted:
            self._companion_arrived()  # the reference a waiting state was held back for

    def on_reference_twist(self, msg: Twist) -> None:
        self._accept("reference", self.sensors.update_reference_twist, msg.linear.x, msg.angular.z)

    def on_imu(self, msg: Imu) -> None:
        q, w = msg.orientation, msg.angular_velocity
        accepted = self._accept(
            "imu",
            self.sensors.update_imu,
            (q.x, q.y, q.z, q.w),
            (w.x, w.y, w.z),
            _stamp_s(msg.header.stamp),
            self._now_s(),
        )
        if accepted:
            self._companion_arrived()

    def on_odom(self, msg: Odometry) -> None:
        t = msg.twist.twist
        accepted = self._accept(
            "odom",
            self.sensors.update_odom_twist,
            (t.linear.x, t.linear.y, t.linear.z),
            (t.angular.x, t.angular.y, t.angular.z),
            _stamp_s(msg.header.stamp),
            self._now_s(),
        )
        if accepted:
            self._companion_arrived()

    # -- control ---------------------------------------------------------------------
    def _stale_now(self) -> list[str]:
        return self.watchdog.stale(time.monotonic())

    def on_timer(self) -> None:
        """Watchdog and fallback clock, acting only when no joint state has driven a tick for 1.5
        periods: a new state the rate cap skipped gets its tick; a stale (or never received, or
        only invalid) required stream gets the safe hold. Merely late sensors get nothing new:
        re-planning on a state already acted on would put a duplicate transition into the
        adaptation window, and the command already sent stays in force until the next
        measurement or the stream's timeout. Until the first complete state (joints and
        reference) the node commands nothing: it has not acted, so it has nothing to hold, and a
        zero command would override whatever holds the robot before it is heard."""
        if not self.schedule.timer_may_act(time.perf_counter()):
            return
        with self.lock:
            never_heard = not self.watchdog.heard_any()
            stale = bool(self._stale_now())
        if never_heard:
            self.get_logger().warning("no sensor message yet: commanding nothing", throttle_duration_sec=2.0)
            self.counters["waiting_for_sensors"] += 1
            return
        if self.schedule.timer_tick_due(time.perf_counter(), stale):
            self.on_tick()

    def on_tick(self) -> None:
        """One control step; a step that fails for any reason holds, is counted as
        ``tick_error`` and logged (at most once a second), and the node keeps serving."""
        started = time.perf_counter()
        self.schedule.tick_started(started)
        commanded = None
        try:
            commanded = self._tick()
        except Exception as error:
            self.counters["tick_error"] += 1
            self.get_logger().error(
                f"tick failed, holding: {type(error).__name__}: {str(error)[:500]}", throttle_duration_sec=1.0
            )
            self.schedule.state_treated()
            self._publish_hold(self._stale_now())
        if self.schedule.tick_finished(started, time.perf_counter(), commanded):
            self.counters["overrun"] += 1

    def _tick(self) -> float | None:
        """The tick's work; returns when its command was published (``perf_counter``), ``None``
        when it published none or a hold."""
        with self.lock:
            stale = self._stale_now()
            ready = self.sensors.state.complete() and self.sensors.reference.complete()
            state, reference = self.sensors.state.values.copy(), self.sensors.reference.values.copy()
        published = None
        if not stale and ready:
            started = time.perf_counter()
            command = self.controller(state, reference)
            planned = time.perf_counter()
            adapt_in_call_s = self.controller.last_adapt_s
            self.has_commanded = True
            self.schedule.state_treated()
            self.publish_command(command)
            published = time.perf_counter()
            # For the next tick, now that the command is out: the adaptation (adapt_after_publish)
            # and the next plan's noise; same executor, so no sensor callback or tick runs until it ends.
            self.controller.after_command()
            self.stage_ms["adapt"].append(self.controller.last_adapt_s * 1e3)
            self.stage_ms["plan"].append((planned - started - adapt_in_call_s) * 1e3)
            self.stage_ms["publish"].append((published - planned) * 1e3)
        elif self.has_commanded:
            self.counters["stale_hold" if stale else "incomplete_hold"] += 1
            for stream in stale:
                self.counters[f"stale_hold.{stream}"] += 1
            self.schedule.state_treated()
            self._publish_hold(stale)
        else:
            # Nothing commanded since activation: nothing to hold, and no reason to act yet. The
            # state stays untreated, so the watchdog acts on it once the rest (the reference)
            # arrives: a lock-step robot repeats that same state until it is answered.
            self.counters["waiting_for_sensors"] += 1
        return published

    def _publish_hold(self, stale: list[str]) -> None:
        """Publish the interface's safe hold (``metarl_ros.safe_hold``); damping uses the
        measured velocity only while the joint states are fresh."""
        manifest = self.manifest
        velocities = positions = None
        if manifest.command_interface != "twist":
            values = dict(zip(self.sensors.state.fields, self.sensors.state.values, strict=True))
            joints = manifest.joint_names
            measured = [values.get(f"joint_states.position:{j}", np.nan) for j in joints]
            positions = np.array(measured) if np.all(np.isfinite(measured)) else None
            if "joint_states" not in stale:
                velocities = np.array([values.get(f"joint_states.velocity:{j}", np.nan) for j in joints])
        hold = safe_hold(
            self.interface,
            self.hold_mode,
            self.hold_damping_nms_per_rad,
            self.command_low,
            self.command_high,
            velocities,
            positions,
        )
        self.controller.hold(hold.command)
        if hold.positions_rad is not None:
            point = JointTrajectoryPoint(
                positions=[float(v) for v in hold.positions_rad], velocities=[0.0] * len(hold.positions_rad)
            )
            point.time_from_start.nanosec = int(self.schedule.period_s * 1e9)
            self.command_publisher.publish(JointTrajectory(joint_names=list(manifest.joint_names), points=[point]))
            return
        self.publish_command(hold.command)

    def publish_command(self, command: np.ndarray) -> None:
        """Publish a command, never NaN or inf and always within ``min(bundle, robot)`` limits."""
        manifest = self.manifest
        command = np.clip(
            np.nan_to_num(np.asarray(command, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0),
            self.command_low,
            self.command_high,
        )
        if self.interface == "effort_forward":
            self.command_publisher.publish(Float64MultiArray(data=[float(v) for v in command]))
        elif self.interface == "joint_trajectory":
            point = JointTrajectoryPoint(effort=[float(v) for v in command])
            point.time_from_start.nanosec = int(self.schedule.period_s * 1e9)
            self.command_publisher.publish(JointTrajectory(joint_names=list(manifest.joint_names), points=[point]))
        else:
            v, w = wheel_speeds_to_twist(
                float(command[0]), float(command[1]), manifest.wheel_radius_m, manifest.track_width_m
            )
            msg = Twist()
            msg.linear.x, msg.angular.z = v, w
            self.command_publisher.publish(msg)

    def publish_diagnostics(self) -> None:
        schedule = self.schedule
        counts = self.counters + self.sensors.noted
        stale = self._stale_now()
        values = {
            "loop_rate_hz": f"{schedule.loop_rate_hz():.1f}",
            "tick_latency_p50_ms": f"{schedule.tick_latency_ms(50):.3f}",
            "tick_latency_p99_ms": f"{schedule.tick_latency_ms(99):.3f}",
            "ticks": str(schedule.tick_count),
            **self._stage_values(),
            "mode": self.manifest.mode,
            **self.controller.diagnostic_values(),
            "adaptation_enabled": str(self.controller.adaptation_enabled),
            "hold_mode": self.hold_mode,
            "stale_stream": ",".join(stale),
            **{f"count.{k}": str(v) for k, v in sorted(counts.items())},
        }
        level = DiagnosticStatus.WARN if stale or self.counters.get("tick_error") else DiagnosticStatus.OK
        status = DiagnosticStatus(
            level=level,
            name="metarl/adaptive_controller",
            message=f"holding: stale {','.join(stale)}" if stale else "running",
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(array)

    def _stage_values(self) -> dict[str, str]:
        """p50 and p99 (ms) of each of :data:`TICK_STAGES` over the last ticks ("nan" before any)."""
        values = {}
        for stage, history in self.stage_ms.items():
            samples = np.asarray(history) if history else np.full(1, np.nan)
            values[f"stage.{stage}_p50_ms"] = f"{np.percentile(samples, 50):.3f}"
            values[f"stage.{stage}_p99_ms"] = f"{np.percentile(samples, 99):.3f}"
        return values

    # -- services ----------------------------------------------------------------------
    def on_reset_adaptation(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """Back to the meta-parameters (or a zero hidden state), and every stream's stamp
        history starts again (a driver whose clock jumped is heard again at once)."""
        with self.lock:
            self.controller.reset()
            self.sensors.forget_stamps()
            self.schedule.forget_last_stamp()
        recurrent = self.manifest.mode == "recurrent"
        start = "a zero hidden state (a new trial)" if recurrent else "the meta-learned parameters"
        response.success, response.message = True, f"adaptation reset to {start}"
        return response

    def on_enable_adaptation(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        """Set the ``enable_adaptation`` parameter, which applies it (:meth:`on_set_parameters`):
        the service and the parameter are one switch, so reading the parameter tells the truth."""
        result = self.set_parameters([Parameter("enable_adaptation", value=bool(request.data))])[0]
        if not result.successful:
            response.success, response.message = False, f"enable_adaptation refused: {result.reason}"
            return response
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
