"""The node adapts after publishing (issue 17): the real node in process, its controller's calls
and its publishes logged in the order they happen, with ``adapt_after_publish`` on and off."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from .conftest import InProcessController


def _log_tick_steps(node) -> list[tuple[str, int]]:
    """Log, in order, the controller call's start and return and the command's publish, each with
    the controller's adaptation count then: where the count rises tells where the node adapted."""
    steps: list[tuple[str, int]] = []
    controller, publish = node.controller, node.publish_command
    call = controller.__call__

    class Logged(type(controller)):
        def __call__(self, state, reference):
            steps.append(("start", self.stats.attempts))
            command = call(state, reference)
            steps.append(("commanded", self.stats.attempts))
            return command

    controller.__class__ = Logged
    node.publish_command = lambda command: (steps.append(("publish", controller.stats.attempts)), publish(command))
    return steps


def _adaptations(steps: list[tuple[str, int]]) -> tuple[list[int], list[int]]:
    """Per commanded tick: adaptations inside its call, and between its publish and the next
    call (a hold's publish, which has no call before it, is skipped)."""
    names = [name for name, _ in steps]
    ticks = [i for i in range(len(steps) - 2) if names[i : i + 3] == ["start", "commanded", "publish"]]
    starts = [i for i, name in enumerate(names) if name == "start"]
    inside, after = [], []
    for i in ticks:
        following = next((j for j in starts if j > i), None)
        if following is not None:
            inside.append(steps[i + 1][1] - steps[i][1])
            after.append(steps[following][1] - steps[i + 2][1])
    return inside, after


@pytest.mark.integration
def test_with_adapt_after_publish_each_tick_publishes_before_it_adapts(
    in_process_controller: InProcessController,
) -> None:
    node = in_process_controller.node
    node.set_parameters([Parameter("adapt_after_publish", value=True)])
    node.trigger_configure()
    assert node.controller.adapt_after_command is True
    refused = node.set_parameters([Parameter("adapt_after_publish", value=False)])[0]
    assert not refused.successful and "configure only" in refused.reason
    steps = _log_tick_steps(node)
    node.trigger_activate()
    in_process_controller.stream_home(1.0)
    inside, after = _adaptations(steps)
    assert len(inside) > 10
    # The first two ticks have no window of two transitions to adapt on; every later one adapts
    # once, after its publish (in the same callback: the next call starts only after it).
    assert inside == [0] * len(inside)
    assert after == [0, 0] + [1] * (len(after) - 2)
    assert float(node._stage_values()["stage.adapt_p50_ms"]) > 0.0


@pytest.mark.integration
def test_by_default_the_node_adapts_inside_the_call(in_process_controller: InProcessController) -> None:
    node = in_process_controller.node
    node.trigger_configure()
    assert node.controller.adapt_after_command is False, "the default: adapt before the plan"
    steps = _log_tick_steps(node)
    node.trigger_activate()
    in_process_controller.stream_home(1.0)
    inside, after = _adaptations(steps)
    assert len(inside) > 10
    assert inside == [0, 0] + [1] * (len(inside) - 2), "the adaptation runs before the plan"
    assert after == [0] * len(after), "nothing is left for after the publish"
