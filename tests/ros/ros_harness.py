"""The ROS test harness: the package's own process and service helpers (one implementation,
shared with the demo session)."""

import os

from experiments.node_processes import call, change_state, set_double, spin_until, start_node, stop

__all__ = ["call", "change_state", "private_domain_id", "set_double", "spin_until", "start_node", "stop"]

DDS_DOMAIN_IDS = 233
"""Fast DDS derives its ports from the domain, and over 232 it exits the process (no exception,
so a test building a node there ends the whole pytest run without a summary)."""
PRIVATE_DOMAIN_OFFSET = 100


def private_domain_id() -> int:
    """A domain of its own for nodes built in the test process, 100 above the run's (test runs use
    20–99, the demo 1–19), wrapped to stay a valid one: their participants linger after
    ``rclpy.shutdown`` and would otherwise stand in the graph of later tests as nodes that never answer."""
    return (int(os.environ.get("ROS_DOMAIN_ID", "0")) + PRIVATE_DOMAIN_OFFSET) % DDS_DOMAIN_IDS
