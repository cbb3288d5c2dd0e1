"""``~/enable_adaptation`` and the ``enable_adaptation`` parameter are one switch: the real node in
process, switched by the service, read back through the parameter (and the other way round)."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from .conftest import InProcessController


@pytest.mark.integration
def test_the_enable_adaptation_service_updates_the_parameter(in_process_controller: InProcessController) -> None:
    node, executor = in_process_controller.node, in_process_controller.executor
    client = in_process_controller.probe.create_client(SetBool, "/adaptive_controller/enable_adaptation")
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
