"""ROS 2 nodes of metarl: ROS stays at the edge, logic lives in plain, unit-tested modules."""
