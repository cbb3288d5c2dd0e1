"""The ROS test harness: the package's own process and service helpers (one implementation,
shared with the demo session)."""

from experiments.node_processes import call, change_state, set_double, spin_until, start_node, stop

__all__ = ["call", "change_state", "set_double", "spin_until", "start_node", "stop"]
