"""adaptive_controller runs a bundle only at the bundle's own control rate: a model that predicts
one 10 ms step ahead, ticked every 20 ms, would be fed the wrong transitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycle_msgs.msg import Transition

from sim.panda_payload import PANDA

from .ros_harness import change_state, start_node, stop
from .untrained_bundles import untrained_bundle


@pytest.fixture(scope="module")
def panda_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_bundle(PANDA, tmp_path_factory.mktemp("bundle") / "panda")


@pytest.mark.integration
def test_a_control_rate_other_than_the_bundles_is_refused_at_configure(
    ros_node, panda_bundle: Path, tmp_path: Path
) -> None:
    log = tmp_path / "controller.log"
    controller = start_node("adaptive_controller", {"bundle_path": str(panda_bundle), "control_rate_hz": 50.0}, log)
    try:
        assert not change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert controller.poll() is None, "a refused configuration must leave the node up, unconfigured"
    finally:
        stop(controller)
    assert "control_rate_hz=50 Hz differs from the bundle's 100 Hz" in log.read_text()


@pytest.mark.integration
def test_the_bundles_own_control_rate_configures(ros_node, panda_bundle: Path, tmp_path: Path) -> None:
    log = tmp_path / "controller.log"
    controller = start_node("adaptive_controller", {"bundle_path": str(panda_bundle), "control_rate_hz": 100.0}, log)
    try:
        assert change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE), log.read_text()
    finally:
        stop(controller)
