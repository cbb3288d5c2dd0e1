"""adaptive_controller with ``trusted_public_key_path``: it configures with a bundle that key's
private half signed, and refuses (logging why, and staying alive) an unsigned one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lifecycle_msgs.msg import Transition

from metarl_runtime.bundle_signature import generate_key_pair, sign_manifest
from sim.panda_payload import PANDA

from .ros_harness import change_state, start_node, stop
from .untrained_bundles import untrained_bundle


@pytest.fixture(scope="module")
def bundles_and_key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("signed")
    generate_key_pair(root / "robot.pem", root / "robot.pem.pub")
    unsigned = untrained_bundle(PANDA, root / "unsigned")
    signed = Path(shutil.copytree(unsigned, root / "signed"))
    sign_manifest(signed, root / "robot.pem")
    return {"unsigned": unsigned, "signed": signed, "public_key": root / "robot.pem.pub"}


@pytest.mark.integration
@pytest.mark.parametrize("which", ["signed", "unsigned"])
def test_only_a_bundle_signed_by_the_trusted_key_configures(
    ros_node, bundles_and_key: dict[str, Path], tmp_path: Path, which: str
) -> None:
    log = tmp_path / "controller.log"
    parameters = {
        "bundle_path": str(bundles_and_key[which]),
        "expected_robot": "panda",
        "trusted_public_key_path": str(bundles_and_key["public_key"]),
    }
    controller = start_node("adaptive_controller", parameters, log)
    try:
        configured = change_state(ros_node, "adaptive_controller", Transition.TRANSITION_CONFIGURE)
        assert configured == (which == "signed")
        assert controller.poll() is None, "a refused bundle must not kill the node"
        if which == "unsigned":
            assert "bundle.json.sig: missing; this robot trusts" in log.read_text()
    finally:
        stop(controller)
