"""``~/enable_adaptation`` and the ``enable_adaptation`` parameter are one switch: the real node in
process, switched by the service, read back through the parameter (and the other way round)."""

from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from metarl_ros.adaptive_controller import AdaptiveControllerNode
from sim.panda_payload import PANDA

from .untrained_bundles import untrained_bundle


@pytest.mark.integration
def test_the_enable_adaptation_service_updates_the_parameter(tmp_path: Path) -> None:
    bundle = untrained_bundle(PANDA, tmp_path / "panda")
    rclpy.init()
    try:
        node = AdaptiveControllerNode(parameter_overrides=[Parameter("bundle_path", value=str(bundle))])
        probe = rclpy.create_node("enable_adaptation_probe")
        client = probe.create_client(SetBool, "/adaptive_controller/enable_adaptation")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.add_node(probe)
        node.trigger_configure()
        assert client.wait_for_service(timeout_sec=10.0)

        def switch(enabled: bool) -> SetBool.Response:
            future = client.call_async(SetBool.Request(data=enabled))
            executor.spin_until_future_complete(future, timeout_sec=10.0)
            return future.result()

        answer = switch(False)
        assert answer.success and answer.message == "adaptation disabled"
        assert node.get_parameter("enable_adaptation").value is False
        assert node.controller.adaptation_enabled is False
        answer = switch(True)
        assert answer.success and answer.message == "adaptation enabled"
        assert node.get_parameter("enable_adaptation").value is True
        assert node.controller.adaptation_enabled is True
        node.set_parameters([Parameter("enable_adaptation", value=False)])
        assert node.controller.adaptation_enabled is False, "the parameter switches the controller too"
        node.trigger_shutdown()
        executor.shutdown()
        node.destroy_node()
        probe.destroy_node()
    finally:
        rclpy.try_shutdown()
