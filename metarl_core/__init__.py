"""metarl_core: meta-learning of robot dynamics and policies, free of ROS."""
