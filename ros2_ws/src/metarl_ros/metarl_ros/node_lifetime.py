"""How every metarl_ros node ends: on Ctrl-C, SIGTERM or a shutdown from outside, quietly.

``ros2 launch`` forwards a Ctrl-C to its nodes while the terminal sends the same SIGINT to the
whole process group, so a node sees two: the second must not interrupt its clean-up with a
``KeyboardInterrupt`` traceback. And a timer callback that was publishing when the context went
down raises from ``spin``; that is the shutdown, not a fault.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_until_shutdown(node: Node, spin: Callable[[], None], clean_up: Callable[[], None] = lambda: None) -> None:
    """Run ``spin()`` until the node is asked to stop, then ``clean_up()``, destroy it and shut down.

    Contract: returns normally on SIGINT, SIGTERM or an external shutdown (no traceback); an
    exception ``spin`` raises while the context is still valid is a real fault and propagates,
    after the same clean-up. A further SIGINT during the clean-up is ignored.
    """
    try:
        spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if node.context.ok():
            raise
        # A callback raced the shutdown (e.g. published on the invalidated context): expected.
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            clean_up()
        finally:
            node.destroy_node()
            rclpy.try_shutdown()
