"""The Husky's loop over real ROS 2 topics: sim_bridge (HuskyTerrain, lock-step) and
adaptive_controller as separate processes, a bundle meta-trained on ``configs/husky_tiny.yaml``
and exported in this test, commanding wheel speeds through the ``twist`` interface. The same run
with adaptation on and off: adapting must track the bridge's twist reference better."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import Transition
from nav_msgs.msg import Odometry
from rclpy.qos import qos_profile_sensor_data

from export.onnx_export import export_bundle
from metarl_core.model_based.train import run_training
from sim.husky_terrain import HUSKY
from sim.scenarios.terrain_change import PATCH, summarize

from .ros_harness import change_state, set_double, spin_until, start_node, stop

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 3.0
SETTLE_S = 0.5
TASK = {"payload_mass_kg": 35.0, "motor_strength_scale": 0.8}
"""A loaded robot on worn motors, inside the training ranges: the meta-learned model's average
robot is not this one, so the window has something to adapt to. (At 0.6 strength the wheels
saturate on this reference whatever is commanded, and adaptation on and off drive identically.)"""


@pytest.fixture(scope="module")
def husky_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("husky_trained")
    run = run_training(ROOT / "configs" / "husky_tiny.yaml", root / "run", "cpu", resume=False)
    return export_bundle(run, root / "bundle")


def _twist_errors(
    ros_node,
    bundle: Path,
    log_dir: Path,
    adaptation: bool,
    duration_s: float = DURATION_S,
    change_at_s: float | None = None,
) -> tuple[np.ndarray, list[Twist]]:
    """Twist error (m/s, as the env's) per odometry message from ``SETTLE_S``, against the latest
    reference; with ``change_at_s``, the bridge's ground friction becomes the terrain-change
    patch's once sim time reaches it (a parameter set live, as a user would)."""
    tag = "on" if adaptation else "off"
    bridge = start_node(
        "sim_bridge",
        {"env_id": "metarl/HuskyTerrain-v0", "lock_step": True, "command_topic": "/cmd_vel", "seed": 3, **TASK},
        log_dir / f"bridge_{tag}.log",
    )
    controller = start_node(
        "adaptive_controller",
        {
            "bundle_path": str(bundle),
            "expected_robot": "husky",
            "command_interface": "twist",
            "command_topic": "/cmd_vel",
            "enable_adaptation": adaptation,
            "stale_timeout_s": 1.0,
        },
        log_dir / f"controller_{tag}.log",
    )
    reference: list[np.ndarray] = []
    errors: list[tuple[float, float]] = []
    twists: list[Twist] = []

    def on_odom(msg: Odometry) -> None:
        if reference:
            twist = msg.twist.twist
            linear = twist.linear.x - reference[-1][0]
            angular = (twist.angular.z - reference[-1][1]) * HUSKY.track_width_m / 2.0
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            errors.append((stamp, float(np.hypot(linear, angular))))

    subscriptions = [
        ros_node.create_subscription(Twist, "/reference", lambda m: reference.append((m.linear.x, m.angular.z)), 100),
        ros_node.create_subscription(Odometry, "/odom", on_odom, qos_profile_sensor_data),
        ros_node.create_subscription(Twist, "/cmd_vel", twists.append, 100),
    ]
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        latest = lambda: max((s for s, _ in errors), default=0.0)  # noqa: E731
        if change_at_s is not None:
            assert spin_until(ros_node, lambda: latest() >= change_at_s, 180), f"no {change_at_s} s: see {log_dir}"
            assert set_double(ros_node, "sim_bridge", "ground_friction", PATCH.ground_friction)
        assert spin_until(ros_node, lambda: latest() >= duration_s, 180), f"no {duration_s} s: see {log_dir}"
    finally:
        stop(controller)
        stop(bridge)
        for subscription in subscriptions:
            ros_node.destroy_subscription(subscription)
    settled = np.array([e for s, e in errors if SETTLE_S <= s <= duration_s])
    return settled, twists


@pytest.mark.integration
@pytest.mark.slow
def test_husky_adaptation_beats_adaptation_off_over_ros(ros_node, husky_bundle: Path, tmp_path: Path) -> None:
    runs = {adaptation: _twist_errors(ros_node, husky_bundle, tmp_path, adaptation) for adaptation in (True, False)}
    for errors, twists in runs.values():
        assert len(errors) > 100 and np.all(np.isfinite(errors))
        assert all(np.isfinite(t.linear.x) and np.isfinite(t.angular.z) for t in twists)
    rmse = {a: float(np.sqrt(np.mean(np.square(errors)))) for a, (errors, _) in runs.items()}
    print(f"twist RMSE (m/s) after {SETTLE_S} s: adaptation on {rmse[True]:.4f}, off {rmse[False]:.4f}")
    assert rmse[True] < rmse[False], rmse


@pytest.mark.integration
@pytest.mark.slow
def test_husky_terrain_change_over_ros_stays_safe_and_is_measured(ros_node, husky_bundle: Path, tmp_path: Path) -> None:
    """The terrain change over ROS: the patch's friction set on the bridge at 2 s of sim time. A
    tiny model's figures are printed, not asserted; every command must stay finite and bounded."""
    change_s, duration_s = 2.0, 5.0
    max_linear = HUSKY.action_high[0] * HUSKY.wheel_radius_m
    for adaptation in (True, False):
        errors, twists = _twist_errors(ros_node, husky_bundle, tmp_path, adaptation, duration_s, change_s)
        assert len(errors) > 300 and np.all(np.isfinite(errors))
        assert all(abs(t.linear.x) <= max_linear + 1e-9 for t in twists)
        # errors start at SETTLE_S: shift the change time onto that grid.
        figures = summarize(errors, 100.0, change_s - SETTLE_S)
        print(f"adaptation {'on' if adaptation else 'off'}: {figures}")
        assert np.isfinite(figures["before_change"]) and np.isfinite(figures["steady_after"])
