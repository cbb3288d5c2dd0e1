"""A residual RL² bundle (issue 18) trained in this test closes the loop over real ROS 2 topics:
``sim_bridge`` (Panda, lock-step) and ``adaptive_controller`` as separate processes, a payload
0 -> 4 kg mid-run (the demo's own session, ``experiments.payload_switch_session``).

What can fail: a command that is not finite or beyond the effort limits, a lost tick, an arm that
does not track (the nominal controller under the policy keeps the error small), and a command
farther from the nominal computed torque than the residual's bound, which the numpy nominal
arm recomputes here from the states and references the bridge published."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.payload_switch_session import run_session
from export.recurrent_export import export_recurrent_bundle
from metarl_core.model_based.residual_train import panda_nominal
from metarl_core.policy.train import load_policy_config, train_policy
from metarl_runtime.residual_action import ResidualTorque
from sim.baseline_controllers import PandaPDGravityController
from sim.panda_payload import PANDA
from sim.scenarios.payload_switch import SWITCH_S, ObservationController, run_payload_switch

ROOT = Path(__file__).resolve().parents[2]
DURATION_S = 3.0
LOW, HIGH = np.array(PANDA.action_low), np.array(PANDA.action_high)
FRACTION = 0.1
ERROR_MARGIN = 1.25
"""The run's largest RMS joint error may exceed the nominal controller's on the same switch by
this factor: a correction of 10 % of the effort limits moves it little, a policy whose action were
read as a raw torque (or fought the nominal controller) would not track at all."""


@pytest.fixture(scope="module")
def residual_rl2_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("residual_rl2")
    config = load_policy_config(ROOT / "configs" / "panda_rl2_residual_tiny.yaml")
    assert config.action == "residual" and config.residual_torque_fraction == FRACTION
    return export_recurrent_bundle(train_policy(config, root / "run"), root / "bundle")


def nominal_torques(joint_states: dict[float, np.ndarray], references: dict[float, np.ndarray]) -> np.ndarray:
    """The nominal computed torque at every published stamp, in time order, as the controller's
    ``ResidualTorque`` computes it (reference acceleration from consecutive reference velocities)."""
    arm = panda_nominal().arm(PANDA.joint_names, 1.0 / PANDA.control_rate_hz)
    residual = ResidualTorque(arm, FRACTION, LOW, HIGH)
    stamps = sorted(set(joint_states) & set(references))
    return np.array(
        [np.clip(residual.nominal(np.concatenate([joint_states[s], references[s]]))[0], LOW, HIGH) for s in stamps]
    )


@pytest.mark.integration
def test_residual_rl2_bundle_tracks_through_a_payload_switch_within_its_bound(
    ros_node, residual_rl2_bundle: Path, tmp_path: Path
) -> None:
    run = run_session(ros_node, residual_rl2_bundle, tmp_path, True, seed=3, switch_s=SWITCH_S, duration_s=DURATION_S)
    commands = run.commands
    assert np.all(np.isfinite(commands)), "a non-finite command was published"
    assert np.all(commands >= LOW - 1e-9) and np.all(commands <= HIGH + 1e-9), "a command beyond the effort limits"
    assert abs(len(commands) - DURATION_S * PANDA.control_rate_hz) <= 5, len(commands)
    assert run.diagnostics.get("mode") == "recurrent" and run.diagnostics["policy_non_finite"] == "0"
    assert float(run.diagnostics["hidden_norm"]) > 0.0, "the policy's hidden state carries the trial"
    nominal_errors, _ = run_payload_switch(ObservationController(PandaPDGravityController()), seed=3)
    nominal_worst = float(np.max(nominal_errors[: len(run.errors)]))
    assert np.max(run.errors) <= ERROR_MARGIN * nominal_worst, (np.max(run.errors), nominal_worst)

    # Each command is the nominal torque of the state it answered plus at most the bound: find
    # the alignment of commands to published states (the first states precede activation).
    nominal = nominal_torques(run.joint_states, run.references)
    bound = FRACTION * HIGH + 1e-6
    fits = [
        offset
        for offset in range(len(nominal) - len(commands) + 1)
        if np.all(np.abs(commands - nominal[offset : offset + len(commands)]) <= bound)
    ]
    assert fits, "no alignment of commands to states keeps every command within the residual's bound"
    corrections = np.abs(commands - nominal[fits[0] : fits[0] + len(commands)])
    print(
        f"worst RMS error {np.max(run.errors):.4f} rad (nominal alone {nominal_worst:.4f}); largest correction "
        f"{np.max(corrections / (FRACTION * HIGH)):.3f} of its bound; alignments {fits}"
    )
    assert np.max(corrections / (FRACTION * HIGH)) > 1e-3, "the policy's correction, not the nominal controller alone"
