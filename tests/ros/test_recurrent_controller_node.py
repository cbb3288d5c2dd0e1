"""adaptive_controller with a ``mode: recurrent`` (RL²) bundle, over real topics and services."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from std_srvs.srv import SetBool, Trigger

from sim.panda_payload import PANDA

from .ros_harness import call, change_state, spin_until, start_node, stop
from .test_controller_node import Probe
from .untrained_bundles import untrained_recurrent_panda_bundle


@pytest.mark.integration
def test_recurrent_bundle_commands_within_limits_and_its_hidden_state_obeys_the_services(
    ros_node, tmp_path: Path
) -> None:
    bundle = untrained_recurrent_panda_bundle(tmp_path / "rl2")
    controller = start_node(
        "adaptive_controller", {"bundle_path": str(bundle), "expected_robot": "panda"}, tmp_path / "c.log"
    )
    probe = Probe(ros_node)
    reset = ros_node.create_client(Trigger, "/adaptive_controller/reset_adaptation")
    enable = ros_node.create_client(SetBool, "/adaptive_controller/enable_adaptation")
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_ACTIVATE)
        probe.stream(1.5)
        probe.stream(20.0, until=lambda: len(probe.commands) > 50)  # a loaded machine answers slower
        assert len(probe.commands) > 50, len(probe.commands)
        commands = np.array([c for _, c in probe.commands])
        assert np.all(np.isfinite(commands))
        assert np.all(commands >= PANDA.action_low) and np.all(commands <= PANDA.action_high)
        assert np.abs(commands).max() > 1.0, "the policy's commands, not the hold"
        assert spin_until(ros_node, lambda: probe.diagnostics.get("mode") == "recurrent", 3)
        assert float(probe.diagnostics["hidden_norm"]) > 0.0
        assert probe.diagnostics["policy_non_finite"] == "0"

        answer = call(ros_node, reset, Trigger.Request())
        assert answer.success and "zero hidden state" in answer.message
        assert call(ros_node, enable, SetBool.Request(data=False)).success
        probe.diagnostics.clear()
        probe.stream(1.2)
        assert spin_until(ros_node, lambda: probe.diagnostics.get("adaptation_enabled") == "False", 3)
        assert probe.diagnostics["hidden_norm"] == "0", "disabled adaptation freezes the hidden state at zero"
        assert int(probe.diagnostics["trials"]) == 2
        commands = np.array([c for _, c in probe.commands])
        assert np.all(np.isfinite(commands))
        assert np.all(commands >= PANDA.action_low) and np.all(commands <= PANDA.action_high)
        assert controller.poll() is None
    finally:
        stop(controller)
