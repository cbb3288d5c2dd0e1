"""No exception from a tick or a callback leaves the executor: the real node in process, a tick
made to fail (a fault injected into its controller), the node holding, counting and serving on."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray

from .conftest import InProcessController


class FailingTick:
    """Stands in for a controller whose tick raises (a bundle value or a bug nobody foresaw)."""

    def __init__(self, controller) -> None:
        self.controller = controller
        self.runtime = controller.runtime
        self.adaptation_enabled = controller.adaptation_enabled

    def __call__(self, state, reference):
        raise IndexError("injected fault")

    def __getattr__(self, name):
        return getattr(self.controller, name)


@pytest.mark.integration
def test_a_failing_tick_holds_is_counted_and_the_node_keeps_serving(
    in_process_controller: InProcessController,
) -> None:
    node, probe = in_process_controller.node, in_process_controller.probe
    commands: list[np.ndarray] = []
    probe.create_subscription(
        Float64MultiArray, "/effort_controller/commands", lambda m: commands.append(np.array(m.data)), 100
    )
    node.trigger_configure()
    node.trigger_activate()

    in_process_controller.stream_home(1.0)
    assert commands and not np.all(commands[-1] == 0.0)
    healthy = node.controller
    node.controller = FailingTick(healthy)
    before = len(commands)
    in_process_controller.stream_home(0.5)
    assert node.counters["tick_error"] > 0
    late = commands[before:][-10:]  # the first few may be answers already in flight
    assert len(late) == 10 and all(np.all(c == 0.0) for c in late), "each failed tick holds"
    node.controller = healthy
    recovered_from = len(commands)
    in_process_controller.stream_home(0.5)
    assert any(not np.all(c == 0.0) for c in commands[recovered_from:]), "serving again"
