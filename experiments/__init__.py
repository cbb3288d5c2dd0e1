"""Scripted ROS 2 sessions that drive the robot's nodes as separate processes: the payload-switch
experiment (demo, benchmarks, closed-loop tests), the latency probe (``metarl bench ros``) and the
process helpers they share. Harnesses, not robot code: they stay out of ``metarl_ros``."""
